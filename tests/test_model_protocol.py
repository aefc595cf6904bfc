"""Every built-in family and a user network follow the model protocol (models/base.py)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import exactdyn as ed
from exactdyn.models.base import Model
from exactdyn.models.datasets import synthetic_images


def _user_model():
    i, d = sp.symbols("i d", integer=True)
    u = sp.IndexedBase("u")
    c = sp.Symbol("c")
    net = ed.Network("sum_fit", params=[u], index=i, width=d,
                     loss=(sp.Sum(u[i], (i, 0, d - 1)) - c) ** 2 / 2, hyper=[c])
    return net.from_init({"u": [0.2, -0.4, 0.1]}, c=1.0)


MODELS = [
    lambda: ed.Linear1D(width=5, seed=1),
    lambda: ed.LinearNet(in_dim=3, hidden=4, out_dim=2, scale1=0.3, scale2=0.2, seed=1),
    lambda: ed.SingleNeuron(3, delta=0.5, product=0.2, seed=1),
    lambda: ed.DeepLinear(depth=3, width=4, in_dim=3, out_dim=2, sigma=0.3, seed=1,
                          sigma_yx=np.arange(6.0).reshape(2, 3) / 6),
    lambda: ed.TwoLayer(6, "1d-sine", activation="tanh", beta1=0.1, beta2=0.1, seed=1),
    lambda: ed.TwoLayerCNN(2, 2, *synthetic_images(6, 5, 5, 1, seed=0), scale=0.1),
    _user_model,
]


@pytest.mark.parametrize("make", MODELS)
@pytest.mark.parametrize("factor", [0.0, 1e-3, 2.5])
def test_with_init_scaled_scales_the_init_and_keeps_the_rest(make, factor):
    model = make()
    assert isinstance(model, Model)
    scaled = model.with_init_scaled(factor)
    assert type(scaled) is type(model) and scaled.name == model.name
    before, after = model.initial_state(), scaled.initial_state()
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_allclose(after[k], factor * before[k], rtol=1e-15, atol=0)
    vals = {k: v for k, v in model.values().items()}
    for k, v in scaled.values().items():
        np.testing.assert_allclose(np.asarray(v, float), np.asarray(vals[k], float))


@pytest.mark.parametrize("make", MODELS)
def test_network_and_gradient_flow_and_lower_work_for_every_family(make):
    model = make()
    assert model.network() is not None
    flow = ed.gradient_flow(model)
    assert flow.equations()
    low = ed.lower(model)
    # The lowered flow's rhs at t = 0 is finite (one evaluation through each family's
    # lowering; the rhs itself is checked against finite differences family by family).
    state = model.initial_state()
    y = low.pack(state)
    assert np.all(np.isfinite(low.rhs(0.0, y)))


@pytest.mark.parametrize("make", MODELS)
def test_every_model_is_frozen_and_pickles_with_the_same_flow(make):
    import dataclasses
    import pickle

    model = make()
    t = [0.0, 0.3]
    before = ed.solve(model, t)  # builds (and caches) the numerics first
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.seed = 123
    again = pickle.loads(pickle.dumps(model))
    after = ed.solve(again, t)
    for name in before.state:
        np.testing.assert_array_equal(after[name], before[name])


def test_linear1d_seeded_init_is_the_documented_draw_and_fresh_each_call():
    """The seeded init (drawn once per process for speed) is rng.normal * sigma as
    documented, and each call hands out writable copies: mutating one changes no other."""
    model = ed.Linear1D(width=5, sigma_u=0.3, sigma_w=2.0, seed=7)
    rng = np.random.default_rng(7)
    u_ref = rng.normal(0.0, 1.0, 5) * 0.3
    w_ref = rng.normal(0.0, 1.0, 5) * 2.0
    first = model.initial_state()
    np.testing.assert_array_equal(first["u"], u_ref)
    np.testing.assert_array_equal(first["w"], w_ref)
    first["u"][:] = 0.0
    second = ed.Linear1D(width=5, sigma_u=0.3, sigma_w=2.0, seed=7).initial_state()
    np.testing.assert_array_equal(second["u"], u_ref)
    assert second["u"].flags.writeable
