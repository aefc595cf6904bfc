"""The one kink adapter (exactdyn.numeric.kink_adapter): the hooks of the kink scheme built
from a network's declared preactivations, checked against a hand-written one-hidden-layer
network with a frozen activation pattern, for the two-layer network and the CNN alike.

Oracle (independent of the generated code): f_i = (1/α) Σ_{kβ} a_kβ σ(h_ikβ),
h_ikβ = w_β·x_ik, e = f − y, L = Σ e²/(2n), so
ȧ_kβ = −Σ_i e_i σ(h_ikβ)/(αn) and ẇ_β = −Σ_ik e_i a_kβ σ'(h_ikβ) x_ik/(αn), with σ = σ± on
the entries the pattern puts on ±.
"""

from types import SimpleNamespace

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import exactdyn as ed
from exactdyn.numeric.layer_flow import LayerLoweredFlow

BRANCHES = {  # (σ+, σ−, σ+', σ−')
    "relu": (lambda h: h, lambda h: 0 * h, lambda h: 1 + 0 * h, lambda h: 0 * h),
    "leaky_relu": (lambda h: h, lambda h: 0.01 * h, lambda h: 1 + 0 * h, lambda h: 0.01 + 0 * h),
    "abs(x)": (lambda h: h, lambda h: -h, lambda h: 1 + 0 * h, lambda h: -1 + 0 * h),
    # branches that are not linear: the pattern enters through numpy.where, not a slope
    "abs(x) + x**2": (lambda h: h + h**2, lambda h: -h + h**2, lambda h: 1 + 2 * h,
                      lambda h: -1 + 2 * h),
}


def _two_layer(seed, m, n, act):
    rng = np.random.default_rng(seed)
    a, W = rng.normal(size=m), rng.normal(size=(m, 3))
    X, y = rng.normal(size=(n, 2)), rng.normal(size=n)
    return ed.TwoLayer.from_init(a, W, X, y, activation=act, alpha=1.7)


def _cnn(seed, m, n, act):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(n, 4, 4, 1))
    return ed.TwoLayerCNN.from_init(rng.normal(size=(3, 3, 1, m)), rng.normal(size=(2, 2, m)),
                                    images, rng.normal(size=n), activation=act, alpha=0.8)


def _oracle(low, y, mask, act):
    """The frozen-pattern flow by hand: (ȧ, Ẇ as units × d, jump coefficients g)."""
    d = low.declared
    sp_, sm, dp, dm = BRANCHES[act]
    X = np.asarray(d.inputs, float)                               # n × P × D
    n, P, D = X.shape
    Wr = low.unit_rows(y)                                         # M × D
    M = Wr.shape[0]
    a = y[low.slices[d.readout]].reshape(P, M)
    h = np.einsum("ikd,bd->ikb", X, Wr)                           # n × P × M
    on = mask.reshape(M, n, P).transpose(1, 2, 0)
    s = np.where(on, sp_(h), sm(h))
    ds = np.where(on, dp(h), dm(h))
    e = np.einsum("ikb,kb->i", s, a) / d.alpha - d.targets
    ra = -np.einsum("i,ikb->kb", e, s) / (d.alpha * n)
    rw = -np.einsum("i,kb,ikb,ikd->bd", e, a, ds, X) / (d.alpha * n)
    jump = dp(h) - dm(h)
    g = -(e[:, None, None] * a[None] * jump) / (d.alpha * n)     # n × P × M
    return ra, rw, g.transpose(2, 0, 1).reshape(M, n * P), e


MODELS = [(_two_layer, act) for act in BRANCHES] + [(_cnn, act) for act in BRANCHES]


@pytest.mark.parametrize("make,act", MODELS)
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), m=st.integers(1, 4), n=st.integers(1, 5),
       pattern_seed=st.integers(0, 2**16))
def test_frozen_rhs_and_jump_equal_the_handwritten_flow(make, act, seed, m, n, pattern_seed):
    model = make(seed, m, n, act)
    low = ed.lower(model)
    assert isinstance(low, LayerLoweredFlow) and low.kink is not None
    y = low.pack(model.initial_state())
    kink = low.kink
    # any pattern, not only the one of the state's signs (the scheme freezes it per segment)
    mask = np.random.default_rng(pattern_seed).random((kink.M, kink.n * kink.P)) < 0.5
    state = SimpleNamespace(mask=mask, version=1)
    funcs = kink.kink_functions(state)
    out, rw_view = funcs[0](y)
    ra, rw, g, _e = _oracle(low, y, mask, act)
    d = low.declared
    np.testing.assert_allclose(out[low.slices[d.readout]], ra.ravel(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(rw_view, rw, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(funcs[1](y), g, rtol=1e-12, atol=1e-14)
    if len(funcs) > 2:  # the one-pass variant agrees with the two
        out2, rw2, g2 = funcs[2](y)
        np.testing.assert_array_equal(out2, out)
        np.testing.assert_array_equal(rw2, rw_view)
        np.testing.assert_allclose(g2, g, rtol=1e-12, atol=1e-14)
    # the rhs view is the packed weights part, in units × d
    rw_view[...] = 0.0
    assert not np.any(kink.unit_rows(out))


@pytest.mark.parametrize("make,act", MODELS)
def test_jump_is_the_difference_of_the_two_sides_on_the_kink(make, act):
    """On h_kj = 0 (σ+(0) = σ−(0), so e does not move), switching entry (k, j) from the −
    to the + side changes ẇ_k by g_kj x_j and nothing else."""
    model = make(3, 3, 4, act)
    low = ed.lower(model)
    kink = low.kink
    y = low.pack(model.initial_state())
    k, j = 1, 2
    W = np.array(kink.kink_weights(y))
    x = kink.kink_inputs[j]
    W[k] -= x * (x @ W[k]) / (x @ x)                       # put w_k on x_j·w = 0
    y = kink.kink_replace(y, W)
    np.testing.assert_allclose(kink.kink_weights(y), W, rtol=0, atol=0)
    mask = kink.kink_weights(y) @ kink.kink_inputs.T > 0
    mask[k, j] = False
    minus = kink.kink_functions(SimpleNamespace(mask=mask.copy(), version=1))
    mask[k, j] = True
    plus = kink.kink_functions(SimpleNamespace(mask=mask, version=1))
    _o, rw_minus = minus[0](y)
    _o, rw_plus = plus[0](y)
    g = minus[1](y)
    expected = np.zeros_like(rw_minus)
    expected[k] = g[k, j] * x
    scale = np.max(np.abs(rw_minus)) + 1.0
    np.testing.assert_allclose(rw_plus - rw_minus, expected, atol=1e-13 * scale)


@pytest.mark.parametrize("make,act", MODELS)
def test_weights_view_is_the_declared_layout(make, act):
    model = make(5, 3, 2, act)
    low = ed.lower(model)
    y = low.pack(model.initial_state())
    W = low.kink.kink_weights(y)
    if isinstance(model, ed.TwoLayerCNN):
        np.testing.assert_array_equal(W, model.W0.reshape(-1, model.channels).T)
    else:
        np.testing.assert_array_equal(W, model.W0)
    W2 = np.random.default_rng(0).normal(size=W.shape)
    y2 = low.kink.kink_replace(y, W2)
    np.testing.assert_array_equal(low.kink.kink_weights(y2), W2)
    other = low.declared.readout
    np.testing.assert_array_equal(y2[low.slices[other]], y[low.slices[other]])
    assert not np.shares_memory(y2, y)


@pytest.mark.parametrize("make,act", MODELS)
def test_uncertainty_bounds_the_rounding_of_the_residual(make, act):
    """ρ (with rtol = atol = 0) bounds |e_float − e_exact| per entry, e_exact at 50 digits;
    c is |a_kβ|/(αn) in the units × entries layout."""
    model = make(11, 4, 5, act)
    low = ed.lower(model)
    kink = low.kink
    y = low.pack(model.initial_state())
    rho, c = kink.kink_uncertainty(y, 0.0, 0.0)
    e_float = low.output(y) - model.y
    d = low.declared
    X = np.asarray(d.inputs, float)
    n, P, D = X.shape
    Wr = kink.kink_weights(y)
    a = y[low.slices[d.readout]].reshape(P, -1)
    sp_, sm = BRANCHES[act][:2]
    with mpmath.workdps(50):
        for i in range(n):
            f = mpmath.mpf(0)
            for k in range(P):
                for b in range(Wr.shape[0]):
                    h = mpmath.fsum(mpmath.mpf(float(X[i, k, q])) * mpmath.mpf(float(Wr[b, q]))
                                    for q in range(D))
                    s = sp_(h) if h > 0 else sm(h)
                    f += mpmath.mpf(float(a[k, b])) * s
            e_exact = f / mpmath.mpf(d.alpha) - mpmath.mpf(float(d.targets[i]))
            err = abs(float(mpmath.mpf(float(e_float[i])) - e_exact))
            for k in range(P):
                assert err <= rho[i * P + k]
    expected = np.tile(np.abs(a).T, (1, n)) / (d.alpha * n)
    np.testing.assert_allclose(np.broadcast_to(c, expected.shape), expected, rtol=1e-15)


def test_one_declaration_names_the_sliding_entries():
    """Sliding entries are named by the declaration's axes: (neuron, sample) for the
    fully connected network, (sample, position, kernel) for the CNN."""
    tl = ed.lower(_two_layer(0, 3, 4, "relu")).kink
    cnn = ed.lower(_cnn(0, 3, 4, "relu")).kink
    assert tl.entry_labels([[2, 3]]) == [[2, 3]]
    assert cnn.entry_labels([[2, 7]]) == [[7 // cnn.P, 7 % cnn.P, 2]]


class _NewFamily:
    """A family exactdyn does not ship: a ReLU network that packs its state W first, then a,
    and writes no kink code — only its declaration and a registration of generated sources
    (the two-layer network's, here)."""

    name = "new_family"

    def __init__(self, inner):
        self._inner = inner

    @property
    def params(self):
        return {"width": self._inner.width}

    def initial_state(self):
        state = self._inner.initial_state()
        return {"W": state["W"], "a": state["a"]}

    def kinked_preactivation(self):
        return self._inner.kinked_preactivation()

    def derive_flow(self):
        return self._inner.derive_flow()


def test_a_new_family_gets_kinks_from_its_declaration_alone():
    from exactdyn.numeric import twolayer
    from exactdyn.numeric.layer_flow import LayerNumerics, register_layer_family

    register_layer_family(_NewFamily, LayerNumerics(
        sources=twolayer.sources, extra_observables=lambda low, states: {}, max_kinks=1000,
        label="a new family"))
    inner = ed.TwoLayer(4, "1d-sine", activation="relu", n=5, beta1=0.3, beta2=0.3)
    model = _NewFamily(inner)
    t = np.linspace(0.0, 20.0, 5)
    new = ed.solve(model, t, atol=1e-12)
    ref = ed.solve(inner, t, atol=1e-12)
    assert new.meta["kinks"] == ref.meta["kinks"] > 0
    assert new.meta["kink_scheme"] == ref.meta["kink_scheme"]
    assert list(new.state) == ["W", "a"]
    np.testing.assert_allclose(new["W"], ref["W"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(new["a"], ref["a"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(new["loss"], ref["loss"], rtol=1e-12, atol=1e-18)
