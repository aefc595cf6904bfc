"""ReLU kinks of the two-layer CNN (exactdyn.numeric.kinks, shared with TwoLayer).

A CNN whose kernel covers the whole image has one output position and is the two-layer
network without bias on the flattened images; the bias is a constant pixel. Mapped that
way, the Boursier–Flammarion setup of tests/test_relu_sliding.py that restarted at a kink
without end under the CNN's former scheme (balanced, width 20: more than 200 changes by
t ≈ 206) must finish, conserve the per-kernel balance law, hold its sliding entries at
h = 0, fit the labels by a hand-written forward pass, and follow the TwoLayer trajectory.
"""

from __future__ import annotations

import numpy as np
import pytest

import exactdyn as ed
from exactdyn.models.datasets import boursier_flammarion_data, synthetic_images

# The setups of tests/test_relu_sliding.py: (init, width, beta2, seed).
FAILED = [("balanced", 20, 1e-3, 0), ("gaussian", 10, 0.3, 0), ("gaussian", 10, 0.3, 1)]


def bf_model(init, width, beta2, seed):
    X, y = boursier_flammarion_data(0.1)
    return ed.TwoLayer(width, X, y, init=init, beta1=1e-3, beta2=beta2, seed=seed)


def as_cnn(model, act="relu"):
    """The TwoLayer ``model`` as a CNN: 1 × 1 images with d channels (its features, the
    constant bias feature included), kernel 1, M = width kernels, one position."""
    X = model.X
    return ed.TwoLayerCNN.from_init(model.W0.T[None, None], model.a0[None, None],
                                    X[:, None, None, :], model.y, activation=act,
                                    alpha=model.alpha)


def cnn_forward(W, a, images, alpha):
    """Hand-written CNN output by loops over positions (valid padding, channels last)."""
    s = W.shape[0]
    n, H, Wd, _C = images.shape
    f = np.zeros(n)
    for u in range(H - s + 1):
        for v in range(Wd - s + 1):
            patch = images[:, u:u + s, v:v + s, :]
            h = np.einsum("ipqc,pqcb->ib", patch, W)
            f += np.maximum(h, 0.0) @ a[u, v]
    return f / alpha


def test_bf_failure_as_a_cnn_finishes_on_the_exact_fit():
    """Before the shared scheme: IntegrationError (max_kinks=200 exceeded at t ≈ 206)."""
    model = as_cnn(bf_model("balanced", 20, 1e-3, 0))
    t = np.linspace(0.0, 300.0, 61)
    tr = ed.solve(model, t, max_kinks=200)
    assert tr.meta["kinks"] <= 200 and tr.meta["max_kinks"] == 200
    W, a = tr["W"], tr["a"]
    f = cnn_forward(W[-1], a[-1], model.images, model.alpha)
    np.testing.assert_allclose(f, model.y, atol=1e-7)
    assert tr["loss"][-1] == pytest.approx(np.mean((f - model.y) ** 2) / 2, abs=1e-20)
    assert tr["loss"][-1] < 1e-15
    # sum_uv a_uvb^2 - |W_b|^2 per kernel, by hand from the states: conserved.
    q = np.sum(a**2, axis=(1, 2)) - np.sum(W**2, axis=(1, 2, 3))
    np.testing.assert_allclose(q, np.broadcast_to(q[0], q.shape), atol=1e-9)
    np.testing.assert_allclose(tr["balance"], q, atol=1e-12)
    # Sliding entries (sample, position, kernel) sit exactly on h = 0.
    assert tr.meta["sliding_at_end"] == len(tr.meta["sliding_entries"]) > 0
    patches = model.patches
    for i, k, b in tr.meta["sliding_entries"]:
        Wb = W[-1].reshape(-1, model.channels)[:, b]
        h = patches[i, k] @ Wb
        assert abs(h) <= 1e-14 * np.linalg.norm(Wb) * np.linalg.norm(patches[i, k])


@pytest.mark.parametrize("setup", FAILED)
def test_one_position_cnn_is_the_two_layer_network_through_kinks(setup):
    """Same trajectory, same number of pattern changes, same sliding entries."""
    net = bf_model(*setup)
    cnn = as_cnn(net)
    t = np.linspace(0.0, 300.0, 31)
    tr = ed.solve(net, t, rtol=1e-12, max_kinks=200)
    tc = ed.solve(cnn, t, rtol=1e-12, atol=tr.meta["atol"], max_kinks=200)
    assert tc.meta["kinks"] == tr.meta["kinks"] > 0
    assert sorted([b, i] for i, _k, b in tc.meta["sliding_entries"]) == \
        sorted(tr.meta["sliding_entries"])
    Wc = tc["W"][:, 0, 0].transpose(0, 2, 1)  # (T, C, M) -> (T, M, d)
    scale = np.max(np.abs(tr["W"]))
    np.testing.assert_allclose(Wc, tr["W"], atol=1e-8 * scale, rtol=0)
    np.testing.assert_allclose(tc["a"][:, 0, 0], tr["a"], atol=1e-8 * scale, rtol=0)
    np.testing.assert_allclose(tc["loss"], tr["loss"], rtol=1e-6, atol=1e-18)


def test_one_position_leaky_relu_cnn_is_the_two_layer_network():
    X = np.array([[1.0, -0.5, 1.0], [0.2, 1.0, 1.0], [-1.0, 0.3, 1.0], [0.4, 0.4, 1.0]])
    y = np.array([0.5, -0.3, 0.2, 0.1])
    net = ed.TwoLayer(4, X, y, activation="leaky_relu", init="gaussian", beta1=0.5,
                      beta2=0.5, seed=1)
    t = np.linspace(0.0, 60.0, 11)
    tr = ed.solve(net, t, rtol=1e-12)
    tc = ed.solve(as_cnn(net, "leaky_relu"), t, rtol=1e-12, atol=tr.meta["atol"])
    assert tc.meta["kinks"] == tr.meta["kinks"] > 0
    assert tc.meta["sliding_at_end"] == tr.meta["sliding_at_end"] > 0
    np.testing.assert_allclose(tc["W"][:, 0, 0].transpose(0, 2, 1), tr["W"], atol=1e-9)
    np.testing.assert_allclose(tc["a"][:, 0, 0], tr["a"], atol=1e-9)


def test_multi_position_sliding_entries_are_held_at_zero():
    """A CNN with 9 positions that slides (tests/test_cnn.py's setup): every entry
    reported sliding at the end has h = 0 to rounding, and the balance law holds."""
    images, y = synthetic_images(6, 5, 5, 1, seed=1)
    model = ed.TwoLayerCNN(2, 3, images, y, activation="relu", scale=0.3, seed=1)
    tr = ed.solve(model, np.linspace(0, 3, 31), rtol=1e-12)
    assert tr.meta["sliding_at_end"] > 0
    W = tr["W"][-1].reshape(-1, model.channels)
    for i, k, b in tr.meta["sliding_entries"]:
        x = model.patches[i, k]
        assert abs(x @ W[:, b]) <= 1e-14 * np.linalg.norm(W[:, b]) * np.linalg.norm(x)
    q = np.sum(tr["a"] ** 2, axis=(1, 2)) - np.sum(tr["W"] ** 2, axis=(1, 2, 3))
    assert np.max(np.abs(q - q[0])) < 1e-11
    f = cnn_forward(tr["W"][-1], tr["a"][-1], images, model.alpha)
    assert tr["loss"][-1] == pytest.approx(np.mean((f - y) ** 2) / 2, rel=1e-12)


def test_max_kinks_for_the_cnn():
    images, y = synthetic_images(6, 5, 5, 1, seed=1)
    model = ed.TwoLayerCNN(2, 3, images, y, activation="relu", scale=0.3, seed=1)
    with pytest.raises(ed.IntegrationError, match="max_kinks=0"):
        ed.solve(model, [0.0, 3.0], max_kinks=0)
    with pytest.raises(ValueError, match="max_kinks"):
        ed.solve(model, [0.0, 1.0], max_kinks=-1)


def test_pattern_state_is_per_integration():
    """The lowered CNN keeps no pattern: two integrations of one model in threads give
    the states each gives alone."""
    from concurrent.futures import ThreadPoolExecutor

    images, y = synthetic_images(6, 5, 5, 1, seed=1)
    model = ed.TwoLayerCNN(2, 3, images, y, activation="relu", scale=0.3, seed=1)
    jobs = [np.linspace(0, 3, 7), np.linspace(0, 2, 5)]
    alone = [ed.solve(model, t, rtol=1e-11) for t in jobs]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda t: ed.solve(model, t, rtol=1e-11), jobs))
    for a, b in zip(alone, together):
        assert a.meta["kinks"] == b.meta["kinks"] > 0
        np.testing.assert_array_equal(a["W"], b["W"])
