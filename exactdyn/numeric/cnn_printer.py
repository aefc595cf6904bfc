"""The indexed printer of the two-layer CNN's flow (:mod:`exactdyn.numeric.cnn`): the CNN's
axis order and its reductions as matrix products. A module of its own because it subclasses
the sympy-based printer, which a process that reads the generated sources from the on-disk
cache never imports."""

from __future__ import annotations

from .indexed import _Lowerer

_LETTER = {"sample": "i", "position": "k", "patch": "l", "channel": "b"}


class CNNLowerer(_Lowerer):
    """The indexed lowerer with the CNN's axis order and matrix-product reductions."""

    from ..symbolic.cnn import KIND_ORDER as order

    def reduce(self, s):
        import sympy as sp

        summed = [self.kinds[lim[0]] for lim in s.limits]
        if len(set(summed)) != len(summed):
            raise NotImplementedError(f"two summation indices of one kind in {s}")
        scalars, arrays = [], []
        for f in sp.Mul.make_args(s.function):
            code, labels = self.lower(f)
            (arrays if labels else scalars).append((code, labels))
        summed = self.canon(summed)
        every = self.canon(sum((lab for _c, lab in arrays), ()))
        if not set(summed) <= set(every):
            raise NotImplementedError(f"summand of {s} does not depend on every index")
        out = tuple(k for k in every if k not in summed)
        code = self._matmul(arrays, summed, out) if len(arrays) > 1 else None
        if code is None and len(arrays) == 1:
            (ca, la), = arrays
            axes = tuple(la.index(k) for k in summed)
            code = f"np.sum({ca}, axis={axes if len(axes) > 1 else axes[0]})"
        elif code is None:
            spec = ",".join("".join(_LETTER[k] for k in lab) for _c, lab in arrays)
            spec += "->" + "".join(_LETTER[k] for k in out)
            code = f"np.einsum({spec!r}, {', '.join(c for c, _l in arrays)}, optimize=True)"
        # a contraction in canonical order writes its matrix product into a buffer
        inplace = (lambda d: [f"{code[:-1]}, out={d})"]) if code.startswith("_contract(") \
            else None
        name, labels = self.emit(code, out, inplace)
        if scalars:
            factor = " * ".join(c for c, _l in scalars)
            return self.emit(f"({factor} * {name})", labels,
                             lambda d: [f"np.multiply(({factor}), {name}, out={d})"])
        return name, labels

    def _matmul(self, arrays, summed, out):
        """``_contract(A, B, axes_a, axes_b)`` when one factor's free axes are disjoint from the
        others' and every factor side carries all summed axes; None otherwise."""
        for pick in range(len(arrays)):
            rest = [arrays[q] for q in range(len(arrays)) if q != pick]
            rest_labels = self.canon(sum((lab for _c, lab in rest), ()))
            pc, pl = arrays[pick]
            if not (set(summed) <= set(pl) and set(summed) <= set(rest_labels)):
                continue
            if set(pl) & set(rest_labels) != set(summed):
                continue
            if len(rest) > 1:
                aligned = [self.align(c, lab, rest_labels) for c, lab in rest]
                prod = self.emit("(" + " * ".join(aligned) + ")", rest_labels,
                                 self.product_into(None, aligned))
            else:
                prod = rest[0]
            # Prefer the operand order whose result is already in canonical order.
            options = []
            for (c1, l1), (c2, l2) in (((pc, pl), prod), (prod, (pc, pl))):
                got = tuple(k for k in l1 if k not in summed) + \
                    tuple(k for k in l2 if k not in summed)
                ax1 = tuple(l1.index(k) for k in summed)
                ax2 = tuple(l2.index(k) for k in summed)
                options.append((got != out, c1, c2, ax1, ax2, got))
            options.sort(key=lambda o: o[0])
            _bad, c1, c2, ax1, ax2, got = options[0]
            code = f"_contract({c1}, {c2}, {ax1}, {ax2})"
            if got != out:
                code = f"np.transpose({code}, {tuple(got.index(k) for k in out)})"
            return code
        return None
