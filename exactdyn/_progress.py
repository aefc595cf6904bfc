"""Progress on stderr for long operations: a bar on a terminal, quiet in logs.

A utility below every layer (like ``_atomic``): sweeps (``exactdyn.sweep``), the
two-layer RD slope (``exactdyn.regimes.two_layer``), float64 integrations
(:func:`exactdyn.solve`, through :mod:`exactdyn.numeric.stepping` and
:mod:`exactdyn.numeric.kinks`) and report building (``exactdyn.report``) use it.

Every public ``progress=`` argument takes the same values (:func:`check_progress`):
``None`` (default: on a terminal only), ``True`` (always: a bar on a terminal, plain
lines elsewhere), ``False`` (never), or a callable given each plain line instead of stderr.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import time

#: Set inside :func:`quiet`: automatic progress is off (explicit ``True`` still shows).
_QUIET: contextvars.ContextVar[bool] = contextvars.ContextVar("exactdyn_quiet_progress",
                                                              default=False)

#: Seconds before an automatic (``progress=None``) bar of an operation that is usually
#: short (one integration, one report) is first drawn: short runs print nothing.
AUTO_DELAY = 2.0


def check_progress(progress):
    """``progress`` if it is ``None``, ``True``, ``False`` (numpy's ``bool_`` too) or a
    callable taking one line of text; anything else (a string, a number) is a TypeError
    rather than read by its truth value."""
    if progress is None or callable(progress):
        return progress
    if isinstance(progress, bool) or type(progress).__name__ == "bool_":
        return bool(progress)
    raise TypeError(f"progress must be True, False, None (a bar on a terminal only) or a "
                    f"callable taking one line of text, got {progress!r}")


@contextlib.contextmanager
def quiet():
    """Inside: automatic progress (``None``) shows nothing, so the operations a report
    runs (integrations, classify) draw no bars of their own under the report's, and
    ``exactdyn report --check`` draws none at all. Explicit ``True`` and callables still
    show."""
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)


def _isatty(stream) -> bool:
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def progress_enabled(progress, stream=None) -> bool:
    """Whether to show progress: ``None`` (the default everywhere) means "when ``stream``
    (stderr) is a terminal" (and not inside :func:`quiet`), so logs and pipes get no
    progress lines; ``True`` / ``False`` force it on or off; a callable (it is given the
    lines) is on."""
    if progress is None:
        return not _QUIET.get() and _isatty(stream)
    return bool(progress)


def _num(x) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


class Progress:
    """Progress of ``total`` steps (an int, or a float such as an end time) on stderr.

    On a terminal: a tqdm bar (a carriage-return line if tqdm is missing), at most ~5
    updates a second. Elsewhere (a log file, a pipe), only when asked for with
    ``enabled=True``: one plain line per tenth of the work, never a carriage return.
    ``enabled=None`` shows it on a terminal only, and only once ``delay`` seconds have
    passed (so a short run prints nothing); ``False`` never; a callable is given the
    plain lines instead of the stream.

    ``template`` formats a plain line from ``desc``, ``done``, ``total`` and ``unit``
    (floats with 4 significant digits); a ``note`` (:meth:`to`) and failures follow in
    parentheses. ``announce``: plain lines at each new note (the stages of a report)
    instead of at each tenth.
    """

    def __init__(self, total, enabled=None, desc: str = "phase diagram",
                 unit: str = "cells", stream=None, delay: float = 0.0,
                 template: str = "{desc}: {done}/{total} {unit}", bar_format=None,
                 announce: bool = False):
        enabled = check_progress(enabled)
        self.stream = sys.stderr if stream is None else stream
        self.total, self.done, self.failed = total, 0, 0
        self.say = enabled if callable(enabled) else None
        self.enabled = progress_enabled(enabled, self.stream) and total > 0
        self.tty = self.enabled and self.say is None and _isatty(self.stream)
        self.desc, self.unit, self.template = desc, unit, template
        self.announce = announce
        self.note = ""
        self.delay = float(delay) if enabled is None else 0.0
        self._bar = None
        self._start = time.monotonic()
        self._last = 0.0
        self._drawn = False
        self._tenth = 0
        if self.tty:
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=total, desc=desc, unit=unit.rstrip("s") or "it",
                                 file=self.stream, delay=self.delay, bar_format=bar_format)
            except ImportError:
                pass

    def _line(self) -> str:
        notes = [n for n in (self.note, f"{self.failed} failed" if self.failed else "") if n]
        return (self.template.format(desc=self.desc, done=_num(self.done),
                                     total=_num(self.total), unit=self.unit)
                + (f" ({', '.join(notes)})" if notes else ""))

    def to(self, done, note: str | None = None) -> None:
        """Move to ``done`` (at least where it is), with ``note`` (e.g. "3 kinks", the
        current stage) if given."""
        noted = note is not None and note != self.note
        if noted:
            self.note = note
            if self._bar is not None:
                self._bar.set_postfix_str(note, refresh=False)  # update draws: after delay
        if done > self.done:
            self.update(n=done - self.done)
        if noted and self.announce and self.enabled and not self.tty:
            self._say(self._line())

    def update(self, failed: bool = False, n=1) -> None:
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
            if now - self._start < self.delay:
                return
            if now - self._last > 0.2 or self.done >= self.total:
                self._last = now
                self._drawn = True
                self.stream.write("\r" + self._line())
                if self.done >= self.total:
                    self.stream.write("\n")
                    self._drawn = False
                self.stream.flush()
            return
        if self.announce:
            return  # lines at new notes (to)
        tenth = int((10 * self.done) // self.total)
        if tenth > self._tenth or self.done >= self.total:
            self._tenth = tenth
            self._say(self._line())
            if self.done >= self.total:
                self.enabled = False  # said once

    def _say(self, line: str) -> None:
        if self.say is not None:
            self.say(line)
        else:
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._drawn:  # a carriage-return line left unfinished
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
