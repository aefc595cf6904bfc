"""The two-layer network's and the CNN's modified flows, derived symbolically (issue 12).

Oracles, independent of the derivation: the complex-step Jacobian-vector product of the
generated gradient-flow right-hand side (exact to rounding for an analytic activation),
and nested central finite differences, at 40 digits, of a two-layer (or CNN) loss written
here by hand: -grad(L + (h/4) |grad L|^2) (Barrett & Dherin, ICLR 2021).
"""

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import exactdyn as ed
from exactdyn.descent import jvp, lowered, modified_rhs, symbolic_jvp

#: Activations by hand (mpmath), for the hand-written loss.
MP_ACTS = {
    "tanh": mpmath.tanh,
    "x_tanh": lambda z: z * mpmath.tanh(z),
    "sigmoid": lambda z: 1 / (1 + mpmath.exp(-z)),
    "gelu": lambda z: z * (1 + mpmath.erf(z / mpmath.sqrt(2))) / 2,
    "relu": lambda z: max(z, 0),
}


@st.composite
def instances(draw, acts=tuple(MP_ACTS)):
    m = draw(st.integers(1, 3))
    d = draw(st.integers(1, 2))  # plus the bias column
    n = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**16))
    act = draw(st.sampled_from(acts))
    alpha = draw(st.sampled_from([0.5, 1.0, 2.0]))
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.5, 1.5, (n, d))
    y = rng.uniform(-1, 1, n)
    a = rng.uniform(-1, 1, m)
    W = rng.uniform(-1, 1, (m, d + 1))
    return ed.TwoLayer.from_init(a, W, X, y, activation=act, alpha=alpha)


def _hand_loss(model, sig):
    X, Y, m, d, alpha = model.X, model.y, model.width, model.X.shape[1], model.alpha

    def L(v):
        a, W = v[:m], [v[m + k * d: m + (k + 1) * d] for k in range(m)]
        total = 0
        for i in range(len(Y)):
            f = mpmath.fsum(a[k] * sig(mpmath.fsum(W[k][r] * X[i, r] for r in range(d)))
                            for k in range(m)) / alpha
            total += (f - Y[i]) ** 2
        return total / (2 * len(Y))

    return L


def _fd(f, x, i, eps):
    xp, xm = list(x), list(x)
    xp[i] += eps
    xm[i] -= eps
    return (f(xp) - f(xm)) / (2 * eps)


def _fd_modified_rhs(L, x, h):
    """-grad(L + (h/4)|grad L|^2), both gradients central differences at 40 digits
    (inner step 1e-12, outer 1e-9: truncation ~1e-18 and 1e-24 relative)."""
    inner, outer = mpmath.mpf(10) ** -12, mpmath.mpf(10) ** -9

    def Lt(v):
        return L(v) + h / 4 * mpmath.fsum(_fd(L, v, i, inner) ** 2 for i in range(len(v)))

    return [-_fd(Lt, x, i, outer) for i in range(len(x))]


def _far_from_kinks(model):
    return np.min(np.abs(model.W0 @ model.X.T)) > 1e-3


@settings(derandomize=True, max_examples=40, deadline=None)
@given(instances(acts=("tanh", "x_tanh", "sigmoid", "relu")))
def test_symbolic_jvp_equals_the_complex_step(model):
    """f'(y) v along the flow, and along a random direction, to ~1e-13 relative."""
    low = lowered(model)
    y = low.pack(model.a0, model.W0)
    along = symbolic_jvp(low)
    assert along is not None
    rng = np.random.default_rng(0)
    for v in (low.rhs(0.0, y), rng.normal(size=y.size)):
        want = jvp(low, y, v)
        got = along(y, v)
        scale = max(float(np.max(np.abs(want))), 1e-300)
        assert np.max(np.abs(got - want)) <= 1e-13 * scale + 1e-300, (got, want)


@settings(derandomize=True, max_examples=15, deadline=None)
@given(instances(), st.sampled_from([0.01, 0.1, 0.5]))
def test_modified_rhs_is_minus_grad_of_the_hand_written_modified_loss(model, lr):
    """The lowered symbolic modified right-hand side against nested finite differences
    of a hand-written loss (width 1 included; ReLU away from its kinks, on its region)."""
    if model.activation == "relu" and not _far_from_kinks(model):
        return
    low, rhs = modified_rhs(model, lr)
    y = low.pack(model.a0, model.W0)
    L = _hand_loss(model, MP_ACTS[model.activation])
    with mpmath.workdps(40):
        want = np.array(_fd_modified_rhs(L, [mpmath.mpf(float(v)) for v in y],
                                         mpmath.mpf(lr)), dtype=float)
    got = rhs(0.0, y)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13 * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("act", ["tanh", "x_tanh", "relu"])
def test_width_one_network(act):
    """One neuron, one feature plus bias, two samples (ReLU: one on, one off): the same
    two oracles."""
    model = ed.TwoLayer.from_init([0.7], [[0.9, 0.2]], [[1.2], [-0.5]], [0.3, -0.8],
                                  activation=act, alpha=1.0)
    test_symbolic_jvp_equals_the_complex_step.hypothesis.inner_test(model)
    test_modified_rhs_is_minus_grad_of_the_hand_written_modified_loss.hypothesis.inner_test(
        model, 0.3)


def test_gelu_modified_flow_is_available_through_the_symbolic_form():
    """GELU's erf has no complex-step continuation here; the symbolic form needs none."""
    X = np.array([[1.0, 0.5], [-0.3, 1.0], [0.7, -1.0]])
    model = ed.TwoLayer.from_init([0.4, -0.3], [[0.2, -0.5, 0.1], [0.7, 0.3, -0.2]], X,
                                  [0.5, -0.2, 0.9], activation="gelu")
    traj = ed.solve(model, [0.0, 0.5], lr=0.05)
    assert np.all(np.isfinite(traj["W"]))


def test_derivation_is_checked_and_recorded():
    from exactdyn.symbolic.twolayer import derive_two_layer_modified

    mod = derive_two_layer_modified()
    assert mod.proven
    titles = [s.title for s in mod.steps]
    assert titles == ["Modified loss", "Definition of h", "Definition of e",
                      "Definition of δh", "Definition of δe", "Modified flow of a",
                      "Modified flow of W"]
    assert [s.proven for s in mod.steps[-2:]] == [True, True]
    assert "d2sigma" in mod.steps[-1].latex


@pytest.mark.parametrize("act", ["tanh", "gelu"])
def test_gd_meets_the_symbolic_modified_flow_at_order_2(act):
    X = np.array([[1.0, 0.5], [-0.3, 1.0], [0.7, -1.0]])
    model = ed.TwoLayer(4, X, [0.5, -0.2, 0.9], activation=act, beta1=0.5, beta2=0.5,
                        seed=0)
    res = ed.verify_gd(model, [0.02, 0.01, 0.005, 0.0025], 1.0)
    assert abs(res.order_flow - 1) <= 0.05, res.table()
    assert abs(res.order_modified - 2) <= 0.1, res.table()


# ---- the CNN -----------------------------------------------------------------------------

@st.composite
def cnn_instances(draw, acts=tuple(MP_ACTS)):
    kernels = draw(st.integers(1, 2))
    size = draw(st.integers(1, 2))
    side = draw(st.integers(size, 3))
    channels = draw(st.integers(1, 2))
    n = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**16))
    act = draw(st.sampled_from(acts))
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1.5, 1.5, (n, side, side, channels))
    y = rng.uniform(-1, 1, n)
    return ed.TwoLayerCNN(kernels, size, images, y, activation=act, scale=0.7, seed=seed,
                          padding="valid")


def _hand_cnn_loss(model, sig):
    """f(x_i) = (1/alpha) sum_{u,w,b} a_{uwb} sig(sum_{p,q,c} W_{pqcb} x_{i,u+p,w+q,c}),
    flat state W (s, s, C, M) then a (H', W', M), C order, patches by slicing."""
    imgs, Y = model.images, model.y
    n, side, _, C = imgs.shape
    s, M = model.kernel_size, model.channels
    pos = side - s + 1
    nw = s * s * C * M

    def L(v):
        def Wt(p, q, c, b):
            return v[((p * s + q) * C + c) * M + b]

        def a(u, w, b):
            return v[nw + (u * pos + w) * M + b]

        total = 0
        for i in range(n):
            f = 0
            for u in range(pos):
                for w in range(pos):
                    for b in range(M):
                        hh = mpmath.fsum(Wt(p, q, c, b) * imgs[i, u + p, w + q, c]
                                         for p in range(s) for q in range(s) for c in range(C))
                        f += a(u, w, b) * sig(hh)
            total += (f / model.alpha - Y[i]) ** 2
        return total / (2 * n)

    return L


@settings(derandomize=True, max_examples=30, deadline=None)
@given(cnn_instances(acts=("tanh", "x_tanh", "sigmoid", "relu")))
def test_cnn_symbolic_jvp_equals_the_complex_step(model):
    low = lowered(model)
    y = low.pack(model.initial_state())
    along = symbolic_jvp(low)
    assert along is not None
    rng = np.random.default_rng(1)
    for v in (low.rhs(0.0, y), rng.normal(size=y.size)):
        want = jvp(low, y, v)
        got = along(y, v)
        scale = max(float(np.max(np.abs(want))), 1e-300)
        assert np.max(np.abs(got - want)) <= 1e-13 * scale + 1e-300, (got, want)


@settings(derandomize=True, max_examples=10, deadline=None)
@given(cnn_instances(), st.sampled_from([0.01, 0.2]))
def test_cnn_modified_rhs_is_minus_grad_of_the_hand_written_modified_loss(model, lr):
    low, rhs = modified_rhs(model, lr)
    y = low.pack(model.initial_state())
    if model.activation == "relu" and np.min(np.abs(low.preactivations(y))) < 1e-3:
        return
    L = _hand_cnn_loss(model, MP_ACTS[model.activation])
    with mpmath.workdps(40):
        want = np.array(_fd_modified_rhs(L, [mpmath.mpf(float(v)) for v in y],
                                         mpmath.mpf(lr)), dtype=float)
    got = rhs(0.0, y)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13 * max(1.0, np.abs(want).max()))


def test_cnn_derivation_is_checked_and_recorded():
    from exactdyn.symbolic.cnn import derive_cnn_modified

    mod = derive_cnn_modified()
    assert mod.proven
    assert [s.title for s in mod.steps][-2:] == ["Modified flow of a", "Modified flow of W"]
    assert [s.proven for s in mod.steps[-2:]] == [True, True]
