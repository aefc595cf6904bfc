r"""Generated right-hand sides that keep their temporaries in buffers (issue 15, item 5).

A lowered flow's ``rhs`` writes into a new packed result and keeps its array temporaries
(pre-activations, residuals, matrix products) in per-thread buffers between calls
(:mod:`exactdyn.numeric.buffers`). What must hold, for every family:

- the values are those of the hand-written numpy right-hand side (an oracle independent of
  sympy and of the printers) and exactly those of the same source run without buffers
  (every temporary a new array, as before);
- a call at another state leaks nothing through the buffers, and a result a caller keeps
  (scipy's integrators keep the last derivative as the next step's first stage) is never
  overwritten by a later call; an integration through ``solve_ivp`` is bit for bit the
  one without buffers;
- two threads calling one lowered flow at once, and a complex (complex-step) state after
  a real one, get their own buffers.
"""

from __future__ import annotations

import threading

import numpy as np
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

import exactdyn as ed
from exactdyn.models.datasets import synthetic_images
from exactdyn.models.deep_linear import teacher_matrix
from exactdyn.numeric.buffers import ThreadBuffers

ACT = {"tanh": (np.tanh, lambda h: 1 - np.tanh(h) ** 2),
       "relu": (lambda h: np.maximum(h, 0), lambda h: (h > 0) * 1.0)}


# ---------------------------------------------------------------- hand-written oracles
def two_layer_hand(y, m, X, Y, alpha, act):
    """MATH.md §4: a' = -σ(h) e / (α n), W' = -(a/(α n)) (σ'(h) e) X, e = aσ(h)/α - Y."""
    s, ds = ACT[act]
    d = X.shape[1]
    a, W = y[:m], y[m:].reshape(m, d)
    h = W @ X.T
    e = a @ s(h) / alpha - Y
    n = len(Y)
    return np.concatenate([-(s(h) @ e) / (alpha * n),
                           (-(a[:, None] / (alpha * n)) * ((ds(h) * e) @ X)).ravel()])


def cnn_hand(v, X, Y, D, P, M, act):
    """The CNN's rhs (bench_cnn.py): W (D × M), a (P × M), patches X (n × P × D)."""
    s, ds = ACT[act]
    W, a = v[:D * M].reshape(D, M), v[D * M:].reshape(P, M)
    n = len(Y)
    h = (X.reshape(n * P, D) @ W).reshape(n, P, M)
    e = s(h).reshape(n, P * M) @ a.ravel() - Y
    adot = -(e @ s(h).reshape(n, P * M)).reshape(P, M) / n
    G = e[:, None, None] * a[None] * ds(h)
    Wdot = -(X.reshape(n * P, D).T @ G.reshape(n * P, M)) / n
    return np.concatenate([Wdot.ravel(), adot.ravel()])


def linearnet_hand(y, model):
    """W1' = -η1 W2ᵀR, W2' = -η2 R W1ᵀ, R = W2 W1 Σxx - Σyx (Saxe et al. 2014)."""
    h, i = model.hidden, model.in_dim
    W1, W2 = y[:h * i].reshape(h, i), y[h * i:].reshape(-1, h)
    R = W2 @ W1 @ np.asarray(model.sxx, float) - np.asarray(model.sigma_yx, float)
    return np.concatenate([(-model.eta1 * (W2.T @ R)).ravel(),
                           (-model.eta2 * (R @ W1.T)).ravel()])


def deep_hand(y, model):
    """Depth 3, whitened inputs: G = W3 W2 W1 - S, W1' = -W2ᵀW3ᵀG, W2' = -W3ᵀG W1ᵀ,
    W3' = -G W1ᵀW2ᵀ (Arora et al. 2018)."""
    shapes = model.layer_shapes()
    cuts = np.cumsum([a * b for a, b in shapes])[:-1]
    W1, W2, W3 = (p.reshape(s) for p, s in zip(np.split(y, cuts), shapes))
    G = W3 @ (W2 @ W1) - np.asarray(model.sigma_yx, float)
    return np.concatenate([(-(W2.T @ (W3.T @ G))).ravel(), (-(W3.T @ G @ W1.T)).ravel(),
                           (-(G @ (W1.T @ W2.T))).ravel()])


# ---------------------------------------------------------------- the flows without buffers
def unbuffered(low, y):
    """The same generated source, every temporary a new array (no ``_b``)."""
    if hasattr(low, "result_views"):  # one-hidden-layer flows: the rhs_out source
        out = np.empty(low.size)
        low._rhs_out(*low.arguments(y), low.result_views(out))
        return out
    out = np.empty(low.size, dtype=y.dtype if y.dtype.kind == "c" else float)
    blocks = [(s, low.shapes[n]) for n, s in low.slices.items()]
    values = low.hyper_values if hasattr(low, "hyper_values") else low.param_values
    low._rhs(*[y[s].reshape(sh) for s, sh in blocks], *values,
             [out[s].reshape(sh) for s, sh in blocks])
    return out


def check_calls(low, hand, states):
    """Consecutive calls at different states: each equals the oracle (1e-12 relative) and
    the unbuffered source (exactly); every earlier result is intact after later calls."""
    kept = []
    for y in states:
        r = low.rhs(0.0, y)
        ref = hand(y)
        scale = max(1.0, float(np.max(np.abs(ref))))
        np.testing.assert_allclose(r, ref, rtol=1e-12, atol=1e-13 * scale)
        np.testing.assert_array_equal(r, unbuffered(low, y))
        kept.append((r, r.copy()))
    for r, copy in kept:
        np.testing.assert_array_equal(r, copy)  # not overwritten by the later calls
    for (r1, _), (r2, _) in zip(kept, kept[1:]):
        assert not np.shares_memory(r1, r2)


def states(low, y0, seed, count=3):
    rng = np.random.default_rng(seed)
    return [y0] + [y0 + rng.normal(size=y0.shape) * rng.uniform(0.01, 1.0)
                   for _ in range(count)]


# ---------------------------------------------------------------- every family
@settings(max_examples=12, deadline=None)
@given(st.integers(1, 6), st.integers(1, 5), st.integers(1, 4), st.sampled_from(["tanh", "relu"]),
       st.integers(0, 10**6))
def test_two_layer_buffered_rhs(m, n, d, act, seed):
    rng = np.random.default_rng(seed)
    a0, W0 = rng.normal(size=m), rng.normal(size=(m, d))
    X, Y = rng.normal(size=(n, d)), rng.normal(size=n)
    model = ed.TwoLayer.from_init(a0, W0, X, Y, activation=act, alpha=1.5, bias=False)
    low = ed.lower(model)
    y0 = low.pack(model.initial_state())
    check_calls(low, lambda y: two_layer_hand(y, m, X, Y, 1.5, act), states(low, y0, seed))


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 4), st.integers(2, 5), st.sampled_from(["tanh", "relu"]),
       st.integers(0, 10**6))
def test_cnn_buffered_rhs(M, n, act, seed):
    images, labels = synthetic_images(n, 5, 5, 1, seed=seed % 1000)
    model = ed.TwoLayerCNN(M, 3, images, labels, activation=act, scale=0.3, seed=seed % 1000)
    low = ed.lower(model)
    v0 = low.pack(model.initial_state())
    D, P, X = model.patch_dim, model.positions, model.patches
    check_calls(low, lambda v: cnn_hand(v, X, np.asarray(model.y, float), D, P, M, act),
                states(low, v0, seed))


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 5), st.integers(1, 4), st.integers(1, 3), st.integers(0, 10**6))
def test_linearnet_buffered_rhs(hidden, in_dim, out_dim, seed):
    rng = np.random.default_rng(seed)
    syx = rng.normal(size=(out_dim, in_dim))
    model = ed.LinearNet(in_dim, hidden, out_dim, sigma_yx=syx, eta1=0.7, eta2=1.3,
                         seed=seed % 1000)
    low = ed.lower(model)
    y0 = low.pack(model.initial_state())
    check_calls(low, lambda y: linearnet_hand(y, model), states(low, y0, seed))


@settings(max_examples=8, deadline=None)
@given(st.integers(3, 7), st.integers(0, 10**6))
def test_deep_linear_buffered_rhs(width, seed):
    model = ed.DeepLinear.decoupled(3, width, teacher_matrix([3.0, 1.5, 0.5], 3, 3),
                                    mode_init=0.1)
    low = ed.lower(model)
    y0 = low.pack(model.initial_state())
    check_calls(low, lambda y: deep_hand(y, model), states(low, y0, seed))


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(1, 4), st.integers(0, 10**6))
def test_user_network_buffered_rhs(m, dim, samples, seed):
    i, k, s = sp.symbols("i k s", integer=True)
    d, D, n = sp.symbols("d D n", integer=True, positive=True)
    a, W, X, Y = (sp.IndexedBase(name) for name in ("a", "W", "X", "Y"))
    alpha = sp.Symbol("alpha", positive=True)
    pre = sp.Sum(W[i, k] * X[s, k], (k, 0, D - 1))
    out = sp.Sum(a[i] * sp.tanh(pre), (i, 0, d - 1)) / alpha
    loss = sp.Sum((out - Y[s]) ** 2, (s, 0, n - 1)) / (2 * n)
    net = ed.Network("buffered_two_layer", params=[a, W], indices={i: d, k: D, s: n},
                     loss=loss, data=[X, Y], hyper=[alpha])
    rng = np.random.default_rng(seed)
    a0, W0 = rng.normal(size=m), rng.normal(size=(m, dim))
    X0, Y0 = rng.normal(size=(samples, dim)), rng.normal(size=samples)
    model = net.from_init({"a": a0, "W": W0}, X=X0, Y=Y0, alpha=1.5)
    low = ed.lower(model)
    y0 = low.pack(model.initial_state())
    hand = lambda y: two_layer_hand(y, m, X0, Y0, 1.5, "tanh")  # noqa: E731
    kept = []
    for y in states(low, y0, seed):
        r = low.rhs(0.0, y)
        np.testing.assert_allclose(r, hand(y), rtol=1e-12, atol=1e-13)
        kept.append((r, r.copy()))
    for r, copy in kept:
        np.testing.assert_array_equal(r, copy)


def test_linear1d_wide_rhs_unchanged_by_buffers():
    """Linear1D's temporaries are scalars: its source has no buffers and is the same."""
    model = ed.Linear1D(width=1, teacher=0.5, sigma_u=0.3, sigma_w=0.7, eta_w=0.5)
    low = ed.lower(model)
    assert "_b" not in low.sources["rhs"]
    y = low.pack(model.initial_state())
    u, w = y[:1], y[1:]
    r = model.x_var * model.kappa * (model.kappa * float(u @ w) - model.teacher)
    np.testing.assert_allclose(low.rhs(0.0, y),
                               np.concatenate([-model.eta_u * r * w, -model.eta_w * r * u]),
                               rtol=1e-14)


# ---------------------------------------------------------------- callers that keep results
def test_solve_ivp_with_buffers_is_bit_for_bit_the_unbuffered_run():
    """DOP853 keeps f(t, y) as its next step's first stage: with buffered temporaries the
    whole integration is the same, bit for bit, as with new arrays every call."""
    model = ed.TwoLayer(6, "1d-sine", activation="tanh", n=5, beta1=0.5, beta2=0.5)
    low = ed.lower(model)
    y0 = low.pack(model.initial_state())
    a = solve_ivp(low.rhs, (0, 3.0), y0, method="DOP853", rtol=1e-10, atol=1e-12)
    b = solve_ivp(lambda t, y: unbuffered(low, y), (0, 3.0), y0, method="DOP853",
                  rtol=1e-10, atol=1e-12)
    assert a.nfev == b.nfev
    np.testing.assert_array_equal(a.y, b.y)


def test_threads_get_their_own_buffers():
    model = ed.TwoLayer(40, "1d-sine", activation="tanh", n=30, beta1=0.5, beta2=0.5)
    low = ed.lower(model)
    y0 = low.pack(model.initial_state())
    ys = [y0 + 0.1 * k for k in range(4)]
    expected = [unbuffered(low, y) for y in ys]
    failures = []

    def run(k):
        for _ in range(200):
            if not np.array_equal(low.rhs(0.0, ys[k]), expected[k]):
                failures.append(k)
                return

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_complex_state_after_real_state_has_its_own_buffers():
    """Complex-step derivatives call the rhs on complex states: buffers per dtype."""
    model = ed.LinearNet(3, 4, 2, sigma_yx=[[1.0, 0.5, 0.0], [0.0, 1.0, 0.3]], eta2=0.5)
    low = ed.lower(model)
    y = low.pack(model.initial_state())
    v = np.random.default_rng(1).normal(size=y.shape)
    real = low.rhs(0.0, y)
    step = 1e-30
    cs = low.rhs(0.0, y + 1j * step * v)
    np.testing.assert_array_equal(cs.real, real)
    fd = (linearnet_hand(y + 1e-6 * v, model) - linearnet_hand(y - 1e-6 * v, model)) / 2e-6
    np.testing.assert_allclose(cs.imag / step, fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(low.rhs(0.0, y), real)


def test_integer_state_then_float_state_get_their_own_buffers():
    """The temporaries' dtype follows the state's (W2 W1 of integer matrices is integer):
    buffers are kept per state dtype, so a float state after an integer one is exact."""
    model = ed.LinearNet(3, 4, 2, sigma_yx=[[1.0, 0.5, 0.0], [0.0, 1.0, 0.3]], eta2=0.5)
    low = ed.lower(model)
    y = low.pack(model.initial_state())
    y_int = np.arange(y.size) % 3 - 1
    np.testing.assert_allclose(low.rhs(0.0, y_int), linearnet_hand(y_int.astype(float), model),
                               rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(low.rhs(0.0, y), linearnet_hand(y, model), rtol=1e-13,
                               atol=1e-14)


def test_mpmath_path_runs_the_same_source_without_buffers():
    import mpmath

    model = ed.LinearNet(3, 4, 2, sigma_yx=[[1.0, 0.5, 0.0], [0.0, 1.0, 0.3]], eta2=0.5)
    low = ed.lower(model)
    y = low.pack(model.initial_state())
    with mpmath.workdps(30):
        mp = low.rhs_mp(0.0, np.array([mpmath.mpf(v) for v in y], dtype=object))
    np.testing.assert_allclose(np.asarray(mp, float), low.rhs(0.0, y), rtol=1e-13)


def test_thread_buffers_are_per_thread_and_dtype_and_not_pickled():
    import pickle

    b = ThreadBuffers()
    assert b.get("d") is b.get("d")
    assert b.get("d") is not b.get("D")
    other = []
    t = threading.Thread(target=lambda: other.append(b.get("d")))
    t.start()
    t.join()
    assert other[0] is not b.get("d")
    b.get("d")[0] = np.ones(3)
    assert pickle.loads(pickle.dumps(b)).get("d") == {}


def test_relu_kink_integration_with_buffers_is_bit_for_bit_the_unbuffered_one():
    """The kink scheme keeps frozen-pattern derivatives (memoized states, Filippov's
    correction in place on the result, dense output): the buffered frozen rhs changes
    no bit of a run through kinks and sliding."""
    from exactdyn.numeric.layer_flow import LayerLoweredFlow

    model = ed.TwoLayer(8, "1d-sine", activation="relu", n=6, beta1=0.3, beta2=0.3, seed=2)
    times = np.linspace(0.0, 20.0, 5)
    ed.lower(model)  # registers the family's numerics
    buffered = LayerLoweredFlow(model)
    plain = LayerLoweredFlow(model)
    plain.source_roles = plain.source_roles - {"rhs_out"}
    plain._rhs_out = None
    ys_b, stats_b = buffered.integrate(times)
    ys_p, stats_p = plain.integrate(times)
    assert stats_b["kinks"] == stats_p["kinks"] > 0
    np.testing.assert_array_equal(ys_b, ys_p)
