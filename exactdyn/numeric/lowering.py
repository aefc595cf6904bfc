r"""Lowering a symbolic gradient flow to fast numeric callables.

The per-neuron right-hand sides derived in :mod:`exactdyn.symbolic` are turned into
Python source that works on whole arrays: an indexed entry ``u[j]`` becomes the vector
``u``, every reduction :math:`\sum_i g(u_i, w_i)` becomes one ``dot`` (or a vectorized
``sum``), and common subexpressions are computed once. The same source runs on float64
numpy arrays and, with another namespace, on object arrays of ``mpmath.mpf`` numbers,
so the numeric and the arbitrary-precision paths come from one derivation.

Width costs arrays, not algebra: the generated code is independent of the width.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import mpmath
import numpy as np
import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from ..symbolic.sums import NEURON_INDEX, SECOND_INDEX, SUM_INDEX, WIDTH


class _ArrayPrinter(PythonCodePrinter):
    """Prints functions by bare name (``sqrt``), resolved in the chosen namespace."""

    def _module_format(self, fqn, register=True):
        return fqn.split(".")[-1]

    def _print_Pow(self, expr, rational=False):
        if expr.exp == sp.S.Half:
            return f"sqrt({self._print(expr.base)})"
        if expr.exp == -sp.S.Half:
            return f"(1/sqrt({self._print(expr.base)}))"
        return super()._print_Pow(expr, rational=rational)

    def _print_Rational(self, expr):
        # Exact in both namespaces: float division for numpy, mpf division for mpmath.
        return f"_rat({expr.p}, {expr.q})"

    def _print_Half(self, expr):
        return self._print_Rational(expr)


def _mp_elementwise(f):
    ufunc = np.frompyfunc(f, 1, 1)
    return lambda a: ufunc(a) if isinstance(a, np.ndarray) else f(a)


NUMPY_NAMESPACE = {"sqrt": np.sqrt, "exp": np.exp, "log": np.log, "tanh": np.tanh,
                   "cosh": np.cosh, "sinh": np.sinh, "Abs": np.abs, "abs": np.abs,
                   "np": np, "_rat": lambda p, q: p / q}
MPMATH_NAMESPACE = {"sqrt": _mp_elementwise(mpmath.sqrt), "exp": _mp_elementwise(mpmath.exp),
                    "log": _mp_elementwise(mpmath.log), "tanh": _mp_elementwise(mpmath.tanh),
                    "cosh": _mp_elementwise(mpmath.cosh), "sinh": _mp_elementwise(mpmath.sinh),
                    "Abs": _mp_elementwise(abs), "abs": _mp_elementwise(abs), "np": np,
                    "_rat": lambda p, q: mpmath.mpf(p) / q}


def _bdot(a, b):
    """Reduction over the neuron axis (the last one), batched over leading axes."""
    if np.asarray(a).dtype == object or np.asarray(b).dtype == object:
        return np.sum(a * b, axis=-1)
    return np.einsum("...i,...i->...", a, b)


def _bsum(a):
    return np.sum(a, axis=-1)


@dataclass(frozen=True)
class CompiledExpressions:
    """Generated source and the function compiled from it."""

    source: str
    arg_names: tuple
    func_name: str

    def function(self, namespace: dict):
        scope = dict(namespace)
        exec(compile(self.source, f"<exactdyn:{self.func_name}>", "exec"), scope)  # noqa: S102
        return scope[self.func_name]


def _lower(exprs, bases, params, func_name, batched, jacobian=False) -> CompiledExpressions:
    """Generate array code for ``exprs`` (per-neuron or reduced expressions).

    ``x[j]`` becomes the array ``x``; in Jacobian blocks ``x[j]`` is a column and
    ``x[k]`` a row, and ``KroneckerDelta(j, k)`` the identity matrix.
    """
    printer = _ArrayPrinter({"fully_qualified_modules": False, "standard": "python3"})
    names = {b: sp.Symbol(b.name) for b in bases}
    replace = {}
    reductions = []
    red_symbols = {}
    for expr in exprs:
        for s in sorted(expr.atoms(sp.Sum), key=sp.default_sort_key):
            (idx, _lo, _hi), = s.limits
            body = s.function.xreplace({idx: SUM_INDEX})
            key = sp.Sum(body, (SUM_INDEX, 0, _hi))
            if key not in red_symbols:
                red_symbols[key] = sp.Symbol(f"_r{len(red_symbols)}")
                reductions.append((red_symbols[key], body))
            replace[s] = red_symbols[key]
    for expr in exprs:
        for atom in expr.atoms(sp.Indexed):
            if atom.base in names:
                (ix,) = atom.indices
                if ix == NEURON_INDEX:
                    replace[atom] = sp.Symbol(atom.base.name + ("_j" if jacobian else ""))
                elif ix == SECOND_INDEX:
                    replace[atom] = sp.Symbol(atom.base.name + "_k")
    if jacobian:
        replace[sp.KroneckerDelta(NEURON_INDEX, SECOND_INDEX)] = sp.Symbol("_eye")
    lines = [f"def {func_name}({', '.join(b.name for b in bases)}, "
             f"{', '.join(str(p) for p in params)}):"]
    if any(WIDTH in e.free_symbols for e in exprs):  # the width as a number
        lines.append(f"    {WIDTH} = {bases[0].name}.shape[-1]")
    if jacobian:
        for b in bases:
            lines.append(f"    {b.name}_j = {b.name}[..., :, None]")
            lines.append(f"    {b.name}_k = {b.name}[..., None, :]")
        lines.append(f"    _eye = np.eye({bases[0].name}.shape[-1])")
    for sym, body in reductions:
        body = body.xreplace({a: names[a.base] for a in body.atoms(sp.Indexed)})
        vecs = []
        for f in sp.Mul.make_args(body):
            if f in names.values():
                vecs.append(f)
            elif f.is_Pow and f.exp == 2 and f.base in names.values():
                vecs += [f.base, f.base]
            else:
                vecs = None
                break
        if vecs is not None and len(vecs) == 2:
            code = f"{'_bdot' if batched else 'np.dot'}({vecs[0]}, {vecs[1]})"
        else:
            code = f"_bsum({printer.doprint(body)})"
        lines.append(f"    {sym} = {code}")
    substituted = [e.xreplace(replace) for e in exprs]
    temps, reduced = sp.cse(substituted, symbols=(sp.Symbol(f"_c{n}") for n in itertools.count()),
                            optimizations="basic")
    for sym, e in temps:
        lines.append(f"    {sym} = {printer.doprint(e)}")
    lines.append(f"    return ({', '.join(printer.doprint(e) for e in reduced)},)")
    args = tuple(b.name for b in bases) + tuple(str(p) for p in params)
    return CompiledExpressions("\n".join(lines) + "\n", args, func_name)


def _parameters(exprs) -> tuple:
    """Hyperparameter symbols of expressions: free symbols that are not indices, the
    width, or array names."""
    exprs = list(exprs)
    found = set().union(*(e.free_symbols for e in exprs))
    skip = {NEURON_INDEX, SUM_INDEX, SECOND_INDEX, WIDTH}
    for e in exprs:
        skip |= {a.base.label for a in e.atoms(sp.Indexed)}
    return tuple(sorted((s for s in found if isinstance(s, sp.Symbol) and s not in skip),
                        key=str))


_COMPILED: dict = {}


def _compiled(flow):
    # Keyed by the flow object (held in the value, so its id is never reused): flows are
    # derived once per network, and two user networks may share a name.
    if id(flow) not in _COMPILED:
        _COMPILED[id(flow)] = (flow, _compile(flow))
    return _COMPILED[id(flow)][1]


def _compile(flow):
    network = flow.network
    bases = network.params
    params = _parameters(flow.rhs.values())
    obs_names = tuple(network.observables)
    obs_params = _parameters(network.observables.values())
    rhs = _lower([flow.rhs[b] for b in bases], bases, params, "rhs", batched=False)
    blocks = flow.jacobian_entries()
    jac = _lower([blocks[(x, y)] for x in bases for y in bases], bases, params, "jac",
                 batched=False, jacobian=True)
    obs = _lower([network.observables[n] for n in obs_names], bases, obs_params,
                 "observables", batched=True)
    # One function per observable too, so that one undefined at a state (0/0) does not
    # take the others with it on the mpmath path, where division by zero raises.
    each = tuple(_lower([network.observables[n]], bases, obs_params, "observable", batched=True)
                 for n in obs_names)
    return params, rhs, jac, obs_names, obs_params, (obs, each)


class LoweredFlow:
    r"""Numeric callables of a gradient flow, for one model instance.

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

    def __init__(self, flow, model):
        self.flow = flow
        self.model = model
        self.bases = flow.network.params
        self.state_names = tuple(b.name for b in self.bases)
        self.sizes = {n: model.width for n in self.state_names}
        #: Shape of each state array (one vector of the width per base here; the matrix
        #: flows of :mod:`.matrix_lowering` have one matrix shape per state array).
        self.shapes = {n: (model.width,) for n in self.state_names}
        offsets = np.cumsum([0] + [self.sizes[n] for n in self.state_names])
        self.slices = {n: slice(int(a), int(b)) for n, a, b in
                       zip(self.state_names, offsets[:-1], offsets[1:])}
        self.size = int(offsets[-1])
        values = model.symbol_values()
        (params, rhs_src, jac_src, self.observable_names, obs_params,
         (obs_src, obs_each)) = _compiled(flow)
        self.param_symbols = params
        self.param_values = tuple(values[p] for p in params)
        self._obs_values = tuple(values[p] for p in obs_params)
        self.sources = {"rhs": rhs_src.source, "jac": jac_src.source,
                        "observables": obs_src.source}
        ns = dict(NUMPY_NAMESPACE, _bdot=_bdot, _bsum=_bsum)
        self._rhs = rhs_src.function(ns)
        self._jac = jac_src.function(ns)
        self._obs = obs_src.function(ns)
        mns = dict(MPMATH_NAMESPACE, _bdot=_bdot, _bsum=_bsum)
        self._rhs_mp = rhs_src.function(mns)
        self._obs_mp = obs_src.function(mns)
        self._obs_mp_each = [src.function(mns) for src in obs_each]
        self._out = np.empty(self.size)

    def pack(self, state: dict) -> np.ndarray:
        dtype = object if any(np.asarray(state[n]).dtype == object for n in self.state_names) \
            else float
        y = np.empty(self.size, dtype=dtype)
        for n in self.state_names:
            y[self.slices[n]] = state[n]
        return y

    def unpack(self, y) -> dict:
        """Named views of a packed state; ``y`` may be batched (time first)."""
        return {n: y[..., s] for n, s in self.slices.items()}

    def rhs(self, t, y):
        parts = self._rhs(*(y[s] for s in self.slices.values()), *self.param_values)
        out = np.empty(self.size)
        for s, part in zip(self.slices.values(), parts):
            out[s] = part
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
        parts = self._rhs_mp(*(y[s] for s in self.slices.values()), *values)
        out = np.empty(self.size, dtype=object)
        for s, part in zip(self.slices.values(), parts):
            out[s] = part
        return out

    @staticmethod
    def _observable_mp_rows(g, arrays, vals):
        """One observable on the mpmath path, time by time; NaN where it is undefined
        (the alignment of a zero vector), as in float64."""
        try:
            return g(*arrays, *vals)[0]
        except ZeroDivisionError:
            out = np.empty(arrays[0].shape[:-1], dtype=object)
            for i in np.ndindex(out.shape):
                try:
                    out[i] = g(*(a[i] for a in arrays), *vals)[0]
                except ZeroDivisionError:
                    out[i] = mpmath.nan
            return out

    def observables(self, states: dict, values=None) -> dict:
        """Observables on states of shape (time, width): one array per observable."""
        arrays = [states[n] for n in self.state_names]
        mp = any(a.dtype == object for a in arrays)
        f = self._obs_mp if mp else self._obs
        vals = self._obs_values if values is None else values
        try:
            outs = f(*arrays, *vals)
        except ZeroDivisionError:
            if not mp:
                raise
            outs = [self._observable_mp_rows(g, arrays, vals) for g in self._obs_mp_each]
        shape = arrays[0].shape[:-1]
        return {name: np.broadcast_to(np.asarray(o, dtype=object if mp else float), shape).copy()
                for name, o in zip(self.observable_names, outs)}
