r"""Lowering the flow of a network over several index kinds (:class:`MultiIndexLoweredFlow`).

The right-hand sides derived by :mod:`exactdyn.symbolic.indexed_flow` (a user's
:class:`~exactdyn.Network` declared with ``indices=``) are printed by the one indexed
printer, :mod:`exactdyn.numeric.indexed`: each declared index is an axis kind, in the
declared canonical order, so :math:`W_{ik}` is the array ``W`` of shape (d, D), the data
:math:`X_{sk}` the array ``X`` of shape (n, D), and a reduction
:math:`\sum_k W_{ik}X_{sk}` one matrix product ``W @ X.T`` (``einsum`` beyond two operands).
The data arrays are arguments of the generated functions, like the state. The same source
runs on float64 (and complex: the complex-step Jacobian-vector products of
:mod:`exactdyn.descent`) and on object arrays of ``mpmath.mpf``.

For ``precision=N`` the flow is unrolled entry by entry into the scalar Taylor program of
:mod:`exactdyn.numeric.taylor` (every reduction expanded, the data substituted as exact
binary numbers): the cost grows with the number of state entries times the size of the
reductions, meant for the small instances that high precision serves.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from types import SimpleNamespace
from typing import ClassVar

import mpmath
import numpy as np
import sympy as sp

from ..symbolic.sums import NEURON_INDEX
from .buffers import ThreadBuffers
from .codegen import MPMATH_NAMESPACE, NUMPY_NAMESPACE, CompiledExpressions
from .indexed import TIME, _Lowerer, lower_indexed
from .lowered import LoweredFlow


class _NetworkLowerer(_Lowerer):
    """The indexed printer over a network's declared index kinds, with reductions over
    several indices (sympy merges directly nested sums into one ``Sum``): all but the
    outermost index reduced first, then the outermost as a sum over its axis."""

    def reduce(self, s: sp.Sum):
        if len(s.limits) == 1:
            return super().reduce(s)
        inner = sp.Sum(s.function, *s.limits[:-1])
        code, labels = self.lower(inner)
        kind = self.kinds[s.limits[-1][0]]
        if kind not in labels:
            raise NotImplementedError(f"summand of {s} does not depend on its index")
        return self.emit(f"np.sum({code}, axis={labels.index(kind)})",
                         tuple(k for k in labels if k != kind))


def _lowerer(network):
    """A printer whose axis kinds are the network's declared indices (time first)."""
    order = (TIME,) + tuple(ix.name for ix, _size in network.indices)
    letters = dict(zip(order, string.ascii_lowercase, strict=False))
    return type("_Lowerer", (_NetworkLowerer,), {"order": order, "letters": letters})


def lower_network_exprs(network, exprs, func_name, batched=False,
                        into=False, free=None, into_labels=None) -> CompiledExpressions:
    r"""Source of ``func_name(*params, *data, *scalars)`` for expressions of ``network``:
    the state arrays, the data arrays, then the scalar symbols used (hyperparameters and
    sizes, by name; ``arg_names`` lists them). ``batched``: the state arrays carry a
    leading time axis (observables of a trajectory); ``into``: see
    :func:`.indexed.lower_indexed`; ``free``: further free index symbol -> kind (a
    per-neuron conserved quantity's ``j``), each an axis of the result; ``into_labels``:
    the axis kinds of each output array (with ``into``)."""
    arrays = tuple(network.params) + tuple(network.data.values())
    kinds = {**network.kinds, **(free or {})}
    return lower_indexed(list(exprs), arrays, kinds, {}, func_name,
                         lowerer=_lowerer(network),
                         batched=set(network.params) if batched else (), into=into,
                         into_labels=into_labels)


@dataclass(frozen=True)
class MultiIndexCompiled:
    """The generated sources of a multi-index flow (names and text only: storable)."""

    rhs: CompiledExpressions
    obs_names: tuple
    obs: CompiledExpressions
    each: tuple


_COMPILED: dict = {}


def compile_network_flow(flow) -> MultiIndexCompiled:
    """The sources of ``flow`` (an :class:`~exactdyn.symbolic.indexed_flow.IndexedGradientFlow`),
    generated once per flow."""
    if id(flow) in _COMPILED:
        return _COMPILED[id(flow)][1]
    net = flow.network
    # A right-hand side may be constant along an index of its parameter (dw_pk/dt =
    # c_p - sum_k w_pk): the output's axes are given, so that it is broadcast.
    rhs = lower_network_exprs(net, [flow.rhs[b] for b in net.params], "rhs", into=True,
                              into_labels=[tuple(ix.name for ix in net.param_indices[b])
                                           for b in net.params])
    names = tuple(net.observables)
    exprs = [net.observables[n] for n in names]
    obs = lower_network_exprs(net, exprs, "observables", batched=True)
    each = tuple(lower_network_exprs(net, [e], "observable", batched=True) for e in exprs)
    out = MultiIndexCompiled(rhs, names, obs, each)
    _COMPILED[id(flow)] = (flow, out)
    return out


class MultiIndexLoweredFlow(LoweredFlow):
    r"""Numeric callables of a multi-index flow for one model: ``rhs(t, y)`` (float64 or
    complex), ``rhs_mp(t, y)`` (``mpmath.mpf`` objects), ``observables(states)`` and the
    arbitrary-precision ``taylor_engine(order)``. ``jac`` is ``None``: implicit methods
    estimate the Jacobian by differences, and Jacobian-vector products use the complex step.
    """

    notation: ClassVar[str] = "multi_index"

    jac = None

    def __init__(self, flow, model, compiled: MultiIndexCompiled | None = None, derive=None,
                 state_names: tuple | None = None):
        names = tuple(b.name for b in flow.network.params) if flow is not None \
            else tuple(state_names)
        shapes = model.state_shapes()
        self._layout(flow, derive, model, names, shapes)
        self.compiled = c = compile_network_flow(flow) if compiled is None else compiled
        self.observable_names = c.obs_names
        self.sources = {"rhs": c.rhs.source, "observables": c.obs.source}
        self._data = model.data_arrays()
        scalars = model.scalar_values()
        # What each generated function takes after the state arrays: data, then scalars.
        self.param_values = self._arguments(c.rhs, scalars)
        self._obs_values = self._arguments(c.obs, scalars)
        self._each_values = [self._arguments(e, scalars) for e in c.each]
        ns, mns = NUMPY_NAMESPACE, MPMATH_NAMESPACE
        self._rhs, self._rhs_mp = c.rhs.function(ns), c.rhs.function(mns)
        # a source with array temporaries keeps them in buffers between calls
        self._buffers = ThreadBuffers() if "_b=None" in c.rhs.source else None
        self._obs, self._obs_mp = c.obs.function(ns), c.obs.function(mns)
        self._obs_mp_each = [e.function(mns) for e in c.each]

    def _arguments(self, src: CompiledExpressions, scalars: dict) -> tuple:
        rest = src.arg_names[len(self.state_names):]
        rest = rest[:-1] if rest and rest[-1] == "_out" else rest
        return tuple(self._data[a] if a in self._data else scalars[a] for a in rest)

    def _split(self, y):
        return [y[s].reshape(self.shapes[n]) for n, s in self.slices.items()]

    def rhs(self, t, y):
        out = np.empty(self.size, dtype=y.dtype if y.dtype.kind == "c" else float)
        views = [out[s].reshape(self.shapes[n]) for n, s in self.slices.items()]
        if self._buffers is None:
            self._rhs(*self._split(y), *self.param_values, views)
        else:
            self._rhs(*self._split(y), *self.param_values, views,
                      self._buffers.get(y.dtype.char))
        return out

    def rhs_mp(self, t, y, values=None):
        values = self.param_values if values is None else values
        out = np.empty(self.size, dtype=object)
        views = [out[s].reshape(self.shapes[n]) for n, s in self.slices.items()]
        self._rhs_mp(*self._split(y), *values, views)
        return out

    def observables(self, states: dict, values=None) -> dict:
        """Observables on states with a leading (time) shape: one array per observable."""
        first = self.state_names[0]
        lead = np.shape(states[first])[:np.ndim(states[first]) - len(self.shapes[first])]
        arrays = [np.asarray(states[n]).reshape((-1,) + self.shapes[n])
                  for n in self.state_names]
        mp = any(a.dtype == object for a in arrays)
        if mp:
            values = tuple(np.vectorize(mpmath.mpf, otypes=[object])(v)
                           if isinstance(v, np.ndarray)
                           else v for v in self._obs_values)
            outs = self._obs_mp(*arrays, *values)
        else:
            outs = self._obs(*arrays, *self._obs_values)
        rows = arrays[0].shape[:1]
        return {name: np.broadcast_to(np.asarray(o, dtype=object if mp else float),
                                      rows).reshape(lead).copy()
                for name, o in zip(self.observable_names, outs)}

    # ---- arbitrary precision ----------------------------------------------------------
    def _unrolled_program(self):
        return _unrolled(self.flow, self.state_names, self.shapes, self.slices,
                         {name: a.shape for name, a in self._data.items()},
                         self.model.scalar_values())

    def heyoka_view(self) -> SimpleNamespace:
        """The flow as :func:`exactdyn.numeric.highprec.heyoka_system` reads a one-index
        flow: the same unrolled program as :meth:`taylor_engine` (one width-1 "vector" per
        state entry, in packing order, the sizes substituted), whose hyperparameters and
        data entries are the runtime parameters (``param_symbols``, ``param_values``), so
        one compiled heyoka integrator serves every data set of the same shapes."""
        unrolled = self._unrolled_program()
        net = self.flow.network
        scalars = self.model.scalar_values()
        symbols = list(net.hyper.values())
        values = [float(scalars[str(sym)]) for sym in symbols]
        for (name, idx), sym in unrolled.data_symbols.items():
            symbols.append(sym)
            values.append(float(self._data[name][idx]))
        return SimpleNamespace(flow=unrolled.view, model=SimpleNamespace(width=1),
                               param_symbols=tuple(symbols), param_values=tuple(values))

    def taylor_engine(self, order: int, fixed_point: bool = False, native_dtype=None):
        """A Taylor engine of the flow unrolled entry by entry (module docstring); with
        ``fixed_point``, on scaled ``mpz`` where the flow is polynomial, with
        ``native_dtype`` on that numpy float type where it is polynomial (else
        ``mpfr``); call inside the gmpy2 context of the working precision."""
        # Loaded on the high-precision path only (gmpy2 costs the float64 path nothing).
        import gmpy2

        from .taylor import (
            FixedPointEngine,
            NativeFloatEngine,
            TaylorEngine,
            compile_flow,
            is_polynomial,
        )

        net = self.flow.network
        scalars = self.model.scalar_values()
        unrolled = self._unrolled_program()
        values = {sym: gmpy2.mpfr(float(scalars[str(sym)])) for sym in net.hyper.values()}
        values.update({size: gmpy2.mpfr(int(scalars[str(size)])) for _ix, size in net.indices})
        for (name, idx), sym in unrolled.data_symbols.items():
            values[sym] = gmpy2.mpfr(float(self._data[name][idx]))  # exact: binary64
        program = compile_flow(unrolled.view, values, 1, unrolled.slices)
        if native_dtype is not None and is_polynomial(program):
            return NativeFloatEngine(program, order, native_dtype)
        if fixed_point and is_polynomial(program):
            return FixedPointEngine(program, order)
        return TaylorEngine(program, order)


def _unroll_sum(s: sp.Sum) -> sp.Expr:
    """A reduction with integer limits written out term by term (innermost index first)."""
    body = s.function
    for idx, lo, hi in s.limits:
        body = sp.Add(*[body.xreplace({idx: sp.Integer(v)}) for v in range(int(lo), int(hi) + 1)])
    return body


#: (id(flow), state and data shapes) -> (flow, the unrolled program's sympy form); the
#: expansion is the costly part of the high-precision setup, and depends only on the sizes.
_UNROLLED: dict = {}


def _unrolled(flow, state_names, shapes, slices, data_shapes, scalars):
    key = (id(flow), tuple(shapes.items()), tuple(sorted(data_shapes.items())))
    if key in _UNROLLED and _UNROLLED[key][0] is flow:
        return _UNROLLED[key][1]
    net = flow.network
    size_values = {size: sp.Integer(int(scalars[str(size)])) for _ix, size in net.indices}
    j = NEURON_INDEX  # every unrolled entry is a "vector" of width 1 at this index
    data_symbols, data_entries = {}, {}
    for name, base in net.data.items():
        for idx in np.ndindex(data_shapes[name]):
            sym = sp.Symbol(f"_{name}_{'_'.join(map(str, idx))}")
            data_symbols[(name, idx)] = sym
            data_entries[base[idx]] = sym
    entries, bases, flat_slices = {}, [], []
    for n, b in zip(state_names, net.params, strict=True):
        start = slices[n].start
        for flat, idx in enumerate(np.ndindex(shapes[n])):
            fake = sp.IndexedBase(f"_{n}_{'_'.join(map(str, idx))}")
            entries[b[idx]] = fake[j]
            bases.append((b, idx, fake))
            flat_slices.append(slice(start + flat, start + flat + 1))
    rhs = {}
    for b, idx, fake in bases:
        free = [net.free_index(ix) for ix in net.param_indices[b]]
        e = flow.rhs[b].xreplace(dict(zip(free, map(sp.Integer, idx)))).xreplace(size_values)
        # Bottom-up, so an inner reduction is written out before the outer index is set.
        e = e.replace(lambda x: isinstance(x, sp.Sum), _unroll_sum)
        rhs[fake] = e.xreplace(entries).xreplace(data_entries)
    view = SimpleNamespace(network=SimpleNamespace(params=tuple(f for *_r, f in bases),
                                                   name=net.name), rhs=rhs)
    out = SimpleNamespace(view=view, slices=flat_slices, data_symbols=data_symbols)
    _UNROLLED[key] = (flow, out)
    return out
