r"""Taylor-mode automatic differentiation of a gradient flow kept in matrix form.

The matrix sibling of :mod:`exactdyn.numeric.taylor`: the right-hand sides derived with
``sympy.MatrixSymbol`` (:mod:`exactdyn.symbolic.matrix_flow`) are compiled into a DAG
whose nodes are whole matrices (state, constant, sum, scalar multiple, transpose,
product). Each node carries its truncated Taylor series along the trajectory as an
object array of ``gmpy2.mpfr`` of shape ``(N + 1, rows, cols)``; the recurrences are the
Leibniz rule for the matrix product,

.. math:: (AB)_k = \sum_{j=0}^{k} A_j B_{k-j},

(one batched ``matmul`` per order; a constant factor needs one product), linearity for
sums, scalings and transposes, and :math:`Y_{k+1} = [F(Y)]_k/(k+1)` for the state.
Every polynomial matrix flow is covered (all linear-network flows are polynomial);
anything else raises :class:`~exactdyn.numeric.taylor.UnsupportedExpression`. The step
control and the output interpolation are those of :mod:`exactdyn.numeric.highprec`.
"""

from __future__ import annotations

from dataclasses import dataclass

import gmpy2
import numpy as np
import sympy as sp

from .taylor import UnsupportedExpression, _mpfr_of_number


@dataclass
class _MNode:
    kind: str  # var, const, add, scale, T, mm
    args: tuple
    shape: tuple
    data: object = None
    const: bool = False


class MatrixTaylorEngine:
    """Taylor coefficients of the packed state of a matrix flow (``coefficients(y)``).

    Parameters
    ----------
    flow : MatrixGradientFlow
    values : dict
        Hyperparameter symbol (scalar ``Symbol`` or ``MatrixSymbol``) -> float or
        float64 array; converted to ``mpfr`` exactly, at the current gmpy2 precision.
    dims : dict
        Size symbols -> int.
    slices, shapes : dict
        Where each state matrix sits in the packed state, and its shape.
    order : int
        Truncation order :math:`N`.
    """

    def __init__(self, flow, values, dims, slices, shapes, order):
        self.order = order
        self.nodes: list = []
        self.memo: dict = {}
        self.dims = dims
        self.values = values
        self.state_syms = list(flow.network.params)
        self.slices = [slices[b.name] for b in self.state_syms]
        self.shapes = [tuple(shapes[b.name]) for b in self.state_syms]
        self.size = max(s.stop for s in self.slices)
        self.var = {}
        for b, sh in zip(self.state_syms, self.shapes):
            self.var[b] = self._new(_MNode("var", (), sh))
        self.outputs = [self._build(flow.rhs[b]) for b in self.state_syms]
        n1 = order + 1
        zero = gmpy2.mpfr(0)
        self.series = []
        for nd in self.nodes:
            if nd.const:
                self.series.append(None)
            else:
                self.series.append(np.full((n1,) + nd.shape, zero, dtype=object))
        self.state = np.full((n1, self.size), zero, dtype=object)

    # ---- building ---------------------------------------------------------------------------
    def _new(self, nd):
        self.nodes.append(nd)
        return len(self.nodes) - 1

    def _shape(self, e):
        return tuple(int(sp.sympify(n).xreplace(self.dims)) for n in e.shape)

    def _const(self, arr):
        arr = np.asarray(arr, dtype=object)
        return self._new(_MNode("const", (), arr.shape, arr, True))

    def _eval_scalar(self, e):
        if e.is_Number:
            return _mpfr_of_number(e)
        if isinstance(e, sp.Symbol):
            return gmpy2.mpfr(float(self.values[e]))
        if isinstance(e, sp.Add):
            return sum((self._eval_scalar(a) for a in e.args), gmpy2.mpfr(0))
        if isinstance(e, sp.Mul):
            out = gmpy2.mpfr(1)
            for a in e.args:
                out *= self._eval_scalar(a)
            return out
        if isinstance(e, sp.Pow):
            return self._eval_scalar(e.base) ** _mpfr_of_number(e.exp) if e.exp.is_Number \
                else self._eval_scalar(e.base) ** self._eval_scalar(e.exp)
        raise UnsupportedExpression(f"cannot evaluate the coefficient {e}")

    def _build(self, e):
        if e in self.memo:
            return self.memo[e]
        out = self._build1(e)
        self.memo[e] = out
        return out

    def _build1(self, e):
        if isinstance(e, sp.MatrixSymbol):
            if e in self.var:
                return self.var[e]
            if e not in self.values:
                raise UnsupportedExpression(f"no value for the matrix {e}")
            arr = np.asarray(self.values[e], dtype=float)
            return self._const(np.vectorize(lambda v: gmpy2.mpfr(float(v)),
                                            otypes=[object])(arr))
        if isinstance(e, sp.Identity):
            n = self._shape(e)[0]
            arr = np.full((n, n), gmpy2.mpfr(0), dtype=object)
            for i in range(n):
                arr[i, i] = gmpy2.mpfr(1)
            return self._const(arr)
        if isinstance(e, sp.Transpose):
            a = self._build(e.arg)
            nd = self.nodes[a]
            if nd.const:
                return self._const(nd.data.T.copy())
            return self._new(_MNode("T", (a,), nd.shape[::-1]))
        if isinstance(e, sp.MatAdd):
            parts = [self._build(a) for a in e.args]
            if all(self.nodes[p].const for p in parts):
                return self._const(sum(self.nodes[p].data for p in parts[1:])
                                   + self.nodes[parts[0]].data if len(parts) > 1
                                   else self.nodes[parts[0]].data)
            return self._new(_MNode("add", tuple(parts), self.nodes[parts[0]].shape))
        if isinstance(e, sp.MatMul):
            coeff, mats = e.as_coeff_mmul()
            mats = list(mats.args) if isinstance(mats, sp.MatMul) else [mats]
            scal = [m for m in mats if not isinstance(m, sp.MatrixExpr)]
            mats = [m for m in mats if isinstance(m, sp.MatrixExpr)]
            c = self._eval_scalar(coeff * sp.Mul(*scal))
            acc = self._build(mats[0])
            for m in mats[1:]:
                b = self._build(m)
                na, nb = self.nodes[acc], self.nodes[b]
                shape = (na.shape[0], nb.shape[1])
                if na.const and nb.const:
                    acc = self._const(np.matmul(na.data, nb.data))
                else:
                    acc = self._new(_MNode("mm", (acc, b), shape))
            if c != 1:
                nd = self.nodes[acc]
                if nd.const:
                    return self._const(nd.data * c)
                acc = self._new(_MNode("scale", (acc,), nd.shape, c))
            return acc
        raise UnsupportedExpression(
            f"the matrix Taylor integrator cannot compile {type(e).__name__}: {e}")

    # ---- coefficients ---------------------------------------------------------------------------
    def _at(self, i, k):
        """Order-k coefficient of node i (constants: value at k = 0, else 0)."""
        nd = self.nodes[i]
        if nd.const:
            return nd.data if k == 0 else None
        return self.series[i][k]

    def coefficients(self, y) -> np.ndarray:
        """All :math:`N + 1` Taylor coefficients of the packed state at ``y``."""
        st = self.state
        st[0] = y
        var_views = {}
        for b, v in self.var.items():
            j = self.state_syms.index(b)
            var_views[v] = (self.slices[j], self.shapes[j])
        for k in range(self.order):
            for i, nd in enumerate(self.nodes):
                if nd.const:
                    continue
                if nd.kind == "var":
                    continue
                self.series[i][k] = self._order_k(i, nd, k, var_views)
            for o, sl in zip(self.outputs, self.slices):
                val = self._node_k(o, k, var_views)
                st[k + 1, sl] = (np.asarray(val).reshape(-1) / (k + 1)) if val is not None \
                    else gmpy2.mpfr(0)
        return st

    def _node_k(self, i, k, var_views):
        nd = self.nodes[i]
        if nd.const:
            return nd.data if k == 0 else None
        if nd.kind == "var":
            sl, sh = var_views[i]
            return self.state[k, sl].reshape(sh)
        return self.series[i][k]

    def _order_k(self, i, nd, k, vv):
        get = lambda a, m: self._node_k(a, m, vv)  # noqa: E731
        if nd.kind == "add":
            acc = None
            for a in nd.args:
                v = get(a, k)
                if v is not None:
                    acc = v if acc is None else acc + v
            return acc if acc is not None else np.full(nd.shape, gmpy2.mpfr(0), dtype=object)
        if nd.kind == "scale":
            v = get(nd.args[0], k)
            return v * nd.data if v is not None else np.full(nd.shape, gmpy2.mpfr(0),
                                                             dtype=object)
        if nd.kind == "T":
            v = get(nd.args[0], k)
            return v.T if v is not None else np.full(nd.shape, gmpy2.mpfr(0), dtype=object)
        if nd.kind == "mm":
            a, b = nd.args
            na, nb = self.nodes[a], self.nodes[b]
            if na.const:
                return np.matmul(na.data, get(b, k))
            if nb.const:
                return np.matmul(get(a, k), nb.data)
            A = np.stack([get(a, j) for j in range(k + 1)])
            B = np.stack([get(b, k - j) for j in range(k + 1)])
            return np.matmul(A, B).sum(axis=0)
        raise UnsupportedExpression(nd.kind)
