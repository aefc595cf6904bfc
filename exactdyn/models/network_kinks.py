r"""Kinked activations in user-defined networks: find them in the loss and say what they are.

A user writes a ReLU network with :class:`exactdyn.Network` in plain sympy, e.g.

.. math::

    f_s = \frac1\alpha\sum_i a_i\,\max\Big(0, \sum_k W_{ik}X_{sk}\Big),\qquad
    L = \frac1{2n}\sum_s (f_s - Y_s)^2 .

Its gradient flow is a Filippov system: :math:`\sigma'` jumps where a pre-activation
:math:`h_{is} = \sum_k W_{ik}X_{sk}` crosses 0, and a smooth integrator would step across
those kinks silently wrong. :func:`kinked_structure` reads from the loss what the kink
scheme of :mod:`exactdyn.numeric.kinks` needs — the activation's two branches
:math:`\sigma_\pm` at 0, the parameter array the pre-activation is linear in (the units'
input weights), the readout, the input data, the targets and the output scale — so that the
network is integrated like :class:`~exactdyn.TwoLayer` (the model declares a
:class:`~exactdyn.models.base.KinkedPreactivation`, the one adapter
:mod:`exactdyn.numeric.kink_adapter` builds the hooks). Its flow is the two-layer
network's (Luo, Xu, Ma, Zhang, JMLR 22 (2021) 71; MATH.md §4): the loss is checked to be
exactly the mean squared loss of :math:`f_s` above, term by term.

What is recognized (anything else non-smooth is a ``ValueError`` naming it):

- the activation, a function with one kink at 0 and continuous there, written as
  ``Max(0, h)`` (ReLU), ``Max(h, c*h)`` / ``Min(...)`` with a number c (leaky ReLU),
  ``Abs(h)``, ``Piecewise((e1, h > 0), (e2, True))`` (also ``>=``, ``<``, ``<=``; e1 and
  e2 smooth in h), ``h*Heaviside(h)`` (ReLU) and ``h*sign(h)`` (``Abs``);
- σ'(0) is the left derivative :math:`\sigma_-'(0)` (0 for ReLU) whatever the condition's
  strictness, as for :class:`~exactdyn.TwoLayer` (docs/math.md); on a kink the kink scheme
  decides crossing or Filippov sliding (Filippov, *Differential Equations with
  Discontinuous Righthand Sides*, 1988, §2.4), which does not depend on σ'(0);
- the pre-activation :math:`h = c\sum_k W_{ik}X_{sk}` (or :math:`c W_i X_s` with one
  feature): linear in one parameter array, indexed neuron first, times one data array over
  the sample and the feature (a bias is a column of ones in X), with an optional scalar
  factor c (``1/sqrt(D)``, a hyperparameter; the inputs are then :math:`cX_s`);
- the loss :math:`\frac1{2n}\sum_s (\kappa\sum_i a_i\sigma(h_{is}) - T_s)^2` with the readout
  :math:`a_i` a parameter over the neuron, :math:`\kappa = 1/\alpha` free of the
  parameters and :math:`T_s` data (``Y[s]``) or a scalar; learning rates 1.

Refused with a message: a kink inside a kink (``Max(0, Max(0, h))``), a non-smooth function
of a pre-activation that is not linear in one parameter array (``Abs(a[i]*W[i])``,
``Max(0, W[i, k]**2)``, a bias array added to the product), two different kinked
activations or pre-activations (a deeper ReLU network), a jump (``Heaviside(h)`` alone,
``sign``, ``floor``), other losses, and learning rates other than 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .activations import Activation
from .activations import X as XSYM

#: Functions with a kink or a jump (the same list as :data:`exactdyn.models.network.NONSMOOTH`).
NONSMOOTH = (sp.Abs, sp.Max, sp.Min, sp.Heaviside, sp.sign, sp.Piecewise, sp.floor,
             sp.ceiling, sp.frac, sp.DiracDelta)
#: Functions that are a jump, never a kink, once ``h*Heaviside(h)`` and ``h*sign(h)`` are read.
_JUMPS = (sp.Heaviside, sp.sign, sp.floor, sp.ceiling, sp.frac, sp.DiracDelta)

_RELU = (XSYM, sp.S.Zero)
_LEAKY = (XSYM, XSYM / 100)


@dataclass(frozen=True)
class KinkStructure:
    r"""What the loss of a kinked user network is made of (see the module docstring).

    Attributes
    ----------
    activation : Activation
        σ, as ``Piecewise((σ+, x > 0), (σ−, True))`` (``relu`` and ``leaky_relu`` named as
        :class:`~exactdyn.TwoLayer` names them).
    readout, weights : sympy.IndexedBase
        :math:`a` (over the neuron) and :math:`W` (neuron, feature; or neuron alone).
    inputs : sympy.IndexedBase
        The data array :math:`X`.
    input_axes : tuple
        The roles of X's indices in order, of ``"sample"`` and ``"feature"``.
    unit, sample, feature : sympy.Symbol
        The neuron, sample and feature index (``feature`` None with one feature).
    scale : sympy.Expr
        :math:`\kappa = 1/\alpha`, free of the parameters (hyperparameters, scalar data).
    targets : sympy.Expr
        :math:`T_s`: a scalar times a data array entry over the sample, or a scalar.
    preactivation : sympy.Expr
        :math:`h` as written (after reading ``h*Heaviside(h)``).
    input_scale : sympy.Expr
        A factor c of :math:`h = c\sum_k W_{ik}X_{sk}` free of the arrays and indices (1
        when there is none): the inputs are :math:`c X_s`.
    """

    activation: Activation
    readout: sp.IndexedBase
    weights: sp.IndexedBase
    inputs: sp.IndexedBase
    input_axes: tuple
    unit: sp.Symbol
    sample: sp.Symbol
    feature: sp.Symbol | None
    scale: sp.Expr
    targets: sp.Expr
    preactivation: sp.Expr
    input_scale: sp.Expr = sp.S.One


def _refuse(what: str, message: str):
    raise ValueError(f"{what}: {message}")


def _read_products(expr: sp.Expr) -> sp.Expr:
    """``h*Heaviside(h)`` -> ``Max(0, h)`` and ``h*sign(h)`` -> ``Abs(h)`` (the forms sympy's
    ``rewrite(Heaviside)`` gives ReLU and |h| in)."""
    def fold(m):
        if not isinstance(m, sp.Mul):
            return m
        factors = list(m.args)
        for f in list(factors):
            if isinstance(f, (sp.Heaviside, sp.sign)) and f.args[0] in factors and f in factors:
                h = f.args[0]
                factors.remove(f)
                factors.remove(h)
                kink = sp.Max(0, h) if isinstance(f, sp.Heaviside) else sp.Abs(h)
                return sp.Mul(*factors, kink)
        return m

    return expr.replace(lambda e: isinstance(e, sp.Mul) and e.has(sp.Heaviside, sp.sign), fold)


def _branches_of(what: str, atom) -> tuple:
    r"""``(h, σ+, σ−)`` of a kinked atom, σ± expressions in :data:`~.activations.X`."""
    if isinstance(atom, sp.Abs):
        return atom.args[0], XSYM, -XSYM
    if isinstance(atom, (sp.Max, sp.Min)):
        h, slopes = None, []
        for arg in atom.args:
            if arg == 0:
                slopes.append(sp.S.Zero)
                continue
            c, rest = arg.as_coeff_Mul()
            if h is None:
                h = rest
            if rest != h:
                _refuse(what, f"{atom} compares different pre-activations ({h} and {rest}); "
                              "a kink at 0 of one pre-activation is Max(0, h), Max(h, c*h), "
                              "Abs(h) or a Piecewise in h")
            slopes.append(sp.nsimplify(c))
        if h is None:
            _refuse(what, f"{atom} does not depend on the parameters")
        big, small = max(slopes), min(slopes)
        if isinstance(atom, sp.Min):
            big, small = small, big
        return h, big * XSYM, small * XSYM
    if isinstance(atom, sp.Piecewise):
        pieces = atom.args
        if len(pieces) != 2 or pieces[1].cond != sp.true:
            _refuse(what, f"{atom}: a Piecewise activation must have two pieces, "
                          "(e1, h > 0) and (e2, True)")
        (e1, cond), (e2, _t) = pieces
        if not isinstance(cond, (sp.StrictGreaterThan, sp.GreaterThan, sp.StrictLessThan,
                                 sp.LessThan)):
            _refuse(what, f"{atom}: its condition {cond} is not a sign test of the "
                          "pre-activation (h > 0, h >= 0, h < 0, h <= 0)")
        h = cond.lhs - cond.rhs
        positive = isinstance(cond, (sp.StrictGreaterThan, sp.GreaterThan))
        if h.could_extract_minus_sign():
            h, positive = -h, not positive
        plus, minus = (e1, e2) if positive else (e2, e1)
        out = []
        for e in (plus, minus):
            b = e.xreplace({h: XSYM})
            if b.free_symbols - {XSYM} or b.has(*NONSMOOTH):
                _refuse(what, f"{atom}: each piece must be a smooth function of the "
                              f"pre-activation {h} alone, got {e}")
            out.append(b)
        return h, out[0], out[1]
    _refuse(what, f"{type(atom).__name__} ({atom}) is a jump, not a kink: its gradient flow "
                  "is not defined (Heaviside(h) alone, sign, floor, ...)")
    raise AssertionError  # unreachable: for mypy


def _activation(what: str, plus, minus) -> Activation:
    plus, minus = sp.nsimplify(plus), sp.nsimplify(minus)
    if sp.simplify(plus.subs(XSYM, 0) - minus.subs(XSYM, 0)) != 0:
        _refuse(what, f"the activation jumps at 0 (σ+(0) = {plus.subs(XSYM, 0)}, σ−(0) = "
                      f"{minus.subs(XSYM, 0)}): a jump is not a kink")
    if sp.simplify(sp.diff(plus, XSYM) - sp.diff(minus, XSYM)) == 0:
        _refuse(what, f"the activation has no kink at 0 (σ+ = {plus}, σ− = {minus}); write it "
                      "without Max/Abs/Piecewise")
    if (plus, minus) == _RELU:
        name = "relu"
    elif (plus, minus) == _LEAKY:
        name = "leaky_relu"
    else:
        name = f"{plus} if x > 0 else {minus}"
    return Activation(name, sp.Piecewise((plus, XSYM > 0), (minus, True)))


def _scalar_factor(expr, indices) -> tuple:
    """``(c, rest)`` with ``expr = c*rest`` and c the factors free of array entries and
    indices (numbers, hyperparameters, sizes)."""
    c, rest = expr.as_independent(*expr.atoms(sp.Indexed), *indices, as_Add=False)
    return c, rest


def _indexed_of(expr, bases) -> set:
    return {e.base for e in expr.atoms(sp.Indexed) if e.base in bases}


def kinked_structure(loss: sp.Expr, params: tuple, data_arrays: tuple, sizes: dict,
                     rates: dict) -> KinkStructure | None:
    """The :class:`KinkStructure` of a user network's ``loss``, None when it is smooth.

    Parameters
    ----------
    loss : sympy.Expr
        The loss as checked by :class:`~exactdyn.Network` (reductions over declared indices).
    params, data_arrays : tuple of sympy.IndexedBase
        The parameters and the data arrays.
    sizes : dict
        Each index symbol -> its size symbol.
    rates : dict
        Each parameter -> its learning rate.

    Raises
    ------
    ValueError
        Naming what is not supported (module docstring).
    """
    what = "loss"
    if not loss.has(*NONSMOOTH):
        return None
    loss = _read_products(loss)
    atoms = loss.atoms(*NONSMOOTH)
    jumps = [a for a in atoms if isinstance(a, _JUMPS)]
    if jumps:
        _branches_of(what, sorted(jumps, key=sp.default_sort_key)[0])
    outer = [a for a in atoms if not any(a != b and b.has(a) for b in atoms)]
    for atom in outer:
        inner = [b for b in atom.args if b.has(*NONSMOOTH)]
        if inner:
            _refuse(what, f"{atom} has a kink inside a kink ({inner[0]}); only one kinked "
                          "activation of a pre-activation linear in the weights is integrated "
                          "through its kinks")
    if len(outer) != 1:
        _refuse(what, f"{len(outer)} different kinked terms ({', '.join(map(str, outer[:3]))}); "
                      "a network with kinks is integrated when one activation is applied to "
                      "one pre-activation (a one-hidden-layer network)")
    (atom,) = outer
    h, plus, minus = _branches_of(what, atom)
    activation = _activation(what, plus, minus)
    # ---- the pre-activation: linear in one parameter array, times one data array
    in_h = _indexed_of(h, params)
    if len(in_h) != 1:
        names = ", ".join(sorted(b.name for b in in_h)) or "none"
        _refuse(what, f"the pre-activation {h} of {atom} must be linear in one parameter "
                      f"array (it holds {names}); write it as Sum(W[i, k]*X[s, k], (k, 0, "
                      "D - 1)) with a bias as a column of ones in X")
    (weights,) = in_h
    # a scalar factor (1/sqrt(D), a hyperparameter), outside the sum or inside, scales the
    # inputs: h = Σ_k W_ik (c X_sk) is then exactly the declared pre-activation
    scale, body = _scalar_factor(h, indices=set(sizes))
    feature = None
    if isinstance(body, sp.Sum):
        if len(body.limits) != 1:
            _refuse(what, f"the pre-activation {h} must sum over one feature index")
        feature = body.limits[0][0]
        inner, body = _scalar_factor(body.function, indices=set(sizes))
        scale = scale * inner
    factors = sp.Mul.make_args(body)
    w_entries = [f for f in factors if isinstance(f, sp.Indexed) and f.base == weights]
    x_entries = [f for f in factors if isinstance(f, sp.Indexed) and f.base in data_arrays]
    if len(factors) != 2 or len(w_entries) != 1 or len(x_entries) != 1:
        _refuse(what, f"a non-smooth function of a pre-activation that is not a product of "
                      f"the weights and the data: {atom}; the pre-activation must be "
                      "Sum(W[i, k]*X[s, k], (k, 0, D - 1)) (or W[i]*X[s] with one feature)")
    (w,), (x,) = w_entries, x_entries
    w_idx = tuple(w.indices)
    if feature is None:
        if len(w_idx) != 1:
            _refuse(what, f"{w} in the pre-activation {h} has an index that is not summed")
        unit = w_idx[0]
    else:
        if len(w_idx) != 2 or w_idx[1] != feature:
            _refuse(what, f"the weights in the pre-activation {h} must be indexed neuron "
                          f"first, {weights}[neuron, {feature}], got {w}")
        unit = w_idx[0]
    rest = [ix for ix in x.indices if ix != feature]
    if len(rest) != 1 or (feature is not None and feature not in x.indices) or rest[0] == unit:
        _refuse(what, f"the data {x} in the pre-activation {h} must run over one sample index"
                      + (f" and the feature {feature}" if feature is not None else ""))
    sample = rest[0]
    input_axes = tuple("feature" if ix == feature else "sample" for ix in x.indices)
    # ---- the loss: (1/(2n)) Σ_s (κ Σ_i a_i σ(h) − T_s)²
    form = ("the loss of a kinked network must be the mean squared loss "
            "Sum((Sum(a[i]*sigma(h), (i, 0, d - 1))/alpha - Y[s])**2, (s, 0, n - 1))/(2*n)")
    outer_sums = [f for f in sp.Mul.make_args(loss) if isinstance(f, sp.Sum)]
    if len(outer_sums) != 1 or outer_sums[0].limits[0][0] != sample \
            or len(outer_sums[0].limits) != 1:
        _refuse(what, f"{form}; got {loss}")
    (total,) = outer_sums
    c = loss / total
    if c.has(*params) or sp.simplify(c * 2 * sizes[sample] - 1) != 0:
        _refuse(what, f"{form} (the factor before the sum over {sample} must be "
                      f"1/(2*{sizes[sample]}), got {c})")
    square = total.function
    if not (isinstance(square, sp.Pow) and square.exp == 2):
        _refuse(what, f"{form}; the summand {square} is not a square")
    residual = square.base
    param_entries = [e for e in residual.atoms(sp.Indexed) if e.base in params]
    target_part, output = residual.as_independent(*param_entries, as_Add=True)
    sums = [f for f in sp.Mul.make_args(output) if isinstance(f, sp.Sum)]
    if len(sums) != 1 or len(sums[0].limits) != 1 or sums[0].limits[0][0] != unit:
        _refuse(what, f"{form}; the output {output} must be one sum over the neuron {unit}")
    (over_units,) = sums
    kappa = output / over_units
    summand = over_units.function
    readout_part = summand / atom
    if readout_part.has(atom) or summand.has(*NONSMOOTH) and not summand.has(atom):
        _refuse(what, f"{form}; the summand {summand} must be a[{unit}]*sigma(h)")
    readouts = [f for f in sp.Mul.make_args(readout_part) if isinstance(f, sp.Indexed)]
    if len(readouts) != 1 or readouts[0].base not in params \
            or tuple(readouts[0].indices) != (unit,) or readouts[0].base == weights:
        _refuse(what, f"{form}; the summand {summand} must be a readout a[{unit}] (a "
                      "parameter over the neuron) times the activation")
    readout = readouts[0].base
    kappa = kappa * readout_part / readouts[0]
    if kappa.has(*params, *data_arrays) or kappa.free_symbols & set(sizes):
        _refuse(what, f"{form}; the output scale {kappa} must be free of the parameters, "
                      "data arrays and indices")
    if kappa.could_extract_minus_sign():
        # κ a σ(h) = (−κ) a (−σ)(h): the activation takes the sign, not the targets, so
        # the output observable stays the network's own (−Min(0, −h) is ReLU).
        kappa = -kappa
        activation = _activation(what, -plus, -minus)
    targets = -target_part
    entries = list(targets.atoms(sp.Indexed))
    factor = targets / entries[0] if len(entries) == 1 else targets
    if len(entries) > 1 or (entries and (entries[0].base not in data_arrays
                                         or tuple(entries[0].indices) != (sample,))) or \
            factor.has(sp.Indexed) or factor.free_symbols & set(sizes):
        _refuse(what, f"{form}; the target {targets} must be a data array over the sample "
                      f"({sample}) times a scalar, or a scalar")
    others = [b for b in params if b not in (readout, weights)]
    if others:
        _refuse(what, f"the kinked network has the parameters {readout.name} (readout) and "
                      f"{weights.name} (weights); {others[0].name} is not one of them")
    for b in params:
        if rates[b] != 1:
            _refuse("rates", f"a kinked network is integrated with learning rates 1 (the "
                             f"two-layer network's flow); {b.name} has {rates[b]}")
    return KinkStructure(activation, readout, weights, x.base, input_axes, unit, sample,
                         feature, kappa, targets, h, scale)
