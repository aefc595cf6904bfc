"""The shortcuts that make a kinked step cheap (issue 15, item 1) against what they
replace, computed independently here:

- the Filippov correction of the sliding units as one batched orthogonal projection
  (:meth:`KinkState._correct`) against the multipliers solved by least squares, one unit
  at a time, from their defining equations :math:`x_l\\cdot\\dot w_k = 0`;
- the sliding entries' exit test without its uncertainty bounds when every margin is
  non-negative (``sliding_stay(y, signs_only=True)``) against the full margins, and the
  monotonicity of the decision rule's margin in those bounds that makes it exact;
- whole runs that slide on many neurons at once: the same trajectory and kinks with the
  multipliers solved one neuron at a time (the projection switched off), and the conserved
  :math:`a_k^2 - |w_k|^2` of the 1-homogeneous ReLU network. (The kinked solve against a
  hand-written frozen-pattern reference is in tests/test_relu_sliding.py and
  tests/test_twolayer.py.)
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import exactdyn as ed
from exactdyn.numeric.kinks import KinkState


def kink_state(m, n, d, seed):
    """A KinkState of a ReLU TwoLayer on Gaussian data (its flow's rhs is not used)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = rng.normal(size=n)
    net = ed.TwoLayer(m, X, y, activation="relu", beta1=1.0, beta2=1.0, seed=seed)
    low = ed.lower(net).kink
    y0 = low.flow.pack(net.a0, net.W0)
    return KinkState(low, y0, 1e-10, 1e-10), rng


def lstsq_correction(u, g, XS):
    r"""The Filippov-corrected velocity from its definition: :math:`u + \sum_j
    \lambda_j g_j x_j` with :math:`x_l\cdot(\ldots) = 0` for l in S, λ by least squares."""
    A = (XS @ XS.T) * g[None, :]
    lam = np.linalg.lstsq(A, -(XS @ u), rcond=None)[0]
    return u + (lam * g) @ XS


@given(seed=st.integers(0, 2**31 - 1), d=st.integers(1, 5), m=st.integers(1, 6),
       scale=st.sampled_from([1e-8, 1.0, 1e6]))
def test_projected_filippov_correction_matches_the_multipliers(seed, d, m, scale):
    state, rng = kink_state(m, 2 * d + 1, d, seed)
    n, d = state.X.shape  # the inputs may carry a bias column
    # each unit slides on up to d entries (generic data: well-conditioned sets)
    slide = np.zeros((m, n), bool)
    for k in range(m):
        slide[k, rng.choice(n, size=int(rng.integers(0, d + 1)), replace=False)] = True
    state.slide[...] = slide
    state.mask &= ~slide
    state._refresh()
    rw = scale * rng.normal(size=(m, d))
    G = scale * rng.normal(size=(m, n))
    if slide.any():  # the batched projection is what is checked, not the fallback
        assert state._projections() is not None
    corrected = rw.copy()
    state._correct(corrected, G)
    for k in range(m):
        S = np.flatnonzero(slide[k])
        expected = rw[k] if not S.size else lstsq_correction(rw[k], G[k, S], state.X[S])
        np.testing.assert_allclose(corrected[k], expected, rtol=1e-9,
                                   atol=1e-9 * np.abs(rw[k]).max())
        if S.size:  # the sliding entries' h stays on its surface
            assert np.all(np.abs(state.X[S] @ corrected[k])
                          <= 1e-12 * np.abs(state.X[S]).sum(axis=1) * np.abs(rw[k]).max())


def test_projected_correction_keeps_a_zero_jump_uncorrected():
    # g_kj = 0 (a zero readout or an exactly fitted sample): the flow does not jump across
    # that surface, the multiplier is 0 (as before), so no projection is applied there.
    state, rng = kink_state(3, 7, 3, 1)
    state.slide[0, 2] = True
    state.mask[0, 2] = False
    state._refresh()
    rw = rng.normal(size=(3, state.X.shape[1]))
    G = rng.normal(size=(3, 7))
    G[0, 2] = 0.0
    corrected = rw.copy()
    state._correct(corrected, G)
    np.testing.assert_array_equal(corrected, rw)


finite = st.floats(-1e6, 1e6, allow_nan=False)
bound = st.floats(0.0, 1e6, allow_nan=False)


@given(hm=finite, hp=finite, em=bound, ep=bound)
def test_the_sliding_margin_grows_with_its_bounds(hm, hp, em, ep):
    # what makes the bound-free exit test exact: a non-negative margin without the bounds
    # stays non-negative with them (in floating point)
    plain = KinkState._stay(np.array([hm]), np.array([hp]), 0.0, 0.0)[0]
    full = KinkState._stay(np.array([hm]), np.array([hp]), np.array([em]),
                           np.array([em + ep]))[0]
    if plain >= 0:
        assert full >= 0
    assert full >= plain


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sign_only_exit_test_agrees_with_the_full_margins_along_a_run(seed):
    # a sliding run (Boursier-Flammarion data, small init): at states along it, with the
    # sliding set the run had there, the exit decisions with and without the bounds agree
    from exactdyn.models.datasets import boursier_flammarion_data

    X, y = boursier_flammarion_data(0.1)
    net = ed.TwoLayer(20, X, y, init="balanced", beta1=1e-3, beta2=1e-3, seed=seed)
    low = ed.lower(net).kink
    traj = ed.solve(net, np.linspace(0.0, 40.0, 81))
    assert traj.meta["sliding_at_end"] > 0 or traj.meta["kinks"] > 0
    checked = 0
    for a, W in zip(traj["a"], traj["W"]):
        yk = low.flow.pack(a, W)
        state = KinkState(low, yk, 1e-10, 1e-10)
        yk = state.update(yk, state.at_boundary(yk))
        if not state.sliding or state.classes:
            continue
        full = state.sliding_stay(yk)
        quick = state.sliding_stay(yk, signs_only=True)
        if full is None:
            continue
        np.testing.assert_array_equal(quick < 0, full < 0)
        checked += 1
    assert checked > 0


def teacher_network(m, n, seed):
    """Small-init ReLU network on a two-neuron teacher's labels (the bench_twolayer_gd
    ``teacher`` instance at a smaller size): many neurons slide at once."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    U = rng.normal(size=(2, 3))
    y = np.maximum(X @ U[0], 0.0) - 0.5 * np.maximum(X @ U[1], 0.0)
    return ed.TwoLayer(m, X, y, activation="relu", beta1=1e-3, beta2=1e-3, seed=seed)


@pytest.mark.parametrize("seed", [0, 3])
def test_projected_correction_runs_like_the_multipliers(seed, monkeypatch):
    net = teacher_network(16, 12, seed)
    t = np.linspace(0.0, 30.0, 16)
    fast = ed.solve(net, t)
    assert fast.meta["kinks"] > 20
    with monkeypatch.context() as patch:  # every sliding set through the multipliers
        patch.setattr(KinkState, "_projections", lambda self: None)
        slow = ed.solve(net, t)
    assert abs(slow.meta["kinks"] - fast.meta["kinks"]) <= 2
    scale = np.abs(slow["W"]).max()
    np.testing.assert_allclose(fast["W"], slow["W"], rtol=0, atol=1e-7 * scale)
    np.testing.assert_allclose(fast["a"], slow["a"], rtol=0, atol=1e-7 * np.abs(slow["a"]).max())
    # 1-homogeneous ReLU: a_k^2 - |w_k|^2 is conserved through kinks and sliding
    q = fast["a"] ** 2 - np.sum(fast["W"] ** 2, axis=-1)
    np.testing.assert_allclose(q, np.broadcast_to(q[0], q.shape), rtol=0,
                               atol=1e-8 * np.abs(fast["a"]).max() ** 2)


def test_a_run_with_many_sliding_neurons_uses_the_projection(monkeypatch):
    # the runs above do reach states with several neurons sliding at once (the batched path)
    net = teacher_network(16, 12, 0)
    sliding_neurons = []
    original = KinkState._correct

    def spy(self, rw, G):
        sliding_neurons.append(int(self.slide.any(axis=1).sum()))
        return original(self, rw, G)

    monkeypatch.setattr(KinkState, "_correct", spy)
    ed.solve(net, [0.0, 30.0])
    assert max(sliding_neurons) >= 3


def test_projected_correction_runs_like_the_multipliers_on_a_cnn(monkeypatch):
    # three kernels sliding on up to four patch entries at once (9 positions)
    from exactdyn.models.datasets import synthetic_images

    images, y = synthetic_images(8, 5, 5, 1, seed=0)
    model = ed.TwoLayerCNN(3, 3, images, y, activation="relu", scale=0.1, seed=0)
    t = np.linspace(0.0, 10.0, 6)
    sets = []
    original = KinkState._projections

    def spy(self):
        value = original(self)
        sets.append(0 if value is None else len(value[2]))
        return value

    monkeypatch.setattr(KinkState, "_projections", spy)
    fast = ed.solve(model, t)
    assert fast.meta["kinks"] > 40 and max(sets) >= 3
    monkeypatch.setattr(KinkState, "_projections", lambda self: None)
    slow = ed.solve(model, t)
    assert abs(slow.meta["kinks"] - fast.meta["kinks"]) <= 2
    np.testing.assert_allclose(fast["W"], slow["W"], rtol=0,
                               atol=1e-7 * np.abs(slow["W"]).max())
    np.testing.assert_allclose(fast["a"], slow["a"], rtol=0,
                               atol=1e-7 * np.abs(slow["a"]).max())
