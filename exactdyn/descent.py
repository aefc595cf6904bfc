r"""Beyond gradient flow: gradient descent at a finite step and the flow it follows.

- :func:`gd` runs the discrete iterates :math:`\theta_{k+1} = \theta_k - \mathrm{lr}\,H\nabla L`
  on the lowered right-hand side (:mod:`exactdyn.numeric.gd`) and returns a
  :class:`~exactdyn.Trajectory` on the time axis :math:`t = k\,\mathrm{lr}`.
- :func:`solve_modified` (``solve(model, t, lr=h)``) integrates the modified flow
  :math:`\dot\theta = -H\nabla\tilde L`, :math:`\tilde L = L + \tfrac h4\nabla L^\top H\nabla L`
  (:mod:`exactdyn.symbolic.modified`), which GD follows to second order in ``h``.
- :func:`jvp` gives the Jacobian-vector product :math:`f'(\theta)v` of the lowered flow
  (exact: the derived Jacobian where the lowering has one, else the complex step
  :math:`\operatorname{Im} f(\theta + i\delta v)/\delta`, exact to rounding for a real-analytic
  right-hand side), used by :func:`exactdyn.sharpness`. The modified flows of the
  two-layer network and the CNN take :math:`f'f` from its symbolic derivation instead
  (:func:`symbolic_jvp`; the complex step is the fallback). A kinked activation (ReLU) is
  evaluated branch by branch (the activation pattern frozen), so its modified flow is that
  of one activation region.
"""

from __future__ import annotations

import mpmath
import numpy as np

from . import _validation as check
from ._progress import check_progress
from .flows import gradient_flow, lower
from .numeric import gd as gd_numeric
from .numeric.integrate import (
    DEFAULT_RTOL,
    FLOAT_METHODS,
    integrate_float,
    lowered_trajectory,
    progress_bar,
)
from .trajectory import Trajectory


def lowered(model):
    """The lowered flow of any model (two-layer networks and CNNs lower themselves)."""
    own = getattr(model, "lowered", None)
    return own() if callable(own) else lower(model)


def _is_layer(low) -> bool:
    """A lowered flow in the activation notation (a one-hidden-layer network: the two-layer
    network, the CNN, a kinked user network): its generated code takes σ and σ' as
    arguments, so that the mpmath and complex paths substitute their own."""
    return getattr(low, "notation", None) == "activation"


def initial_vector(model, low) -> np.ndarray:
    return np.asarray(low.pack(model.initial_state()), dtype=float)


def trajectory(model, low, times, ys, meta, precision=None) -> Trajectory:
    """A :class:`Trajectory` from packed states ``ys`` (time first) of ``model``."""
    meta = dict(meta)
    if _is_layer(low):
        from .numeric.layer_flow import layer_trajectory

        traj = layer_trajectory(model, times, low.unpack(np.asarray(ys, dtype=float)), meta)
        if precision is not None:
            traj.state = {k: np.array(v) for k, v in
                          low.unpack(np.asarray(ys, dtype=object)).items()}
        return traj
    return lowered_trajectory(model, low, times, ys, precision, meta)


def _lr(lr) -> float:
    if isinstance(lr, bool):
        raise TypeError(f"lr must be a positive finite number, got {lr!r}")
    try:
        value = float(lr)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"lr must be a positive finite number, got {lr!r}") from exc
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    return value


def gd(model, lr, t, precision: int | None = None) -> Trajectory:
    r"""Gradient descent with step ``lr`` on ``model``'s loss, on the flow's time axis.

    .. math:: \theta_{k+1} = \theta_k - \mathrm{lr}\,H\nabla L(\theta_k),
              \qquad t_k = k\,\mathrm{lr},

    with :math:`H` the diagonal of layer rates (so ``lr`` multiplies each layer's rate, as
    the flow's time does). Each step is one call of the lowered right-hand side of the
    derived flow (vectorized over neurons and samples).

    Parameters
    ----------
    model
        Any model (:class:`~exactdyn.Linear1D`, :class:`~exactdyn.LinearNet`,
        :class:`~exactdyn.DeepLinear`, :class:`~exactdyn.TwoLayer`, ...).
    lr : float
        The step, > 0 and finite.
    t : float or array_like
        Output times, each a multiple of ``lr`` within rounding (``ValueError`` naming
        ``t`` otherwise: GD has no state between its iterates).
    precision : int, optional
        Significant digits: iterate on ``mpmath.mpf`` numbers inside a local
        ``mpmath.workdps`` (models whose lowering has an mpmath right-hand side:
        :class:`~exactdyn.Linear1D`, :class:`~exactdyn.LinearNet`,
        :class:`~exactdyn.SingleNeuron`, :class:`~exactdyn.DeepLinear` and a user
        :class:`~exactdyn.Network`; and :class:`~exactdyn.TwoLayer` and
        :class:`~exactdyn.TwoLayerCNN`, whose generated right-hand side runs on object
        arrays with the activation lambdified to mpmath, any activation, kinked ones
        branch by branch). For the two-layer families the state arrays hold the mpf
        iterates and the observables (loss, output, RD, ...) are float64, computed from
        the iterates rounded to float64.

    Notes
    -----
    Kinked activations (ReLU): the step uses the lowered right-hand side at the iterate,
    with :math:`\sigma'(0)` the left derivative (0 for ReLU), i.e. one subgradient;
    iterates cross kinks without event location (none is needed for a discrete map).

    Returns
    -------
    Trajectory
        ``meta["method"] == "gd"``, ``meta["lr"]``, ``meta["steps"]`` (iterates run).
    """
    lr = _lr(lr)
    times = check.times("t", t)
    precision = check.precision("precision", precision)
    ks = gd_numeric.step_counts("t", times, lr)
    low = lowered(model)
    y0 = initial_vector(model, low)
    if precision is None:
        ys = gd_numeric.iterate(lambda y: low.rhs(0.0, y), y0, lr, ks)
    else:
        with mpmath.workdps(precision):
            step = _mp_rhs(model, low)
            ys = gd_numeric.iterate(step, y0, lr, ks, precision)
    meta = {"method": "gd", "lr": lr, "steps": int(ks[-1]), "precision": precision,
            "rtol": None, "atol": None}
    return trajectory(model, low, times, ys, meta, precision)


def _mpf_array(v):
    return np.vectorize(mpmath.mpf, otypes=[object])(np.asarray(v, dtype=float))


def _mp_rhs(model, low):
    """``y -> f(y)`` on object arrays of ``mpmath.mpf`` (call inside the ``workdps`` of
    the iteration: hyperparameters and data are converted here, exactly)."""
    if _is_layer(low):
        return _mp_generated(low)
    rhs_mp = getattr(low, "rhs_mp", None)
    if rhs_mp is None:
        raise ValueError(f"precision is not available for gradient descent on "
                         f"{type(model).__name__} (its lowering has no mpmath "
                         "right-hand side); use precision=None")
    # Hyperparameters as mpf, so that products of them are not rounded in float64.
    values = tuple(np.vectorize(mpmath.mpf, otypes=[object])(v)
                   if isinstance(v, np.ndarray) else mpmath.mpf(v)
                   for v in getattr(low, "param_values", ()))
    return lambda y: rhs_mp(0.0, y, values)


def _mp_activation(act):
    r"""``(sigma, dsigma)`` elementwise on object arrays of ``mpmath.mpf``, from the
    activation's sympy expression (``lambdify`` to mpmath). A piecewise activation is
    evaluated branch by branch, :math:`\sigma_+` where the argument is > 0 and
    :math:`\sigma_-` elsewhere, so :math:`\sigma'(0) = \sigma_-'(0)` (0 for ReLU) as in
    the float64 step."""
    import sympy as sp

    from .models.activations import X

    if not getattr(act, "piecewise", False):
        pairs = ((act.expr,), (sp.diff(act.expr, X),))
    else:
        plus, minus = act.branches()
        pairs = ((plus, minus), (sp.diff(plus, X), sp.diff(minus, X)))

    def make(exprs):
        fs = [sp.lambdify(X, e, "mpmath") for e in exprs]
        if len(fs) == 1:
            return np.vectorize(lambda v: mpmath.mpf(fs[0](v)), otypes=[object])
        return np.vectorize(lambda v: mpmath.mpf(fs[0](v) if v > 0 else fs[1](v)),
                            otypes=[object])

    return make(pairs[0]), make(pairs[1])


def _mp_generated(low):
    r"""A one-hidden-layer network's generated right-hand side on object arrays of
    ``mpmath.mpf``: the same source as float64 (matrix products and contractions run on
    Python objects), with :func:`_mp_activation` and the data, :math:`\alpha` and
    :math:`n` as mpf (so that :math:`1/n` is not a float)."""
    sig, dsig = _mp_activation(low.model.act)
    f = low.generated("rhs", {"_sigma": sig, "_dsigma": dsig})
    inputs, targets, alpha, n = low.data
    data = (_mpf_array(inputs), _mpf_array(targets), mpmath.mpf(alpha), mpmath.mpf(n))

    def rhs(y):
        return low.call(f, y, data, dtype=object)

    return rhs


# ---- Jacobian-vector products ------------------------------------------------------------

def jvp(low, y, v) -> np.ndarray:
    r""":math:`f'(y)\,v` for the lowered flow ``low`` (float64).

    The derived Jacobian where the lowering has one (:class:`~exactdyn.Linear1D`,
    :class:`~exactdyn.LinearNet`, :class:`~exactdyn.SingleNeuron`); otherwise the complex
    step :math:`\operatorname{Im} f(y + i\delta v)/\delta` with :math:`\delta = 10^{-30}`
    relative to :math:`\lVert y\rVert/\lVert v\rVert`, which has no subtraction and is exact to
    rounding when the lowered right-hand side is real-analytic (polynomial flows, tanh, ...).
    """
    jac = getattr(low, "jac", None)
    if callable(jac):
        return jac(0.0, y) @ v
    nv = float(np.linalg.norm(v))
    if nv == 0.0:
        return np.zeros_like(y)
    delta = 1e-30 * max(float(np.linalg.norm(y)), 1e-300) / nv
    out = _complex_rhs(low, y + 1j * delta * v)
    return np.imag(out) / delta


def _complex_rhs(low, z):
    if _is_layer(low):
        return low.call(_complex_generated(low), z, dtype=complex)
    out = low.rhs(0.0, z)
    if not np.iscomplexobj(out):
        raise ValueError(f"no Jacobian-vector product for {type(low).__name__}: its "
                         "lowered right-hand side is not complex-analytic")
    return out


_COMPLEX: dict = {}


def _complex_activation(act):
    r"""``(sigma, dsigma)`` on complex arrays from the activation's sympy expression. A
    piecewise activation (kink at 0) is continued branch by branch on the sign of the real
    part, :math:`\sigma(z) = \sigma_\pm(z)`: at a real point off the kinks this is the
    analytic continuation of the frozen pattern's activation, so the complex step gives the
    Jacobian of the flow on that activation region."""
    import sympy as sp

    from .models.activations import X

    if not getattr(act, "piecewise", False):
        exprs = ((act.expr,), (sp.diff(act.expr, X),))
    else:
        plus, minus = act.branches()
        exprs = ((plus, minus), (sp.diff(plus, X), sp.diff(minus, X)))
    funcs = [[sp.lambdify(X, e, "numpy") for e in pair] for pair in exprs]

    def make(fs):
        if len(fs) == 1:
            return lambda h: fs[0](h) + 0 * h
        return lambda h: np.where(np.real(h) > 0, fs[0](h) + 0 * h, fs[1](h) + 0 * h)

    return make(funcs[0]), make(funcs[1])


def _complex_generated(low):
    """A one-hidden-layer network's generated right-hand side with σ and σ' evaluated on
    complex arguments (:func:`_complex_activation`)."""
    key = id(low)
    if key not in _COMPLEX or _COMPLEX[key][0] is not low:
        sig, dsig = _complex_activation(low.model.act)
        _COMPLEX[key] = (low, low.generated("rhs", {"_sigma": sig, "_dsigma": dsig}))
    return _COMPLEX[key][1]


def jacobian(low, y) -> np.ndarray:
    """The Jacobian :math:`f'(y)` (dense): the derived one where the lowering has it, else
    the symbolically derived directional derivative (:func:`symbolic_jvp`: the two-layer
    network and the CNN, any activation with a second derivative, GELU's erf included), else
    :func:`jvp`'s complex step, on the unit basis."""
    jac = getattr(low, "jac", None)
    if callable(jac):
        return np.asarray(jac(0.0, y), dtype=float)
    along = symbolic_jvp(low)
    step = (lambda e: along(y, e)) if along is not None else (lambda e: jvp(low, y, e))
    return np.stack([np.asarray(step(e), dtype=float) for e in np.eye(y.size)], axis=1)


# ---- the modified flow --------------------------------------------------------------------

_SYMBOLIC: dict = {}


def symbolic_jvp(low):
    r"""``(y, v) -> f'(y) v`` of the two-layer network (or the CNN) from the symbolically
    derived directional derivative (:func:`exactdyn.symbolic.twolayer.derive_two_layer_modified`,
    lowered to matrix products in :func:`exactdyn.numeric.twolayer.jvp_source`), with σ, σ'
    and σ'' lowered from the activation's sympy expression (branch by branch for a kinked
    activation: the Jacobian on each activation region, σ'' = 0 there for ReLU).

    The CNN's likewise (:func:`exactdyn.symbolic.cnn.derive_cnn_modified`, lowered to
    tensor contractions in :func:`exactdyn.numeric.cnn.jvp_source`). ``None`` where there is
    no such form (other models; a piecewise activation with a kink away from 0):
    :func:`modified_rhs` then takes the complex step (:func:`jvp`)."""
    if not _is_layer(low) or low.numerics.jvp_source is None:
        return None
    key = id(low)
    if key not in _SYMBOLIC or _SYMBOLIC[key][0] is not low:
        act = low.model.act
        try:
            d2sig = act.numeric_second()
        except ValueError:
            _SYMBOLIC[key] = (low, None)
            return None
        sig, dsig = act.numeric()
        ns = {"_sigma": sig, "_dsigma": dsig, "_d2sigma": d2sig}
        _SYMBOLIC[key] = (low, _layer_jvp(low, ns))
    return _SYMBOLIC[key][1]


def _layer_jvp(low, ns):
    """``(y, v) -> f'(y) v`` from the family's generated ``jvp(a, W, X, y, fa, fW, alpha, n)``."""
    f = low.numerics.jvp_source().function({**low.numerics.namespace, **ns})
    inputs, targets, alpha, n = low.data

    def along(y, v):
        state, direction = low.arguments(y, ()), low.arguments(v, ())
        out = np.empty(low.size)
        low.write(out, f(*state, inputs, targets, *direction, alpha, n))
        return out

    return along


class _WithLR:
    """A model whose symbol values also give the learning rate ``h`` (for lowering the
    modified flow of an indexed network)."""

    def __init__(self, model, symbol, lr):
        self._model, self._symbol, self._lr = model, symbol, lr

    def __getattr__(self, name):
        return getattr(self._model, name)

    def symbol_values(self):
        return {**self._model.symbol_values(), self._symbol: self._lr}

    def named_symbol_values(self):
        # The lowering reads the values by name from here when the model gives them so.
        if hasattr(self._model, "named_symbol_values"):
            base = self._model.named_symbol_values()
        else:
            base = {str(k): v for k, v in self._model.symbol_values().items()}
        return {**base, str(self._symbol): self._lr}


def _modified_activation(model, low, lr):
    """Activation notation: :math:`f - \\tfrac h2 f'f` with :math:`f'f` from the symbolic
    directional derivative (:func:`symbolic_jvp`; the complex step where there is none),
    on the initial activation region for a kinked activation."""
    along = symbolic_jvp(low) or (lambda y, f: jvp(low, y, f))
    if getattr(low, "kinks", False):
        return _region_rhs(model, low, lr, along)

    def rhs(t, y):
        f = low.rhs(t, y)
        return f - lr / 2 * along(y, f)

    return rhs


def _modified_complex_step(model, low, lr):
    """Several index kinds: :math:`f - \\tfrac h2 f'f` with :math:`f'f` by the complex step
    (:func:`jvp`; there is no derived modified flow in this notation)."""
    def rhs(t, y):
        f = low.rhs(t, y)
        return f - lr / 2 * jvp(low, y, f)

    return rhs


def _modified_indexed(model, low, lr):
    """One neuron index: the derived modified flow
    (:func:`~exactdyn.symbolic.modified.derive_modified_flow`) lowered with ``h`` among the
    hyperparameters."""
    from .numeric.lowering import IndexedLoweredFlow
    from .symbolic.modified import derive_modified_flow

    mod = derive_modified_flow(gradient_flow(model))
    return IndexedLoweredFlow(mod.flow, _WithLR(model, mod.lr, lr)).rhs


def _modified_chain(model, low, lr):
    """A chain of matrices (deep linear): the derived correction :math:`f'f`, lowered along
    the chain, subtracted from the lowered flow."""
    from .numeric.matrix_lowering import MATRIX_NS, lower_chain_exprs
    from .symbolic.modified import derive_modified_flow

    flow = gradient_flow(model)
    mod = derive_modified_flow(flow)
    src = lower_chain_exprs(flow, [mod.correction[w] for w in flow.params], "correction")
    corr = src.function(MATRIX_NS)

    def rhs(t, y):
        mats = [y[s].reshape(low.shapes[n]) for n, s in low.slices.items()]
        parts = corr(*mats, *low.hyper_values)
        c = np.concatenate([np.asarray(p, float).ravel() for p in parts])
        return low.rhs(t, y) - lr / 2 * c

    return rhs


def _modified_matrix(model, low, lr):
    """Matrix networks: :math:`f - \\tfrac h2 f'f` with the lowering's derived
    Jacobian-vector products (:func:`jvp`). The modified flow is derived first, as it
    always was, so that a network it is not defined for says so."""
    from .symbolic.modified import derive_modified_flow

    derive_modified_flow(gradient_flow(model))
    return _modified_complex_step(model, low, lr)


#: The modified right-hand side's construction for each notation of the lowered flow
#: (``low.notation``): ``(model, low, lr) -> rhs(t, y)``.
_MODIFIED_BY_NOTATION = {"activation": _modified_activation,
                         "multi_index": _modified_complex_step,
                         "indexed": _modified_indexed,
                         "chain": _modified_chain,
                         "matrix": _modified_matrix}


def modified_rhs(model, lr):
    r"""``(low, rhs)``: the lowered flow and the modified right-hand side
    :math:`-H\nabla\tilde L` at step ``lr`` (float64 callable ``rhs(t, y)``), built by
    the lowered flow's notation (:data:`_MODIFIED_BY_NOTATION`)."""
    lr = _lr(lr)
    low = lowered(model)
    return low, _MODIFIED_BY_NOTATION[low.notation](model, low, lr)


class _KinkReached(Exception):
    """The modified flow of a kinked activation left its activation region."""

    def __init__(self, t):
        super().__init__(t)
        self.t = t


def _region_rhs(model, low, lr, along):
    r"""The modified right-hand side of a kinked activation on the activation region of
    the initial state: :math:`f - \tfrac h2 f'f` with :math:`f'` the frozen pattern's
    Jacobian (``along(y, f)``: :func:`symbolic_jvp` with σ, σ', σ'' of the region's
    branches, or the complex step on the branches, :func:`_complex_activation`). The loss is
    smooth on the region, so backward error analysis holds there; leaving it (a
    preactivation changes sign) raises :class:`_KinkReached`, which
    :func:`solve_modified` turns into a ``ValueError`` naming ``t``."""
    y0 = initial_vector(model, low)
    h0 = np.asarray(_preactivations(low, y0))
    # an input that is all zeros (a padded patch) has its preactivation 0 whatever the
    # weights: constant, so no kink
    live = ~_zero_inputs(low, h0.shape)
    if np.any((h0 == 0) & live):
        raise ValueError(f"the modified flow of activation {model.activation!r} is defined "
                         "on an activation region (its loss is smooth only there), and the "
                         "initial state has a preactivation exactly at the kink (0)")
    p0 = (h0 > 0) & live

    def rhs(t, y):
        if not np.array_equal((np.asarray(_preactivations(low, y)) > 0) & live, p0):
            raise _KinkReached(t)
        f = low.rhs(t, y)
        return f - lr / 2 * along(y, f)

    return rhs


def _zero_inputs(low, shape):
    """Where a preactivation's input is all zeros (units × entries, as
    :meth:`~exactdyn.numeric.layer_flow.LayerLoweredFlow.preactivations`)."""
    return np.broadcast_to(low.zero_inputs()[None, :], shape)


def _preactivations(low, y):
    return low.preactivations(y)


def solve_modified(model, t, lr, method=None, rtol=None, atol=None,
                   progress=None) -> Trajectory:
    r"""Integrate the modified flow :math:`\dot\theta = -H\nabla\tilde L` at step ``lr``
    (``solve(model, t, lr=lr)``): float64, ``solve_ivp`` (default DOP853, ``rtol`` 1e-12).
    ``progress``: as :func:`exactdyn.solve`'s.

    Kinked activations (ReLU, leaky ReLU, ``abs``) of :class:`~exactdyn.TwoLayer` and
    :class:`~exactdyn.TwoLayerCNN`: the loss is smooth only on an activation region (the
    pattern of preactivation signs frozen), so the modified flow is that of the initial
    region; ``ValueError`` naming ``t`` when the flow reaches a kink before the last time,
    or when a preactivation starts exactly at 0."""
    times = check.times("t", t)
    method = "DOP853" if method is None else method
    check.choice("method", method, FLOAT_METHODS)
    rtol = DEFAULT_RTOL if rtol is None else check.positive("rtol", rtol)
    low, rhs = modified_rhs(model, lr)
    y0 = initial_vector(model, low)
    if atol is None:
        atol = rtol * max(float(np.sqrt(np.mean(y0**2))), 1e-300)
    bar = progress_bar(check_progress(progress), times, f"{type(model).__name__} (modified)")
    try:
        ys, stats = integrate_float(rhs, None, y0, times, method, rtol, atol, progress=bar)
    except _KinkReached as exc:
        raise ValueError(
            f"t: the modified flow of activation {model.activation!r} is defined on one "
            "activation region (the loss is smooth only there), and the flow reaches a kink "
            f"(a preactivation changes sign) near t = {float(exc.t):.6g}, before the last "
            f"time {float(times[-1]):g}; ask for times before it, or take a smooth "
            "activation") from None
    finally:
        if bar is not None:
            bar.close()
    meta = {"method": method, "modified_lr": _lr(lr), "rtol": rtol, "atol": atol,
            "precision": None, **stats}
    return trajectory(model, low, times, ys, meta)
