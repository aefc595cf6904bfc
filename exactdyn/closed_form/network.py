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
"""

from __future__ import annotations

import mpmath
import numpy as np
import sympy as sp

from ..flows import lower
from ..models.network import NetworkModel, T
from ..numeric.codegen import MPMATH_NAMESPACE, NUMPY_NAMESPACE
from ..numeric.lowering import _parameters, lower_neuron_exprs
from ..symbolic.flow import DerivationStep, derive_gradient_flow
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
        if self._proofs is not None:
            return self._proofs
        net = self.network.symbolic_network()
        flow = derive_gradient_flow(net)
        sol = self.cf.solution
        steps = []
        for b in net.params:
            b0 = self.cf.initial[b]
            at0 = sp.simplify(sol[b].subs(self.t, 0) - b0[NEURON_INDEX])
            steps.append(DerivationStep(
                f"Initial value of {b.name}",
                sp.Eq(sp.Symbol(f"{b.name}_j(0) - {b0.name}_j"), at0),
                "Set t = 0 in the closed form.", proven=bool(at0 == 0)))
        # Reductions over the initial state are constants of the residual: name them, so
        # that simplification works on a plain expression in t.
        names = {}

        def constants(expr):
            # One name per reduction, whatever its bound index is called (normalized).
            found = {r: normalize(r) for r in expr.atoms(sp.Sum)}
            for canon in sorted(set(found.values()), key=sp.default_sort_key):
                names.setdefault(canon, sp.Dummy(f"S{len(names)}"))
            return expr.xreplace({r: names[c] for r, c in found.items()})

        for b in net.params:
            lhs = constants(normalize(sp.diff(sol[b], self.t)))
            rhs = constants(self._reductions(flow.rhs[b], sol))
            res = sp.simplify(sp.together(lhs - rhs))
            ok = res == 0
            back = {v: k for k, v in names.items()}
            steps.append(DerivationStep(
                f"Closed form solves the flow of {b.name}",
                sp.Eq(sp.Symbol(f"\\dot {b.name}_j(t) - \\mathrm{{rhs}}_{{{b.name}}}"),
                      res.xreplace(back)),
                "Substitute the closed form into the derived per-neuron flow (reductions "
                "included) and simplify.", proven=bool(ok)))
        self._proofs = steps
        return steps



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


def exact_network(model: NetworkModel, times: np.ndarray, precision: int | None = None):
    """The user's closed form of ``model`` at ``times``, as a :class:`Trajectory`."""
    _require(model)
    src, params = _compiled(model.definition)
    values = model.symbol_values()
    missing = [p for p in params if p not in values]
    if missing:
        raise ValueError(f"closed form of {model.name}: no value for {missing}")
    init = [a for a in model.initial_state().values()]
    lowered = lower(model)
    if precision is None:
        f = src.function(NUMPY_NAMESPACE)
        vals = [values[p] for p in params]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            rows = [np.concatenate([np.broadcast_to(np.asarray(x, float), (model.width,))
                                    for x in f(*init, *vals, float(tv))]) for tv in times]
        ys = np.array(rows, dtype=float).reshape(len(times), -1)
        if not np.all(np.isfinite(ys)):
            raise ValueError(f"the closed form of {model.name} is not finite in float64 at "
                             "some time; evaluate it with precision=")
        state = lowered.unpack(ys)
        obs = lowered.observables({k: np.array(v) for k, v in state.items()})
        t_out = np.asarray(times, dtype=float).copy()
    else:
        f = src.function(MPMATH_NAMESPACE)
        with mpmath.workdps(precision + 10):
            init_mp = [np.array([mpmath.mpf(float(x)) for x in a], dtype=object) for a in init]
            vals = [mpmath.mpf(values[p]) for p in params]
            rows = []
            for tv in times:
                parts = f(*init_mp, *vals, mpmath.mpf(float(tv)))
                rows.append(np.concatenate([np.broadcast_to(np.asarray(x, dtype=object),
                                                            (model.width,)) for x in parts]))
            ys = np.array(rows, dtype=object).reshape(len(times), -1)
            state = {k: np.array(v) for k, v in lowered.unpack(ys).items()}
            obs = lowered.observables(state, values=tuple(mpmath.mpf(v) for v in
                                                          lowered._obs_values))
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
