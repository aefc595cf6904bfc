r"""User networks with a kinked activation (``ed.Network`` with ``Max(0, h)``, leaky ``Max``,
``Abs``, ``Piecewise``, ``h*Heaviside(h)``), integrated through their kinks.

The network is the two-layer network written by the user over neuron / feature / sample
indices with data arrays,

.. math:: f_s = \frac1\alpha\sum_i a_i\,\sigma\Big(\sum_k W_{ik}X_{sk}\Big), \qquad
          L = \frac1{2n}\sum_s (f_s - Y_s)^2,

σ kinked at 0. References, independent of the user-network path:

- the built-in :class:`exactdyn.TwoLayer` with the same activation, data and init (its own
  model, declaration and activation parser): the same trajectories and kink counts;
- a hand-written numpy right-hand side with the activation pattern frozen between kinks,
  each kink located by ``solve_ivp``'s event location and the pattern flipped there (exact
  for transversal crossings: the instances are checked to have no Filippov sliding);
- a hand-written numpy gradient-descent loop (the subgradient σ'(0) = σ−'(0)).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

import exactdyn as ed
from exactdyn.models.network import KinkedNetworkModel

i, k, s = sp.symbols("i k s", integer=True)
d, D, n = sp.symbols("d D n", integer=True, positive=True)
a, W, X, Y, b = (sp.IndexedBase(name) for name in ("a", "W", "X", "Y", "b"))
alpha = sp.Symbol("alpha", positive=True)
INDICES = {i: d, k: D, s: n}
PRE = sp.Sum(W[i, k] * X[s, k], (k, 0, D - 1))


def network(act=lambda h: sp.Max(0, h), pre=PRE, out=None, loss=None, params=(a, W),
            **kw) -> ed.Network:
    if out is None:
        out = sp.Sum(a[i] * act(pre), (i, 0, d - 1)) / alpha
    if loss is None:
        loss = sp.Sum((out - Y[s]) ** 2, (s, 0, n - 1)) / (2 * n)
    return ed.Network("user_relu", params=list(params), indices=INDICES, loss=loss,
                      data=[X, Y], hyper=[alpha], **kw)


def sine_data(points=5):
    """1-D points with a bias column (the built-in data set ``1d-sine``)."""
    x = np.linspace(-1.0, 1.0, points)
    return np.column_stack([x, np.ones(points)]), np.sin(np.pi * x)


def init(seed, m, dim, scale=0.3):
    rng = np.random.default_rng(seed)
    return scale * rng.standard_normal(m), scale * rng.standard_normal((m, dim))


# Ways to write the same activation, with the built-in activation it is.
RELU_FORMS = {
    "Max(0, h)": lambda h: sp.Max(0, h),
    "Max(h, 0)": lambda h: sp.Max(h, 0),
    "h*Heaviside(h)": lambda h: h * sp.Heaviside(h),
    "Min(0, -h)*(-1)": lambda h: -sp.Min(0, -h),
}
FORMS = [("relu", f) for f in RELU_FORMS.values()] + [
    ("leaky_relu", lambda h: sp.Max(h, h / 100)),
    ("leaky_relu", lambda h: sp.Max(h / 100, h)),
    ("abs(x)", sp.Abs),
    ("abs(x)", lambda h: h * sp.sign(h)),
]


# ---- against the built-in TwoLayer ----------------------------------------------------------
@pytest.mark.parametrize("builtin, act", FORMS)
def test_each_written_form_integrates_as_the_builtin_two_layer(builtin, act):
    X0, Y0 = sine_data()
    a0, W0 = init(0, 4, 2)
    model = network(act).from_init({"a": a0, "W": W0}, X=X0, Y=Y0, alpha=1.0)
    assert isinstance(model, KinkedNetworkModel)
    ref = ed.TwoLayer.from_init(a0, W0, X0, Y0, activation=builtin, alpha=1.0, bias=False)
    t = np.linspace(0.0, 20.0, 6)
    ours, theirs = ed.solve(model, t), ed.solve(ref, t)
    assert ours.meta["kinks"] == theirs.meta["kinks"] > 0
    assert ours.meta["kink_scheme"] == theirs.meta["kink_scheme"]
    for name in ("a", "W"):
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-9,
                                   atol=1e-9 * np.max(np.abs(theirs[name])))
    np.testing.assert_allclose(ours["loss"], theirs["loss"], rtol=1e-9)
    # the network's own output (a minus sign outside the activation stays in the output)
    scale = np.max(np.abs(theirs["output"]))
    np.testing.assert_allclose(ours["output"], theirs["output"], rtol=1e-9, atol=1e-9 * scale)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**16), m=st.integers(1, 4), dim=st.integers(1, 3),
       samples=st.integers(1, 6), al=st.floats(0.3, 3.0), scale=st.floats(0.05, 1.5))
def test_user_relu_network_agrees_with_two_layer_relu(seed, m, dim, samples, al, scale):
    """Any sizes (one neuron, one feature, one sample included), any data and init: the
    user's ReLU network follows TwoLayer(relu)'s trajectory to 1e-9 with as many kinks."""
    rng = np.random.default_rng(seed + 1)
    X0, Y0 = rng.standard_normal((samples, dim)), rng.standard_normal(samples)
    a0, W0 = init(seed, m, dim, scale)
    model = network().from_init({"a": a0, "W": W0}, X=X0, Y=Y0, alpha=al)
    ref = ed.TwoLayer.from_init(a0, W0, X0, Y0, activation="relu", alpha=al, bias=False)
    t = np.linspace(0.0, 5.0, 4)
    ours, theirs = ed.solve(model, t), ed.solve(ref, t)
    assert ours.meta["kinks"] == theirs.meta["kinks"]
    assert ours.meta["sliding_entries"] == theirs.meta["sliding_entries"]
    for name in ("a", "W"):
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-9,
                                   atol=1e-9 * (np.max(np.abs(theirs[name])) + 1e-300))


def test_awkward_corners_agree_with_two_layer():
    """Pre-activations exactly on the kink at t = 0 (a zero weight row, a zero input, a
    weight row orthogonal to a data point), a zero readout and one sample repeated."""
    X0 = np.array([[1.0, 0.5], [0.0, 0.0], [-1.0, 2.0], [1.0, 0.5]])
    Y0 = np.array([0.3, -0.2, 0.5, 0.1])
    a0 = np.array([0.0, 0.4, -0.3, 0.2])
    W0 = np.array([[0.0, 0.0], [0.5, -1.0], [0.2, 0.1], [-2.0, -1.0]])  # rows 0, 1 on kinks
    model = network().from_init({"a": a0, "W": W0}, X=X0, Y=Y0, alpha=1.0)
    ref = ed.TwoLayer.from_init(a0, W0, X0, Y0, activation="relu", alpha=1.0, bias=False)
    t = np.linspace(0.0, 10.0, 5)
    ours, theirs = ed.solve(model, t), ed.solve(ref, t)
    assert ours.meta["kinks"] == theirs.meta["kinks"]
    assert ours.meta["sliding_entries"] == theirs.meta["sliding_entries"]
    np.testing.assert_allclose(ours["W"], theirs["W"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours["a"], theirs["a"], rtol=1e-9, atol=1e-12)


def test_state_order_names_layout_and_output_scale_are_the_users():
    """Parameters listed weights first, other names, the data feature-first (X[k, s]), the
    target on the left of the square and 1/alpha inside the sum: the same flow."""
    U, v, Z, T = (sp.IndexedBase(name) for name in ("U", "v", "Z", "T"))
    lam = sp.Symbol("lam", positive=True)
    pre = sp.Sum(U[i, k] * Z[k, s], (k, 0, D - 1))
    out = sp.Sum(v[i] * sp.Max(0, pre) / (2 * lam), (i, 0, d - 1))
    loss = sp.Sum((T[s] - out) ** 2, (s, 0, n - 1)) / (2 * n)
    net = ed.Network("renamed", params=[U, v], indices=INDICES, loss=loss, data=[Z, T],
                     hyper=[lam])
    X0, Y0 = sine_data()
    a0, W0 = init(2, 3, 2)
    model = net.from_init({"U": W0, "v": a0}, Z=X0.T, T=Y0, lam=0.75)
    ref = ed.TwoLayer.from_init(a0, W0, X0, Y0, activation="relu", alpha=1.5, bias=False)
    t = np.linspace(0.0, 15.0, 4)
    ours, theirs = ed.solve(model, t), ed.solve(ref, t)
    assert list(ours.state) == ["U", "v"]
    assert ours.meta["kinks"] == theirs.meta["kinks"] > 0
    np.testing.assert_allclose(ours["U"], theirs["W"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours["v"], theirs["a"], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("where", ["outside", "inside"])
def test_a_scalar_factor_of_the_preactivation_scales_the_inputs(where):
    """Max(0, Σ_k W X / sqrt(D) / g) with a hyperparameter g, the factor outside or inside
    the sum over k: TwoLayer on the inputs X/(sqrt(D) g)."""
    g = sp.Symbol("g", positive=True)
    pre = PRE / sp.sqrt(D) / g if where == "outside" else \
        sp.Sum(W[i, k] * X[s, k] / (sp.sqrt(D) * g), (k, 0, D - 1))
    out = sp.Sum(a[i] * sp.Max(0, pre), (i, 0, d - 1)) / alpha
    loss = sp.Sum((out - Y[s]) ** 2, (s, 0, n - 1)) / (2 * n)
    net = ed.Network("scaled_pre", params=[a, W], indices=INDICES, loss=loss, data=[X, Y],
                     hyper=[alpha, g])
    X0, Y0 = sine_data()
    a0, W0 = init(2, 3, 2, scale=0.6)
    model = net.from_init({"a": a0, "W": W0}, X=X0, Y=Y0, alpha=0.8, g=0.5)
    ref = ed.TwoLayer.from_init(a0, W0, X0 / (np.sqrt(2) * 0.5), Y0, activation="relu",
                                alpha=0.8, bias=False)
    t = np.linspace(0.0, 10.0, 4)
    ours, theirs = ed.solve(model, t), ed.solve(ref, t)
    assert ours.meta["kinks"] == theirs.meta["kinks"] > 0
    np.testing.assert_allclose(ours["W"], theirs["W"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours["loss"], theirs["loss"], rtol=1e-9)


def test_one_feature_without_a_sum_and_a_scalar_target():
    """h = W[i]*X[s] (one feature, no Sum over k) and a target that is a hyperparameter."""
    c = sp.Symbol("c")
    w = sp.IndexedBase("w")
    out = sp.Sum(a[i] * sp.Max(0, w[i] * X[s]), (i, 0, d - 1))
    loss = sp.Sum((out - c) ** 2, (s, 0, n - 1)) / (2 * n)
    net = ed.Network("one_feature", params=[a, w], indices={i: d, s: n}, loss=loss,
                     data=[X], hyper=[c])
    x0 = np.array([-1.0, -0.3, 0.4, 1.0])
    a0, w0 = np.array([0.5, -0.2, 0.3]), np.array([0.4, -0.6, 0.1])
    model = net.from_init({"a": a0, "w": w0}, X=x0, c=0.4)
    ref = ed.TwoLayer.from_init(a0, w0[:, None], x0[:, None], np.full(4, 0.4),
                                activation="relu", bias=False)
    t = np.linspace(0.0, 10.0, 5)
    ours, theirs = ed.solve(model, t), ed.solve(ref, t)
    assert ours["w"].shape == (5, 3)
    assert ours.meta["kinks"] == theirs.meta["kinks"]
    np.testing.assert_allclose(ours["w"], theirs["W"][:, :, 0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours["loss"], theirs["loss"], rtol=1e-9)


# ---- against a hand-written frozen-pattern integration -------------------------------------
BRANCHES = {  # (σ+, σ−, σ+', σ−') by hand
    "leaky": (lambda h: h, lambda h: 0.01 * h, lambda h: 1.0 + 0 * h, lambda h: 0.01 + 0 * h),
    "abs": (lambda h: h, lambda h: -h, lambda h: 1.0 + 0 * h, lambda h: -1.0 + 0 * h),
}
SYMPY_ACT = {"leaky": lambda h: sp.Max(h, h / 100), "abs": sp.Abs}


def frozen_pattern_reference(a0, W0, X0, Y0, al, times, kind):
    """The flow by hand, σ = σ± per entry by a frozen pattern, each sign change of
    h_is = w_i·x_s located by solve_ivp's events (direction out of the entry's side) and
    the pattern flipped there. Returns (states at ``times``, number of flips)."""
    sp_, sm, dp, dm = BRANCHES[kind]
    m, dim = W0.shape
    nn = len(Y0)

    def rhs(on):
        def f(_t, y):
            av, Wv = y[:m], y[m:].reshape(m, dim)
            h = Wv @ X0.T
            sig = np.where(on, sp_(h), sm(h))
            dsig = np.where(on, dp(h), dm(h))
            e = av @ sig / al - Y0
            da = -(sig @ e) / (al * nn)
            dW = -((av[:, None] * dsig * e[None, :]) @ X0) / (al * nn)
            return np.concatenate([da, dW.ravel()])
        return f

    def event(r, q, on):
        def g(_t, y):
            return y[m:].reshape(m, dim)[r] @ X0[q]
        g.terminal = True
        g.direction = -1.0 if on[r, q] else 1.0
        return g

    y = np.concatenate([a0, W0.ravel()])
    on = (W0 @ X0.T) > 0
    t0, flips, out = 0.0, 0, []
    times = list(times)
    while times:
        evs = [event(r, q, on) for r in range(m) for q in range(nn)]
        sol = solve_ivp(rhs(on.copy()), (t0, times[-1]), y, method="DOP853", rtol=1e-13,
                        atol=1e-15, events=evs, dense_output=True)
        hit = [j for j, te in enumerate(sol.t_events) if len(te)]
        t_end = sol.t[-1]
        while times and times[0] <= t_end:
            out.append(sol.sol(times.pop(0)))
        if not hit:
            break
        j = hit[0]
        on[j // nn, j % nn] = not on[j // nn, j % nn]
        flips += 1
        assert flips < 100, "the reference flips without end: the instance slides"
        t0, y = t_end, sol.y[:, -1]
    return np.array(out), flips


@pytest.mark.parametrize("kind, seed", [("leaky", 3), ("leaky", 7), ("abs", 6), ("abs", 14),
                                       ("abs", 25)])
def test_leaky_relu_and_abs_networks_agree_with_a_handwritten_frozen_pattern_flow(kind, seed):
    """Instances whose kinks are all transversal crossings (1, 1, 1, 2 and 2 of them)."""
    X0, Y0 = sine_data(6)
    a0, W0 = init(seed, 3, 2, scale=0.5)
    model = network(SYMPY_ACT[kind]).from_init({"a": a0, "W": W0}, X=X0, Y=Y0, alpha=1.0)
    t = np.linspace(0.0, 8.0, 5)
    ours = ed.solve(model, t, rtol=1e-12, atol=1e-14)
    ref, flips = frozen_pattern_reference(a0, W0, X0, Y0, 1.0, t, kind)
    assert ours.meta["sliding_entries"] == []  # transversal crossings: the reference is exact
    assert ours.meta["kinks"] == flips > 0
    got = np.concatenate([ours["a"], ours["W"].reshape(len(t), -1)], axis=1)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9 * np.max(np.abs(ref)))


def test_sliding_agrees_with_gradient_descent_at_small_steps():
    """An Abs network whose kink is attracting from both sides (Filippov sliding, which the
    frozen-pattern reference cannot follow): numpy gradient descent chatters around the
    surface and converges to the sliding flow at order lr (errors at lr and lr/2: ratio
    about 2, and the smaller below 1e-3 of the state)."""
    X0, Y0 = sine_data(6)
    a0, W0 = init(0, 3, 2, scale=0.5)
    model = network(sp.Abs).from_init({"a": a0, "W": W0}, X=X0, Y=Y0, alpha=1.0)
    T = 8.0
    flow = ed.solve(model, [0.0, T], rtol=1e-12, atol=1e-14)
    assert flow.meta["sliding_entries"]
    target = np.concatenate([flow["a"][-1], flow["W"][-1].ravel()])
    errors = []
    for lr in (2e-4, 1e-4):
        av, Wv = a0.copy(), W0.copy()
        for _ in range(int(round(T / lr))):
            h = Wv @ X0.T
            e = av @ np.abs(h) - Y0
            da = np.abs(h) @ e / len(Y0)
            dW = (av[:, None] * np.sign(h) * e[None, :]) @ X0 / len(Y0)
            av, Wv = av - lr * da, Wv - lr * dW
        errors.append(np.max(np.abs(np.concatenate([av, Wv.ravel()]) - target)))
    scale = np.max(np.abs(target))
    assert errors[1] < 1e-3 * scale
    assert 1.5 < errors[0] / errors[1] < 2.5


# ---- gradient descent and verify -------------------------------------------------------------
def test_gradient_descent_is_a_handwritten_subgradient_loop():
    """ed.gd on the user's ReLU network is the numpy loop θ ← θ − lr ∇L with σ'(0) = 0, and
    at precision=30 it agrees with float64 to rounding."""
    X0, Y0 = sine_data()
    a0, W0 = init(4, 3, 2)
    model = network().from_init({"a": a0, "W": W0}, X=X0, Y=Y0, alpha=1.0)
    lr, steps = 0.05, 40
    av, Wv = a0.copy(), W0.copy()
    for _ in range(steps):
        h = Wv @ X0.T
        e = av @ np.maximum(h, 0) - Y0
        da = np.maximum(h, 0) @ e / len(Y0)
        dW = (av[:, None] * (h > 0) * e[None, :]) @ X0 / len(Y0)
        av, Wv = av - lr * da, Wv - lr * dW
    traj = ed.gd(model, lr, [0.0, steps * lr])
    np.testing.assert_allclose(traj["a"][-1], av, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(traj["W"][-1], Wv, rtol=1e-12, atol=1e-15)
    hp = ed.gd(model, lr, [0.0, steps * lr], precision=30)
    np.testing.assert_allclose(np.asarray(hp["W"][-1], float), Wv, rtol=1e-12, atol=1e-15)


def test_verify_checks_gradient_descent_on_the_kinked_path():
    X0, Y0 = sine_data()
    a0, W0 = init(0, 4, 2)
    model = network().from_init({"a": a0, "W": W0}, X=X0, Y=Y0, alpha=1.0)
    ref = ed.TwoLayer.from_init(a0, W0, X0, Y0, activation="relu", bias=False)
    ours = ed.verify(model, t=[0.0, 0.3], lrs=[0.02, 0.01])
    theirs = ed.verify(ref, t=[0.0, 0.3], lrs=[0.02, 0.01])
    assert ours.gd.passed and theirs.gd.passed
    assert str(ours.gd) == str(theirs.gd).replace("two_layer", "user_relu")


def test_the_model_pickles_rescales_and_keeps_its_type():
    X0, Y0 = sine_data()
    a0, W0 = init(0, 4, 2)
    model = network().from_init({"a": a0, "W": W0}, X=X0, Y=Y0, alpha=1.0)
    again = pickle.loads(pickle.dumps(model))
    assert isinstance(again, KinkedNetworkModel)
    t = [0.0, 5.0]
    np.testing.assert_array_equal(ed.solve(again, t)["W"], ed.solve(model, t)["W"])
    half = model.with_init_scaled(0.5)
    assert isinstance(half, KinkedNetworkModel)
    np.testing.assert_array_equal(half.initial_state()["W"], 0.5 * W0)
    assert model.with_values(alpha=2.0).kinked_preactivation().alpha == 2.0
    rnd = network().random_init(3, scale=0.2, seed=1, X=X0, Y=Y0, alpha=1.0)
    assert isinstance(rnd, KinkedNetworkModel) and ed.solve(rnd, t).meta["kinks"] >= 0
    # the user's own derivation stays available (σ' as Heaviside)
    eqs = ed.gradient_flow(model).equations()
    assert any(eq.has(sp.Heaviside) for eq in eqs)


# ---- what is refused -------------------------------------------------------------------------
def test_precision_is_refused_as_for_two_layer():
    X0, Y0 = sine_data()
    a0, W0 = init(0, 2, 2)
    model = network().from_init({"a": a0, "W": W0}, X=X0, Y=Y0, alpha=1.0)
    with pytest.raises(ValueError, match="precision and reduced are not available for user "
                                         "networks with a kinked activation"):
        ed.solve(model, [0.0, 1.0], precision=30)


@pytest.mark.parametrize("make, match", [
    (lambda: network(lambda h: sp.Abs(sp.Max(0, h) - 1)), "kink inside a kink"),
    (lambda: network(pre=sp.Sum(W[i, k] ** 2 * X[s, k], (k, 0, D - 1))),
     "not a product of the weights and the data"),
    (lambda: network(pre=PRE + b[i], params=(a, W, b)), "linear in one parameter array"),
    (lambda: network(pre=sp.Sum(a[i] * W[i, k] * X[s, k], (k, 0, D - 1))),
     "linear in one parameter array"),
    (lambda: network(lambda h: sp.Max(0, h) + sp.Abs(h)), "2 different kinked terms"),
    (lambda: network(lambda h: (sp.Abs(h) + h) / 2), r"must be a\[i\]\*sigma\(h\)"),
    (lambda: network(sp.Heaviside), "Heaviside.*a jump, not a kink"),
    (lambda: network(lambda h: sp.Piecewise((h, h > 0), (0, True))),
     "outside a reduction over i.*sympy folds a Piecewise.*Max\\(0, h\\)"),
    (lambda: network(lambda h: sp.Max(0, h - 1)), "not a product of the weights and the "
                                                   "data"),
    (lambda: network(lambda h: sp.Max(h, sp.Sum(2 * W[i, k] * Y[s], (k, 0, D - 1)))),
     "compares different pre-activations"),
    (lambda: network(loss=sp.Sum((sp.Sum(a[i] * sp.Max(0, PRE), (i, 0, d - 1)) - Y[s]) ** 2,
                                 (s, 0, n - 1)) * alpha), "factor before the sum over s"),
    (lambda: network(loss=sp.Sum((sp.Sum(a[i] * sp.Max(0, PRE), (i, 0, d - 1)) - Y[s]) ** 4,
                                 (s, 0, n - 1)) / (2 * n)), "is not a square"),
    (lambda: network(out=sp.Sum(a[i] ** 2 * sp.Max(0, PRE), (i, 0, d - 1))),
     "a readout a\\[i\\]"),
    (lambda: network(rates={W: 2}), "rates: a kinked network is integrated with learning "
                                    "rates 1"),
    (lambda: network(observables={"norm": sp.Sum(a[i] ** 2, (i, 0, d - 1))}),
     "observables: a network with kinks"),
])
def test_unsupported_kinked_forms_raise_value_error_naming_them(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_transposed_weights_are_refused_with_the_layout_to_use():
    pre = sp.Sum(W[k, i] * X[s, k], (k, 0, D - 1))
    with pytest.raises(ValueError, match=r"indexed neuron first, W\[neuron, k\]"):
        network(pre=pre)


def test_a_non_positive_output_scale_is_refused_when_the_model_is_built():
    c = sp.Symbol("c")
    out = sp.Sum(a[i] * sp.Max(0, PRE), (i, 0, d - 1)) * c
    loss = sp.Sum((out - Y[s]) ** 2, (s, 0, n - 1)) / (2 * n)
    net = ed.Network("scaled", params=[a, W], indices=INDICES, loss=loss, data=[X, Y],
                     hyper=[c])
    X0, Y0 = sine_data()
    a0, W0 = init(0, 2, 2)
    assert isinstance(net.from_init({"a": a0, "W": W0}, X=X0, Y=Y0, c=0.5), KinkedNetworkModel)
    with pytest.raises(ValueError, match="output scale alpha = 1/\\(c\\) must be positive"):
        net.from_init({"a": a0, "W": W0}, X=X0, Y=Y0, c=-0.5)


def test_one_index_networks_with_a_kink_still_point_to_indices():
    i1, d1 = sp.symbols("i d", integer=True)
    u = sp.IndexedBase("u")
    with pytest.raises(ValueError, match="Abs.*not smooth.*indices="):
        ed.Network("l1", params=[u], index=i1, width=d1,
                   loss=sp.Sum(sp.Abs(u[i1]), (i1, 0, d1 - 1)))
