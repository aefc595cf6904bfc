r"""Taylor-mode automatic differentiation of a symbolic gradient flow.

The width-generic right-hand sides :math:`\dot x_j = F_x(\ldots)` derived in
:mod:`exactdyn.symbolic` are compiled into a small operation DAG whose nodes are whole
vectors over the neurons (the free index ``j``), scalars (reductions
:math:`\sum_{i=0}^{d-1} g_i` and hyperparameters folded into constants) and the
elementary operations between them. Each node carries the truncated Taylor series of its
value along the trajectory, :math:`a(t_0 + s) = \sum_{k=0}^{N} a_k s^k`, stored as a
numpy object array of shape ``(N + 1, width)`` (``(N + 1, 1)`` for scalars) whose
entries are ``gmpy2.mpfr`` numbers at the working precision. Nothing is unrolled over
the neurons: an operation on a node is a handful of numpy calls whatever the width.

For the ODE :math:`\dot y = F(y)` the coefficients follow from

.. math:: y_{k+1} = \frac{[F(y)]_k}{k + 1},

where :math:`[F(y)]_k` needs only :math:`y_0, \ldots, y_k`, so the series are built one
order at a time, sweeping the DAG once per order with the classical recurrences
(Moore 1966; Griewank & Walther, *Evaluating Derivatives*, 2008, ch. 13):

.. math::
    (a b)_k &= \sum_{j=0}^{k} a_j b_{k-j}, \\
    (a^\alpha)_k &= \frac{1}{k a_0}\sum_{j=1}^{k} \bigl(\alpha j - (k - j)\bigr)
        a_j (a^\alpha)_{k-j}, \\
    (e^a)_k &= \frac1k \sum_{j=1}^{k} j a_j (e^a)_{k-j}, \qquad
    (\ln a)_k = \frac{1}{a_0}\Bigl(a_k - \frac1k\sum_{j=1}^{k-1} j (\ln a)_j a_{k-j}\Bigr), \\
    (\tanh a)_k &= \frac1k \sum_{j=1}^{k} j a_j s_{k-j}, \quad s = 1 - \tanh^2 a,

and the neuron reduction :math:`(\sum_i g_i)_k = \sum_i (g_i)_k`. Integer powers are
expanded into products by binary exponentiation (exact, and valid where the base
vanishes), negative ones go through the reciprocal (:math:`\alpha = -1`).

Two engines evaluate the recurrences: :class:`TaylorEngine` on ``gmpy2.mpfr`` (every
node kind) and :class:`FixedPointEngine` on scaled ``gmpy2.mpz`` integers (polynomial
flows only, about twice as fast: an integer product in a numpy object array skips the
exponent handling and the per-term rounding of a floating-point one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gmpy2
import numpy as np
import sympy as sp

from ..symbolic.sums import NEURON_INDEX, WIDTH

_SCALAR, _VECTOR = 1, 0  # node shapes: width-1 (broadcast) or full width


class UnsupportedExpression(ValueError):
    """The Taylor-mode compiler met a function it has no recurrence for."""


@dataclass
class _Node:
    kind: str
    args: tuple
    scalar: bool
    data: object = None  # constant value, variable slice, power exponent, ...


@dataclass
class TaylorProgram:
    r"""The operation DAG of a flow's right-hand side, with constants evaluated.

    Attributes
    ----------
    nodes : list
        Series nodes in topological order (``kind`` in ``var``, ``const``, ``add``,
        ``scale``, ``mul``, ``sq``, ``reduce``, ``pow``, ``exp``, ``log``, ``tanh``).
    outputs : list of int
        For each state base (in state order), the node holding its right-hand side.
    slices : list of slice
        Where each state base sits in the packed state.
    width : int
        The number of neurons.
    """

    nodes: list
    outputs: list
    slices: list
    width: int
    size: int
    ops_count: dict = field(default_factory=dict)


class _Builder:
    """Translate sympy right-hand sides into :class:`TaylorProgram` nodes.

    Structurally equal subexpressions map to one node (hash-consing on the sympy tree),
    which is the common-subexpression elimination of the DAG. Subexpressions that do not
    depend on the state are evaluated once, in ``mpfr`` at the working precision.
    """

    def __init__(self, bases, slices, values: dict, width: int):
        self.vector_of = {}
        self.nodes: list = []
        self.memo: dict = {}
        self.values = values  # sympy Symbol -> mpfr
        self.width = width
        for b, sl in zip(bases, slices, strict=True):
            self.vector_of[b] = self._new(_Node("var", (), False, sl))

    # -- nodes ---------------------------------------------------------------------------
    def _new(self, node: _Node) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    def _series(self, kind, args, data=None) -> int:
        scalar = kind == "reduce" or all(self.nodes[a].scalar for a in args)
        key = (kind, tuple(args), repr(data))
        if key not in self.memo:
            self.memo[key] = self._new(_Node(kind, tuple(args), scalar, data))
        return self.memo[key]

    def const_node(self, value) -> int:
        return self._new(_Node("const", (), True, value))

    # -- translation ---------------------------------------------------------------------
    def build(self, expr, index):
        """Return ``('c', mpfr)`` for a state-free expression or ``('n', node)``."""
        key = (expr, index)
        if key in self.memo:
            return self.memo[key]
        out = self._build(expr, index)
        self.memo[key] = out
        return out

    def _build(self, expr, index):
        if isinstance(expr, sp.Indexed):
            if expr.base not in self.vector_of:
                raise UnsupportedExpression(f"unknown indexed array {expr.base} in {expr}")
            (ix,) = expr.indices
            if ix != index:
                raise UnsupportedExpression(
                    f"{expr}: only the entry at the current neuron index ({index}) can be used "
                    "here (no cross-neuron terms outside a reduction)")
            return ("n", self.vector_of[expr.base])
        if isinstance(expr, sp.Sum):
            (idx, lo, hi), = expr.limits
            if lo != 0 or sp.simplify(hi - (WIDTH - 1)) != 0:
                raise UnsupportedExpression(f"reduction {expr} must run over i = 0..d-1")
            body = expr.function
            if index is not None and index in body.free_symbols:
                raise UnsupportedExpression(f"nested reduction {expr} uses the outer index")
            kind, val = self.build(body, idx)
            if kind == "c":
                return ("c", val * self.width)
            if self.nodes[val].scalar:  # summand independent of the neuron
                return ("n", self._series("scale", (val,), gmpy2.mpfr(self.width)))
            return ("n", self._series("reduce", (val,)))
        if expr.is_Number or expr.is_NumberSymbol:
            return ("c", _mpfr_of_number(expr))
        if isinstance(expr, sp.Symbol):
            if expr == WIDTH:
                return ("c", gmpy2.mpfr(self.width))
            if expr in self.values:
                return ("c", self.values[expr])
            raise UnsupportedExpression(f"no value for the symbol {expr}")
        if isinstance(expr, sp.Add):
            const = gmpy2.mpfr(0)
            nodes = []
            for a in expr.args:
                kind, val = self.build(a, index)
                if kind == "c":
                    const += val
                else:
                    nodes.append(val)
            if not nodes:
                return ("c", const)
            if len(nodes) == 1 and const == 0:
                return ("n", nodes[0])
            return ("n", self._series("add", tuple(sorted(nodes)), const))
        if isinstance(expr, sp.Mul):
            const = gmpy2.mpfr(1)
            nodes = []
            for a in expr.args:
                kind, val = self.build(a, index)
                if kind == "c":
                    const *= val
                else:
                    nodes.append(val)
            if not nodes:
                return ("c", const)
            nodes.sort()
            acc = nodes[0]
            for nd in nodes[1:]:
                acc = self._series("mul", (acc, nd))
            if const != 1:
                acc = self._series("scale", (acc,), const)
            return ("n", acc)
        if isinstance(expr, sp.Pow):
            kind, base = self.build(expr.base, index)
            if expr.exp.is_Number:
                ex = _mpfr_of_number(expr.exp)
            else:
                ekind, ex = self.build(expr.exp, index)
                if ekind != "c":
                    raise UnsupportedExpression(f"{expr}: exponents must not depend on the state")
            if kind == "c":
                return ("c", base ** ex)
            if expr.exp.is_Integer:
                return ("n", self._int_power(base, int(expr.exp)))
            return ("n", self._series("pow", (base,), ex))
        if isinstance(expr, sp.Function):
            name = type(expr).__name__
            if name not in _FUNCTIONS or len(expr.args) != 1:
                raise UnsupportedExpression(
                    f"the Taylor integrator has no recurrence for {name}(...) in {expr}; "
                    f"supported: +, *, powers, {', '.join(sorted(_FUNCTIONS))}")
            kind, val = self.build(expr.args[0], index)
            if kind == "c":
                return ("c", _FUNCTIONS[name](val))
            if name == "sqrt":
                return ("n", self._series("pow", (val,), gmpy2.mpfr(1) / 2))
            return ("n", self._series(name, (val,)))
        raise UnsupportedExpression(
            f"the Taylor integrator cannot compile {type(expr).__name__}: {expr}")

    def _int_power(self, base: int, n: int) -> int:
        if n < 0:
            return self._series("pow", (self._int_power(base, -n),), gmpy2.mpfr(-1))
        result = None
        sq = base
        while n:
            if n & 1:
                result = sq if result is None else self._series("mul", tuple(sorted((result, sq))))
            n >>= 1
            if n:
                sq = self._series("sq", (sq,))
        return result


_FUNCTIONS = {"exp": gmpy2.exp, "log": gmpy2.log, "tanh": gmpy2.tanh, "sqrt": gmpy2.sqrt}


def _mpfr_of_number(x) -> gmpy2.mpfr:
    """A sympy number as ``mpfr`` at the current precision (rationals exactly rounded)."""
    x = sp.sympify(x)
    if x.is_Integer:
        return gmpy2.mpfr(int(x))
    if x.is_Rational:
        return gmpy2.mpfr(int(x.p)) / int(x.q)
    digits = int(gmpy2.get_context().precision * 0.302) + 10
    return gmpy2.mpfr(str(sp.N(x, digits)))


def compile_flow(flow, values: dict, width: int, slices) -> TaylorProgram:
    r"""Compile ``flow.rhs`` into a :class:`TaylorProgram` for one width.

    Parameters
    ----------
    flow : GradientFlow
        Symbolic flow: ``rhs[base]`` at the free index :data:`NEURON_INDEX`.
    values : dict
        Hyperparameter symbol -> ``mpfr`` value (at the working precision).
    width : int
        Number of neurons.
    slices : sequence of slice
        Location of each base (in ``flow.network.params`` order) in the packed state.

    Must be called inside the ``gmpy2`` context of the working precision: the constants
    are evaluated once, here.
    """
    bases = flow.network.params
    b = _Builder(bases, slices, values, width)
    outputs = []
    for base in bases:
        kind, val = b.build(sp.sympify(flow.rhs[base]), NEURON_INDEX)
        if kind == "c":
            val = b.const_node(val)
        outputs.append(val)
    size = max(sl.stop for sl in slices)
    counts: dict = {}
    for nd in b.nodes:
        counts[nd.kind] = counts.get(nd.kind, 0) + 1
    return TaylorProgram(b.nodes, outputs, list(slices), width, size, counts)


class TaylorEngine:
    """Computes the Taylor coefficients of the state of a :class:`TaylorProgram`.

    Parameters
    ----------
    program : TaylorProgram
    order : int
        Truncation order :math:`N`; the state series has :math:`N + 1` coefficients.
    """

    def __init__(self, program: TaylorProgram, order: int):
        self.program = program
        self.order = order
        n1 = order + 1
        self.zero = gmpy2.mpfr(0)
        self.state = np.full((n1, program.size), self.zero, dtype=object)
        self.series = []
        self.aux = []
        for nd in program.nodes:
            if nd.kind == "var":
                self.series.append(self.state[:, nd.data])
            else:
                w = 1 if nd.scalar else program.width
                self.series.append(np.full((n1, w), self.zero, dtype=object))
            self.aux.append(np.full((n1, 1 if nd.scalar else program.width), self.zero,
                                    dtype=object) if nd.kind == "tanh" else None)
        # Recurrence weights as mpfr, reused every step.
        self.ks = [gmpy2.mpfr(k) for k in range(n1 + 1)]
        self.inv = [None] + [gmpy2.mpfr(1) / k for k in range(1, n1 + 1)]
        self._pow_w = {}
        for i, nd in enumerate(program.nodes):
            if nd.kind == "pow":
                alpha = nd.data
                self._pow_w[i] = [None] + [
                    np.array([alpha * j - (k - j) for j in range(1, k + 1)],
                             dtype=object)[:, None] for k in range(1, n1)]
        self._jw = [None] + [np.array(self.ks[1:k + 1], dtype=object)[:, None]
                             for k in range(1, n1)]

    def coefficients(self, y) -> np.ndarray:
        r"""All :math:`N + 1` Taylor coefficients of the state at a point ``y``.

        Returns the internal ``(N + 1, size)`` object array (overwritten next call).
        """
        st = self.state
        st[0] = y
        nodes, series, outputs = self.program.nodes, self.series, self.program.outputs
        slices = self.program.slices
        for k in range(self.order):
            for i, nd in enumerate(nodes):
                if nd.kind != "var":
                    self._order_k(i, nd, k)
            for o, sl in zip(outputs, slices, strict=True):
                st[k + 1, sl] = series[o][k] / (k + 1)
        return st

    def _order_k(self, i, nd, k):
        s = self.series
        out = s[i]
        kind = nd.kind
        if kind == "mul":
            a, b = s[nd.args[0]], s[nd.args[1]]
            if k == 0:
                out[0] = a[0] * b[0]
            elif a.shape[1] == b.shape[1]:
                out[k] = np.einsum("ij,ij->j", a[:k + 1], b[k::-1])
            elif a.shape[1] == 1:
                out[k] = np.dot(a[k::-1, 0], b[:k + 1])
            else:
                out[k] = np.dot(b[k::-1, 0], a[:k + 1])
        elif kind == "add":
            acc = s[nd.args[0]][k]
            for a in nd.args[1:]:
                acc = acc + s[a][k]
            out[k] = acc + nd.data if k == 0 else acc
        elif kind == "scale":
            out[k] = s[nd.args[0]][k] * nd.data
        elif kind == "reduce":
            out[k, 0] = s[nd.args[0]][k].sum()
        elif kind == "sq":
            a = s[nd.args[0]]
            h = (k + 1) // 2
            if k == 0:
                out[0] = a[0] * a[0]
            else:
                acc = np.einsum("ij,ij->j", a[:h], a[k:k - h:-1]) * 2
                out[k] = acc + a[h] * a[h] if k % 2 == 0 else acc
        elif kind == "const":
            out[k] = nd.data if k == 0 else self.zero
        elif kind == "pow":
            a = s[nd.args[0]]
            if k == 0:
                if nd.data < 0 or not nd.data.is_integer():
                    if any(x == 0 for x in a[0]):
                        raise ZeroDivisionError(f"power {nd.data} of a series vanishing at 0")
                out[0] = np.array([x ** nd.data for x in a[0]], dtype=object)
            else:
                acc = (self._pow_w[i][k] * a[1:k + 1] * out[k - 1::-1]).sum(axis=0)
                out[k] = acc / (a[0] * k)
        elif kind == "exp":
            a = s[nd.args[0]]
            if k == 0:
                out[0] = np.array([gmpy2.exp(x) for x in a[0]], dtype=object)
            else:
                out[k] = (self._jw[k] * a[1:k + 1] * out[k - 1::-1]).sum(axis=0) * self.inv[k]
        elif kind == "log":
            a = s[nd.args[0]]
            if k == 0:
                out[0] = np.array([gmpy2.log(x) for x in a[0]], dtype=object)
            elif k == 1:
                out[1] = a[1] / a[0]
            else:
                acc = (self._jw[k - 1] * out[1:k] * a[k - 1:0:-1]).sum(axis=0)
                out[k] = (a[k] - acc * self.inv[k]) / a[0]
        elif kind == "tanh":
            a, sa = s[nd.args[0]], self.aux[i]
            if k == 0:
                out[0] = np.array([gmpy2.tanh(x) for x in a[0]], dtype=object)
                sa[0] = 1 - out[0] * out[0]
            else:
                out[k] = (self._jw[k] * a[1:k + 1] * sa[k - 1::-1]).sum(axis=0) * self.inv[k]
                sa[k] = -np.einsum("ij,ij->j", out[:k + 1], out[k::-1])
        else:  # pragma: no cover - the builder emits only the kinds above
            raise UnsupportedExpression(f"unknown node kind {kind}")


#: Node kinds the fixed-point engine handles (polynomial flows).
POLYNOMIAL_KINDS = frozenset({"var", "const", "add", "scale", "mul", "sq", "reduce"})


def is_polynomial(program: TaylorProgram) -> bool:
    """Whether every node of ``program`` is a polynomial operation."""
    return all(nd.kind in POLYNOMIAL_KINDS for nd in program.nodes)


def cauchy_product(a, b, k: int):
    r"""The order-k coefficient :math:`\sum_{j\le k} a_j b_{k-j}` of a product of two series
    (rows: orders; columns: entries, one column for a scalar series), unscaled. Shared by
    the fixed-point (``mpz``, exact in integers) and the native-float engines.

    A scalar series times a vector one is ``np.dot``, about 30% less than the equivalent
    ``einsum`` on object arrays of ``mpz`` (measured at width 8, order 25)."""
    if a.shape[1] == b.shape[1]:
        return np.einsum("ij,ij->j", a[:k + 1], b[k::-1])
    if a.shape[1] == 1:
        return np.dot(a[k::-1, 0], b[:k + 1])
    return np.dot(b[k::-1, 0], a[:k + 1])


def cauchy_square(a, k: int):
    r"""The order-k coefficient of :math:`a^2`, each cross term once and doubled:
    :math:`2\sum_{j<k/2} a_j a_{k-j} + [k \text{ even}]\, a_{k/2}^2`."""
    if k == 0:
        return a[0] * a[0]
    h = (k + 1) // 2
    acc = np.einsum("ij,ij->j", a[:h], a[k:k - h:-1]) * 2
    return acc + a[h] * a[h] if k % 2 == 0 else acc


class FixedPointEngine:
    r"""Taylor coefficients of a polynomial flow in scaled fixed-point integers.

    Every coefficient is a ``gmpy2.mpz`` :math:`A` standing for :math:`A\,2^{-F}`, and
    the series is taken in the normalized time :math:`s = (t - t_0)/\tau` with
    :math:`\tau = 2^{e}`, so the stored coefficients are :math:`x_k\tau^k` and the
    recurrence becomes

    .. math:: X_{k+1} = \frac{\tau\,[F(x)]_k}{k + 1}.

    A Cauchy product is accumulated exactly in integers and rounded once,
    :math:`(AB)_k = \lfloor 2^{-F}\sum_j A_j B_{k-j}\rfloor`; integer products in
    numpy object arrays cost less than half of ``mpfr`` ones (no exponent handling, no
    rounding per term). With :math:`F` chosen from the state's size, this carries the
    same normwise precision as the floating-point engine. Only the polynomial node
    kinds (:data:`POLYNOMIAL_KINDS`) are supported; other flows use
    :class:`TaylorEngine`.
    """

    def __init__(self, program: TaylorProgram, order: int):
        if not is_polynomial(program):
            raise UnsupportedExpression("FixedPointEngine needs a polynomial flow")
        self.program = program
        self.order = order
        n1 = order + 1
        zero = gmpy2.mpz(0)
        self.zero = zero
        self.state = np.full((n1, program.size), zero, dtype=object)
        self.series = []
        for nd in program.nodes:
            if nd.kind == "var":
                self.series.append(self.state[:, nd.data])
            else:
                w = 1 if nd.scalar else program.width
                self.series.append(np.full((n1, w), zero, dtype=object))
        # Peephole: a constant factor applied to a product used nowhere else is folded
        # into that product, (c * (a b))_k = floor(2^{-2F} c sum_j a_j b_{k-j}): one
        # rounding and two array operations fewer per order.
        uses = [0] * len(program.nodes)
        for nd in program.nodes:
            for a in nd.args:
                uses[a] += 1
        for o in program.outputs:
            uses[o] += 1
        self.fused = {}  # product node -> the scale node folded into it
        self.skip = set()
        for i, nd in enumerate(program.nodes):
            if nd.kind == "scale":
                (a,) = nd.args
                if program.nodes[a].kind in ("mul", "sq") and uses[a] == 1:
                    self.fused[a] = i
                    self.skip.add(i)
                    self.series[i] = self.series[a]
        # Second peephole: a reduction of an elementwise product used nowhere else is one
        # contraction over the order and the neurons, (sum_i a_i b_i)_k =
        # floor(2^{-F} sum_{j,i} a_{j,i} b_{k-j,i}): the product's series is never formed
        # (two array operations fewer per order, one rounding instead of one per neuron).
        self.contracted = {}  # reduce node -> the product node it contracts
        for i, nd in enumerate(program.nodes):
            if nd.kind == "reduce":
                (a,) = nd.args
                pa = program.nodes[a]
                if pa.kind == "mul" and uses[a] == 1 and a not in self.fused and all(
                        not program.nodes[x].scalar for x in pa.args):
                    self.contracted[i] = a
                    self.skip.add(a)
        # Third peephole: a fused scale node that is a right-hand side and used nowhere
        # else goes straight into the state's next coefficient, with one rounding,
        # X_{k+1} = floor(2^{-2F} tau c sum_j a_j b_{k-j} / (k + 1)): its own series is
        # never read, so neither it nor the shift-then-divide of the output is formed.
        self.direct = {}  # product node -> position of the state base it writes
        for j, o in enumerate(program.outputs):
            for a, sc in self.fused.items():
                if sc == o and uses[o] == 1:
                    self.direct[a] = j
        # A unit factor c = +-1 (every default-hyperparameter Linear1D flow) needs no
        # multiplication on the direct path, only the divisor's sign.
        self.unit = {a: (int(program.nodes[sc].data)
                         if program.nodes[sc].data in (1, -1) else 0)
                     for a, sc in self.fused.items()}

    def coefficients(self, y, frac_bits: int, tau_exp: int) -> np.ndarray:
        """Coefficients :math:`X_0..X_N` (``mpz``, scale :math:`2^{-F}`) at the point ``y``.

        ``y`` is the state as ``mpz`` at scale :math:`2^{-F}` (``frac_bits``); the time
        unit is :math:`\\tau = 2^{\\text{tau\\_exp}}`.
        """
        F = frac_bits
        one = 1 << F
        consts = []
        for nd in self.program.nodes:
            if nd.kind in ("add", "scale", "const"):
                consts.append(gmpy2.mpz(gmpy2.rint(nd.data * one)))
            else:
                consts.append(None)
        st = self.state
        st[0] = y
        nodes, series = self.program.nodes, self.series
        outputs, slices = self.program.outputs, self.program.slices
        up, down = max(tau_exp, 0), max(-tau_exp, 0)
        fused, skip, direct, unit = self.fused, self.skip, self.direct, self.unit
        contracted = self.contracted
        written = set(direct.values())
        direct = {a: slices[j] for a, j in direct.items()}

        def store(i, k, out, acc, shift):
            """A product's order-k coefficient ``acc`` (scale 2^-2F): into the state's
            next coefficient when the node is a right-hand side (fused with its factor
            and the 1/(k+1) of the recurrence, one rounding), else into its series."""
            if i in direct:
                sign = unit[i]
                if sign:  # c = +-1: no multiplication, floor(-x/d) = floor(x/-d)
                    st[k + 1, direct[i]] = (acc << up if up else acc) // (
                        sign * ((k + 1) << (F + down)))
                else:
                    num = acc * consts[fused[i]]
                    st[k + 1, direct[i]] = (num << up if up else num) // (
                        (k + 1) << (2 * F + down))
            else:
                out[k] = acc >> F if shift else (acc * consts[fused[i]]) >> (2 * F)

        for k in range(self.order):
            for i, nd in enumerate(nodes):
                kind = nd.kind
                if kind == "var" or i in skip:
                    continue
                out = series[i]
                shift = F if i not in fused else None
                if kind == "mul":
                    acc = cauchy_product(series[nd.args[0]], series[nd.args[1]], k)
                    store(i, k, out, acc, shift)
                elif kind == "add":
                    acc = series[nd.args[0]][k]
                    for a in nd.args[1:]:
                        acc = acc + series[a][k]
                    out[k] = acc + consts[i] if k == 0 else acc
                elif kind == "scale":
                    out[k] = (series[nd.args[0]][k] * consts[i]) >> F
                elif kind == "reduce":
                    if i in contracted:
                        pa = nodes[contracted[i]].args
                        out[k, 0] = np.einsum("ij,ij->", series[pa[0]][:k + 1],
                                              series[pa[1]][k::-1]) >> F
                    else:
                        out[k, 0] = series[nd.args[0]][k].sum()
                elif kind == "sq":
                    acc = cauchy_square(series[nd.args[0]], k)
                    store(i, k, out, acc, shift)
                else:  # const
                    out[k] = consts[i] if k == 0 else self.zero
            divisor = (k + 1) << down  # one rounding: floor(tau X / (k + 1))
            for j, (o, sl) in enumerate(zip(outputs, slices, strict=True)):
                if j in written:
                    continue
                v = series[o][k]
                st[k + 1, sl] = (v << up if up else v) // divisor
        return st


def to_native(x, dtype):
    r"""An ``mpfr`` (or int/float) rounded to the native float type ``dtype``.

    Split into a float64 head and tail, :math:`x \approx h + \ell` with
    :math:`h = \mathrm{fl}(x)`, :math:`\ell = \mathrm{fl}(x - h)` (106 bits, exact for
    ``mpfr`` of up to 106 bits), and summed in ``dtype``: one rounding to its mantissa,
    without going through decimal strings (whose parsing into ``longdouble`` is
    platform-dependent).
    """
    head = float(x)
    if not np.isfinite(head):
        return dtype.type(head)
    tail = float(gmpy2.mpfr(x) - head)
    return dtype.type(head) + dtype.type(tail)


def native_to_mpfr(x) -> gmpy2.mpfr:
    """A native float (``float64`` or ``longdouble``) as ``mpfr``, exactly: head and
    remainder are float64 numbers whose sum is ``x`` (a longdouble has at most 64
    mantissa bits, two doubles carry 106), added at the current gmpy2 precision."""
    head = float(x)
    tail = float(x - type(x)(head))
    return gmpy2.mpfr(head) + gmpy2.mpfr(tail)


class NativeFloatEngine:
    r"""Taylor coefficients of a polynomial flow in a native numpy float type.

    The recurrences of :class:`TaylorEngine` (polynomial node kinds only,
    :data:`POLYNOMIAL_KINDS`) on arrays of ``dtype`` — in practice ``np.longdouble``,
    which on x86-64 Linux carries a 64-bit mantissa (:math:`\approx 19.3` digits) and
    runs at numpy speed: one compiled ``einsum`` per Cauchy product and order, with no
    Python object per coefficient. :mod:`exactdyn.numeric.highprec` picks it only when
    ``np.finfo(dtype)`` has the bits for the requested digits plus
    :data:`~exactdyn.numeric.highprec.NATIVE_GUARD_BITS`.

    Parameters
    ----------
    program : TaylorProgram
        A polynomial program (:func:`is_polynomial`).
    order : int
        Truncation order :math:`N`.
    dtype : numpy dtype
        The floating-point type of every coefficient.
    """

    def __init__(self, program: TaylorProgram, order: int, dtype):
        if not is_polynomial(program):
            raise UnsupportedExpression("NativeFloatEngine needs a polynomial flow")
        self.program = program
        self.order = order
        self.dtype = dtype = np.dtype(dtype)
        n1 = order + 1
        self.state = np.zeros((n1, program.size), dtype=dtype)
        self.series = []
        self.consts = []
        for nd in program.nodes:
            if nd.kind == "var":
                self.series.append(self.state[:, nd.data])
            else:
                self.series.append(np.zeros((n1, 1 if nd.scalar else program.width),
                                            dtype=dtype))
            self.consts.append(to_native(nd.data, dtype)
                               if nd.kind in ("add", "scale", "const") else None)
        uses = [0] * len(program.nodes)
        for nd in program.nodes:
            for a in nd.args:
                uses[a] += 1
        for o in program.outputs:
            uses[o] += 1
        # A reduction of an elementwise product used nowhere else is one contraction over
        # the order and the neurons (as in FixedPointEngine): the product is never formed.
        self.contracted = {}
        self.skip = set()
        for i, nd in enumerate(program.nodes):
            if nd.kind == "reduce":
                (a,) = nd.args
                pa = program.nodes[a]
                if pa.kind == "mul" and uses[a] == 1 and all(
                        not program.nodes[x].scalar for x in pa.args):
                    self.contracted[i] = a
                    self.skip.add(a)
        # A right-hand side c * (a b) whose scale and product are used nowhere else goes
        # straight into the state's next coefficient, X_{k+1} = (c/(k + 1)) sum_j a_j
        # b_{k-j}: one multiplication by a precomputed factor instead of a scaling, a
        # copy and a division (the factor's rounding adds one unit in the last place).
        self.direct = {}  # product node -> (slice of its state base, factors per order)
        self.written = set()  # positions of the state bases written that way
        for j, o in enumerate(program.outputs):
            nd = program.nodes[o]
            if nd.kind == "scale" and uses[o] == 1 and uses[nd.args[0]] == 1 \
                    and program.nodes[nd.args[0]].kind in ("mul", "sq") \
                    and nd.args[0] not in self.skip:
                c = nd.data
                factors = np.array([to_native(c / (k + 1), dtype) for k in range(order)],
                                   dtype=dtype)
                self.direct[nd.args[0]] = (program.slices[j], factors)
                self.skip.add(o)
                self.written.add(j)

    def coefficients(self, y, tau_exp: int = 0) -> np.ndarray:
        r"""All :math:`N + 1` Taylor coefficients of the state at ``y`` (an array of the
        engine's ``dtype``) in the normalized time :math:`s = (t - t_0)/\tau`,
        :math:`\tau = 2^{\text{tau\_exp}}`, so :math:`X_k = x_k\tau^k` stay of the
        state's size whatever the time scale (no overflow for huge states):
        :math:`X_{k+1} = \tau [F(X)]_k/(k + 1)`, a division by the exact
        :math:`(k + 1)/\tau` (or, for a scaled product, a multiplication by
        :math:`c\tau/(k+1)`). Returns the internal ``(N + 1, size)`` array (overwritten
        next call)."""
        st = self.state
        st[0] = y
        nodes, series, consts = self.program.nodes, self.series, self.consts
        outputs, slices = self.program.outputs, self.program.slices
        skip, contracted = self.skip, self.contracted
        # tau = 2^e enters exactly: ldexp scales by a power of two.
        direct = {a: (sl, np.ldexp(f, tau_exp)) for a, (sl, f) in self.direct.items()}
        divisors = np.ldexp(np.arange(1, self.order + 1, dtype=self.dtype), -tau_exp)
        # The cheapest numpy call per shape (measured on small longdouble arrays): dot
        # for a scalar series times a vector one, vdot for a full contraction.
        for k in range(self.order):
            for i, nd in enumerate(nodes):
                kind = nd.kind
                if kind == "var" or i in skip:
                    continue
                out = series[i]
                if kind == "mul":
                    acc = cauchy_product(series[nd.args[0]], series[nd.args[1]], k)
                elif kind == "sq":
                    acc = cauchy_square(series[nd.args[0]], k)
                elif kind == "add":
                    acc = series[nd.args[0]][k]
                    for a in nd.args[1:]:
                        acc = acc + series[a][k]
                    out[k] = acc + consts[i] if k == 0 else acc
                    continue
                elif kind == "scale":
                    np.multiply(series[nd.args[0]][k], consts[i], out=out[k])
                    continue
                elif kind == "reduce":
                    if i in contracted:
                        pa = nodes[contracted[i]].args
                        out[k, 0] = np.vdot(series[pa[0]][:k + 1], series[pa[1]][k::-1])
                    else:
                        out[k, 0] = series[nd.args[0]][k].sum()
                    continue
                else:  # const
                    out[k] = consts[i] if k == 0 else 0
                    continue
                if i in direct:
                    sl, factors = direct[i]
                    np.multiply(acc, factors[k], out=st[k + 1, sl])
                else:
                    out[k] = acc
            # Dividing by (k + 1)/tau exactly, not multiplying by a rounded tau/(k + 1):
            # one rounding per coefficient, as in the other engines.
            for j, (o, sl) in enumerate(zip(outputs, slices, strict=True)):
                if j not in self.written:
                    np.divide(series[o][k], divisors[k], out=st[k + 1, sl])
        return st
