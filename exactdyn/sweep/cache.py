"""Resumable on-disk cache of sweep cells: one JSON file per finished cell, written
atomically (temp file in the same folder, then ``os.replace``), so a killed sweep leaves
only whole cells behind and a restart recomputes none of them."""

from __future__ import annotations

import hashlib
import json
import os

from .._atomic import write_text


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

    def __init__(self, directory):
        self.directory = os.fspath(directory)
        os.makedirs(self.directory, exist_ok=True)

    def _path(self, key: str) -> str:
        return os.path.join(self.directory, f"{key}.json")

    def get(self, key: str):
        try:
            with open(self._path(key)) as fh:
                return json.load(fh)
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def put(self, key: str, value: dict) -> None:
        write_text(self._path(key), json.dumps(value))

    def keys(self) -> list:
        return [f[:-5] for f in os.listdir(self.directory)
                if f.endswith(".json") and not f.startswith(".tmp-")]

    def __len__(self) -> int:
        return len(self.keys())
