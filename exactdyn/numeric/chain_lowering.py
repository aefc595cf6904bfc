r"""Lowering of gradient flows kept in matrix form (deep linear networks).

A sibling of :mod:`exactdyn.numeric.lowering` (and of :mod:`.matrix_lowering`, which prints
the two-layer matrix flows) for states made of matrices of different
shapes. Each right-hand side is a product of matrix symbols, transposes and sums
(:class:`~exactdyn.symbolic.deep_linear.MatrixFlow`); the generated code evaluates every
chain of products in the cheapest association order (a matrix-chain dynamic program with
the width taken as large and the data dimensions as small), and every sub-product is
computed once and shared by all right-hand sides (the suffix products
:math:`W_L\cdots W_{\ell+1}` and prefix products :math:`W_{\ell-1}\cdots W_1` are
reused). Transposes print as ``swapaxes(-1, -2)`` so the same source runs on a stack of
states (time first) for the observables. The source runs on float64 and on object
arrays of ``mpmath.mpf`` alike (``@`` on object arrays).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from ..symbolic.deep_linear import IN_DIM, OUT_DIM, WIDTH

#: Sizes used only to choose association orders (width large, data small).
_COST_SIZES = {WIDTH: 1000, IN_DIM: 10, OUT_DIM: 10}


def _size(dim) -> int:
    return int(sp.sympify(dim).xreplace(_COST_SIZES))


class _MatrixCode:
    """Emits lines computing matrix expressions, sharing every sub-product."""

    def __init__(self):
        self.lines = []
        self.names = {}  # canonical expr -> temp name

    def _temp(self, key, code):
        if key not in self.names:
            name = f"_m{len(self.names)}"
            self.lines.append(f"    {name} = {code}")
            self.names[key] = name
        return self.names[key]

    def emit(self, e) -> str:
        if isinstance(e, sp.MatrixSymbol):
            return e.name
        if isinstance(e, sp.Transpose):
            return self._temp(e, f"np.swapaxes({self.emit(e.arg)}, -1, -2)")
        if isinstance(e, sp.MatAdd):
            return self._temp(e, " + ".join(f"({self.emit(a)})" for a in e.args))
        if isinstance(e, sp.MatMul):
            coeff, mats = e.as_coeff_matrices()
            prod = self._chain(tuple(mats))
            if coeff == 1:
                return prod
            return self._temp(e, f"({_scalar(coeff)}) * {prod}")
        if isinstance(e, sp.Trace):
            return self._temp(e, f"np.trace({self.emit(e.arg)}, axis1=-2, axis2=-1)")
        if isinstance(e, sp.Mul):  # scalar times a trace
            coeff, rest = e.as_coeff_Mul()
            return self._temp(e, f"({_scalar(coeff)}) * {self.emit(rest)}")
        if isinstance(e, sp.Add):
            return self._temp(e, " + ".join(f"({self.emit(a)})" for a in e.args))
        raise NotImplementedError(f"cannot lower {type(e).__name__}: {e}")

    def _chain(self, mats: tuple) -> str:
        """Product of ``mats`` in the cheapest order, reusing computed sub-products."""
        n = len(mats)
        if n == 1:
            return self.emit(mats[0])
        rows = [_size(m.shape[0]) for m in mats]
        cols = [_size(m.shape[1]) for m in mats]
        best = {}

        def cost(i, j):
            if (i, j) in best:
                return best[(i, j)][0]
            if i == j or sp.MatMul(*mats[i:j + 1]) in self.names:
                best[(i, j)] = (0, None)
                return 0
            options = [(cost(i, k) + cost(k + 1, j) + rows[i] * cols[k] * cols[j], k)
                       for k in range(i, j)]
            best[(i, j)] = min(options)
            return best[(i, j)][0]

        def build(i, j):
            if i == j:
                return self.emit(mats[i])
            key = sp.MatMul(*mats[i:j + 1])
            if key in self.names:
                return self.names[key]
            k = best[(i, j)][1]
            return self._temp(key, f"{build(i, k)} @ {build(k + 1, j)}")

        cost(0, n - 1)
        return build(0, n - 1)


def _scalar(c) -> str:
    c = sp.nsimplify(c)
    if c.is_Integer:
        return str(int(c))
    if c.is_Rational:
        return f"_rat({c.p}, {c.q})"
    raise NotImplementedError(f"coefficient {c}")


@dataclass(frozen=True)
class MatrixSource:
    source: str
    func_name: str

    def function(self, namespace):
        scope = dict(namespace)
        exec(compile(self.source, f"<exactdyn:{self.func_name}>", "exec"), scope)  # noqa: S102
        return scope[self.func_name]


def lower_matrix_exprs(exprs, args, func_name) -> MatrixSource:
    """Python source of ``func_name(*args)`` returning the tuple of ``exprs``."""
    code = _MatrixCode()
    outs = [code.emit(e) for e in exprs]
    lines = [f"def {func_name}({', '.join(a.name for a in args)}):", *code.lines,
             f"    return ({', '.join(outs)},)"]
    return MatrixSource("\n".join(lines) + "\n", func_name)


_NS = {"np": np, "_rat": lambda p, q: p / q}
_COMPILED: dict = {}


def _compiled(flow):
    if flow.name not in _COMPILED:
        hyper = [flow.hyper[k] for k in ("Sigma_yx", "Sigma_xx", "T")]
        args = list(flow.params) + hyper
        rhs = lower_matrix_exprs([flow.rhs[w] for w in flow.params], args, "rhs")
        names = tuple(flow.observables)
        obs = lower_matrix_exprs([flow.observables[n] for n in names], args, "observables")
        cons = lower_matrix_exprs([q.expr for q in flow.conserved], args, "conserved") \
            if flow.conserved else None
        _COMPILED[flow.name] = (rhs, obs, names, cons)
    return _COMPILED[flow.name]


class ChainLoweredFlow:
    r"""Numeric callables of a :class:`~exactdyn.symbolic.deep_linear.MatrixFlow`.

    Same interface as :class:`~exactdyn.numeric.lowering.LoweredFlow` where it matters to
    :func:`~exactdyn.solve`: ``pack``, ``unpack`` (named matrices, time first when
    batched), ``rhs(t, y)``, ``jac`` (``None``: implicit methods use finite differences),
    ``observables(states)``; plus ``conserved(states)``, the balancedness matrices.
    """

    jac = None

    def __init__(self, flow, model):
        self.flow = flow
        self.model = model
        self.state_names = tuple(w.name for w in flow.params)
        self.shapes = dict(zip(self.state_names, model.layer_shapes()))
        self.sizes = {n: int(np.prod(s)) for n, s in self.shapes.items()}
        offsets = np.cumsum([0] + [self.sizes[n] for n in self.state_names])
        self.slices = {n: slice(int(a), int(b)) for n, a, b in
                       zip(self.state_names, offsets[:-1], offsets[1:])}
        self.size = int(offsets[-1])
        rhs, obs, self.observable_names, cons = _compiled(flow)
        self.sources = {"rhs": rhs.source, "observables": obs.source}
        self._rhs = rhs.function(_NS)
        self._obs = obs.function(_NS)
        self._cons = cons.function(_NS) if cons is not None else None
        syx, sxx = model.data_matrices()
        self.hyper_values = (syx, sxx, model.teacher_map())

    def taylor_engine(self, order: int):
        """The arbitrary-precision Taylor engine of this flow (the matrix engine of
        :mod:`.matrix_taylor`, on the same derived right-hand sides); call inside the gmpy2
        context of the working precision."""
        from types import SimpleNamespace

        from ..symbolic.deep_linear import IN_DIM, OUT_DIM, WIDTH
        from .matrix_taylor import MatrixTaylorEngine

        syx, sxx = self.model.data_matrices()
        values = {self.flow.hyper["Sigma_yx"]: syx, self.flow.hyper["Sigma_xx"]: sxx}
        first, last = self.shapes[self.state_names[0]], self.shapes[self.state_names[-1]]
        dims = {IN_DIM: first[1], WIDTH: first[0], OUT_DIM: last[0]}
        # The engine reads the state matrices from flow.network.params and their rhs.
        network = SimpleNamespace(params=self.flow.params, name=self.flow.name)
        view = SimpleNamespace(network=network, rhs=self.flow.rhs)
        return MatrixTaylorEngine(view, values, dims, self.slices, self.shapes, order)

    def pack(self, state: dict) -> np.ndarray:
        return np.concatenate([np.asarray(state[n], dtype=float).ravel()
                               for n in self.state_names])

    def unpack(self, y) -> dict:
        """Named matrices of a packed state; ``y`` may be batched (time first)."""
        lead = y.shape[:-1]
        return {n: y[..., s].reshape(*lead, *self.shapes[n]) for n, s in self.slices.items()}

    def rhs(self, t, y):
        mats = [y[s].reshape(self.shapes[n]) for n, s in self.slices.items()]
        parts = self._rhs(*mats, *self.hyper_values)
        return np.concatenate([p.ravel() for p in parts])

    def rhs_mp(self, t, y, values=None):
        """The right-hand side on an object array of ``mpmath.mpf`` (the generated code is
        plain array arithmetic, so it runs on them; the data matrices enter as the exact
        values of their float64 entries). ``values`` is not used: the flow's
        hyperparameters are its data matrices. For :func:`exactdyn.gd` at ``precision``."""
        mats = [np.asarray(y[s], dtype=object).reshape(self.shapes[n])
                for n, s in self.slices.items()]
        parts = self._rhs(*mats, *self._hyper_mp())
        return np.concatenate([np.asarray(p, dtype=object).ravel() for p in parts])

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

        outs = self._obs(*mats, *self._hyper_mp())
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
