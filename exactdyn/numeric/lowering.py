r"""Lowering a per-neuron gradient flow to fast numeric callables (:class:`IndexedLoweredFlow`).

The per-neuron right-hand sides derived in :mod:`exactdyn.symbolic` (the 1-D linear
network, a user's :class:`~exactdyn.Network`) are printed by the one indexed printer,
:mod:`exactdyn.numeric.indexed`, with every index a neuron index: an entry ``u[j]``
becomes the vector ``u``, every reduction :math:`\sum_i g(u_i, w_i)` one ``u @ w`` (or a
vectorized ``sum``), each distinct operation computed once. Jacobian blocks add a second
neuron axis and observables a leading time axis. The same source runs on float64 numpy
arrays and, in the mpmath namespace, on object arrays of ``mpmath.mpf`` numbers, so the
numeric and the arbitrary-precision paths come from one derivation.

Width costs arrays, not algebra: the generated code is independent of the width.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .buffers import ThreadBuffers
from .codegen import MPMATH_NAMESPACE, NUMPY_NAMESPACE, TIME, CompiledExpressions
from .lowered import LoweredFlow

# sympy, the symbolic layer and the printer (:mod:`.indexed`) are imported inside the
# functions that print: a lowering read from the on-disk cache runs without them.

#: Kind order of the one-index flows: time (observables on a trajectory), the neuron axis,
#: and the second neuron axis of Jacobian blocks.
_ORDER = (TIME, "neuron", "neuron2")


def lower_neuron_exprs(exprs, bases, params, func_name, batched=False,
                       jacobian=False, into=False) -> CompiledExpressions:
    r"""Source of ``func_name(*bases, *params)`` for per-neuron or reduced expressions,
    printed by the one indexed printer (:func:`.indexed.lower_indexed`).

    Every index is a neuron index (the state arrays are vectors of the width); with
    ``jacobian``, ``x[k]`` (:data:`SECOND_INDEX`) is a second neuron axis, so a block
    :math:`\partial\dot x_j/\partial y_k` is a width × width matrix and
    ``KroneckerDelta(j, k)`` the identity; with ``batched`` the arrays carry a leading time
    axis (observables of a whole trajectory at once); with ``into`` the function writes
    into its last argument, a sequence of result arrays (see :func:`.indexed.lower_indexed`).
    """
    import sympy as sp

    from ..symbolic.sums import NEURON_INDEX, SECOND_INDEX, SUM_INDEX, WIDTH
    from .indexed import lower_indexed

    exprs = list(exprs)
    indices = {ix for e in exprs for a in e.atoms(sp.Indexed) for ix in a.indices}
    indices |= {lim[0] for e in exprs for s in e.atoms(sp.Sum) for lim in s.limits}
    kinds = {ix: "neuron" for ix in indices | {NEURON_INDEX, SUM_INDEX}}
    if jacobian:
        kinds[SECOND_INDEX] = "neuron2"
    width = f"{bases[0].name}.shape[-1]"
    return lower_indexed(exprs, bases, kinds, {}, func_name, params=params,
                         sizes={"neuron": width, "neuron2": width},
                         batched=set(bases) if batched else (), order=_ORDER,
                         prologue=[(WIDTH, width)], into=into)


def _parameters(exprs) -> tuple:
    """Hyperparameter symbols of expressions: free symbols that are not indices, the
    width, or array names."""
    import sympy as sp

    from ..symbolic.sums import NEURON_INDEX, SECOND_INDEX, SUM_INDEX, WIDTH

    exprs = list(exprs)
    found = set().union(*(e.free_symbols for e in exprs))
    skip = {NEURON_INDEX, SUM_INDEX, SECOND_INDEX, WIDTH}
    for e in exprs:
        skip |= {a.base.label for a in e.atoms(sp.Indexed)}
    return tuple(sorted((s for s in found if isinstance(s, sp.Symbol) and s not in skip),
                        key=str))


_COMPILED: dict = {}


@dataclass(frozen=True)
class CompiledFlow:
    """What an :class:`IndexedLoweredFlow` keeps of its derived flow: generated sources and names
    only (no sympy objects), so that it can be stored on disk (:mod:`exactdyn.diskcache`)."""

    params: tuple  # names of the rhs's hyperparameters, in argument order
    rhs: CompiledExpressions
    jac: CompiledExpressions
    obs_names: tuple
    obs_params: tuple  # names of the observables' hyperparameters
    obs: CompiledExpressions
    each: tuple  # one CompiledExpressions per observable


def _compiled(flow) -> CompiledFlow:
    # Keyed by the flow object (held in the value, so its id is never reused): flows are
    # derived once per network, and two user networks may share a name.
    if id(flow) not in _COMPILED:
        _COMPILED[id(flow)] = (flow, _compile(flow))
    return _COMPILED[id(flow)][1]


def _compile(flow) -> CompiledFlow:
    network = flow.network
    bases = network.params
    params = _parameters(flow.rhs.values())
    obs_names = tuple(network.observables)
    obs_params = _parameters(network.observables.values())
    rhs = lower_neuron_exprs([flow.rhs[b] for b in bases], bases, params, "rhs", into=True)
    blocks = flow.jacobian_entries()
    jac = lower_neuron_exprs([blocks[(x, y)] for x in bases for y in bases], bases, params, "jac",
                 batched=False, jacobian=True)
    obs = lower_neuron_exprs([network.observables[n] for n in obs_names], bases, obs_params,
                 "observables", batched=True)
    # One function per observable too, so that one undefined at a state (0/0) does not
    # take the others with it on the mpmath path, where division by zero raises.
    each = tuple(lower_neuron_exprs([network.observables[n]], bases, obs_params, "observable",
                                    batched=True) for n in obs_names)
    return CompiledFlow(tuple(map(str, params)), rhs, jac, obs_names,
                        tuple(map(str, obs_params)), obs, each)


def named_values(model) -> dict:
    """The model's hyperparameter values by symbol name (what generated sources take).

    A model with ``named_symbol_values()`` gives them by name itself, so that a lowering
    read from the disk cache runs without sympy."""
    if hasattr(model, "named_symbol_values"):
        return dict(model.named_symbol_values())
    by_symbol = model.symbol_values()
    values = {str(k): v for k, v in by_symbol.items()}
    if len(values) != len(by_symbol):
        raise ValueError(f"{type(model).__name__}: two hyperparameter symbols share a name")
    return values


class IndexedLoweredFlow(LoweredFlow):
    r"""Numeric callables of a gradient flow over one neuron index, for one model instance
    (``notation == "indexed"``).

    Attributes
    ----------
    state_names : tuple of str
        Names of the state arrays, in packing order.
    sizes : dict
        Length of each state array (the width).
    rhs(t, y), jac(t, y)
        float64 right-hand side and Jacobian on the packed state (``solve_ivp``'s
        signature).
    rhs_mp(t, y)
        The same right-hand side on an object array of ``mpmath.mpf``.
    """

    notation: ClassVar[str] = "indexed"

    def __init__(self, flow, model, compiled: CompiledFlow | None = None, derive=None,
                 state_names: tuple | None = None):
        # From the disk cache: ``compiled`` and ``state_names`` given, ``flow`` None and
        # derived by ``derive()`` only when asked for (high precision, heyoka).
        names = tuple(b.name for b in flow.network.params) if flow is not None \
            else tuple(state_names)
        self._layout(flow, derive, model, names, {n: (model.width,) for n in names})
        values = named_values(model)
        c = self.compiled = _compiled(flow) if compiled is None else compiled
        rhs_src, jac_src, obs_src, obs_each = c.rhs, c.jac, c.obs, c.each
        self.observable_names = c.obs_names
        self.param_values = tuple(values[p] for p in c.params)
        self._obs_values = tuple(values[p] for p in c.obs_params)
        self.sources = {"rhs": rhs_src.source, "jac": jac_src.source,
                        "observables": obs_src.source}
        ns = NUMPY_NAMESPACE
        self._rhs = rhs_src.function(ns)
        # a source with array temporaries keeps them in buffers between calls
        self._buffers = ThreadBuffers() if "_b=None" in rhs_src.source else None
        self._jac = jac_src.function(ns)
        self._obs = obs_src.function(ns)
        mns = MPMATH_NAMESPACE
        self._rhs_mp = rhs_src.function(mns)
        self._obs_mp = obs_src.function(mns)
        self._obs_mp_each = [src.function(mns) for src in obs_each]

    @property
    def bases(self) -> tuple:
        return self.flow.network.params

    @property
    def param_symbols(self) -> tuple:
        """The hyperparameter symbols, in the order of :attr:`param_values`."""
        by_name = {str(p): p for p in _parameters(self.flow.rhs.values())}
        return tuple(by_name[n] for n in self.compiled.params)

    def rhs(self, t, y):
        # The generated code writes each block into its slice of the result (out=).
        # complex states too (complex-step derivatives of the rhs)
        out = np.empty(self.size, dtype=y.dtype if y.dtype.kind == "c" else float)
        slices = self._slice_list
        if self._buffers is None:
            self._rhs(*[y[s] for s in slices], *self.param_values, [out[s] for s in slices])
        else:
            self._rhs(*[y[s] for s in slices], *self.param_values, [out[s] for s in slices],
                      self._buffers.get(y.dtype.char))
        return out

    def jac(self, t, y):
        blocks = self._jac(*(y[s] for s in self.slices.values()), *self.param_values)
        n = len(self.state_names)
        out = np.zeros((self.size, self.size))
        slices = list(self.slices.values())
        for (a, b), block in zip(itertools.product(range(n), range(n)), blocks):
            out[slices[a], slices[b]] = block
        return out

    def rhs_mp(self, t, y, values=None):
        values = self.param_values if values is None else values
        out = np.empty(self.size, dtype=object)
        self._rhs_mp(*(y[s] for s in self._slice_list), *values,
                     [out[s] for s in self._slice_list])
        return out

    @staticmethod
    def _observable_mp_rows(g, arrays, vals):
        """One observable on the mpmath path, time by time; NaN where it is undefined
        (the alignment of a zero vector), as in float64."""
        import mpmath  # the mpmath path only: a float64 run never imports it

        try:
            return g(*arrays, *vals)[0]
        except ZeroDivisionError:
            out = np.empty(arrays[0].shape[:-1], dtype=object)
            for i in np.ndindex(out.shape):
                try:  # one time at a time, still with its time axis
                    out[i] = np.asarray(g(*(a[i][None] for a in arrays), *vals)[0]).ravel()[0]
                except ZeroDivisionError:
                    out[i] = mpmath.nan
            return out

    def observables(self, states: dict, values=None) -> dict:
        """Observables on states of shape (time, width), or any leading shape (one state
        too): one array per observable, of the leading shape."""
        shape = np.shape(states[self.state_names[0]])[:-1]
        # The generated source has one leading (time) axis.
        arrays = [np.asarray(states[n]).reshape((-1, self.model.width))
                  for n in self.state_names]
        mp = any(a.dtype == object for a in arrays)
        f = self._obs_mp if mp else self._obs
        vals = self._obs_values if values is None else values
        try:
            outs = f(*arrays, *vals)
        except ZeroDivisionError:
            if not mp:
                raise
            outs = [self._observable_mp_rows(g, arrays, vals) for g in self._obs_mp_each]
        rows = arrays[0].shape[:1]
        return {name: np.broadcast_to(np.asarray(o, dtype=object if mp else float),
                                      rows).reshape(shape).copy()
                for name, o in zip(self.observable_names, outs)}


# ``from exactdyn.numeric.lowering import LoweredFlow`` (imported above) is the shared base,
# :class:`exactdyn.numeric.LoweredFlow`: ``isinstance(x, LoweredFlow)`` holds for every
# lowered flow, and ``LoweredFlow(flow, model)`` still gives this class for a one-index flow
# (the base's constructor picks the notation's subclass). The one-index class alone is
# :class:`IndexedLoweredFlow` (``low.notation == "indexed"``).
