"""One truth in README, ``--help`` and ``mediaprep limits`` (issue 27, item 6): every option a
command's ``--help`` lists is in README, every option has help text, every finding code is in
README's list of codes, and the decompression-bomb numbers agree."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import mediaprep
from mediaprep.cli import main
from mediaprep.limits import limits_for
from mediaprep.types import CODES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
COMMANDS = sorted(main.commands)
OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def help_of(*args: str) -> str:
    result = CliRunner().invoke(main, [*args, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


def options_in_help(text: str) -> set[str]:
    """The options an ``--help`` page lists (the first column of its Options section)."""
    section = text.split("Options:", 1)[1]
    found: set[str] = set()
    for line in section.splitlines():
        if line.startswith("  ") and line.strip().startswith("-"):
            column = re.split(r"\s{2,}", line.strip())[0]
            found |= set(OPTION.findall(column))
    return found - {"-h", "--help", "--version"}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_in_help_is_in_readme(command: str) -> None:
    missing = sorted(o for o in options_in_help(help_of(command))
                     if not re.search(re.escape(o) + r"(?![\w-])", README))
    assert not missing, f"mediaprep {command}: README does not mention {missing}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_help_text(command: str) -> None:
    bare = [p.opts[-1] for p in main.commands[command].params
            if isinstance(p, click.Option) and not (p.help or "").strip()]
    assert not bare, f"mediaprep {command}: no help for {bare}"


def test_top_level_help_does_not_cut_a_description() -> None:
    text = help_of()
    listed = text.split("Commands:", 1)[1]
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\s+\S", listed, re.M), command
    assert "..." not in listed, listed


def test_every_finding_code_is_in_readmes_list_of_codes() -> None:
    start = README.index("Finding codes (stable):")
    codes_section = README[start:README.index("\n\n", start)]
    missing = [c for c in CODES if f"`{c}`" not in codes_section]
    assert not missing, f"README's list of finding codes lacks {missing}"


def test_readme_states_the_bomb_limits_in_force() -> None:
    limits = limits_for()
    assert f"{limits.value('image.max_decode_pixels'):,} pixels" in README
    decode_bytes = limits.value("image.max_decode_bytes")
    shown_bytes = (f"{decode_bytes >> 30} GiB" if decode_bytes % (1 << 30) == 0
                   else f"{decode_bytes >> 20} MiB")
    assert shown_bytes in README
    assert f"{limits.value('image.max_pixels_per_byte'):,} pixels per byte" in README
    assert "178,956,970" not in README  # Pillow's threshold, which is not the one used
    shown = CliRunner().invoke(main, ["limits"]).output
    assert f"{limits.value('image.max_decode_pixels'):,}" in shown


def test_a_bmp_bomb_is_refused_in_mediapreps_words(tmp_path: Path) -> None:
    """Pillow refuses a 1.6 G pixel BMP itself; the finding quotes our limit, not Pillow's."""
    header = (b"BM" + struct.pack("<IHHI", 54, 0, 0, 54)
              + struct.pack("<IiiHHIIiiII", 40, 40000, 40000, 1, 24, 0, 0, 2835, 2835, 0, 0))
    (tmp_path / "bomb.bmp").write_bytes(header + bytes(64))
    [finding] = mediaprep.check(tmp_path / "bomb.bmp").findings
    assert finding.code == "image.decompression_bomb"
    limit = limits_for().value("image.max_decode_pixels")
    assert f"declares 1,600,000,000 pixels, above image.max_decode_pixels {limit:,}" \
        in finding.message
    assert "DOS attack" not in finding.message and "178956970" not in finding.message
