"""The one result type of every path: closed form, float64 and high-precision integration."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field

import mpmath
import numpy as np

from ._atomic import atomic_path, write_text


@dataclass
class Trajectory:
    """A trajectory of a gradient flow at the requested times.

    Attributes
    ----------
    t : ndarray, shape (T,)
        Output times.
    state : dict of str -> ndarray, shape (T, ...)
        Named state arrays (``"u"``, ``"w"`` for :class:`~exactdyn.Linear1D`), time first.
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
        return Trajectory(conv(self.t), {k: conv(v) for k, v in self.state.items()},
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

    # ---- export -------------------------------------------------------------------------
    def to_dict(self, include_state: bool = False) -> dict:
        """``{"model", "params", "method", "t", "observables"}`` (plus ``"state"``, ``"meta"``).

        Numbers keep every digit: high-precision values become ``mpmath.mpf`` in the
        dict and full-length JSON numbers in :meth:`to_json`.
        """
        out = {"model": self.model, "params": self.meta.get("params", {}),
               "method": self.meta.get("method"), "t": _tolist(self.t),
               "observables": {k: _tolist(v) for k, v in self.observables.items()}}
        if include_state:
            out["state"] = {k: _tolist(v) for k, v in self.state.items()}
        out["meta"] = {k: v for k, v in self.meta.items() if k not in ("model", "params", "method")}
        return out

    def to_json(self, path=None, include_state: bool = False) -> str:
        """JSON text (written atomically to ``path`` when given).

        High-precision numbers are written with all their digits; read them back with
        ``json.loads(text, parse_float=mpmath.mpf)``. NaN and infinity (e.g. the alignment
        of a zero vector, which is undefined) are written as ``null``.
        """
        text = _dumps(self.to_dict(include_state=include_state), self.precision)
        if path is not None:
            write_text(path, text)
        return text

    def to_csv(self, path=None) -> str:
        """CSV with a column ``t`` and one column per scalar observable."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        names = [k for k, v in self.observables.items() if np.ndim(v) == 1]
        writer.writerow(["t", *names])
        cols = [self.t] + [self.observables[n] for n in names]
        for row in zip(*cols):
            writer.writerow([_num_text(x, self.precision) for x in row])
        text = buf.getvalue()
        if path is not None:
            write_text(path, text)
        return text

    def to_npz(self, path) -> None:
        """NPZ with ``t``, ``state_<name>``, ``obs_<name>`` (float64) and ``meta`` (JSON)."""
        f = self.as_float()
        arrays = {"t": f.t}
        arrays.update({f"state_{k}": v for k, v in f.state.items()})
        arrays.update({f"obs_{k}": v for k, v in f.observables.items()})
        arrays["meta"] = np.array(_dumps({"model": self.model, **self.meta}, self.precision))
        target = path if str(path).endswith(".npz") else f"{path}.npz"
        with atomic_path(target, suffix=".npz") as tmp:
            np.savez(tmp, **arrays)


def _cell(x, digits: int) -> str:
    if isinstance(x, mpmath.mpf):
        return mpmath.nstr(x, digits)
    return f"{float(x):.{digits}g}"


def _tolist(a):
    a = np.asarray(a)
    if a.dtype == object:
        return a.tolist()
    return a.astype(float).tolist()


def _num_text(x, precision) -> str:
    if isinstance(x, mpmath.mpf):
        if not mpmath.isfinite(x):
            return "null"
        return mpmath.nstr(x, precision or 17, min_fixed=-4, max_fixed=8, strip_zeros=False) \
            if precision else repr(float(x))
    x = float(x)
    if not np.isfinite(x):
        return "null"
    return repr(x)


def _dumps(obj, precision) -> str:
    """JSON with numbers at full precision (mpf written with all its digits)."""
    if isinstance(obj, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_dumps(v, precision)}"
                               for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ", ".join(_dumps(v, precision) for v in obj) + "]"
    if isinstance(obj, (mpmath.mpf, float, np.floating)):
        return _num_text(obj, precision)
    if isinstance(obj, np.integer):
        return str(int(obj))
    if isinstance(obj, np.ndarray):
        return _dumps(obj.tolist(), precision)
    return json.dumps(obj)
