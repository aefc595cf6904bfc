"""Failure of early alignment (Boursier & Flammarion, arXiv:2401.10791, Assumption 3;
MATH.md §4 "Counterexample"): small balanced/dominated init ends at the least-squares
loss, although two ReLU neurons fit the data exactly and an unbalanced init gets there."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import exactdyn as ed
from exactdyn.models.datasets import boursier_flammarion_data, least_squares_loss, v_shape_weights
from exactdyn.numeric.twolayer import solve_two_layer

T = [0.0, 50.0, 200.0, 1000.0, 4000.0]


def lstsq_loss(X, y):
    """Independent reference: numpy lstsq of y on [x, 1], loss (1/2n) sum r^2."""
    A = np.column_stack([X[:, 0], np.ones(len(y))])
    r = y - A @ np.linalg.lstsq(A, y, rcond=None)[0]
    return np.sum(r**2) / (2 * len(y))


def test_data_and_least_squares_closed_form():
    X, y = boursier_flammarion_data(0.1)
    assert X.shape == (3, 1) and np.allclose(X[:, 0], [-1, 0, 1]) and np.allclose(y, [1, .1, 1])
    # eps = 0: the fit is the constant (2 + eta)/3, residuals (1-eta)/3 * (1, -2, 1)
    assert lstsq_loss(X, y) == pytest.approx(0.9**2 / 9, rel=1e-14)
    assert least_squares_loss(X, y) == pytest.approx(lstsq_loss(X, y), rel=1e-14)
    X, y = boursier_flammarion_data(0.2, 0.3)
    assert least_squares_loss(X, y) == pytest.approx(lstsq_loss(X, y), rel=1e-12)


@pytest.mark.parametrize("kw", [{"eta": 0.0}, {"eta": 1.0}, {"eta": "a"}, {"eps": 0.5},
                                {"eps": float("nan")}])
def test_bad_parameters(kw):
    # a non-number is a TypeError, as everywhere in exactdyn._validation
    with pytest.raises((ValueError, TypeError), match=next(iter(kw))):
        boursier_flammarion_data(**kw)


@pytest.mark.parametrize("init", ["balanced", "dominated"])
@pytest.mark.parametrize("seed,width,eps", [(0, 4, 0.0), (1, 10, 0.0), (2, 10, 0.1)])
def test_small_aligned_init_ends_at_least_squares(init, seed, width, eps):
    X, y = boursier_flammarion_data(0.1, eps)
    net = ed.TwoLayer(width, X, y, init=init, beta1=1e-3, beta2=1e-3, seed=seed)
    traj = solve_two_layer(net, T, max_kinks=3000)
    assert traj["loss"][0] == pytest.approx(np.mean(y**2) / 2, rel=1e-3)  # f ~ 0 at t = 0
    assert abs(traj["loss"][-1] - lstsq_loss(X, y)) < 1e-6
    # the network is affine on the data: every surviving neuron is active on every point
    a, W = traj["a"][-1], traj["W"][-1]
    h = W @ net.X.T
    live = np.abs(a) > 1e-2
    assert live.any() and np.all(h[live] > 0)
    assert np.allclose(a**2 - np.sum(W**2, axis=1), net.a0**2 - np.sum(net.W0**2, axis=1),
                       atol=1e-12)


def _by_hand(a, W, X, y):
    Xa = np.column_stack([X[:, 0], np.ones(len(y))])
    f = np.maximum(Xa @ W.T, 0.0) @ a
    return f, np.sum((f - y) ** 2) / (2 * len(y))


def test_v_shape_outside_its_domain():
    with pytest.raises(ValueError, match="kinks"):
        v_shape_weights(0.9375, 0.25)


@given(eta=st.floats(1e-6, 0.5), eps=st.floats(-0.3, 0.3))
def test_v_shape_fits_exactly(eta, eps):
    X, y = boursier_flammarion_data(eta, eps)
    a, W = v_shape_weights(eta, eps)
    f, loss = _by_hand(a, W, X, y)
    assert loss < 1e-12 and np.allclose(f, y, atol=1e-12)
    assert np.allclose(a**2, np.sum(W**2, axis=1))  # balanced
    assert a.size == 2 and np.all(a > 0)


def test_v_shape_through_the_package():
    X, y = boursier_flammarion_data(0.1)
    a, W = v_shape_weights(0.1)
    net = ed.TwoLayer.from_init(a, W, X, y)
    out, loss = ed.lower(net).observe(a, W)
    assert np.allclose(out, y, atol=1e-14) and loss < 1e-12
    assert least_squares_loss(X, y) > 0.08  # so the least-squares end point is spurious
    # it is a stationary point of the flow too: the derived rhs vanishes there
    assert np.max(np.abs(ed.lower(net).rhs(0.0, ed.lower(net).pack(a, W)))) < 1e-12


def test_unbalanced_gaussian_init_fits():
    X, y = boursier_flammarion_data(0.1)
    net = ed.TwoLayer(10, X, y, init="gaussian", beta1=1e-3, beta2=0.3, seed=2)
    traj = solve_two_layer(net, [0.0, 100.0, 1000.0], max_kinks=3000)
    assert traj["loss"][-1] < 1e-12 < lstsq_loss(X, y)
