"""Progress of a batch run: a bar on an interactive stderr, and a one-line summary at the end.

    with Progress(len(items), label="prep", enabled=None if not quiet else False) as progress:
        for outcome in ...:
            progress.advance(ok, fixed=..., bytes_in=..., bytes_out=...)
    click.echo(progress.summary(), err=True)

The bar is drawn with ``tqdm`` (small, no dependencies of its own, redraws rate-limited so a run
of thousands of tiny files is not slowed by the terminal). It appears only when stderr is a
terminal (never in CI logs or pipes) unless ``enabled`` forces it.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any, TextIO

from .summary import human_bytes, human_duration, run_summary

__all__ = ["Progress", "human_bytes", "human_duration"]


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Progress:
    """Counts of a run of ``total`` files, shown as a bar while it runs.

    ``enabled``: ``None`` shows the bar when ``stream`` (default: stderr) is a terminal;
    ``False`` never (``--quiet``); ``True`` always. Each file is exactly one of: passed (ok as
    it was), fixed (ok after a fix) or failed (``ok`` false; ``fixed`` is then ignored).
    """

    def __init__(
        self,
        total: int,
        *,
        enabled: bool | None = None,
        label: str = "",
        stream: TextIO | None = None,
    ) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_tty(self.stream) if enabled is None else enabled
        self.passed = 0
        self.fixed = 0
        self.failed = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self._start = time.monotonic()
        self._end: float | None = None
        self._bar: Any = None

    @property
    def done(self) -> int:
        return self.passed + self.fixed + self.failed

    @property
    def elapsed(self) -> float:
        end = self._end if self._end is not None else time.monotonic()
        return end - self._start

    def __enter__(self) -> Progress:
        self._start = time.monotonic()
        self._end = None
        if self.enabled and self._bar is None:
            self._bar = _make_bar(self.total, self.label, self.stream)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the clock and remove the bar (the summary line replaces it)."""
        if self._end is None:
            self._end = time.monotonic()
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def advance(self, ok: bool, fixed: bool = False, bytes_in: int = 0, bytes_out: int = 0) -> None:
        """Count one finished file."""
        if not ok:
            self.failed += 1
        elif fixed:
            self.fixed += 1
        else:
            self.passed += 1
        self.bytes_in += bytes_in
        self.bytes_out += bytes_out
        if self._bar is not None:
            self._bar.set_postfix_str(self._postfix(), refresh=False)
            self._bar.update(1)  # tqdm rate-limits the redraw itself

    def write(self, message: str) -> None:
        """Print a line above the bar (or plainly when there is none), control and bidi
        characters escaped (a file name with U+202E cannot reorder the line)."""
        from ..report import displayable

        message = displayable(message)
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream)

    def _postfix(self) -> str:
        parts = [f"{self.passed} ok"]
        if self.fixed:
            parts.append(f"{self.fixed} fixed")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return ", ".join(parts)

    def summary(self) -> str:
        """``"200 files, 180 passed, 15 fixed, 5 failed, 1.2 GiB in → 340 MiB out, 12.3 s"``."""
        return run_summary(self.total, self.passed, self.fixed, self.failed, self.bytes_in,
                           self.bytes_out, self.elapsed)


def _make_bar(total: int, label: str, stream: TextIO) -> Any:
    from tqdm import tqdm

    class _Bar(tqdm):  # type: ignore[misc]
        # No monitor thread: the parent of a worker pool stays single-threaded and quiet.
        monitor_interval = 0

    return _Bar(
        total=total,
        desc=label or None,
        file=stream,
        unit="file",
        leave=False,
        dynamic_ncols=True,
        mininterval=0.1,
        smoothing=0.1,
    )
