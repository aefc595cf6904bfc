r"""The one printer of gradient flows in matrix notation, to numpy / mpmath code.

The sibling of :mod:`exactdyn.numeric.lowering` (indexed notation) for flows derived with
``sympy.MatrixSymbol``: the two-layer matrix flows of :mod:`exactdyn.symbolic.matrix_flow`
(:class:`MatrixLoweredFlow`) and the deep linear chains of
:mod:`exactdyn.symbolic.deep_linear` (:class:`ChainLoweredFlow`). A matrix expression is
printed as Python source with one ``_mm`` (``matmul``) per product, one temporary per
distinct subexpression (structural common-subexpression elimination: the residual
:math:`W_2W_1\Sigma_{xx} - \Sigma_{yx}` shared by both layers is computed once), and
matrix chains parenthesized in the cheapest order by one chain-order program (the classic
dynamic program over chain splits, in which a sub-chain already formed costs nothing), so
that a wide hidden layer never forms an :math:`h\times h` product it does not need and a
deep network forms its suffix and prefix products once. Transposes swap the last two
axes, so the same source evaluates batched observables (time first) and, with object
arrays of ``mpmath.mpf``, the high-precision path.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .buffers import ThreadBuffers
from .codegen import MPMATH_NAMESPACE, NUMPY_NAMESPACE, CompiledExpressions
from .lowered import LoweredFlow
from .lowering import named_values

# sympy, the scalar printer (.printing) and the symbolic layer are imported inside the
# functions that print: compiling a stored lowering (MatrixLoweredFlow, ChainLoweredFlow
# from their compiled sources) needs none of them.


def _T(a):
    return np.swapaxes(a, -1, -2)


def _tr(a):
    return np.trace(a, axis1=-2, axis2=-1)


#: Helpers of the generated matrix code, in both namespaces (``matmul`` of object arrays of
#: ``mpmath.mpf`` numbers, even mixed with float64 ones, is exact Python arithmetic).
#: Products are printed as ``_mm(a, b)`` so that a caller can watch every product formed.
MATRIX_HELPERS = {"_T": _T, "_tr": _tr, "_mm": np.matmul}
#: The namespaces matrix sources are compiled in: float64 and mpmath.
MATRIX_NS = dict(NUMPY_NAMESPACE, **MATRIX_HELPERS)
MATRIX_MP_NS = dict(MPMATH_NAMESPACE, **MATRIX_HELPERS)


class _MatrixCoder:
    """Emits lines of code for matrix expressions, one temporary per distinct node.

    ``sizes`` maps the dimension symbols to the numbers that choose association orders:
    the instance's own sizes, or representative ones (width large, data small) when one
    source serves every instance of a family.
    """

    def __init__(self, sizes: dict, names: dict):
        self.sizes = sizes  # dimension Symbol -> int
        self.names = names  # MatrixSymbol or Symbol -> code name
        self.lines: list = []
        self.memo: dict = {}
        from .printing import _ArrayPrinter

        self.printer = _ArrayPrinter({"fully_qualified_modules": False, "standard": "python3"})
        self.count = itertools.count()
        self.flops = 0

    def shape(self, e):
        import sympy as sp

        return tuple(int(sp.sympify(n).xreplace(self.sizes)) for n in e.shape)

    #: Keep matrix temporaries in the buffer dict ``_b`` (see :func:`lower_matrix`).
    buffers = False
    #: How a transpose is printed: ``_T`` (last two axes, batched observables) or, for a
    #: right-hand side of one state, the attribute ``.T`` (no Python call).
    transpose = "_T({})"

    def _tmp(self, code, inplace=None):
        """A new temporary computing ``code``; with :attr:`buffers` and ``inplace`` (a
        function of a destination name returning lines that compute the same numbers into
        it with ``out=``), kept in ``_b`` between calls (first call: ``code``, stored)."""
        name = f"_m{next(self.count)}"
        if self.buffers and inplace is not None:
            key = int(name[2:])
            self.lines += [f"    {name} = _b.get({key})", f"    if {name} is None:",
                           f"        {name} = _b[{key}] = {code}", "    else:"]
            self.lines += [f"        {line}" for line in inplace(name)]
        else:
            self.lines.append(f"    {name} = {code}")
        return name

    def _terms(self, e):
        """``(negative, code)`` of the terms of a matrix sum: a term ``(-1) * A`` is
        ``A`` subtracted (``B - A``, one operation, the same number as ``B + (-A)``)."""
        import sympy as sp

        terms = []
        for a in e.args:
            if isinstance(a, sp.MatMul):
                coeff, mats = a.as_coeff_mmul()
                if coeff == -1:
                    mats = list(mats.args) if isinstance(mats, sp.MatMul) else [mats]
                    terms.append((True, self._chain(mats)))
                    continue
            terms.append((False, self.emit(a)))
        return _positive_first(terms)

    @staticmethod
    def _sum_code(terms) -> str:
        code = ""
        for k, (neg, c) in enumerate(terms):
            code += (" - " if neg else " + ") + c if k else ("-" if neg else "") + c
        return code

    @staticmethod
    def _sum_lines(terms, dest) -> list:
        """Lines writing the sum of ``terms`` into ``dest``, left to right as Python
        evaluates :meth:`_sum_code`."""
        (neg0, first), (neg1, second) = terms[0], terms[1]
        op = "subtract" if neg1 else "add"
        lines = [f"np.negative({first}, out={dest})", f"np.{op}({dest}, {second}, out={dest})"] \
            if neg0 else [f"np.{op}({first}, {second}, out={dest})"]
        return lines + [f"np.{'subtract' if n else 'add'}({dest}, {c}, out={dest})"
                        for n, c in terms[2:]]

    def scalar(self, e) -> str:
        """Code of a scalar expression (may contain traces of matrices)."""
        import sympy as sp

        e = sp.sympify(e)
        rep = {}
        for t in e.atoms(sp.Trace):
            rep[t] = sp.Symbol(self.emit(t))
        for s in e.free_symbols:
            if s in self.names and not isinstance(s, sp.MatrixSymbol):
                rep[s] = sp.Symbol(self.names[s])
        return self.printer.doprint(e.xreplace(rep))

    def emit(self, e) -> str:
        if e in self.memo:
            return self.memo[e]
        out = self._emit(e)
        self.memo[e] = out
        return out

    def _emit(self, e) -> str:
        import sympy as sp

        if isinstance(e, sp.MatrixSymbol):
            return self.names[e]
        if isinstance(e, sp.Transpose):
            return self._tmp(self.transpose.format(self.emit(e.arg)))
        if isinstance(e, sp.Trace):
            return self._tmp(f"_tr({self.emit(e.arg)})")
        if isinstance(e, sp.MatAdd):
            terms = self._terms(e)
            return self._tmp(self._sum_code(terms), lambda d: self._sum_lines(terms, d))
        if isinstance(e, sp.MatMul):
            coeff, mats = e.as_coeff_mmul()
            mats = list(mats.args) if isinstance(mats, sp.MatMul) else [mats]
            chain = self._chain(mats)
            if coeff == 1:
                return chain
            scalar = self.scalar(coeff)
            return self._tmp(f"({scalar}) * {chain}",
                             lambda d: [f"np.multiply(({scalar}), {chain}, out={d})"])
        if isinstance(e, sp.ZeroMatrix):
            return self._tmp(f"np.zeros({self.shape(e)})")
        if isinstance(e, sp.Identity):
            return self._tmp(f"np.eye({self.shape(e)[0]})")
        if isinstance(e, sp.MatrixExpr):
            raise NotImplementedError(f"cannot lower the matrix expression {e!r}")
        return self._tmp(self.scalar(e))

    def _chain(self, mats) -> str:
        r"""Matrix chain product in the order of fewest multiplications.

        The classic dynamic program over chain splits, with one refinement: a sub-chain
        already computed for another expression costs nothing, so the suffix products
        :math:`W_L\cdots W_{\ell+1}` and prefix products :math:`W_{\ell-1}\cdots W_1` of a
        deep network are formed once and shared by every layer's right-hand side.
        """
        import sympy as sp

        scalars = [m for m in mats if not isinstance(m, sp.MatrixExpr)]
        mats = [m for m in mats if isinstance(m, sp.MatrixExpr)]
        n = len(mats)
        if n == 1:
            code = self.emit(mats[0])
        else:
            p = [self.shape(mats[0])[0]] + [self.shape(m)[1] for m in mats]
            best = {}

            def cost(i, j):
                if (i, j) not in best:
                    if i == j or tuple(mats[i:j + 1]) in self.memo:
                        best[(i, j)] = (0, None)
                    else:
                        best[(i, j)] = min((cost(i, k) + cost(k + 1, j)
                                            + p[i] * p[k + 1] * p[j + 1], k)
                                           for k in range(i, j))
                return best[(i, j)][0]

            def build(i, j):
                key = tuple(mats[i:j + 1])
                if i == j:
                    return self.emit(mats[i])
                if key in self.memo:
                    return self.memo[key]
                k = best[(i, j)][1]
                left, right = build(i, k), build(k + 1, j)
                name = self._tmp(f"_mm({left}, {right})",
                                 lambda d: [f"_mm({left}, {right}, out={d})"])
                self.memo[key] = name
                return name

            self.flops += cost(0, n - 1)
            code = build(0, n - 1)
        if scalars:
            scalar, chain = self.scalar(sp.Mul(*scalars)), code
            code = self._tmp(f"({scalar}) * {chain}",
                             lambda d: [f"np.multiply(({scalar}), {chain}, out={d})"])
        return code


    def emit_into(self, e, dest: str) -> None:
        """Write the matrix expression ``e`` into the array ``dest``: a scaled product or a
        sum ends in a ufunc with ``out=``, anything else is copied in."""
        import sympy as sp

        if isinstance(e, sp.MatMul):
            coeff, mats = e.as_coeff_mmul()
            mats = list(mats.args) if isinstance(mats, sp.MatMul) else [mats]
            if coeff != 1:
                chain = self._chain(mats)
                self.lines.append(f"    np.multiply({self.scalar(coeff)}, {chain}, out={dest})")
                return
        if isinstance(e, sp.MatAdd):
            self.lines += [f"    {line}" for line in self._sum_lines(self._terms(e), dest)]
            return
        self.lines.append(f"    {dest}[...] = {self.emit(e)}")


def lower_matrix(exprs, state, params, sizes, func_name, into=False) -> CompiledExpressions:
    """Generate a function ``func_name(*state, *params)`` returning the expressions.

    ``sizes`` maps dimension symbols to the numbers that choose the chain orders (see
    :class:`_MatrixCoder`). With ``into`` the function takes a last argument ``_out``, a
    sequence of arrays (views of the caller's result, one per expression) that it writes
    the matrix expressions into and returns, and an optional one after it, ``_b``: a dict
    in which it keeps its matrix temporaries (products, sums, scaled matrices) between
    calls, as :func:`exactdyn.numeric.indexed.lower_indexed` does (the first call that
    passes the dict allocates them; later calls write them with ``out=``, the same
    operations in the same order).
    """
    import sympy as sp

    names = {s: s.name for s in list(state) + list(params)}
    coder = _MatrixCoder(sizes, names)
    # a right-hand side (one state, written into the caller's result) keeps its matrix
    # temporaries in buffers and transposes by attribute; observables may be batched
    coder.buffers = into
    if into:
        coder.transpose = "{}.T"
    if into:
        for k, e in enumerate(exprs):
            coder.emit_into(e, f"_out[{k}]")
        outs = [f"_out[{k}]" for k in range(len(exprs))]
    else:
        outs = [coder.emit(e) if isinstance(e, sp.MatrixExpr) else coder.scalar(e)
                for e in exprs]
    args = [names[s] for s in list(state) + list(params)] + (["_out"] if into else [])
    buffered = any("= _b.get(" in line for line in coder.lines)
    head = f"def {func_name}({', '.join(args + (['_b=None'] if buffered else []))}):"
    first = ["    _b = {} if _b is None else _b"] if buffered else []
    src = "\n".join([head, *first, *coder.lines, f"    return ({', '.join(outs)},)"]) + "\n"
    return CompiledExpressions(src, tuple(args), func_name)


def _hyper_symbols(exprs, state):
    import sympy as sp

    found = set()
    for e in exprs:
        e = sp.sympify(e)
        found |= {m for m in e.atoms(sp.MatrixSymbol)}
        found |= {s for s in e.free_symbols if isinstance(s, sp.Symbol)}
    found -= set(state)
    dims = set()
    for m in found:
        if isinstance(m, sp.MatrixSymbol):
            for n in m.shape:
                dims |= sp.sympify(n).free_symbols
    return tuple(sorted(found - dims, key=lambda s: s.name))


_COMPILED: dict = {}


@dataclass(frozen=True)
class MatrixCompiled:
    """Sources and names only (no sympy objects): storable on disk."""

    params: tuple  # hyperparameter names, in argument order
    rhs: CompiledExpressions
    jvp: CompiledExpressions
    jvp_params: tuple
    obs_names: tuple
    obs_params: tuple
    obs: CompiledExpressions


def _compile(flow, dims: dict) -> MatrixCompiled:
    import sympy as sp

    net = flow.network
    state = net.params
    rhs_exprs = [flow.rhs[b] for b in state]
    params = _hyper_symbols(rhs_exprs, state)
    rhs = lower_matrix(rhs_exprs, state, params, dims, "rhs", into=True)
    dirs = {b: sp.MatrixSymbol(f"V_{b.name}", *b.shape) for b in state}
    jv = flow.directional_derivative(dirs)
    jv_exprs = [jv[b] for b in state]
    jvp = lower_matrix(jv_exprs, list(state) + list(dirs.values()), params, dims, "jvp")
    names = tuple(net.observables)
    obs_exprs = [net.observables[n] for n in names]
    obs_params = _hyper_symbols(obs_exprs, state)
    obs = lower_matrix(obs_exprs, state, obs_params, dims, "observables")
    params, obs_params = tuple(map(str, params)), tuple(map(str, obs_params))
    return MatrixCompiled(params, rhs, jvp, params, names, obs_params, obs)


def _positive_first(terms: list) -> list:
    """``-a + b + ...`` as ``b - a + ...``: one subtraction instead of a negation and an
    addition, and the same number (IEEE addition commutes; the rest keeps its order)."""
    if len(terms) > 1 and terms[0][0] and not terms[1][0]:
        return [terms[1], terms[0]] + terms[2:]
    return terms


def _rhs_blocks(flow, source: CompiledExpressions) -> tuple:
    """``(blocks, buffers)`` of a matrix flow's generated rhs: each state matrix's
    ``(slice, shape)`` in the packed vector, and the buffers of its temporaries, per thread
    and state dtype (None for a source without ``_b``)."""
    blocks = tuple((s, flow.shapes[n]) for n, s in flow.slices.items())
    return blocks, (ThreadBuffers() if "_b=None" in source.source else None)


def _call_rhs(flow, y, values) -> np.ndarray:
    """The generated rhs of ``flow`` at the packed state ``y``: a new packed result (the
    integrators keep it), the temporaries in this thread's buffers for ``y``'s dtype (the
    temporaries' dtypes follow it)."""
    # complex states too (complex-step derivatives of the rhs)
    out = np.empty(flow.size, dtype=y.dtype if y.dtype.kind == "c" else float)
    blocks = flow._blocks
    views = [out[s].reshape(shape) for s, shape in blocks]
    if flow._buffers is None:
        flow._rhs(*[y[s].reshape(shape) for s, shape in blocks], *values, views)
    else:
        flow._rhs(*[y[s].reshape(shape) for s, shape in blocks], *values, views,
                  flow._buffers.get(y.dtype.char))
    return out


class MatrixLoweredFlow(LoweredFlow):
    r"""Numeric callables of a matrix gradient flow, for one model instance.

    The interface of :class:`~exactdyn.numeric.LoweredFlow` (``notation == "matrix"``):
    ``state_names``, ``shapes`` (the shape of each state array), ``sizes`` (entries of
    each), ``slices`` into the packed state, ``rhs(t, y)``, ``jac(t, y)`` (exact: the
    generated Jacobian-vector product of the derived flow, applied to the unit basis),
    ``rhs_mp``, ``pack``/``unpack`` and ``observables``. Observables are the network's
    symbolic ones plus ``"singular_values"`` of the end-to-end map (descending) and any
    the model adds (``model.extra_observables``).
    """

    notation: ClassVar[str] = "matrix"

    def __init__(self, flow, model, compiled: MatrixCompiled | None = None, derive=None,
                 state_names: tuple | None = None):
        # From the disk cache: ``compiled`` and ``state_names`` given, ``flow`` None and
        # derived by ``derive()`` only when asked for (the Taylor engine).
        names = tuple(b.name for b in flow.network.params) if flow is not None \
            else tuple(state_names)
        self._layout(flow, derive, model, names, model.shapes)
        if compiled is None:
            dims = model.dims()
            key = (flow.network.name, id(flow),
                   tuple(sorted((str(k), v) for k, v in dims.items())))
            if key not in _COMPILED:
                _COMPILED[key] = (flow, _compile(flow, dims))
            compiled = _COMPILED[key][1]
        c = self._c = self.compiled = compiled
        values = named_values(model)
        self.param_values = tuple(values[p] for p in c.params)
        self._obs_values = tuple(values[p] for p in c.obs_params)
        self.observable_names = c.obs_names + ("singular_values",) + tuple(
            getattr(model, "extra_observable_names", ()))
        self.sources = {"rhs": c.rhs.source, "jac": c.jvp.source, "observables": c.obs.source}
        ns, mns = MATRIX_NS, MATRIX_MP_NS
        self._rhs = c.rhs.function(ns)
        self._blocks, self._buffers = _rhs_blocks(self, c.rhs)
        self._jvp = c.jvp.function(ns)
        self._obs = c.obs.function(ns)
        self._rhs_mp = c.rhs.function(mns)
        self._obs_mp = c.obs.function(mns)
        self._mp_values = None

    @property
    def bases(self) -> tuple:
        return self.flow.network.params

    def taylor_engine(self, order: int, fixed_point: bool = False, native_dtype=None):
        """The high-precision Taylor engine of this flow (:mod:`.matrix_taylor`: on
        ``mpfr``, with ``fixed_point`` on scaled ``mpz``, with ``native_dtype`` on that
        numpy float type); call inside the gmpy2 context of the working precision."""
        from .matrix_taylor import (
            FixedPointMatrixEngine,
            MatrixTaylorEngine,
            NativeFloatMatrixEngine,
        )

        args = (self.flow, self.model.symbol_values(), self.model.dims(), self.slices,
                self.shapes, order)
        if native_dtype is not None:
            return NativeFloatMatrixEngine(*args, native_dtype)
        cls = FixedPointMatrixEngine if fixed_point else MatrixTaylorEngine
        return cls(*args)

    # ---- right-hand side --------------------------------------------------------------------
    def _split(self, y):
        return [y[s].reshape(self.shapes[n]) for n, s in self.slices.items()]

    def _views(self, out) -> list:
        """Each state matrix's block of the packed result, as a matrix view."""
        return [out[s].reshape(self.shapes[n]) for n, s in self.slices.items()]

    def rhs(self, t, y):
        return _call_rhs(self, y, self.param_values)

    def jac(self, t, y):
        """The exact Jacobian: generated Jacobian-vector products on the unit basis."""
        mats = self._split(y)
        eye = np.eye(self.size)
        dirs = [eye[:, s].reshape((self.size,) + self.shapes[n])
                for n, s in self.slices.items()]
        parts = self._jvp(*mats, *dirs, *self.param_values)
        cols = [np.broadcast_to(p, (self.size,) + sh).reshape(self.size, -1)
                for p, sh in zip(parts, self.shapes.values())]
        return np.concatenate(cols, axis=1).T

    def _mpvals(self, values):
        import mpmath  # the precision=N path only: a float64 run never imports it

        return tuple(np.vectorize(mpmath.mpf, otypes=[object])(v) if isinstance(v, np.ndarray)
                     else mpmath.mpf(v) for v in values)

    def rhs_mp(self, t, y, values=None):
        values = self._mpvals(self.param_values) if values is None else values
        out = np.empty(self.size, dtype=object)
        self._rhs_mp(*[np.asarray(m, dtype=object) for m in self._split(y)], *values,
                     self._views(out))
        return out

    # ---- observables --------------------------------------------------------------------------
    def observables(self, states: dict, values=None) -> dict:
        """Observables on states of shape (time, rows, cols)."""
        arrays = [np.asarray(states[n]) for n in self.state_names]
        mp = any(a.dtype == object for a in arrays)
        if mp:
            vals = self._mpvals(self._obs_values) if values is None else values
            outs = self._obs_mp(*arrays, *vals)
        else:
            vals = self._obs_values if values is None else values
            outs = self._obs(*arrays, *vals)
        shape = arrays[0].shape[:-2]
        res = {}
        for name, o in zip(self._c.obs_names, outs):
            o = np.asarray(o, dtype=object if mp else float)
            res[name] = np.broadcast_to(o, shape + o.shape[len(shape):]).copy() \
                if o.ndim >= len(shape) else np.broadcast_to(o, shape).copy()
        res["singular_values"] = singular_values(res["end_to_end"])
        extra = getattr(self.model, "extra_observables", None)
        if extra is not None:
            res.update(extra(states, res))
        return res


# ---- deep linear networks: matrices of different shapes -----------------------------------
# The numeric side of :class:`~exactdyn.symbolic.deep_linear.MatrixFlow`, printed by the
# same printer (lower_matrix) with representative sizes, so that one source serves every
# instance of a depth; suffix and prefix products are shared by all layers' right-hand sides.

#: Sizes used only to choose association orders (width large, data small): one source
#: serves every instance of a depth.
def _cost_sizes() -> dict:
    from ..symbolic.deep_linear import IN_DIM, OUT_DIM, WIDTH

    return {WIDTH: 1000, IN_DIM: 10, OUT_DIM: 10}

_CHAIN_COMPILED: dict = {}


def lower_chain_exprs(flow, exprs, func_name, into=False) -> CompiledExpressions:
    """Source of ``func_name(*layers, Sigma_yx, Sigma_xx, T)`` returning ``exprs``, printed
    by the one matrix printer (:func:`.matrix_lowering.lower_matrix`)."""
    hyper = [flow.hyper[k] for k in ("Sigma_yx", "Sigma_xx", "T")]
    return lower_matrix(exprs, list(flow.params), hyper, _cost_sizes(), func_name, into=into)


@dataclass(frozen=True)
class ChainCompiled:
    """Sources and names of a chain flow (no sympy objects): storable on disk."""

    rhs: CompiledExpressions
    obs: CompiledExpressions
    obs_names: tuple
    cons: CompiledExpressions | None


def _chain_compiled(flow) -> ChainCompiled:
    if flow.name not in _CHAIN_COMPILED:
        rhs = lower_chain_exprs(flow, [flow.rhs[w] for w in flow.params], "rhs", into=True)
        names = tuple(flow.observables)
        obs = lower_chain_exprs(flow, [flow.observables[n] for n in names], "observables")
        cons = lower_chain_exprs(flow, [q.expr for q in flow.conserved], "conserved") \
            if flow.conserved else None
        _CHAIN_COMPILED[flow.name] = ChainCompiled(rhs, obs, names, cons)
    return _CHAIN_COMPILED[flow.name]


class ChainLoweredFlow(LoweredFlow):
    r"""Numeric callables of a :class:`~exactdyn.symbolic.deep_linear.MatrixFlow`.

    The interface of :class:`~exactdyn.numeric.LoweredFlow` (``notation == "chain"``) where
    it matters to :func:`~exactdyn.solve`: ``pack``, ``unpack`` (named matrices, time first when
    batched), ``rhs(t, y)``, ``jac`` (``None``: implicit methods use finite differences),
    ``observables(states)``; plus ``conserved(states)``, the balancedness matrices.
    """

    notation: ClassVar[str] = "chain"

    jac = None

    def __init__(self, flow, model, compiled: ChainCompiled | None = None, derive=None,
                 state_names: tuple | None = None):
        # From the disk cache: ``compiled`` and ``state_names`` given, ``flow`` None and
        # derived by ``derive()`` only when asked for (the Taylor engine).
        names = tuple(w.name for w in flow.params) if flow is not None else tuple(state_names)
        self._layout(flow, derive, model, names, dict(zip(names, model.layer_shapes())))
        c = self.compiled = _chain_compiled(flow) if compiled is None else compiled
        rhs, obs, self.observable_names, cons = c.rhs, c.obs, c.obs_names, c.cons
        self.sources = {"rhs": rhs.source, "observables": obs.source}
        self._rhs = rhs.function(MATRIX_NS)
        self._blocks, self._buffers = _rhs_blocks(self, rhs)
        self._obs = obs.function(MATRIX_NS)
        self._cons = cons.function(MATRIX_NS) if cons is not None else None
        self._rhs_mp = rhs.function(MATRIX_MP_NS)
        self._obs_mp = obs.function(MATRIX_MP_NS)
        syx, sxx = model.data_matrices()
        self.hyper_values = (syx, sxx, model.teacher_map())

    def taylor_engine(self, order: int, fixed_point: bool = False, native_dtype=None):
        """The arbitrary-precision Taylor engine of this flow (the matrix engine of
        :mod:`.matrix_taylor`, on the same derived right-hand sides; with ``fixed_point``
        on scaled ``mpz``, with ``native_dtype`` on that numpy float type); call inside
        the gmpy2 context of the working precision."""
        from types import SimpleNamespace

        from .matrix_taylor import (
            FixedPointMatrixEngine,
            MatrixTaylorEngine,
            NativeFloatMatrixEngine,
        )

        syx, sxx = self.model.data_matrices()
        values = {self.flow.hyper["Sigma_yx"]: syx, self.flow.hyper["Sigma_xx"]: sxx}
        from ..symbolic.deep_linear import IN_DIM, OUT_DIM, WIDTH

        first, last = self.shapes[self.state_names[0]], self.shapes[self.state_names[-1]]
        dims = {IN_DIM: first[1], WIDTH: first[0], OUT_DIM: last[0]}
        # The engine reads the state matrices from flow.network.params and their rhs.
        network = SimpleNamespace(params=self.flow.params, name=self.flow.name)
        view = SimpleNamespace(network=network, rhs=self.flow.rhs)
        if native_dtype is not None:
            return NativeFloatMatrixEngine(view, values, dims, self.slices, self.shapes,
                                           order, native_dtype)
        cls = FixedPointMatrixEngine if fixed_point else MatrixTaylorEngine
        return cls(view, values, dims, self.slices, self.shapes, order)

    def pack(self, state: dict) -> np.ndarray:
        """The packed float64 state (mpmath entries are rounded: the deep flow's high
        precision runs on its own Taylor engine)."""
        return np.concatenate([np.asarray(state[n], dtype=float).ravel()
                               for n in self.state_names])

    def rhs(self, t, y):
        return _call_rhs(self, y, self.hyper_values)

    def rhs_mp(self, t, y, values=None):
        """The right-hand side on an object array of ``mpmath.mpf`` (the generated code is
        plain array arithmetic, so it runs on them; the data matrices enter as the exact
        values of their float64 entries). ``values`` is not used: the flow's
        hyperparameters are its data matrices. For :func:`exactdyn.gd` at ``precision``."""
        mats = [np.asarray(y[s], dtype=object).reshape(self.shapes[n])
                for n, s in self.slices.items()]
        out = np.empty(self.size, dtype=object)
        self._rhs_mp(*mats, *self._hyper_mp(),
                     [out[s].reshape(self.shapes[n]) for n, s in self.slices.items()])
        return out

    def _hyper_mp(self) -> list:
        import mpmath

        return [np.array([[mpmath.mpf(float(v)) for v in row] for row in np.atleast_2d(h)],
                         dtype=object) for h in self.hyper_values]

    def observables(self, states: dict, values=None) -> dict:
        """``end_to_end`` (time x out x in), ``loss`` and ``singular_values`` of A."""
        mats = [states[n] for n in self.state_names]
        if any(np.asarray(m).dtype == object for m in mats):  # mpmath numbers
            return self._observables_mp(mats)
        outs = self._obs(*mats, *self.hyper_values)
        obs = {name: np.asarray(o, dtype=float) for name, o in zip(self.observable_names, outs)}
        obs["singular_values"] = np.linalg.svd(obs["end_to_end"], compute_uv=False)
        return obs

    def _observables_mp(self, mats) -> dict:
        """The same observables on object arrays of ``mpmath.mpf`` (the generated code is
        plain array arithmetic, so it runs on them; singular values by ``mpmath.svd_r``)."""
        import mpmath

        outs = self._obs_mp(*mats, *self._hyper_mp())
        obs = {name: np.asarray(o, dtype=object) for name, o in zip(self.observable_names, outs)}
        A = obs["end_to_end"]
        svals = [sorted((abs(s) for s in mpmath.svd_r(mpmath.matrix(a.tolist()),
                                                      compute_uv=False)), reverse=True)
                 for a in A.reshape((-1,) + A.shape[-2:])]
        obs["singular_values"] = np.array(svals, dtype=object).reshape(
            A.shape[:-2] + (min(A.shape[-2:]),))
        return obs

    def conserved(self, states: dict) -> list:
        r"""The balancedness matrices :math:`W_{\ell+1}^\top W_{\ell+1} - W_\ell W_\ell^\top`
        (time first when the states are)."""
        if self._cons is None:
            return []
        return list(self._cons(*[states[n] for n in self.state_names], *self.hyper_values))


def singular_values(A) -> np.ndarray:
    """Singular values (descending) of a batch of matrices (time first); mpmath for
    object arrays."""
    A = np.asarray(A)
    if A.dtype != object:
        return np.linalg.svd(A, compute_uv=False)
    import mpmath  # object arrays (mpf entries) only

    out = np.empty(A.shape[:-2] + (min(A.shape[-2:]),), dtype=object)
    for idx in np.ndindex(A.shape[:-2]):
        s = mpmath.svd_r(mpmath.matrix(A[idx].tolist()), compute_uv=False)
        out[idx] = sorted((s[i] for i in range(len(s))), reverse=True)
    return out
