r"""One :class:`~exactdyn.numeric.LoweredFlow` for every network, whatever its notation.

``ed.lower(model)`` returns an instance of the one base type for every built-in family and
for user networks over one index, several indices and with a kinked activation; its
``notation`` is the derived flow's (one subclass per notation holds that notation's printer
output). The numeric check is independent of the derivation and of the printers: each
lowered right-hand side, evaluated on a random packed state, must be
:math:`\dot\theta_b = -\eta_b\,\partial L/\partial\theta_b` with :math:`L` written by hand
in numpy and differentiated by central finite differences (the hand losses of
``tests/test_one_flow.py``, at the model's own hyperparameters and data).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import exactdyn as ed
from exactdyn.numeric import LoweredFlow, codegen, lowering
from exactdyn.numeric.layer_flow import LayerLoweredFlow
from exactdyn.numeric.lowering import IndexedLoweredFlow
from exactdyn.numeric.matrix_lowering import ChainLoweredFlow, MatrixLoweredFlow
from exactdyn.numeric.multi_index import MultiIndexLoweredFlow

sys.path.insert(0, str(Path(__file__).parent))
from test_one_flow import _fd_gradient, _spd, diag_linear, user_two_layer  # noqa: E402

SEEDS = st.integers(min_value=0, max_value=2 ** 32 - 1)


def _two_layer_data(rng, m=3, dim=2, samples=4):
    return (rng.standard_normal(m), rng.standard_normal((m, dim)),
            rng.standard_normal((samples, dim)), rng.standard_normal(samples))


def _relu_network() -> ed.Network:
    return user_two_layer(act=lambda h: sp.Max(h, 0))


def _user_init(net, rng, m=3, dim=2, samples=4, alpha=1.0):
    a0, W0, X0, Y0 = _two_layer_data(rng, m, dim, samples)
    return net.from_init({"a": a0, "W": W0}, X=X0, Y=Y0, alpha=alpha)


def _models() -> dict:
    """One model of every built-in family and of each kind of user network, with the
    notation and the lowering subclass each must have."""
    rng = np.random.default_rng(0)
    a0, W0, X0, y0 = _two_layer_data(rng)
    return {
        "Linear1D": (ed.Linear1D(width=4, seed=0), "indexed", IndexedLoweredFlow),
        "LinearNet": (ed.LinearNet(seed=0), "matrix", MatrixLoweredFlow),
        "SingleNeuron": (ed.SingleNeuron(), "matrix", MatrixLoweredFlow),
        "DeepLinear": (ed.DeepLinear(depth=3, width=4, seed=0, sigma_yx=np.eye(3)), "chain",
                       ChainLoweredFlow),
        "TwoLayer": (ed.TwoLayer.from_init(a0, W0, X0, y0, activation="tanh", bias=False),
                     "activation", LayerLoweredFlow),
        "TwoLayer relu": (ed.TwoLayer.from_init(a0, W0, X0, y0, activation="relu", bias=False),
                          "activation", LayerLoweredFlow),
        "TwoLayerCNN": (ed.TwoLayerCNN(2, 3, rng.standard_normal((4, 5, 5, 1)),
                                       np.array([1.0, -1.0, 1.0, -1.0]), scale=0.3),
                        "activation", LayerLoweredFlow),
        "user one index": (diag_linear().from_init({"u": [0.3, 0.5], "v": [0.1, 0.2]},
                                                   beta_star=0.5, eta_v=2.0),
                           "indexed", IndexedLoweredFlow),
        "user several indices": (_user_init(user_two_layer(), rng), "multi_index",
                                 MultiIndexLoweredFlow),
        "user kinked": (_user_init(_relu_network(), rng), "activation", LayerLoweredFlow),
    }


MODELS = _models()


@pytest.mark.parametrize("name", list(MODELS))
def test_lower_returns_the_one_type_with_its_notation(name):
    model, notation, subclass = MODELS[name]
    low = ed.lower(model)
    assert isinstance(low, LoweredFlow)
    assert type(low) is subclass
    assert low.notation == notation
    # the notation is the derived flow's (for a kinked user network: the flow of the
    # abstract activation it is integrated through)
    assert low.flow.notation == notation
    # the shared packing: pack and unpack invert each other on the model's initial state
    state = model.initial_state()
    y = low.pack(state)
    assert y.shape == (low.size,) == (sum(low.sizes.values()),)
    for n, arr in low.unpack(y).items():
        np.testing.assert_array_equal(arr, np.asarray(state[n], dtype=float))
        assert arr.shape == low.shapes[n]


def test_the_old_names_stay_importable():
    """``numeric.lowering.LoweredFlow`` and ``numeric.codegen.PackedFlow`` are the one base;
    constructing the base from a derived flow gives the subclass of its notation."""
    assert lowering.LoweredFlow is LoweredFlow is codegen.PackedFlow
    assert issubclass(IndexedLoweredFlow, LoweredFlow)
    model = MODELS["Linear1D"][0]
    low = LoweredFlow(ed.gradient_flow(model), model)
    assert type(low) is IndexedLoweredFlow
    y = low.pack(model.initial_state())
    np.testing.assert_array_equal(low.rhs(0.0, y), ed.lower(model).rhs(0.0, y))
    matrix = MODELS["LinearNet"][0]
    assert type(lowering.LoweredFlow(ed.gradient_flow(matrix), matrix)) is MatrixLoweredFlow


@pytest.mark.parametrize("flow", [None, "indexed", sp.Symbol("x")])
def test_constructing_the_base_from_what_is_not_a_flow_names_flow(flow):
    with pytest.raises(TypeError, match="flow"):
        LoweredFlow(flow, MODELS["Linear1D"][0])


# ---- rhs = -rate * the finite-difference gradient of a hand-written loss --------------------
def _check_rhs(low, state: dict, loss, rates: dict, rtol=1e-6):
    """The lowered rhs at ``state`` (packed) against -rate * central differences of ``loss``."""
    grads = _fd_gradient(loss, state)
    out = low.unpack(low.rhs(0.0, low.pack(state)))
    assert set(out) == set(grads)
    for n, g in grads.items():
        np.testing.assert_allclose(out[n], -rates[n] * g, rtol=rtol,
                                   atol=rtol * max(1.0, np.abs(g).max()))


@settings(max_examples=8, deadline=None)
@given(seed=SEEDS, width=st.integers(min_value=1, max_value=4))
def test_indexed_rhs_is_minus_the_rate_times_the_gradient(seed, width):
    """User diagonal linear network: L = (Σ_i u_i² - v_i² - β*)²/2, rate η_v on v."""
    rng = np.random.default_rng(seed)
    b, ev = rng.uniform(-1.0, 1.0), rng.uniform(0.2, 3.0)
    model = diag_linear().from_init({"u": rng.standard_normal(width),
                                     "v": rng.standard_normal(width)}, beta_star=b, eta_v=ev)
    low = ed.lower(model)
    assert low.notation == "indexed"
    state = {"u": rng.standard_normal(width), "v": rng.standard_normal(width)}

    def loss(p):
        return (np.sum(p["u"] ** 2 - p["v"] ** 2) - b) ** 2 / 2

    _check_rhs(low, state, loss, {"u": 1.0, "v": ev})


@settings(max_examples=5, deadline=None)
@given(seed=SEEDS, m=st.integers(1, 3), dim=st.integers(1, 2), samples=st.integers(1, 3))
def test_multi_index_rhs_is_minus_the_gradient(seed, m, dim, samples):
    """User two-layer tanh network: L = (1/2n) Σ_s ((1/α) Σ_i a_i tanh(W_i·x_s) - y_s)²."""
    rng = np.random.default_rng(seed)
    al = rng.uniform(0.5, 2.0)
    a0, W0, Xv, Yv = _two_layer_data(rng, m, dim, samples)
    model = user_two_layer().from_init({"a": a0, "W": W0}, X=Xv, Y=Yv, alpha=al)
    low = ed.lower(model)
    assert low.notation == "multi_index"
    state = {"a": rng.standard_normal(m), "W": rng.standard_normal((m, dim))}

    def loss(p):
        return np.sum((np.tanh(Xv @ p["W"].T) @ p["a"] / al - Yv) ** 2) / (2 * samples)

    _check_rhs(low, state, loss, {"a": 1.0, "W": 1.0})


@settings(max_examples=6, deadline=None)
@given(seed=SEEDS, n_in=st.integers(1, 3), n_h=st.integers(1, 3), n_out=st.integers(1, 2))
def test_matrix_rhs_is_minus_the_rate_times_the_gradient(seed, n_in, n_h, n_out):
    """LinearNet: L = tr(W Σxx Wᵀ)/2 - tr(W Σyxᵀ), W = W2 W1, rates η1, η2."""
    rng = np.random.default_rng(seed)
    e1, e2 = rng.uniform(0.3, 2.0, 2)
    sxx, syx = _spd(rng, n_in), rng.standard_normal((n_out, n_in))
    model = ed.LinearNet(in_dim=n_in, hidden=n_h, out_dim=n_out, sigma_xx=sxx, sigma_yx=syx,
                         eta1=e1, eta2=e2, seed=int(seed % 1000))
    low = ed.lower(model)
    assert low.notation == "matrix"
    state = {"W1": rng.standard_normal((n_h, n_in)), "W2": rng.standard_normal((n_out, n_h))}

    def loss(p):
        w = p["W2"] @ p["W1"]
        return np.trace(w @ sxx @ w.T) / 2 - np.trace(w @ syx.T)

    _check_rhs(low, state, loss, {"W1": e1, "W2": e2})


@settings(max_examples=4, deadline=None)
@given(seed=SEEDS)
def test_chain_rhs_is_minus_the_gradient(seed):
    """DeepLinear depth 3: L = tr(A Σxx Aᵀ)/2 - tr(A Σyxᵀ), A = W3 W2 W1 (every rate 1),
    at the model's own data matrices."""
    rng = np.random.default_rng(seed)
    model = ed.DeepLinear(depth=3, width=3, in_dim=2, out_dim=2, seed=0,
                          sigma_yx=rng.standard_normal((2, 2)), sigma_xx=_spd(rng, 2))
    low = ed.lower(model)
    assert low.notation == "chain"
    syx, sxx = model.data_matrices()
    state = {n: rng.standard_normal(shape) for n, shape in low.shapes.items()}

    def loss(p):
        A = p["W3"] @ p["W2"] @ p["W1"]
        return np.trace(A @ sxx @ A.T) / 2 - np.trace(A @ syx.T)

    _check_rhs(low, state, loss, dict.fromkeys(state, 1.0))


def _two_layer_loss(Xv, yv, al, act):
    def loss(p):
        return np.sum((act(Xv @ p["W"].T) @ p["a"] / al - yv) ** 2) / (2 * len(yv))

    return loss


@settings(max_examples=5, deadline=None)
@given(seed=SEEDS, m=st.integers(1, 3), dim=st.integers(1, 2), samples=st.integers(1, 3))
def test_activation_rhs_is_minus_the_gradient(seed, m, dim, samples):
    """TwoLayer (no bias) with σ = tanh: L = (1/2n) Σ_i ((1/α) Σ_k a_k σ(W_k·x_i) - y_i)²."""
    rng = np.random.default_rng(seed)
    al = rng.uniform(0.5, 2.0)
    a0, W0, Xv, yv = _two_layer_data(rng, m, dim, samples)
    model = ed.TwoLayer.from_init(a0, W0, Xv, yv, activation="tanh", alpha=al, bias=False)
    low = ed.lower(model)
    assert low.notation == "activation"
    state = {"a": rng.standard_normal(m), "W": rng.standard_normal((m, dim))}
    _check_rhs(low, state, _two_layer_loss(Xv, yv, al, np.tanh), {"a": 1.0, "W": 1.0})


@settings(max_examples=5, deadline=None)
@given(seed=SEEDS, m=st.integers(1, 3), samples=st.integers(1, 4))
def test_kinked_user_rhs_is_minus_the_gradient_off_the_kinks(seed, m, samples):
    """A user network with σ = max(h, 0), lowered in the activation notation: away from the
    kinks (every preactivation farther from 0 than the difference step) the loss is smooth
    and the rhs is minus its gradient."""
    rng = np.random.default_rng(seed)
    al = rng.uniform(0.5, 2.0)
    a0, W0, Xv, yv = _two_layer_data(rng, m, 2, samples)
    model = _relu_network().from_init({"a": a0, "W": W0}, X=Xv, Y=yv, alpha=al)
    low = ed.lower(model)
    assert low.notation == "activation"
    state = {"a": rng.standard_normal(m), "W": rng.standard_normal((m, 2))}
    if np.abs(Xv @ state["W"].T).min() < 1e-3:  # a difference step could cross a kink
        state["W"] = state["W"] + 0.5
    if np.abs(Xv @ state["W"].T).min() < 1e-3:
        return
    _check_rhs(low, state, _two_layer_loss(Xv, yv, al, lambda h: np.maximum(h, 0.0)),
               {"a": 1.0, "W": 1.0})
