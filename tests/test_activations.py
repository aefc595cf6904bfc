"""The named activations' float64 table (exactdyn/models/activations.py, ``_NUMERIC``),
which lets a TwoLayer / TwoLayerCNN be built and integrated without sympy, against two
independent references: sympy's own ``lambdify`` of the named expression (bit for bit,
overflow and NaN included) and finite differences of the table's σ and σ' (the
derivatives). A user-defined activation (an expression string) still goes through sympy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

from exactdyn.models.activations import (
    HOMOGENEOUS,
    NAMED,
    NAMES,
    Activation,
    X,
    activation,
)

#: awkward corners: 0 and -0 (the kink), subnormal and tiny, where exp overflows (|x| >
#: 709.78), huge and infinite
CORNERS = [0.0, -0.0, 5e-324, -5e-324, 1e-300, -1e-300, 1e-8, -1e-8, 1.0, -1.0, 20.0,
           -20.0, 709.0, -709.0, 710.0, -710.0, 1e300, -1e300, math.inf, -math.inf]
inputs = st.lists(st.one_of(st.sampled_from(CORNERS),
                            st.floats(allow_nan=False, allow_infinity=True)),
                  min_size=1, max_size=12).map(lambda v: np.array(v, dtype=float))
MODULES = [{"erf": scipy.special.erf}, "numpy"]


def _lambdified(expr):
    f = sp.lambdify(X, expr, modules=MODULES)

    def g(h):
        with np.errstate(all="ignore"):
            return np.broadcast_to(f(h), np.shape(h)).astype(float)
    return g


def _run(f, h):
    with np.errstate(all="ignore"):
        return np.asarray(f(h), dtype=float)


def _same(a, b):
    """Equal as float64 numbers (0 == -0), NaN where the other is NaN."""
    np.testing.assert_array_equal(np.asarray(a, float), np.asarray(b, float))


def test_the_table_covers_every_named_activation_and_builds_without_an_expression():
    assert tuple(NAMED) == NAMES
    for name in NAMES:
        act = activation(name)
        assert act._expr is None  # built from the table: no sympy expression yet
        assert act.expr == NAMED[name]  # ... and the same expression when asked for
        assert act == Activation(name, NAMED[name])


@pytest.mark.parametrize("name", NAMES)
@given(h=inputs)
def test_sigma_and_its_derivatives_equal_sympys_lambdify_bit_for_bit(name, h):
    table = activation(name)
    expr = NAMED[name]
    sig, dsig = table.numeric()
    # against lambdify of the full expression (numpy.select for a Piecewise): σ, σ'; a
    # kinked activation is evaluated as 1{h>0}σ+(h) + 1{h<=0}σ-(h), which is NaN at ±inf
    # for leaky ReLU (0·inf) where numpy.select gives ±inf: compared at finite h (the
    # comparison with the sympy-lowered branches below includes ±inf)
    hf = h[np.isfinite(h)] if table.piecewise else h
    _same(_run(sig, hf), _lambdified(expr)(hf))
    _same(_run(dsig, hf), _lambdified(sp.diff(expr, X))(hf))
    # against the sympy-lowered activation (the same expression given explicitly, so
    # nothing comes from the table): σ, σ', σ''
    lowered = Activation(name, expr)
    for mine, ref in zip(table.numeric(), lowered.numeric()):
        _same(_run(mine, h), _run(ref, h))
    _same(_run(table.numeric_second(), h), _run(lowered.numeric_second(), h))
    if not table.piecewise:
        _same(_run(table.numeric_second(), h), _lambdified(sp.diff(expr, X, 2))(h))


@pytest.mark.parametrize("name", [n for n in NAMES if activation(n).piecewise])
@given(h=inputs)
def test_the_kink_branches_equal_the_sympy_branches(name, h):
    table = activation(name)
    lowered = Activation(name, NAMED[name])
    (branches, flat, slopes), (ref_branches, ref_flat, ref_slopes) = \
        table.kink_branches(), lowered.kink_branches()
    assert flat == ref_flat and slopes == ref_slopes
    for mine, ref in zip(branches, ref_branches):
        out = _run(mine, h)
        assert out.shape == h.shape
        _same(out, _run(ref, h))
    # and against the branches as sympy gives them, lambdified on their own
    plus, minus = lowered.branches()
    for mine, e in zip(branches, (plus, minus, sp.diff(plus, X), sp.diff(minus, X))):
        _same(_run(mine, h), _lambdified(e)(h))


def test_kink_data_of_relu_and_leaky_relu_by_hand():
    branches, flat, slopes = activation("relu").kink_branches()
    assert flat is True and slopes == (1.0, 0.0)
    h = np.array([-2.0, 0.0, 3.0])
    _same(branches[0](h), h)
    _same(branches[1](h), [0.0, 0.0, 0.0])
    _same(branches[2](h), [1.0, 1.0, 1.0])
    branches, flat, slopes = activation("leaky_relu").kink_branches()
    assert flat is False and slopes == (1.0, 0.01)
    _same(branches[1](h), 0.01 * h)
    # σ'(0) is the left branch's: 0 for ReLU, 1/100 for leaky ReLU
    assert activation("relu").numeric()[1](np.array([0.0]))[0] == 0.0
    assert activation("leaky_relu").numeric()[1](np.array([0.0]))[0] == 0.01


@pytest.mark.parametrize("name", NAMES)
@given(x=st.floats(min_value=-30, max_value=30).filter(lambda v: abs(v) > 1e-3))
def test_the_derivatives_match_finite_differences(name, x):
    # central differences of the table's σ and σ' (away from ReLU's kink at 0):
    # truncation O(δ²σ''') + rounding O(ε|σ|/δ)
    act = activation(name)
    sig, dsig = act.numeric()
    d2sig = act.numeric_second()
    delta = 1e-5 * max(1.0, abs(x))
    pts = np.array([x - delta, x + delta])
    fd1 = float(np.diff(sig(pts))[0]) / (2 * delta)
    fd2 = float(np.diff(dsig(pts))[0]) / (2 * delta)
    scale = max(1.0, abs(x)) ** 2
    assert fd1 == pytest.approx(float(dsig(np.array([x]))[0]), rel=1e-6, abs=1e-8 * scale)
    assert fd2 == pytest.approx(float(d2sig(np.array([x]))[0]), rel=1e-6, abs=1e-8 * scale)


@pytest.mark.parametrize("name", NAMES)
def test_multiplicity_piecewise_and_homogeneity_agree_with_sympy(name):
    table, lowered = activation(name), Activation(name, NAMED[name])
    assert table.multiplicity == lowered._derived_multiplicity()
    assert table.piecewise == bool(NAMED[name].has(sp.Piecewise))
    assert table.homogeneous == lowered.homogeneous == (name in HOMOGENEOUS)


@pytest.mark.parametrize("name", NAMES)
def test_values_at_zero_agree_with_sympys_limits(name):
    act = activation(name)
    for k in range(3):
        exact = Activation(name, NAMED[name]).derivative_at_zero(k)
        assert act.value_at_zero(k) == float(exact)


def test_a_user_defined_activation_is_lowered_from_its_expression():
    act = activation("x + x**2/2")
    assert act._expr is not None and act.multiplicity == 1 and not act.piecewise
    sig, dsig = act.numeric()
    h = np.array([-2.0, 0.0, 0.5])
    _same(sig(h), h + h**2 / 2)
    _same(dsig(h), 1 + h)
    _same(act.numeric_second()(h), [1.0, 1.0, 1.0])
    assert act.value_at_zero(1) == 1.0
    # a kinked one: abs(x) has slopes (1, -1), its σ− is not flat
    kinked = activation("abs(x)")
    branches, flat, slopes = kinked.kink_branches()
    assert kinked.piecewise and slopes == (1.0, -1.0) and flat is False
    _same(kinked.numeric()[0](h), np.abs(h))
    _same(kinked.numeric()[1](h), [-1.0, -1.0, 1.0])


def test_an_explicit_expression_under_a_built_in_name_is_not_read_from_the_table():
    act = Activation("tanh", X**3 + X)
    h = np.array([0.5, 2.0])
    _same(act.numeric()[0](h), h**3 + h)
    assert act.multiplicity == 1 and act != activation("tanh")


def test_activation_rejects_bad_input_naming_the_parameter():
    with pytest.raises(ValueError, match="activation must be one of"):
        activation("no_such_activation")
    with pytest.raises(ValueError, match="activation must be one of"):
        activation(3)
    with pytest.raises(ValueError, match="name must be one of"):
        Activation("my_activation")
    with pytest.raises(TypeError, match="name must be a string"):
        Activation(3, X)
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        activation("relu").name = "tanh"


def test_activations_pickle_and_hash_by_value():
    import pickle

    for name in ("relu", "gelu"):
        act = activation(name)
        back = pickle.loads(pickle.dumps(act))
        assert back == act and hash(back) == hash(act)
        h = np.array([-1.0, 0.3])
        _same(back.numeric()[0](h), act.numeric()[0](h))
    # a named activation whose expression was built pickles without it
    act = activation("tanh")
    act.expr  # noqa: B018
    back = pickle.loads(pickle.dumps(act))
    assert back._expr is None and back == act and back.expr == NAMED["tanh"]
    user = activation("x + x**3")
    assert pickle.loads(pickle.dumps(user)) == user
