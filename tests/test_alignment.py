"""First-layer alignment with the teacher's input subspace (issue 3, item 6)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import exactdyn as ed
from exactdyn.analysis import first_layer_alignment, trajectory_alignment
from exactdyn.models.deep_linear import teacher_matrix


def rotated_teacher(rng, out_dim, in_dim, svals):
    U, _ = np.linalg.qr(rng.normal(size=(out_dim, out_dim)))
    V, _ = np.linalg.qr(rng.normal(size=(in_dim, in_dim)))
    S = np.zeros((out_dim, in_dim))
    S[np.arange(len(svals)), np.arange(len(svals))] = svals
    return U @ S @ V.T, V


@given(st.integers(2, 6), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_known_fractions(in_dim, hidden, seed):
    """Rows inside the teacher's input space: 1; orthogonal: 0; a mix: its energy split."""
    rng = np.random.default_rng(seed)
    k = 1
    teacher, V = rotated_teacher(rng, 2, in_dim, [2.0])
    inside = rng.normal(size=(hidden, k)) @ V[:, :k].T
    outside = rng.normal(size=(hidden, in_dim - k)) @ V[:, k:].T
    assert first_layer_alignment(inside, teacher) == pytest.approx(1.0, abs=1e-12)
    assert first_layer_alignment(outside, teacher) == pytest.approx(0.0, abs=1e-12)
    a, b = np.sum(inside**2), np.sum(outside**2)
    assert first_layer_alignment(inside + outside, teacher) == pytest.approx(a / (a + b),
                                                                            rel=1e-10)


def test_isotropic_init_is_k_over_in():
    rng = np.random.default_rng(0)
    teacher, _ = rotated_teacher(rng, 3, 8, [3.0, 2.0, 1.0])
    draws = rng.normal(size=(4000, 5, 8))
    assert np.mean(first_layer_alignment(draws, teacher)) == pytest.approx(3 / 8, abs=0.01)


@pytest.mark.parametrize("make", [
    lambda S: ed.LinearNet(5, 6, 2, sigma_yx=S, scale1=1e-3, scale2=1e-3, seed=1),
    lambda S: ed.DeepLinear(depth=3, width=6, in_dim=5, out_dim=2, sigma=0.01, sigma_yx=S,
                            seed=2),
])
def test_small_init_aligns_with_the_teacher(make):
    """From ~k/in at init to ~1 once learned: the first layer's part outside the teacher's
    input space stays at the init scale while the rest grows to O(1)."""
    S = teacher_matrix([2.0, 1.0], 2, 5)
    model = make(S)
    traj = ed.solve(model, [0.0, 150.0])
    a = trajectory_alignment(traj, model)
    assert a[0] < 0.8
    assert a[-1] > 0.999


def test_undefined_and_bad_input():
    S = teacher_matrix([1.0], 1, 3)
    assert np.isnan(first_layer_alignment(np.zeros((2, 3)), S))
    with pytest.raises(ValueError, match="k must"):
        first_layer_alignment(np.ones((2, 3)), S, k=4)
    with pytest.raises(ValueError, match="input columns"):
        first_layer_alignment(np.ones((2, 4)), S)


# ---- Xu & Ziyin's zeta for TwoLayer with 1-D input (issue 17, Fig. 1) ----------------------

def test_two_layer_zeta_linear_no_bias_equals_linear1d_zeta():
    """Linear activation, no bias: f = (1/alpha) sum a_k w_k x is Linear1D with u = a,
    kappa = 1/alpha, c = E[xy]/E[x^2]; its zeta is the Linear1D 'alignment' observable."""
    from exactdyn.analysis import two_layer_zeta

    X = np.linspace(-1.0, 1.0, 7)
    y = 0.8 * X
    rng = np.random.default_rng(3)
    a0, w0 = 0.3 * rng.normal(size=5), 0.3 * rng.normal(size=5)
    alpha = 2.0
    net = ed.TwoLayer.from_init(a0, w0[:, None], X, y, activation="linear", bias=False,
                                alpha=alpha)
    t = np.linspace(0.0, 30.0, 31)
    zeta = two_layer_zeta(ed.solve(net, t, rtol=1e-11, atol=1e-13))
    sxx = float(np.mean(X * X))
    ref = ed.Linear1D.from_init(a0, w0, kappa=1 / alpha, teacher=float(np.mean(X * y)) / sxx,
                                x_var=sxx)
    np.testing.assert_allclose(zeta, ed.exact(ref, t)["alignment"], rtol=1e-7, atol=1e-9)
    assert zeta[-1] > zeta[0] + 0.3  # small init, positive teacher: alignment


def test_two_layer_zeta_relu_bias_uses_the_weight_column_and_rejects_wide_input():
    from exactdyn.analysis import layer_cosine, two_layer_zeta

    X = np.linspace(-1.0, 1.0, 6)
    net = ed.TwoLayer(8, X, np.abs(X), activation="relu", beta1=0.05, beta2=0.05, seed=1)
    traj = ed.solve(net, np.linspace(0.0, 2.0, 5))
    zeta = two_layer_zeta(traj)
    W = traj.state["W"]
    assert W.shape[-1] == 2  # weight and bias columns
    np.testing.assert_allclose(zeta, layer_cosine(traj.state["a"], W[..., 0]))
    assert np.all(np.abs(zeta) <= 1 + 1e-12)
    wide = ed.TwoLayer(4, np.random.default_rng(0).normal(size=(6, 2)), np.ones(6), seed=0)
    with pytest.raises(ValueError, match="one-dimensional input"):
        two_layer_zeta(ed.solve(wide, [0.0, 0.1]))
    with pytest.raises(ValueError, match="same shape"):
        layer_cosine(np.ones(3), np.ones(4))
