"""Run cells through any ``concurrent.futures.Executor``: progress, failures, cache."""

from __future__ import annotations

import os
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, wait

from .cache import CellCache


def safe_call(fn, index, *args):
    """Run ``fn(*args)`` in a worker; an exception becomes ``{"error": ...}`` (not fatal)."""
    try:
        return index, {"result": fn(*args)}
    except Exception as exc:  # recorded per cell, the sweep goes on
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return index, {"error": tb}


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


def run_cells(fn, tasks: list, keys: list, executor: Executor | None = None,
              cache: CellCache | None = None, jobs: int | None = None,
              progress: bool | None = None) -> tuple:
    """Evaluate ``fn(*task)`` for every task not already in ``cache``.

    Returns
    -------
    results : list of (dict or None)
        Per task, the cell's result (cached or fresh), ``None`` where it failed.
    errors : dict of int -> str
        Failed tasks (by index) and their error message.
    computed : int
        Number of cells evaluated now (not read from the cache).
    """
    results: list = [None] * len(tasks)
    errors: dict = {}
    todo = []
    for i, key in enumerate(keys):
        hit = cache.get(key) if cache is not None else None
        if hit is not None:
            results[i] = hit
        else:
            todo.append(i)
    bar = Progress(len(tasks), progress)
    bar.update(n=len(tasks) - len(todo)) if len(todo) < len(tasks) else None
    own = executor is None
    window = max(4, 4 * (jobs or os.cpu_count() or 1))
    pending: dict = {}

    def harvest(done) -> None:
        for fut in done:
            i = pending.pop(fut)
            try:
                _, out = fut.result()
            except Exception as exc:  # the executor itself failed on this cell
                out = {"error": f"{type(exc).__name__}: {exc}"}
            if "error" in out:
                errors[i] = out["error"]
            else:
                results[i] = out["result"]
                if cache is not None:
                    cache.put(keys[i], out["result"])  # atomic: a kill leaves whole cells
            bar.update(failed="error" in out)

    if not todo:  # every cell came from the cache
        bar.close()
        return results, errors, 0
    pool: Executor = executor if executor is not None else ProcessPoolExecutor(max_workers=jobs)
    try:
        queue = iter(todo)
        exhausted = False
        while not exhausted or pending:
            while not exhausted and len(pending) < window:
                nxt = next(queue, None)
                if nxt is None:
                    exhausted = True
                    break
                pending[pool.submit(safe_call, fn, nxt, *tasks[nxt])] = nxt
                harvest([f for f in list(pending) if f.done()])
            if pending:
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                harvest(done)
    finally:
        bar.close()
        for fut in pending:
            fut.cancel()
        if own:
            pool.shutdown(cancel_futures=True)
    return results, errors, len(todo)
