"""exactdyn's explicit Runge–Kutta steppers (:mod:`exactdyn.numeric.runge_kutta`), a port
of scipy's ``DOP853``/``RK45``/``RK23`` so that a float64 solve needs no ``scipy.integrate``
(issue 15, item 4).

Checked against two independent references:

- scipy's own classes, stepped side by side on several ODEs (linear systems of any
  dimension, stiff-ish ones, the pendulum, Van der Pol, Lotka–Volterra), forward and
  backward in time, over the valid range of tolerances: the same accepted times, the same
  number of evaluations, the same states and dense output (bit for bit is the aim; the
  assertion allows 1e-14 relative), and ``solve_ivp``'s ``t_eval`` output against the same
  output loop on the port;
- closed forms: exponential decay/growth, the harmonic oscillator (state and dense output
  between the steps) and a linear system through ``scipy.linalg.expm``, within the
  tolerance asked for.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st
from scipy.integrate._ivp import dop853_coefficients

from exactdyn.numeric import runge_kutta as rk

METHODS = ("DOP853", "RK45", "RK23")
#: RK23 (3rd order) takes ~1e5 steps per unit time at rtol 1e-12: tighter than this costs
#: minutes of test time and checks nothing the looser runs do not.
RK23_MIN_RTOL = 1e-7


def _rtol(method, rtol):
    return max(rtol, RK23_MIN_RTOL) if method == "RK23" else rtol


def _linear(M):
    return lambda t, y: M @ y


def _pendulum(t, y):
    return np.array([y[1], -np.sin(y[0]) + 0.1 * np.cos(t)])


def _van_der_pol(mu):
    return lambda t, y: np.array([y[1], mu * (1 - y[0] ** 2) * y[1] - y[0]])


def _lotka_volterra(t, y):
    return np.array([1.5 * y[0] - y[0] * y[1], -3.0 * y[1] + y[0] * y[1]])


def _lockstep(method, fun, y0, t0, t1, rtol, atol, first_step=None, max_step=np.inf):
    """Step the port and scipy's class side by side; returns the number of steps."""
    ours = rk.EXPLICIT_METHODS[method](fun, t0, y0, t1, rtol=rtol, atol=atol,
                                       first_step=first_step, max_step=max_step)
    theirs = getattr(scipy.integrate, method)(fun, t0, y0, t1, rtol=rtol, atol=atol,
                                              first_step=first_step, max_step=max_step)
    steps = 0
    while theirs.status == "running":
        assert ours.status == "running"
        m1, m2 = ours.step(), theirs.step()
        steps += 1
        assert (ours.status, m1) == (theirs.status, m2)
        if theirs.status == "failed":
            break
        assert ours.t == theirs.t and ours.t_old == theirs.t_old  # the same step sequence
        assert np.all(np.isfinite(theirs.y))  # (a comparison of NaNs would prove nothing)
        np.testing.assert_allclose(ours.y, theirs.y, rtol=1e-14, atol=1e-300)
        np.testing.assert_allclose(ours.f, theirs.f, rtol=1e-14, atol=1e-300)
        assert ours.h_abs == pytest.approx(theirs.h_abs, rel=1e-14)
        inside = np.linspace(ours.t_old, ours.t, 4)
        np.testing.assert_allclose(ours.dense_output()(inside),
                                   theirs.dense_output()(inside), rtol=1e-14, atol=1e-300)
        assert ours.nfev == theirs.nfev  # the dense output's extra stages counted too
        assert ours.step_size == theirs.step_size
    assert ours.status == theirs.status
    assert ours.nfev == theirs.nfev and ours.njev == ours.nlu == 0
    return steps


tolerances = st.tuples(st.floats(rk.MIN_RTOL, 1e-3), st.floats(1e-14, 1e-4))
spans = st.tuples(st.floats(-3.0, 3.0), st.floats(0.05, 20.0), st.booleans()).map(
    lambda a: (a[0], a[0] + (-a[1] if a[2] else a[1])))  # forward or backward in time


@given(method=st.sampled_from(METHODS), tol=tolerances, span=spans,
       n=st.integers(1, 6), seed=st.integers(0, 2**16),
       stiffness=st.sampled_from([1.0, 30.0, 300.0]))
def test_steps_states_and_evaluations_are_scipys_on_linear_systems(method, tol, span, n,
                                                                    seed, stiffness):
    rng = np.random.default_rng(seed)
    # Eigenvalues from -stiffness to about +0.3 (a stiff-ish system forces many rejected
    # steps at the stability limit; a slightly unstable one grows).
    Q = np.linalg.qr(rng.normal(size=(n, n)))[0]
    lam = -np.geomspace(1.0, stiffness, n) + rng.uniform(-0.3, 1.3, size=n)
    M = Q @ np.diag(lam) @ Q.T + 0.2 * rng.normal(size=(n, n))
    y0 = rng.normal(size=n)
    if span[1] < span[0]:
        M = -M  # backward in time the stable modes stay stable (no overflow to compare)
    if method == "RK23" and stiffness > 30:
        span = (span[0], span[0] + np.clip(span[1] - span[0], -2.0, 2.0))  # keep it short
    _lockstep(method, _linear(M), y0, span[0], span[1], _rtol(method, tol[0]), tol[1])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("fun, y0, t1", [
    (_pendulum, [1.0, 0.0], 30.0),
    (_pendulum, [2.5, 0.3], -12.0),
    (_van_der_pol(5.0), [2.0, 0.0], 15.0),  # stiff-ish relaxation oscillations
    (_lotka_volterra, [10.0, 5.0], 10.0),
])
def test_steps_states_and_evaluations_are_scipys_on_nonlinear_odes(method, fun, y0, t1):
    for rtol, atol in ((1e-3, 1e-6), (1e-8, 1e-10), (1e-12, 1e-12)):
        if method == "RK23" and rtol < RK23_MIN_RTOL:
            continue
        assert _lockstep(method, fun, y0, 0.0, t1, rtol, atol) > 0


@pytest.mark.parametrize("method", METHODS)
def test_first_step_and_max_step_are_honoured_as_scipy_does(method):
    steps = _lockstep(method, _pendulum, [1.0, 0.0], 0.0, 5.0, 1e-9, 1e-11,
                      first_step=1e-4, max_step=0.05)
    assert steps >= 100  # max_step bounds every step


@given(method=st.sampled_from(METHODS), tol=tolerances, backward=st.booleans(),
       k=st.integers(1, 40))
def test_output_at_t_eval_is_solve_ivps(method, tol, backward, k):
    # solve_ivp's t_eval loop (dense output of each step at the times it covers) on the
    # port gives solve_ivp's numbers.
    sign = -1.0 if backward else 1.0
    t_eval = sign * np.sort(np.random.default_rng(k).uniform(0, 8.0, size=k))
    t_eval = np.unique(t_eval) if not backward else -np.unique(-t_eval)
    rtol = _rtol(method, tol[0])
    ref = scipy.integrate.solve_ivp(_pendulum, (0.0, sign * 8.0), [1.0, 0.5], method=method,
                                    t_eval=t_eval, rtol=rtol, atol=tol[1])
    solver = rk.EXPLICIT_METHODS[method](_pendulum, 0.0, [1.0, 0.5], sign * 8.0,
                                         rtol=rtol, atol=tol[1])
    out, done = [], 0
    order = t_eval if not backward else -t_eval
    while solver.status == "running":
        solver.step()
        upto = int(np.searchsorted(order, sign * solver.t, side="right"))
        if upto > done:
            out.append(solver.dense_output()(t_eval[done:upto]))
            done = upto
    np.testing.assert_allclose(np.hstack(out), ref.y, rtol=1e-14, atol=1e-300)
    assert solver.nfev == ref.nfev


@pytest.mark.parametrize("method, rtol", [("DOP853", 1e-12), ("DOP853", 1e-6),
                                          ("RK45", 1e-10), ("RK23", 1e-7)])
@pytest.mark.parametrize("lam", [-2.0, 0.7])
def test_exponential_against_its_closed_form(method, rtol, lam):
    # y' = lam y, y(0) = 1: y(t) = exp(lam t), forward and backward.
    for t1 in (5.0, -5.0):
        solver = rk.EXPLICIT_METHODS[method](lambda t, y: lam * y, 0.0, [1.0], t1,
                                             rtol=rtol, atol=rtol * 1e-3)
        while solver.status == "running":
            solver.step()
            exact = np.exp(lam * solver.t)
            # The global error is a modest multiple of the local tolerance here.
            assert abs(solver.y[0] - exact) <= 50 * rtol * max(1.0, exact)
            ts = np.linspace(solver.t_old, solver.t, 7)
            np.testing.assert_allclose(solver.dense_output()(ts)[0], np.exp(lam * ts),
                                       rtol=100 * rtol)
        assert solver.status == "finished" and solver.t == t1


@pytest.mark.parametrize("method, rtol", [("DOP853", 1e-12), ("RK45", 1e-9),
                                          ("RK23", 1e-6)])
def test_harmonic_oscillator_against_its_closed_form(method, rtol):
    # x'' = -w^2 x, x(0) = 1, x'(0) = 0: (cos wt, -w sin wt); the energy is conserved too.
    w = 3.0
    solver = rk.EXPLICIT_METHODS[method](lambda t, y: np.array([y[1], -w * w * y[0]]), 0.0,
                                         [1.0, 0.0], 10.0, rtol=rtol, atol=rtol)
    while solver.status == "running":
        solver.step()
        t = solver.t
        np.testing.assert_allclose(solver.y, [np.cos(w * t), -w * np.sin(w * t)],
                                   atol=300 * rtol)
        ts = np.linspace(solver.t_old, t, 9)
        dense = solver.dense_output()(ts)
        np.testing.assert_allclose(dense, [np.cos(w * ts), -w * np.sin(w * ts)],
                                   atol=300 * rtol)
        energy = dense[0] ** 2 + (dense[1] / w) ** 2
        np.testing.assert_allclose(energy, 1.0, atol=300 * rtol)
        # the dense output meets the accepted states at both ends
        np.testing.assert_allclose(solver.dense_output()(solver.t), solver.y, rtol=1e-13)


def test_linear_system_against_the_matrix_exponential():
    rng = np.random.default_rng(3)
    M = rng.normal(size=(5, 5)) - 2 * np.eye(5)
    y0 = rng.normal(size=5)
    solver = rk.DOP853(_linear(M), 0.0, y0, 4.0, rtol=1e-12, atol=1e-14)
    while solver.status == "running":
        solver.step()
        ts = np.linspace(solver.t_old, solver.t, 5)
        exact = np.stack([scipy.linalg.expm(M * t) @ y0 for t in ts], axis=1)
        np.testing.assert_allclose(solver.dense_output()(ts), exact, atol=1e-10)


def test_the_tableaux_are_scipys_and_consistent():
    c = dop853_coefficients
    for name in ("A", "B", "C", "E3", "E5", "D"):
        assert np.array_equal(getattr(rk, f"DOP853_{name}"), getattr(c, name)), name
    assert (rk.DOP853_N_STAGES, rk.DOP853_N_STAGES_EXTENDED, rk.DOP853_INTERPOLATOR_POWER) \
        == (c.N_STAGES, c.N_STAGES_EXTENDED, c.INTERPOLATOR_POWER)
    for method in METHODS:
        ours, theirs = rk.EXPLICIT_METHODS[method], getattr(scipy.integrate, method)
        for attr in ("A", "B", "C", "order", "error_estimator_order", "n_stages"):
            assert np.array_equal(getattr(ours, attr), getattr(theirs, attr)), (method, attr)
        # Consistency (independent of scipy): rows of A sum to the nodes, weights to 1.
        s = ours.n_stages
        np.testing.assert_allclose(ours.A[:s, :s].sum(axis=1), ours.C, atol=1e-14)
        np.testing.assert_allclose(ours.B.sum(), 1.0, atol=1e-14)


def test_dop853_error_estimate_is_scipys():
    fun = _van_der_pol(2.0)
    ours = rk.DOP853(fun, 0.0, [2.0, 0.0], 3.0, rtol=1e-6, atol=1e-8)
    theirs = scipy.integrate.DOP853(fun, 0.0, [2.0, 0.0], 3.0, rtol=1e-6, atol=1e-8)
    ours.step()
    theirs.step()
    h = ours.t - ours.t_old
    np.testing.assert_array_equal(ours._estimate_error(ours.K, h),
                                  theirs._estimate_error(theirs.K, h))


@pytest.mark.parametrize("method", METHODS)
def test_corner_cases_as_scipy(method):
    cls, ref = rk.EXPLICIT_METHODS[method], getattr(scipy.integrate, method)
    # An empty state and a zero-length interval finish in one step with a constant dense
    # output.
    for y0, t1 in (([], 1.0), ([1.0, 2.0], 0.0)):
        a, b = cls(_linear(-np.eye(len(y0))), 0.0, y0, t1), \
            ref(_linear(-np.eye(len(y0))), 0.0, y0, t1)
        a.step()
        b.step()
        assert (a.status, a.t) == (b.status, b.t) == ("finished", t1)
        # One evaluation, f(t0, y0). Older scipy (1.10) spends a second one on a
        # zero-length interval (its initial step selection probes f there), so the count
        # is checked against the port's own rule, not against the installed scipy.
        assert a.nfev == 1 <= b.nfev
        np.testing.assert_array_equal(a.dense_output()([0.0, t1]), b.dense_output()([0.0, t1]))
    # A complex state is integrated in complex arithmetic (y' = i y: exp(i t)).
    z = cls(lambda t, y: 1j * y, 0.0, [1.0 + 0j], 2.0, rtol=1e-10, atol=1e-12)
    while z.status == "running":
        z.step()
    assert abs(z.y[0] - np.exp(2j)) < 1e-7
    # The step size collapses on a blow-up: the same failure message as scipy's.
    blow = (lambda t, y: y ** 2)
    a, b = cls(blow, 0.0, [1.0], 2.0), ref(blow, 0.0, [1.0], 2.0)
    while b.status == "running":
        assert a.step() == b.step()
        assert a.t == b.t
    assert a.status == b.status == "failed"
    with pytest.raises(RuntimeError, match="failed or finished"):
        a.step()


def test_bad_input_raises_naming_the_parameter():
    f = _linear(-np.eye(2))
    with pytest.raises(ValueError, match="rtol"):
        rk.DOP853(f, 0.0, [1.0, 1.0], 1.0, rtol=1e-17)
    with pytest.raises(ValueError, match="atol"):
        rk.DOP853(f, 0.0, [1.0, 1.0], 1.0, atol=-1.0)
    with pytest.raises(ValueError, match="atol"):
        rk.RK45(f, 0.0, [1.0, 1.0], 1.0, atol=[1e-6, 1e-6, 1e-6])
    with pytest.raises(ValueError, match="first_step"):
        rk.RK45(f, 0.0, [1.0, 1.0], 1.0, first_step=0.0)
    with pytest.raises(ValueError, match="first_step"):
        rk.RK45(f, 0.0, [1.0, 1.0], 1.0, first_step=2.0)
    with pytest.raises(ValueError, match="max_step"):
        rk.RK23(f, 0.0, [1.0, 1.0], 1.0, max_step=0.0)
    with pytest.raises(ValueError, match="y0"):
        rk.DOP853(f, 0.0, [[1.0, 1.0]], 1.0)
    with pytest.raises(ValueError, match="y0"):
        rk.DOP853(f, 0.0, [np.nan, 1.0], 1.0)
    with pytest.raises(TypeError):
        rk.DOP853(f, 0.0, [1.0, 1.0], 1.0, vectorized=True)
    solver = rk.DOP853(f, 0.0, [1.0, 1.0], 1.0)
    with pytest.raises(RuntimeError, match="after a successful step"):
        solver.dense_output()
    solver.step()
    with pytest.raises(ValueError, match="t must be"):
        solver.dense_output()(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="method"):
        rk.solver_class("Euler")


def test_solver_class_ports_the_explicit_methods_and_borrows_the_implicit_ones():
    for method in METHODS:
        assert rk.solver_class(method) is rk.EXPLICIT_METHODS[method]
    for method in ("Radau", "BDF", "LSODA"):
        assert rk.solver_class(method) is getattr(scipy.integrate, method)
