"""Two-layer CNN (MATH.md §5): lowered flow against finite differences of the loss and a
hand-written loop oracle; linearized closed form against the full flow and against an
independent integration of the linear ODE; the channel balance law; bad input; CLI."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

import exactdyn as ed
from exactdyn.closed_form.cnn import CNNClosedForm, cosh_sinh, linearization, z_matrix
from exactdyn.errors import IntegrationError
from exactdyn.models.datasets import synthetic_images

SMOOTH = ("tanh", "gelu", "silu", "softplus", "sigmoid", "x_tanh", "linear", "sin(x) + x**3/7")


def _data(n, H, W, C, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, H, W, C)), rng.normal(size=n)


def _flat_loss(model):
    low = ed.lower(model)

    def L(v):
        s = low.unpack(v)
        return ed.lower(model).observe(s["W"], s["a"])[1]

    return L


def _oracle_forward(images, y, W, a, act, padding, alpha=1.0):
    """Hand-written loops over positions and kernel offsets (no strided views)."""
    s = W.shape[0]
    if padding == "same":
        b = (s - 1) // 2
        images = np.pad(images, ((0, 0), (b, s - 1 - b), (b, s - 1 - b), (0, 0)))
    n, H, Wd, _C = images.shape
    Hp, Wp = H - s + 1, Wd - s + 1
    h = np.zeros((n, Hp, Wp, W.shape[3]))
    for u in range(Hp):
        for v in range(Wp):
            for p in range(s):
                for q in range(s):
                    h[:, u, v, :] += images[:, u + p, v + q, :] @ W[p, q]
    return h, images


def oracle_rhs(images, y, W, a, sig, dsig, padding, alpha=1.0):
    h, padded = _oracle_forward(images, y, W, a, None, padding, alpha)
    n = len(y)
    f = np.einsum("iuvb,uvb->i", sig(h), a) / alpha
    e = f - y
    adot = -np.einsum("i,iuvb->uvb", e, sig(h)) / (alpha * n)
    G = e[:, None, None, None] * a[None] * dsig(h)  # n × H' × W' × M
    s = W.shape[0]
    Wdot = np.zeros_like(W)
    for p in range(s):
        for q in range(s):
            patch = padded[:, p:p + h.shape[1], q:q + h.shape[2], :]
            Wdot[p, q] = -np.einsum("iuvc,iuvb->cb", patch, G) / (alpha * n)
    return Wdot, adot


# ---- lowered right-hand side -----------------------------------------------------------
shapes = st.tuples(st.integers(1, 4), st.integers(2, 6), st.integers(2, 6), st.integers(1, 2),
                   st.integers(1, 3), st.integers(1, 3))


@settings(max_examples=25)
@given(shape=shapes, padding=st.sampled_from(("valid", "same")),
       act=st.sampled_from(SMOOTH + ("relu", "leaky_relu")), seed=st.integers(0, 10**6))
def test_rhs_is_minus_gradient_of_loss(shape, padding, act, seed):
    n, H, W, C, s, M = shape
    s = min(s, H, W)
    images, y = _data(n, H, W, C, seed)
    model = ed.TwoLayerCNN(M, s, images, y, activation=act, scale=0.7, seed=seed,
                           padding=padding)
    low = ed.lower(model)
    v = low.pack(model.initial_state())
    L = _flat_loss(model)
    eps = 1e-6
    grad = np.array([(L(v + eps * e) - L(v - eps * e)) / (2 * eps) for e in np.eye(v.size)])
    np.testing.assert_allclose(low.rhs(0.0, v), -grad, rtol=1e-6,
                               atol=1e-7 * max(1.0, np.max(np.abs(grad))))


@settings(max_examples=20)
@given(shape=shapes, padding=st.sampled_from(("valid", "same")),
       act=st.sampled_from(("tanh", "gelu", "x_tanh")), alpha=st.sampled_from((1.0, 0.5, 4.0)),
       seed=st.integers(0, 10**6))
def test_rhs_matches_loop_oracle(shape, padding, act, alpha, seed):
    n, H, W, C, s, M = shape
    s = min(s, H, W)
    images, y = _data(n, H, W, C, seed)
    model = ed.TwoLayerCNN(M, s, images, y, activation=act, scale=0.5, seed=seed,
                           padding=padding, alpha=alpha)
    sig, dsig = {"tanh": (np.tanh, lambda h: 1 / np.cosh(h) ** 2),
                 "gelu": (lambda h: h * (1 + __import__("scipy.special").special.erf(
                     h / np.sqrt(2))) / 2,
                          lambda h: (1 + __import__("scipy.special").special.erf(h / np.sqrt(2)))
                          / 2 + h * np.exp(-h**2 / 2) / np.sqrt(2 * np.pi)),
                 "x_tanh": (lambda h: h * np.tanh(h),
                            lambda h: np.tanh(h) + h / np.cosh(h) ** 2)}[act]
    Wdot, adot = oracle_rhs(images, y, model.W0, model.a0, sig, dsig, padding, alpha)
    low = ed.lower(model)
    got = low.unpack(low.rhs(0.0, low.pack(model.initial_state())))
    assert got["W"].shape == model.W0.shape and got["a"].shape == model.a0.shape
    np.testing.assert_allclose(got["W"], Wdot, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(got["a"], adot, rtol=1e-10, atol=1e-13)
    h, _ = _oracle_forward(images, y, model.W0, model.a0, None, padding)
    f = np.einsum("iuvb,uvb->i", sig(h), model.a0) / alpha
    np.testing.assert_allclose(ed.lower(model).observe(model.W0, model.a0)[0], f, rtol=1e-10,
                               atol=1e-14)


def test_channels_first_and_single_channel_layouts_agree():
    images, y = _data(3, 5, 6, 2, 1)
    a = ed.TwoLayerCNN(2, 3, images, y, scale=0.3)
    b = ed.TwoLayerCNN(2, 3, images.transpose(0, 3, 1, 2), y, scale=0.3, channels_first=True)
    np.testing.assert_array_equal(a.patches, b.patches)
    one = ed.TwoLayerCNN(2, 3, images[..., 0], y, scale=0.3)
    assert one.in_channels == 1 and one.W0.shape == (3, 3, 1, 2)
    same = ed.TwoLayerCNN(2, 3, images, y, padding="same")
    assert same.out_shape == (5, 6) and same.a0.shape == (5, 6, 2)
    assert a.out_shape == (3, 4) and a.a0.shape == (3, 4, 2)


def test_init_schemes_and_seed():
    images, y = _data(4, 6, 6, 1, 2)
    g1 = ed.TwoLayerCNN(4, 3, images, y, scale=1e-2, seed=5)
    g2 = ed.TwoLayerCNN(4, 3, images, y, scale=1e-2, seed=5)
    np.testing.assert_array_equal(g1.W0, g2.W0)
    np.testing.assert_array_equal(g1.a0, g2.a0)
    assert abs(np.std(np.concatenate([g1.W0.ravel(), g1.a0.ravel()])) - 1e-2) < 3e-3
    mir = ed.TwoLayerCNN(4, 3, images, y, scale=0.5, init="mirrored")
    np.testing.assert_allclose(ed.lower(mir).observe(mir.W0, mir.a0)[0], 0.0, atol=1e-15)
    bal = ed.TwoLayerCNN(4, 3, images, y, scale=0.5, init="balanced")
    tr = ed.solve(bal, [0.0])
    np.testing.assert_allclose(tr["balance"][0], 0.0, atol=1e-14)


def test_pipeline_objects():
    images, y = synthetic_images(8, 6, 6, 1, seed=0)
    model = ed.TwoLayerCNN(3, 3, images, y)
    flow = ed.gradient_flow(model)
    assert {b.name for b in flow.rhs} == {"a", "W"}
    low = ed.lower(model)
    assert low.size == 3 * 3 * 3 + 4 * 4 * 3
    src = low.sources["rhs"]
    assert "_contract" in src and "for " not in src
    tr = ed.solve(model, [0.0, 1.0, 2.0])
    assert tr["W"].shape == (3, 3, 3, 1, 3) and tr["a"].shape == (3, 4, 4, 3)
    assert tr["loss"].shape == (3,) and tr["loss"][-1] < tr["loss"][0]


def test_synthetic_images_deterministic():
    a, ya = synthetic_images(10, 5, 7, 2, seed=3)
    b, yb = synthetic_images(10, 5, 7, 2, seed=3)
    c, _ = synthetic_images(10, 5, 7, 2, seed=4)
    assert a.shape == (10, 5, 7, 2) and set(ya) == {-1.0, 1.0}
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a, c)


# ---- conservation ----------------------------------------------------------------------
@pytest.mark.parametrize("act, proven", [("relu", True), ("leaky_relu", True),
                                         ("linear", True), ("tanh", False),
                                         ("x_tanh", False)])
def test_channel_balance_proof(act, proven):
    images, y = _data(2, 4, 4, 1, 0)
    assert ed.TwoLayerCNN(2, 2, images, y, activation=act).conservation_proven() is proven


def test_channel_balance_along_trajectories():
    images, y = synthetic_images(12, 6, 6, 1, seed=1)
    lin = ed.TwoLayerCNN(3, 3, images, y, activation="linear", scale=0.2, seed=2)
    tr = ed.solve(lin, np.linspace(0, 5, 6), rtol=1e-12)
    assert tr["loss"][-1] < 0.5 * tr["loss"][0]  # it trained
    drift = np.max(np.abs(tr["balance"] - tr["balance"][0]))
    assert drift < 1e-9 * np.max(tr["kernel_norm"]) ** 2
    # tanh is not homogeneous: the same quantity moves
    th = ed.TwoLayerCNN(3, 3, images, y, activation="tanh", scale=0.5, seed=2)
    tr = ed.solve(th, np.linspace(0, 5, 6), rtol=1e-12)
    assert np.max(np.abs(tr["balance"] - tr["balance"][0])) > 1e-3


@pytest.mark.parametrize("act", ["relu", "leaky_relu"])
def test_kinked_flow_conserves_balance_and_dissipates_exactly(act):
    """Through located kinks and Filippov sliding (seed 1 slides): the channel balance
    stays put, and L(0) - L(T) equals the integral of |dθ/dt|² taken from difference
    quotients of the output states (independent of the rhs)."""
    images, y = synthetic_images(6, 5, 5, 1, seed=1)
    model = ed.TwoLayerCNN(2, 3, images, y, activation=act, scale=0.3, seed=1)
    ts = np.linspace(0, 3, 3001)
    tr = ed.solve(model, ts, rtol=1e-12)
    assert tr.meta["kinks"] > 10 and tr.meta["sliding_at_end"] > 0
    assert np.max(np.abs(tr["balance"] - tr["balance"][0])) < 1e-11
    theta = np.concatenate([tr["W"].reshape(len(ts), -1), tr["a"].reshape(len(ts), -1)], 1)
    speed2 = np.sum((np.diff(theta, axis=0) / np.diff(ts)[:, None]) ** 2, axis=1)
    dissipated = np.sum(speed2 * np.diff(ts))
    drop = tr["loss"][0] - tr["loss"][-1]
    assert abs(drop - dissipated) < 1e-4 * drop
    assert np.all(np.diff(tr["loss"]) <= 0)


# ---- closed form -----------------------------------------------------------------------
def test_z_matrix_is_label_weighted_mean_patch():
    images, y = _data(5, 5, 4, 2, 7)
    model = ed.TwoLayerCNN(2, 2, images, y)
    Z = z_matrix(model)
    Hp, Wp = model.out_shape
    for u in range(Hp):
        for v in range(Wp):
            z = np.einsum("i,ipqc->pqc", y, images[:, u:u + 2, v:v + 2, :]) / 5
            np.testing.assert_allclose(Z[:, u * Wp + v], z.ravel(), rtol=1e-13, atol=1e-15)
    lin = linearization(model)
    s = np.linalg.svd(Z, compute_uv=False)
    np.testing.assert_allclose(lin.svals, s, rtol=1e-12)
    assert lin.u1.shape == (2, 2, 2) and abs(np.linalg.norm(lin.u1) - 1) < 1e-12
    np.testing.assert_allclose(np.abs(lin.u1.ravel() @ Z), s[0] * np.abs(lin.V[:, 0]),
                               rtol=1e-10, atol=1e-14)
    assert lin.gap == pytest.approx(s[0] - s[1])
    assert lin.ratio == pytest.approx(s[0] / s[1])
    assert lin.onset_time == pytest.approx(np.log(1 / model.scale) / s[0])


@pytest.mark.parametrize("act, slope", [("tanh", 1.0), ("silu", 0.5), ("gelu", 0.5)])
def test_closed_form_against_independent_linear_ode(act, slope):
    images, y = synthetic_images(10, 5, 5, 2, seed=4)
    model = ed.TwoLayerCNN(3, 2, images, y, activation=act, scale=0.1, seed=1,
                           padding="same", alpha=2.0)
    D, P, M = model.patch_dim, model.positions, model.channels
    Zl = np.zeros((D, P))  # by loops, from the padded images
    pad = np.pad(images, ((0, 0), (0, 1), (0, 1), (0, 0)))
    for u in range(5):
        for v in range(5):
            Zl[:, u * 5 + v] = np.einsum("i,ipqc->pqc", y, pad[:, u:u + 2, v:v + 2]).ravel() / 10
    K = slope / 2.0 * Zl

    def f(t, v):
        W, a = v[:D * M].reshape(D, M), v[D * M:].reshape(P, M)
        return np.concatenate([(K @ a).ravel(), (K.T @ W).ravel()])

    ts = np.linspace(0, 3, 7)
    sol = solve_ivp(f, (0, 3), np.concatenate([model.W0.reshape(D, M).ravel(),
                                               model.a0.reshape(P, M).ravel()]),
                    t_eval=ts, rtol=1e-12, atol=1e-14, method="DOP853")
    tr = ed.exact(model, ts)
    np.testing.assert_allclose(tr["W"].reshape(len(ts), -1), sol.y[:D * M].T, rtol=1e-9,
                               atol=1e-11)
    np.testing.assert_allclose(tr["a"].reshape(len(ts), -1), sol.y[D * M:].T, rtol=1e-9,
                               atol=1e-11)


def test_closed_form_matches_full_flow_with_order_two_in_scale():
    images, y = synthetic_images(16, 6, 6, 1, seed=2)
    scales = np.array([1e-2, 3e-3, 1e-3, 3e-4])
    errs = []
    for eps in scales:
        model = ed.TwoLayerCNN(4, 3, images, y, scale=eps, seed=3)
        T = 2.0 / linearization(model).svals[0]  # two e-folds of the fastest mode
        ts = [0.0, T / 2, T]
        full, lin = ed.solve(model, ts, rtol=1e-12), ed.exact(model, ts)
        errs.append(np.linalg.norm(full["W"][-1] - lin["W"][-1]) / np.linalg.norm(lin["W"][-1]))
    order = np.polyfit(np.log(scales), np.log(errs), 1)[0]
    assert 1.8 < order < 2.2, (order, errs)
    assert errs[-1] < 1e-3


def test_kernels_condense_onto_u1_in_the_closed_form():
    images, y = synthetic_images(32, 6, 6, 1, seed=5)
    model = ed.TwoLayerCNN(6, 3, images, y, scale=1e-4, seed=0)
    lin = linearization(model)
    assert lin.gap > 0
    T = 3 * lin.onset_time
    W = ed.exact(model, [0.0, T])["W"][-1].reshape(-1, 6)
    cos = np.abs(lin.u1.ravel() @ W) / np.linalg.norm(W, axis=0)
    assert np.all(cos > 0.99)


def test_tie_in_top_singular_values_spreads_kernels():
    """Z = I/2 (two 1 × 2 two-channel images, 1 × 1 kernels): s1 = s2, every kernel grows
    along its own initial mix of u1, u2 and the kernels stay spread in the plane; breaking
    the tie (one pixel scaled by 1.5) condenses them onto ±u1, as MATH.md §5 predicts."""
    x = np.zeros((2, 1, 2, 2))
    x[0, 0, 0, 0] = x[0, 0, 1, 1] = 1.0
    x[1] = -x[0]
    y = np.array([1.0, -1.0])
    T = 30.0
    tie = ed.TwoLayerCNN(6, 1, x, y, scale=1e-6, seed=0)
    lin = linearization(tie)
    assert lin.gap == pytest.approx(0.0, abs=1e-15)
    W = ed.exact(tie, [T])["W"][0].reshape(2, 6)
    cos = np.abs(lin.u1.ravel() @ W) / np.linalg.norm(W, axis=0)
    assert cos.min() < 0.9  # not condensed onto one direction
    x2 = x.copy()
    x2[:, 0, 0, 0] *= 1.5
    gap = ed.TwoLayerCNN(6, 1, x2, y, scale=1e-6, seed=0)
    lin2 = linearization(gap)
    assert lin2.gap > 0.2
    W2 = ed.exact(gap, [T])["W"][0].reshape(2, 6)
    cos2 = np.abs(lin2.u1.ravel() @ W2) / np.linalg.norm(W2, axis=0)
    assert cos2.min() > 0.99


def test_full_flow_condenses_onto_u1_before_the_loss_moves():
    """MATH.md §5 on the full (nonlinear) flow: stripe images with s1/s2 = 2.19, init
    scale 1e-6: every kernel has |cos| > 0.99 with u1 while the loss has dropped < 10%."""
    images, y = synthetic_images(64, 8, 8, 1, seed=0)
    model = ed.TwoLayerCNN(8, 3, images, y, scale=1e-6, seed=0)
    lin = linearization(model)
    assert lin.ratio > 2
    ts = np.linspace(0, 1.6 * lin.onset_time, 33)
    tr = ed.solve(model, ts)
    W = tr["W"].reshape(len(ts), -1, 8)
    cos = np.abs(np.einsum("d,tdm->tm", lin.u1.ravel(), W)) / np.linalg.norm(W, axis=1)
    condensed = np.flatnonzero(cos.min(axis=1) > 0.99)
    assert condensed.size
    assert tr["loss"][condensed[0]] > 0.9 * tr["loss"][0]
    assert tr["loss"][-1] < 0.9 * tr["loss"][0]  # and the loss does move afterwards


def test_tie_images_have_a_tie_in_the_cnn_linearization():
    from exactdyn.models.datasets import tie_images

    lin = linearization(ed.TwoLayerCNN(4, 3, *tie_images(20, 3), scale=1e-3))
    assert lin.gap < 1e-12 * lin.svals[0] and lin.ratio == pytest.approx(1.0, abs=1e-12)


def test_stable_cosh_sinh_and_overflow():
    x = np.array([0.0, 1.0, 700.0, 750.0])
    p, q = np.array([1e-300, 2.0, 1e-300, 3e-310]), np.array([-1e-300, -1.0, 0.0, 0.0])
    got = cosh_sinh(x, p, q)
    assert got[0] == 1e-300 and got[1] == pytest.approx(2 * np.cosh(1) - np.sinh(1))
    assert got[2] == pytest.approx(0.5e-300 * np.exp(700.0))
    assert got[3] == pytest.approx(np.exp(750.0 + np.log(1.5e-310)))  # cosh(750) = inf
    assert cosh_sinh(np.array([800.0]), np.array([1.0]), np.array([-1.0]))[0] == \
        pytest.approx(np.exp(-800.0), rel=1e-12, abs=0)  # p = -q: pure decay, no inf*0
    images, y = synthetic_images(8, 5, 5, 1)
    model = ed.TwoLayerCNN(2, 3, images, y, scale=1e-3)
    with pytest.raises(IntegrationError):
        ed.exact(model, [0.0, 1e6])


def test_symbolic_proofs():
    cf = ed.closed_form(ed.TwoLayerCNN(2, 2, *_data(2, 3, 3, 1, 0)))
    assert all(step.proven for step in cf.proofs)
    for r in cf.matrix_residual(2, 2, 1):
        assert all(e == 0 for e in r)


@pytest.mark.slow
def test_symbolic_matrix_proof_full_rank():
    for r in CNNClosedForm().matrix_residual(2, 3, 2):
        assert all(e == 0 for e in r)


# ---- bad input -------------------------------------------------------------------------
IM, Y = _data(3, 5, 5, 1, 0)


@pytest.mark.parametrize("kwargs, needle", [
    ({"kernel_size": 6}, "kernel_size"),
    ({"images": IM[0, :, :, 0]}, "rank"),
    ({"images": IM[..., None]}, "rank"),
    ({"images": np.where(IM > 1, np.nan, IM)}, "finite"),
    ({"y": Y[:2]}, "targets"),
    ({"y": np.array([1.0, np.nan, 0.0])}, "y must be finite"),
    ({"channels": 0}, "channels"),
    ({"channels": -2}, "channels"),
    ({"scale": 0.0}, "scale"),
    ({"scale": -1e-3}, "scale"),
    ({"activation": "swish"}, "activation"),
    ({"activation": "__import__('os')"}, "activation"),
    ({"padding": "full"}, "padding"),
    ({"init": "orthogonal"}, "init"),
    ({"init": "mirrored", "channels": 3}, "even"),
    ({"alpha": 0.0}, "alpha"),
])
def test_bad_input_names_the_parameter(kwargs, needle):
    args = {"channels": 2, "kernel_size": 3, "images": IM, "y": Y}
    args.update(kwargs)
    with pytest.raises(ValueError, match=needle):
        ed.TwoLayerCNN(args.pop("channels"), args.pop("kernel_size"), args.pop("images"),
                       args.pop("y"), **args)


def test_bad_explicit_init_and_unsupported_requests():
    with pytest.raises(ValueError, match="a must have shape"):
        ed.TwoLayerCNN.from_init(np.zeros((3, 3, 1, 2)), np.zeros((2, 2, 2)), IM, Y)
    with pytest.raises(ValueError, match="input channels"):
        ed.TwoLayerCNN.from_init(np.zeros((3, 3, 2, 2)), np.zeros((3, 3, 2)), IM, Y)
    with pytest.raises(ValueError, match="W must"):
        ed.TwoLayerCNN.from_init(np.zeros((3, 2, 1, 2)), np.zeros((3, 3, 2)), IM, Y)
    ok = ed.TwoLayerCNN.from_init(np.ones((3, 3, 1, 2)) * 1e-2, np.ones((3, 3, 2)) * 1e-2, IM, Y)
    assert ok.channels == 2 and linearization(ok).init_scale == pytest.approx(1e-2)
    with pytest.raises(ValueError, match="kinks away from 0"):
        ed.solve(ed.TwoLayerCNN(2, 3, IM, Y, activation="abs(x - 1)"), [0.0, 1.0])
    with pytest.raises(ValueError, match="method"):
        ed.solve(ed.TwoLayerCNN(2, 3, IM, Y, activation="relu"), [0.0, 1.0], method="Radau")
    for act in ("relu", "sigmoid", "x_tanh"):
        with pytest.raises(ValueError, match="sigma"):
            ed.exact(ed.TwoLayerCNN(2, 3, IM, Y, activation=act), [0.0, 1.0])
    with pytest.raises(ValueError, match="precision"):
        ed.solve(ed.TwoLayerCNN(2, 3, IM, Y), [0.0, 1.0], precision=30)


# ---- CLI -------------------------------------------------------------------------------
def test_cli_solve_and_exact_json(capsys, tmp_path):
    from exactdyn.cli import main

    images, y = synthetic_images(6, 5, 5, 1, seed=9)
    np.save(tmp_path / "x.npy", images)
    np.save(tmp_path / "y.npy", y)
    argv = ["--images", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"),
            "--channels", "2", "--kernel-size", "3", "--scale", "0.01", "--t", "0,1",
            "--format", "json"]
    assert main(["exact", "cnn", *argv]) == 0
    got = json.loads(capsys.readouterr().out)
    ref = ed.exact(ed.TwoLayerCNN(2, 3, images, y, scale=0.01), [0.0, 1.0])
    np.testing.assert_allclose(got["observables"]["loss"], ref["loss"], rtol=1e-12)
    assert main(["solve", "cnn", *argv, "--save", str(tmp_path / "tr.npz")]) == 0
    with np.load(tmp_path / "tr.npz") as f:
        assert f["state_W"].shape == (2, 3, 3, 1, 2)


@pytest.mark.parametrize("argv, needle", [
    (["solve", "cnn", "--kernel-size", "9"], "kernel_size"),
    (["solve", "cnn", "--channels", "0"], "channels"),
    (["solve", "cnn", "--scale", "-1"], "scale"),
    (["solve", "cnn", "--activation", "abs(x-1)"], "kinks away from 0"),
    (["exact", "cnn", "--activation", "sigmoid"], "sigma"),
    (["solve", "cnn", "--data", "mnist"], "--data"),
    (["solve", "cnn", "--images", "missing.npy", "--labels", "y.npy"], "does not exist"),
    (["solve", "cnn", "--images", "x.npy"], "--labels"),
    (["exact", "cnn", "--padding", "full"], "padding"),
    (["solve", "cnn", "--no-such-option"], "unrecognized"),
])
def test_cli_bad_input_one_line_exit_2(capsys, argv, needle):
    from exactdyn.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("exactdyn: error:") and needle in err[0]
