"""The report reads parts.jsonl without parsing its data URLs (they are most of its bytes): a
data URL string of 256 bytes or more, wherever it is, reads as "data:..."; every other field
reads exactly as JSON reads it, whatever a name holds."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mediaprep.report.rows import read_lines, without_data

DATA = "data:image/jpeg;base64," + base64.b64encode(bytes(range(256)) * 40).decode()


def _line(path: str, url: str = DATA) -> dict:
    return {"path": path, "ok": True, "part": {"type": "image_url", "image_url": {"url": url}},
            "findings": [{"code": "image.resized", "message": f"{path} was resized"}],
            "outputs": [url[:40]]}


def _as_read(tmp_path: Path, lines: list[dict]) -> list[tuple[int, dict]]:
    parts = tmp_path / "parts.jsonl"
    parts.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines),
                     encoding="utf-8", errors="surrogateescape")
    return list(read_lines(parts))


def test_a_line_reads_as_json_reads_it_without_its_data(tmp_path: Path) -> None:
    lines = [_line("in/a.jpg"),
             _line('in/"data:x\\".jpg'),  # a name that looks like a data URL's start
             _line("in/b.jpg", url="data:image/png;base64,AA\"BB"),  # an escape inside
             _line("data:in/c.jpg"), {"path": "plain", "ok": False, "part": None}]
    got = _as_read(tmp_path, lines)
    assert got == [(i, without_data(x)) for i, x in enumerate(lines)]
    assert got[0][1]["outputs"] == [DATA[:40]]  # a short one is read whole
    long_name = _line(DATA)  # an input named by a data URL: its name reads as "data:..."
    assert _as_read(tmp_path, [long_name])[0][1]["path"] == "data:..."


def test_a_damaged_line_is_skipped_and_still_counted(tmp_path: Path) -> None:
    parts = tmp_path / "parts.jsonl"
    good = json.dumps(_line("in/a.jpg"))
    parts.write_text(good + "\n" + good[: len(good) // 2] + "\n" + good + "\n")
    assert [i for i, _ in read_lines(parts)] == [0, 2]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list('ab"\\:/ data\u00e9')), max_size=30),
                min_size=1, max_size=4))
def test_any_name_reads_as_json_reads_it(tmp_path_factory, names: list[str]) -> None:
    lines = [_line(n, url=n if n.startswith("data:") else DATA) for n in names]
    got = _as_read(tmp_path_factory.mktemp("p"), lines)
    assert got == [(i, without_data(x)) for i, x in enumerate(lines)]


def test_lines_are_counted_by_their_newlines_and_a_last_line_without_one_is_still_read(
        tmp_path: Path) -> None:
    from mediaprep.report.rows import count_lines

    url = "data:image/jpeg;base64," + "QUJD" * 100_000
    text = "\n".join(json.dumps({"path": f"p{i}", "part": {"url": url}}) for i in range(3))
    parts = tmp_path / "parts.jsonl"
    parts.write_text(text)  # the last line has no newline
    assert count_lines(parts) == text.count("\n") == 2
    assert [(i, line["path"]) for i, line in read_lines(parts)] == [(0, "p0"), (1, "p1"),
                                                                   (2, "p2")]
    parts.write_text("")
    assert count_lines(parts) == 0 and list(read_lines(parts)) == []
