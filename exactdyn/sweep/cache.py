"""Resumable on-disk cache of sweep cells: one JSON file per finished cell, written
atomically (temp file in the same folder, then ``os.replace``), so a killed sweep leaves
only whole cells behind and a restart recomputes none of them.

The cache heals: a cell file that cannot be read or does not hold a valid cell (binary
bytes, ``[]``, a wrong type, a directory in its place) is moved aside to ``.bad-<name>``
with one warning naming it, and the cell is recomputed. Temporary files of a killed run
are removed when the cache is opened again.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import shutil
import warnings

from .._atomic import remove_stale, write_text


def cell_key(payload: dict) -> str:
    """A stable key of a cell's full description (model parameters, task, options)."""
    text = json.dumps(payload, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class CellCache:
    """A folder of finished cells, keyed by :func:`cell_key`.

    Parameters
    ----------
    directory : str or path-like
        Created if missing. Failed cells are not cached (a restart retries them).
    """

    def __init__(self, directory, validate=None):
        self.directory = os.fspath(directory)
        self.validate = valid_cell if validate is None else validate
        os.makedirs(self.directory, exist_ok=True)
        remove_stale(self.directory, "")

    def _path(self, key: str) -> str:
        return os.path.join(self.directory, f"{key}.json")

    def get(self, key: str):
        """The cached cell, or ``None`` (missing, or unreadable / invalid: then moved aside
        with a warning, so the caller recomputes it)."""
        path = self._path(key)
        try:
            with open(path, encoding="utf-8") as fh:
                value = json.load(fh)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # a directory, binary bytes, bad JSON
            return self._heal(path, f"{type(exc).__name__}: {exc}")
        problem = self.validate(value)
        if problem:
            return self._heal(path, problem)
        return value

    def _heal(self, path: str, reason: str):
        bad = os.path.join(self.directory, ".bad-" + os.path.basename(path))
        try:
            if os.path.isdir(bad) and not os.path.islink(bad):
                shutil.rmtree(bad)
            os.replace(path, bad)
            where = f"moved to {bad}"
        except OSError as exc:
            where = f"could not be moved aside ({exc.strerror or exc})"
        warnings.warn(f"sweep cache: cell file {path} is unreadable or invalid ({reason}); "
                      f"{where}; the cell is recomputed", RuntimeWarning, stacklevel=3)
        return None

    def put(self, key: str, value: dict) -> None:
        write_text(self._path(key), json.dumps(value))

    def keys(self) -> list:
        return [f[:-5] for f in os.listdir(self.directory)
                if f.endswith(".json") and not f.startswith(".tmp-")]

    def __len__(self) -> int:
        return len(self.keys())


def valid_cell(value):
    """``None`` when ``value`` is a regime cell (``label`` a string, ``predicted`` a string
    or None, ``scores`` numbers or None by name), else what is wrong."""
    if not isinstance(value, dict):
        return f"a cell is a JSON object, got {type(value).__name__}"
    if not isinstance(value.get("label"), str):
        return "a cell's 'label' must be a string"
    if value.get("predicted") is not None and not isinstance(value["predicted"], str):
        return "a cell's 'predicted' must be a string or null"
    scores = value.get("scores", {})
    if not isinstance(scores, dict) or not all(
            v is None or (isinstance(v, numbers.Real) and not isinstance(v, bool))
            for v in scores.values()):
        return "a cell's 'scores' must map names to numbers"
    return None
