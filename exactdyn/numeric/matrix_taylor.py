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

Two engines evaluate the recurrences on one DAG, as for indexed flows:
:class:`MatrixTaylorEngine` on ``gmpy2.mpfr`` and :class:`FixedPointMatrixEngine` on
scaled ``gmpy2.mpz`` integers (what ``solve(..., precision=N)`` uses: every matrix flow
here is polynomial). The latter forms each Cauchy matrix product in one ``einsum`` over
the order and the inner index, :math:`(AB)_k = \lfloor 2^{-F}\sum_{j,l} A_{j,il}
B_{k-j,lj'}\rfloor`, with no stacked copies.

Why matrix nodes and not the indexed engine of :mod:`exactdyn.numeric.taylor`: its nodes
are vectors over one neuron index joined by elementwise products and full reductions, so
a matrix product :math:`W_2W_1` would have to be unrolled into one reduction node per
output entry (a Python-level sweep over :math:`n_{out}\,n_{in}` nodes per order), while
here it is one array operation whatever the sizes. The two share the stepping
(:mod:`exactdyn.numeric.highprec`), the fixed-point scaling and the rounding rules.

Matrix chains are associated for the Taylor cost, not the float64 one: a product of two
state-dependent series costs :math:`k + 1` multiplications per entry at order :math:`k`,
one with a constant factor a single one, and a chain (or its transpose,
:math:`X^\top Y^\top = (YX)^\top`) already formed elsewhere in the flow costs nothing.
For the deep linear flow this drops the series products per order from 192 to 144.
"""

from __future__ import annotations

from dataclasses import dataclass

import gmpy2
import numpy as np
import sympy as sp

from .taylor import UnsupportedExpression, _mpfr_of_number


def _sum_terms(nodes, args, consts, series, k, zero):
    """Order-k coefficient of a sum node: its terms' order-k coefficients, a constant term
    (``consts[a]``) at order 0 only; ``zero`` when nothing remains."""
    acc = None
    for a in args:
        v = (consts[a] if k == 0 else None) if nodes[a].const else series[a][k]
        if v is not None:
            acc = v if acc is None else acc + v
    return acc if acc is not None else zero



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
        self.chains: dict = {}  # tuple of factor nodes -> the node of their product
        self.transposed: dict = {}  # node -> its transpose node (both ways)
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
        self._allocate()

    def _allocate(self):
        n1 = self.order + 1
        zero = gmpy2.mpfr(0)
        self.series = []
        for nd in self.nodes:
            if nd.const:
                self.series.append(None)
            else:
                self.series.append(np.full((n1,) + nd.shape, zero, dtype=object))
        self.state = np.full((n1, self.size), zero, dtype=object)

    def series_products_per_order(self) -> int:
        """Products of two state-dependent series in the DAG, counted per output entry
        and inner index (each costs :math:`k + 1` multiplications at order :math:`k`)."""
        total = 0
        for nd in self.nodes:
            if nd.kind == "mm":
                a, b = (self.nodes[x] for x in nd.args)
                if not (a.const or b.const):
                    total += a.shape[0] * a.shape[1] * b.shape[1]
        return total

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

    def _transpose(self, a):
        """The transpose of node ``a`` (one node per matrix: ``(X^T)^T`` is ``X``)."""
        if a in self.transposed:
            return self.transposed[a]
        nd = self.nodes[a]
        if nd.const:
            t = self._const(nd.data.T.copy())
        else:
            t = self._new(_MNode("T", (a,), nd.shape[::-1]))
        self.transposed[a], self.transposed[t] = t, a
        return t

    def _is_identity(self, a) -> bool:
        nd = self.nodes[a]
        if not nd.const or nd.shape[0] != nd.shape[1]:
            return False
        n = nd.shape[0]
        return all(nd.data[i, j] == (1 if i == j else 0) for i in range(n) for j in range(n))

    def _known(self, key):
        """The node of a chain product formed before, directly or as the transpose of
        the reversed chain of transposes (:math:`X^\\top Y^\\top = (YX)^\\top`)."""
        if key in self.chains:
            return self.chains[key], False
        rev = tuple(self.transposed.get(f) for f in reversed(key))
        if None not in rev and rev in self.chains:
            return self.chains[rev], True
        return None, False

    def _chain(self, factors: tuple) -> int:
        r"""The product of ``factors`` (node ids), associated for the Taylor cost.

        Dynamic programming over the split points (the matrix-chain order problem) with
        the cost per order of a product of shapes :math:`(p, q)(q, r)`: :math:`pqr`
        times :math:`N/2` (the mean :math:`k + 1`) for two state-dependent series,
        :math:`pqr` with a constant, 0 for two constants or a chain formed before. Ties
        go to the leftmost split, which forms the right-hand subchain: the flows' shared
        factors (:math:`W_2W_1`, :math:`W_3^\top R`) then coincide.
        """
        n = len(factors)
        if n == 1:
            return factors[0]
        weight = max(self.order / 2, 2.0)
        shape = [self.nodes[f].shape for f in factors]
        const = [self.nodes[f].const for f in factors]
        cost: dict = {}
        split: dict = {}
        for i in range(n):
            cost[i, i] = 0.0
        for length in range(2, n + 1):
            for i in range(n - length + 1):
                j = i + length - 1
                if self._known(factors[i:j + 1])[0] is not None:
                    cost[i, j] = 0.0
                    continue
                best = None
                for m in range(i, j):
                    p, q, r = shape[i][0], shape[m][1], shape[j][1]
                    left_c, right_c = all(const[i:m + 1]), all(const[m + 1:j + 1])
                    pair = 0.0 if left_c and right_c else (
                        p * q * r * (1.0 if left_c or right_c else weight))
                    total = cost[i, m] + cost[m + 1, j] + pair
                    if best is None or total < best:
                        best, split[i, j] = total, m
                cost[i, j] = best

        def form(i, j):
            key = factors[i:j + 1]
            if i == j:
                return factors[i]
            node, transposed = self._known(key)
            if node is not None:
                return self._transpose(node) if transposed else node
            m = split[i, j]
            a, b = form(i, m), form(m + 1, j)
            na, nb = self.nodes[a], self.nodes[b]
            if na.const and nb.const:
                out = self._const(np.matmul(na.data, nb.data))
            else:
                out = self._new(_MNode("mm", (a, b), (na.shape[0], nb.shape[1])))
            self.chains[key] = out
            return out

        return form(0, n - 1)

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
            return self._transpose(self._build(e.arg))
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
            factors = [self._build(m) for m in mats]
            # An identity factor (Sigma_xx = I, the default) is dropped: a product with it
            # would still cost one multiplication per entry and order.
            kept = [f for f in factors if not self._is_identity(f)]
            acc = self._chain(tuple(kept or factors[:1]))
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


class FixedPointMatrixEngine(MatrixTaylorEngine):
    r"""Taylor coefficients of a matrix flow in scaled fixed-point integers.

    The matrix counterpart of :class:`~exactdyn.numeric.taylor.FixedPointEngine`, on the
    DAG of :class:`MatrixTaylorEngine`: every coefficient is a ``gmpy2.mpz`` :math:`A`
    standing for :math:`A\,2^{-F}`, the series is taken in the normalized time
    :math:`s = (t - t_0)/\tau`, :math:`\tau = 2^{e}`, so that

    .. math:: X_{k+1} = \frac{\tau\,[F(X)]_k}{k + 1},

    and a Cauchy matrix product is accumulated exactly in integers and rounded once,

    .. math:: (AB)_k = \Bigl\lfloor 2^{-F} \sum_{j=0}^{k} A_j B_{k-j} \Bigr\rfloor,

    in one ``einsum`` over the order :math:`j` and the inner index. Transposes are views
    of their argument's series (no work); a product with a constant matrix is one
    ``matmul`` per order. Parameters as for :class:`MatrixTaylorEngine` (constants are
    read at the current gmpy2 precision and scaled to :math:`2^F` at each call).
    """

    def _allocate(self):
        n1 = self.order + 1
        zero = gmpy2.mpz(0)
        self.zero = zero
        self.state = np.full((n1, self.size), zero, dtype=object)
        var_views = {}
        for b, v in self.var.items():
            j = self.state_syms.index(b)
            var_views[v] = self.state[:, self.slices[j]].reshape((n1,) + self.shapes[j])
        self.series = []
        for i, nd in enumerate(self.nodes):
            if nd.const:
                self.series.append(None)
            elif nd.kind == "var":
                self.series.append(var_views[i])
            elif nd.kind == "T":
                self.series.append(self.series[nd.args[0]].transpose(0, 2, 1))
            else:
                self.series.append(np.full((n1,) + nd.shape, zero, dtype=object))
        # A right-hand side that is a product (or a scaled product) used nowhere else
        # goes straight into the state's next coefficient with one rounding,
        # X_{k+1} = floor(2^{-F} tau c sum_j A_j B_{k-j} / (k + 1)) (2^{-2F} when c is
        # not +-1): neither its series nor the output's shift-then-divide is formed.
        uses = [0] * len(self.nodes)
        for nd in self.nodes:
            for a in nd.args:
                uses[a] += 1
        for o in self.outputs:
            uses[o] += 1
        self.direct = {}  # product node -> (position of its state base, scale node or None)
        for j, o in enumerate(self.outputs):
            nd = self.nodes[o]
            if uses[o] != 1:
                continue
            if nd.kind == "mm":
                self.direct[o] = (j, None)
            elif nd.kind == "scale" and self.nodes[nd.args[0]].kind == "mm" \
                    and uses[nd.args[0]] == 1:
                self.direct[nd.args[0]] = (j, o)
        skipped = {sc for _, sc in self.direct.values() if sc is not None}
        self.sweep = [i for i, nd in enumerate(self.nodes)
                      if not nd.const and nd.kind not in ("var", "T") and i not in skipped]
        self._scaled: dict = {}

    def _constants(self, F: int) -> dict:
        """Constant matrices and scale factors as ``mpz`` at scale :math:`2^{-F}`."""
        if F not in self._scaled:
            def fx(x):
                return gmpy2.mpz(gmpy2.rint(gmpy2.mul_2exp(gmpy2.mpfr(x), F)))

            out = {}
            for i, nd in enumerate(self.nodes):
                if nd.const:
                    out[i] = np.vectorize(fx, otypes=[object])(nd.data)
                elif nd.kind == "scale":
                    out[i] = None if nd.data == -1 else fx(nd.data)  # None: negation
            self._scaled[F] = out
        return self._scaled[F]

    def coefficients(self, y, frac_bits: int, tau_exp: int) -> np.ndarray:
        r"""Coefficients :math:`X_0..X_N` (``mpz``, scale :math:`2^{-F}`) at the point ``y``.

        ``y`` is the packed state as ``mpz`` at scale :math:`2^{-F}` (``frac_bits``); the
        time unit is :math:`\tau = 2^{\text{tau\_exp}}`. Returns the internal
        ``(N + 1, size)`` object array (overwritten next call).
        """
        F = frac_bits
        consts = self._constants(F)
        st = self.state
        st[0] = y
        nodes, series = self.nodes, self.series
        up, down = max(tau_exp, 0), max(-tau_exp, 0)
        direct = self.direct
        written = {j for j, _ in direct.values()}
        for k in range(self.order):
            for i in self.sweep:
                nd = nodes[i]
                kind = nd.kind
                if kind == "mm":
                    a, b = nd.args
                    if nodes[a].const:
                        acc = np.matmul(consts[a], series[b][k])
                    elif nodes[b].const:
                        acc = np.matmul(series[a][k], consts[b])
                    else:
                        acc = np.einsum("jil,jlm->im", series[a][:k + 1], series[b][k::-1])
                    if i in direct:
                        j, sc = direct[i]
                        divisor = (k + 1) << (F + down)
                        if sc is not None:
                            c = consts[sc]
                            if c is None:  # floor(-x/d) = floor(x/(-d)): no negation pass
                                divisor = -divisor
                            else:
                                acc = acc * c
                                divisor <<= F
                        st[k + 1, self.slices[j]] = (
                            (acc << up if up else acc) // divisor).reshape(-1)
                        continue
                    series[i][k] = acc >> F
                elif kind == "add":
                    series[i][k] = _sum_terms(nodes, nd.args, consts, series, k, self.zero)
                else:  # scale
                    c = consts[i]
                    v = series[nd.args[0]][k]
                    series[i][k] = -v if c is None else (v * c) >> F
            divisor = (k + 1) << down  # one rounding: floor(tau X / (k + 1))
            for j, (o, sl) in enumerate(zip(self.outputs, self.slices, strict=True)):
                if j in written:
                    continue
                if nodes[o].const:
                    v = consts[o] if k == 0 else np.full(nodes[o].shape, self.zero,
                                                         dtype=object)
                else:
                    v = series[o][k]
                st[k + 1, sl] = ((v << up if up else v) // divisor).reshape(-1)
        return st


class NativeFloatMatrixEngine(MatrixTaylorEngine):
    r"""Taylor coefficients of a matrix flow in a native numpy float type.

    The recurrences of :class:`MatrixTaylorEngine` on arrays of ``dtype`` (in practice
    ``np.longdouble``, chosen by :mod:`exactdyn.numeric.highprec` when
    ``np.finfo(dtype)`` has the bits for the requested digits): each Cauchy matrix
    product is one compiled ``einsum`` over the order and the inner index,

    .. math:: (AB)_k = \sum_{j=0}^{k} A_j B_{k-j},

    transposes are views, and :math:`Y_{k+1} = [F(Y)]_k/(k + 1)`. Parameters as for
    :class:`MatrixTaylorEngine`, plus ``dtype`` (constants are rounded to it once).
    """

    def __init__(self, flow, values, dims, slices, shapes, order, dtype):
        self.dtype = np.dtype(dtype)
        super().__init__(flow, values, dims, slices, shapes, order)

    def _allocate(self):
        from .taylor import to_native

        n1, dtype = self.order + 1, self.dtype
        self.state = np.zeros((n1, self.size), dtype=dtype)
        var_views = {}
        for b, v in self.var.items():
            j = self.state_syms.index(b)
            var_views[v] = self.state[:, self.slices[j]].reshape((n1,) + self.shapes[j])
        self.series = []
        self.native = {}
        for i, nd in enumerate(self.nodes):
            if nd.const:
                self.series.append(None)
                self.native[i] = np.vectorize(lambda x: to_native(x, dtype),
                                              otypes=[dtype])(nd.data)
            elif nd.kind == "var":
                self.series.append(var_views[i])
            elif nd.kind == "T":
                self.series.append(self.series[nd.args[0]].transpose(0, 2, 1))
            else:
                self.series.append(np.zeros((n1,) + nd.shape, dtype=dtype))
                if nd.kind == "scale":
                    self.native[i] = to_native(nd.data, dtype)
        self.sweep = [i for i, nd in enumerate(self.nodes)
                      if not nd.const and nd.kind not in ("var", "T")]

    def coefficients(self, y, tau_exp: int = 0) -> np.ndarray:
        r"""All :math:`N + 1` Taylor coefficients of the packed state at ``y`` (an array
        of the engine's ``dtype``) in the normalized time :math:`s = (t - t_0)/\tau`,
        :math:`\tau = 2^{\text{tau\_exp}}` (as for
        :meth:`~exactdyn.numeric.taylor.NativeFloatEngine.coefficients`); returns the
        internal ``(N + 1, size)`` array (overwritten next call)."""
        divisors = np.ldexp(np.arange(1, self.order + 1, dtype=self.dtype), -tau_exp)
        st = self.state
        st[0] = y
        nodes, series, native = self.nodes, self.series, self.native
        for k in range(self.order):
            for i in self.sweep:
                nd = nodes[i]
                kind = nd.kind
                if kind == "mm":
                    a, b = nd.args
                    if nodes[a].const:
                        np.matmul(native[a], series[b][k], out=series[i][k])
                    elif nodes[b].const:
                        np.matmul(series[a][k], native[b], out=series[i][k])
                    else:
                        series[i][k] = np.einsum("jil,jlm->im", series[a][:k + 1],
                                                 series[b][k::-1])
                elif kind == "add":
                    series[i][k] = _sum_terms(nodes, nd.args, native, series, k, 0)
                else:  # scale
                    np.multiply(series[nd.args[0]][k], native[i], out=series[i][k])
            for o, sl in zip(self.outputs, self.slices, strict=True):
                if nodes[o].const:
                    v = native[o] if k == 0 else 0
                else:
                    v = series[o][k]
                st[k + 1, sl] = (np.asarray(v) / divisors[k]).reshape(-1) if np.ndim(v) else v
        return st
