"""Atomic file writes: a temporary file in the target's folder, renamed over the target
only once it is complete, so a failure part-way never leaves a half-written file.

The temporary file is created with mode 0600 (``tempfile.mkstemp``); before the rename it is
given the mode an ordinary ``open(path, "w")`` would have (0666 less the umask), so written
files follow the umask. An ``OSError`` names the target, not the temporary file.
"""

from __future__ import annotations

import os
from contextlib import contextmanager


def umask() -> int:
    """The process's umask (read from /proc where available: no set-and-restore race)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    return 0o666 & ~umask()


def dir_mode() -> int:
    return 0o777 & ~umask()


def _named(exc: OSError, path: str) -> OSError:
    return type(exc)(exc.errno, exc.strerror, path) if exc.errno is not None else exc


@contextmanager
def atomic_path(path, suffix: str = ""):
    """Yield a temporary path beside ``path``; on success it replaces ``path``."""
    import tempfile  # writers only: a process that only reads its cache never needs it

    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path)) or "."
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=tmp_prefix(""), suffix=suffix)
    except OSError as exc:
        raise _named(exc, path) from None
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename == tmp:
            raise _named(exc, path) from None
        raise


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        fh.write(text)


def write_bytes(path, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def save_figure(fig, path, **kwargs) -> None:
    """``fig.savefig(path, **kwargs)`` atomically (the format from ``path``'s extension)."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1]
    with atomic_path(path, suffix=ext) as tmp:
        fig.savefig(tmp, **({"format": ext[1:].lower()} if ext else {}), **kwargs)


#: Marker of a temporary entry that names its creating process: ``<stem>.tmp-<pid>-<random>``.
def tmp_prefix(stem: str) -> str:
    return f"{stem}.tmp-{os.getpid()}-"


def remove_stale(directory, stem: str) -> list:
    """Remove ``<stem>.tmp-<pid>-*`` entries of ``directory`` whose process is gone (a killed
    run's leftovers); returns the paths removed. Entries of live processes are kept."""
    import shutil

    removed = []
    head = f"{stem}.tmp-"
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(head):
            continue
        pid_text = name[len(head):].split("-", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        full = os.path.join(directory, name)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full, ignore_errors=True)
        else:
            try:
                os.unlink(full)
            except OSError:
                continue
        removed.append(full)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
