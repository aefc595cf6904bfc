"""The worked three-point instance of Boursier & Flammarion (arXiv:2401.10791, §5; the
"3 points" data of their code): x = (-0.75, -0.5, 0.125), y = (1.1, 0.1, 0.8). Small
balanced and dominated inits (ours, and their code's ``dominated_bf``; scale λ/√m, as in
their code) end on the least-squares fit
with positive loss; ReLU neurons fit the points exactly, and an unbalanced init
(|a| ≪ ‖w‖) reaches that exact fit."""

import numpy as np
import pytest

import exactdyn as ed
from exactdyn.models.datasets import boursier_flammarion_instance

T = [0.0, 100.0, 1000.0, 5000.0, 20000.0]


def lstsq_loss(X, y):
    """Independent reference: numpy lstsq of y on [x, 1], loss (1/2n) sum r^2."""
    A = np.column_stack([X[:, 0], np.ones(len(y))])
    r = y - A @ np.linalg.lstsq(A, y, rcond=None)[0]
    return np.sum(r**2) / (2 * len(y))


def test_middle_point_lies_below_the_least_squares_line():
    X, y = boursier_flammarion_instance()
    A = np.column_stack([X[:, 0], np.ones(3)])
    r = y - A @ np.linalg.lstsq(A, y, rcond=None)[0]
    assert r[1] < 0 < r[0] and r[2] > 0
    assert lstsq_loss(X, y) > 0.08


@pytest.mark.parametrize("init", ["balanced", "dominated", "dominated_bf"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aligned_small_init_ends_on_the_least_squares_fit(init, seed):
    X, y = boursier_flammarion_instance()
    m, lam = 10, 1e-3
    net = ed.TwoLayer(m, X, y, init=init, beta1=lam / np.sqrt(m), beta2=lam / np.sqrt(m),
                      seed=seed)
    traj = ed.solve(net, T, max_kinks=5000)
    assert abs(traj["loss"][-1] - lstsq_loss(X, y)) < 1e-6
    a, W = traj["a"][-1], traj["W"][-1]
    live = np.abs(a) > 1e-2
    assert live.any() and np.all(W[live] @ net.X.T > 0)   # affine on the data


def test_relu_neurons_fit_the_instance_exactly_and_are_stationary():
    # kinks at x = -0.5 (both arms) plus a constant neuron: f(x) = 4 relu(-x - 0.5)
    # + 1.12 relu(x + 0.5) + 0.1 relu(1)
    X, y = boursier_flammarion_instance()
    a = np.array([4.0, 1.12, 0.1])
    W = np.array([[-1.0, -0.5], [1.0, 0.5], [0.0, 1.0]])
    net = ed.TwoLayer.from_init(a, W, X, y)
    f = np.maximum(W @ net.X.T, 0.0).T @ a
    np.testing.assert_allclose(f, y, rtol=0, atol=1e-15)
    traj = ed.solve(net, [0.0, 10.0])
    assert traj["loss"][-1] < 1e-28
    np.testing.assert_allclose(traj["W"][-1], W, atol=1e-14)


@pytest.mark.parametrize("seed", [0, 1])
def test_unbalanced_init_reaches_the_exact_fit(seed):
    X, y = boursier_flammarion_instance()
    net = ed.TwoLayer(10, X, y, init="gaussian", beta1=1e-3, beta2=0.3, seed=seed)
    traj = ed.solve(net, T, max_kinks=5000)
    assert traj["loss"][-1] < 1e-15
    assert traj["loss"][-1] < 1e-12 * lstsq_loss(X, y)
