"""Single-neuron (lazy / rich) and deep-linear (ntk / saddle-to-saddle) taxonomies."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import exactdyn as ed
from exactdyn.analysis import analyze_saddles
from exactdyn.models.deep_linear import teacher_matrix
from exactdyn.regimes import classify, kernel_movement, plateau_count, single_neuron_ntk
from exactdyn.regimes.single_neuron import lazy_threshold, small_init_ntk_change

S = teacher_matrix([3, 2, 1], 3, 3)


def test_single_neuron_canonical():
    lazy = classify(ed.SingleNeuron(in_dim=2, delta=20.0))
    rich = classify(ed.SingleNeuron(in_dim=2, delta=0.0))
    assert (lazy.label, lazy.predicted, lazy.taxonomy) == ("lazy", "lazy", "single_neuron")
    assert (rich.label, rich.predicted) == ("rich", "rich")
    for r in (lazy, rich):
        for k in ("ntk_change", "delta_sign", "rho", "alignment_change", "kernel_tol"):
            assert k in r.evidence
    assert lazy.evidence["delta_sign"] == 1 and rich.evidence["delta_sign"] == 0
    assert lazy.evidence["ntk_change"] < 0.1 < rich.evidence["ntk_change"]
    neg = classify(ed.SingleNeuron(in_dim=2, delta=-20.0))
    assert neg.evidence["delta_sign"] == -1 and neg.evidence["rescaling_limit"]


def test_single_neuron_lazy_formula():
    # delta > 0, small init: the change is (sqrt(1 + 4/rho^2) - 1)/2 * sqrt(1 + 3/n).
    for n, rho in ((1, 2.0), (3, 5.0), (6, 0.7)):
        beta = np.eye(n)[0]
        got = small_init_ntk_change(rho, beta, np.ones(n))
        assert got == pytest.approx((np.sqrt(1 + 4 / rho**2) - 1) / 2 * np.sqrt(1 + 3 / n))
        # boundary: exactly kernel_tol at rho_K
        rk = lazy_threshold(n, 0.1)
        assert small_init_ntk_change(rk, beta, np.ones(n)) == pytest.approx(0.1)


def test_ntk_by_finite_differences():
    # Theta = J J^T (rates as metric) with J the Jacobian of f(x_i) = a w.x_i, X = I.
    rng = np.random.default_rng(1)
    a, w = 0.7, rng.normal(size=3)
    X = np.eye(3)
    h = 1e-6

    def f(p):
        return p[0] * (X @ p[1:])

    p = np.r_[a, w]
    J = np.stack([(f(p + h * e) - f(p - h * e)) / (2 * h) for e in np.eye(4)], axis=1)
    eta = np.array([2.0, 0.5, 0.5, 0.5])  # eta_a = 2, eta_w = 0.5
    assert np.allclose(single_neuron_ntk(a, w, 2.0, 0.5), (J * eta) @ J.T, atol=1e-8)
    assert kernel_movement(np.stack([np.eye(2), 2 * np.eye(2)]))[-1] == pytest.approx(1.0)


@settings(max_examples=6, deadline=None)
@given(rho=st.one_of(st.floats(0.0, 1.0), st.floats(8.0, 50.0)), n=st.integers(1, 4),
       seed=st.integers(0, 100))
def test_single_neuron_predicted_agrees_away_from_boundary(rho, n, seed):
    r = classify(ed.SingleNeuron(in_dim=n, delta=rho, product=1e-3, seed=seed))
    assert r.label == r.predicted == ("lazy" if rho > 4.5 else "rich")


def test_single_neuron_trajectory_matches_model():
    m = ed.SingleNeuron(in_dim=2, delta=0.5, seed=3)
    r = classify(ed.exact(m, np.linspace(0, 40, 400)))
    assert r.label == classify(m).label == "rich"
    assert r.evidence["source"] == "trajectory"


def test_deep_linear_canonical():
    ntk = classify(ed.DeepLinear(depth=3, width=64, in_dim=3, out_dim=3, gamma=0.5,
                                 sigma_yx=S, seed=0))
    assert (ntk.label, ntk.predicted, ntk.taxonomy) == ("ntk", "ntk", "deep_linear")
    s2s = classify(ed.DeepLinear(depth=3, width=32, in_dim=3, out_dim=3, gamma=2.0,
                                 sigma_yx=S, seed=0))
    assert (s2s.label, s2s.predicted) == ("saddle-to-saddle", "saddle-to-saddle")
    assert s2s.evidence["plateau_count"] >= 2 and s2s.evidence["stepwise"]
    assert ntk.evidence["ntk_movement"] < 0.1 < s2s.evidence["ntk_movement"]
    # plateau levels against the saddles' losses 1/2 sum_{b>k} s_b^2 = 7, 2.5, 0.5
    levels = [float(x) for x in s2s.evidence["plateau_losses"].split(",")]
    assert levels[0] == pytest.approx(7.0, rel=0.01)


def test_deep_linear_sigma_and_trajectory():
    m = ed.DeepLinear(depth=2, width=16, in_dim=3, out_dim=3, sigma=0.5, sigma_yx=S)
    r = classify(m)  # sigma^2 w = 4 > 1: ntk (gamma = 0.5)
    assert r.predicted == "ntk" and r.evidence["gamma"] == pytest.approx(0.5)
    m = ed.DeepLinear(depth=3, width=8, in_dim=3, out_dim=3, gamma=3.0, sigma_yx=S, seed=0)
    traj = ed.solve(m, np.linspace(0, 45, 451))
    r = classify(traj)
    assert (r.label, r.predicted) == ("saddle-to-saddle", "saddle-to-saddle")
    assert r.evidence["plateau_count"] == plateau_count(analyze_saddles(traj)) == 3


@settings(max_examples=3, deadline=None)
@given(gamma=st.sampled_from([0.3, 0.5, 2.5, 3.0]), seed=st.integers(0, 50))
def test_deep_linear_predicted_agrees(gamma, seed):
    width = 48 if gamma < 1 else 8
    r = classify(ed.DeepLinear(depth=2, width=width, in_dim=2, out_dim=2, gamma=gamma,
                               sigma_yx=teacher_matrix([2, 1], 2, 2), seed=seed))
    assert r.label == r.predicted


def test_bad_input():
    with pytest.raises(ValueError, match="taxonomy must be one of"):
        classify(ed.SingleNeuron(), taxonomy="nope")
    with pytest.raises(ValueError, match="does not apply"):
        classify(ed.SingleNeuron(), taxonomy="deep_linear")
    with pytest.raises(ValueError, match="does not apply"):
        classify(ed.DeepLinear(sigma_yx=S), taxonomy="single_neuron")
    with pytest.raises(ValueError, match="no regime taxonomy"):
        # a family without a taxonomy (LinearNet has one since linear_net)
        classify(ed.TwoLayerCNN(1, 2, np.ones((2, 3, 3, 1)), np.array([1.0, -1.0])))
    with pytest.raises(ValueError, match="unknown option"):
        classify(ed.SingleNeuron(), bogus=1)
    with pytest.raises(ValueError, match="kernel_tol"):
        classify(ed.SingleNeuron(), kernel_tol=-1)


def test_cli(capsys):
    from exactdyn.cli import run

    assert run(["classify", "single-neuron", "--delta", "20", "--format", "json"]) == 0
    assert '"label": "lazy"' in capsys.readouterr().out
    assert run(["classify", "deep-linear", "--depth", "2", "--width", "8",
                "--teacher-svals", "2,1", "--gamma", "3", "--t-span", "0:30",
                "--points", "301"]) == 0
    assert "saddle-to-saddle" in capsys.readouterr().out


# ---- Jacot et al.'s reading (issue 17): saddle-to-saddle needs a visited saddle sequence ---

def test_deep_linear_moving_ntk_without_saddle_plateaus_is_intermediate_not_saddle_to_saddle():
    """gamma = 1.25, width 32: the NTK moves 16x but no loss plateau at a saddle level is
    resolved. The abstract defines saddle-to-saddle as visiting 'the neighborhoods of a
    sequence of saddles' (conjectured as gamma -> +inf), so the measured label is
    'intermediate' ('the second case is less understood') and the evidence says why it
    differs from the predicted saddle-to-saddle."""
    r = classify(ed.DeepLinear(depth=3, width=32, in_dim=3, out_dim=3, gamma=1.25, sigma_yx=S,
                               seed=0))
    assert (r.label, r.predicted) == ("intermediate", "saddle-to-saddle")
    assert r.evidence["ntk_movement"] > 1 and r.evidence["plateau_count"] == 0
    assert "gamma -> +inf" in r.evidence["disagreement"]


def test_deep_linear_param_movement_and_min_plateaus_option():
    """NTK regime: theta_0 'very close to a global minimum but far from any saddle point'
    (the parameters move 4% of their norm); small init: they move ~20x their norm."""
    ntk = classify(ed.DeepLinear(depth=3, width=64, in_dim=3, out_dim=3, gamma=0.5,
                                 sigma_yx=S, seed=0))
    assert ntk.label == "ntk" and ntk.evidence["param_movement"] < 0.1
    assert ntk.evidence["disagreement"] == ""
    model = ed.DeepLinear(depth=3, width=32, in_dim=3, out_dim=3, gamma=3.0, sigma_yx=S, seed=0)
    s2s = classify(model, min_plateaus=3)
    assert s2s.label == "saddle-to-saddle" and s2s.evidence["param_movement"] > 1
    assert s2s.evidence["plateau_count"] == 3 and s2s.evidence["stepwise"]
    assert classify(model, min_plateaus=4).label == "intermediate"
    with pytest.raises(ValueError, match="min_plateaus"):
        classify(model, min_plateaus=1.5)
