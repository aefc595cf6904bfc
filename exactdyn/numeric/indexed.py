r"""The one printer of gradient flows in indexed notation, to numpy / mpmath code.

Every flow whose parameters are ``IndexedBase`` arrays (the 1-D linear network, a user's
:class:`~exactdyn.Network`, the two-layer network, the CNN) is printed here. Every
subexpression is an array whose axes are index *kinds* in a canonical order (neuron,
sample, feature; the CNN's sample, position, patch, channel); an ``Indexed`` entry
``W[k, l]`` becomes the array ``W`` with axes (neuron, feature), elementwise operations
broadcast, and a reduction :math:`\sum_l W_{kl}X_{il}` becomes one matrix product
``W @ X.T`` (two operands) or an ``einsum`` (more). Bound and free indices of one kind
(``k`` and ``j``) name the same axis, so equal subexpressions generate equal code, which
is computed once: the pre-activations :math:`h = WX^\top` are shared by the output and both
right-hand sides. No Python loop over neurons or samples remains, and the generated code
is independent of the sizes.

Two further kinds serve the one-index flows of :mod:`exactdyn.numeric.lowering`: a second
neuron kind for Jacobian blocks (``u[j]`` a column, ``u[k]`` a row, ``KroneckerDelta(j, k)``
the identity) and a leading time kind for observables evaluated on a whole trajectory at
once. Exact rationals print as ``_rat(p, q)`` (dyadic ones as float literals, exact in
both), so the same source runs on float64 and, in :data:`.codegen.MPMATH_NAMESPACE`, on
object arrays of ``mpmath.mpf`` without losing digits.
"""

from __future__ import annotations

import re

import sympy as sp

from .codegen import TIME, CompiledExpressions
from .printing import _ArrayPrinter

KIND_ORDER = ("neuron", "sample", "feature")
_LETTER = {"neuron": "k", "sample": "i", "feature": "l", TIME: "t", "neuron2": "m"}


def _canon(labels, order=KIND_ORDER) -> tuple:
    return tuple(k for k in order if k in set(labels))


def _dyadic(q: int) -> bool:
    return q & (q - 1) == 0


class _Lowerer:
    """Emits one temporary per distinct array operation of indexed expressions.

    ``kinds`` maps index symbols to kinds; ``functions`` maps sympy function classes to
    names in the namespace (an activation and its derivative); ``sizes`` maps a kind to the
    code of its length (needed only by ``KroneckerDelta``); ``batched`` holds the arrays
    that carry a leading time axis; ``order`` overrides the class's canonical kind order.
    """

    order = KIND_ORDER
    #: The ``einsum`` letter of each kind (a subclass over other kinds gives its own).
    letters = _LETTER

    def __init__(self, kinds: dict, functions: dict, sizes: dict | None = None,
                 batched: frozenset = frozenset(), order: tuple | None = None):
        self.kinds = kinds  # index Symbol -> kind
        self.functions = functions  # sympy Function class -> name in the namespace
        self.sizes = sizes or {}
        self.batched = batched
        if order is not None:
            self.order = order
        self.printer = _ArrayPrinter({"fully_qualified_modules": False, "standard": "python3"})
        self.lines: list = []
        self.memo: dict = {}

    #: Write array temporaries into the buffers ``_b`` (see :func:`lower_indexed`).
    buffers = False

    def emit(self, code: str, labels: tuple, inplace=None):
        """The temporary computing ``code`` (axes ``labels``), emitted once per distinct code.

        ``inplace``: a function of a destination name returning the lines that compute the
        same value, in the same order of operations, with ufuncs writing ``out=`` it. With
        :attr:`buffers`, an array temporary with such lines is kept in the buffer dict
        ``_b`` between calls: the first call computes ``code`` and stores it, later calls
        overwrite the stored array in place (the same shapes and dtypes, hence the same
        numbers, every call of one lowered flow)."""
        if code not in self.memo:
            name = f"_t{len(self.memo)}"
            self.memo[code] = name
            if self.buffers and labels and inplace is not None:
                key = len(self.memo) - 1
                self.lines += [f"    {name} = _b.get({key})",
                               f"    if {name} is None:",
                               f"        {name} = _b[{key}] = {code}",
                               "    else:"]
                self.lines += [f"        {line}" for line in inplace(name)]
            else:
                self.lines.append(f"    {name} = {code}")
        return self.memo[code], labels

    @staticmethod
    def product_into(scalar, factors):
        """``inplace`` lines (see :meth:`emit`) of ``scalar * f0 * f1 * ...`` evaluated left
        to right as Python does (``scalar`` code or None, ``"-1"`` for a sign)."""
        def lines(dest):
            if scalar == "-1":
                first = [f"np.negative({factors[0]}, out={dest})"]
                rest = factors[1:]
            elif scalar:
                first = [f"np.multiply({scalar}, {factors[0]}, out={dest})"]
                rest = factors[1:]
            else:
                first = [f"np.multiply({factors[0]}, {factors[1]}, out={dest})"]
                rest = factors[2:]
            return first + [f"np.multiply({dest}, {f}, out={dest})" for f in rest]
        # a lone factor is no new array (it may be the caller's input): never a buffer
        return lines if scalar or len(factors) > 1 else None

    @staticmethod
    def sum_into(terms):
        """``inplace`` lines (see :meth:`emit`) of a sum of ``(negative, code)`` terms, left
        to right as Python evaluates ``-t0 + t1 - t2``."""
        def lines(dest):
            (neg0, first), (neg1, second) = terms[0], terms[1]
            if neg0:
                out = [f"np.negative({first}, out={dest})",
                       f"np.{'subtract' if neg1 else 'add'}({dest}, {second}, out={dest})"]
            else:
                out = [f"np.{'subtract' if neg1 else 'add'}({first}, {second}, out={dest})"]
            return out + [f"np.{'subtract' if neg else 'add'}({dest}, {t}, out={dest})"
                          for neg, t in terms[2:]]
        return lines

    def canon(self, labels) -> tuple:
        return _canon(labels, self.order)

    @staticmethod
    def align(code: str, labels: tuple, target: tuple) -> str:
        if labels == target or not labels:
            return code
        sub = ", ".join(":" if k in labels else "None" for k in target)
        return f"{code}[{sub}]"

    def lower(self, e):
        if isinstance(e, sp.Rational) and not isinstance(e, sp.Integer):
            if _dyadic(int(e.q)):
                return f"({float(e)!r})", ()
            return f"_rat({e.p}, {e.q})", ()
        if e.is_Number:
            return repr(float(e)) if not isinstance(e, sp.Integer) else str(int(e)), ()
        if isinstance(e, sp.Symbol):
            return e.name, ()
        if isinstance(e, sp.Indexed):
            labels = tuple(self.kinds[ix] for ix in e.indices)
            if e.base in self.batched:
                labels = (TIME,) + labels
            if labels != self.canon(labels):
                raise NotImplementedError(f"indices of {e} are not in canonical order")
            return e.base.name, labels
        if isinstance(e, sp.Add):
            return self._add(e)
        if isinstance(e, sp.Mul):
            return self._mul(e)
        if isinstance(e, sp.Pow):
            return self._pow(e)
        if isinstance(e, sp.KroneckerDelta):
            a, b = (self.kinds[ix] for ix in e.args)
            if a == b or a not in self.sizes:
                raise NotImplementedError(f"cannot lower {e}: the two indices need two kinds "
                                          "and a known length")
            return self.emit(f"np.eye({self.sizes[a]})", self.canon((a, b)))
        if isinstance(e, sp.Function) and type(e) in self.functions:
            arg, labels = self.lower(e.args[0])
            return self.emit(f"{self.functions[type(e)]}({arg})", labels)
        if isinstance(e, sp.Sum):
            return self.reduce(e)
        if isinstance(e, sp.Function):
            return self._elementwise(e)
        raise NotImplementedError(f"cannot lower {type(e).__name__}: {e}")

    def _add_parts(self, e):
        """``(terms, target)``: each term ``(negative, code)`` aligned to the common axes."""
        parts = []
        for a in e.args:
            coeff, rest = a.as_coeff_Mul()
            negative = coeff == -1 and rest != 1
            parts.append((negative,) + self.lower(rest if negative else a))
        target = self.canon(sum((p[2] for p in parts), ()))
        terms = [(neg, self.align(c, lab, target)) for neg, c, lab in parts]
        if len(terms) > 1 and terms[0][0] and not terms[1][0]:
            # -a + b as b - a: one operation, the same number (IEEE addition commutes)
            terms[:2] = terms[1::-1]
        return terms, target

    def _add(self, e):
        terms, target = self._add_parts(e)
        code = ""
        for k, (negative, term) in enumerate(terms):
            code += (" - " if negative else " + ") + term if k else ("-" if negative else "") + term
        return self.emit(f"({code})", target, self.sum_into(terms))

    def _mul_parts(self, e):
        """``(scalar, factors, target)``: the product of the scalar factors (code or None;
        ``"-1"`` alone for a sign) and the array factors aligned to the common axes."""
        coeff, rest = e.as_coeff_Mul()
        parts = [self.lower(a) for a in sp.Mul.make_args(rest)]
        scalars = [c for c, lab in parts if not lab]
        arrays = [(c, lab) for c, lab in parts if lab]
        if coeff != 1:
            scalars.insert(0, "-1" if coeff == -1 else self.lower(coeff)[0])
        target = self.canon(sum((lab for _c, lab in arrays), ()))
        factors = [self.align(c, lab, target) for c, lab in arrays]
        if not scalars:
            return None, factors, target
        if len(scalars) == 1:
            return scalars[0], factors, target
        return "(" + " * ".join(scalars) + ")", factors, target

    def _mul(self, e):
        # The scalar factors first: they multiply each other once, then the arrays.
        scalar, factors, target = self._mul_parts(e)
        inplace = self.product_into(scalar, factors) if factors else None
        if scalar == "-1" and factors:
            return self.emit("(-" + " * ".join(factors) + ")", target, inplace)
        if not factors and scalar.startswith("("):
            return self.emit(scalar, target)
        return self.emit("(" + " * ".join(([scalar] if scalar else []) + factors) + ")", target,
                         inplace)

    def lower_into(self, e, dest: str, labels: tuple | None = None):
        """Emit code that writes ``e`` into the array ``dest`` (``out=`` of the last
        ufuncs, so a product or a sum of arrays allocates no result of its own).
        ``labels``: the axes of ``dest``, if ``e`` may lack some of them (a right-hand side
        constant along an index of its parameter): then ``e`` is broadcast into it."""
        if labels is not None:
            have = self.canon(tuple({self.kinds[s] for s in e.free_symbols
                                     if s in self.kinds}))
            if have != tuple(labels):
                code, got = self.lower(e)
                self.lines.append(f"    {dest}[...] = {self.align(code, got, tuple(labels))}")
                return
        steps = None
        if isinstance(e, sp.Mul):
            scalar, factors, _target = self._mul_parts(e)
            if factors:
                if scalar == "-1":
                    steps = [f"np.negative({factors[0]}, out={dest})"]
                elif scalar:
                    steps = [f"np.multiply({scalar}, {factors[0]}, out={dest})"]
                elif len(factors) > 1:
                    steps = [f"np.multiply({factors[0]}, {factors[1]}, out={dest})"]
                    factors = factors[1:]
                if steps:
                    steps += [f"np.multiply({dest}, {f}, out={dest})" for f in factors[1:]]
        elif isinstance(e, sp.Add):
            terms, target = self._add_parts(e)
            if target:
                (neg0, first), (neg1, second) = terms[0], terms[1]
                if neg0:
                    steps = [f"np.negative({first}, out={dest})",
                             f"np.{'subtract' if neg1 else 'add'}({dest}, {second}, out={dest})"]
                else:
                    steps = [f"np.{'subtract' if neg1 else 'add'}({first}, {second}, out={dest})"]
                steps += [f"np.{'subtract' if neg else 'add'}({dest}, {t}, out={dest})"
                          for neg, t in terms[2:]]
        if steps is None:
            code, _labels = self.lower(e)
            steps = [f"{dest}[...] = {code}"]
        self.lines += [f"    {line}" for line in steps]

    def _pow(self, e):
        base, labels = self.lower(e.base)
        if e.exp == sp.S.Half:
            return self.emit(f"sqrt({base})", labels)
        if e.exp == -sp.S.Half:
            return self.emit(f"(1/sqrt({base}))", labels)
        if e.exp == -1:
            return self.emit(f"(1/{base})", labels)
        ec, el = self.lower(e.exp)
        if el:
            raise NotImplementedError("array exponents")
        return self.emit(f"({base}**{ec})", labels)

    def _elementwise(self, e):
        """Any other function of its arguments, printed by name (``exp``, ``log``, ...)
        on arrays broadcast to their common axes."""
        parts = [self.lower(a) for a in e.args]
        target = self.canon(sum((lab for _c, lab in parts), ()))
        dummies = [sp.Symbol(f"_arg{n}") for n in range(len(parts))]
        try:
            code = self.printer.doprint(e.func(*dummies))
        except Exception as exc:  # the printer knows no numeric form of this function
            raise NotImplementedError(f"cannot lower {e}: {exc}") from exc
        for dummy, (c, lab) in zip(dummies, parts):
            code = re.sub(rf"\b{dummy.name}\b", self.align(c, lab, target), code)
        return self.emit(code, target)

    def reduce(self, s: sp.Sum):
        if len(s.limits) != 1:
            raise NotImplementedError("one summation index per Sum")
        (idx, _lo, _hi), = s.limits
        kind = self.kinds[idx]
        free = {self.kinds[ix] for a in s.function.atoms(sp.Indexed) for ix in a.indices
                if ix != idx and ix in self.kinds}
        if kind in free:
            raise NotImplementedError(f"summand of {s} has a free index of its own kind")
        scalars, arrays = [], []
        for f in sp.Mul.make_args(s.function):
            code, labels = self.lower(f)
            (arrays if labels else scalars).append((code, labels))
        if not any(kind in lab for _c, lab in arrays):
            raise NotImplementedError(f"summand of {s} does not depend on its index")
        out = self.canon(tuple(k for _c, lab in arrays for k in lab if k != kind))
        if len(arrays) > 2:
            # Multiply the factors elementwise except one whose other axes no other factor
            # has (X in sum_i e_i sigma'(h_ki) X_il): the reduction is then one matmul.
            for pick in range(len(arrays)):
                rest = [arrays[q] for q in range(len(arrays)) if q != pick]
                rest_labels = self.canon(sum((lab for _c, lab in rest), ()))
                if set(rest_labels) & set(arrays[pick][1]) == {kind} and len(rest_labels) <= 2:
                    aligned = [self.align(c, lab, rest_labels) for c, lab in rest]
                    prod = self.emit("(" + " * ".join(aligned) + ")", rest_labels,
                                     self.product_into(None, aligned))
                    arrays = [prod, arrays[pick]]
                    break
        inplace = None
        if len(arrays) == 2 and arrays[0][1] == arrays[1][1] == (TIME, kind):
            code = f"_bdot({arrays[0][0]}, {arrays[1][0]})"
        elif len(arrays) == 2 and all(len(lab) <= 2 for _c, lab in arrays) and \
                set(arrays[0][1]) & set(arrays[1][1]) == {kind}:
            (ca, la), (cb, lb) = arrays
            left = ca if la[-1] == kind else f"{ca}.T"
            right = cb if lb[0] == kind else f"{cb}.T"
            got = tuple(k for k in la if k != kind) + tuple(k for k in lb if k != kind)
            code = f"({left} @ {right})" + (".T" if got != out else "")
            # the stored temporary of a transposed product is the transpose of its buffer
            dest = "{}.T" if got != out else "{}"
            inplace = (lambda d: [f"np.matmul({left}, {right}, out={dest.format(d)})"])
        elif len(arrays) == 1:
            (ca, la), = arrays
            code = f"np.sum({ca}, axis={la.index(kind)})"
        else:
            spec = ",".join("".join(self.letters[k] for k in lab) for _c, lab in arrays)
            spec += "->" + "".join(self.letters[k] for k in out)
            code = (f"np.einsum({spec!r}, {', '.join(c for c, _l in arrays)}, "
                    "optimize=True)")
        name, labels = self.emit(code, out, inplace)
        if scalars:
            factor = " * ".join(c for c, _l in scalars)
            # (s0 * s1 * name) multiplies the scalars first, then the array: the same here
            return self.emit(f"({factor} * {name})", labels,
                             lambda d: [f"np.multiply(({factor}), {name}, out={d})"])
        return name, labels


def lower_indexed(exprs, arrays, kinds, functions, func_name, lowerer=None, *, params=None,
                  sizes=None, batched=(), order=None, prologue=(),
                  into=False, into_labels=None) -> CompiledExpressions:
    """Source of ``def func_name(*arrays, *params)`` returning one array per expression.

    ``arrays`` are the ``IndexedBase`` inputs; the scalar parameters are ``params`` (in that
    order), by default the remaining free symbols sorted by name; ``functions`` maps sympy
    function classes to names that the caller's namespace defines (the activation and its
    derivative). ``lowerer`` is a subclass of the expression lowerer with its own axis order
    and reductions (the CNN's, :mod:`exactdyn.numeric.cnn`); default: neuron, sample,
    feature, or ``order``. ``sizes``, ``batched``: see :class:`_Lowerer`. ``prologue``:
    ``(symbol, code)`` pairs defining symbols (a width) from the arrays, emitted when used.
    With ``into``, the function takes a last argument ``_out``, a sequence of arrays (views
    of the caller's result) that it writes each expression into and returns
    (``into_labels``: the axes of each of those arrays, see :meth:`_Lowerer.lower_into`), and an
    optional one after it, ``_b``: a dict of buffers that the array temporaries (products,
    sums, matrix products) are written into, allocated by the first call that passes the
    dict and overwritten by every later one (ufuncs with ``out=``; the same operations in the
    same order, so the same numbers as without). Without ``_b`` (mpmath callers, one-off
    calls) every temporary is a new array, as before. One dict serves one caller at a time
    and one set of argument shapes and dtypes: the caller keeps one per thread and dtype
    (:class:`~exactdyn.numeric.buffers.ThreadBuffers`). The results live in ``_out``, never in
    a buffer, so nothing a caller keeps is overwritten by a later call.
    """
    low = (lowerer or _Lowerer)(kinds, functions, sizes=sizes, batched=frozenset(batched),
                                order=order)
    low.buffers = into
    if into:
        for k, e in enumerate(exprs):
            low.lower_into(e, f"_out[{k}]", None if into_labels is None else into_labels[k])
        outs = [(f"_out[{k}]", ()) for k in range(len(exprs))]
    else:
        outs = [low.lower(e) for e in exprs]
    used = set().union(*(_outside_limits(e) for e in exprs)) if exprs else set()
    defined = {sym: code for sym, code in prologue if sym in used}
    if params is None:
        # Symbols that only bound reductions (m - 1, d - 1) are not parameters.
        params = sorted({str(s) for s in used} - {str(k) for k in kinds}
                        - {b.name for b in arrays} - {str(s) for s in defined})
    args = tuple(b.name for b in arrays) + tuple(str(p) for p in params) + \
        (("_out",) if into else ())
    buffered = any(line.startswith("    _t") and "= _b.get(" in line for line in low.lines)
    lines = [f"def {func_name}({', '.join(args + (('_b=None',) if buffered else ()))}):"]
    if buffered:
        lines.append("    _b = {} if _b is None else _b")
    lines += [f"    {sym} = {code}" for sym, code in defined.items()]
    lines += low.lines
    lines.append(f"    return ({', '.join(c for c, _l in outs)},)")
    return CompiledExpressions("\n".join(lines) + "\n", args, func_name,
                               tuple(lab for _c, lab in outs))


def _outside_limits(e) -> set:
    """Free scalar symbols of ``e`` that appear outside summation limits."""
    if isinstance(e, sp.Symbol):
        return {e}
    if isinstance(e, sp.Indexed):
        return set()
    if isinstance(e, sp.Sum):
        return _outside_limits(e.function) - {lim[0] for lim in e.limits}
    out = set()
    for a in e.args:
        out |= _outside_limits(a)
    return out
