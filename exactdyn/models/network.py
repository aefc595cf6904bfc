r"""User-defined networks: a loss written in plain sympy, run through the whole pipeline.

A researcher writes the loss of their network with ``sympy.IndexedBase`` parameters over
one neuron index and explicit reductions ``Sum(..., (i, 0, d - 1))`` — or over several
index kinds with data arrays (``indices={i: d, k: D, s: n}``, ``W[i, k]``, ``X[s, k]``) —
and :class:`Network` checks it and turns it into the package's
:class:`~exactdyn.symbolic.flow.SymbolicNetwork` (or, with several index kinds,
:class:`~exactdyn.symbolic.indexed_flow.IndexedNetwork`), so the gradient flow

.. math:: \dot\theta_{b,j} = -\eta_b\,\frac{\partial L}{\partial \theta_{b,j}}

is derived width-generically (steps recorded), the conserved quantities of declared
symmetries are proven by Noether's argument, and the flow is lowered, integrated in
float64 or at ``precision=N``, verified against a user-supplied closed form, reported and
swept into phase diagrams — like the built-in families.

Example (a diagonal linear network, :math:`\beta = \sum_i (u_i^2 - v_i^2)`)::

    i, d = sympy.symbols("i d", integer=True)
    u, v = sympy.IndexedBase("u"), sympy.IndexedBase("v")
    b = sympy.Symbol("beta_star")
    net = exactdyn.Network("diag_linear", params=[u, v], index=i, width=d,
                           loss=(sympy.Sum(u[i]**2 - v[i]**2, (i, 0, d - 1)) - b)**2 / 2,
                           hyper=[b])
    model = net.from_init({"u": u0, "v": v0}, beta_star=0.5)
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import sympy as sp

from .. import _validation as check
from ..symbolic.flow import DerivationStep, SymbolicNetwork, Symmetry
from ..symbolic.indexed_flow import IndexedNetwork, noether_quantity, tidy_sums
from ..symbolic.sums import NEURON_INDEX, SUM_INDEX, WIDTH, neuron_sum, normalize

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")
#: The time symbol of user-supplied closed forms.
T = sp.Symbol("t", nonnegative=True)


#: Functions with a kink or a jump: their gradient flow is a Filippov system, which the
#: smooth integrators here would step across silently wrong.
NONSMOOTH = (sp.Abs, sp.Max, sp.Min, sp.Heaviside, sp.sign, sp.Piecewise, sp.floor,
             sp.ceiling, sp.frac, sp.DiracDelta)


def _smooth(name: str, expr: sp.Expr) -> None:
    """``ValueError`` naming a non-smooth function of ``expr`` (see :data:`NONSMOOTH`)."""
    found = expr.atoms(*NONSMOOTH)
    if found:
        f = sorted(found, key=sp.default_sort_key)[0]
        raise ValueError(
            f"{name}: {type(f).__name__} ({f}) is not smooth; a user-defined Network is "
            "integrated as a smooth flow, which would step across its kinks silently wrong. "
            "A ReLU / leaky ReLU / abs network is integrated through its kinks when written "
            "over indices= with data arrays, Sum((Sum(a[i]*Max(0, Sum(W[i, k]*X[s, k], "
            "(k, 0, D - 1))), (i, 0, d - 1))/alpha - Y[s])**2, (s, 0, n - 1))/(2*n) "
            "(exactdyn.models.network_kinks), or use exactdyn.TwoLayer (activation='relu')")


def _kinks(loss, params, data_arrays, sizes, rates):
    """The kinked activation of ``loss`` (:func:`exactdyn.models.network_kinks.kinked_structure`),
    None for a smooth loss; the module is imported only when the loss has a kink, so that
    solving smooth networks does not load the kink scheme
    (:func:`exactdyn.flows.numeric_family`)."""
    if not loss.has(*NONSMOOTH):
        return None
    from .network_kinks import kinked_structure

    return kinked_structure(loss, params, data_arrays, sizes, rates)


def _expr(name: str, value) -> sp.Expr:
    """A sympy expression (never a string: user text is not parsed here)."""
    if isinstance(value, str) or not isinstance(value, sp.Basic):
        raise ValueError(f"{name} must be a sympy expression, got {type(value).__name__} "
                         f"{value!r}")
    if not isinstance(value, sp.Expr):
        raise ValueError(f"{name} must be a sympy expression (sympy.Expr), got "
                         f"{type(value).__name__} {value}")
    return value


@dataclass(frozen=True)
class ClosedForm:
    r"""A user-supplied closed form of a :class:`Network`'s flow.

    Parameters
    ----------
    solution : dict
        Each parameter base -> its value at time ``t`` (:data:`T`, or the symbol given)
        and neuron ``index``: a sympy expression in ``t``, the hyperparameters, and the
        initial state written with the bases of ``initial``. For a network declared with
        ``indices``: at the parameter's own indices (``W[i, k]``'s solution in ``i``,
        ``k``), the initial arrays at their parameter's indices, and the data arrays.
    initial : dict
        Each parameter base -> the ``IndexedBase`` that stands for its initial value in
        ``solution`` (e.g. ``{u: IndexedBase("u0")}``).
    t : sympy.Symbol
        The time symbol used in ``solution`` (default ``Symbol("t", nonnegative=True)``).
    """

    solution: dict
    initial: dict
    t: sp.Symbol = T


class Network:
    r"""A network written by the user in plain sympy; see the module docstring.

    Parameters
    ----------
    name : str
        Name of the network (letters, digits, ``_`` and ``-``; starts with a letter).
    params : sequence of sympy.IndexedBase
        The parameters in state order: vectors over the neurons, or, with ``indices``,
        arrays over the declared indices (``W[i, k]``).
    index : sympy.Symbol
        The neuron index used in the loss, observables and symmetries (networks over one
        index; else give ``indices``).
    width : sympy.Symbol
        The width symbol :math:`d`: reductions run over ``(index, 0, width - 1)``.
    indices : dict, optional
        Instead of ``index`` and ``width``: each index symbol -> its size symbol, for
        parameters and data over several index kinds, e.g. ``{i: d, k: D, s: n}`` for
        :math:`a_i`, :math:`W_{ik}`, data :math:`X_{sk}, Y_s`. Every array keeps the order of
        its indices everywhere; the state arrays have one axis per index
        (``W``: d × D; in a Trajectory, time × d × D). The sizes are read from the init
        and the data arrays (:meth:`from_init`). Reductions run over
        ``(index, 0, size - 1)``; a size may also appear in the loss (``1/n``).
    loss : sympy.Expr
        The loss :math:`L(\theta)`: a scalar built from reductions over the neurons.
    hyper : sequence of sympy.Symbol
        Hyperparameters (given values by :meth:`from_init` / :meth:`random_init`).
    rates : dict, optional
        Parameter base -> learning rate :math:`\eta_b` (a positive number or a symbol of
        ``hyper``); default 1 for every parameter.
    symmetries : dict, optional
        Name -> the infinitesimal action of a continuous symmetry, a dict base -> its
        first-order change at neuron ``index`` (e.g. ``{u: v[i], v: u[i]}`` for
        :math:`(u, v) \mapsto (u + s v, v + s u)`), or a pair ``(action, conserved)`` with
        the conserved quantity given. Without one, Noether's argument for the flow
        :math:`\dot\theta = -H\nabla L` gives
        :math:`Q = \tfrac12\sum_b \eta_b^{-1}\sum_i \theta_{b,i}\,(A\theta)_{b,i}`. Both the
        invariance of the loss and :math:`\dot Q = 0` are proven symbolically; a symmetry
        that fails either is reported as not proven. With ``indices``: the action at each
        parameter's own indices (``{a: a[i], W: -W[i, k]}``, the rescaling), or on one
        neuron ``j`` (a new symbol) with a factor ``KroneckerDelta(i, j)``, which gives one
        quantity per neuron (:math:`\tfrac12 a_j^2 - \tfrac12\sum_k W_{jk}^2`); proven when
        :math:`\delta L` simplifies to 0 and :math:`H^{-1}A` is symmetric
        (:mod:`exactdyn.symbolic.indexed_flow`).
    data : sequence of sympy.Symbol or sympy.IndexedBase, optional
        Data: scalar symbols (moments of the data set, a target), given values like
        ``hyper``, and, with ``indices``, arrays (``IndexedBase`` such as ``X[s, k]``,
        ``Y[s]``) whose values :meth:`from_init` takes by name, checked finite and of the
        declared index sizes.
    observables : dict, optional
        Name -> scalar expression (reductions over the neurons), computed along every
        trajectory besides ``loss``.
    closed_form : ClosedForm, optional
        A solution of the flow, checked symbolically (``exactdyn.closed_form(model)``: its
        residual simplifies to 0) and numerically by :func:`exactdyn.verify`. With
        ``indices``, each parameter's solution is written at its own declared indices
        (``W: expr in i, k``) from the initial arrays at those indices (``W0[i, k]``), the
        data arrays, reductions, hyperparameters, sizes and ``t``.
    citation : str
        Where the network comes from (printed in reports).

    Raises
    ------
    ValueError
        For a loss or observable that is not a sympy expression, a parameter missing from
        the loss, a free symbol that is neither a parameter, a hyperparameter nor data, an
        indexed entry outside a reduction, an index not declared, a rate that is not
        positive, or a non-smooth function (``Abs``, ``Max``, ``Heaviside``, ...; see
        :data:`NONSMOOTH`) other than one kinked activation of a pre-activation linear in
        the weights (:mod:`exactdyn.models.network_kinks`).

    Notes
    -----
    A loss over ``indices=`` that applies a ReLU (``Max(0, h)``), a leaky ReLU
    (``Max(h, c*h)``) or ``Abs`` to :math:`h_{is} = \sum_k W_{ik}X_{sk}` in the mean squared
    loss of :math:`f_s = \frac1\alpha\sum_i a_i\sigma(h_{is})` makes a network with kinks
    (:attr:`kinks`): its models are :class:`KinkedNetworkModel`, integrated through the
    kinks with Filippov sliding as :class:`~exactdyn.TwoLayer` is.
    """

    def __init__(self, name: str, params, index=None, width=None, loss=None, hyper=(),
                 rates=None, symmetries=None, data=(), observables=None, closed_form=None,
                 citation: str = "", indices=None):
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"name must be letters, digits, '_' or '-' starting with a "
                             f"letter, got {name!r}")
        self.name = name
        self.params = self._bases(params)
        data = [data] if isinstance(data, (sp.Symbol, sp.IndexedBase)) else list(data)
        arrays = tuple(x for x in data if isinstance(x, sp.IndexedBase))
        if indices is not None:
            if index is not None or width is not None:
                raise ValueError("give either index= and width= (one neuron index) or "
                                 "indices= (several index kinds), not both")
            pairs = self._index_pairs(indices)
            if len(pairs) == 1 and not arrays:  # one index kind: the one-index network
                index, width = pairs[0]
            else:
                self._init_multi(pairs, arrays, loss, hyper, rates, symmetries,
                                 [x for x in data if not isinstance(x, sp.IndexedBase)],
                                 observables, closed_form, citation)
                return
        elif arrays:
            raise ValueError(f"data: {arrays[0]} is an array; declare the index kinds of the "
                             "parameters and data with indices={index: size, ...} (e.g. "
                             "{i: d, k: D, s: n})")
        self.indices = None
        self.data_arrays = ()
        self.kinks = None
        if not isinstance(index, sp.Symbol):
            raise ValueError(f"index must be a sympy Symbol (the neuron index), got {index!r}")
        if not isinstance(width, sp.Symbol):
            raise ValueError(f"width must be a sympy Symbol (the width d), got {width!r}")
        if index == width:
            raise ValueError("index and width must be different symbols")
        self.index, self.width_symbol = index, width
        self._size_symbols = {width}
        self.hyper = self._symbols("hyper", hyper)
        self.data = self._symbols("data", data)
        clash = set(self.hyper) & set(self.data)
        if clash:
            raise ValueError(f"{sorted(map(str, clash))} listed both in hyper and in data")
        names = [b.name for b in self.params] + [str(s) for s in self.hyper + self.data]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"names must be distinct across params, hyper and data; "
                             f"repeated: {dup}")
        if "width" in names or "loss" in names:
            raise ValueError("'width' and 'loss' are reserved names")
        self.loss = self._scalar("loss", loss)
        for b in self.params:
            if not self.loss.has(b):
                raise ValueError(f"parameter {b.name!r} does not appear in the loss; every "
                                 "parameter must (remove it, or fix the loss)")
        self.rates = self._rates(rates)
        self.observables = {}
        for key, expr in (observables or {}).items():
            if not isinstance(key, str) or not key.isidentifier() or key == "loss":
                raise ValueError(f"observable names must be identifiers other than 'loss', "
                                 f"got {key!r}")
            self.observables[key] = self._scalar(f"observable {key!r}", expr)
        self.symmetries = self._symmetries(symmetries or {})
        self.closed_form = self._closed_form(closed_form)
        self.citation = str(citation)
        self._symbolic = None

    # ---- several index kinds ------------------------------------------------------------
    @staticmethod
    def _index_pairs(indices) -> list:
        if isinstance(indices, dict):
            pairs = list(indices.items())
        else:
            try:
                pairs = [tuple(p) for p in indices]
            except TypeError:
                raise ValueError(f"indices must be a dict index symbol -> size symbol, got "
                                 f"{indices!r}") from None
        if not pairs:
            raise ValueError("indices must declare at least one index (index -> size symbol)")
        for pair in pairs:
            if len(pair) != 2 or not all(isinstance(x, sp.Symbol) for x in pair):
                raise ValueError(f"indices: each entry must be a sympy Symbol index -> a sympy "
                                 f"Symbol size, got {pair!r}")
        if len({p[0] for p in pairs}) != len(pairs) or set(p[0] for p in pairs) & \
                set(p[1] for p in pairs):
            raise ValueError(f"indices: index symbols must be distinct from each other and "
                             f"from the sizes, got {pairs!r}")
        return pairs

    def _init_multi(self, pairs, arrays, loss, hyper, rates, symmetries, scalar_data,
                    observables, closed_form, citation) -> None:
        self.index = self.width_symbol = None
        self._declared = dict(pairs)
        self._size_symbols = set(self._declared.values())
        self.data_arrays = tuple(arrays)
        self.hyper = self._symbols("hyper", hyper)
        self.data = self._symbols("data", scalar_data)
        clash = set(self.hyper) & set(self.data)
        if clash:
            raise ValueError(f"{sorted(map(str, clash))} listed both in hyper and in data")
        names = [b.name for b in self.params + self.data_arrays] + \
            [str(s) for s in self.hyper + self.data] + [str(s) for s in self._size_symbols]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"names must be distinct across params, data, hyper and index "
                             f"sizes; repeated: {dup}")
        if "width" in names or "loss" in names:
            raise ValueError("'width' and 'loss' are reserved names")
        self._array_indices: dict = {}
        self.loss = self._scalar_multi("loss", loss, kinked=True)
        for b in self.params:
            if b not in self._array_indices:
                raise ValueError(f"parameter {b.name!r} does not appear in the loss; every "
                                 "parameter must (remove it, or fix the loss)")
        for x in self.data_arrays:
            if x not in self._array_indices:
                raise ValueError(f"data array {x.name!r} does not appear in the loss")
        self.rates = self._rates(rates)
        #: The kinked activation read from the loss (None: a smooth network).
        self.kinks = _kinks(self.loss, self.params, self.data_arrays, self._declared,
                            self.rates)
        if self.kinks is not None and observables:
            raise ValueError("observables: a network with kinks is integrated through them "
                             "with the observables loss and output only; drop observables=")
        self.observables = {}
        for key, expr in (observables or {}).items():
            if not isinstance(key, str) or not key.isidentifier() or key == "loss":
                raise ValueError(f"observable names must be identifiers other than 'loss', "
                                 f"got {key!r}")
            self.observables[key] = self._scalar_multi(f"observable {key!r}", expr)
        self.indices = self._canonical_order(pairs)
        self.symmetries = self._symmetries_multi(symmetries or {})
        self.closed_form = self._closed_form_multi(closed_form)
        self.citation = str(citation)
        self._symbolic = None

    def _scalar_multi(self, what: str, expr, allowed=(), kinked: bool = False) -> sp.Expr:
        """Check a scalar expression over several index kinds: declared indices, every
        array entry inside reductions over its indices, one index order per array; smooth
        unless ``kinked`` (the loss: its kinks are read by :func:`_kinks`)."""
        expr = _expr(what, expr)
        if not kinked:
            _smooth(what, expr)
        declared = self._declared
        for s in expr.atoms(sp.Sum):
            for idx, lo, hi in s.limits:
                if idx not in declared:
                    raise ValueError(f"{what}: the reduction over {idx} runs over an index "
                                     f"not declared in indices= ({self._declared_text()})")
                if lo != 0 or sp.simplify(hi - (declared[idx] - 1)) != 0:
                    raise ValueError(f"{what}: the reduction {s} must run over "
                                     f"({idx}, 0, {declared[idx]} - 1)")
        for atom in expr.atoms(sp.Indexed):
            base = atom.base
            if base not in self.params and base not in self.data_arrays:
                raise ValueError(f"{what}: {base} is neither one of the params "
                                 f"({', '.join(b.name for b in self.params)}) nor a data array")
            for ix in atom.indices:
                if ix not in declared:
                    raise ValueError(f"{what}: the index {ix} of {atom} is not declared in "
                                     f"indices= ({self._declared_text()})")
            if len(set(atom.indices)) != len(atom.indices):
                raise ValueError(f"{what}: {atom} repeats an index; each axis of an array "
                                 "needs its own index kind")
            seen = self._array_indices.setdefault(base, tuple(atom.indices))
            if seen != tuple(atom.indices):
                raise ValueError(f"{what}: {base} is used as {base}[{', '.join(map(str, seen))}]"
                                 f" and as {atom}; keep one index order per array")
        loose = expr.free_symbols & (set(declared) - set(allowed))
        if loose:
            ix = sorted(loose, key=str)[0]
            hint = (" (sympy folds a Piecewise into the products and powers around it, out "
                    f"of the Sum over {ix}: write a kinked activation as Max(0, h), Max(h, c*h) "
                    "or Abs(h))") if expr.has(sp.Piecewise) else ""
            raise ValueError(f"{what}: an entry indexed by {ix} stands outside a reduction over "
                             f"{ix}; {what} must be a scalar (use Sum over {ix}){hint}")
        self._known_symbols(what, expr, allowed)
        return tidy_sums(expr)

    def _declared_text(self) -> str:
        return ", ".join(f"{ix}: {size}" for ix, size in self._declared.items())

    def _canonical_order(self, pairs) -> tuple:
        """The declared indices ordered so that every array's indices are in order (a
        topological sort of the arrays' index orders; ties keep the declared order)."""
        before = {ix: set() for ix, _s in pairs}
        for idx in self._array_indices.values():
            for a, b in zip(idx, idx[1:]):
                before[b].add(a)
        order, left = [], [ix for ix, _s in pairs]
        while left:
            ready = [ix for ix in left if before[ix] <= set(order)]
            if not ready:
                arrays = [f"{b}[{', '.join(map(str, idx))}]" for b, idx in
                          self._array_indices.items() if len(idx) > 1]
                raise ValueError(f"the arrays' index orders conflict ({', '.join(arrays)}): "
                                 "no one order of the indices fits every array; transpose "
                                 "one of them")
            order.append(ready[0])
            left.remove(ready[0])
        return tuple((ix, self._declared[ix]) for ix in order)

    def _delta_indices(self, what: str, expr) -> set:
        """Symbols paired with a declared index in a ``KroneckerDelta`` (the neuron ``j`` of
        an action on one neuron): free indices of that kind."""
        out = set()
        for delta in expr.atoms(sp.KroneckerDelta):
            x, y = delta.args
            if y in self._declared and x not in self._declared:
                x, y = y, x
            if x in self._declared and isinstance(y, sp.Symbol) and y not in self._declared:
                if y in self._size_symbols or y in self.hyper or y in self.data:
                    raise ValueError(f"{what}: {delta} pairs the index {x} with {y}, which is "
                                     "a size, hyperparameter or data; use a new symbol")
                out.add(y)
        return out

    def _symmetries_multi(self, symmetries) -> tuple:
        out = []
        shape = SimpleNamespace(sizes=dict(self.indices), param_indices=self._array_indices,
                                rates=self.rates)

        def entry(what, b, e):
            free = self._delta_indices(what, _expr(what, e))
            return self._scalar_multi(what, e, self._array_indices[b] + tuple(free))

        for name, act, conserved in self._symmetry_specs(symmetries, "the parameter's indices",
                                                         entry):
            noether = noether_quantity(shape, act)
            if conserved is None:
                conserved, how = noether, "Q = θᵀH⁻¹Aθ/2 (Noether's argument for gradient flow)."
            else:
                conserved = self._scalar_multi(f"symmetry {name!r}: conserved", conserved)
                how = "Conserved quantity given by the user (proven if it is Noether's Q)."
            out.append(Symmetry(name, f"User-declared symmetry {name}: " + ", ".join(
                f"δ{b.name}[{', '.join(map(str, self._array_indices[b]))}] = {act[b]}"
                for b in act) + ". " + how, act, conserved))
        return tuple(out)

    def _closed_form_multi(self, cf):
        """A closed form over several index kinds: each parameter's solution at its own
        declared indices (``W[i, k]``: an expression in ``i``, ``k``), built from the
        initial arrays (at the indices of their parameter), the data arrays, reductions over
        the declared indices, hyperparameters, sizes and ``t``."""
        if cf is None:
            return None
        initial = self._closed_form_bases(cf)
        indices = {**self._array_indices,
                   **{b0: self._array_indices[b] for b, b0 in initial.items()}}
        sol = {}
        for b, e in cf.solution.items():
            what = f"closed_form[{b.name}]"
            e = _expr(what, e)
            own = self._array_indices[b]
            for s in e.atoms(sp.Sum):
                for idx, lo, hi in s.limits:
                    if idx not in self._declared or lo != 0 or \
                            sp.simplify(hi - (self._declared[idx] - 1)) != 0:
                        raise ValueError(f"{what}: the reduction {s} must run over a declared "
                                         f"index, (index, 0, size - 1) ({self._declared_text()})")
            for atom in e.atoms(sp.Indexed):
                if atom.base in self.params:
                    raise ValueError(f"{what}: {atom} is a parameter; write the solution with "
                                     "the initial values (closed_form.initial) and the data")
                if atom.base not in indices:
                    raise ValueError(f"{what}: {atom.base} is neither an initial value "
                                     f"({', '.join(b0.name for b0 in initial.values())}) nor "
                                     "a data array")
                if tuple(atom.indices) != indices[atom.base]:
                    raise ValueError(f"{what}: write {atom.base} at its declared indices, "
                                     f"{atom.base}[{', '.join(map(str, indices[atom.base]))}], "
                                     f"got {atom}")
            loose = e.free_symbols & (set(self._declared) - set(own))
            if loose:
                ix = sorted(loose, key=str)[0]
                raise ValueError(f"{what}: the index {ix} is neither one of {b.name}'s indices "
                                 f"({', '.join(map(str, own))}) nor summed over")
            self._known_symbols(what, e, {cf.t, *own, *(b0.label for b0 in initial.values())})
            sol[b] = tidy_sums(e.xreplace({cf.t: T}))
        return ClosedForm(sol, initial, T)

    # ---- checks ------------------------------------------------------------------------
    @staticmethod
    def _bases(params) -> tuple:
        if isinstance(params, sp.IndexedBase):
            params = [params]
        try:
            params = tuple(params)
        except TypeError:
            raise ValueError(f"params must be a list of sympy IndexedBase, got {params!r}") \
                from None
        if not params:
            raise ValueError("params must name at least one parameter (a sympy IndexedBase)")
        for b in params:
            if not isinstance(b, sp.IndexedBase):
                raise ValueError(f"params must be sympy IndexedBase objects, got "
                                 f"{type(b).__name__} {b!r}")
        return params

    @staticmethod
    def _symbols(what: str, symbols) -> tuple:
        if isinstance(symbols, sp.Symbol):
            symbols = [symbols]
        out = []
        for s in symbols:
            if isinstance(s, sp.IndexedBase):
                raise ValueError(f"{what}: {s} is an array; user-defined networks take data "
                                 "and hyperparameters as scalar symbols (write the loss "
                                 "through the data's moments)")
            if not isinstance(s, sp.Symbol):
                raise ValueError(f"{what} must be sympy Symbols, got {type(s).__name__} {s!r}")
            out.append(s)
        return tuple(out)

    def _scalar(self, what: str, expr) -> sp.Expr:
        """Check a scalar expression of the network and write it in the package's symbols
        (width :data:`~exactdyn.symbolic.sums.WIDTH`, canonical reductions)."""
        expr = _expr(what, expr)
        _smooth(what, expr)
        for s in expr.atoms(sp.Sum):
            for idx, lo, hi in s.limits:
                if lo != 0 or sp.simplify(hi - (self.width_symbol - 1)) != 0:
                    raise ValueError(f"{what}: the reduction {s} must run over "
                                     f"({idx}, 0, {self.width_symbol} - 1)")
        bound = {lim[0] for s in expr.atoms(sp.Sum) for lim in s.limits}
        for atom in expr.atoms(sp.Indexed):
            if atom.base not in self.params:
                raise ValueError(f"{what}: {atom.base} is not one of the params "
                                 f"({', '.join(b.name for b in self.params)})")
            if len(atom.indices) != 1 or atom.indices[0] not in bound \
                    or atom.indices[0] in expr.free_symbols:
                raise ValueError(f"{what}: {atom} stands outside a reduction over the "
                                 f"neurons; {what} must be a scalar (use Sum over "
                                 f"{self.index})")
        self._known_symbols(what, expr, bound)
        return normalize(expr.xreplace({self.width_symbol: WIDTH}))

    def _known_symbols(self, what, expr, allowed_extra=()) -> None:
        known = set(self.hyper) | set(self.data) | self._size_symbols | set(allowed_extra)
        labels = {b.label for b in self.params + self.data_arrays}
        for s in expr.free_symbols:
            if s in known or s in labels or isinstance(s, sp.Indexed):
                continue  # indexed entries are checked by the caller
            raise ValueError(f"{what}: the free symbol {s} is neither a parameter, a "
                             f"hyperparameter nor data; declare it in hyper= or data=")

    def _rates(self, rates) -> dict:
        rates = dict(rates or {})
        out = {}
        for key in rates:
            if key not in self.params:
                raise ValueError(f"rates: {key!r} is not one of the params")
        for b in self.params:
            r = rates.get(b, sp.Integer(1))
            if isinstance(r, sp.Symbol):
                if r not in self.hyper:
                    raise ValueError(f"rates: the rate of {b.name}, {r}, must be a number or a "
                                     "symbol of hyper")
            else:
                r = sp.nsimplify(check.positive(f"rates[{b.name}]", r), rational=True)
            out[b] = r
        return out

    def _at_free_index(self, what: str, expr) -> sp.Expr:
        """An expression at the free neuron index (symmetry actions, closed forms)."""
        expr = _expr(what, expr)
        return expr.xreplace({self.index: NEURON_INDEX, self.width_symbol: WIDTH})

    def _symmetry_specs(self, symmetries, where: str, entry):
        """``(name, action, conserved or None)`` of each declared symmetry, checked;
        ``entry(what, base, expr)`` checks one entry of an action and gives it as the flow
        uses it, ``where`` says where the entries sit (for the messages)."""
        if not isinstance(symmetries, dict):
            raise ValueError("symmetries must be a dict name -> action (a dict base -> "
                             f"expression at {where}) or (action, conserved)")
        for name, spec in symmetries.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"symmetry names must be non-empty strings, got {name!r}")
            action, conserved = (spec if isinstance(spec, tuple) else (spec, None))
            if not isinstance(action, dict) or not action:
                raise ValueError(f"symmetry {name!r}: the action must be a non-empty dict "
                                 f"base -> expression at {where}")
            act = {}
            for b, e in action.items():
                if b not in self.params:
                    raise ValueError(f"symmetry {name!r}: {b!r} is not one of the params")
                act[b] = entry(f"symmetry {name!r}", b, e)
            yield name, act, conserved

    def _symmetries(self, symmetries) -> tuple:
        out = []

        def entry(what, b, e):
            at = self._at_free_index(what, e)
            self._known_symbols(what, e, {self.index})
            return at

        for name, act, conserved in self._symmetry_specs(symmetries, "the neuron index",
                                                         entry):
            if conserved is None:
                # Noether for dθ/dt = -H ∇L: Q = θᵀ H⁻¹ A θ / 2.
                conserved = sum((neuron_sum(b[SUM_INDEX] * act[b].xreplace(
                    {NEURON_INDEX: SUM_INDEX})) / self.rates[b] for b in act), sp.S.Zero) / 2
                how = "Q = θᵀH⁻¹Aθ/2 (Noether's argument for gradient flow)."
            else:
                conserved = self._scalar(f"symmetry {name!r}: conserved", conserved)
                how = "Conserved quantity given by the user."
            out.append(Symmetry(name, f"User-declared symmetry {name}: " + ", ".join(
                f"δ{b.name} = {act[b]}" for b in act) + ". " + how, act, normalize(conserved)))
        return tuple(out)

    def _closed_form_bases(self, cf) -> dict:
        """The checks of a :class:`ClosedForm` both notations share; its ``initial``."""
        if not isinstance(cf, ClosedForm):
            raise ValueError(f"closed_form must be an exactdyn.ClosedForm, got {cf!r}")
        if not isinstance(cf.solution, dict) or not isinstance(cf.initial, dict) or \
                set(cf.solution) != set(self.params) or set(cf.initial) != set(self.params):
            raise ValueError("closed_form: solution and initial must give every parameter "
                             f"({', '.join(b.name for b in self.params)})")
        if not isinstance(cf.t, sp.Symbol):
            raise ValueError(f"closed_form: t must be a sympy Symbol, got {cf.t!r}")
        taken = set(self.params) | set(self.data_arrays)
        for b, b0 in cf.initial.items():
            if not isinstance(b0, sp.IndexedBase) or b0 in taken:
                raise ValueError(f"closed_form: the initial value of {b.name} must be a new "
                                 f"IndexedBase (e.g. IndexedBase('{b.name}0')), got {b0!r}")
        if len(set(cf.initial.values())) != len(cf.initial):
            raise ValueError("closed_form: each parameter needs its own initial IndexedBase")
        return dict(cf.initial)

    def _closed_form(self, cf):
        if cf is None:
            return None
        self._closed_form_bases(cf)
        allowed = {cf.t, self.index} | {b0.label for b0 in cf.initial.values()}
        sol = {}
        for b, e in cf.solution.items():
            e = _expr(f"closed_form[{b.name}]", e)
            self._known_symbols(f"closed_form[{b.name}]", e, allowed)
            sol[b] = e.xreplace({self.index: NEURON_INDEX, self.width_symbol: WIDTH,
                                 cf.t: T})
            sol[b] = sol[b].replace(lambda x: isinstance(x, sp.Sum), lambda s: normalize(s))
        return ClosedForm(sol, dict(cf.initial), T)

    # ---- the pipeline's view -----------------------------------------------------------
    @property
    def value_names(self) -> tuple:
        """Names that :meth:`from_init` takes values for: hyperparameters, then data."""
        return tuple(str(s) for s in self.hyper + self.data)

    @property
    def multi_index(self) -> bool:
        """Whether the network runs over several index kinds (declared with ``indices``)."""
        return self.indices is not None

    @property
    def array_names(self) -> tuple:
        """Names of the data arrays that :meth:`from_init` takes."""
        return tuple(x.name for x in self.data_arrays)

    def _indexed_network(self) -> IndexedNetwork:
        index_text = ", ".join(f"{ix} < {size}" for ix, size in self.indices)
        steps = (DerivationStep(
            "Loss", sp.Eq(sp.Symbol("L"), self.loss, evaluate=False),
            f"User-defined network {self.name}: the loss as written, over the indices "
            f"{index_text} (rates: " + ", ".join(
                f"eta_{b.name} = {self.rates[b]}" for b in self.params) + ")."),)
        return IndexedNetwork(
            name=self.name, params=self.params,
            param_indices={b: self._array_indices[b] for b in self.params},
            indices=self.indices, rates=dict(self.rates),
            hyper={str(s): s for s in self.hyper + self.data},
            data={x.name: x for x in self.data_arrays},
            data_indices={x: self._array_indices[x] for x in self.data_arrays},
            loss=self.loss, loss_steps=steps, symmetries=self.symmetries,
            observables={"loss": self.loss, **self.observables}, citation=self.citation)

    def symbolic_network(self) -> SymbolicNetwork | IndexedNetwork:
        """The package's symbolic network (built once)."""
        if self._symbolic is None and self.multi_index:
            self._symbolic = self._indexed_network()
        if self._symbolic is None:
            steps = (DerivationStep(
                "Loss", sp.Eq(sp.Symbol("L"), self.loss, evaluate=False),
                f"User-defined network {self.name}: the loss as written, reductions over "
                f"the d neurons (rates: " + ", ".join(
                    f"eta_{b.name} = {self.rates[b]}" for b in self.params) + ")."),)
            obs = {"loss": self.loss, **self.observables}
            self._symbolic = SymbolicNetwork(
                name=self.name, params=self.params, rates=dict(self.rates),
                hyper={str(s): s for s in self.hyper + self.data}, forward=self.loss,
                loss=self.loss, loss_steps=steps, symmetries=self.symmetries,
                observables=obs, citation=self.citation)
        return self._symbolic

    @property
    def derivation_key(self) -> str:
        """What the derived and lowered flow depend on, as text: the name and the defining
        expressions (``sympy.srepr``, assumptions included) of the parameters, rates, loss,
        observables, hyperparameters and data. Two networks of one name with different
        losses have different keys (the on-disk cache's, :mod:`exactdyn.diskcache`)."""
        parts = [self.name, [sp.srepr(b) for b in self.params], sp.srepr(self.index),
                 sp.srepr(self.width_symbol), sp.srepr(self.loss),
                 [sp.srepr(s) for s in self.hyper], [sp.srepr(s) for s in self.data],
                 [[b.name, sp.srepr(sp.sympify(self.rates[b]))] for b in self.params],
                 [[k, sp.srepr(v)] for k, v in self.observables.items()]]
        if self.multi_index:
            parts += [[[sp.srepr(ix), sp.srepr(size)] for ix, size in self.indices],
                      [sp.srepr(x) for x in self.data_arrays]]
        return "network:" + repr(parts)

    def __repr__(self) -> str:
        return (f"Network({self.name!r}, params=[{', '.join(b.name for b in self.params)}], "
                f"hyper=[{', '.join(self.value_names)}])")

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_symbolic"] = None  # rebuilt on demand (cheap), keeps pickles small
        return state

    # ---- models ------------------------------------------------------------------------
    @property
    def _model_type(self) -> type:
        """:class:`KinkedNetworkModel` for a network with kinks, else :class:`NetworkModel`."""
        return NetworkModel if self.kinks is None else KinkedNetworkModel

    def _values(self, values: dict) -> tuple:
        missing = [n for n in self.value_names if n not in values]
        if missing:
            raise ValueError(f"{self.name}: give a value for {', '.join(missing)} "
                             f"(hyperparameters and data: {', '.join(self.value_names)})")
        unknown = [k for k in values if k not in self.value_names]
        if unknown:
            known = ", ".join(self.value_names) or "none"
            raise ValueError(f"{self.name}: unknown value {unknown[0]!r}; the network's "
                             f"hyperparameters and data are {known}")
        out = []
        for n in self.value_names:
            v = check.real(n, values[n])
            rate_of = [b.name for b, r in self.rates.items() if str(r) == n]
            if rate_of and v <= 0:
                raise ValueError(f"{n} is the learning rate of {rate_of[0]} and must be > 0, "
                                 f"got {v!r}")
            out.append((n, v))
        return tuple(out)

    def from_init(self, init: dict, **values) -> NetworkModel:
        """A model of this network with the explicit initial state ``init``.

        Parameters
        ----------
        init : dict
            Parameter name -> array: 1-D, all of one length (the width), for a network over
            one index; with ``indices``, one axis per index of the parameter.
        **values
            A value for every hyperparameter and scalar data symbol, and an array for every
            data array (one axis per index, finite); the index sizes are read from the
            init and the data, and must agree.
        """
        if not isinstance(init, dict):
            raise ValueError(f"init must be a dict parameter name -> array, got {init!r}")
        names = [b.name for b in self.params]
        extra = [k for k in init if k not in names]
        if extra:
            raise ValueError(f"init: {extra[0]!r} is not a parameter of {self.name} "
                             f"({', '.join(names)})")
        missing = [n for n in names if n not in init]
        if missing:
            raise ValueError(f"init: give an initial value for {', '.join(missing)}")
        if self.multi_index:
            return self._from_init_multi(init, values)
        arrays = []
        for n in names:
            a = check.finite_vector(f"init[{n!r}]", init[n]).copy()
            if arrays and a.size != arrays[0].size:
                raise ValueError(f"init[{n!r}] has length {a.size} but init[{names[0]!r}] has "
                                 f"{arrays[0].size}; every parameter has one entry per neuron")
            a.setflags(write=False)
            arrays.append(a)
        return self._model_type(self, tuple(arrays), self._values(values))

    def _array(self, what: str, base, value, sizes: dict) -> np.ndarray:
        """A finite float64 array with one axis per index of ``base``; records (and checks)
        the sizes it gives in ``sizes``: size symbol -> (value, where it came from)."""
        idx = self._array_indices[base]
        try:
            arr = np.array(value, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"{what} must be an array of real numbers, got "
                             f"{check.show(value)}") from None
        if arr.ndim != len(idx):
            raise ValueError(f"{what} must have {len(idx)} axes ({base}[{', '.join(map(str, idx))}"
                             f"]), got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{what} must be finite, got non-finite entries in {check.show(arr)}")
        for ix, n in zip(idx, arr.shape):
            size = self._declared[ix]
            if n < 1:
                raise ValueError(f"{what} has no entries along {ix} (its size {size} must be "
                                 ">= 1)")
            if size in sizes and sizes[size][0] != n:
                raise ValueError(f"{what} has {n} entries along {ix} but {sizes[size][1]} gives "
                                 f"the index size {size} = {sizes[size][0]}; the shapes must "
                                 "agree with the declared index sizes")
            sizes.setdefault(size, (n, what))
        arr.setflags(write=False)
        return arr

    def _from_init_multi(self, init: dict, values: dict) -> NetworkModel:
        values = dict(values)
        sizes: dict = {}
        data = []
        for x in self.data_arrays:
            if x.name not in values:
                raise ValueError(f"{self.name}: give the data array {x.name!r} (data arrays: "
                                 f"{', '.join(self.array_names)})")
            data.append((x.name, self._array(f"data {x.name!r}", x, values.pop(x.name), sizes)))
        arrays = tuple(self._array(f"init[{b.name!r}]", b, init[b.name], sizes)
                       for b in self.params)
        for ix, size in self.indices:
            if size not in sizes:
                raise ValueError(f"the size {size} of index {ix} is not fixed by the init or the "
                                 "data: no array runs over it")
        size_values = tuple((str(size), sizes[size][0]) for _ix, size in self.indices)
        return self._model_type(self, arrays, self._values(values), None, tuple(data),
                                size_values)

    def random_init(self, width, scale: float = 1.0, seed: int | None = 0,
                    **values) -> NetworkModel:
        r"""A model with i.i.d. Gaussian init, :math:`\theta_{b,i} \sim N(0, \mathrm{scale}^2)`,
        drawn in parameter order from ``numpy.random.default_rng(seed)``.

        ``width``: the number of neurons; with ``indices``, the size of the first index
        of the first parameter (an int), or a dict size name -> int for the sizes that no
        data array fixes."""
        if self.multi_index:
            return self._random_multi(width, scale, seed, values)
        width = check.positive_int("width", width)
        scale = check.nonnegative("scale", scale)
        seed = check.seed("seed", seed)
        rng = np.random.default_rng(seed)
        init = {b.name: scale * rng.standard_normal(width) for b in self.params}
        model = self.from_init(init, **values)
        return self._model_type(self, model._init, model._values, (width, scale, seed))

    def _random_multi(self, width, scale, seed, values) -> NetworkModel:
        scale = check.nonnegative("scale", scale)
        seed = check.seed("seed", seed)
        sizes: dict = {}
        for x in self.data_arrays:
            if x.name in values:
                self._array(f"data {x.name!r}", x, values[x.name], sizes)
        first = self._declared[self._array_indices[self.params[0]][0]]
        given = dict(width) if isinstance(width, dict) else {str(first): width}
        by_name = {str(s): s for s in self._size_symbols}
        for key, n in given.items():
            if key not in by_name:
                raise ValueError(f"width: {key!r} is not an index size of {self.name} "
                                 f"({', '.join(sorted(by_name))})")
            n = check.positive_int(f"width[{key!r}]" if isinstance(width, dict) else "width", n)
            if by_name[key] in sizes and sizes[by_name[key]][0] != n:
                raise ValueError(f"width: {key} = {n} but {sizes[by_name[key]][1]} gives "
                                 f"{sizes[by_name[key]][0]}")
            sizes.setdefault(by_name[key], (n, "width"))
        rng = np.random.default_rng(seed)
        init = {}
        for b in self.params:
            shape = []
            for ix in self._array_indices[b]:
                if self._declared[ix] not in sizes:
                    raise ValueError(f"width: give the size {self._declared[ix]} of index {ix} "
                                     f"(e.g. width={{'{self._declared[ix]}': 3}})")
                shape.append(sizes[self._declared[ix]][0])
            init[b.name] = scale * rng.standard_normal(tuple(shape))
        model = self.from_init(init, **values)
        return self._model_type(self, model._init, model._values,
                            (width if not isinstance(width, dict) else dict(width), scale, seed),
                            model._data, model._sizes)


@dataclass(frozen=True, eq=False)
class NetworkModel:
    """A :class:`Network` with numbers: its initial state and the values of its symbols.

    Follows the model protocol of :mod:`exactdyn.models.base`; built by
    :meth:`Network.from_init` or :meth:`Network.random_init`.
    """

    #: The user's :class:`Network` (``network()`` gives its symbolic network, as for every
    #: model of the protocol).
    definition: Network
    _init: tuple = field(repr=False)
    _values: tuple = ()
    #: (width, scale, seed) of a random init, None for an explicit one.
    _random: tuple | None = None
    #: Networks over several index kinds: (name, array) of each data array, and
    #: (size name, size) of each index in canonical order.
    _data: tuple = field(default=(), repr=False)
    _sizes: tuple = ()

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def width(self) -> int:
        """The number of neurons: the length of the first axis of the first parameter."""
        return int(self._init[0].shape[0])

    def sizes(self) -> dict:
        """Each index size by name (the width symbol's name for a one-index network)."""
        if self._sizes:
            return dict(self._sizes)
        return {str(self.definition.width_symbol): self.width}

    def state_shapes(self) -> dict:
        """Parameter name -> the shape of its state array."""
        return {n: a.shape for n, a in zip(self.state_names, self._init)}

    def data_arrays(self) -> dict:
        """Data array name -> its values (read-only)."""
        return dict(self._data)

    def scalar_values(self) -> dict:
        """Hyperparameters, scalar data and index sizes by name (what the generated code of
        a multi-index network takes besides the arrays)."""
        return {**dict(self._values), **self.sizes()}

    @property
    def state_names(self) -> tuple:
        return tuple(b.name for b in self.definition.params)

    @property
    def explicit_init(self) -> bool:
        return self._random is None

    def initial_state(self) -> dict:
        """Parameter name -> initial array (fresh copies)."""
        return {n: a.copy() for n, a in zip(self.state_names, self._init)}

    @property
    def params(self) -> dict:
        """Width, hyperparameters and data, and the init (JSON-ready)."""
        out = {"width": self.width, **dict(self._values)}
        if self._sizes:
            out.update(self.sizes())
            out.update({n: a.tolist() for n, a in self._data})
        if self._random is None:
            out.update({f"{n}0": a.tolist() for n, a in zip(self.state_names, self._init)})
        else:
            out.update(scale=self._random[1], seed=self._random[2])
        return out

    def values(self) -> dict:
        """Numbers for the network's symbols, and the width (and, with several index
        kinds, every index size by name)."""
        out = {**dict(self._values), "width": self.width}
        if self._sizes:
            out.update(self.sizes())
        return out

    def symbol_values(self) -> dict:
        """sympy Symbol -> value, for the lowering."""
        syms = {str(s): s for s in self.definition.hyper + self.definition.data}
        return {syms[k]: v for k, v in self._values}

    def symbolic_network(self) -> SymbolicNetwork:
        return self.definition.symbolic_network()

    def network(self) -> SymbolicNetwork:
        """The symbolic network (the model protocol's name for it)."""
        return self.definition.symbolic_network()

    def with_init_scaled(self, factor: float) -> NetworkModel:
        """The same model with every initial entry multiplied by ``factor``."""
        factor = check.real("factor", factor)
        return self.definition.from_init({n: factor * a for n, a in
                                          zip(self.state_names, self._init)},
                                         **dict(self._values), **dict(self._data))

    def with_values(self, **changes) -> NetworkModel:
        """A copy with other hyperparameter values (and, for a random init, ``width``,
        ``scale`` or ``seed``)."""
        vals = dict(self._values)
        data = dict(self._data)
        rnd = dict(zip(("width", "scale", "seed"), self._random or ()))
        for k, v in changes.items():
            if k in data:
                data[k] = v
            elif k in vals:
                vals[k] = v
            elif self._random is not None and k in rnd:
                rnd[k] = v
            else:
                allowed = list(vals) + list(data) + \
                    (list(rnd) if self._random is not None else [])
                raise ValueError(f"unknown parameter {k!r} of {self.name}; allowed: "
                                 f"{', '.join(allowed)}")
        vals.update(data)
        if self._random is None:
            return self.definition.from_init(self.initial_state(), **vals)
        width = rnd["width"]
        if isinstance(width, numbers.Real) and not isinstance(width, bool) \
                and float(width).is_integer():
            width = int(width)
        seed = rnd["seed"]
        if isinstance(seed, float) and math.isfinite(seed) and seed.is_integer():
            seed = int(seed)
        return self.definition.random_init(width, rnd["scale"], seed, **vals)

    @property
    def flow_key(self):
        """Key of the derived flow in the pipeline's caches: the network itself."""
        return self.definition

    @property
    def derivation_key(self) -> str:
        """Key of the lowered flow in the on-disk cache: :attr:`Network.derivation_key`."""
        return self.definition.derivation_key

    @property
    def sweep_parameters(self) -> tuple:
        """What a phase diagram may put on an axis or fix."""
        extra = ("width", "scale", "seed") if self._random is not None else ()
        return tuple(k for k, _ in self._values) + extra

    def __repr__(self) -> str:
        vals = ", ".join(f"{k}={v!r}" for k, v in self._values)
        return f"{self.definition.name}(width={self.width}{', ' if vals else ''}{vals})"


@dataclass(frozen=True, eq=False)
class KinkedNetworkModel(NetworkModel):
    r"""A :class:`NetworkModel` whose loss applies a kinked activation (ReLU, leaky ReLU,
    ``Abs``, a Piecewise with its kink at 0) to a pre-activation linear in its weights.

    It declares its pre-activations (:meth:`kinked_preactivation`), so that
    :func:`exactdyn.solve`, :func:`exactdyn.gd` and :func:`exactdyn.verify` integrate it
    through its kinks like :class:`~exactdyn.TwoLayer` (:mod:`exactdyn.numeric.kinks`:
    the pattern frozen per segment, each change located, Filippov sliding; registered by
    :mod:`exactdyn.numeric.network_kinks`). What is read from the loss:
    :attr:`Network.kinks` (:mod:`exactdyn.models.network_kinks`).
    """

    def __post_init__(self):
        self.kinked_preactivation()  # the output scale and the data checked now

    @property
    def act(self):
        """The activation (:class:`~exactdyn.models.activations.Activation`)."""
        return self.definition.kinks.activation

    @property
    def activation(self) -> str:
        return self.act.name

    def _scalar(self, what: str, expr) -> float:
        values = self.scalar_values()
        subs = {}
        for sym in expr.free_symbols:
            subs[sym] = values[str(sym)]
        try:
            return float(expr.xreplace(subs))
        except (TypeError, ValueError):
            raise ValueError(f"{self.name}: the {what} {expr} has no real value at "
                             f"{subs}") from None

    def kinked_preactivation(self):
        r""":math:`h_{is} = \sum_k W_{ik}X_{sk}`: the neurons are the units, the samples the
        entries (one position each), as for :class:`~exactdyn.TwoLayer`
        (:class:`~exactdyn.models.base.KinkedPreactivation`)."""
        from .base import KinkedPreactivation

        kinks = self.definition.kinks
        data = dict(self._data)
        inputs = np.asarray(data[kinks.inputs.name], float)
        if kinks.input_axes == ("feature", "sample"):
            inputs = inputs.T
        elif inputs.ndim == 1:
            inputs = inputs[:, None]
        n = inputs.shape[0]
        input_scale = self._scalar("scale of the pre-activation", kinks.input_scale)
        if not (math.isfinite(input_scale) and input_scale != 0):
            raise ValueError(f"{self.name}: the scale {kinks.input_scale} of the pre-activation "
                             f"must be finite and nonzero, got {input_scale!r}")
        inputs = input_scale * inputs
        scale = self._scalar("output scale 1/alpha", kinks.scale)
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"{self.name}: the output scale alpha = 1/({kinks.scale}) must be "
                             f"positive and finite, got 1/{scale!r}")
        entries = list(kinks.targets.atoms(sp.Indexed))
        if entries:  # a scalar times the data array over the samples
            targets = self._scalar("target", kinks.targets / entries[0]) * np.asarray(
                data[entries[0].base.name], float)
        else:
            targets = np.full(n, self._scalar("target", kinks.targets))
        weights = self.state_shapes()[kinks.weights.name]
        return KinkedPreactivation(
            activation=kinks.activation, weights=kinks.weights.name,
            weights_matrix=(weights[0], inputs.shape[1]), units_axis=0,
            readout=kinks.readout.name, readout_matrix=(weights[0],),
            inputs=inputs[:, None, :], targets=targets, alpha=1.0 / scale,
            preactivation_axes=("unit", "sample"))

    def layer_flow(self):
        """The flow the kink scheme integrates: the two-layer network's
        (:func:`exactdyn.symbolic.twolayer.derive_two_layer_flow`), whose loss the network's
        is, term by term (:func:`exactdyn.models.network_kinks.kinked_structure`)."""
        from ..symbolic.twolayer import derive_two_layer_flow

        return derive_two_layer_flow()
