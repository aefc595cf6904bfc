"""Arbitrary-precision integration: exact solutions, invariants, convergence, backends."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import exactdyn as ed
from exactdyn.errors import IntegrationError
from exactdyn.numeric.highprec import integrate_high_precision
from exactdyn.numeric.taylor import UnsupportedExpression
from exactdyn.symbolic.sums import NEURON_INDEX, SUM_INDEX, WIDTH


def _rel(a, b):
    return abs(a - b) / max(abs(b), mpmath.mpf(10) ** -300)


# -- exact solutions ------------------------------------------------------------------------

@pytest.mark.parametrize("a, c", [(0.5, 1.0), (1.3, 2.5), (0.01, 0.75)])
def test_logistic_balanced_width_one(a, c):
    """u0 = w0 = a: k' = 0, omega = 2, so p = u w is logistic (MATH.md section 1)."""
    times = [0.0, 0.3, 1.0, 3.0, 10.0]
    tr = ed.solve(ed.Linear1D.from_init([a], [a], teacher=c), times, precision=50)
    with mpmath.workdps(60):
        p0 = mpmath.mpf(a) ** 2
        cc = mpmath.mpf(c)
        for t, got in zip(times, tr.observables["end_to_end"], strict=True):
            exact = cc / (1 + (cc / p0 - 1) * mpmath.exp(-2 * cc * mpmath.mpf(t)))
            assert _rel(got, exact) < mpmath.mpf(10) ** -40, (t, got, exact)


def _scalar_flow(rhs_of_x):
    """A one-variable width-1 'flow' x' = rhs(x) in the symbolic format of GradientFlow."""
    x = sp.IndexedBase("x")
    flow = SimpleNamespace(rhs={x: rhs_of_x(x[NEURON_INDEX])},
                           network=SimpleNamespace(params=(x,)))
    return SimpleNamespace(flow=flow, param_symbols=(), param_values=(), size=1,
                           slices={"x": slice(0, 1)}, model=SimpleNamespace(width=1))


@pytest.mark.parametrize("rhs, exact", [
    (lambda x: -x ** 2, lambda y0, t: y0 / (1 + y0 * t)),
    (lambda x: sp.exp(-x), lambda y0, t: mpmath.log(t + mpmath.exp(y0))),
    (lambda x: sp.sqrt(x), lambda y0, t: (mpmath.sqrt(y0) + t / 2) ** 2),
    (lambda x: sp.tanh(x), lambda y0, t: mpmath.asinh(mpmath.sinh(y0) * mpmath.exp(t))),
    (lambda x: 1 / x, lambda y0, t: mpmath.sqrt(y0 ** 2 + 2 * t)),
    (lambda x: x * sp.log(x), lambda y0, t: mpmath.exp(mpmath.log(y0) * mpmath.exp(t))),
    (lambda x: x ** 3 / 5 - sp.Rational(1, 3), None),
], ids=["square", "exp", "sqrt", "tanh", "reciprocal", "log", "cubic"])
def test_elementary_recurrences(rhs, exact):
    lowered = _scalar_flow(rhs)
    times = np.array([0.0, 0.25, 0.7, 1.5])
    ys, stats = integrate_high_precision(lowered, np.array([1.25]), times, 40, "taylor", None)
    with mpmath.workdps(60):
        if exact is None:  # against mpmath's own Taylor integrator
            f = mpmath.odefun(lambda t, y: mpmath.mpf(y) ** 3 / 5 - mpmath.mpf(1) / 3, 0,
                              mpmath.mpf(1.25))
            exact = lambda y0, t: f(t)  # noqa: E731
        for t, row in zip(times, ys, strict=True):
            ref = exact(mpmath.mpf(1.25), mpmath.mpf(t))
            assert _rel(row[0], ref) < mpmath.mpf(10) ** -35, (t, row[0], ref)


def test_width_generic_reduction_with_width_symbol():
    """x_j' = -(sum_i x_i)/d: the mean decays like e^{-t}, deviations stay put."""
    x = sp.IndexedBase("x")
    lowered = _scalar_flow(lambda _x: -sp.Sum(x[SUM_INDEX], (SUM_INDEX, 0, WIDTH - 1)) / WIDTH)
    lowered.model.width = 3
    lowered.size = 3
    lowered.slices = {"x": slice(0, 3)}
    y0 = np.array([1.0, -0.5, 2.0])
    ys, _ = integrate_high_precision(lowered, y0, np.array([2.0]), 50, "taylor", None)
    with mpmath.workdps(60):
        mean0 = mpmath.mpf(2.5) / 3
        for got, v in zip(ys[0], y0, strict=True):
            ref = v - mean0 + mean0 * mpmath.exp(-2)
            assert _rel(got, ref) < mpmath.mpf(10) ** -45


def test_unsupported_function_is_named():
    lowered = _scalar_flow(lambda x: sp.sin(x))
    with pytest.raises(UnsupportedExpression, match="sin"):
        integrate_high_precision(lowered, np.array([1.0]), np.array([1.0]), 20, "taylor", None)


def test_blow_up_raises_integration_error_with_time():
    lowered = _scalar_flow(lambda x: x ** 2)  # x = 1/(1 - t): pole at t = 1
    with pytest.raises(IntegrationError) as info:
        integrate_high_precision(lowered, np.array([1.0]), np.array([2.0]), 16, "taylor", None)
    assert 0.99 < info.value.t_reached <= 1.0


# -- invariants, float64, convergence ---------------------------------------------------------

def _invariants(tr, eta_u=1.0, eta_w=1.0):
    out = []
    with mpmath.workdps(80):
        for u, w in zip(tr.state["u"], tr.state["w"], strict=True):
            uu = mpmath.fsum(x * x for x in u)
            ww = mpmath.fsum(x * x for x in w)
            uw = mpmath.fsum(x * y for x, y in zip(u, w, strict=True))
            out.append((uu / eta_u - ww / eta_w, uu * ww - uw ** 2, uu / eta_u + ww / eta_w,
                        uu * ww))
    return out


def test_conservation_width_8_at_50_digits():
    model = ed.Linear1D(width=8, seed=3, eta_u=0.7, eta_w=1.6, teacher=-1.5)
    tr = ed.solve(model, [0.0, 0.5, 2.0, 7.0, 20.0], precision=50)
    inv = _invariants(tr, model.eta_u, model.eta_w)
    q1_0, q2_0, s1_0, s2_0 = inv[0]
    for q1, q2, _s1, _s2 in inv[1:]:
        assert abs(q1 - q1_0) / s1_0 < mpmath.mpf(10) ** -45
        assert abs(q2 - q2_0) / s2_0 < mpmath.mpf(10) ** -45


def test_agrees_with_float64_and_converges():
    model = ed.Linear1D(width=8, seed=1, kappa=0.8, teacher=1.7)
    times = [0.1, 1.0, 4.0, 10.0]
    ref = ed.solve(model, times, precision=60)
    low = ed.solve(model, times, precision=30)
    f64 = ed.solve(model, times, rtol=1e-13)
    with mpmath.workdps(70):
        for name in ("u", "w"):
            r = ref.state[name]
            scale = max(abs(x) for x in r.ravel())
            pairs = zip(low.state[name].ravel(), r.ravel(), strict=True)
            err30 = max(abs(a - b) for a, b in pairs)
            assert err30 / scale < mpmath.mpf(10) ** -28
            err64 = np.max(np.abs(f64.state[name] - r.astype(float)))
            assert err64 / float(scale) < 1e-10


def test_output_contract_and_counts():
    """Shapes, types, repeated times, t = 0, and an evaluation-count cap (no timing)."""
    model = ed.Linear1D(width=8)
    lowered = ed.lower(model)
    y0 = lowered.pack(model.initial_state())
    times = np.array([0.0, 0.0, 1.0, 1.0, 10.0])
    ys, stats = integrate_high_precision(lowered, y0, times, 50, "taylor", None)
    assert ys.shape == (5, 16) and ys.dtype == object
    assert all(isinstance(v, mpmath.mpf) for v in ys.ravel())
    assert [ys[0, i] == mpmath.mpf(float(y0[i])) for i in range(16)] == [True] * 16
    assert list(ys[2]) == list(ys[3]) and list(ys[0]) == list(ys[1])
    assert {"steps", "order", "nfev"} <= set(stats)
    assert stats["steps"] <= 40  # 33 when written; a regression in step control fails here
    assert stats["order"] <= 70


def test_tolerance_changes_order():
    model = ed.Linear1D(width=2, seed=5)
    lowered = ed.lower(model)
    y0 = lowered.pack(model.initial_state())
    _, coarse = integrate_high_precision(lowered, y0, np.array([1.0]), 50, "taylor", 1e-20)
    _, fine = integrate_high_precision(lowered, y0, np.array([1.0]), 50, "taylor", None)
    assert coarse["order"] < fine["order"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(width=st.integers(1, 4), kappa_sign=st.sampled_from([-1.0, 1.0]),
       teacher=st.sampled_from([-2.0, -0.5, 0.5, 2.0]),
       log_scale=st.floats(-3, 1), seed=st.integers(0, 10_000))
def test_property_invariants_and_float64(width, kappa_sign, teacher, log_scale, seed):
    scale = 10.0 ** log_scale
    rng = np.random.default_rng(seed)
    u0, w0 = rng.normal(0, scale, width), rng.normal(0, scale, width)
    model = ed.Linear1D.from_init(u0, w0, kappa=0.9 * kappa_sign, teacher=teacher)
    times = [0.5, 2.0]
    tr = ed.solve(model, times, precision=30)
    inv = _invariants(tr)
    with mpmath.workdps(40):
        exact0 = {"u": [[mpmath.mpf(x) for x in u0]], "w": [[mpmath.mpf(x) for x in w0]]}
        init = _invariants(SimpleNamespace(state=exact0))[0]
        for q1, q2, s1, s2 in inv:
            assert abs(q1 - init[0]) / s1 < mpmath.mpf(10) ** -26
            assert abs(q2 - init[1]) / s2 < mpmath.mpf(10) ** -26
    f64 = ed.solve(model, times, rtol=1e-13)
    for name in ("u", "w"):
        ref = tr.state[name].astype(float)
        assert np.max(np.abs(f64.state[name] - ref)) <= 1e-9 * max(np.max(np.abs(ref)), scale)


# -- backends --------------------------------------------------------------------------------

def test_heyoka_agrees_with_taylor():
    pytest.importorskip("heyoka", reason="heyoka (optional extra exactdyn[heyoka]) not installed")
    model = ed.Linear1D(width=4, seed=2, kappa=-1.2, eta_w=0.5)
    times = [0.0, 0.7, 3.0, 3.0, 10.0]
    a = ed.solve(model, times, precision=50)
    b = ed.solve(model, times, precision=50, method="heyoka")
    with mpmath.workdps(60):
        for name in ("u", "w"):
            scale = max(abs(x) for x in a.state[name].ravel())
            pairs = zip(a.state[name].ravel(), b.state[name].ravel(), strict=True)
            err = max(abs(x - y) for x, y in pairs)
            assert err / scale < mpmath.mpf(10) ** -40


def test_heyoka_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "heyoka", None)
    with pytest.raises(ValueError, match=r"pip install exactdyn\[heyoka\]"):
        ed.solve(ed.Linear1D(width=2), [1.0], precision=20, method="heyoka")


def test_fixed_point_and_mpfr_engines_agree():
    """The polynomial fast path (fixed point) and the general mpfr engine give the same
    numbers to the requested precision, including a small init (dynamic range)."""
    from exactdyn.numeric.highprec import _integrate_taylor

    model = ed.Linear1D.from_init([1e-3, -2e-3, 0.5], [2e-3, 1e-3, -1e-3], kappa=1.3,
                                  teacher=-0.7, eta_u=2.0)
    lowered = ed.lower(model)
    y0 = lowered.pack(model.initial_state())
    times = np.array([0.0, 0.3, 2.0, 9.0])
    log_tol = -50 * np.log(10)
    a, sa = _integrate_taylor(lowered, y0, times, 50, log_tol, engine="fixed")
    b, sb = _integrate_taylor(lowered, y0, times, 50, log_tol, engine="mpfr")
    with mpmath.workdps(60):
        for x, y in zip(a.ravel(), b.ravel(), strict=True):
            assert abs(x - y) <= mpmath.mpf(10) ** -45 * max(abs(y), mpmath.mpf(10) ** -3)
    assert abs(sa["steps"] - sb["steps"]) <= 3


@pytest.mark.slow
def test_convergence_at_100_digits():
    """Precision 100 against a precision-200 reference (about 5 s)."""
    model = ed.Linear1D(width=8, seed=4, teacher=-0.8)
    ref = ed.solve(model, [3.0], precision=200)
    got = ed.solve(model, [3.0], precision=100)
    with mpmath.workdps(210):
        for name in ("u", "w"):
            r = ref.state[name][0]
            scale = max(abs(x) for x in r)
            err = max(abs(a - b) for a, b in zip(got.state[name][0], r, strict=True))
            assert err / scale < mpmath.mpf(10) ** -97


def test_vector_nonpolynomial_flow_against_odefun():
    """x_j' = -tanh(x_j) sqrt(sum_i x_i^2) + exp(-x_j)/d on width 3 (mpfr engine),
    against mpmath.odefun on the same equations written per neuron."""
    x = sp.IndexedBase("x")
    i, j = SUM_INDEX, NEURON_INDEX
    lowered = _scalar_flow(lambda _x: -sp.tanh(x[j]) * sp.sqrt(
        sp.Sum(x[i] ** 2, (i, 0, WIDTH - 1))) + sp.exp(-x[j]) / WIDTH)
    lowered.model.width, lowered.size, lowered.slices = 3, 3, {"x": slice(0, 3)}
    y0 = np.array([0.5, -1.25, 2.0])
    ys, stats = integrate_high_precision(lowered, y0, np.array([0.3]), 30, "taylor", None)
    with mpmath.workdps(35):
        def f(t, y):
            r = mpmath.sqrt(mpmath.fsum(v * v for v in y))
            return [-mpmath.tanh(v) * r + mpmath.exp(-v) / 3 for v in y]
        ref = mpmath.odefun(f, 0, [mpmath.mpf(v) for v in y0])(mpmath.mpf(0.3))
        for got, r in zip(ys[0], ref, strict=True):
            assert abs(got - r) < mpmath.mpf(10) ** -27


def test_regression_huge_state_and_tiny_first_step():
    """Regression: a state of 1e40 (beyond the working bits) once made the fixed-point
    shift negative, and a first step far below the time unit rounded to h = 0."""
    from exactdyn.numeric.highprec import _integrate_taylor

    model = ed.Linear1D.from_init([1.0, 0.5], [0.5, -0.25], teacher=1e80)
    lowered = ed.lower(model)
    y0 = lowered.pack(model.initial_state())
    times = np.array([1e-79, 1e-78])
    a, _ = _integrate_taylor(lowered, y0, times, 16, -16 * np.log(10), engine="fixed")
    b, _ = _integrate_taylor(lowered, y0, times, 16, -16 * np.log(10), engine="mpfr")
    for x, y in zip(a.ravel(), b.ravel(), strict=True):
        assert abs(x - y) <= 1e-14 * abs(y)
    assert a[-1, 0] > 1e39


def test_heyoka_cached_integrator_takes_new_hyperparameters():
    """The compiled heyoka integrator is reused across models of one width: the second
    model's hyperparameters and init must be the ones integrated."""
    pytest.importorskip("heyoka", reason="heyoka (optional extra exactdyn[heyoka]) not installed")
    for model in (ed.Linear1D(width=3, seed=7), ed.Linear1D(width=3, seed=8, kappa=-0.6,
                                                           teacher=2.5, eta_u=0.3)):
        a = ed.solve(model, [2.0], precision=50, method="heyoka")
        b = ed.solve(model, [2.0], precision=50)
        with mpmath.workdps(60):
            for name in ("u", "w"):
                scale = max(abs(x) for x in b.state[name][0])
                for x, y in zip(a.state[name][0], b.state[name][0], strict=True):
                    assert abs(x - y) / scale < mpmath.mpf(10) ** -40
