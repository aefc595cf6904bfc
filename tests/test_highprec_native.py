"""``precision=N`` on a native float type (``np.longdouble``): the choice rule, the engines
against independent references (closed forms, ``mpfr`` recurrences, ``mpmath.odefun``) at
about twice the digits, over init scales from tiny to huge and widths from 1, and the local
error margin (:data:`~exactdyn.numeric.highprec.LOCAL_TOL_FACTOR`) on long horizons."""

from __future__ import annotations

import math
from types import SimpleNamespace

import gmpy2
import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import exactdyn as ed
from exactdyn.errors import IntegrationError
from exactdyn.numeric import highprec
from exactdyn.numeric.highprec import (
    NATIVE_GUARD_BITS,
    _integrate_taylor,
    integrate_high_precision,
    native_float_dtype,
)
from exactdyn.numeric.taylor import NativeFloatEngine, TaylorEngine, compile_flow
from exactdyn.symbolic.sums import NEURON_INDEX

LONGDOUBLE_BITS = np.finfo(np.longdouble).nmant + 1
needs_native_16 = pytest.mark.skipif(
    native_float_dtype(16) is None,
    reason=f"np.longdouble has {LONGDOUBLE_BITS} mantissa bits on this platform, fewer than "
           f"16 digits plus {NATIVE_GUARD_BITS} guard bits: precision=16 runs on mpz here")


def _scalar_flow(rhs_of_x):
    """A one-variable width-1 'flow' x' = rhs(x) in the symbolic format of GradientFlow."""
    x = sp.IndexedBase("x")
    flow = SimpleNamespace(rhs={x: rhs_of_x(x[NEURON_INDEX])},
                           network=SimpleNamespace(params=(x,)))
    return SimpleNamespace(flow=flow, param_symbols=(), param_values=(), size=1,
                           slices={"x": slice(0, 1)}, model=SimpleNamespace(width=1))


def _packed(tr):
    """The Linear1D state (u, w) at each output time, one row per time."""
    return np.concatenate([np.asarray(tr.state["u"]), np.asarray(tr.state["w"])], axis=1)


def _max_rel_err(got_rows, ref_rows, dps):
    """Largest entrywise error of each row relative to that row's sup norm (the whole
    state's size: the documented error target; one layer can be much smaller than the
    other, e.g. u -> 0 while w stays, and is then accurate to the state's size only)."""
    with mpmath.workdps(dps):
        worst = mpmath.mpf(0)
        for got, ref in zip(got_rows, ref_rows, strict=True):
            ref = [mpmath.mpf(v) for v in ref]
            scale = max(abs(v) for v in ref) or mpmath.mpf(1)
            err = max(abs(mpmath.mpf(a) - b) for a, b in zip(got, ref, strict=True))
            worst = max(worst, err / scale)
        return worst


# -- the choice rule -------------------------------------------------------------------------

@given(precision=st.integers(16, 2000))
def test_native_type_chosen_by_measured_mantissa(precision):
    needed = math.ceil(precision * math.log2(10)) + NATIVE_GUARD_BITS
    got = native_float_dtype(precision)
    assert (got is not None) == (LONGDOUBLE_BITS >= needed)
    if got is not None:
        assert got == np.dtype(np.longdouble)


@pytest.mark.parametrize("nmant, chosen", [(52, []), (63, [16]), (112, [16, 20, 30])])
def test_choice_follows_finfo_not_the_platform(monkeypatch, nmant, chosen):
    """A plain double (53 bits: Windows, ARM64 macOS), x87 extended (64) and IEEE quad
    (113, aarch64 Linux), as ``np.finfo`` would report them."""
    real_finfo = np.finfo
    monkeypatch.setattr(highprec.np, "finfo",
                        lambda t: SimpleNamespace(nmant=nmant) if t == np.longdouble
                        else real_finfo(t))
    picked = [p for p in (16, 20, 30, 40, 50) if highprec.native_float_dtype(p) is not None]
    assert picked == chosen


def test_native_engine_refused_where_too_short():
    lowered = ed.lower(ed.Linear1D(width=2))
    y0 = lowered.pack(ed.Linear1D(width=2).initial_state())
    with pytest.raises(ValueError, match="precision=50"):
        _integrate_taylor(lowered, y0, np.array([1.0]), 50, -50 * math.log(10),
                          engine="native")
    with pytest.raises(ValueError, match="engine"):
        _integrate_taylor(lowered, y0, np.array([1.0]), 16, -16 * math.log(10),
                          engine="float")


@needs_native_16
def test_solve_reports_its_engine():
    tr = ed.solve(ed.Linear1D(width=3), [1.0], precision=16)
    assert tr.meta["engine"] == f"longdouble ({LONGDOUBLE_BITS}-bit mantissa)"
    assert ed.solve(ed.Linear1D(width=3), [1.0], precision=30).meta["engine"] == "mpz"
    tr = ed.solve(ed.LinearNet(2, 3, 2), [1.0], precision=16)
    assert tr.meta["engine"].startswith("longdouble")


# -- coefficients against the mpfr recurrences ---------------------------------------------

@pytest.mark.parametrize("tau_exp", [-7, 0, 5])
def test_indexed_coefficients_against_mpfr_engine(tau_exp):
    r"""The native engine's normalized coefficients :math:`X_k = x_k\tau^k` against the
    ``mpfr`` engine's :math:`x_k` (200 bits) on the Linear1D program (reduction, products,
    scalings, a constant), any platform's longdouble: error within a few units of its last
    place of the largest coefficient of each order."""
    model = ed.Linear1D(width=5, seed=4, kappa=0.7, eta_u=1.3, teacher=-2.0)
    lowered = ed.lower(model)
    y0 = lowered.pack(model.initial_state())
    order = 12
    with gmpy2.context(gmpy2.get_context(), precision=200):
        values = {s: gmpy2.mpfr(float(v)) for s, v in
                  zip(lowered.param_symbols, lowered.param_values, strict=True)}
        slices = [lowered.slices[b.name] for b in lowered.flow.network.params]
        program = compile_flow(lowered.flow, values, model.width, slices)
        ref = TaylorEngine(program, order).coefficients(
            np.array([gmpy2.mpfr(float(v)) for v in y0], dtype=object)).copy()
        native = NativeFloatEngine(program, order, np.longdouble)
        got = native.coefficients(y0.astype(np.longdouble), tau_exp)
        ulp = gmpy2.mpfr(2) ** (-LONGDOUBLE_BITS + 1)
        for k in range(order + 1):
            tau_k = gmpy2.mul_2exp(gmpy2.mpfr(1), tau_exp * k)
            scale = max(abs(v) for v in ref[k]) * tau_k
            for a, b in zip(got[k], ref[k], strict=True):
                assert abs(gmpy2.mpfr(str(a)) - b * tau_k) <= 32 * ulp * scale, (k, a, b)


# -- solutions against closed forms at about twice the digits -------------------------------

@needs_native_16
@pytest.mark.parametrize("a, c", [(0.5, 1.0), (1.3, 2.5), (0.01, 0.75), (1e-80, 2.0)])
def test_logistic_balanced_width_one_at_16_digits(a, c):
    """u0 = w0 = a, width 1: p = u w is logistic with rate 2c (MATH.md section 1)."""
    times = [0.0, 0.3, 1.0, 3.0, 10.0]
    tr = ed.solve(ed.Linear1D.from_init([a], [a], teacher=c), times, precision=16)
    assert tr.meta["engine"].startswith("longdouble")
    with mpmath.workdps(40):
        p0, cc = mpmath.mpf(a) ** 2, mpmath.mpf(c)
        for t, got in zip(times, tr.observables["end_to_end"], strict=True):
            exact = cc / (1 + (cc / p0 - 1) * mpmath.exp(-2 * cc * mpmath.mpf(t)))
            assert abs(got - exact) <= mpmath.mpf(10) ** -16 * abs(exact), (t, got, exact)


@needs_native_16
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(width=st.integers(1, 8), log_scale=st.floats(-150, 100), seed=st.integers(0, 10_000),
       kappa=st.sampled_from([-1.3, 0.4, 1.0]), teacher=st.sampled_from([-2.0, 0.5, 3.0]))
def test_linear1d_against_closed_form_over_init_scales(width, log_scale, seed, kappa, teacher):
    """Inits from 1e-150 (a saddle: the state grows from round-off size) to 1e100 (a
    radius of 1e-200: the time unit keeps the coefficients finite) against the Möbius
    closed form at 42 digits (not an integrator), to 10^-16 of the state's size."""
    scale = 10.0 ** log_scale
    rng = np.random.default_rng(seed)
    u0, w0 = rng.normal(0, scale, width), rng.normal(0, scale, width)
    model = ed.Linear1D.from_init(u0, w0, kappa=kappa, teacher=teacher)
    # The dynamics' time scale is 1/(kappa^2 |u||w|) for a large init, 1/kappa else.
    t_unit = 1.0 / max(1.0, kappa ** 2 * float(np.linalg.norm(u0) * np.linalg.norm(w0)))
    times = [0.25 * t_unit, 2.0 * t_unit, 6.0 * t_unit]
    got = ed.solve(model, times, precision=16)
    ref = ed.exact(model, times, precision=42)
    err = _max_rel_err(_packed(got), _packed(ref), 42)
    assert err <= mpmath.mpf(10) ** -16, mpmath.nstr(err, 3)


@needs_native_16
@pytest.mark.parametrize("depth", [2, 3])
def test_deep_linear_decoupled_mode_at_16_digits_to_full_precision(depth):
    """The decoupled deep chain on the matrix native engine: each mode's scalar ODE
    u' = L u^{2-2/L}(s - u) against mpmath.odefun at 30 digits, to 10^-16 relative (the
    existing matrix tests ask 10^-11 at every precision)."""
    svals, a0, t_end = [2.0, 0.5], 0.6, 1.5
    m = ed.DeepLinear.decoupled(depth=depth, width=2, sigma_yx=np.diag(svals), mode_init=a0)
    tr = ed.solve(m, [t_end], precision=16)
    assert tr.meta["engine"].startswith("longdouble")
    A = np.asarray(tr["end_to_end"])[-1]
    with mpmath.workdps(30):
        for alpha, s in enumerate(svals):
            L, sm = mpmath.mpf(depth), mpmath.mpf(s)
            f = mpmath.odefun(lambda _t, u, L=L, sm=sm: L * u ** (2 - 2 / L) * (sm - u), 0,
                              mpmath.mpf(a0) ** depth)
            ref = f(mpmath.mpf(t_end))
            assert abs(A[alpha, alpha] - ref) <= mpmath.mpf(10) ** -16 * abs(ref)


# -- failure -----------------------------------------------------------------------------------

@needs_native_16
@pytest.mark.parametrize("x0, pole", [(1.0, 0.5), (1e150, 0.5e-300)])
def test_blow_up_is_an_integration_error_with_the_time(x0, pole):
    """x' = x^3 from x0: x = x0/sqrt(1 - 2 x0^2 t), a pole at 1/(2 x0^2); the native
    engine stops with IntegrationError at the pole, whatever the state's size."""
    lowered = _scalar_flow(lambda x: x ** 3)
    with pytest.raises(IntegrationError) as info:
        integrate_high_precision(lowered, np.array([x0]), np.array([1.0]), 16)
    assert 0.99 * pole < info.value.t_reached <= pole


# -- the local error margin on long horizons -------------------------------------------------

_LONG_CASES = [
    ("square", lambda x: -x ** 2, lambda y0, t: y0 / (1 + y0 * t), 1.25, [1.0, 100.0, 1e4]),
    ("tanh", lambda x: sp.tanh(x), lambda y0, t: mpmath.asinh(mpmath.sinh(y0) * mpmath.exp(t)),
     1e-3, [1.0, 10.0, 40.0]),
    ("logistic", lambda x: x * (1 - x), lambda y0, t: 1 / (1 + (1 / y0 - 1) * mpmath.exp(-t)),
     1e-6, [5.0, 14.0, 30.0, 100.0]),
]


@pytest.mark.parametrize("digits", [16, 30, 50])
@pytest.mark.parametrize("name, rhs, exact, y0, times", _LONG_CASES,
                         ids=[c[0] for c in _LONG_CASES])
def test_local_tolerance_margin_keeps_n_digits(name, rhs, exact, y0, times, digits):
    """With the local target 10^-N / LOCAL_TOL_FACTOR, runs of 40-80 steps (decay over
    four decades of time, a tanh escape, a logistic passage from 1e-6) keep N digits
    against their closed forms at 2N + 10 digits, on all three engines (native at 16,
    mpz for the polynomial ones above, mpfr for tanh)."""
    ys, stats = integrate_high_precision(_scalar_flow(rhs), np.array([y0]), np.array(times),
                                         digits)
    assert stats["steps"] >= 30
    with mpmath.workdps(2 * digits + 10):
        for t, row in zip(times, ys, strict=True):
            ref = exact(mpmath.mpf(y0), mpmath.mpf(t))
            assert abs(row[0] - ref) <= mpmath.mpf(10) ** -digits * abs(ref), (t, row[0], ref)


@pytest.mark.parametrize("digits", [16, 30])
def test_saddle_escape_from_small_init_keeps_n_digits(digits):
    """Linear1D from a 1e-4 init escaping its saddle by t = 60 (tens of steps through the
    passage) against the closed form at 2N digits."""
    m = ed.Linear1D.from_init([1e-4, 2e-4, -1e-4], [3e-4, -1e-4, 2e-4], teacher=1.5)
    times = [5.0, 20.0, 60.0]
    got = ed.solve(m, times, precision=digits)
    ref = ed.exact(m, times, precision=2 * digits)
    err = _max_rel_err(_packed(got), _packed(ref), 2 * digits)
    assert err <= mpmath.mpf(10) ** -digits, mpmath.nstr(err, 3)
