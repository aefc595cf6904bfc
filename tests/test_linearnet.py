"""Two-layer linear networks with vector data and Kunin's single neuron (MATH.md §2),
against independent references: a hand-written loss (finite differences), the
conservation law, the integrator (float64 and 50 digits), Saxe's published sigmoid,
Kunin's Riccati equation in nu, and the implicit-bias endpoint."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sympy.matrices.expressions.matexpr import MatrixElement

import exactdyn as ed
from exactdyn.closed_form.linear import implicit_bias, kunin_nu
from exactdyn.flows import gradient_flow, lower

S23 = np.array([[2.0, 0.5, 0.0], [0.1, 1.0, 0.3]])


# ---------------------------------------------------------------- oracles (test-side)
def loss_oracle(W1, W2, sxx, syx):
    """E-loss up to a constant, written directly: 1/2 tr(W Sxx W^T) - tr(W Syx^T)."""
    W = W2 @ W1
    return 0.5 * np.trace(W @ sxx @ W.T) - np.trace(W @ syx.T)


def fd_gradient(f, X, h=1e-6):
    g = np.zeros_like(X)
    for idx in np.ndindex(X.shape):
        E = np.zeros_like(X)
        E[idx] = h
        g[idx] = (f(X + E) - f(X - E)) / (2 * h)
    return g


def close(a, b, rel=1e-9, abs_=1e-12):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.all(np.abs(a - b) <= np.maximum(abs_, rel * np.abs(a).max()))


def mp_maxdiff(a, b):
    return max((abs(x - y) for x, y in zip(np.ravel(a), np.ravel(b))), default=0)


def mp_scale(a):
    return max(abs(x) for x in np.ravel(a))


# ---------------------------------------------------------------- symbolic derivation
def test_conserved_matrix_is_proven_and_flow_is_in_matrix_form():
    flow = gradient_flow(ed.LinearNet())
    (C,) = flow.conserved
    assert C.proven and C.name == "C"
    for rhs in flow.rhs.values():  # structured: no scalarized entries
        assert not rhs.atoms(MatrixElement)
        assert rhs.atoms(sp.MatrixSymbol) >= set(flow.state)


def test_excess_loss_step_is_proven():
    net = ed.LinearNet().symbolic_network()
    assert all(s.proven is not False for s in net.loss_steps)


@settings(max_examples=15)
@given(st.integers(1, 4), st.integers(1, 5), st.integers(1, 4),
       st.floats(0.2, 3.0), st.floats(0.2, 3.0), st.integers(0, 10**6))
def test_rhs_is_minus_rate_times_fd_gradient_of_hand_written_loss(n_in, h, n_out, e1, e2, seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n_in, n_in))
    sxx = A @ A.T + 0.5 * np.eye(n_in)
    syx = rng.normal(size=(n_out, n_in))
    m = ed.LinearNet(n_in, h, n_out, sigma_yx=syx, sigma_xx=sxx, eta1=e1, eta2=e2,
                     scale1=0.7, scale2=0.7, seed=seed)
    st0 = m.initial_state()
    W1, W2 = st0["W1"], st0["W2"]
    low = lower(m)
    d = low.unpack(low.rhs(0.0, low.pack(st0)))
    g1 = fd_gradient(lambda X: loss_oracle(X, W2, sxx, syx), W1)
    g2 = fd_gradient(lambda X: loss_oracle(W1, X, sxx, syx), W2)
    assert np.allclose(d["W1"], -e1 * g1, rtol=1e-6, atol=1e-7)
    assert np.allclose(d["W2"], -e2 * g2, rtol=1e-6, atol=1e-7)
    # Jacobian (generated JVP) against central differences of the lowered rhs.
    y0 = low.pack(st0)
    J = low.jac(0.0, y0)
    Jfd = np.array([(low.rhs(0, y0 + 1e-6 * e) - low.rhs(0, y0 - 1e-6 * e)) / 2e-6
                    for e in np.eye(y0.size)]).T
    assert np.allclose(J, Jfd, rtol=1e-5, atol=1e-6)


def test_wide_hidden_layer_never_forms_hidden_by_hidden_products():
    from exactdyn.numeric import matrix_lowering as ml

    m = ed.LinearNet(3, 500, 2, sigma_yx=S23)
    low = lower(m)
    shapes = []

    def mm(a, b):
        out = a @ b
        shapes.append(out.shape)
        return out

    f = low._c.rhs.function(dict(ml.NUMPY_NAMESPACE, _T=ml._T, _tr=ml._tr, _mm=mm))
    st0 = m.initial_state()
    d1, d2 = f(st0["W1"], st0["W2"], *low.param_values,
               [np.empty_like(st0["W1"]), np.empty_like(st0["W2"])])
    assert np.allclose(np.concatenate([d1.ravel(), d2.ravel()]), low.rhs(0, low.pack(st0)))
    # W2^T (W2 W1 Sxx - Syx) and (...) W1^T: the residual (out x in) is formed once.
    # products: W2 W1, (W2 W1) Sxx, W2^T R, R W1^T — none hidden x hidden
    assert sorted(shapes) == sorted([(2, 3), (2, 3), (500, 3), (2, 500)])


# ---------------------------------------------------------------- conservation, observables
@settings(max_examples=10)
@given(st.floats(-1.0, 1.0), st.floats(0.3, 3.0), st.floats(0.3, 3.0), st.integers(0, 1000))
def test_conserved_matrix_along_solve_and_observables(lam, e1, e2, seed):
    m = ed.LinearNet(3, 4, 2, sigma_yx=S23, sigma_xx=[[1, 0.2, 0], [0.2, 1, 0], [0, 0, 2]],
                     eta1=e1, eta2=e2, scale1=0.4, scale2=0.3, seed=seed)
    tr = ed.solve(m, [0, 0.5, 2, 8])
    C = m.conserved(tr.state)
    assert np.abs(C - C[0]).max() < 1e-9 * max(1.0, np.abs(C[0]).max())
    W = tr["end_to_end"]
    assert W.shape == (4, 2, 3)
    assert np.allclose(W, tr.state["W2"] @ tr.state["W1"])
    # loss = 1/2 tr((W - W*) Sxx (W - W*)^T), W* = Syx Sxx^{-1}, vs the oracle + constant.
    ws = m.w_star()
    const = 0.5 * np.trace(ws @ m.sxx @ ws.T)
    oracle = [loss_oracle(a, b, m.sxx, S23) + const for a, b in
              zip(tr.state["W1"], tr.state["W2"])]
    assert np.allclose(tr["loss"], oracle, rtol=1e-10, atol=1e-12)
    assert np.allclose(tr["singular_values"], np.linalg.svd(W, compute_uv=False))
    assert np.all(np.diff(tr["loss"]) <= 1e-12)  # gradient flow decreases the loss


# ---------------------------------------------------------------- closed forms vs integrator
TIMES = [0.0, 0.3, 1.0, 3.0, 10.0, 30.0]


STRENGTH = st.floats(0.02, 1.0) | st.floats(-1.0, -0.02)


@settings(max_examples=12)
@given(st.lists(STRENGTH, min_size=2, max_size=2), st.lists(STRENGTH, min_size=2, max_size=2),
       st.floats(0.3, 3.0), st.floats(0.3, 3.0), st.integers(2, 5), st.integers(0, 1000))
def test_decoupled_closed_form_matches_integrator(a, b, e1, e2, hidden, seed):
    # Exclude inits next to the unstable saddle of a mode (a = -sqrt(eta2/eta1) b, where
    # k' = 0 and the exact solution sits on the saddle while rounding errors escape it).
    r = np.sqrt(e2 / e1)
    assume(all(abs(x + r * y) > 0.2 * (abs(x) + r * abs(y)) for x, y in zip(a, b)))
    m = ed.LinearNet.decoupled(S23, hidden=hidden, strengths=a, b_strengths=b, eta1=e1,
                               eta2=e2, seed=seed)
    ex, num = ed.exact(m, TIMES), ed.solve(m, TIMES, rtol=1e-13)
    for k in ("end_to_end", "loss", "singular_values"):
        assert close(ex[k], num[k]), k
    for k in ("W1", "W2"):
        assert close(ex.state[k], num.state[k]), k


@settings(max_examples=12)
@given(st.floats(-1.5, 1.5), st.floats(0.3, 3.0), st.floats(0.3, 3.0), st.floats(1e-3, 0.5),
       st.integers(1, 2), st.integers(0, 1000))
def test_lambda_balanced_riccati_matches_integrator(lam, e1, e2, scale, hidden, seed):
    m = ed.LinearNet.lambda_balanced(S23, lam, hidden=hidden, scale=scale, eta1=e1, eta2=e2,
                                     seed=seed)
    ex, num = ed.exact(m, TIMES), ed.solve(m, TIMES, rtol=1e-13)
    for k in ("end_to_end", "loss", "singular_values"):
        assert close(ex[k], num[k]), k


def test_zero_balanced_wide_hidden_matches_integrator():
    m = ed.LinearNet.zero_balanced(S23, hidden=40, scale=0.05, seed=3)
    ex, num = ed.exact(m, TIMES), ed.solve(m, TIMES, rtol=1e-13)
    assert close(ex["end_to_end"], num["end_to_end"])
    assert ex.state == {}  # the hidden frame is not determined by P = QQ^T


def test_riccati_long_times_do_not_overflow_and_reach_the_teacher():
    m = ed.LinearNet.zero_balanced(S23, hidden=2, scale=1e-3)
    tr = ed.exact(m, [0.0, 1e3, 1e5])
    assert np.all(np.isfinite(tr["end_to_end"]))
    assert np.allclose(tr["end_to_end"][-1], S23, atol=1e-12)
    # rank-1 bottleneck: the best rank-1 approximation (Eckart-Young), plateau 1/2 s_2^2.
    m1 = ed.LinearNet.zero_balanced(S23, hidden=1, scale=1e-3)
    tr1 = ed.exact(m1, [1e4])
    s = np.linalg.svd(S23, compute_uv=False)
    assert tr1["loss"][0] == pytest.approx(0.5 * s[1] ** 2, rel=1e-12)


@settings(max_examples=12)
@given(st.floats(-3.0, 3.0), st.floats(1e-3, 1.0), st.floats(0.3, 3.0), st.floats(0.3, 3.0),
       st.integers(1, 4), st.integers(0, 1000))
def test_single_neuron_closed_form_matches_integrator(delta, product, ea, ew, n, seed):
    beta = np.random.default_rng(seed).normal(size=n)
    m = ed.SingleNeuron(n, delta=delta, beta=beta, eta_a=ea, eta_w=ew, product=product,
                        seed=seed)
    ts = [0.0, 0.3, 1.0, 3.0, 10.0]
    ex, num = ed.exact(m, ts), ed.solve(m, ts, rtol=1e-13)
    for k in ("end_to_end", "loss", "a", "w", "mu"):
        assert close(ex[k], num[k], rel=1e-9, abs_=1e-11), k
    assert ex.model == "single_neuron"
    C = -m.conserved(num.state)[:, 0, 0] * ea * ew
    assert np.allclose(C, delta, atol=1e-10 * max(1, abs(delta)))


# ---------------------------------------------------------------- 50 digits
EXACT_INITS = [
    ("decoupled", lambda: ed.LinearNet.decoupled(np.diag([3.0, 1.5]), hidden=3,
                                                 strengths=[0.01, 0.3], b_strengths=[0.02, -0.1],
                                                 eta1=2.0, eta2=0.5, frame=np.eye(3, 2))),
    ("lambda=0.75", lambda: ed.LinearNet.from_init([[0.5, 0, 0], [0, 0.5, 0]], [[1, 0], [0, 1]],
                                                   S23)),
    ("zero-balanced", lambda: ed.LinearNet.from_init([[0.5, 0, 0], [0, 0.25, 0]],
                                                     [[0.5, 0], [0, 0.25]], S23)),
]


@pytest.mark.parametrize("name,make", EXACT_INITS, ids=[e[0] for e in EXACT_INITS])
def test_closed_forms_agree_with_taylor_integrator_at_50_digits(name, make):
    m = make()
    ts = [0.0, 0.5, 2.0]
    ex, num = ed.exact(m, ts, precision=50), ed.solve(m, ts, precision=50)
    for k in ("end_to_end", "loss", "singular_values"):
        with mpmath.workdps(50):
            assert mp_maxdiff(ex[k], num[k]) <= mpmath.mpf(10) ** -30 * mp_scale(ex[k]), k


@settings(max_examples=3)
@given(st.floats(-2.0, 2.0), st.floats(0.05, 1.0), st.integers(0, 100))
def test_single_neuron_at_50_digits(delta, product, seed):
    m = ed.SingleNeuron(2, delta=delta, beta=[1.0, -0.5], product=product, seed=seed,
                        eta_a=1.5)
    ts = [0.0, 1.0, 3.0]
    ex, num = ed.exact(m, ts, precision=50), ed.solve(m, ts, precision=50)
    for k in ("W1", "W2", "nu"):
        with mpmath.workdps(50):
            assert mp_maxdiff(ex[k], num[k]) <= mpmath.mpf(10) ** -30 * mp_scale(ex[k]), k


# ---------------------------------------------------------------- published references
def test_saxe_sigmoid_balanced_mode():
    """Balanced decoupled modes follow u(t) = s e^{2st}/(e^{2st} - 1 + s/u0) [SMG]."""
    s = np.array([3.0, 1.0])
    u0 = np.array([1e-3, 1e-2])
    m = ed.LinearNet.decoupled(np.diag(s), hidden=2, strengths=np.sqrt(u0))
    ts = np.linspace(0, 6, 13)
    tr = ed.exact(m, ts)
    modes = np.einsum("tii->ti", tr["end_to_end"])
    e = np.exp(2 * np.outer(ts, s))
    saxe = s * e / (e - 1 + s / u0)
    assert np.allclose(modes, saxe, rtol=1e-10, atol=1e-14)
    # and the learning time to reach u_f: t = ln[u_f (s - u0)/(u0 (s - u_f))]/(2s)
    uf = 0.5 * s
    t_learn = np.log(uf * (s - u0) / (u0 * (s - uf))) / (2 * s)
    for a in range(2):
        val = np.diag(ed.exact(m, [t_learn[a]])["end_to_end"][0])[a]
        assert val == pytest.approx(uf[a], rel=1e-10)


@pytest.mark.parametrize("delta,nu0_factor", [(0.0, 0.2), (1.5, 0.1), (-1.5, 0.3),
                                              (0.5, 5.0), (-0.5, -3.0)])
def test_kunin_nu_solves_its_riccati_equation_both_branches(delta, nu0_factor):
    s = 1.3
    D = np.hypot(delta, 2 * s)
    nu0 = nu0_factor * D
    c0 = delta + 2 * nu0
    assert (abs(c0) > D) == (abs(nu0_factor) >= 3)  # coth branch for the last two
    tau = np.linspace(0, 0.2, 9)
    nu = kunin_nu(delta, s, nu0, tau)
    with mpmath.workdps(40):
        for tv in tau[1:]:
            f = lambda x: kunin_nu(mpmath.mpf(delta), mpmath.mpf(s), mpmath.mpf(nu0),  # noqa
                                   [x], ops=mpmath)[0]
            x = mpmath.mpf(float(tv))
            lhs = mpmath.diff(f, x)
            v = f(x)
            resid = lhs - (mpmath.mpf(s) ** 2 - delta * v - v**2)
            assert abs(resid) < mpmath.mpf(10) ** -25 * (1 + abs(v) ** 2)
    assert nu[0] == pytest.approx(nu0)
    if abs(c0) < D:  # explicit tanh branch of MATH.md
        ref = 0.5 * (-delta + D * np.tanh(D * tau / 2 + np.arctanh(c0 / D)))
        assert np.allclose(nu, ref, rtol=1e-12)
    else:  # explicit coth branch
        ref = 0.5 * (-delta + D / np.tanh(D * tau / 2 + np.arctanh(D / c0)))
        assert np.allclose(nu, ref, rtol=1e-12)


def test_kunin_regimes_lazy_rich_rescaling():
    """delta >> 0: a barely moves (lazy: w does the work); delta << 0: w barely turns
    (rescaling); delta = 0 learns fastest in phi (rich)."""
    beta = np.array([1.0, 0.0])
    ts = [0.0, 5.0]
    lazy = ed.exact(ed.SingleNeuron.from_init(3.0, [0.0, 0.01], beta=beta), ts)
    resc = ed.exact(ed.SingleNeuron.from_init(0.01, [0.0, 3.0], beta=beta), ts)
    assert abs(lazy["a"][-1] / lazy["a"][0] - 1) < 0.1
    assert abs(resc["phi"][-1]) < 0.1  # w stays orthogonal to beta: only rescaled
    assert np.isfinite(resc["mu"]).all()


def test_implicit_bias_endpoint_low_rank_data():
    x = np.array([1.0, 2.0, -1.0])
    sxx = np.outer(x, x) + np.outer([0, 1.0, 1.0], [0, 1.0, 1.0])  # rank 2 of 3
    for delta in (2.0, 0.5):
        m = ed.SingleNeuron(3, delta=delta, beta=[0.5, 1.0, 0.3], sigma_xx=sxx, product=0.3,
                            seed=4)
        tr = ed.solve(m, [0.0, 200.0], rtol=1e-12)
        end = tr["a"][-1] * tr["w"][-1]
        assert np.allclose(end, implicit_bias(m), atol=1e-8)
        # it interpolates, and differs from the min-norm solution by a null-space vector
        assert np.allclose(sxx @ end, sxx @ m.beta, atol=1e-8)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs,match", [
    ({"in_dim": 0}, "in_dim"), ({"hidden": -1}, "hidden"), ({"eta1": 0}, "eta1"),
    ({"eta2": -1.0}, "eta2"), ({"sigma_yx": np.ones((2, 2))}, "sigma_yx"),
    ({"sigma_xx": [[1, 0, 0], [0, -1, 0], [0, 0, 1]]}, "positive definite"),
    ({"sigma_xx": [[1, 2, 0], [0, 1, 0], [0, 0, 1]]}, "symmetric"),
])
def test_bad_hyperparameters_raise_value_error(kwargs, match):
    base = dict(in_dim=3, hidden=3, out_dim=3)
    base.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        ed.LinearNet(**base)


def test_bad_inits_raise_value_error():
    with pytest.raises(ValueError, match="W2"):
        ed.LinearNet.from_init(np.ones((2, 3)), np.ones((2, 4)), S23)
    with pytest.raises(ValueError, match="sigma_yx"):
        ed.LinearNet.from_init(np.ones((2, 3)), np.ones((2, 2)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="hidden <= out_dim"):
        ed.LinearNet.lambda_balanced(S23, 0.5, hidden=3)
    with pytest.raises(ValueError, match="hidden <= in_dim"):
        ed.LinearNet.lambda_balanced(S23, -0.5, hidden=4)
    with pytest.raises(ValueError, match="no closed form"):
        ed.exact(ed.LinearNet(3, 2, 2, sigma_yx=S23), [1.0])
    with pytest.raises(ValueError, match="whitened"):
        ed.exact(ed.LinearNet(3, 1, 2, sigma_yx=S23, sigma_xx=2 * np.eye(3)), [1.0])
    with pytest.raises(ValueError, match="heyoka"):
        ed.solve(ed.SingleNeuron(2), [1.0], precision=20, method="heyoka")
    with pytest.raises(ValueError, match="positive semi-definite"):
        ed.SingleNeuron(2, sigma_xx=-np.eye(2))
    with pytest.raises(ValueError, match="product"):
        ed.SingleNeuron(2, product=0.0)


@pytest.mark.parametrize("lam", [-0.7, 0.0, 0.4])
def test_lambda_balanced_constructor_meets_its_constraint(lam):
    m = ed.LinearNet.lambda_balanced(S23, lam, hidden=2, eta1=2.0, eta2=0.5, seed=1)
    C = -np.sqrt(2.0 * 0.5) * m.conserved(m.initial_state())
    assert np.allclose(C, lam * np.eye(2), atol=1e-14)


def test_linear1d_path_untouched():
    low = lower(ed.Linear1D(width=4))
    assert low.sizes == {"u": 4, "w": 4}


def test_closed_form_proofs_residuals_are_exactly_zero():
    cf = ed.closed_form(ed.LinearNet())
    res = cf.residual()
    assert len(res) == 10
    assert all(r == 0 for r in res.values()), {k: v for k, v in res.items() if v != 0}
    assert cf.proven
    assert ed.closed_form(ed.SingleNeuron()).proven


def test_from_data_matches_moments_and_sample_loss():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(40, 3))
    Y = X @ rng.normal(size=(3, 2)) + 0.1 * rng.normal(size=(40, 2))
    m = ed.LinearNet.from_data(X, Y, hidden=2, scale1=0.3, scale2=0.3)
    tr = ed.solve(m, [0.0, 1.0])
    W = tr["end_to_end"]
    # the sample loss 1/(2n) sum |W x - y|^2 minus its least-squares minimum
    B, *_ = np.linalg.lstsq(X, Y, rcond=None)
    ls_min = 0.5 * np.mean(np.sum((X @ B - Y) ** 2, axis=1))
    sample = [0.5 * np.mean(np.sum((X @ w.T - Y) ** 2, axis=1)) - ls_min for w in W]
    assert np.allclose(tr["loss"], sample, rtol=1e-10)
    with pytest.raises(ValueError, match="positive definite"):
        ed.LinearNet.from_data(X[:2], Y[:2], hidden=2)
    with pytest.raises(ValueError, match="same number of rows"):
        ed.LinearNet.from_data(X, Y[:5], hidden=2)
