r"""Phase diagrams over two hyperparameters: labels and continuous scores on a grid.

Two paths:

- **closed form, vectorized** (``method="closed-form"``): the taxonomy's ``grid`` function
  evaluates every cell as array expressions (for :class:`~exactdyn.Linear1D` the exact
  NTK ratio, alignment score, disalignment fraction, ... of MATH.md §1; for
  :class:`~exactdyn.SingleNeuron` and decoupled :class:`~exactdyn.DeepLinear` inits their
  classifiers' rules on the explicit solutions);
- **one trajectory per cell** (``method="trajectory"``): each cell is a task
  ``cell(model)`` run through any ``concurrent.futures.Executor`` (a process pool by
  default, or a ``dask.distributed`` client's ``get_executor()``), with a progress bar,
  per-cell failures recorded, and a resumable cache (``cache=DIRECTORY``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from .._atomic import atomic_path, write_bytes
from ..regimes.base import Regime, classify, get_taxonomy, taxonomies, taxonomy_for
from .cache import CellCache, cell_key
from .grid import axis_values
from .run import run_cells

METHODS = ("auto", "closed-form", "trajectory")


@dataclass
class PhaseDiagram:
    """Labels and scores of a model over a grid of two hyperparameters.

    Attributes
    ----------
    x_name, y_name : str
        Hyperparameters on the axes.
    x, y : ndarray
        Axis values; the grid is ``len(y) × len(x)`` (rows follow ``y``).
    labels : ndarray of str, shape (len(y), len(x))
        Measured labels (``""`` where a cell failed).
    predicted : ndarray of str or None
        Theory labels from hyperparameters alone.
    scores : dict of str -> ndarray
        Continuous scores (NaN where a cell failed).
    fixed : dict
        The other hyperparameters.
    failures : list of dict
        Failed cells: ``{"i", "j", "x", "y", "error"}`` (row ``i`` = y index).
    """

    model: str
    taxonomy: str
    x_name: str
    x: np.ndarray
    y_name: str
    y: np.ndarray
    labels: np.ndarray
    scores: dict
    predicted: np.ndarray | None = None
    fixed: dict = field(default_factory=dict)
    quantity: str | None = None
    method: str = "closed-form"
    failures: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple:
        return self.labels.shape

    def boundary_mask(self, band: int = 1) -> np.ndarray:
        """Cells within ``band`` grid steps (Chebyshev) of a change of the predicted label."""
        if self.predicted is None:
            raise ValueError("this phase diagram has no predicted labels")
        pred = self.predicted
        near = np.zeros(pred.shape, dtype=bool)
        ny, nx = pred.shape
        for di in range(-band, band + 1):
            for dj in range(-band, band + 1):
                if di == 0 and dj == 0:
                    continue
                a = pred[max(di, 0):ny + min(di, 0), max(dj, 0):nx + min(dj, 0)]
                b = pred[max(-di, 0):ny + min(-di, 0), max(-dj, 0):nx + min(-dj, 0)]
                diff = a != b
                near[max(di, 0):ny + min(di, 0), max(dj, 0):nx + min(dj, 0)] |= diff
        return near

    def agreement(self, band: int = 1) -> dict:
        """Measured vs predicted labels on the cells more than ``band`` steps from a theory
        boundary (failed cells excluded): ``fraction``, ``compared``, ``disagreements``
        (every one listed: ``i``, ``j``, ``x``, ``y``, ``label``, ``predicted``)."""
        away = ~self.boundary_mask(band) & (self.labels != "")
        disagree = away & (self.labels != self.predicted)
        idx = np.argwhere(disagree)
        rows = [{"i": int(i), "j": int(j), "x": float(self.x[j]), "y": float(self.y[i]),
                 "label": str(self.labels[i, j]), "predicted": str(self.predicted[i, j])}
                for i, j in idx]
        n = int(away.sum())
        return {"fraction": 1.0 if n == 0 else 1 - len(rows) / n, "compared": n,
                "band": band, "disagreements": rows}

    def counts(self) -> dict:
        labels, n = np.unique(self.labels, return_counts=True)
        return {str(k): int(v) for k, v in zip(labels, n)}

    def _repr_markdown_(self) -> str:
        """Notebook display: the grid, the label counts and the agreement with theory
        (``pd.plot()`` draws the figure)."""
        ny, nx = self.shape
        lines = [f"**Phase diagram of {self.model}** ({self.taxonomy} taxonomy, "
                 f"{self.method}): {ny} × {nx} cells, x = {self.x_name} in "
                 f"[{self.x[0]:.3g}, {self.x[-1]:.3g}], y = {self.y_name} in "
                 f"[{self.y[0]:.3g}, {self.y[-1]:.3g}]"]
        if self.fixed:
            lines += ["", "fixed: " + ", ".join(f"{k} = {v}" for k, v in self.fixed.items()
                                                   if np.ndim(v) == 0)]
        lines += ["", "| label | cells |", "|---|---|"]
        lines += [f"| {k or '(failed)'} | {v} |" for k, v in self.counts().items()]
        if self.predicted is not None:
            a = self.agreement()
            lines += ["", f"measured = predicted on {100 * a['fraction']:.1f}% of the "
                          f"{a['compared']} cells away from a theory boundary"]
        if self.failures:
            lines += ["", f"{len(self.failures)} failed cells (see `.failures`)"]
        return "\n".join(lines)

    def plot(self, path=None, quantity: str | None = None, **kwargs):
        """Regions by label, a score as a colour map, theory boundaries, named points.

        See :func:`exactdyn.plotting.phase_diagram.plot_phase_diagram`; ``path`` ending in ``.png``
        or ``.svg`` saves the figure.
        """
        from ..plotting.phase_diagram import plot_phase_diagram

        return plot_phase_diagram(self, path=path, quantity=quantity, **kwargs)

    # ---- export -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        def clean(a):
            a = np.asarray(a, dtype=float)
            return [[None if not np.isfinite(v) else float(v) for v in row] for row in a]

        return {"model": self.model, "taxonomy": self.taxonomy, "method": self.method,
                "x_name": self.x_name, "x": self.x.tolist(), "y_name": self.y_name,
                "y": self.y.tolist(), "fixed": self.fixed, "quantity": self.quantity,
                "labels": self.labels.tolist(),
                "predicted": None if self.predicted is None else self.predicted.tolist(),
                "scores": {k: clean(v) for k, v in self.scores.items()},
                "failures": self.failures, "meta": self.meta}

    def to_json(self, path=None) -> str:
        """JSON text (non-finite scores as ``null``); written atomically to ``path``."""
        text = json.dumps(self.to_dict())
        if path is not None:
            write_bytes(path, text.encode())
        return text

    def to_npz(self, path) -> None:
        """Arrays in a ``.npz`` (labels as unicode arrays, the rest as JSON in ``meta``)."""
        arrays = {"x": self.x, "y": self.y, "labels": self.labels.astype(str)}
        if self.predicted is not None:
            arrays["predicted"] = self.predicted.astype(str)
        for k, v in self.scores.items():
            arrays[f"score_{k}"] = np.asarray(v, dtype=float)
        info = {k: v for k, v in self.to_dict().items()
                if k not in ("x", "y", "labels", "predicted", "scores")}
        arrays["meta"] = np.array(json.dumps(info))
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez_compressed(tmp, **arrays)

    @classmethod
    def from_dict(cls, d: dict) -> PhaseDiagram:
        def arr(a):
            return np.array([[np.nan if v is None else v for v in row] for row in a], float)

        return cls(model=d["model"], taxonomy=d["taxonomy"], x_name=d["x_name"],
                   x=np.array(d["x"]), y_name=d["y_name"], y=np.array(d["y"]),
                   labels=np.array(d["labels"], dtype=str),
                   predicted=None if d["predicted"] is None else np.array(d["predicted"],
                                                                          dtype=str),
                   scores={k: arr(v) for k, v in d["scores"].items()}, fixed=d["fixed"],
                   quantity=d["quantity"], method=d["method"], failures=d["failures"],
                   meta=d["meta"])

    @classmethod
    def from_json(cls, text_or_path) -> PhaseDiagram:
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            with open(text) as fh:
                text = fh.read()
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_npz(cls, path) -> PhaseDiagram:
        with np.load(path) as z:
            info = json.loads(str(z["meta"]))
            scores = {k[6:]: z[k] for k in z.files if k.startswith("score_")}
            return cls(x=z["x"], y=z["y"], labels=z["labels"],
                       predicted=z["predicted"] if "predicted" in z.files else None,
                       scores=scores, **{k: info[k] for k in
                                         ("model", "taxonomy", "x_name", "y_name", "fixed",
                                          "quantity", "method", "failures", "meta")})


# ---- model families ----------------------------------------------------------------------

def _family(model, fixed=None, axes=()):
    """(model class, base instance or cell builder or None, taxonomy name, parameter
    names, defaults): from the first taxonomy whose ``diagram`` hook claims the model
    (Linear1D, the decoupled inits of DeepLinear and LinearNet), else a user network's
    hyperparameters, else the generic rule."""
    fixed = dict(fixed or {})
    for name in taxonomies():
        hook = get_taxonomy(name).diagram
        found = None if hook is None else hook(model, fixed, tuple(axes))
        if found is not None:
            cls, base, params, defaults = found
            return cls, base, name, tuple(params), defaults
    if hasattr(model, "sweep_parameters") and not isinstance(model, type):
        # A user network's model: its hyperparameters (and a random init's width, scale
        # and seed); cells are built with with_values and labelled by the user's cell.
        allowed = tuple(model.sweep_parameters)
        defaults = {k: v for k, v in model.params.items() if k in allowed}
        return type(model), model, None, allowed, defaults
    return _generic_family(model, fixed)


def _generic_family(model, fixed: dict):
    """Any other model family with a registered taxonomy: its scalar dataclass fields are
    the sweepable hyperparameters; array-valued ones (teachers, data moments) may be fixed.
    """
    import dataclasses

    from ..regimes.base import _REGISTRY

    cls = model if isinstance(model, type) else type(model)
    plain = not dataclasses.is_dataclass(cls) and isinstance(model, type) and \
        hasattr(cls, "name") and hasattr(cls, "initial_state")
    if not ((dataclasses.is_dataclass(cls) or plain) and hasattr(cls, "name")):
        raise ValueError(f"model must be an exactdyn model class or instance, got {model!r}"
                         + (" (pass the class, e.g. TwoLayer, with its hyperparameters in "
                            "fixed)" if hasattr(cls, "name") else ""))
    base = None if isinstance(model, type) else model
    if base is not None and getattr(base, "explicit_init", False):
        raise ValueError("phase diagrams sweep hyperparameters of random inits; an explicit "
                         f"init is supported for Linear1D only (got {type(base).__name__}; "
                         "the decoupled inits: pass the class DeepLinear with mode_init, "
                         "or LinearNet with strengths, on an axis or in fixed)")
    fields = _init_fields(cls)
    defaults = {f.name: (getattr(base, f.name) if base is not None else f.default)
                for f in fields}
    if base is None:
        known = {k: v for k, v in fixed.items() if k in defaults}
        try:
            sample = cls(**{**defaults, **known})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{cls.__name__}: give its required hyperparameters in fixed "
                             f"({exc})") from None
    else:
        sample = base
    names = [n for n, tax in _REGISTRY.items() if tax.accepts(sample)]
    if not names:
        raise ValueError(f"no regime taxonomy applies to {cls.__name__}, so it has no phase "
                         f"diagram; taxonomies: {', '.join(_REGISTRY)}")
    allowed = tuple(f.name for f in fields)
    return cls, None, names[0], allowed, defaults


def _init_fields(cls) -> list:
    """The hyperparameters of a model class, each with ``name`` and ``default``: its
    dataclass fields, or (a class such as TwoLayer whose constructor derives its state)
    the keyword parameters of ``__init__`` (``None`` where required)."""
    import dataclasses
    import inspect
    from types import SimpleNamespace

    if dataclasses.is_dataclass(cls):
        return [f for f in dataclasses.fields(cls) if not f.name.startswith("_")]
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [SimpleNamespace(name=p.name, default=None if p.default is p.empty else p.default)
            for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self" and p.kind in kinds]


def model_cell(model, t=None, options=None) -> dict:
    """One cell of the per-cell path: the model's taxonomy's ``diagram_cell`` where it has
    one (Linear1D: its closed-form trajectory classified from samples), else
    ``classify(model)`` (each taxonomy integrates or evaluates the model itself).
    Module-level, so process pools and dask can pickle it."""
    hook = taxonomy_for(model).diagram_cell
    options = options or {}
    regime = hook(model, t, **options) if hook is not None else classify(model, **options)
    return regime_to_cell(regime)


def _make(cls, base, params: dict):
    if hasattr(base, "with_values"):
        return base.with_values(**params)
    params = dict(params)
    integer = [f.name for f in _init_fields(cls)
               if isinstance(f.default, int) and not isinstance(f.default, bool)]
    for k in {"width", "seed", *integer}:
        if k in params and params[k] is not None:
            v = float(params[k])
            if v != int(v):
                raise ValueError(f"{k} must be an integer, got {params[k]!r}")
            params[k] = int(v)
    return cls(**params)


#: The name this package has exported since 0.1.0 for the per-cell path's cell of a
#: Linear1D (its closed-form trajectory at ``t``, default
#: :func:`~exactdyn.regimes.linear1d.diagram_times`, classified from its samples): that is
#: Linear1D's ``diagram_cell``, which :func:`model_cell` calls.
trajectory_cell = model_cell


def regime_to_cell(regime: Regime) -> dict:
    scores = {k: float(v) for k, v in regime.evidence.items()
              if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {"label": regime.label, "predicted": regime.predicted, "scores": scores}


def _call_cell(cell, cls, base, params, t, options):
    model = _make(cls, base, params)
    out = cell(model, t, options) if cell in (trajectory_cell, model_cell) else cell(model)
    if isinstance(out, Regime):
        out = regime_to_cell(out)
    if not isinstance(out, dict) or "label" not in out:
        raise TypeError("a cell function must return a Regime or a dict with 'label'")
    return out


def phase_diagram(model, x, y, fixed: dict | None = None, quantity: str | None = None,
                  executor=None, cache=None, method: str = "auto", jobs: int | None = None,
                  progress=None, t=None, cell=None, **options) -> PhaseDiagram:
    r"""Labels and scores of ``model`` over a grid of two hyperparameters.

    Parameters
    ----------
    model : class or instance
        :class:`~exactdyn.Linear1D` (class: defaults for unlisted hyperparameters; an
        instance: its values, and its explicit init if it has one), or another family with
        a regime taxonomy (its class, hyperparameters in ``fixed``). DeepLinear with
        ``mode_init`` on an axis or in ``fixed`` sweeps the decoupled init
        (:meth:`~exactdyn.DeepLinear.decoupled`; also ``s1``, ``s2``, ...: the teacher's
        singular values); LinearNet with ``strengths`` on an axis or in ``fixed`` (and
        ``sigma_yx`` in ``fixed``) sweeps its decoupled init
        (:meth:`~exactdyn.LinearNet.decoupled`: ``strengths``, ``b_strengths``, ``eta1``,
        ``eta2``, ``hidden``, ``s1``, ...).
    x, y : (str, array_like)
        Axis name and values, e.g. ``("sigma_u", np.geomspace(1e-3, 10, 100))``. The grid
        is ``len(y) × len(x)``.
    fixed : dict, optional
        Other hyperparameters, e.g. ``{"width": 64, "seed": 0}``.
    quantity : str, optional
        The score shown as colour map by :meth:`PhaseDiagram.plot` (default ``"chi"``).
    executor : concurrent.futures.Executor, optional
        For the trajectory path; default a ``ProcessPoolExecutor(jobs)``. A dask cluster:
        ``distributed.Client(address).get_executor()``.
    cache : str or path-like, optional
        Folder of finished cells (trajectory path, batched or one by one): a restarted
        sweep reads them back.
    method : {"auto", "closed-form", "trajectory"}
        ``auto`` takes the vectorized closed form unless an executor, a cache, a cell
        function or times are given, or the family has none for these hyperparameters.
        Vectorized: Linear1D, SingleNeuron (whitened inputs), the decoupled inits of
        DeepLinear and LinearNet;
        ``"closed-form"`` elsewhere raises ``ValueError`` saying why.
    jobs : int, optional
        Worker processes of the default process pool (trajectory path).
    progress : bool or callable(str), optional
        A progress bar on stderr for the trajectory path (tqdm). Default ``None``: shown
        when stderr is a terminal, not in logs or pipes. ``True`` forces it (outside a
        terminal: one plain line per tenth of the cells), ``False`` silences it (CLI:
        ``--no-progress``); a callable receives those plain lines instead.
    t : array_like, optional
        Output times of each trajectory cell (default scaled to the cell's :math:`K_\infty`).
    cell : callable(model) -> Regime or dict, optional
        A custom cell function (must be picklable for process pools and dask).
    **options
        Thresholds of the taxonomy (e.g. ``kernel_tol``).

    Returns
    -------
    PhaseDiagram

    Examples
    --------
    >>> import numpy as np, exactdyn
    >>> pd = exactdyn.phase_diagram(exactdyn.Linear1D, x=("sigma_u", np.geomspace(1e-3, 10, 50)),
    ...                             y=("kappa", np.geomspace(1e-2, 1e2, 40)), fixed={"width": 64})
    >>> pd.labels.shape
    (40, 50)
    """
    axes = tuple(a[0] for a in (x, y) if isinstance(a, (tuple, list)) and a
                 and isinstance(a[0], str))
    cls, base, tax_name, allowed, defaults = _family(model, fixed, axes)
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if tax_name is None and cell is None:
        raise ValueError(f"{model!r} has no regime taxonomy: give cell=, a function "
                         "model -> Regime or dict with 'label' (your classifier)")
    tax = None if tax_name is None else get_taxonomy(tax_name)
    for name, axis in (("x", x), ("y", y)):
        if not (isinstance(axis, (tuple, list)) and len(axis) == 2
                and isinstance(axis[0], str)):
            raise ValueError(f"{name} must be a pair (parameter name, values), got {axis!r}")
    x_name, xs = x[0], axis_values(x[0], x[1], allowed)
    y_name, ys = y[0], axis_values(y[0], y[1], allowed)
    if x_name == y_name:
        raise ValueError(f"x and y must be different parameters, both are {x_name!r}")
    fixed = dict(fixed or {})
    for k in fixed:
        if k not in allowed:
            raise ValueError(f"unknown parameter name {k!r} in fixed; allowed: "
                             f"{', '.join(allowed)}")
        if k in (x_name, y_name):
            raise ValueError(f"{k!r} is on an axis and cannot also be fixed")
    params = {**defaults, **fixed}
    # Validate every axis value once (a model per value, not per cell).
    # The other axis at its first value: some hyperparameters come in pairs (TwoLayer's
    # gamma and gamma_prime).
    corner = {x_name: xs[0], y_name: ys[0]}
    for name, vals in ((x_name, xs), (y_name, ys)):
        for v in vals:
            _make(cls, base, {**params, **corner, name: v})
    scores_known = () if tax is None else tax.scores
    if quantity is None and "chi" not in scores_known and scores_known:
        quantity = scores_known[0]
    if quantity is not None and tax is not None and quantity not in scores_known:
        raise ValueError(f"quantity must be one of {', '.join(scores_known)}; got {quantity!r}")
    general = executor is not None or cache is not None or cell is not None or t is not None
    grid = None if tax is None else tax.grid
    why_not = "" if grid is None or tax.grid_applies is None else \
        tax.grid_applies({**params, x_name: xs, y_name: ys})
    if method == "auto":
        method = "trajectory" if general or grid is None or why_not else "closed-form"
    if method == "closed-form" and grid is None:
        raise ValueError(f"taxonomy {tax_name!r} has no vectorized grid; use "
                         "method='trajectory'")
    if method == "closed-form" and why_not:
        raise ValueError(f"method='closed-form': {why_not}")
    if method == "closed-form" and (cell is not None or t is not None or cache is not None):
        raise ValueError("cell, t and cache apply to method='trajectory' only")
    fixed_out = {k: (v.item() if isinstance(v, np.generic) else
                     v.tolist() if isinstance(v, np.ndarray) else v)
                 for k, v in params.items() if k not in (x_name, y_name)}
    model_name = getattr(base, "name", None) or getattr(cls, "name", cls.__name__)
    common = dict(model=model_name if isinstance(model_name, str) else cls.__name__,
                  taxonomy=tax_name or "user", x_name=x_name, x=xs, y_name=y_name, y=ys,
                  fixed=fixed_out, quantity=quantity or "chi")
    if method == "closed-form":
        X, Y = np.meshgrid(xs, ys)
        # Scalars become arrays; array-valued hyperparameters (a teacher, data moments) and
        # None pass through as they are.
        values = {k: (v if v is None or np.ndim(v) > 0 else np.asarray(v, dtype=float))
                  for k, v in params.items()}
        values[x_name], values[y_name] = X, Y
        labels, predicted, scores = tax.grid(values, base=base, **options)
        return PhaseDiagram(labels=labels, predicted=predicted, scores=scores,
                            method="closed-form", meta={"options": options}, **common)
    # ---- general path: one trajectory per cell ----
    fn = cell or model_cell
    ny, nx = len(ys), len(xs)
    t_key = None if t is None else np.asarray(t, dtype=float).tolist()
    fn_name = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"
    init_key = None
    if base is not None and base.explicit_init:
        init_key = [v.tolist() for v in base.initial_state().values()]

    def key_of(p: dict, batched: bool) -> str:
        p_key = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in p.items()}
        payload = {"taxonomy": tax_name, "params": p_key, "init": init_key, "cell": fn_name,
                   "t": t_key, "options": options}
        # A batched cell's numbers agree with its one-by-one run to the tolerance, not to
        # the bit: the two are cached apart.
        return cell_key({**payload, "ensemble": True} if batched else payload)

    store = CellCache(cache) if cache is not None else None
    if (fn is model_cell and executor is None and cell is None and t is None
            and tax.classify_many is not None
            and options.get("ensemble", None) is not False and tax.batches is not None
            and tax.batches(_make(cls, base, {**params, x_name: float(xs[0]),
                                              y_name: float(ys[0])}))):
        return _ensemble_diagram(tax_name, cls, base, params, x_name, xs, y_name, ys, jobs,
                                 progress, options, common, store, key_of)
    tasks, keys = [], []
    for i in range(ny):
        for j in range(nx):
            p = {**params, x_name: float(xs[j]), y_name: float(ys[i])}
            tasks.append((fn, cls, base, p, t, options))
            keys.append(key_of(p, False))
    results, errors, computed = run_cells(_call_cell, tasks, keys, executor=executor,
                                          cache=store, jobs=jobs, progress=progress)
    per_cell = [r if r is not None else {"error": errors.get(n, "unknown error")}
                for n, r in enumerate(results)]
    return _cells_diagram(per_cell, xs, ys, common,
                          {"options": options, "computed": computed,
                           "cached": len(tasks) - computed})


def _cells_diagram(per_cell, xs, ys, common: dict, meta: dict) -> PhaseDiagram:
    """The per-cell path's diagram from one result per cell, row-major (``label``,
    ``predicted``, ``scores``; or ``error``, listed in ``failures``)."""
    ny, nx = len(ys), len(xs)
    labels = np.full((ny, nx), "", dtype="<U24")
    predicted = np.full((ny, nx), "", dtype="<U24")
    names = sorted({k for r in per_cell for k in r.get("scores", {})})
    scores = {k: np.full((ny, nx), np.nan) for k in names}
    failures = []
    for n, r in enumerate(per_cell):
        i, j = divmod(n, nx)
        if "error" in r:
            failures.append({"i": i, "j": j, "x": float(xs[j]), "y": float(ys[i]),
                             "error": r["error"]})
            continue
        labels[i, j] = r["label"]
        predicted[i, j] = r.get("predicted") or ""
        for k, v in r.get("scores", {}).items():
            scores[k][i, j] = np.nan if v is None else v
    has_pred = bool(np.any(predicted != ""))
    return PhaseDiagram(labels=labels, predicted=predicted if has_pred else None,
                        scores=scores, method="trajectory", failures=failures, meta=meta,
                        **common)


def _classify_chunk(tax_name, cls, base, cells, options) -> list:
    """Cells ``[(n, params), ...]`` classified together by the taxonomy's
    ``classify_many`` (one ensemble integration, :mod:`exactdyn.numeric.ensemble`);
    module-level and picklable for the process pool. Per cell, its result dict or
    ``{"error": message}``."""
    tax = get_taxonomy(tax_name)
    out = []
    models, where = [], []
    for _n, p in cells:
        try:
            models.append(_make(cls, base, p))
            where.append(len(out))
            out.append(None)
        except Exception as exc:  # recorded per cell
            out.append({"error": f"{type(exc).__name__}: {exc}"})
    for k, r in zip(where, tax.classify_many(models, **options)):
        out[k] = ({"error": f"{type(r).__name__}: {r}"} if isinstance(r, Exception)
                  else regime_to_cell(r))
    return [(n, r) for (n, _p), r in zip(cells, out)]


#: With a cell cache, the batched path classifies at most this many cells per worker and
#: round, and writes them before the next round: a killed sweep loses at most one round.
CACHED_CHUNK = 64


def _ensemble_diagram(tax_name, cls, base, params, x_name, xs, y_name, ys, jobs, progress,
                      options, common, store=None, key_of=None) -> PhaseDiagram:
    """The trajectory path with the cells' runs integrated as ensembles: the cells are dealt
    round-robin into one chunk per worker (``jobs``, default the CPU count; round-robin so
    the slow cells of one region are shared), each chunk is one ``classify_many`` call.

    With a :class:`~.cache.CellCache` (``store``, keys from ``key_of(params, True)``),
    cached cells are read back and the others computed in rounds of at most
    :data:`CACHED_CHUNK` cells per worker, each round's cells written (atomically, per
    cell) before the next; failed cells are not cached."""
    ny, nx = len(ys), len(xs)
    cells = [(n, {**params, x_name: float(xs[n % nx]), y_name: float(ys[n // nx])})
             for n in range(ny * nx)]
    by_index: dict = {}
    keys: dict = {}
    if store is not None and key_of is not None:
        keys = {n: key_of(p, True) for n, p in cells}
        for n, _p in cells:
            hit = store.get(keys[n])
            if hit is not None:
                by_index[n] = hit
    todo = [c for c in cells if c[0] not in by_index]
    cached = len(cells) - len(todo)
    workers = max(1, min(jobs or os.cpu_count() or 1, len(todo) or 1))
    opts = {k: v for k, v in options.items() if k != "ensemble"}
    per_round = workers * CACHED_CHUNK if store is not None else max(len(todo), 1)
    for start in range(0, len(todo), per_round):
        part = todo[start:start + per_round]
        chunks = [c for c in (part[k::workers] for k in range(workers)) if c]
        tasks = [(tax_name, cls, base, chunk, opts) for chunk in chunks]
        if len(tasks) == 1:
            results, errors = [_classify_chunk(*tasks[0])], {}
        else:
            results, errors, _ = run_cells(_classify_chunk, tasks, [None] * len(tasks),
                                           jobs=len(tasks), progress=progress)
        for k, res in enumerate(results):
            if res is None:
                for n, _p in chunks[k]:
                    by_index[n] = {"error": errors.get(k, "unknown error")}
                continue
            for n, r in res:
                by_index[n] = r
                if store is not None and "error" not in r:
                    store.put(keys[n], r)
    return _cells_diagram([by_index[n] for n in range(ny * nx)], xs, ys, common,
                          {"options": options, "computed": len(todo), "cached": cached,
                           "ensemble": True, "chunks": workers})
