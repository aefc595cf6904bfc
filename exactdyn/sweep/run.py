"""Run cells through any ``concurrent.futures.Executor``: progress, failures, cache."""

from __future__ import annotations

import os
import traceback
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, wait

from .._progress import Progress, progress_enabled, quiet  # noqa: F401 (re-exported)
from .cache import CellCache


def safe_call(fn, index, *args):
    """Run ``fn(*args)`` in a worker; an exception becomes ``{"error": ...}`` (not fatal).
    The cell's own operations (a long integration) draw no progress: the sweep's bar is
    the one shown."""
    try:
        with quiet():
            return index, {"result": fn(*args)}
    except Exception as exc:  # recorded per cell, the sweep goes on
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return index, {"error": tb}


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
    pool: Executor = executor if executor is not None else ProcessPoolExecutor(
        max_workers=jobs, initializer=watch_parent, initargs=(os.getpid(),))
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
