"""Width-scaling theory: published exponents (MATH.md §1, §4) and fits over widths."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exactdyn.regimes import (
    PARAMETRIZATIONS,
    TWO_LAYER_INITS,
    chi_exponent,
    chi_label,
    luo_exponents,
    luo_label,
    parametrization,
    two_layer_init,
)
from exactdyn.regimes.linear1d import grid_linear1d


def test_named_parametrizations_published_exponents():
    # MATH.md §1: NTK -> -1/2 (kernel), mean-field -> 0 (critical), standard -> -1.
    assert parametrization("ntk").exponent == -0.5
    assert parametrization("ntk").label == "kernel"
    assert parametrization("mean-field").exponent == 0.0
    assert parametrization("mean-field").label == "critical"
    assert parametrization("standard").exponent == -1.0
    assert parametrization("mup").label == "critical"
    with pytest.raises(ValueError, match="parametrization must be one of"):
        parametrization("sp")


@pytest.mark.parametrize("name", sorted(PARAMETRIZATIONS))
def test_chi_exponent_is_the_slope_of_the_exact_chi_over_widths(name):
    """Fit log chi against log d from the exact k' of random inits (median of 8 seeds)."""
    par = PARAMETRIZATIONS[name]
    widths = 2 ** np.arange(6, 15)
    chis = []
    for d in widths:
        hp = par.hyperparameters(int(d))
        n = 8
        vals = {"width": np.full(n, d), "seed": np.arange(n), "teacher": np.ones(n),
                "x_var": np.ones(n), **{k: np.full(n, v) for k, v in hp.items()
                                        if k != "width"}}
        chis.append(np.median(grid_linear1d(vals)[2]["chi"]))
    slope = np.polyfit(np.log(widths), np.log(chis), 1)[0]
    assert slope == pytest.approx(par.exponent, abs=0.03)


@given(st.floats(-3, 3), st.floats(-3, 3), st.floats(-3, 3), st.floats(-3, 3),
       st.floats(-3, 3))
def test_chi_exponent_symmetry_and_shift(a, b, e, gu, gw):
    # Swapping the layers (a <-> b, g_u <-> g_w) leaves chi's exponent unchanged;
    # kappa's exponent shifts it one to one.
    x = chi_exponent(a, b, e, gu, gw)
    assert x == pytest.approx(chi_exponent(b, a, e, gw, gu))
    assert chi_exponent(a, b, e + 0.25, gu, gw) == pytest.approx(x + 0.25)


def test_chi_label_and_bad_input():
    assert chi_label(-0.1) == "kernel"
    assert chi_label(0.0) == "critical"
    assert chi_label(0.2) == "feature-learning"
    with pytest.raises(ValueError, match="finite"):
        chi_exponent(a=float("nan"))
    with pytest.raises(ValueError, match="width"):
        parametrization("ntk").hyperparameters(0)


def test_luo_named_inits_published_points():
    # MATH.md §4 [LX]: NTK (1/2, 0) linear; mean-field (1, 0) critical; LeCun/He (1/2, 1/2)
    # linear; std 1/m in both layers (2, 0) condensed.
    expect = {"ntk": (0.5, 0.0, "linear"), "mean-field": (1.0, 0.0, "critical"),
              "lecun": (0.5, 0.5, "linear"), "he": (0.5, 0.5, "linear"),
              "std-1/m": (2.0, 0.0, "condensed"), "xavier": (1.0, 0.0, "critical")}
    for name, (g, gp, lab) in expect.items():
        ini = two_layer_init(name)
        assert (ini.gamma, ini.gamma_prime, ini.label) == (g, gp, lab)
    assert set(TWO_LAYER_INITS) == set(expect)
    with pytest.raises(ValueError, match="init must be one of"):
        two_layer_init("glorot")


def test_luo_exponents_fitted_over_widths_from_actual_formulas():
    """Xavier with d = 10 inputs: beta1^2 = 2/(m+1), beta2^2 = 2/(d+m) -> (1, 0) in the
    limit; the slope over widths removes the constant prefactors."""
    m = 2.0 ** np.arange(8, 21)
    g, gp = luo_exponents(1.0, np.sqrt(2 / (m + 1)), np.sqrt(2 / (10 + m)), m)
    assert g == pytest.approx(1.0, abs=2e-3)
    assert gp == pytest.approx(0.0, abs=2e-3)
    # NTK at one width is exact: alpha = sqrt(m), beta = 1.
    assert luo_exponents(np.sqrt(1e4), 1.0, 1.0, 1e4) == pytest.approx((0.5, 0.0))
    with pytest.raises(ValueError, match="m must be"):
        luo_exponents(1.0, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="beta1"):
        luo_exponents(1.0, -1.0, 1.0, 10.0)


@given(st.floats(-2, 4), st.floats(-3, 3))
def test_luo_label_regions(g, gp):
    lab = luo_label(g, gp)
    if g < 1 - 1e-6 or gp > g - 1 + 1e-6:
        assert lab == "linear"
    elif g > 1 + 1e-6 and gp < g - 1 - 1e-6:
        assert lab == "condensed"
    arr = luo_label(np.array([g, 1.0]), np.array([gp, -0.5]))
    assert arr[0] == lab and arr[1] == "critical"
