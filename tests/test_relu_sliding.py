"""ReLU kinks and Filippov sliding (exactdyn.numeric.twolayer): regression tests for the
Boursier–Flammarion setups that used to restart at a kink until max_kinks, checked
against a hand-written rhs and a plain gradient-descent loop; per-integration state;
``solve(..., max_kinks=...)``."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import exactdyn as ed
from exactdyn.models.datasets import boursier_flammarion_data
from exactdyn.numeric.twolayer import lowered_two_layer

# (init, width, beta2, seed): each raised IntegrationError after max_kinks=3000 before the
# sliding rule (issue 5); balanced width 20 seed 0 and Gaussian seeds 0 and 1.
FAILED = [("balanced", 20, 1e-3, 0), ("gaussian", 10, 0.3, 0), ("gaussian", 10, 0.3, 1)]


def bf_model(init, width, beta2, seed):
    X, y = boursier_flammarion_data(0.1)
    return ed.TwoLayer(width, X, y, init=init, beta1=1e-3, beta2=beta2, seed=seed)


def relu_forward(a, W, Xb):
    """Hand-written network output, the oracle."""
    return np.maximum(W @ Xb.T, 0.0).T @ a


def one_sided_velocities(a, W, Xb, y, k, i):
    r"""Hand-written :math:`\dot h_{ki}` with entry (k, i) off (σ' = 0) and on (σ' = 1)."""
    n = len(y)
    e = relu_forward(a, W, Xb) - y
    act = (W[k] @ Xb.T > 0).astype(float)
    out = []
    for s in (0.0, 1.0):
        act[i] = s
        wdot = -(a[k] / n) * ((act * e) @ Xb)
        out.append(float(Xb[i] @ wdot))
    return out


@pytest.mark.parametrize("setup", FAILED)
def test_bf_setups_no_longer_restart_at_a_kink_until_max_kinks(setup):
    model = bf_model(*setup)
    Xb, y = model.X, model.y
    t = np.linspace(0.0, 300.0, 61)
    traj = ed.solve(model, t, max_kinks=200)
    assert traj.meta["kinks"] <= 200
    a, W = traj["a"], traj["W"]
    # These widths reach an exact fit (the V of Boursier & Flammarion is reachable):
    # the hand-written forward pass reproduces the labels and the loss.
    f = relu_forward(a[-1], W[-1], Xb)
    np.testing.assert_allclose(f, y, atol=1e-7)
    assert traj["loss"][-1] == pytest.approx(np.mean((f - y) ** 2) / 2, abs=1e-20)
    assert traj["loss"][-1] < 1e-15
    # a_k^2 - |w_k|^2 is conserved through kinks and sliding (1-homogeneous ReLU).
    q = a**2 - np.sum(W**2, axis=-1)
    np.testing.assert_allclose(q, np.broadcast_to(q[0], q.shape), atol=1e-9)
    # Sliding entries sit exactly on their surface h_ki = 0 ...
    h = np.einsum("tkd,id->tki", W, Xb)
    size = np.linalg.norm(W, axis=-1)[:, :, None] * np.linalg.norm(Xb, axis=-1)
    for k, i in traj.meta["sliding_entries"]:
        assert abs(h[-1, k, i]) <= 1e-14 * size[-1, k, i]
    # ... and every entry held at h = 0 while the loss is still decreasing is at an
    # attracting surface by the hand-written rhs: pushed up from the off side, down from
    # the on side (Filippov's sliding condition), not an artefact of the integrator.
    held = 0
    for s in range(1, len(t)):
        if traj["loss"][s] < 1e-8:
            break
        for k, i in zip(*np.nonzero(np.abs(h[s]) <= 1e-14 * size[s])):
            if np.linalg.norm(W[s, k]) < 1e-2:
                continue
            hm, hp = one_sided_velocities(a[s], W[s], Xb, y, k, i)
            assert hm > 0 > hp
            held += 1
    assert held > 0


@pytest.mark.slow
@pytest.mark.parametrize("setup", FAILED)
def test_bf_setups_are_the_limit_of_gradient_descent(setup):
    """A plain numpy GD loop (σ'(0) = 0) converges to the integrated flow at first order:
    halving the step halves the distance at T (Filippov's solution is the GD limit)."""
    model = bf_model(*setup)
    Xb, y = model.X, model.y
    T = 100.0
    ref = ed.solve(model, [0.0, T], rtol=1e-12)
    ref = np.r_[ref["a"][-1], ref["W"][-1].ravel()]
    errs = []
    for lr in (4e-3, 2e-3):
        a, W = model.a0.copy(), model.W0.copy()
        for _ in range(int(round(T / lr))):
            h = W @ Xb.T
            act = h > 0
            e = a @ np.where(act, h, 0.0) - y
            ga = np.where(act, h, 0.0) @ e / len(y)
            W -= lr * a[:, None] * ((act * e) @ Xb) / len(y)
            a -= lr * ga
        errs.append(np.max(np.abs(np.r_[a, W.ravel()] - ref)))
    assert errs[1] < 1e-3
    assert 1.6 < errs[0] / errs[1] < 2.5


def test_concurrent_integrations_of_one_model_do_not_share_a_pattern():
    """One cached LoweredTwoLayer, several integrations at once (threads): each gives the
    result it gives alone (the pattern and sliding set are per call)."""
    model = bf_model("gaussian", 10, 0.3, 0)
    low = lowered_two_layer(model)
    jobs = [(np.array([0.0, 20.0, 40.0]), 1e-10), (np.array([0.0, 25.0, 30.0]), 1e-8),
            (np.array([0.0, 40.0]), 1e-9)] * 2
    alone = [low.integrate(t, rtol=r)[0] for t, r in jobs]
    assert lowered_two_layer(model) is low
    with ThreadPoolExecutor(len(jobs)) as pool:
        together = list(pool.map(lambda job: low.integrate(job[0], rtol=job[1])[0], jobs))
    for x, z in zip(alone, together):
        np.testing.assert_array_equal(x, z)
    assert not any(hasattr(low, name) for name in ("mask", "slide"))


def test_solve_max_kinks():
    model = ed.TwoLayer(4, "1d-sine", activation="relu", n=5, beta1=0.3, beta2=0.3)
    with pytest.raises(ed.IntegrationError, match="max_kinks=0"):
        ed.solve(model, [0.0, 50.0], max_kinks=0)
    traj = ed.solve(model, [0.0, 50.0], max_kinks=10_000)
    assert 0 < traj.meta["kinks"] <= traj.meta["max_kinks"] == 10_000
    with pytest.raises(ValueError, match="max_kinks"):
        ed.solve(model, [0.0, 1.0], max_kinks=-1)
    with pytest.raises(TypeError, match="max_kinks"):
        ed.solve(model, [0.0, 1.0], max_kinks=2.5)
    with pytest.raises(ValueError, match="max_kinks applies to two-layer"):
        ed.solve(ed.Linear1D(), [0.0, 1.0], max_kinks=10)
    smooth = ed.TwoLayer(4, "1d-sine", activation="tanh", n=5)
    assert ed.solve(smooth, [0.0, 1.0], max_kinks=0).meta["max_kinks"] is None


def test_leaky_relu_sliding_is_the_limit_of_gradient_descent():
    """Leaky ReLU (σ'_− = 0.01, so the − side moves too): entries slide here and a plain GD
    loop with η = 2e-3 lands within O(η) of the integrated Filippov flow."""
    X, y = boursier_flammarion_data(0.1)
    model = ed.TwoLayer(10, X, y, activation="leaky_relu", init="gaussian", beta1=1e-3,
                        beta2=0.3, seed=0)
    T, lr = 100.0, 2e-3
    traj = ed.solve(model, [0.0, T])
    assert traj.meta["sliding_at_end"] > 0
    Xb, a, W = model.X, model.a0.copy(), model.W0.copy()
    for _ in range(int(round(T / lr))):
        h = W @ Xb.T
        ds = np.where(h > 0, 1.0, 0.01)
        e = a @ (ds * h) - y
        ga = (ds * h) @ e / len(y)
        W -= lr * a[:, None] * ((ds * e) @ Xb) / len(y)
        a -= lr * ga
    assert np.max(np.abs(traj["W"][-1] - W)) < 5e-4
    assert np.max(np.abs(traj["a"][-1] - a)) < 5e-4


@pytest.mark.parametrize("bias", [True, False])
def test_entries_on_a_kink_at_t0_follow_gradient_descent(bias):
    """h_ki = 0 exactly at t = 0 (a neuron through a data point; with bias=False also a
    zero input, whose h stays 0): decided from the one-sided velocities at the start, and
    the flow agrees with a plain GD loop to O(η)."""
    X = np.array([[-1.0], [0.0], [1.0]]) if bias else np.array([[0.0], [1.0], [-1.0]])
    y = np.array([1.0, 0.3, 0.5])
    a0, W0 = np.array([0.5, -0.4, 0.8]), np.array([[1.0, 0.0], [-0.7, 0.0], [0.3, 0.0]])
    if not bias:
        W0 = W0[:, :1]
    model = ed.TwoLayer.from_init(a0, W0, X, y, bias=bias)
    Xb = model.X
    assert np.any((W0 @ Xb.T) == 0)
    T, lr = 5.0, 1e-3
    traj = ed.solve(model, [0.0, T], rtol=1e-12)
    a, W = a0.copy(), W0.copy()
    for _ in range(int(round(T / lr))):
        h = W @ Xb.T
        act = h > 0
        e = a @ (act * h) - y
        ga = (act * h) @ e / len(y)
        W -= lr * a[:, None] * ((act * e) @ Xb) / len(y)
        a -= lr * ga
    assert np.max(np.abs(traj["W"][-1] - W)) < 1e-3
    assert np.max(np.abs(traj["a"][-1] - a)) < 1e-3


def test_kink_location_survives_a_stalled_brent_search():
    """A (gamma, gamma') cell of Luo et al.'s ReLU diagram whose kink location stalled
    scipy's brentq (RuntimeError 'Failed to converge after 100 iterations' out of solve)
    at m = 256: the search now ends by bisection of the same bracket, and the cell is
    classified."""
    model = ed.TwoLayer(256, "1d-linear", n=10, activation="relu", init="mirrored",
                        gamma=1.9210526315789473, gamma_prime=0.7894736842105263, seed=0)
    regime = ed.classify(model)
    assert regime.label == "condensed"
    assert np.isfinite(regime.evidence["rd_slope"])


@pytest.mark.parametrize("root", [0.3, 1e-9, 12345.678])
def test_bisection_ends_at_the_sign_change_even_with_round_off_noise(root):
    from exactdyn.numeric.kinks import _bisect_sign_change

    rng = np.random.default_rng(0)

    def noisy(t):  # positive before the root, non-positive after, noise of 1e-3 ulp-ish
        return (root - t) + (1e-20 * rng.standard_normal() if t != root else 0.0)

    hi = 2 * root + 1
    xtol = 1e-12 * hi
    got = _bisect_sign_change(noisy, 0.0, hi, xtol)
    assert abs(got - root) <= xtol + 1e-15 * hi
