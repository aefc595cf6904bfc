"""The on-disk cache of lowered flows: a new process skips the derivation and the printing.

Deriving a family's gradient flow with sympy and printing it as array code costs a new
process about a second; the result is plain Python source text and a few names. This
module keeps such results as JSON files in a user cache folder, so that a later process's
first :func:`exactdyn.solve` compiles the stored source instead.

Location: ``$EXACTDYN_CACHE_DIR`` if set (the empty string disables the cache), else
``$XDG_CACHE_HOME/exactdyn``, else ``~/.cache/exactdyn``. :func:`set_enabled` switches it
off (or on) for the process; :func:`clear` empties it (deleting the folder does too).

An entry is keyed by a hash of what it was built from — the network's defining
expressions (or the built-in family and its derivation inputs), the package version, a
fingerprint of the package's own sources and this cache's format — and the key text is
stored in the entry and compared on reading, so two networks never share an entry. An
entry that is unreadable, truncated, altered (its payload has a checksum) or of another
format is ignored and rebuilt. Entries hold source text and JSON only, never pickles;
they are written atomically (:mod:`exactdyn._atomic`) with the user's umask.
"""

from __future__ import annotations

import hashlib
import json
import os
import re

from . import _atomic
from ._version import __version__

#: The user's part (docs: getting started, "Start-up and the on-disk cache"); the rest is
#: the package's own.
__all__ = ["cache_dir", "clear", "set_enabled"]

#: Version of the entry layout; bumping it orphans every older entry.
FORMAT = 1
ENV = "EXACTDYN_CACHE_DIR"

_enabled = True
_fingerprint: str | None = None


def set_enabled(flag: bool) -> None:
    """Use the on-disk cache in this process (``True``, the default) or not."""
    global _enabled
    if not isinstance(flag, bool):
        raise ValueError(f"flag must be True or False, got {flag!r}")
    _enabled = flag


def cache_dir() -> str | None:
    """The cache folder, or ``None`` when the cache is off (``set_enabled(False)`` or
    ``EXACTDYN_CACHE_DIR=""``). The folder need not exist yet."""
    if not _enabled:
        return None
    env = os.environ.get(ENV)
    if env is not None:
        return os.path.abspath(os.path.expanduser(env)) if env else None
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = xdg if xdg and os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"),
                                                              ".cache")
    return os.path.join(base, "exactdyn")


def fingerprint() -> str:
    """Hash of the package's Python sources (path, size and modification time of each): an
    edited checkout (same version number) never reads entries that older code printed."""
    global _fingerprint
    if _fingerprint is None:
        root = os.path.dirname(os.path.abspath(__file__))
        rows = []
        for dirpath, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith(".py"):
                    st = os.stat(os.path.join(dirpath, name))
                    rows.append(f"{dirpath[len(root):]}/{name}:{st.st_size}:{st.st_mtime_ns}")
        _fingerprint = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return _fingerprint


def _key_text(kind: str, key: str) -> str:
    return json.dumps([FORMAT, __version__, fingerprint(), kind, key])


def entry_path(kind: str, key: str) -> str | None:
    """Where the entry of ``key`` lives (``None``: cache off)."""
    folder = cache_dir()
    if folder is None:
        return None
    digest = hashlib.sha256(_key_text(kind, key).encode()).hexdigest()[:40]
    return os.path.join(folder, f"{kind}-{digest}.json")


def _checksum(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def load(kind: str, key: str):
    """The stored payload of ``key``, or ``None`` (absent, unreadable, corrupt, stale)."""
    path = entry_path(kind, key)
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            entry = json.load(fh)
        if entry["key"] != _key_text(kind, key) or entry["checksum"] != _checksum(
                entry["payload"]):
            return None
        return entry["payload"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(kind: str, key: str, payload) -> None:
    """Write ``payload`` (JSON-ready) for ``key``; a folder that cannot be written leaves
    the cache unused, silently (the result is rebuilt next time)."""
    path = entry_path(kind, key)
    if path is None:
        return
    entry = {"key": _key_text(kind, key), "checksum": _checksum(payload), "payload": payload}
    try:
        os.makedirs(os.path.dirname(path), mode=0o777, exist_ok=True)  # umask applies
        _atomic.remove_stale(os.path.dirname(path), "")  # a killed writer's temporary files
        _atomic.write_text(path, json.dumps(entry))
    except OSError:
        pass


def cached(kind: str, key: str | None, build, encode, decode):
    """``decode(payload)`` of a stored entry, else ``build()`` stored as ``encode(result)``.
    ``key`` ``None``: not cacheable, just ``build()``. A payload that ``decode`` rejects
    (``ValueError``, ``KeyError``, ``TypeError``) is rebuilt and overwritten."""
    if key is None or cache_dir() is None:
        return build()
    payload = load(kind, key)
    if payload is not None:
        try:
            return decode(payload)
        except (ValueError, KeyError, TypeError):
            pass
    result = build()
    store(kind, key, encode(result))
    return result


#: The names this module writes: entries ``<kind>-<40 hex>.json`` and atomic temporaries.
_OWN = re.compile(r"[a-z_]+-[0-9a-f]{40}\.json|\.tmp-\d+-.*")


def clear() -> int:
    """Delete every entry of the cache folder; returns how many. Only the files the cache
    wrote are touched (``EXACTDYN_CACHE_DIR`` may name a folder that holds other files)."""
    folder = cache_dir()
    if folder is None or not os.path.isdir(folder):
        return 0
    count = 0
    for name in os.listdir(folder):
        if _OWN.fullmatch(name):
            try:
                os.unlink(os.path.join(folder, name))
                count += 1
            except OSError:
                pass
    return count
