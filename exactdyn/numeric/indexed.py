r"""Lowering expressions with several index kinds (neurons, samples, features) to numpy.

A sibling of :mod:`exactdyn.numeric.lowering` (which handles one neuron index) for the
two-layer network of :mod:`exactdyn.symbolic.twolayer`. Every subexpression is an array
whose axes are index *kinds* in the canonical order (neuron, sample, feature); an
``Indexed`` entry ``W[k, l]`` becomes the array ``W`` with axes (neuron, feature),
elementwise operations broadcast, and a reduction :math:`\sum_l W_{kl}X_{il}` becomes one
matrix product ``W @ X.T`` (two operands) or an ``einsum`` (more). Bound and free indices
of one kind (``k`` and ``j``) name the same axis, so equal subexpressions generate equal
code, which is computed once: the pre-activations :math:`h = WX^\top` are shared by the
output and both right-hand sides. No Python loop over neurons or samples remains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

KIND_ORDER = ("neuron", "sample", "feature")
_LETTER = {"neuron": "k", "sample": "i", "feature": "l"}


def _canon(labels, order=KIND_ORDER) -> tuple:
    return tuple(k for k in order if k in set(labels))


class _Lowerer:
    order = KIND_ORDER

    def __init__(self, kinds: dict, functions: dict):
        self.kinds = kinds  # index Symbol -> kind
        self.functions = functions  # sympy Function class -> name in the namespace
        self.lines: list = []
        self.memo: dict = {}

    def emit(self, code: str, labels: tuple):
        if code not in self.memo:
            name = f"_t{len(self.memo)}"
            self.memo[code] = name
            self.lines.append(f"    {name} = {code}")
        return self.memo[code], labels

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
            return f"({e.p}/{e.q})", ()
        if e.is_Number:
            return repr(float(e)) if not isinstance(e, sp.Integer) else str(int(e)), ()
        if isinstance(e, sp.Symbol):
            return e.name, ()
        if isinstance(e, sp.Indexed):
            labels = tuple(self.kinds[ix] for ix in e.indices)
            if labels != self.canon(labels):
                raise NotImplementedError(f"indices of {e} are not in canonical order")
            return e.base.name, labels
        if isinstance(e, (sp.Add, sp.Mul)):
            parts = [self.lower(a) for a in e.args]
            target = self.canon(sum((p[1] for p in parts), ()))
            op = " + " if isinstance(e, sp.Add) else " * "
            code = "(" + op.join(self.align(c, lab, target) for c, lab in parts) + ")"
            return self.emit(code, target)
        if isinstance(e, sp.Pow):
            base, labels = self.lower(e.base)
            if e.exp == -1:
                return self.emit(f"(1/{base})", labels)
            ec, el = self.lower(e.exp)
            if el:
                raise NotImplementedError("array exponents")
            return self.emit(f"({base}**{ec})", labels)
        if isinstance(e, sp.Function) and type(e) in self.functions:
            arg, labels = self.lower(e.args[0])
            return self.emit(f"{self.functions[type(e)]}({arg})", labels)
        if isinstance(e, sp.Sum):
            return self.reduce(e)
        raise NotImplementedError(f"cannot lower {type(e).__name__}: {e}")

    def reduce(self, s: sp.Sum):
        if len(s.limits) != 1:
            raise NotImplementedError("one summation index per Sum")
        (idx, _lo, _hi), = s.limits
        kind = self.kinds[idx]
        scalars, arrays = [], []
        for f in sp.Mul.make_args(s.function):
            code, labels = self.lower(f)
            (arrays if labels else scalars).append((code, labels))
        if not any(kind in lab for _c, lab in arrays):
            raise NotImplementedError(f"summand of {s} does not depend on its index")
        out = _canon(tuple(k for _c, lab in arrays for k in lab if k != kind))
        if len(arrays) > 2:
            # Multiply the factors elementwise except one whose other axes no other factor
            # has (X in sum_i e_i sigma'(h_ki) X_il): the reduction is then one matmul.
            for pick in range(len(arrays)):
                rest = [arrays[q] for q in range(len(arrays)) if q != pick]
                rest_labels = _canon(sum((lab for _c, lab in rest), ()))
                if set(rest_labels) & set(arrays[pick][1]) == {kind} and len(rest_labels) <= 2:
                    prod = self.emit("(" + " * ".join(self.align(c, lab, rest_labels)
                                                      for c, lab in rest) + ")", rest_labels)
                    arrays = [prod, arrays[pick]]
                    break
        if len(arrays) == 2 and all(len(lab) <= 2 for _c, lab in arrays) and \
                set(arrays[0][1]) & set(arrays[1][1]) == {kind}:
            (ca, la), (cb, lb) = arrays
            left = ca if la[-1] == kind else f"{ca}.T"
            right = cb if lb[0] == kind else f"{cb}.T"
            got = tuple(k for k in la if k != kind) + tuple(k for k in lb if k != kind)
            code = f"({left} @ {right})" + (".T" if got != out else "")
        elif len(arrays) == 1:
            (ca, la), = arrays
            code = f"np.sum({ca}, axis={la.index(kind)})"
        else:
            spec = ",".join("".join(_LETTER[k] for k in lab) for _c, lab in arrays)
            spec += "->" + "".join(_LETTER[k] for k in out)
            code = (f"np.einsum({spec!r}, {', '.join(c for c, _l in arrays)}, "
                    "optimize=True)")
        name, labels = self.emit(code, out)
        if scalars:
            return self.emit("(" + " * ".join([c for c, _l in scalars] + [name]) + ")", labels)
        return name, labels


@dataclass(frozen=True)
class IndexedSource:
    """Generated source of one function and its argument names."""

    source: str
    arg_names: tuple
    func_name: str
    out_labels: tuple

    def function(self, namespace: dict):
        scope = dict(namespace, np=np)
        exec(compile(self.source, f"<exactdyn:{self.func_name}>", "exec"), scope)  # noqa: S102
        return scope[self.func_name]


def lower_indexed(exprs, arrays, kinds, functions, func_name, lowerer=None) -> IndexedSource:
    """Source of ``def func_name(*arrays, *params)`` returning one array per expression.

    ``arrays`` are the ``IndexedBase`` inputs; the scalar parameters are the remaining
    free symbols (sorted by name); ``functions`` maps sympy function classes to names that
    the caller's namespace defines (the activation and its derivative). ``lowerer`` is a
    subclass of the expression lowerer with its own axis order and reductions (the CNN's,
    :mod:`exactdyn.numeric.cnn`); default: neuron, sample, feature.
    """
    low = (lowerer or _Lowerer)(kinds, functions)
    outs = [low.lower(e) for e in exprs]
    # Symbols that only bound reductions (m - 1, d - 1) are not parameters.
    params = sorted({str(s) for e in exprs for s in _outside_limits(e)} - {str(k) for k in kinds}
                    - {b.name for b in arrays})
    args = tuple(b.name for b in arrays) + tuple(params)
    lines = [f"def {func_name}({', '.join(args)}):"] + low.lines
    lines.append(f"    return ({', '.join(c for c, _l in outs)},)")
    return IndexedSource("\n".join(lines) + "\n", args, func_name,
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
