"""Probes on weight snapshots: the same numbers as the package's own measures on its
exact trajectories, the theory's predictions on networks trained here with plain-numpy
gradient descent, and ValueError naming the argument on bad input."""

import numpy as np
import pytest

import exactdyn as ed
from exactdyn import probe
from exactdyn.analysis.condensation import cosine_similarity, direction_clusters
from exactdyn.analysis.ntk import deep_linear_ntk
from exactdyn.analysis.ntk import kernel_distance as package_kernel_distance
from exactdyn.analysis.saddles import numerical_rank as package_rank
from exactdyn.regimes.metrics import alignment_score

X3 = np.array([[1.0, 0.5], [-0.3, 1.0], [0.7, -1.0]])
Y3 = np.array([0.5, -0.2, 0.9])


# ---- the same numbers through both doors ----------------------------------------------------

def test_rd_matches_the_two_layer_trajectory_observable():
    m = ed.TwoLayer(8, X3, Y3, activation="tanh", beta1=0.3, beta2=0.3, seed=2)
    traj = ed.solve(m, [0.0, 1.0, 4.0])
    for i in range(3):
        assert probe.rd(traj["W"][0], traj["W"][i]) == pytest.approx(traj["rd"][i], rel=1e-14,
                                                                        abs=1e-300)


def test_condensation_matches_the_package_on_a_condensing_trajectory():
    x = np.linspace(-1, 1, 12)[:, None]
    m = ed.TwoLayer(30, x, np.sin(2 * x[:, 0]), activation="tanh", beta1=1e-3, beta2=1e-3,
                    seed=0)
    traj = ed.solve(m, [0.0, 20.0])
    for i in range(2):
        W = traj["W"][i]
        got = probe.condensation(W)
        C, kept = cosine_similarity(W)
        assert np.array_equal(got.kept, kept)
        assert np.allclose(got.cosine, C, atol=1e-15)
        assert got.directions == direction_clusters(W)
    # tanh (multiplicity 1), small init: all neurons on the line R z [ZX] -> one line
    assert probe.condensation(traj["W"][-1], signed=False).directions == 1
    assert probe.condensation(traj["W"][0], signed=False).directions > 3


def test_alignment_matches_the_linear1d_observables_and_the_mechanism_rule():
    m = ed.Linear1D(width=6, sigma_u=0.1, sigma_w=0.1, teacher=3.0, seed=1)
    traj = ed.solve(m, [0.0, 1.0, 10.0])
    snaps = []
    for i in range(3):
        al = probe.alignment(traj["u"][i], traj["w"][i])
        snaps.append(al)
        assert al.zeta == pytest.approx(traj["alignment"][i], rel=1e-12)
        assert al.norm_u == pytest.approx(traj["norm_u"][i], rel=1e-13)
        assert al.norm_w == pytest.approx(traj["norm_w"][i], rel=1e-13)
        assert al.product == pytest.approx(traj["end_to_end"][i] / m.kappa, rel=1e-12)
    label, score = probe.mechanism(snaps[0], snaps[-1])
    p = np.array([s.product for s in snaps])
    zeta = np.array([s.zeta for s in snaps])
    assert score == pytest.approx(float(alignment_score(p, zeta)), rel=1e-12)
    assert label == ("alignment" if score > 0.5 else "rescaling")


def test_singular_values_and_rank_match_the_deep_linear_trajectory():
    syx = np.diag([3.0, 1.0, 0.0])
    m = ed.DeepLinear(depth=3, width=4, in_dim=3, out_dim=3, sigma_yx=syx, seed=0)
    traj = ed.solve(m, [0.0, 5.0, 40.0])
    for i in range(3):
        mats = [traj["W1"][i], traj["W2"][i], traj["W3"][i]]
        s = probe.singular_values(mats)
        assert np.allclose(s, traj["singular_values"][i], rtol=1e-12, atol=1e-15)
        assert probe.numerical_rank(s, 0.1) == package_rank(traj["singular_values"][i], 0.1)


def test_kernel_distance_from_jacobians_matches_the_package_ntk_distance():
    # Deep linear, whitened: f(x) = A x on the input basis; J = d vec(A) / d theta. A is
    # linear in each layer, so central differences are exact up to rounding.
    syx = np.array([[2.0, 0.3], [0.0, 1.0]])
    m = ed.DeepLinear(depth=3, width=3, in_dim=2, out_dim=2, sigma_yx=syx, seed=4)
    traj = ed.solve(m, [0.0, 3.0])
    shapes = [(3, 2), (3, 3), (2, 3)]

    def A_of(theta):
        mats, k = [], 0
        for s in shapes:
            mats.append(theta[k:k + s[0] * s[1]].reshape(s))
            k += s[0] * s[1]
        return (mats[2] @ mats[1] @ mats[0]).ravel()

    def jac(i):
        theta = np.concatenate([traj["W1"][i].ravel(), traj["W2"][i].ravel(),
                                traj["W3"][i].ravel()])
        cols = []
        for k in range(theta.size):
            e = np.zeros_like(theta)
            e[k] = 1e-3
            cols.append((A_of(theta + e) - A_of(theta - e)) / 2e-3)
        return np.array(cols).T

    K0, K1 = probe.ntk_from_jacobian(jac(0)), probe.ntk_from_jacobian(jac(1))
    # the package's Kronecker form orders (output, input) pairs differently: the distance
    # and the spectrum do not depend on the order
    Kp = deep_linear_ntk([traj["W1"][0], traj["W2"][0], traj["W3"][0]])
    assert np.allclose(np.linalg.eigvalsh(K0), np.linalg.eigvalsh(Kp), rtol=1e-8, atol=1e-10)
    assert probe.kernel_distance(K0, K1) == pytest.approx(package_kernel_distance(traj, 0, 1),
                                                          rel=1e-7, abs=1e-12)


def test_ntk_from_jacobian_with_rates_is_the_linear1d_ntk_observable():
    # one datum x = sqrt(Sigma_xx): f = kappa (u.w) x, J = kappa x (w, u)
    m = ed.Linear1D(width=5, eta_u=0.7, eta_w=1.3, kappa=1.5, x_var=0.8, seed=3)
    traj = ed.solve(m, [0.0, 2.0])
    x = np.sqrt(0.8)
    for i in range(2):
        u, w = traj["u"][i], traj["w"][i]
        J = (1.5 * x * np.concatenate([w, u]))[None, :]
        K = probe.ntk_from_jacobian(J, rates=[0.7] * 5 + [1.3] * 5)
        assert K[0, 0] == pytest.approx(traj["ntk"][i], rel=1e-13)


def test_rd_slope_is_the_least_squares_slope_of_the_geometric_mean():
    widths = [10, 100, 1000]
    rds = np.array([[0.5, 0.6], [0.05, 0.07], [0.004, 0.006]])
    res = probe.rd_slope(widths, rds)
    gm = np.exp(np.mean(np.log(rds), axis=1))
    slope = (np.log(gm[2]) - np.log(gm[0])) / (np.log(1000) - np.log(10))
    assert res.slope == pytest.approx(np.polyfit(np.log(widths), np.log(gm), 1)[0], rel=1e-12)
    assert res.slope == pytest.approx(slope, rel=0.1)
    assert probe.rd_slope([1, 10], [1.0, 10.0]).slope == pytest.approx(1.0, rel=1e-14)


def test_extremal_alignment_is_one_at_the_closed_form_alignment_limits():
    X = np.array([[-1.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    y = np.array([1.0, 0.1, 1.0])
    m = ed.TwoLayer.from_init(np.array([1.0, 1.0, -1.0]),
                              np.array([[0.6, 0.8], [-0.3, 1.0], [0.2, -1.0]]), X, y,
                              activation="relu", bias=False)
    path = ed.alignment_path(m, renormalize=True)
    ea = probe.extremal_alignment(path.limit, X, y, a=m.a0)
    for i, k in enumerate(ea.kept):
        if path.status[k] == "extremal":
            assert ea.cos_to_D[i] == pytest.approx(1.0, abs=1e-12)
            assert ea.nearest[i] == pytest.approx(1.0, abs=1e-6)


# ---- networks trained here with plain-numpy gradient descent --------------------------------

def test_probes_on_a_numpy_gd_deep_linear_network_show_saddle_to_saddle():
    # small init: the rank of W3 W2 W1 grows one by one, plateaus at the teacher's rank
    rng = np.random.default_rng(0)
    T = np.diag([4.0, 1.5, 0.0])
    Ws = [rng.normal(size=(5, 3)) * 0.05, rng.normal(size=(5, 5)) * 0.05,
          rng.normal(size=(3, 5)) * 0.05]
    lr, svs, ts = 0.01, [], []
    for k in range(4000):
        if k % 20 == 0:
            svs.append(probe.singular_values(Ws))
            ts.append(k * lr)
        A = Ws[2] @ Ws[1] @ Ws[0]
        R = A - T
        g = [(Ws[2] @ Ws[1]).T @ R, Ws[2].T @ R @ Ws[0].T, R @ (Ws[1] @ Ws[0]).T]
        Ws = [W - lr * gW for W, gW in zip(Ws, g)]
    ranks = [p.rank for p in probe.plateaus(ts, svs, tol=0.1)]
    assert ranks == [0, 1, 2]
    assert np.allclose(probe.singular_values(Ws)[:2], [4.0, 1.5], rtol=1e-3)


def test_probes_on_a_numpy_gd_two_layer_tanh_network_show_condensation():
    # small init, multiplicity-1 activation: input weights condense on one line [ZX];
    # RD grows far beyond 1
    rng = np.random.default_rng(1)
    x = np.linspace(-1, 1, 20)
    X = np.stack([x, np.ones_like(x)], axis=1)
    y = np.tanh(2 * x) + 0.3
    m = 40
    a, W = rng.normal(size=m) * 1e-4, rng.normal(size=(m, 2)) * 1e-4
    W0 = W.copy()
    lr = 0.05
    for _ in range(3000):
        h = W @ X.T
        e = np.tanh(h).T @ a - y
        ga = np.tanh(h) @ e / len(x)
        gW = (a[:, None] * (1 - np.tanh(h) ** 2) * e[None, :]) @ X / len(x)
        a, W = a - lr * ga, W - lr * gW
    assert probe.condensation(W0, signed=False).directions > 3
    assert probe.condensation(W, signed=False).directions == 1
    assert probe.rd(W0, W) > 10


# ---- bad input ------------------------------------------------------------------------------

def test_mismatched_snapshots_are_named():
    with pytest.raises(ValueError, match="Wt"):
        probe.rd(np.ones((3, 2)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="W0"):
        probe.rd(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="K2"):
        probe.kernel_distance(np.eye(3), np.eye(2))
    with pytest.raises(ValueError, match="w"):
        probe.alignment(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="share h"):
        probe.alignment(np.ones((2, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="mats\\[1\\]"):
        probe.singular_values([np.ones((3, 2)), np.ones((2, 2))])
    with pytest.raises(ValueError, match="rds"):
        probe.rd_slope([1, 2, 3], [0.1, 0.2])
    with pytest.raises(ValueError, match="rates"):
        probe.ntk_from_jacobian(np.ones((2, 3)), rates=[1.0, 2.0])


def test_a_layer_shape_a_probe_does_not_define_is_named():
    with pytest.raises(ValueError, match="W must be 2-D"):
        probe.condensation(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="X must have the 2 input columns"):
        probe.extremal_alignment(np.ones((3, 2)), np.ones((4, 3)), np.ones(4))
    with pytest.raises(ValueError, match="u must be"):
        probe.alignment(np.ones((2, 2, 2)), np.ones(2))
    with pytest.raises(ValueError, match="svals must have one row per time"):
        probe.plateaus([0.0, 1.0], np.ones((3, 2)), tol=0.1)
