r"""Closed forms supplied with a user-defined :class:`~exactdyn.Network`.

A :class:`~exactdyn.models.network.ClosedForm` gives each parameter at time :math:`t` and
neuron :math:`j` as a sympy expression in :math:`t`, the hyperparameters and the initial
state. It is checked two ways:

- symbolically (:class:`NetworkClosedForm`): the residual
  :math:`\tfrac{d}{dt}\theta_{b,j}(t) - \mathrm{rhs}_b(\theta(t))` of the *derived* flow
  simplifies to 0, and :math:`\theta_{b,j}(0)` equals the initial value;
- numerically (:func:`exactdyn.verify`): the closed form, lowered with the same code
  printer as the flow (reductions over the initial state become dot products), against
  the integrator in float64 and at ``precision=N``.

A network over several index kinds (``indices={i: d, k: D, s: n}``) gives each parameter's
solution at its own declared indices, e.g. :math:`W_{ik}(t)`; the residual is taken at the
flow's free indices :math:`(i', k')`, every parameter entry of the derived right-hand side
(free, or bound by a reduction) replaced by its solution at that entry's indices (the
solution's own reductions renamed apart first, so none captures an index), then put in the
canonical form of :func:`~exactdyn.symbolic.indexed_flow.canonical` (reductions split,
constants pulled out, bound indices named by height) before reductions free of :math:`t`
are named as constants and the rest simplified. The numeric evaluation uses the flow's
indexed printer (:func:`~exactdyn.numeric.multi_index.lower_network_exprs`) with the initial
arrays in place of the state.
"""

from __future__ import annotations

from types import SimpleNamespace

import mpmath
import numpy as np
import sympy as sp

from ..flows import lower
from ..models.network import NetworkModel, T
from ..numeric.codegen import MPMATH_NAMESPACE, NUMPY_NAMESPACE
from ..numeric.lowering import _parameters, lower_neuron_exprs
from ..numeric.multi_index import lower_network_exprs
from ..symbolic.flow import DerivationStep, derive_gradient_flow
from ..symbolic.indexed_flow import canonical, derive_indexed_flow
from ..symbolic.sums import NEURON_INDEX, normalize
from ..trajectory import Trajectory
from .checks import ProvenSteps


def _require(model):
    cf = model.definition.closed_form
    if cf is None:
        raise ValueError(f"the network {model.name!r} has no closed form: pass "
                         "closed_form=exactdyn.ClosedForm(...) to exactdyn.Network")
    return cf


class NetworkClosedForm(ProvenSteps):
    """The user's closed form with its proofs against the derived flow."""

    def __init__(self, network):
        self.network = network
        self.cf = network.closed_form
        self.t = T
        self._proofs = None

    def equations(self) -> list:
        if self.network.multi_index:
            own = self.network.symbolic_network().param_indices
            return [sp.Eq(b[own[b]], self.cf.solution[b], evaluate=False)
                    for b in self.network.params]
        j = NEURON_INDEX
        return [sp.Eq(sp.Function(b.name)(self.t).subs(sp.Function(b.name)(self.t), b[j]),
                      self.cf.solution[b], evaluate=False) for b in self.network.params]

    def _reductions(self, expr, moves):
        """``expr`` with every parameter entry (free or inside a reduction) replaced by the
        closed form at that index."""
        moved = expr.xreplace({a: moves[a.base].xreplace({NEURON_INDEX: a.indices[0]})
                               for a in expr.atoms(sp.Indexed) if a.base in moves})
        return moved.replace(lambda e: isinstance(e, sp.Sum),
                             lambda e: normalize(sp.Sum(sp.expand(e.function), *e.limits)))

    @property
    def proofs(self) -> list:
        if self._proofs is None:
            self._proofs = self._multi_index_proofs() if self.network.multi_index \
                else self._one_index_proofs()
        return self._proofs

    def _initial_step(self, b, at0, entry: str, initial: str) -> DerivationStep:
        return DerivationStep(
            f"Initial value of {b.name}", sp.Eq(sp.Symbol(f"{entry}(0) - {initial}"), at0),
            "Set t = 0 in the closed form.", proven=bool(at0 == 0))

    @staticmethod
    def _residual_step(b, lhs, rhs, key, entry: str, how: str) -> DerivationStep:
        """The step ``d/dt θ_b(t) - rhs_b(θ(t))``, simplified with every reduction named by
        a new symbol (``key``: its canonical form, so that equal reductions share one name):
        simplification then works on a plain expression in t, and a residual that vanishes
        with the reductions opaque vanishes."""
        names: dict = {}

        def constants(expr):
            found = {r: key(r) for r in expr.atoms(sp.Sum)}
            for canon in sorted(set(found.values()), key=sp.default_sort_key):
                names.setdefault(canon, sp.Dummy(f"S{len(names)}"))
            return expr.xreplace({r: names[c] for r, c in found.items()})

        res = sp.simplify(sp.together(constants(lhs) - constants(rhs)))
        back = {v: k for k, v in names.items()}
        return DerivationStep(
            f"Closed form solves the flow of {b.name}",
            sp.Eq(sp.Symbol(f"\\dot {b.name}_{{{entry}}}(t) - \\mathrm{{rhs}}_{{{b.name}}}"),
                  res.xreplace(back)), how, proven=bool(res == 0))

    def _one_index_proofs(self) -> list:
        net = self.network.symbolic_network()
        flow = derive_gradient_flow(net)
        sol = self.cf.solution
        steps = []
        for b in net.params:
            b0 = self.cf.initial[b]
            at0 = sp.simplify(sol[b].subs(self.t, 0) - b0[NEURON_INDEX])
            steps.append(self._initial_step(b, at0, f"{b.name}_j", f"{b0.name}_j"))
        how = ("Substitute the closed form into the derived per-neuron flow (reductions "
               "included) and simplify.")
        for b in net.params:
            # One name per reduction, whatever its bound index is called (normalized).
            steps.append(self._residual_step(b, normalize(sp.diff(sol[b], self.t)),
                                             self._reductions(flow.rhs[b], sol), normalize,
                                             "j", how))
        return steps

    def _multi_index_proofs(self) -> list:
        net = self.network.symbolic_network()
        flow = derive_indexed_flow(net)
        sol = self.cf.solution
        own = net.param_indices

        def at(base, indices):
            """The solution of ``base`` at ``indices``, its reductions renamed apart."""
            renamed = sol[base].replace(lambda e: isinstance(e, sp.Sum), _renamed_apart)
            return renamed.xreplace(dict(zip(own[base], indices)))

        steps = []
        for b in net.params:
            b0 = self.cf.initial[b]
            at0 = sp.simplify(canonical(sol[b].subs(T, 0) - b0[own[b]]))
            text = ", ".join(map(str, own[b]))
            steps.append(self._initial_step(b, at0, f"{b.name}[{text}]", f"{b0.name}[{text}]"))
        how = ("Substitute the closed form into the derived flow at the free indices, every "
               "parameter entry (free or inside a reduction) at its own indices, and "
               "simplify (reductions in canonical form).")
        for b in net.params:
            free = tuple(net.free_index(ix) for ix in own[b])
            lhs = canonical(sp.diff(at(b, free), T))
            rhs = flow.rhs[b]
            rhs = canonical(rhs.xreplace({e: at(e.base, e.indices) for e in rhs.atoms(sp.Indexed)
                                          if e.base in sol}))
            steps.append(self._residual_step(b, lhs, rhs, canonical,
                                             "".join(map(str, free)), how))
        return steps


def _renamed_apart(s: sp.Sum) -> sp.Sum:
    """``s`` with each bound index renamed to a new symbol of its own (an integer), so that
    substituting an index of the outer expression into it captures nothing."""
    fresh = {lim[0]: sp.Dummy(str(lim[0]), integer=True) for lim in s.limits}
    return sp.Sum(s.function.xreplace(fresh),
                  *[(fresh[idx], lo, hi) for idx, lo, hi in s.limits])



def closed_form_network(model) -> NetworkClosedForm:
    _require(model)
    return NetworkClosedForm(model.definition)


def _compiled(network):
    """The closed form lowered once per network: the state at t from the initial state."""
    key = "_closed_form_source"
    if getattr(network, key, None) is None:
        cf = network.closed_form
        init_bases = tuple(cf.initial[b] for b in network.params)
        exprs = [cf.solution[b] for b in network.params]
        params = tuple(p for p in _parameters(exprs) if p != T)
        src = lower_neuron_exprs(exprs, init_bases, params + (T,), "closed_form", batched=False)
        object.__setattr__(network, key, (src, params))
    return getattr(network, key)


def _compiled_multi_index(network):
    """The closed form of a network over several index kinds, lowered once per network by
    the flow's indexed printer: ``closed_form(*initial arrays, *data arrays, *scalars)``,
    each solution at its parameter's free indices (its output axes in ``out_labels``)."""
    key = "_closed_form_source"
    if getattr(network, key, None) is None:
        net = network.symbolic_network()
        cf = network.closed_form
        # The printer reads the initial arrays where it reads the state of the flow.
        view = SimpleNamespace(params=tuple(cf.initial[b] for b in net.params), data=net.data,
                               kinds=net.kinds, indices=net.indices)
        exprs = [cf.solution[b].xreplace({ix: net.free_index(ix) for ix in
                                          net.param_indices[b]}) for b in net.params]
        object.__setattr__(network, key, lower_network_exprs(view, exprs, "closed_form"))
    return getattr(network, key)


def _multi_index_rows(model, times, mp: bool) -> list:
    """Packed states of the closed form of a multi-index network at ``times`` (mpmath
    numbers at the current precision if ``mp``)."""
    src = _compiled_multi_index(model.definition)
    net = model.definition.symbolic_network()
    shapes = model.state_shapes()
    kinds = [tuple(ix.name for ix in net.param_indices[b]) for b in net.params]
    n_arrays = len(net.params) + len(net.data)
    scalars = model.scalar_values()
    number = mpmath.mpf if mp else float
    as_array = np.vectorize(mpmath.mpf, otypes=[object]) if mp else \
        (lambda a: np.asarray(a, dtype=float))
    arrays = [as_array(a) for a in model.initial_state().values()] + \
        [as_array(model.data_arrays()[name]) for name in net.data]
    f = src.function(MPMATH_NAMESPACE if mp else NUMPY_NAMESPACE)
    rows = []
    for tv in times:
        values = [number(float(tv)) if name == str(T) else number(scalars[name])
                  for name in src.arg_names[n_arrays:]]
        parts = []
        for out, labels, want, name in zip(f(*arrays, *values), src.out_labels, kinds,
                                           model.state_names):
            # An output without some axis of its parameter (a solution constant along an
            # index) gets that axis back, in the parameter's order.
            out = np.asarray(out, dtype=object if mp else float)
            out = out.transpose([labels.index(k) for k in want if k in labels])
            out = out.reshape(tuple(n if k in labels else 1 for k, n in
                                    zip(want, shapes[name])))
            parts.append(np.broadcast_to(out, shapes[name]).ravel())
        rows.append(np.concatenate(parts))
    return rows


def _one_index_rows(model, times, mp: bool) -> list:
    """Packed states of the closed form of a one-index network at ``times``."""
    src, params = _compiled(model.definition)
    values = model.symbol_values()
    missing = [p for p in params if p not in values]
    if missing:
        raise ValueError(f"closed form of {model.name}: no value for {missing}")
    init = list(model.initial_state().values())
    if not mp:
        f = src.function(NUMPY_NAMESPACE)
        vals = [values[p] for p in params]
        return [np.concatenate([np.broadcast_to(np.asarray(x, float), (model.width,))
                                for x in f(*init, *vals, float(tv))]) for tv in times]
    f = src.function(MPMATH_NAMESPACE)
    init_mp = [np.array([mpmath.mpf(float(x)) for x in a], dtype=object) for a in init]
    vals = [mpmath.mpf(values[p]) for p in params]
    return [np.concatenate([np.broadcast_to(np.asarray(x, dtype=object), (model.width,))
                            for x in f(*init_mp, *vals, mpmath.mpf(float(tv)))])
            for tv in times]


def exact_network(model: NetworkModel, times: np.ndarray, precision: int | None = None):
    """The user's closed form of ``model`` at ``times``, as a :class:`Trajectory`."""
    _require(model)
    rows = _multi_index_rows if model.definition.multi_index else _one_index_rows
    lowered = lower(model)
    if precision is None:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            ys = np.array(rows(model, times, False), dtype=float).reshape(len(times), -1)
        if not np.all(np.isfinite(ys)):
            raise ValueError(f"the closed form of {model.name} is not finite in float64 at "
                             "some time; evaluate it with precision=")
        state = lowered.unpack(ys)
        obs = lowered.observables({k: np.array(v) for k, v in state.items()})
        t_out = np.asarray(times, dtype=float).copy()
    else:
        with mpmath.workdps(precision + 10):
            ys = np.array(rows(model, times, True), dtype=object).reshape(len(times), -1)
            state = {k: np.array(v) for k, v in lowered.unpack(ys).items()}
            obs = lowered.observables(state, values=tuple(
                np.vectorize(mpmath.mpf, otypes=[object])(v) if isinstance(v, np.ndarray)
                else mpmath.mpf(v) for v in lowered._obs_values))
        with mpmath.workdps(precision):
            rnd = np.frompyfunc(lambda x: +x, 1, 1)
            state = {k: rnd(v) for k, v in state.items()}
            obs = {k: rnd(v) for k, v in obs.items()}
            t_out = np.array([mpmath.mpf(float(x)) for x in times], dtype=object)
    meta = {"model": model.name, "params": model.params, "method": "closed-form",
            "rtol": None, "atol": None, "precision": precision}
    return Trajectory(t_out, {k: np.asarray(v) for k, v in state.items()}, obs, meta)


def _register():
    from . import register_closed_form

    register_closed_form(NetworkModel, exact_network, closed_form_network, compare_state=True)


_register()
