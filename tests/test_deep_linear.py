"""DeepLinear: derivation (against finite differences), lowering (against a hand-written
oracle), conservation along trajectories, closed form (against the integrator, mpmath,
sympy), and bad input."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

import exactdyn as ed
from exactdyn.closed_form.deep_linear import (
    ChainClosedForm,
    _phi_float,
    _phi_mp,
    _phi_plus_float,
    _phi_plus_mp,
    chain_solution,
    chain_time,
)
from exactdyn.flows import gradient_flow, lower
from exactdyn.models.deep_linear import teacher_matrix
from exactdyn.symbolic.deep_linear import _is_zero_matrix, derive_deep_linear


def _spd(rng, n):
    m = rng.normal(size=(n, n))
    return m @ m.T / n + 0.5 * np.eye(n)


def _loss(weights, syx, sxx):
    """Independent oracle: 1/2 E|Ax - y|^2 without E|y|^2/2, from the moments."""
    A = weights[-1]
    for w in reversed(weights[:-1]):
        A = A @ w
    return 0.5 * np.trace(A @ sxx @ A.T) - np.trace(syx @ A.T)


dims = st.integers(1, 4)


@pytest.mark.parametrize("depth", [2, 3, 4, 5])
def test_flow_is_proven_and_balancedness_conserved(depth):
    flow = derive_deep_linear(depth)
    assert flow.proven
    assert [q.name for q in flow.conserved] == [f"B_{l}" for l in range(1, depth)]
    assert all(q.proven for q in flow.conserved)


def test_matrix_identity_check_rejects_false_identities():
    n = sp.Symbol("n")
    a, b = sp.MatrixSymbol("a", n, n), sp.MatrixSymbol("b", n, n)
    assert not _is_zero_matrix(a * b - b * a)
    assert not _is_zero_matrix(a.T * a - a * a.T)
    assert _is_zero_matrix((a + b) * a - a * a - b * a)


@given(depth=st.integers(2, 4), width=dims, n_in=dims, n_out=dims, seed=st.integers(0, 99))
def test_rhs_is_minus_the_gradient_of_the_loss_by_finite_differences(depth, width, n_in,
                                                                      n_out, seed):
    rng = np.random.default_rng(seed)
    syx = rng.normal(size=(n_out, n_in))
    sxx = _spd(rng, n_in)
    model = ed.DeepLinear(depth=depth, width=width, in_dim=n_in, out_dim=n_out, sigma=0.8,
                          sigma_yx=syx, sigma_xx=sxx, seed=seed)
    lo = lower(model)
    W = [model.initial_state()[n] for n in model.state_names]
    rhs = lo.unpack(lo.rhs(0.0, lo.pack(model.initial_state())))
    h = 1e-6
    for l, name in enumerate(model.state_names):
        num = np.zeros_like(W[l])
        for idx in np.ndindex(W[l].shape):
            plus = [w.copy() for w in W]
            minus = [w.copy() for w in W]
            plus[l][idx] += h
            minus[l][idx] -= h
            num[idx] = -(_loss(plus, syx, sxx) - _loss(minus, syx, sxx)) / (2 * h)
        np.testing.assert_allclose(rhs[name], num, rtol=1e-6, atol=1e-7)


@given(depth=st.integers(2, 5), width=st.integers(1, 6), n_in=dims, n_out=dims,
       seed=st.integers(0, 99))
def test_lowered_rhs_and_observables_match_hand_written_oracle(depth, width, n_in, n_out,
                                                               seed):
    rng = np.random.default_rng(seed)
    syx = rng.normal(size=(n_out, n_in))
    model = ed.DeepLinear(depth=depth, width=width, in_dim=n_in, out_dim=n_out, sigma=0.7,
                          sigma_yx=syx, seed=seed)
    W = [model.initial_state()[n] for n in model.state_names]
    A = W[-1]
    for w in reversed(W[:-1]):
        A = A @ w
    G = A - syx
    ref = []
    for l in range(depth):
        left = np.eye(n_out)
        for w in W[:l:-1]:
            left = left @ w
        right = np.eye(n_in)
        for w in W[:l]:
            right = w @ right
        ref.append(-left.T @ G @ right.T)
    lo = lower(model)
    got = lo.unpack(lo.rhs(0.0, lo.pack(model.initial_state())))
    for name, r in zip(model.state_names, ref):
        np.testing.assert_allclose(got[name], r, rtol=1e-12, atol=1e-13)
    obs = lo.observables({k: v[None] for k, v in model.initial_state().items()})
    np.testing.assert_allclose(obs["end_to_end"][0], A, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(obs["loss"][0], 0.5 * np.sum(G**2), rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(obs["singular_values"][0], np.linalg.svd(A, compute_uv=False),
                               atol=1e-12)


def test_balancedness_matrices_constant_along_the_flow_with_correlated_inputs():
    rng = np.random.default_rng(4)
    model = ed.DeepLinear(depth=4, width=5, in_dim=3, out_dim=2, sigma=0.6,
                          sigma_yx=rng.normal(size=(2, 3)), sigma_xx=_spd(rng, 3), seed=2)
    traj = ed.solve(model, np.linspace(0, 5, 6))
    B = lower(model).conserved(traj.state)
    for b in B:
        assert np.abs(b - b[0]).max() <= 1e-9 * max(1.0, np.abs(b[0]).max())
    # ... and the flow is a gradient flow: the loss never increases.
    assert np.all(np.diff(traj["loss"]) <= 1e-12)


def test_gradient_flow_is_cached_per_depth():
    S = teacher_matrix([1.0], 1, 1)
    f2 = gradient_flow(ed.DeepLinear(depth=2, width=2, in_dim=1, out_dim=1, sigma_yx=S))
    f3 = gradient_flow(ed.DeepLinear(depth=3, width=2, in_dim=1, out_dim=1, sigma_yx=S))
    assert len(f2.params) == 2 and len(f3.params) == 3


# ---- closed form ---------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [2, 3, 4, 6])
def test_chain_closed_form_residual_simplifies_to_zero(depth):
    assert ChainClosedForm(depth).residual() == 0


@given(z=st.floats(-60, 200), q=st.sampled_from([1 / 3, 0.5, 0.6, 2 / 3, 0.75]))
def test_phi_against_mpmath_hypergeometric(z, q):
    with mpmath.workdps(40):
        qm = mpmath.mpf(q)
        zm = mpmath.mpf(z)
        ref = _phi_mp(zm, qm)
        if z < 20:  # where x = expit(z) is representable away from 1, use hyp2f1 itself
            x = 1 / (1 + mpmath.exp(-zm))
            direct = -(1 / qm) * x ** (-qm) * mpmath.hyp2f1(1, -qm, 1 - qm, x)
            assert abs(direct - ref) <= mpmath.mpf(10) ** -33 * abs(ref)
            # dPhi/dz = x^{-q}
            d = mpmath.diff(lambda zz: _phi_mp(zz, qm), zm)
            assert abs(d - x ** (-qm)) <= mpmath.mpf(10) ** -25 * abs(d)
    got = _phi_float(np.array([z]), q)[0]
    assert abs(got - float(ref)) <= 2e-14 * max(1.0, abs(float(ref)))


@given(depth=st.integers(3, 6), s=st.floats(0.2, 5), log_ratio=st.floats(0.01, 3))
def test_chain_solution_above_the_teacher_matches_the_integrated_scalar_ode(depth, s,
                                                                             log_ratio):
    u0 = s * 10**log_ratio
    t = np.linspace(0, 4 / s, 6)
    got = chain_solution(t, u0, s, depth)
    sol = solve_ivp(lambda _, y: depth * np.abs(y) ** (2 - 2 / depth) * (s - y), (0, t[-1]),
                    [u0], t_eval=t, rtol=1e-13, atol=1e-14 * s, method="DOP853")
    np.testing.assert_allclose(got, sol.y[0], rtol=2e-8)
    assert np.all(np.diff(got) <= 0) and np.all(got >= s)


@given(z=st.floats(1e-3, 200), q=st.sampled_from([1 / 3, 0.5, 0.6, 2 / 3, 0.75]))
def test_phi_plus_against_mpmath_hypergeometric(z, q):
    with mpmath.workdps(40):
        qm, zm = mpmath.mpf(q), mpmath.mpf(z)
        ref = _phi_plus_mp(zm, qm)
        if z < 20:
            w = -mpmath.expm1(-zm)  # = s/u
            direct = w ** (qm + 1) / (qm + 1) * mpmath.hyp2f1(1, qm + 1, qm + 2, w)
            assert abs(direct - ref) <= mpmath.mpf(10) ** -33 * max(1, abs(ref))
    got = _phi_plus_float(np.array([z]), q)[0]
    assert abs(got - float(ref)) <= 2e-14 * max(1.0, abs(float(ref)))


@given(depth=st.integers(2, 5), s=st.floats(0.2, 5), log_u0=st.floats(-5, -0.05))
def test_chain_solution_matches_the_integrated_scalar_ode(depth, s, log_u0):
    u0 = s * 10**log_u0
    t_end = 3 * chain_time(0.9 * s, u0, s, depth) if u0 < 0.9 * s else 3.0
    t = np.linspace(0, t_end, 7)
    got = chain_solution(t, u0, s, depth)
    sol = solve_ivp(lambda _, y: depth * np.abs(y) ** (2 - 2 / depth) * (s - y), (0, t_end),
                    [u0], t_eval=t, rtol=1e-13, atol=1e-14 * u0, method="DOP853")
    np.testing.assert_allclose(got, sol.y[0], rtol=2e-8)


def test_chain_solution_at_30_digits_against_mpmath_odefun():
    with mpmath.workdps(30):
        s, u0, L = mpmath.mpf(2), mpmath.mpf(0.01), 3  # the binary float 0.01
        f = mpmath.odefun(lambda _, u: L * u ** (2 - mpmath.mpf(2) / L) * (s - u), 0, u0)
        ref = f(mpmath.mpf(1))
    got = chain_solution([1.0], 0.01, 2.0, 3, precision=30)[0]
    with mpmath.workdps(30):
        assert abs(got - ref) <= mpmath.mpf(10) ** -26


def test_chain_time_depth_two_is_saxe():
    s, u0, u = 2.0, 1e-3, 1.5
    saxe = np.log(u * (s - u0) / (u0 * (s - u))) / (2 * s)
    assert chain_time(u, u0, s, 2) == pytest.approx(saxe, rel=1e-14)


def test_zero_teacher_mode_decays_explicitly():
    t = np.linspace(0, 3, 4)
    for L in (2, 3, 5):
        got = chain_solution(t, 0.5, 0.0, L)
        sol = solve_ivp(lambda _, y, L=L: -L * np.abs(y) ** (2 - 2 / L) * y, (0, 3), [0.5],
                        t_eval=t, rtol=1e-13, atol=1e-15, method="DOP853")
        np.testing.assert_allclose(got, sol.y[0], rtol=1e-10)


@pytest.mark.parametrize("depth", [2, 3, 4])
@pytest.mark.parametrize("shape", [(3, 3), (4, 2), (2, 3)])
def test_exact_matches_solve_on_decoupled_inits(depth, shape):
    out_dim, in_dim = shape
    svals = [2.0, 1.2, 0.7][:min(shape)]
    S = teacher_matrix(svals, out_dim, in_dim)
    r = min(shape)
    model = ed.DeepLinear.decoupled(depth, 5, S, mode_init=np.linspace(0.5, 0.3, r))
    t = np.linspace(0, 4, 9)
    rep = ed.verify(model, t)
    assert rep.passed, rep.table()
    a, b = ed.exact(model, t), ed.solve(model, t, rtol=1e-13)
    for name in model.state_names:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-9, atol=1e-10)


@settings(max_examples=15)
@given(depth=st.integers(2, 4), width=st.integers(1, 5), n_in=dims, n_out=dims,
       data=st.data())
def test_exact_agrees_with_integrator_over_drawn_hyperparameters(depth, width, n_in, n_out,
                                                                 data):
    r = min(n_in, n_out)
    svals = data.draw(st.lists(st.floats(0.3, 3.0), min_size=r, max_size=r))
    S = teacher_matrix(sorted(svals, reverse=True), n_out, n_in)
    k = min(r, width)
    frac = np.array(data.draw(st.lists(st.floats(0.05, 0.9), min_size=k, max_size=k)))
    s_sorted = np.sort(svals)[::-1][:k]
    model = ed.DeepLinear.decoupled(depth, width, S, mode_init=(frac * s_sorted) ** (1 / depth))
    rep = ed.verify(model, np.linspace(0, 2.0, 5))
    assert rep.passed, rep.table()


def test_depth_two_mode_opposing_the_teacher_decays_to_the_saddle():
    S = teacher_matrix([2.0, 1.0], 2, 2)
    W = ed.DeepLinear.decoupled(2, 3, S, mode_init=[0.8, 0.3]).initial_state()
    model = ed.DeepLinear.from_init([W["W1"], -W["W2"]], S)  # A0 = -diag(0.64, 0.09)
    t = np.linspace(0, 3, 7)
    rep = ed.verify(model, t)
    assert rep.passed, rep.table()
    assert np.all(np.abs(ed.exact(model, t)["singular_values"][-1]) < 1e-3)


def test_exact_at_precision_keeps_modes_in_mpmath():
    S = teacher_matrix([2.0, 1.0], 2, 2)
    model = ed.DeepLinear.decoupled(3, 3, S, mode_init=0.3)
    traj = ed.exact(model, [0.5, 1.0], precision=40)
    modes = traj.meta["modes"]
    assert isinstance(modes[0, 0], mpmath.mpf)
    with mpmath.workdps(40):
        f = mpmath.odefun(lambda _, u: 3 * u ** (mpmath.mpf(4) / 3) * (2 - u), 0,
                          mpmath.mpf(0.3) ** 3)
        assert abs(modes[1, 0] - f(1)) < mpmath.mpf(10) ** -30
        # every array at 40 digits: the loss is 1/2 sum (s - u)^2, A = diag(u) here.
        u = modes[1]
        assert all(isinstance(x, mpmath.mpf) for x in traj["end_to_end"].ravel())
        assert abs(traj["loss"][1] - ((2 - u[0]) ** 2 + (1 - u[1]) ** 2) / 2) < \
            mpmath.mpf(10) ** -38
        assert abs(traj["end_to_end"][1][0, 0] - u[0]) < mpmath.mpf(10) ** -38
        W = [traj[n][1] for n in ("W1", "W2", "W3")]
        assert abs((W[2] @ W[1] @ W[0])[1, 1] - u[1]) < mpmath.mpf(10) ** -37
    flt = ed.exact(model, [0.5, 1.0])
    np.testing.assert_allclose(traj.as_float()["end_to_end"], flt["end_to_end"], rtol=1e-14,
                               atol=1e-16)


@pytest.mark.parametrize("depth", [3, 4, 5])
def test_modes_opposing_the_teacher_decay_to_the_saddle(depth):
    """A balanced, aligned init whose end-to-end map opposes the teacher (W2 negated):
    u0 < 0, each mode decays to the saddle at 0 without reaching it. Closed form (the
    hypergeometric t(v), v = -u) against the float64 integrator and, at 30 digits, against
    the Taylor integrator of the full flow."""
    S = teacher_matrix([2.0, 1.0], 2, 2)
    m = ed.DeepLinear.decoupled(depth, 2, S, mode_init=[0.5, 0.25])
    W = [m.initial_state()[f"W{k + 1}"] for k in range(depth)]
    W[1] = -W[1]
    opposed = ed.DeepLinear.from_init(W, S)
    t = [0.0, 0.5, 2.0, 8.0]
    ex = ed.exact(opposed, t)
    sv = ex["singular_values"]
    assert np.all(np.diff(sv, axis=0) < 0)  # both modes shrink towards the saddle
    assert np.all(ex["end_to_end"][:, 0, 0] < 0)  # and never cross it
    assert ed.verify(opposed, t).passed
    rep = ed.verify(opposed, t[:3], precision=30)
    assert rep.passed and rep["end_to_end"].max_rel_error < 1e-25


def test_exact_refuses_inits_without_closed_form():
    S = teacher_matrix([2.0, 1.0], 2, 2)
    with pytest.raises(ValueError, match="not balanced"):
        ed.exact(ed.DeepLinear(depth=3, width=4, in_dim=2, out_dim=2, sigma_yx=S), [1.0])
    with pytest.raises(ValueError, match="whitened"):
        m = ed.DeepLinear.decoupled(2, 2, S, 0.1, sigma_xx=2 * np.eye(2))
        ed.exact(m, [1.0])
    # Balanced but not aligned with the teacher: rotate the input frame.
    c, s = np.cos(0.3), np.sin(0.3)
    R = np.array([[c, -s], [s, c]])
    m = ed.DeepLinear.decoupled(2, 2, S, mode_init=[0.5, 0.2])
    W1, W2 = m.initial_state()["W1"], m.initial_state()["W2"]
    with pytest.raises(ValueError, match="not aligned"):
        ed.exact(ed.DeepLinear.from_init([W1 @ R, W2], S), [1.0])


@pytest.mark.parametrize("depth, svals, shape", [(2, [3.0, 1.0], (2, 3)), (3, [2.0, 1.0], (2, 2))])
def test_closed_form_agrees_with_the_taylor_integrator_at_50_digits(depth, svals, shape):
    """The full matrix flow integrated at 50 digits (the matrix Taylor engine on the
    derived right-hand sides) against the scalar-chain closed form evaluated at 50 digits:
    agreement far below 1e-30 (issue: closed forms to 1e-30 at precision 50)."""
    S = teacher_matrix(svals, *shape)
    m = ed.DeepLinear.decoupled(depth=depth, width=3, sigma_yx=S, mode_init=0.25)
    rep = ed.verify(m, [0.0, 0.5, 1.5], precision=50)
    assert rep.passed
    for name in ("end_to_end", "loss", "singular_values"):
        assert rep[name].max_rel_error < 1e-40, (name, rep[name].max_rel_error)


def test_precision_rejects_atol():
    S = teacher_matrix([1.0], 1, 1)
    with pytest.raises(ValueError, match="atol"):
        ed.solve(ed.DeepLinear(depth=2, width=2, in_dim=1, out_dim=1, sigma_yx=S), [1.0],
                 precision=30, atol=1e-3)


# ---- model ---------------------------------------------------------------------------------
def test_random_init_is_seeded_with_variance_width_to_minus_gamma():
    S = teacher_matrix([1.0, 1.0], 2, 2)
    m = ed.DeepLinear(depth=3, width=400, in_dim=2, out_dim=2, gamma=1.5, sigma_yx=S, seed=7)
    a, b = m.initial_state(), m.initial_state()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert np.var(a["W2"]) == pytest.approx(400**-1.5, rel=0.02)
    assert m.init_std == pytest.approx(400**-0.75)
    m2 = ed.DeepLinear(depth=3, width=4, in_dim=2, out_dim=2, sigma=0.0, sigma_yx=S)
    assert all(np.all(v == 0) for v in m2.initial_state().values())


@pytest.mark.parametrize("kwargs, word", [
    ({"depth": 1}, "depth"), ({"depth": 0}, "depth"), ({"width": 0}, "width"),
    ({"in_dim": -1}, "in_dim"), ({"out_dim": 0}, "out_dim"), ({"sigma": -1.0}, "sigma"),
    ({"sigma_yx": np.ones((3, 2))}, "sigma_yx"), ({"sigma_yx": None}, "sigma_yx"),
    ({"sigma_xx": -np.eye(2)}, "sigma_xx"), ({"sigma_xx": np.ones((2, 2))}, "sigma_xx"),
    ({"sigma_xx": np.eye(3)}, "sigma_xx"), ({"sigma_xx": [[1.0, 0.5], [0.0, 1.0]]}, "sigma_xx"),
    ({"gamma": float("nan")}, "gamma"),
])
def test_bad_hyperparameters_name_the_parameter(kwargs, word):
    base = {"depth": 2, "width": 3, "in_dim": 2, "out_dim": 2, "sigma_yx": np.eye(2)}
    base.update(kwargs)
    with pytest.raises(ValueError, match=word):
        ed.DeepLinear(**base)


def test_from_init_shape_mismatches():
    S = np.eye(2)
    with pytest.raises(ValueError, match="shape mismatch"):
        ed.DeepLinear.from_init([np.ones((3, 2)), np.ones((2, 4))], S)
    with pytest.raises(ValueError, match="at least 2"):
        ed.DeepLinear.from_init([np.ones((2, 2))], S)
    with pytest.raises(ValueError, match="sigma_yx"):
        ed.DeepLinear.from_init([np.ones((3, 2)), np.ones((3, 3))], S)
    with pytest.raises(ValueError, match="one width"):
        ed.DeepLinear.from_init([np.ones((3, 2)), np.ones((4, 3)), np.ones((2, 4))], S)
    with pytest.raises(ValueError, match="weights"):
        ed.DeepLinear.from_init(np.ones((2, 2, 2)), S)
    with pytest.raises(ValueError, match="mode_init"):
        ed.DeepLinear.decoupled(2, 3, S, mode_init=[-1.0, 0.1])
    with pytest.raises(ValueError, match="teacher_svals"):
        teacher_matrix([1, 2, 3], 2, 2)
