"""Luo et al.'s two-layer phase diagram measured from the width scaling of RD."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import exactdyn as ed
from exactdyn.regimes import (
    PROTOCOL,
    RDSlope,
    classify,
    luo_label,
    noise_band,
    rd_slope,
    slope_label,
)
from exactdyn.regimes.two_layer import DEFAULT_TOL, _fit, default_widths, stop_rd

#: (gamma, gamma_prime) -> Luo et al.'s label (MATH.md §4), the points of issue 4.
POINTS = {(0.5, 0.0): "linear", (1.75, 0.0): "condensed", (1.5, 0.25): "condensed",
          (1.25, 0.5): "linear"}


def test_predicted_labels_at_the_issue_points():
    for (g, gp), label in POINTS.items():
        assert luo_label(g, gp) == label
    assert luo_label(1.0, 0.0) == "critical"


@given(st.floats(-2, 2), st.floats(-3, 3),
       st.lists(st.integers(2, 4096), min_size=2, max_size=6, unique=True))
def test_fit_recovers_an_exact_power_law(s, c, widths):
    m = np.asarray(widths, float)
    slope, intercept, _, r2 = _fit(widths, np.exp(c) * m**s)
    assert slope == pytest.approx(s, abs=1e-9)
    assert intercept == pytest.approx(c, abs=1e-7)
    assert r2 == pytest.approx(1.0, abs=1e-9) or s == pytest.approx(0, abs=1e-9)


def test_slope_label_thresholds():
    assert slope_label(-0.5) == "linear" and slope_label(0.5) == "condensed"
    assert slope_label(0.1) == "critical" and slope_label(-0.2) == "critical"
    assert slope_label(0.1, tol=0.05) == "condensed"


def test_stop_rd_lands_on_the_loss_threshold():
    # An independent solve at t* must show the loss at the requested fraction and the RD
    # interpolated there.
    net = ed.TwoLayer(16, "1d-sine", activation="tanh", gamma=1.75, gamma_prime=0.0,
                      init="mirrored", n=10)
    t_star, rd = stop_rd(net, 0.05)
    tr = ed.solve(net, [0.0, t_star])
    assert tr["loss"][-1] / tr["loss"][0] == pytest.approx(0.05, rel=2e-3)
    assert tr["rd"][-1] == pytest.approx(rd, rel=2e-3)


def test_relu_rd_is_invariant_under_alpha_at_fixed_exponents():
    # ReLU is 1-homogeneous: at fixed (gamma, gamma') the weights scale by sqrt(alpha),
    # f is unchanged and time stretches by alpha, so RD at the loss threshold is the same
    # and t* scales by alpha exactly [LX].
    kw = dict(activation="relu", gamma=1.5, gamma_prime=0.25, init="mirrored", n=8, seed=3)
    t1, rd1 = stop_rd(ed.TwoLayer(8, "1d-sine", alpha=1.0, **kw), 0.3)
    t4, rd4 = stop_rd(ed.TwoLayer(8, "1d-sine", alpha=4.0, **kw), 0.3)
    assert rd4 == pytest.approx(rd1, rel=1e-4)
    assert t4 == pytest.approx(4 * t1, rel=1e-4)


def test_ntk_point_slope_is_about_minus_half():
    r = rd_slope(0.5, 0.0, widths=(16, 32, 64, 128, 256), activation="tanh",
                 alpha_exponent=0.5)
    assert isinstance(r, RDSlope)
    assert -0.7 < r.slope < -0.3
    assert (r.label, r.predicted) == ("linear", "linear")
    assert r.rd.shape == (5, 1) and np.all(r.stop_time > 0)


def test_condensed_point_slope_is_positive():
    r = rd_slope(1.75, 0.0, widths=(16, 64), activation="tanh")
    assert r.slope > r.tol
    assert (r.label, r.predicted) == ("condensed", "condensed")
    reg = classify(r)
    assert reg.taxonomy == "two_layer" and reg.agrees
    for k in ("gamma", "gamma_prime", "rd_slope", "rd", "widths"):
        assert k in reg.evidence
    assert classify(r, tol=10.0).label == "critical"


def test_classify_a_model_runs_widths_up_to_its_own():
    net = ed.TwoLayer(32, "1d-sine", activation="tanh", alpha=32**0.5, gamma=0.5,
                      gamma_prime=0.0, init="mirrored", n=10)
    reg = classify(net)
    assert reg.taxonomy == "two_layer" and reg.predicted == "linear"
    assert reg.evidence["widths"] == [8, 16, 32] == list(default_widths(32))
    assert reg.evidence["gamma"] == pytest.approx(0.5)
    assert reg.evidence["alpha_exponent"] == pytest.approx(0.5)
    assert reg.evidence["rd_slope"] < 0


@pytest.mark.parametrize("kw, word", [
    ({"widths": (16,)}, "widths"), ({"widths": (16, 16)}, "widths"),
    ({"widths": (1, 16)}, "widths"), ({"widths": "ab"}, "widths"),
    ({"loss_fraction": 1.0}, "loss_fraction"), ({"loss_fraction": 0.0}, "loss_fraction"),
    ({"seeds": ()}, "seeds"), ({"gamma": float("nan")}, "gamma"), ({"tol": -1}, "tol"),
])
def test_bad_input(kw, word):
    args = {"gamma": 0.5, "gamma_prime": 0.0, **kw}
    with pytest.raises(ValueError, match=word):
        rd_slope(**args)


def test_from_init_model_is_refused():
    net = ed.TwoLayer.from_init([1.0, -1.0], [[1.0, 0.0], [0.5, 0.5]], [0.0, 1.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="gamma"):
        classify(net)


def test_noise_band_is_two_standard_errors_of_the_seed_mean():
    # one seed: no estimate of the spread, the floor 0.1 -> 2 * 0.1 / 1
    assert noise_band([0.3]) == pytest.approx(0.2) == DEFAULT_TOL
    assert noise_band([0.3, 0.1]) == pytest.approx(2 * 0.1 / np.sqrt(2))
    # from three seeds on the sample standard deviation counts when above the floor
    v = [0.0, 0.5, 1.0]
    assert noise_band(v) == pytest.approx(2 * 0.5 / np.sqrt(3))
    assert noise_band([0.10, 0.11, 0.12, 0.13]) == pytest.approx(2 * 0.1 / 2)
    assert noise_band(v, floor=0.0) == pytest.approx(2 * 0.5 / np.sqrt(3))
    for bad in ([], [np.nan, 1.0]):
        with pytest.raises(ValueError, match="seed_slopes"):
            noise_band(bad)
    with pytest.raises(ValueError, match="floor"):
        noise_band([0.1], floor=-1)


def test_seed_slopes_fit_each_seed_and_set_the_default_band():
    r = rd_slope(1.25, 0.5, widths=(16, 64), seeds=(0, 1, 2))
    m = np.log([16.0, 64.0])
    np.testing.assert_allclose(r.seed_slopes, np.diff(np.log(r.rd), axis=0)[0] / np.diff(m))
    # the slope of the geometric mean is the mean of the per-seed slopes (least squares is
    # linear in the data)
    assert r.slope == pytest.approx(np.mean(r.seed_slopes), abs=1e-12)
    assert r.tol == pytest.approx(noise_band(r.seed_slopes))
    assert r.regime().evidence["seed_slopes"] == pytest.approx(list(r.seed_slopes))
    assert r.seed_sd == pytest.approx(np.std(r.seed_slopes, ddof=1))


def test_clear_points_at_small_widths():
    # Far from the boundary gamma' = gamma - 1 three small widths and three seeds suffice
    # (PROTOCOL's data, activation, init); (1.5, 0.25) does not: its slope tends to
    # only (gamma - gamma' - 1)/2 = 0.125 and is within the noise there.
    for (g, gp), p in [((0.5, 0.0), 0.5), ((1.75, 0.0), 0.0), ((1.25, 0.5), 0.0)]:
        r = rd_slope(g, gp, widths=(16, 64, 256), seeds=(0, 1, 2), alpha_exponent=p)
        assert r.label == r.predicted == POINTS[(g, gp)]


@pytest.mark.slow
@pytest.mark.parametrize("point", sorted(POINTS))
def test_rd_slope_sign_at_the_issue_points(point):
    # PROTOCOL: tanh, mirrored init, 1d-linear (n = 10), widths 16..4096, seeds 0..4,
    # loss fraction 0.05. Measured slopes (seeds 0-4 / seeds 5-12): NTK -0.527 / -0.534,
    # (1.75, 0) +0.391 / +0.409, (1.5, 0.25) +0.129 / +0.145, (1.25, 0.5) -0.738 / -0.736.
    g, gp = point
    r = rd_slope(g, gp, alpha_exponent=0.5 if point == (0.5, 0.0) else 0.0, **PROTOCOL)
    assert r.predicted == POINTS[point]
    assert np.sign(r.slope) == (1 if POINTS[point] == "condensed" else -1)
    assert r.label == r.predicted          # outside the seed-noise band
    if point == (0.5, 0.0):
        # NTK: s = -1/2 in theory; 0.1 is three standard errors of a 5-seed mean (per-seed
        # sd 0.04-0.07 measured)
        assert r.slope == pytest.approx(-0.5, abs=0.1)
