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


class Progress:
    """Plain-text progress on stderr (tqdm when installed), at most ~5 updates a second."""

    def __init__(self, total: int, enabled: bool = True, desc: str = "phase diagram"):
        self.total, self.done, self.failed = total, 0, 0
        self.enabled = enabled and total > 0
        self._bar = None
        self._last = 0.0
        self.desc = desc
        if self.enabled:
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=total, desc=desc, file=sys.stderr)
            except ImportError:
                pass

    def update(self, failed: bool = False, n: int = 1) -> None:
        self.done += n
        self.failed += int(failed)
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if now - self._last > 0.2 or self.done == self.total:
            self._last = now
            sys.stderr.write(f"\r{self.desc}: {self.done}/{self.total} cells"
                             f" ({self.failed} failed)")
            if self.done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def watch_parent(parent: int, interval: float = 0.5) -> None:
    """Pool-worker initializer: end this worker when ``parent`` is gone (a killed sweep
    would otherwise leave its workers waiting on the task queue for ever)."""
    import threading
    import time

    def watch():
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="exactdyn-parent-watch", daemon=True).start()


def run_cells(fn, tasks: list, keys: list, executor: Executor | None = None,
              cache: CellCache | None = None, jobs: int | None = None,
              progress: bool = True) -> tuple:
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
    own = executor is None and len(todo) > 0
    if own:
        executor = ProcessPoolExecutor(max_workers=jobs, initializer=watch_parent,
                                       initargs=(os.getpid(),))
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

    try:
        queue = iter(todo)
        exhausted = False
        while not exhausted or pending:
            while not exhausted and len(pending) < window:
                i = next(queue, None)
                if i is None:
                    exhausted = True
                    break
                pending[executor.submit(safe_call, fn, i, *tasks[i])] = i
                harvest([f for f in list(pending) if f.done()])
            if pending:
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                harvest(done)
    finally:
        bar.close()
        for fut in pending:
            fut.cancel()
        if own:
            executor.shutdown(cancel_futures=True)
    return results, errors, len(todo)
