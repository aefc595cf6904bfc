"""Gradient descent on the pipeline, the modified flow, and the fitted orders (issue 12).

Oracles: plain-numpy (and plain-mpmath) GD loops written here from the loss by hand, a
hand-written gradient of the modified loss checked by finite differences, and the orders
predicted by backward error analysis (1 against the flow, 2 against the modified flow).
"""

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import exactdyn as ed
from exactdyn.descent import modified_rhs

X3 = np.array([[1.0, 0.5], [-0.3, 1.0], [0.7, -1.0]])
Y3 = np.array([0.5, -0.2, 0.9])


def linear1d():
    return ed.Linear1D.from_init([0.3, -0.2, 0.5], [0.1, 0.4, -0.3], kappa=1.5, eta_u=1.0,
                                 eta_w=0.5, teacher=2.0, x_var=0.8)


def numpy_gd_linear1d(u, w, lr, steps, kappa, eta_u, eta_w, c, sxx):
    """Independent oracle: dL/du = r w, dL/dw = r u, r = kappa Sxx (kappa u.w - c)."""
    u, w = np.array(u, float), np.array(w, float)
    for _ in range(steps):
        r = kappa * sxx * (kappa * (u @ w) - c)
        u, w = u - lr * eta_u * r * w, w - lr * eta_w * r * u
    return u, w


def test_linear1d_gd_matches_a_plain_numpy_loop():
    m = linear1d()
    lr = 0.01
    traj = ed.gd(m, lr, [0.0, 0.5, 1.0, 2.0])
    assert traj.meta["method"] == "gd" and traj.meta["lr"] == lr
    for t, u, w in zip(traj.t, traj["u"], traj["w"]):
        k = int(round(t / lr))
        uo, wo = numpy_gd_linear1d([0.3, -0.2, 0.5], [0.1, 0.4, -0.3], lr, k, 1.5, 1.0, 0.5,
                                   2.0, 0.8)
        ref = np.concatenate([uo, wo])
        got = np.concatenate([u, w])
        assert np.linalg.norm(got - ref) <= 1e-13 * np.linalg.norm(ref)
    # observables from the same iterates: loss = 1/2 Sxx (kappa p - c)^2
    p = np.sum(traj["u"] * traj["w"], axis=1)
    assert np.allclose(traj["loss"], 0.5 * 0.8 * (1.5 * p - 2.0) ** 2, rtol=1e-13, atol=0)


def test_linear1d_gd_at_40_digits_matches_a_plain_mpmath_loop():
    m = linear1d()
    lr = 0.125  # exact in binary, so the mpmath oracle starts from the same numbers
    traj = ed.gd(m, lr, [1.0, 2.5], precision=40)
    assert traj.precision == 40 and traj["u"].dtype == object
    with mpmath.workdps(40):
        u = [mpmath.mpf(v) for v in (0.3, -0.2, 0.5)]
        w = [mpmath.mpf(v) for v in (0.1, 0.4, -0.3)]
        kappa, c, sxx, eu, ew = (mpmath.mpf(1.5), mpmath.mpf(2), mpmath.mpf(0.8),
                                 mpmath.mpf(1), mpmath.mpf(0.5))
        h = mpmath.mpf(lr)
        for _ in range(20):
            r = kappa * sxx * (kappa * mpmath.fsum(a * b for a, b in zip(u, w)) - c)
            u, w = [a - h * eu * r * b for a, b in zip(u, w)], \
                   [b - h * ew * r * a for a, b in zip(u, w)]
        err = max(abs(a - b) for a, b in zip(list(traj["u"][-1]) + list(traj["w"][-1]), u + w))
        assert err < mpmath.mpf(10) ** -36
    assert mpmath.mp.dps == 15  # no global mpmath state change


def test_two_layer_relu_gd_matches_a_plain_numpy_loop_with_the_zero_subgradient():
    m = ed.TwoLayer(6, X3, Y3, activation="relu", beta1=0.5, beta2=0.5, seed=3)
    lr = 0.05
    traj = ed.gd(m, lr, [1.0])
    a, W = m.a0.copy(), m.W0.copy()
    X, y, n = m.X, m.y, m.n
    for _ in range(20):
        h = W @ X.T
        e = (a @ np.maximum(h, 0)) / m.alpha - y
        ga = np.maximum(h, 0) @ e / (m.alpha * n)
        gW = (a[:, None] * ((h > 0) * e[None, :])) @ X / (m.alpha * n)
        a, W = a - lr * ga, W - lr * gW
    assert np.allclose(traj["a"][-1], a, rtol=1e-12, atol=1e-15)
    assert np.allclose(traj["W"][-1], W, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("lr", [0.0, -0.1, float("nan"), float("inf")])
def test_bad_learning_rate_is_named(lr):
    with pytest.raises(ValueError, match="lr"):
        ed.gd(linear1d(), lr, [1.0])
    with pytest.raises(ValueError, match="lr"):
        ed.solve(linear1d(), [1.0], lr=lr)


def test_times_off_the_iterates_are_named():
    with pytest.raises(ValueError, match="t must hold multiples of lr"):
        ed.gd(linear1d(), 0.3, [1.0])


def test_divergent_step_raises_integration_error():
    m = ed.Linear1D.from_init([1.0], [1.0], teacher=2.0)
    with pytest.raises(ed.IntegrationError, match="diverged"):
        ed.gd(m, 5.0, [5000.0])


# ---- the modified flow ---------------------------------------------------------------

def test_linear1d_modified_flow_is_proven_from_the_modified_loss():
    from exactdyn.symbolic.modified import derive_modified_flow

    mod = derive_modified_flow(ed.gradient_flow(linear1d()))
    assert mod.proven
    assert [s.title for s in mod.steps][0] == "Modified loss"


def _fd_gradient(f, x, eps=1e-6):
    g = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


def test_linear1d_modified_rhs_is_minus_H_grad_of_the_modified_loss_by_finite_differences():
    m = linear1d()
    h, kappa, c, sxx, eu, ew = 0.1, 1.5, 2.0, 0.8, 1.0, 0.5
    d = 3

    def Lt(y):
        u, w = y[:d], y[d:]
        r = kappa * sxx * (kappa * (u @ w) - c)
        L = 0.5 * sxx * (kappa * (u @ w) - c) ** 2
        return L + h / 4 * (eu * np.sum((r * w) ** 2) + ew * np.sum((r * u) ** 2))

    low, rhs = modified_rhs(m, h)
    y = np.array([0.3, -0.2, 0.5, 0.1, 0.4, -0.3])
    rates = np.array([eu] * d + [ew] * d)
    assert np.allclose(rhs(0.0, y), -rates * _fd_gradient(Lt, y), rtol=1e-8, atol=1e-9)


def test_linearnet_modified_rhs_is_minus_H_grad_of_the_modified_loss_by_finite_differences():
    syx = np.array([[2.0, 0.3], [0.1, 1.0]])
    rng = np.random.default_rng(0)
    W1, W2 = rng.normal(size=(3, 2)) * 0.5, rng.normal(size=(2, 3)) * 0.5
    m = ed.LinearNet.from_init(W1, W2, syx, eta1=1.0, eta2=0.7)
    h = 0.2

    def grads(W1, W2):  # whitened: L = 1/2 |W2 W1 - Syx|^2
        R = W2 @ W1 - syx
        return W2.T @ R, R @ W1.T

    def Lt(y):
        A, B = y[:6].reshape(3, 2), y[6:].reshape(2, 3)
        g1, g2 = grads(A, B)
        return 0.5 * np.sum((B @ A - syx) ** 2) + h / 4 * (np.sum(g1**2) + 0.7 * np.sum(g2**2))

    low, rhs = modified_rhs(m, h)
    y = np.concatenate([W1.ravel(), W2.ravel()])
    rates = np.array([1.0] * 6 + [0.7] * 6)
    assert np.allclose(rhs(0.0, y), -rates * _fd_gradient(Lt, y), rtol=1e-7, atol=1e-8)


def deep_linear():
    return ed.DeepLinear(depth=3, width=3, in_dim=2, out_dim=2,
                         sigma_yx=np.array([[2.0, 0.2], [0.0, 1.0]]), seed=0)


def test_deep_linear_modified_rhs_is_minus_grad_of_the_modified_loss_by_finite_differences():
    m = deep_linear()
    h = 0.1
    syx = np.array([[2.0, 0.2], [0.0, 1.0]])
    shapes = [(3, 2), (3, 3), (2, 3)]

    def split(y):
        out, k = [], 0
        for s in shapes:
            out.append(y[k:k + s[0] * s[1]].reshape(s))
            k += s[0] * s[1]
        return out

    def Lt(y):
        W1, W2, W3 = split(y)
        R = W3 @ W2 @ W1 - syx
        g = [(W3 @ W2).T @ R, W3.T @ R @ W1.T, R @ (W2 @ W1).T]
        return 0.5 * np.sum(R**2) + h / 4 * sum(np.sum(x**2) for x in g)

    low, rhs = modified_rhs(m, h)
    y = np.concatenate([np.ravel(v) for v in m.initial_state().values()])
    assert np.allclose(rhs(0.0, y), -_fd_gradient(Lt, y), rtol=1e-7, atol=1e-8)


def two_layer_tanh():
    return ed.TwoLayer(5, X3, Y3, activation="tanh", beta1=0.5, beta2=0.5, seed=0)


def test_modified_flow_of_a_kinked_activation_refuses_to_cross_a_kink():
    """Seed 0's flow leaves its initial activation region before t = 1: the modified
    flow (defined on one region) says so, naming t, instead of integrating on."""
    m = ed.TwoLayer(4, X3, Y3, activation="relu", beta1=0.5, beta2=0.5, seed=0)
    with pytest.raises(ValueError, match=r"^t: .*reaches a kink.*near t = "):
        ed.solve(m, [1.0], lr=0.01)


def test_modified_flow_refuses_a_preactivation_starting_on_the_kink():
    W = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # neuron 1: every preactivation is 0
    m = ed.TwoLayer.from_init([0.5, -0.4], W, X3, Y3, activation="relu")
    with pytest.raises(ValueError, match="exactly at the kink"):
        ed.solve(m, [0.1], lr=0.01)


def _mp_fd(f, x, i, eps):
    xp, xm = list(x), list(x)
    xp[i] += eps
    xm[i] -= eps
    return (f(xp) - f(xm)) / (2 * eps)


def _mp_modified_rhs(L, x, h):
    """-grad of L + (h/4)|grad L|^2, both gradients central finite differences at the
    working precision (nested: eps 1e-10 inside, 1e-8 outside, at 40 digits)."""
    inner, outer = mpmath.mpf(10) ** -10, mpmath.mpf(10) ** -8

    def Lt(v):
        return L(v) + h / 4 * mpmath.fsum(_mp_fd(L, v, i, inner) ** 2 for i in range(len(v)))

    return [-_mp_fd(Lt, x, i, outer) for i in range(len(x))]


def test_relu_two_layer_modified_rhs_is_minus_grad_of_the_modified_loss_on_its_region():
    """On an activation region the ReLU loss is smooth: the modified right-hand side is
    -grad(L + h/4 |grad L|^2) of a hand-written ReLU loss, by finite differences."""
    m = ed.TwoLayer(3, X3, Y3, activation="relu", beta1=0.5, beta2=0.5, seed=2)
    lr = 0.05
    low, rhs = modified_rhs(m, lr)
    y = low.pack(m.a0, m.W0)
    X, Y, mm, d = m.X, m.y, m.width, m.X.shape[1]

    def L(v):
        a, W = v[:mm], [v[mm + j * d: mm + (j + 1) * d] for j in range(mm)]
        out = 0
        for i in range(len(Y)):
            f = sum(a[j] * max(mpmath.fsum(W[j][r] * X[i, r] for r in range(d)), 0)
                    for j in range(mm)) / m.alpha
            out += (f - Y[i]) ** 2
        return out / (2 * len(Y))

    with mpmath.workdps(40):
        want = _mp_modified_rhs(L, [mpmath.mpf(float(v)) for v in y], mpmath.mpf(lr))
    np.testing.assert_allclose(rhs(0.0, y), np.array(want, dtype=float), rtol=1e-10,
                               atol=1e-13)


#: Three positive 3x3 one-channel images (preactivations stay away from the kink longer).
IMAGES = np.random.default_rng(0).uniform(0.5, 1.5, size=(3, 3, 3, 1))
Y_IMAGES = np.array([0.5, -0.3, 0.8])


def _cnn(act, seed):
    return ed.TwoLayerCNN(2, 2, IMAGES, Y_IMAGES, activation=act, scale=0.5, seed=seed,
                          padding="valid")


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_cnn_modified_rhs_is_minus_grad_of_the_modified_loss(act):
    """The CNN's modified right-hand side against a hand-written loss (patches of the
    3x3 images by slicing, kernels 2x2, two channels) by nested finite differences."""
    m = _cnn(act, 2)
    lr = 0.05
    low, rhs = modified_rhs(m, lr)
    y = low.pack(m.initial_state())
    imgs, Y = IMAGES, Y_IMAGES
    sig = mpmath.tanh if act == "tanh" else (lambda z: max(z, 0))
    # flat state: W (2, 2, 1, 2) then a (2, 2, 2), C order

    def L(v):
        W = lambda p, q, b: v[(p * 2 + q) * 2 + b]  # noqa: E731
        a = lambda u, w, b: v[8 + (u * 2 + w) * 2 + b]  # noqa: E731
        out = 0
        for i in range(3):
            f = 0
            for u in range(2):
                for w in range(2):
                    for b in range(2):
                        hh = mpmath.fsum(W(p, q, b) * imgs[i, u + p, w + q, 0]
                                         for p in range(2) for q in range(2))
                        f += a(u, w, b) * sig(hh)
            out += (f / m.alpha - Y[i]) ** 2
        return out / 6

    with mpmath.workdps(40):
        want = _mp_modified_rhs(L, [mpmath.mpf(float(v)) for v in y], mpmath.mpf(lr))
    np.testing.assert_allclose(rhs(0.0, y), np.array(want, dtype=float), rtol=1e-10,
                               atol=1e-13)


LRS = [0.02, 0.01, 0.005, 0.0025]


@pytest.mark.parametrize("make,t", [
    (linear1d, 1.0), (lambda: ed.LinearNet.decoupled(np.diag([2.0, 1.0])), 1.0),
    (deep_linear, 1.0), (two_layer_tanh, 1.0),
    # ReLU on one activation region (no kink crossed on [0, t] by the flows or GD)
    (lambda: ed.TwoLayer(4, X3, Y3, activation="relu", beta1=0.5, beta2=0.5, seed=2), 1.0),
    (lambda: _cnn("tanh", 2), 0.4), (lambda: _cnn("relu", 2), 0.4)],
    ids=["Linear1D", "LinearNet", "DeepLinear", "TwoLayer-tanh", "TwoLayer-relu", "CNN-tanh",
         "CNN-relu"])
def test_gd_meets_the_flow_at_order_1_and_the_modified_flow_at_order_2(make, t):
    res = ed.verify_gd(make(), LRS, t)
    assert abs(res.order_flow - 1) <= 0.05, res.table()
    assert abs(res.order_modified - 2) <= 0.1, res.table()
    assert res.passed
    assert np.all(res.error_modified < res.error_flow)


def test_verify_gd_names_bad_steps():
    with pytest.raises(ValueError, match="lrs"):
        ed.verify_gd(linear1d(), [0.01], 1.0)
    with pytest.raises(ValueError, match="t must hold multiples"):
        ed.verify_gd(linear1d(), [0.3, 0.2], 1.0)


@given(st.lists(st.floats(-1, 1), min_size=4, max_size=4),
       st.floats(0.2, 2.0), st.floats(0.2, 2.0), st.floats(-2, 2),
       st.sampled_from([0.005, 0.01, 0.02]))
def test_linear1d_gd_matches_the_numpy_loop_for_any_init_rates_and_step(uw, eu, ew, c, lr):
    u0, w0 = uw[:2], uw[2:]
    m = ed.Linear1D.from_init(u0, w0, kappa=1.0, eta_u=eu, eta_w=ew, teacher=c, x_var=1.0)
    traj = ed.gd(m, lr, [10 * lr])
    u, w = numpy_gd_linear1d(u0, w0, lr, 10, 1.0, eu, ew, c, 1.0)
    ref = np.concatenate([u, w])
    got = np.concatenate([traj["u"][-1], traj["w"][-1]])
    assert np.linalg.norm(got - ref) <= 1e-13 * max(np.linalg.norm(ref), 1e-300)


def test_modified_flow_derivation_renders_its_steps():
    from exactdyn.symbolic.modified import derive_modified_flow

    md = derive_modified_flow(ed.gradient_flow(ed.LinearNet.decoupled(np.diag([2.0, 1.0])))) \
        .markdown()
    assert "Modified loss" in md and "Modified flow of W1" in md and "Modified flow of W2" in md


def test_deep_linear_gd_at_30_digits_matches_a_hand_written_mpmath_loop():
    """gd(precision=) on DeepLinear (its chain lowering's rhs run on mpf arrays) against
    W_{k+1} = W_k - lr dL/dW written by hand in mpmath: G = W3 W2 W1 - Sigma_yx (whitened),
    dW1 = -(W3 W2)^T G, dW2 = -W3^T G W1^T, dW3 = -G (W2 W1)^T."""
    import mpmath

    from exactdyn.models.deep_linear import teacher_matrix

    S = teacher_matrix([3.0, 2.0, 1.0], 3, 3)
    m = ed.DeepLinear(depth=3, width=4, in_dim=3, out_dim=3, sigma=0.4, sigma_yx=S, seed=1)
    lr, steps = 0.125, 8
    got = ed.gd(m, lr, [lr * steps], precision=30)
    with mpmath.workdps(30):
        def mp(a):
            return mpmath.matrix([[mpmath.mpf(float(v)) for v in row] for row in a])

        W1, W2, W3 = (mp(m.initial_state()[k]) for k in ("W1", "W2", "W3"))
        Smp, h = mp(S), mpmath.mpf(lr)
        for _ in range(steps):
            G = W3 * W2 * W1 - Smp
            d1, d2, d3 = -(W3 * W2).T * G, -W3.T * G * W1.T, -G * (W2 * W1).T
            W1, W2, W3 = W1 + h * d1, W2 + h * d2, W3 + h * d3
        for name, ref in (("W1", W1), ("W2", W2), ("W3", W3)):
            mine = got[name][-1]
            for i in range(ref.rows):
                for j in range(ref.cols):
                    assert abs(mine[i, j] - ref[i, j]) <= mpmath.mpf(10) ** -27
    assert got.meta["precision"] == 30 and isinstance(got["W1"][-1, 0, 0], mpmath.mpf)
    # the float64 iterates are the same to rounding
    np.testing.assert_allclose(got["W1"].astype(float), ed.gd(m, lr, [lr * steps])["W1"],
                               rtol=0, atol=1e-14)


# ---- gd(precision=N) on the two-layer families ------------------------------------------

def _mp_two_layer_gd(m, sig, dsig, lr, steps):
    """Hand-written GD in mpmath: e_i = f(x_i) - y_i, f = (1/alpha) sum_j a_j sig(w_j.x_i),
    dL/da_j = (1/(alpha n)) sum_i e_i sig(h_ji), dL/dW_jr = (a_j/(alpha n)) sum_i e_i
    sig'(h_ji) X_ir."""
    X = [[mpmath.mpf(float(v)) for v in row] for row in m.X]
    Y = [mpmath.mpf(float(v)) for v in m.y]
    a = [mpmath.mpf(float(v)) for v in m.a0]
    W = [[mpmath.mpf(float(v)) for v in row] for row in m.W0]
    n, mm, d = len(Y), len(a), len(X[0])
    alpha, h = mpmath.mpf(m.alpha), mpmath.mpf(lr)
    for _ in range(steps):
        H = [[mpmath.fsum(W[j][r] * X[i][r] for r in range(d)) for i in range(n)]
             for j in range(mm)]
        e = [mpmath.fsum(a[j] * sig(H[j][i]) for j in range(mm)) / alpha - Y[i]
             for i in range(n)]
        ga = [mpmath.fsum(e[i] * sig(H[j][i]) for i in range(n)) / (alpha * n)
              for j in range(mm)]
        gW = [[a[j] * mpmath.fsum(e[i] * dsig(H[j][i]) * X[i][r] for i in range(n))
               / (alpha * n) for r in range(d)] for j in range(mm)]
        a = [a[j] - h * ga[j] for j in range(mm)]
        W = [[W[j][r] - h * gW[j][r] for r in range(d)] for j in range(mm)]
    return a, W


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_two_layer_gd_at_30_digits_matches_a_hand_written_mpmath_loop(act):
    m = ed.TwoLayer(4, X3, Y3, activation=act, beta1=0.5, beta2=0.5, seed=1, alpha=1.5)
    lr, steps = 0.1, 12
    got = ed.gd(m, lr, [lr * steps], precision=30)
    if act == "tanh":
        sig, dsig = mpmath.tanh, lambda z: 1 - mpmath.tanh(z) ** 2
    else:  # sigma'(0) = 0, the float64 step's subgradient
        sig, dsig = (lambda z: z if z > 0 else mpmath.mpf(0)), \
            (lambda z: mpmath.mpf(1) if z > 0 else mpmath.mpf(0))
    with mpmath.workdps(30):
        a, W = _mp_two_layer_gd(m, sig, dsig, lr, steps)
        err = max(max(abs(x - y) for x, y in zip(got["a"][-1], a)),
                  max(abs(x - y) for row, ref in zip(got["W"][-1], W)
                      for x, y in zip(row, ref)))
    assert err <= mpmath.mpf(10) ** -25
    assert isinstance(got["a"][-1, 0], mpmath.mpf) and got.meta["precision"] == 30
    assert mpmath.mp.dps == 15
    np.testing.assert_allclose(got["W"][-1].astype(float), ed.gd(m, lr, [lr * steps])["W"][-1],
                               rtol=0, atol=1e-14)


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_cnn_gd_at_30_digits_matches_a_hand_written_mpmath_loop(act):
    """Patches by slicing the 3x3 images, two 2x2 kernels, readout a[u, v, b]."""
    m = _cnn(act, 2)
    lr, steps = 0.1, 6
    got = ed.gd(m, lr, [lr * steps], precision=30)
    if act == "tanh":
        sig, dsig = mpmath.tanh, lambda z: 1 - mpmath.tanh(z) ** 2
    else:
        sig, dsig = (lambda z: z if z > 0 else mpmath.mpf(0)), \
            (lambda z: mpmath.mpf(1) if z > 0 else mpmath.mpf(0))
    with mpmath.workdps(30):
        img = [[[mpmath.mpf(float(IMAGES[i, r, c, 0])) for c in range(3)] for r in range(3)]
               for i in range(3)]
        Y = [mpmath.mpf(float(v)) for v in Y_IMAGES]
        W = {(p, q, b): mpmath.mpf(float(m.W0[p, q, 0, b]))
             for p in range(2) for q in range(2) for b in range(2)}
        a = {(u, v, b): mpmath.mpf(float(m.a0[u, v, b]))
             for u in range(2) for v in range(2) for b in range(2)}
        alpha, h = mpmath.mpf(m.alpha), mpmath.mpf(lr)
        pos = [(u, v) for u in range(2) for v in range(2)]
        for _ in range(steps):
            H = {(i, u, v, b): mpmath.fsum(W[p, q, b] * img[i][u + p][v + q]
                                           for p in range(2) for q in range(2))
                 for i in range(3) for u, v in pos for b in range(2)}
            e = [mpmath.fsum(a[u, v, b] * sig(H[i, u, v, b]) for u, v in pos for b in range(2))
                 / alpha - Y[i] for i in range(3)]
            ga = {(u, v, b): mpmath.fsum(e[i] * sig(H[i, u, v, b]) for i in range(3)) / (3 * alpha)
                  for u, v in pos for b in range(2)}
            gW = {(p, q, b): mpmath.fsum(e[i] * a[u, v, b] * dsig(H[i, u, v, b])
                                         * img[i][u + p][v + q]
                                         for i in range(3) for u, v in pos) / (3 * alpha)
                  for p in range(2) for q in range(2) for b in range(2)}
            a = {k: a[k] - h * ga[k] for k in a}
            W = {k: W[k] - h * gW[k] for k in W}
        err = max([abs(got["W"][-1][p, q, 0, b] - W[p, q, b]) for p, q, b in W]
                  + [abs(got["a"][-1][u, v, b] - a[u, v, b]) for u, v, b in a])
    assert err <= mpmath.mpf(10) ** -25
    assert isinstance(got["W"][-1].flat[0], mpmath.mpf)


# ---- sharpness through the complex step: the CNN, and ReLU on its activation region -----

def _fd_hessian(L, y, eps=1e-4):
    n = y.size
    H = np.empty((n, n))
    E = np.eye(n) * eps
    for i in range(n):
        for j in range(n):
            H[i, j] = (L(y + E[i] + E[j]) - L(y + E[i] - E[j]) - L(y - E[i] + E[j])
                       + L(y - E[i] - E[j])) / (4 * eps**2)
    return (H + H.T) / 2


def _np_cnn_loss(m, act):
    sig = np.tanh if act == "tanh" else (lambda z: np.maximum(z, 0.0))

    def L(v):  # flat state: W (2, 2, 1, 2) then a (2, 2, 2), C order; patches by slicing
        W, a = v[:8].reshape(2, 2, 2), v[8:].reshape(2, 2, 2)
        f = np.array([sum(a[u, w, b] * sig(np.sum(W[:, :, b] * IMAGES[i, u:u + 2, w:w + 2, 0]))
                          for u in range(2) for w in range(2) for b in range(2))
                      for i in range(3)]) / m.alpha
        return np.sum((f - Y_IMAGES) ** 2) / 6

    return L


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_cnn_sharpness_is_the_top_eigenvalue_of_a_finite_difference_hessian(act):
    """The CNN's Jacobian comes from the complex step (ReLU: on the activation region of
    the state, where the loss is smooth); against a hand-written loss's FD Hessian."""
    m = _cnn(act, 2)
    y = np.concatenate([m.W0.ravel(), m.a0.ravel()])
    lam = float(np.max(np.linalg.eigvalsh(_fd_hessian(_np_cnn_loss(m, act), y))))
    assert float(ed.sharpness(m)[0]) == pytest.approx(lam, rel=1e-6, abs=1e-8)
