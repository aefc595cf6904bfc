r"""The lowered flow of a one-hidden-layer network: :class:`LayerLoweredFlow`, one class for
:class:`~exactdyn.TwoLayer` and :class:`~exactdyn.TwoLayerCNN`, and their one integrator.

Such a network has output :math:`f(x_i) = \frac1\alpha\sum_{k\beta}a_{k\beta}\sigma(h_{ik\beta})`,
:math:`h_{ik\beta} = w_\beta\cdot x_{ik}` (one position per sample for the fully connected
network, the patches for the CNN) and the mean squared loss. Its family derives the flow in
sympy and prints it with the indexed printer (:func:`exactdyn.numeric.indexed.lower_indexed`:
the sources ``rhs``, ``obs``, ``coef`` and optionally ``rhs_jump`` and ``rhs_out``, in
:mod:`exactdyn.numeric.twolayer` and :mod:`exactdyn.numeric.cnn`), declares its
preactivations (:meth:`model.kinked_preactivation`,
:class:`~exactdyn.models.base.KinkedPreactivation`) and registers a :class:`LayerNumerics`
(:func:`register_layer_family`). Everything else is here, once:

- the packed state, :class:`~exactdyn.numeric.LoweredFlow`'s ``pack`` / ``unpack``
  like every lowered flow, the generated code run on the state arrays in the shapes it takes
  (``rhs``, ``observe``, ``observables``);
- for a kinked activation, the hooks of :mod:`exactdyn.numeric.kinks` from the one adapter,
  :class:`~exactdyn.numeric.kink_adapter.KinkAdapter` (``kink``);
- :func:`solve_layer_flow` (``solve(model, t)``) and :func:`layer_trajectory`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..trajectory import Trajectory
from .buffers import ThreadBuffers
from .lowered import LoweredFlow
from .registry import cached_lowering, register_numeric

#: The explicit Runge–Kutta pairs with dense output that the segment-by-segment integrator
#: (:func:`exactdyn.numeric.kinks.integrate`) restarts at kinks.
KINK_METHODS = ("DOP853", "RK45", "RK23")


@dataclass(frozen=True)
class LayerNumerics:
    """What a one-hidden-layer family registers besides its model's declaration.

    Attributes
    ----------
    sources : callable() -> dict
        The generated sources by role (``rhs``, ``obs``, ``coef``, optionally
        ``rhs_jump`` and ``rhs_out``, the rhs printed with ``into``: written into the
        caller's result, its temporaries in buffers;
        :class:`~exactdyn.numeric.codegen.CompiledExpressions`).
    extra_observables : callable(flow, states) -> dict
        Observables besides ``loss`` and ``output`` on states (time first).
    max_kinks : int
        Default budget of activation-pattern changes.
    label : str
        How messages name the family.
    jvp_source : callable() -> CompiledExpressions, optional
        The derived directional derivative :math:`f'(\\theta)v` (for
        :func:`exactdyn.descent.symbolic_jvp`).
    namespace : dict
        Names the generated code needs besides σ, σ' (the CNN's ``_contract``).
    atol : callable(model, flow, y0, rtol) -> float, optional
        Default absolute tolerance (default :func:`exactdyn.numeric.integrate.default_atol`).
    smooth_by_segments : bool
        A smooth activation is integrated by the kink loop without pattern tests
        (:func:`exactdyn.numeric.kinks.integrate` with ``kinked=False``: its stiffness
        switch, explicit methods only) rather than by ``solve_ivp``'s table of methods.
    """

    sources: Callable
    extra_observables: Callable
    max_kinks: int
    label: str
    jvp_source: Callable | None = None
    namespace: dict = field(default_factory=dict)
    atol: Callable | None = None
    smooth_by_segments: bool = False


_FAMILIES: dict = {}


def layer_numerics(model) -> LayerNumerics:
    """The registered :class:`LayerNumerics` of ``model``'s type (or a base class)."""
    for cls in type(model).__mro__:
        if cls in _FAMILIES:
            return _FAMILIES[cls]
    raise TypeError(f"{type(model).__name__} has no registered one-hidden-layer numerics")


class LayerLoweredFlow(LoweredFlow, from_flow=False):
    r"""Numeric callables of a one-hidden-layer network, for one model instance.

    The packed state holds the model's state arrays in ``initial_state()``'s order and
    shapes (``pack``, ``unpack``: :class:`~exactdyn.numeric.LoweredFlow`); the
    generated code takes the readout and the weights in the shapes the network declares
    (``readout_matrix``, ``weights_matrix``) and the data ``(inputs, y, alpha, n)``.
    Nothing here changes after construction, so one instance (cached per model) serves
    several integrations at once, threads too: an integration's activation pattern lives
    in its own :class:`~exactdyn.numeric.kinks.KinkState`.

    Attributes
    ----------
    kinks : bool
        The activation is piecewise with its kink at 0.
    kink : KinkAdapter or None
        The hooks of :mod:`exactdyn.numeric.kinks` (:mod:`exactdyn.numeric.kink_adapter`).
    sources : dict
        The generated source text by role.
    notation : str
        ``"activation"``: the flow of the abstract activation σ
        (:class:`~exactdyn.symbolic.twolayer.TwoLayerFlow`), also for a kinked user network,
        which is integrated through that flow (its ``layer_flow``).
    """

    notation: ClassVar[str] = "activation"

    def __init__(self, model, numerics: LayerNumerics | None = None):
        numerics = layer_numerics(model) if numerics is None else numerics
        declared = model.kinked_preactivation()
        state = model.initial_state()
        # the symbolic flow, derived (once per process) only if asked for: the generated
        # sources may come from the disk cache
        # (a model whose own derivation is another, a user Network, names the one integrated)
        self._layout(None, getattr(model, "layer_flow", None) or model.derive_flow, model,
                     tuple(state),
                     {k: np.shape(v) for k, v in state.items()})
        self.numerics = numerics
        self.declared = declared
        src = numerics.sources()
        self._sources = src
        self.source_roles = frozenset(src)
        self.sources = {k: v.source for k, v in src.items()}
        inputs = np.asarray(declared.inputs)
        n = inputs.shape[0]
        #: the data arguments of the generated code, after the state arrays
        self.data = (inputs if "position" in declared.preactivation_axes else inputs[:, 0, :],
                     declared.targets, declared.alpha, n)
        self.n = n
        #: (slice, shape) of the generated code's state arguments, readout then weights,
        #: which is also the order of the arrays it returns
        self._args = ((self.slices[declared.readout], tuple(declared.readout_matrix)),
                      (self.slices[declared.weights], tuple(declared.weights_matrix)))
        self._arg_names = (declared.readout, declared.weights)
        sig, dsig = declared.activation.numeric()
        self._plain = {"_sigma": sig, "_dsigma": dsig}
        self._rhs = self.generated("rhs", self._plain)
        # the rhs writing into the packed result, its temporaries kept in per-thread buffers
        # (a family without that source: the allocating one, copied in)
        self._rhs_out = self.generated("rhs_out", self._plain) if "rhs_out" in src else None
        self._buffers = ThreadBuffers()
        self._obs = self.generated("obs", self._plain)
        self.kinks = bool(declared.activation.piecewise)
        self.kink = None
        if self.kinks:
            from .kink_adapter import KinkAdapter

            self.kink = KinkAdapter(self, declared)

    # ---- running the generated code --------------------------------------------------
    def generated(self, role: str, namespace: dict):
        """The generated function of ``role`` compiled with ``namespace`` (σ, σ', ...)."""
        return self._sources[role].function({**self.numerics.namespace, **namespace})

    def arguments(self, y, data=None) -> list:
        """The generated code's arguments at the packed state ``y``: readout and weights
        (views in the declared shapes), then ``data`` (default :attr:`data`)."""
        return [y[s].reshape(shape) for s, shape in self._args] + list(
            self.data if data is None else data)

    def result_views(self, out) -> list:
        """Views of the packed vector ``out`` in the shapes of the generated code's results
        (readout part, weights part): the ``_out`` of an ``rhs_out`` source."""
        return [out[s].reshape(shape) for s, shape in self._args]

    def write(self, out, parts) -> None:
        """Write the generated code's results (readout part, weights part) into the packed
        vector ``out``."""
        for (s, shape), p in zip(self._args, parts):
            out[s].reshape(shape)[...] = p

    def call(self, f, y, data=None, dtype=float):
        """``f`` (a generated rhs-like function) at ``y``, as a packed vector of ``dtype``."""
        out = np.empty(self.size, dtype=dtype)
        self.write(out, f(*self.arguments(y, data)))
        return out

    # ---- the flow ----------------------------------------------------------------------
    def pack(self, state, *arrays) -> np.ndarray:
        """The packed state of a state dict, or of the arrays in :attr:`state_names`'s
        order (``pack(a, W)`` for the two-layer network)."""
        if not isinstance(state, dict):
            state = dict(zip(self.state_names, (state,) + arrays))
        return super().pack(state)

    def rhs(self, t, y):
        """The right-hand side (at a kink σ'(0) = σ₋'(0), 0 for ReLU), packed."""
        out = np.empty(self.size)
        if self._rhs_out is None:
            self.write(out, self._rhs(*self.arguments(y)))
        else:
            # a new result every call (integrators keep it); the temporaries are buffers
            self._rhs_out(*self.arguments(y), self.result_views(out),
                          self._buffers.get(y.dtype.char))
        return out

    def output(self, y) -> np.ndarray:
        """The network's outputs on the samples, (n,), at a packed state."""
        out, _loss = self._obs(*self.arguments(y))
        return np.broadcast_to(out, (self.n,))

    def observe(self, *arrays):
        """``(output (n,), loss)`` at one state: a state dict, or the arrays in
        :attr:`state_names`'s order (``observe(a, W)``; the CNN's ``observe(W, a)``)."""
        state = arrays[0] if len(arrays) == 1 and isinstance(arrays[0], dict) else \
            dict(zip(self.state_names, arrays))
        views = [np.reshape(state[name], shape) for name, (_s, shape)
                 in zip(self._arg_names, self._args)]
        out, loss = self._obs(*views, *self.data)
        return np.broadcast_to(out, (self.n,)).copy(), float(loss)

    def observables(self, states: dict) -> dict:
        """Observables along states (time first): ``loss`` (T,), ``output`` (T × n), and the
        family's own (:attr:`LayerNumerics.extra_observables`)."""
        arrays = [np.asarray(states[name]) for name in self.state_names]
        outs, losses = [], []
        for at in zip(*arrays):
            o, lo = self.observe(*at)
            outs.append(o)
            losses.append(lo)
        return {"loss": np.array(losses), "output": np.array(outs),
                **self.numerics.extra_observables(self, states)}

    def preactivations(self, y) -> np.ndarray:
        r""":math:`h` at a packed state, units × (samples · positions)."""
        W = self.unit_rows(y)
        X = np.asarray(self.declared.inputs, float)
        return W @ X.reshape(-1, X.shape[-1]).T

    def zero_inputs(self) -> np.ndarray:
        """Entries (samples · positions,) whose input is all zeros (a padded patch): their
        preactivation is 0 whatever the weights."""
        X = np.asarray(self.declared.inputs)
        return np.all(X == 0, axis=-1).reshape(-1)

    def unit_rows(self, y) -> np.ndarray:
        """The input weights of a packed state, units × d (a view)."""
        d = self.declared
        weights, shape = self._args[1]
        if type(y) is np.ndarray and y.ndim == 1:  # one packed state: the kinks' hot path
            W = y[weights].reshape(shape)
        else:
            W = np.asarray(y)[..., weights].reshape(np.shape(y)[:-1] + shape)
        return W if d.units_axis == 0 else W.swapaxes(-1, -2)

    def pattern(self, y):
        """Units × entries, bool: h > 0."""
        return self.preactivations(y) > 0

    def integrate(self, times, method="DOP853", rtol=1e-10, atol=None, max_kinks=100_000,
                  max_steps=None, progress=None):
        """States at ``times`` (rows) and statistics, by the kink scheme
        (:func:`exactdyn.numeric.kinks.integrate`; ``kinked=False`` for a smooth σ).
        ``atol`` default: ``rtol`` times the state's RMS."""
        from . import kinks

        y0 = self.pack(self.model.initial_state())
        if atol is None:
            atol = rtol * (float(np.sqrt(np.mean(y0**2))) or 1.0)
        ys, stats = kinks.integrate(self.kink if self.kinks else self, y0, times, method, rtol,
                                    atol, max_kinks, kinked=self.kinks, max_steps=max_steps,
                                    progress=progress)
        if self.kinks:
            stats["sliding_entries"] = self.kink.entry_labels(stats["sliding_entries"])
        return ys, {**stats, "rtol": rtol, "atol": atol}


def lowered_layer_flow(model) -> LayerLoweredFlow:
    """The lowered flow of ``model``, built once per model (:func:`.registry.cached_lowering`)."""
    return cached_lowering(model, LayerLoweredFlow)


def layer_trajectory(model, times, states: dict, meta) -> Trajectory:
    """A :class:`~exactdyn.Trajectory` from named states (time first) with the flow's
    observables (:meth:`LayerLoweredFlow.observables`) and ``meta`` after the model's name
    and hyperparameters."""
    low = lowered_layer_flow(model)
    state = {name: np.asarray(states[name], float) for name in low.state_names}
    with np.errstate(over="ignore", invalid="ignore"):
        obs = low.observables(state)
    meta = {"model": model.name, "params": model.params, **meta}
    return Trajectory(np.asarray(times, float).copy(), state, obs, meta)


def solve_layer_flow(model, times, method=None, rtol=None, atol=None, max_kinks=None,
                     max_steps=None, progress=None) -> Trajectory:
    r"""``solve(model, t)`` for a one-hidden-layer network (two-layer network, CNN).

    Activations with a kink at 0 (ReLU, leaky ReLU, ``abs``): the activation pattern is
    frozen per segment, each change located on the step's dense output (Brent's method on
    the margin, then bisection) and the integrator restarted there; each entry is on, off or
    sliding (Filippov's convex combination, held exactly at h = 0), decided from the
    one-sided velocities and a bound of their uncertainty (:mod:`exactdyn.numeric.kinks`,
    hooks from :mod:`exactdyn.numeric.kink_adapter`). ``max_kinks``: the most
    activation-pattern changes before :class:`~exactdyn.IntegrationError` (default: the
    family's); ``max_steps``: the most integrator steps (default
    :data:`exactdyn.numeric.stepping.DEFAULT_MAX_STEPS`); ``progress``: an
    :class:`exactdyn._progress.Progress` over the time span, or ``None``.
    ``meta["sliding_entries"]``: the sliding entries at the end, ``[neuron, sample]``
    (one position) or ``[sample, position, kernel]``.
    """
    from .. import _validation as check
    from .integrate import FLOAT_METHODS, KINKED_RTOL, default_atol, integrate_float
    from .stepping import DEFAULT_MAX_STEPS

    numerics = layer_numerics(model)
    max_kinks = check.nonnegative_int("max_kinks", numerics.max_kinks if max_kinks is None
                                      else max_kinks)
    low = lowered_layer_flow(model)
    by_segments = low.kinks or numerics.smooth_by_segments
    method = "DOP853" if method is None else method
    check.choice("method", method, KINK_METHODS if by_segments else FLOAT_METHODS)
    rtol = KINKED_RTOL if rtol is None else rtol
    if atol is None and numerics.atol is None:
        atol = default_atol(model, low, low.pack(model.initial_state()), rtol)
    elif atol is None:
        atol = numerics.atol(model, low, low.pack(model.initial_state()), rtol)
    if by_segments:
        ys, stats = low.integrate(times, method, rtol, atol, max_kinks, max_steps, progress)
    else:
        ys, stats = integrate_float(low.rhs, None, low.pack(model.initial_state()), times,
                                    method, rtol, atol,
                                    DEFAULT_MAX_STEPS if max_steps is None else max_steps,
                                    progress)
    scheme = "frozen pattern, Brent on dense output, Filippov sliding" if low.kinks else None
    meta = {"method": method, "rtol": rtol, "atol": atol, "precision": None,
            "kink_scheme": scheme, "max_kinks": max_kinks if low.kinks else None, **stats}
    return layer_trajectory(model, times, low.unpack(ys), meta)


def register_layer_family(model_type: type, numerics: LayerNumerics) -> None:
    """Register ``model_type``'s one-hidden-layer numerics: its lowering is
    :class:`LayerLoweredFlow`, its integrator :func:`solve_layer_flow`
    (:func:`exactdyn.numeric.registry.register_numeric`)."""
    _FAMILIES[model_type] = numerics
    register_numeric(model_type, lowered_layer_flow, solve_layer_flow, numerics.max_kinks,
                     numerics.label)
