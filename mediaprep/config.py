"""Defaults from ``[tool.mediaprep]`` in pyproject.toml or from ``mediaprep.toml``.

Found by walking up from the working directory (the first folder holding either file wins; a
pyproject.toml without a ``[tool.mediaprep]`` table does not stop the walk). Keys are the
long option names with ``_`` or ``-`` (``max_frames`` / ``max-frames``), plus:

    [tool.mediaprep.limits]        # override rows of the limits table
    "image.min_side" = 16
    include = ["assets/**"]        # globs, relative to the config file's folder
    exclude = ["**/thumbs/**"]
    force_exclude = true           # include/exclude apply to files named on the command line
    fail_on_empty = true           # a run that finds no media fails
    [[tool.mediaprep.overrides]]   # per-path settings, first match wins
    paths = ["videos/**"]
    fps = 1
"""

from __future__ import annotations

import fnmatch
import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import MediaprepError
from .limits import (
    DEFAULT_TARGET,
    TABLES,
    TEXT_INPUT_MAX_BYTES,
    LimitError,
    Target,
    limits_for,
    row_elsewhere,
)
from .settings import Settings, SettingsError, make_settings
from .targets import get_target

CONFIG_NAMES = ("mediaprep.toml", "pyproject.toml")


class ConfigError(MediaprepError, ValueError):
    """A config file that cannot be read or holds unknown keys (the CLI exits 2)."""


@dataclass
class Config:
    path: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    overrides: list[dict[str, Any]] = field(default_factory=list)
    # Files named on the command line are chosen as a folder walk chooses them: include/exclude
    # apply and a file that is not media (a TypeScript .ts) is skipped. For tools that name the
    # files themselves, as pre-commit does (``--force-exclude``, as ruff has it).
    force_exclude: bool = False
    # a run whose paths hold no media fails (the CLI exits 1) instead of passing with a warning
    fail_on_empty: bool = False
    # where in the file the options are, for messages ("[tool.mediaprep]")
    table: str = "[tool.mediaprep]"

    @property
    def root(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def selected(self, path: Path, real: Path | None = None) -> bool:
        """Whether include/exclude take ``path`` (``real``: its resolved form, if known)."""
        if not self.include and not self.exclude:
            return True
        rel = _relative(path, self.root, real)
        if self.include and not any(_match(rel, g) for g in self.include):
            return False
        return not any(_match(rel, g) for g in self.exclude)

    def limits_for_target(self, target: str | Target) -> tuple[dict[str, Any], list[str]]:
        """The rows of ``[tool.mediaprep.limits]`` that ``target`` has, and a warning for each
        row of that table or of a per-path override's that only other targets have.

        One config may serve several targets (a team checks for DashScope and Moonshot from
        one pyproject.toml), so such a row is left out with a warning, not refused as the same
        ``--limit`` on the command line is.
        """
        kept, elsewhere = split_limit_rows(self.options.get("limits") or {}, target)
        where = _limits_name(self.table)
        warnings = [f"{self.path}: {where}: {problem}; left out" for problem in elsewhere.values()]
        for number, ov in enumerate(self.overrides, 1):
            _, skipped = split_limit_rows(ov.get("limits") or {}, ov.get("target", target))
            warnings += [f"{self.path}: {_override_name(number)}: {problem}; left out"
                         for problem in skipped.values()]
        return kept, warnings

    def settings_for(self, path: Path, base: Settings) -> Settings:
        if not self.overrides:
            return base
        rel = _relative(path, self.root)
        for number, ov in enumerate(self.overrides, 1):
            globs = ov.get("paths", [])
            if any(_match(rel, g) for g in globs):
                opts = normalise_keys({k: v for k, v in ov.items() if k != "paths"})
                # checked when loaded; this catches what clashes with command-line options
                return _settings_from(self.path, _override_name(number), opts, base)
        return base


@functools.lru_cache(maxsize=8)
def resolved_folder(folder: str) -> Path:
    """``Path(folder).resolve()``, once per folder (it is asked for every input of a run)."""
    return Path(folder).resolve()


def _relative(path: Path, root: Path, real: Path | None = None) -> str:
    try:
        return (real or path.resolve()).relative_to(resolved_folder(str(root))).as_posix()
    except (ValueError, RuntimeError, OSError):  # RuntimeError: a symlink loop (Python 3.11)
        return path.as_posix()


def _match(rel: str, pattern: str) -> bool:
    # "**/" may match no folder at all, as in gitignore
    return fnmatch.fnmatch(rel, pattern) or (pattern.startswith("**/")
                                             and fnmatch.fnmatch(rel, pattern[3:]))


def normalise_keys(raw: dict[str, Any]) -> dict[str, Any]:
    return {k.replace("-", "_"): v for k, v in raw.items()}


def find_config(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        for name in CONFIG_NAMES:
            candidate = folder / name
            if candidate.is_file() and (name == "mediaprep.toml" or _has_tool_table(candidate)):
                return candidate
    return None


def read_capped_text(path: str | Path, *, encoding: str = "utf-8") -> str:
    """The text of a small file the user names (a config, a manifest), read up to
    :data:`~mediaprep.limits.TEXT_INPUT_MAX_BYTES`.

    Raises:
        OSError: it cannot be read.
        ValueError: it is larger than the cap (UnicodeDecodeError, a ValueError, when it is not
            text in ``encoding``).
    """
    with open(path, "rb") as fh:
        data = fh.read(TEXT_INPUT_MAX_BYTES + 1)
    if len(data) > TEXT_INPUT_MAX_BYTES:
        raise ValueError(f"larger than {TEXT_INPUT_MAX_BYTES:,} bytes, more than such a file "
                         "ever holds")
    return data.decode(encoding)


def _has_tool_table(pyproject: Path) -> bool:
    try:
        text = read_capped_text(pyproject)
    except (OSError, ValueError):
        return False
    try:
        return "mediaprep" in tomllib.loads(text).get("tool", {})
    except tomllib.TOMLDecodeError:
        # Someone else's broken file is not ours to judge; one that means to configure us is:
        # taken, so that loading it says what is wrong instead of silently using defaults.
        return "tool.mediaprep" in text


# keys of the config that choose how a run goes, not how an input is judged (not Settings)
RUN_SWITCHES = ("force_exclude", "fail_on_empty")


def _table_name(path: Path | str, data: dict[str, Any]) -> str:
    """Where in the file the options are, for messages."""
    if Path(path).name == "pyproject.toml" or "mediaprep" in data.get("tool", {}):
        return "[tool.mediaprep]"
    return "the top-level table"


def load_config(path: Path | None = None, *, search: bool = True) -> Config:
    if path is None:
        path = find_config() if search else None
        if path is None:
            return Config()
    data = _read_toml(path)
    table = data.get("tool", {}).get("mediaprep", {}) if Path(path).name == "pyproject.toml" \
        else data.get("tool", {}).get("mediaprep", data)
    table = normalise_keys(dict(table))
    cfg = Config(path=Path(path))
    cfg.include = list(table.pop("include", []))
    cfg.exclude = list(table.pop("exclude", []))
    cfg.overrides = [normalise_keys(o) for o in table.pop("overrides", [])]
    where = cfg.table = _table_name(path, data)
    _take_run_switches(cfg, table, f"{path}: {where}")
    cfg.options = table
    base = _settings_from(path, where, cfg.options)
    for number, ov in enumerate(cfg.overrides, 1):
        _settings_from(path, _override_name(number),
                       {k: v for k, v in ov.items() if k != "paths"}, base)
    return cfg


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = read_capped_text(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def _take_run_switches(cfg: Config, table: dict[str, Any], where: str) -> None:
    """Move the run switches (RUN_SWITCHES) from ``table`` to ``cfg``: each true or false."""
    for key in RUN_SWITCHES:
        value = table.pop(key, False)
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {key} must be true or false, got {value!r}")
        setattr(cfg, key, value)


def _limits_name(where: str) -> str:
    if where == "[tool.mediaprep]":
        return "[tool.mediaprep.limits]"
    return "[limits]" if where == "the top-level table" else f"{where}, its limits"


def _override_name(number: int) -> str:
    return f"[[tool.mediaprep.overrides]] #{number}"


def split_limit_rows(limits: Mapping[str, Any], target: str | Target
                     ) -> tuple[dict[str, Any], dict[str, str]]:
    """A config's limit rows for one target: those it has (or that no target has: refused
    later as unknown), and, by key, why each row only other targets have cannot apply. An
    unknown target keeps every row (the target's own check names it)."""
    try:
        get_target(target)
    except KeyError:
        return dict(limits), {}
    kept: dict[str, Any] = {}
    elsewhere: dict[str, str] = {}
    for key, value in limits.items():
        problem = row_elsewhere(target, key)
        if problem is None:
            kept[key] = value
        else:
            elsewhere[key] = problem
    return kept, elsewhere


def _rows_for_target(path: Path | str | None, where: str, options: dict[str, Any],
                     base: Settings | None) -> dict[str, Any]:
    """``options`` with only the limit rows its target has; the other rows' values are still
    checked against a target that has them (a typo in a shared config is found whatever the
    target of the run)."""
    limits = options.get("limits")
    if not limits:
        return options
    target = options.get("target") or (base.target if base is not None else DEFAULT_TARGET)
    kept, elsewhere = split_limit_rows(limits, target)
    for key in elsewhere:
        having = next(name for name, table in TABLES.items() if key in table)
        try:
            limits_for(having, {key: limits[key]})
        except LimitError as exc:
            raise ConfigError(f"{path}: {_limits_name(where)}: {exc}") from exc
    return {**options, "limits": kept}


def _settings_from(path: Path | str | None, where: str, options: dict[str, Any],
                   base: Settings | None = None) -> Settings:
    """Settings from a table of the config; what is wrong names the file, the table and the
    key (``fps = "fast"``), not only what Python said. Limit rows only other targets have
    are left out (:meth:`Config.limits_for_target` warns of them)."""
    options = _rows_for_target(path, where, options, base)
    try:
        return make_settings(base, **options)
    except (TypeError, SettingsError, ValueError) as exc:
        problem = exc
    limits = options.get("limits")
    if limits:
        try:
            make_settings(base, limits=limits)
        except (TypeError, SettingsError, ValueError) as exc:
            raise ConfigError(f"{path}: {_limits_name(where)}: {exc}") from exc
    for key, value in options.items():
        try:
            make_settings(base, **{key: value})
        except TypeError:
            raise ConfigError(f"{path}: {where}: unknown key {key!r} (keys are the long "
                              "option names of check and prep)") from problem
        except (SettingsError, ValueError) as exc:
            raise ConfigError(f"{path}: {where}: {key} = {value!r}: {exc}") from problem
    raise ConfigError(f"{path}: {where}: {problem}") from problem
