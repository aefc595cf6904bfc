"""The one result type of every path: closed form, float64 and high-precision integration."""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field

import numpy as np

from ._atomic import atomic_path, write_text
from ._mp import is_mpf


class LazyState(MutableMapping):
    """The named state arrays of a trajectory, computed on first access, then kept.

    A closed form gives its observables from a few scalars per time (the 1-D linear
    network's norms from three dot products over the init), while the state is a
    time × width array: at width 10⁶ it costs far more time and memory than everything
    else. A :class:`Trajectory` may hold its state as a ``LazyState``: the names are known
    at once (``"u" in traj.state``, ``list(traj.state)`` and ``len`` compute nothing); the
    first access to a value (``traj["u"]``, ``traj.state.items()``, an export with the
    states, :meth:`Trajectory.equals`, pickling) computes every array with ``compute()``
    and keeps them. Otherwise it behaves as the dict it stands for (assignment and deletion
    work on the computed arrays; a pickled one reads back as a plain dict).

    Parameters
    ----------
    names : iterable of str
        The state's names, in order.
    compute : callable () -> dict of str -> ndarray
        Computes every array (called at most once), keyed by exactly ``names``.
    dtype : numpy dtype, optional
        The dtype the arrays will have (``float`` unless said otherwise): what a writer
        needs to know (float64 or ``mpmath.mpf``) without computing them.
    """

    def __init__(self, names: Iterable[str], compute: Callable[[], dict], dtype=float):
        self._names = tuple(names)
        self._compute = compute
        self._arrays: dict | None = None
        self.dtype = np.dtype(dtype)

    @property
    def computed(self) -> bool:
        """Whether the arrays have been computed (a value was accessed)."""
        return self._arrays is not None

    def _materialized(self) -> dict:
        if self._arrays is None:
            arrays = self._compute()
            if list(arrays) != list(self._names):
                raise RuntimeError(f"lazy state computed {list(arrays)}, expected "
                                   f"{list(self._names)}")
            self._arrays, self._compute = dict(arrays), None  # drop the closure's inputs
        return self._arrays

    def __getitem__(self, name: str):
        if name not in self:
            raise KeyError(name)
        return self._materialized()[name]

    def __setitem__(self, name: str, value) -> None:
        self._materialized()[name] = value
        self._names = tuple(self._arrays)

    def __delitem__(self, name: str) -> None:
        del self._materialized()[name]
        self._names = tuple(self._arrays)

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name) -> bool:
        return name in self._names

    def copy(self) -> dict:
        """A shallow copy, as ``dict.copy`` (computes the arrays)."""
        return dict(self._materialized())

    def __repr__(self) -> str:
        return repr(self._materialized())

    def __reduce__(self):
        # Pickled (and deep-copied) as the dict it stands for: the closure need not pickle.
        return (dict, (self._materialized(),))


def _state_is_float_unread(state) -> bool:
    """Whether ``state`` is a :class:`LazyState` of float64 arrays not computed yet."""
    return isinstance(state, LazyState) and not state.computed and state.dtype != object


@dataclass
class Trajectory:
    """A trajectory of a gradient flow at the requested times.

    Attributes
    ----------
    t : ndarray, shape (T,)
        Output times.
    state : dict (or :class:`LazyState`) of str -> ndarray, shape (T, ...)
        Named state arrays (``"u"``, ``"w"`` for :class:`~exactdyn.Linear1D`), time first.
        A closed form may give them as a :class:`LazyState`, computed on first access.
    observables : dict of str -> ndarray, shape (T, ...)
        Named observables (``"end_to_end"``, ``"loss"``, ``"ntk"``, ``"alignment"``,
        ``"norm_u"``, ``"norm_w"`` for :class:`~exactdyn.Linear1D`).
    meta : dict
        ``model``, ``params`` (hyperparameters), ``method``, ``rtol``, ``atol``,
        ``precision`` (``None`` for float64, else significant digits), and solver
        statistics such as ``nfev`` where they apply.

    With ``precision`` set, arrays hold ``mpmath.mpf`` numbers (dtype object), and the
    times are exact binary floats. ``traj["loss"]`` looks up an observable or a state.
    """

    t: np.ndarray
    state: dict
    observables: dict
    meta: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self.observables:
            return self.observables[name]
        if name in self.state:
            return self.state[name]
        known = ", ".join(list(self.observables) + list(self.state))
        raise KeyError(f"no observable or state named {name!r}; available: {known}")

    def __contains__(self, name: str) -> bool:
        return name in self.observables or name in self.state

    def __len__(self) -> int:
        return len(self.t)

    @property
    def model(self) -> str:
        return self.meta.get("model", "")

    @property
    def precision(self):
        return self.meta.get("precision")

    def as_float(self) -> Trajectory:
        """A float64 copy (high-precision numbers rounded)."""
        conv = lambda a: np.asarray(a, dtype=float)  # noqa: E731
        if _state_is_float_unread(self.state):  # stays lazy: float64 already
            source = self.state
            state = LazyState(source, lambda: {k: conv(v) for k, v in source.items()})
        else:
            state = {k: conv(v) for k, v in self.state.items()}
        return Trajectory(conv(self.t), state,
                          {k: conv(v) for k, v in self.observables.items()}, dict(self.meta))

    def __repr__(self) -> str:
        names = ", ".join(self.observables)
        return (f"Trajectory(model={self.model!r}, method={self.meta.get('method')!r}, "
                f"precision={self.precision!r}, points={len(self.t)}, observables=[{names}])")

    # ---- notebook display: a summary table ------------------------------------------
    def _summary_rows(self, max_rows: int = 6):
        names = [k for k, v in self.observables.items() if np.ndim(v) == 1]
        n = len(self.t)
        idx = sorted(set(np.linspace(0, n - 1, min(n, max_rows)).round().astype(int).tolist()))
        digits = min(self.precision or 10, 15)
        rows = [[_cell(self.t[i], digits)] + [_cell(self.observables[k][i], digits)
                                               for k in names] for i in idx]
        method = self.meta.get("method")
        prec = "float64" if self.precision is None else f"{self.precision} digits"
        caption = (f"Trajectory of {self.model} ({method}, {prec}), {n} times"
                   + (f"; {len(idx)} shown" if len(idx) < n else ""))
        return caption, ["t", *names], rows

    def _repr_markdown_(self) -> str:
        caption, head, rows = self._summary_rows()
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return f"**{caption}**\n\n" + "\n".join(lines)

    def _repr_html_(self) -> str:
        from html import escape

        caption, head, rows = self._summary_rows()
        th = "".join(f"<th>{escape(h)}</th>" for h in head)
        body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>"
                       for r in rows)
        return (f"<table><caption>{escape(caption)}</caption><thead><tr>{th}</tr></thead>"
                f"<tbody>{body}</tbody></table>")

    # ---- comparison --------------------------------------------------------------------
    def equals(self, other, state: bool = True) -> bool:
        """True when ``other`` holds the same numbers to the last digit and the same metadata.

        Arrays are compared element by element (``mpmath.mpf`` with ``mpf``, NaN equal to
        NaN), with the same shapes and the same kind (float64 or high precision); metadata
        after a JSON round trip (tuples read back as lists), leaving out the wall time
        ``seconds`` (a property of the run, not of its numbers). ``state=False`` leaves the
        states out (a file written without ``include_state``).
        """
        if not isinstance(other, Trajectory):
            return False
        pairs = [(self.t, other.t)]
        groups = [(self.observables, other.observables)]
        if state:
            groups.append((self.state, other.state))
        for a, b in groups:
            if list(a) != list(b):
                return False
            pairs += [(a[k], b[k]) for k in a]
        if not all(_same_array(x, y) for x, y in pairs):
            return False
        return _plain(_timeless(self.meta)) == _plain(_timeless(other.meta))

    def __eq__(self, other) -> bool:
        return self.equals(other) if isinstance(other, Trajectory) else NotImplemented

    __hash__ = None

    # ---- export -------------------------------------------------------------------------
    def to_dict(self, include_state: bool = False) -> dict:
        """``{"model", "params", "method", "t", "observables"}`` (plus ``"state"``, ``"meta"``).

        Numbers keep every digit: high-precision values stay ``mpmath.mpf`` in the dict
        (strings with all their digits in :meth:`to_json`).
        """
        out = {"model": self.model, "params": self.meta.get("params", {}),
               "method": self.meta.get("method"), "t": _tolist(self.t),
               "observables": {k: _tolist(v) for k, v in self.observables.items()}}
        if include_state:
            out["state"] = {k: _tolist(v) for k, v in self.state.items()}
        out["meta"] = {k: v for k, v in self.meta.items() if k not in ("model", "params", "method")}
        return out

    def to_json(self, path=None, include_state: bool = False) -> str:
        """JSON text (written atomically to ``path`` when given); :meth:`from_json` reads it.

        High-precision numbers (``mpmath.mpf``) are written as strings with enough digits
        to give back the same binary number (``"mpf_bits"`` in the top-level ``"encoding"``
        says at how many bits to read them; :meth:`from_json` does). float64 numbers are
        written as the shortest text that reads back exactly. NaN (e.g. the alignment of a
        zero vector, which is undefined) is written as ``null``, float64 ±infinity as
        ``"Infinity"``/``"-Infinity"``. The states are written with ``include_state=True``.
        """
        d = self.to_dict(include_state=include_state)
        bits = _mpf_bits(self)
        if bits:
            d["encoding"] = {"mpf_bits": bits}
        text = _dumps(d, self.precision, bits)
        if path is not None:
            write_text(path, text)
        return text

    def to_csv(self, path=None, include_state: bool = False, meta: bool = False) -> str:
        """CSV: a column ``t``, then every observable (and state with ``include_state``).

        Arrays beyond one value per time are flattened in row-major (C) order into named
        columns: ``end_to_end[0,1]`` is entry (0, 1) of the end-to-end map,
        ``singular_values[2]`` the third singular value. High-precision numbers are
        written with all their digits. With ``meta=True`` a first line ``# exactdyn
        {...}`` holds the metadata as JSON, so :meth:`from_csv` gives back the whole
        trajectory (read such a file with ``pandas.read_csv(path, comment="#")``).
        """
        import csv  # exports only (not on a solve's path: start-up, issue 15 item 4)

        bits = _mpf_bits(self)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        if meta:
            head = {"meta": self.meta}
            if bits:
                head["encoding"] = {"mpf_bits": bits}
            if include_state:
                head["state"] = list(self.state)
            buf.write("# exactdyn " + _dumps(head, self.precision, bits) + "\n")
        named = [("t", np.asarray(self.t))]
        named += [(k, np.asarray(v)) for k, v in self.observables.items()]
        if include_state:
            named += [(k, np.asarray(v)) for k, v in self.state.items()]
        header, cols = [], []
        n = len(self.t)
        for name, arr in named:
            if arr.shape[:1] != (n,):
                raise ValueError(f"cannot write {name!r} to CSV: its shape {arr.shape} does "
                                 f"not start with the {n} times; use to_json or to_npz")
            if arr.ndim == 1:
                header.append(name)
                cols.append(arr)
                continue
            flat = arr.reshape(n, -1)
            for j, idx in enumerate(np.ndindex(*arr.shape[1:])):
                header.append(f"{name}[{','.join(str(i) for i in idx)}]")
                cols.append(flat[:, j])
        writer.writerow(header)
        for row in zip(*cols):
            writer.writerow([_num_text(x, self.precision, bits) for x in row])
        text = buf.getvalue()
        if path is not None:
            write_text(path, text)
        return text

    def to_npz(self, path) -> None:
        """NPZ with ``t``, ``state_<name>``, ``obs_<name>`` (float64) and ``meta`` (JSON).

        A high-precision trajectory also stores every array as strings with all its
        digits (``hp_t``, ``hp_state_<name>``, ``hp_obs_<name>``), from which
        :meth:`from_npz` gives back the same ``mpmath.mpf`` numbers.
        """
        f = self.as_float()
        arrays = {"t": f.t}
        arrays.update({f"state_{k}": v for k, v in f.state.items()})
        arrays.update({f"obs_{k}": v for k, v in f.observables.items()})
        bits = _mpf_bits(self)
        head = {"model": self.model, **self.meta}
        if bits:
            head["encoding"] = {"mpf_bits": bits}
            for key, arr in [("t", self.t)] + [(f"state_{k}", v) for k, v in self.state.items()] \
                    + [(f"obs_{k}", v) for k, v in self.observables.items()]:
                arr = np.asarray(arr)
                if arr.dtype == object:
                    arrays[f"hp_{key}"] = np.vectorize(lambda x: _mpf_text(x, bits),
                                                       otypes=[str])(arr)
        arrays["meta"] = np.array(_dumps(head, self.precision, bits))
        target = path if str(path).endswith(".npz") else f"{path}.npz"
        with atomic_path(target, suffix=".npz") as tmp:
            np.savez(tmp, **arrays)

    # ---- import -------------------------------------------------------------------------
    @classmethod
    def from_json(cls, text_or_path) -> Trajectory:
        """The trajectory of :meth:`to_json` (a path, or the JSON text itself).

        High-precision numbers come back as the same ``mpmath.mpf`` numbers; the states
        are there when the file has them (``to_json(include_state=True)``).
        """
        text = _read_text(text_or_path, "{")
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a trajectory JSON file ({exc})") from None
        if not isinstance(d, dict) or "t" not in d or "observables" not in d:
            raise ValueError("not a trajectory JSON file: it has no 't' and 'observables' "
                             "(written by Trajectory.to_json?)")
        bits = (d.get("encoding") or {}).get("mpf_bits")
        meta = {"model": d.get("model", ""), "params": d.get("params", {}),
                "method": d.get("method")}
        meta.update(d.get("meta", {}))
        conv = lambda v: _from_list(v, bits)  # noqa: E731
        return cls(conv(d["t"]), {k: conv(v) for k, v in d.get("state", {}).items()},
                   {k: conv(v) for k, v in d["observables"].items()}, meta)

    @classmethod
    def from_npz(cls, path) -> Trajectory:
        """The trajectory of :meth:`to_npz` (high-precision numbers from their strings)."""
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
            if "t" not in files or "meta" not in files:
                raise ValueError(f"{path}: not a trajectory NPZ file (no 't' and 'meta'; "
                                 "written by Trajectory.to_npz?)")
            meta = json.loads(str(z["meta"]))
            bits = (meta.pop("encoding", None) or {}).get("mpf_bits")

            def arr(key):
                if f"hp_{key}" in files:
                    return _parse_mpf_array(z[f"hp_{key}"], bits)
                return np.array(z[key])

            state = {k[6:]: arr(k) for k in z.files if k.startswith("state_")}
            obs = {k[4:]: arr(k) for k in z.files if k.startswith("obs_")}
            return cls(arr("t"), state, obs, meta)

    @classmethod
    def from_csv(cls, text_or_path) -> Trajectory:
        """The trajectory of :meth:`to_csv` (a path, or the CSV text itself).

        Flattened columns (``end_to_end[0,1]``) are put back into arrays; columns named
        for a state (``to_csv(include_state=True, meta=True)``) go back to the states. A
        file without the ``# exactdyn`` metadata line gives float64 arrays, or ``mpf`` at
        the precision of its digits when a number has more than float64 holds, and empty
        metadata.
        """
        text = _read_text(text_or_path, "t,", "# exactdyn")
        lines = text.splitlines()
        meta, bits, state_names = {}, None, ()
        if lines and lines[0].startswith("#"):
            first = lines.pop(0)
            if first.startswith("# exactdyn "):
                head = json.loads(first[len("# exactdyn "):])
                meta = head.get("meta", {})
                bits = (head.get("encoding") or {}).get("mpf_bits")
                state_names = tuple(head.get("state", ()))
        import csv

        rows = list(csv.reader(lines))
        if not rows or not rows[0] or rows[0][0] != "t":
            raise ValueError("not a trajectory CSV file: the first column must be 't' "
                             "(written by Trajectory.to_csv?)")
        header, body = rows[0], rows[1:]
        if bits is None and any(len(_digits(c)) > 17 for r in body for c in r):
            bits = int(math.ceil(max(len(_digits(c)) for r in body for c in r)
                                 * math.log2(10))) + 1
        cols = {}
        for j, name in enumerate(header):
            m = _COLUMN.fullmatch(name)
            base, idx = (m.group(1), tuple(int(i) for i in m.group(2).split(","))) if m \
                else (name, ())
            cols.setdefault(base, []).append((idx, [r[j] for r in body]))
        arrays = {}
        for base, entries in cols.items():
            if entries[0][0] == ():
                arrays[base] = _from_list(entries[0][1], bits, text_cells=True)
                continue
            shape = tuple(max(i[k] for i, _ in entries) + 1 for k in range(len(entries[0][0])))
            flat = [_from_list(v, bits, text_cells=True) for _, v in entries]
            out = np.empty((len(body), *shape), dtype=flat[0].dtype)
            for (idx, _), v in zip(entries, flat):
                out[(slice(None), *idx)] = v
            arrays[base] = out
        t = arrays.pop("t")
        state = {k: arrays.pop(k) for k in list(arrays) if k in state_names}
        return cls(t, state, arrays, meta)


def load(path) -> Trajectory:
    """A trajectory saved by :meth:`Trajectory.to_json`, ``to_npz`` or ``to_csv``.

    The format is taken from the file name's extension (``.json``, ``.npz``, ``.csv``).
    """
    name = str(path).lower()
    for ext, reader in ((".json", Trajectory.from_json), (".npz", Trajectory.from_npz),
                        (".csv", Trajectory.from_csv)):
        if name.endswith(ext):
            return reader(path)
    raise ValueError(f"path must end in .json, .npz or .csv, got {str(path)!r}")


_COLUMN = re.compile(r"(.+)\[(\d+(?:,\d+)*)\]")


def _read_text(text_or_path, *starts) -> str:
    if isinstance(text_or_path, str) and text_or_path.lstrip().startswith(starts):
        return text_or_path
    with open(text_or_path) as fh:
        return fh.read()


def _digits(cell: str) -> str:
    mant = cell.strip().lstrip("+-").split("e")[0].split("E")[0].replace(".", "")
    return mant.lstrip("0") if mant.isdigit() else ""


def _mpf_bits(traj) -> int:
    """Bits of the longest ``mpf`` mantissa in ``traj`` (0 when it holds none)."""
    bits = 0
    # A float64 state not computed yet holds no mpf: left out, so as not to compute it.
    states = [] if _state_is_float_unread(traj.state) else [*traj.state.values()]
    arrays = [traj.t, *states, *traj.observables.values()]
    for a in arrays:
        a = np.asarray(a)
        if a.dtype != object:
            continue
        for x in a.ravel():
            if is_mpf(x):
                bits = max(bits, int(x._mpf_[3]))
    if bits == 0 and any(np.asarray(a).dtype == object for a in arrays):
        bits = 53
    return bits


def _mpf_text(x, bits: int) -> str:
    """``x`` as a decimal string that reads back, at ``bits`` bits, as the same number."""
    import mpmath

    if not is_mpf(x):
        with mpmath.workprec(max(bits, 53)):
            x = mpmath.mpf(x)  # exact for floats and ints that fit (no rounding to mp.prec)
    if not mpmath.isfinite(x):
        return "nan" if mpmath.isnan(x) else ("+inf" if x > 0 else "-inf")
    return mpmath.libmp.to_str(x._mpf_, mpmath.libmp.repr_dps(max(bits, 53)))


def _parse_mpf_array(a, bits):
    import mpmath

    a = np.asarray(a)
    with mpmath.workprec(max(int(bits or 53), 53)):
        return np.vectorize(lambda s: mpmath.mpf(str(s)), otypes=[object])(a) if a.size \
            else np.empty(a.shape, dtype=object)


def _from_list(v, bits, text_cells: bool = False):
    """An array from JSON lists or CSV cells: ``mpf`` for strings (at ``bits``)."""
    a = np.array(v, dtype=object)
    flat = a.ravel()
    if text_cells:
        if bits:
            return _parse_mpf_array(a, bits)
        out = np.array([np.nan if s in ("null", "nan", "") else float(s) for s in flat],
                       dtype=float)
        return out.reshape(a.shape)
    holds_mpf = bits and any(isinstance(x, str) and x not in ("Infinity", "-Infinity")
                             for x in flat)
    if holds_mpf:
        return _parse_mpf_array(np.array(["nan" if x is None else x for x in flat],
                                         dtype=object).reshape(a.shape), bits)
    out = np.array([np.nan if x is None else float(x) for x in flat], dtype=float)
    return out.reshape(a.shape)


def _same_array(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or (a.dtype == object) != (b.dtype == object):
        return False
    for x, y in zip(a.ravel(), b.ravel()):
        if x == y:
            continue
        if not (_isnan(x) and _isnan(y)):
            return False
    return True


def _isnan(x) -> bool:
    if is_mpf(x):
        import mpmath  # imported already: x is an mpf

        return mpmath.isnan(x)
    return bool(np.isnan(x))


def _timeless(meta: dict) -> dict:
    """``meta`` without the wall time of the run (``seconds``)."""
    return {k: v for k, v in meta.items() if k != "seconds"}


def _plain(obj):
    """``obj`` as it reads back from JSON (tuples as lists, numpy scalars as numbers)."""
    return json.loads(_dumps(obj, None, 0))


def _cell(x, digits: int) -> str:
    if is_mpf(x):
        import mpmath

        return mpmath.nstr(x, digits)
    return f"{float(x):.{digits}g}"


def _tolist(a):
    a = np.asarray(a)
    if a.dtype == object:
        return a.tolist()
    return a.astype(float).tolist()


def _num_text(x, precision, bits: int = 0) -> str:
    if is_mpf(x):
        return _mpf_text(x, bits or 53)
    x = float(x)
    if np.isnan(x):
        return "null"
    if np.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return repr(x)


def _dumps(obj, precision, bits: int = 0) -> str:
    """JSON with numbers at full precision (mpf as strings with all their digits)."""
    if isinstance(obj, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_dumps(v, precision, bits)}"
                               for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ", ".join(_dumps(v, precision, bits) for v in obj) + "]"
    if is_mpf(obj):
        return json.dumps(_mpf_text(obj, bits or 53))
    if isinstance(obj, (float, np.floating)):
        text = _num_text(obj, precision)
        return text if text not in ("Infinity", "-Infinity") else json.dumps(text)
    if isinstance(obj, (bool, np.bool_)):
        return json.dumps(bool(obj))
    if isinstance(obj, np.integer):
        return str(int(obj))
    if isinstance(obj, np.ndarray):
        return _dumps(obj.tolist(), precision, bits)
    return json.dumps(obj)
