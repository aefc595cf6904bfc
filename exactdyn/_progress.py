"""Progress on stderr for long operations: a bar on a terminal, quiet in logs.

A utility below every layer (like ``_atomic``): sweeps (``exactdyn.sweep``) and the
two-layer RD slope (``exactdyn.regimes.two_layer``) use it.
"""

from __future__ import annotations

import sys
import time


def progress_enabled(progress: bool | None, stream=None) -> bool:
    """Whether to show progress: ``None`` (the default everywhere) means "when ``stream``
    (stderr) is a terminal", so logs and pipes get no progress lines; ``True`` / ``False``
    force it on or off."""
    if progress is None:
        stream = sys.stderr if stream is None else stream
        isatty = getattr(stream, "isatty", None)
        try:
            return bool(isatty and isatty())
        except ValueError:  # a closed stream
            return False
    return bool(progress)


class Progress:
    """Progress of ``total`` steps on stderr.

    On a terminal: a tqdm bar (a carriage-return line if tqdm is missing), at most ~5
    updates a second. Elsewhere (a log file, a pipe), only when asked for with
    ``enabled=True``: one plain line per tenth of the work, never a carriage return.
    ``enabled=None`` shows it on a terminal only; ``False`` never.
    """

    def __init__(self, total: int, enabled: bool | None = None, desc: str = "phase diagram",
                 unit: str = "cells", stream=None):
        self.stream = sys.stderr if stream is None else stream
        self.total, self.done, self.failed = total, 0, 0
        self.enabled = progress_enabled(enabled, self.stream) and total > 0
        self.tty = self.enabled and progress_enabled(None, self.stream)
        self.desc, self.unit = desc, unit
        self._bar = None
        self._last = 0.0
        self._tenth = 0
        if self.tty:
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=total, desc=desc, unit=unit.rstrip("s") or "it",
                                 file=self.stream)
            except ImportError:
                pass

    def _line(self) -> str:
        return (f"{self.desc}: {self.done}/{self.total} {self.unit}"
                + (f" ({self.failed} failed)" if self.failed else ""))

    def update(self, failed: bool = False, n: int = 1) -> None:
        self.done += n
        self.failed += int(failed)
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            if failed:
                self._bar.set_postfix(failed=self.failed)
            return
        if self.tty:
            now = time.monotonic()
            if now - self._last > 0.2 or self.done == self.total:
                self._last = now
                self.stream.write("\r" + self._line())
                if self.done == self.total:
                    self.stream.write("\n")
                self.stream.flush()
            return
        tenth = (10 * self.done) // self.total
        if tenth > self._tenth or self.done == self.total:
            self._tenth = tenth
            self.stream.write(self._line() + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
