"""Issue 17, part 2: the gallery's headline results, each script's key number checked
against the theory or the paper's value, on a small/fast variant of the script's own
computation (the scripts' functions are imported; each script's docstring names its
figure and parameters)."""

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name):
    sys.path.insert(0, str(EXAMPLES))  # the examples' shared _out.py
    try:
        spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(EXAMPLES))
    return mod


# ---- Saxe, McClelland & Ganguli: sigmoidal mode learning ------------------------------------

def test_saxe_half_learning_times_match_their_formula():
    # t = (tau/2s) ln(u_f (s - u0) / (u0 (s - u_f))) at u_f = s/2, tau = 1, computed here
    measured, _ = _load("saxe_sigmoid").half_times()
    s, u0 = np.array([3.0, 2.0, 1.0]), 1e-3
    saxe = [math.log((s_ / 2) * (s_ - u0) / (u0 * (s_ - s_ / 2))) / (2 * s_) for s_ in s]
    np.testing.assert_allclose(measured, saxe, rtol=1e-5)
    assert np.all(np.diff(measured) > 0)          # stronger modes are learned first


# ---- Kunin et al.: lazy to rich --------------------------------------------------------------

def test_kunin_lazy_rich_transition_at_the_theory_rho():
    k = _load("kunin_lazy_rich").lazy_rich_transition()
    assert k["labels"] == ("rich", "lazy")
    # small-init theory: kernel change (sqrt(1 + 4/rho^2) - 1)/2 * sqrt(1 + 3/n) = tau
    n, tau = k["n"], 0.1
    rho_k = 2 / math.sqrt((1 + 2 * tau / math.sqrt(1 + 3 / n)) ** 2 - 1)
    assert rho_k == pytest.approx(3.634, abs=1e-3)
    assert k["delta_star"] / k["s"] == pytest.approx(rho_k, rel=0.01)  # init mu0 = 0.05


# ---- Jacot et al.: plateaus and escape times -------------------------------------------------

@pytest.mark.filterwarnings("ignore::exactdyn.errors.PrecisionWarning")
def test_saddle_plateaus_sit_at_the_teachers_partial_losses():
    found, theory, res = _load("saddle_to_saddle").plateau_levels(gamma=2.5, width=10)
    assert theory == {0: 10.5, 1: 2.5, 2: 0.5}
    for k in range(3):
        assert found[k] == pytest.approx(theory[k], rel=0.02)
    assert res.rank_increments == [1, 1, 1]


def test_saddle_escape_time_grows_like_log_one_over_sigma():
    slope, predicted, escapes = _load("saddle_to_saddle").escape_scaling()
    assert predicted == 0.25 and np.all(np.diff(escapes) > 0)
    assert slope == pytest.approx(predicted, rel=0.05)


# ---- Luo et al.: the RD slope either side of gamma = 1 ----------------------------------------

@pytest.mark.parametrize("rd", ["all", "copy"])
def test_luo_rd_slope_changes_sign_across_the_theory_line(rd):
    side = _load("rd_slopes").across_the_line(rd=rd)
    below, above = side[0.75], side[1.75]
    assert below.slope < 0 < above.slope
    assert (below.label, below.predicted) == ("linear", "linear")
    assert (above.label, above.predicted) == ("condensed", "condensed")


# ---- Boursier & Flammarion: polar picture and the failure case --------------------------------

def _d_vector(X, y, u):
    """Independent D(u) = (1/n) sum_i y_i 1{u.x_i > 0} x_i (ReLU, bias in X)."""
    return (y * (X @ u > 0)) @ X / len(y)


def test_early_alignment_polar_neurons_end_on_extremal_vectors():
    mod = _load("early_alignment_polar")
    net, stat, traj = mod.sign_case()
    ext = [s for s in stat if s.kind == "extremal" and s.attracts != 0]
    assert {s.attracts for s in ext} == {1, -1}
    for s in ext:   # D(u) parallel to u, by a computation of D independent of the package
        D = _d_vector(net.X, net.y, s.u)
        assert abs(D[0] * s.u[1] - D[1] * s.u[0]) < 1e-12 * np.linalg.norm(D)
    a, W = traj["a"][-1], traj["W"][-1]
    live = np.linalg.norm(W, axis=1) > 0.1 * np.linalg.norm(W, axis=1).max()
    for k in np.flatnonzero(live):
        (s,) = [s for s in ext if s.attracts == np.sign(a[k])]
        assert W[k] @ s.u / np.linalg.norm(W[k]) > 0.999


def test_early_alignment_failure_ends_at_the_least_squares_loss():
    k = _load("early_alignment_failure").key_numbers(with_section5=False)
    eta = 0.1
    assert k["least_squares"] == pytest.approx((1 - eta) ** 2 / 9, rel=1e-12)
    assert k["balanced"] == pytest.approx((1 - eta) ** 2 / 9, abs=1e-6)   # spurious point
    assert k["v_shape"] < 1e-25 and k["gaussian"] < 1e-3


def test_early_alignment_failure_on_the_papers_section5_instance():
    k = _load("early_alignment_failure").section5()
    # the paper's section-5 data: numpy's least squares of y on [x, 1], independently
    X5 = np.array([-0.75, -0.5, 0.125])
    y5 = np.array([1.1, 0.1, 0.8])
    A = np.column_stack([X5, np.ones(3)])
    r = y5 - A @ np.linalg.lstsq(A, y5, rcond=None)[0]
    assert k["section5"] == pytest.approx(np.sum(r**2) / 6, abs=1e-6) and k["section5"] > 0.08


# ---- Zhou et al.: condensation (fully connected, and CNN kernels on real images) --------------

@pytest.mark.parametrize("case", [0, 1, 2])
def test_condensation_onto_at_most_p_lines(case):
    mod = _load("condensation_heatmaps")
    c = mod.condense(*mod.CASES[case])
    p = c["multiplicity"]
    assert p == case + 1 and len(c["lines"]) == p
    assert 1 <= c["clusters"] <= p
    assert c["cos"][c["grown"]].min() > 0.98


def test_cnn_digits_fraction_of_condensed_kernels():
    pytest.importorskip("sklearn")
    d = _load("cnn_condensation_digits").digits_case(channels=8, t_factor=1.0, points=41)
    assert d["lin"].ratio > 1.9                   # s1 > s2: the theory predicts all kernels
    assert d["condensed_fraction"] == 1.0         # on ±u1 before the loss moves by 1%
    assert d["min_cos"][0] < 0.9                  # from a random, unaligned init


def test_luo_diagram_named_inits_from_their_scales():
    from exactdyn.regimes import TWO_LAYER_INITS, luo_label

    table = _load("luo_phase_diagram").named_inits()
    assert set(table) == {"ntk", "mean-field", "xavier", "lecun", "he", "std-1/m"}
    m1, m2 = 1e6, 1e9
    for name, (g, gp, label) in table.items():
        sc = [TWO_LAYER_INITS[name].scales(m) for m in (m1, m2)]
        # the exponents read off the scales: -d log(beta1 beta2/alpha)/d log m, ...
        dlog = math.log(m2 / m1)
        g_read = -(math.log(sc[1]["beta1"] * sc[1]["beta2"] / sc[1]["alpha"])
                   - math.log(sc[0]["beta1"] * sc[0]["beta2"] / sc[0]["alpha"])) / dlog
        gp_read = -(math.log(sc[1]["beta1"] / sc[1]["beta2"])
                    - math.log(sc[0]["beta1"] / sc[0]["beta2"])) / dlog
        assert (g, gp) == pytest.approx((g_read, gp_read), abs=1e-9)
        assert label == luo_label(g, gp)
    assert [table[n][2] for n in ("ntk", "mean-field", "std-1/m")] == \
        ["linear", "critical", "condensed"]
