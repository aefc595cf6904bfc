"""Closed form of the 1-D linear network (MATH.md §1) against independent references:
the float64 integrator, the reduced ODE differentiated numerically at high precision,
the 50-digit closed form, and Saxe et al.'s sigmoid."""

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import exactdyn as ed
from exactdyn.closed_form import linear1d_numeric as cfnum

# ---------------------------------------------------------------- oracles (test-side)


def constants_mp(m, dps=60):
    """omega, p*, k'^2, p0, K_inf computed here at high precision from the init."""
    with mpmath.workdps(dps):
        init = m.initial_state()
        u0 = [mpmath.mpf(float(x)) for x in init["u"]]
        w0 = [mpmath.mpf(float(x)) for x in init["w"]]
        eu, ew = mpmath.mpf(m.eta_u), mpmath.mpf(m.eta_w)
        kappa, sxx, c = mpmath.mpf(m.kappa), mpmath.mpf(m.x_var), mpmath.mpf(m.teacher)
        uu = mpmath.fsum(x * x for x in u0)
        ww = mpmath.fsum(x * x for x in w0)
        p0 = mpmath.fsum(x * y for x, y in zip(u0, w0))
        q1 = uu / eu - ww / ew
        q2 = uu * ww - p0**2
        kp2 = eu * ew * q1**2 / 4 + q2
        omega = 2 * kappa**2 * sxx * mpmath.sqrt(eu * ew)
        pstar = c / kappa
        K_inf = omega * mpmath.sqrt(pstar**2 + kp2)
        return {"omega": omega, "pstar": pstar, "kp2": kp2, "p0": p0, "K_inf": K_inf,
                "M": (mpmath.sqrt(ew / eu) * uu + mpmath.sqrt(eu / ew) * ww) / 2}


def horizon(m, n=50.0):
    K = float(constants_mp(m)["K_inf"])
    return n / K if K > 0 else 10.0


def assert_agree(a, b, rel, abs_, what=""):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b)), what
    err = np.abs(a - b)
    ok = (err <= rel * np.abs(b)) | (err <= abs_)
    if not np.all(ok):
        k = int(np.argmax(~ok))
        raise AssertionError(f"{what}: first mismatch at index {k}: {a[k]!r} vs {b[k]!r} "
                             f"(rel err {err[k] / max(abs(b[k]), 1e-300):.3e}); "
                             f"max abs err {err.max():.3e}")


def log_uniform(lo, hi):
    return st.floats(math.log10(lo), math.log10(hi)).map(lambda e: float(10.0**e))


def signed(lo, hi):
    return st.tuples(st.sampled_from([-1.0, 1.0]), log_uniform(lo, hi)).map(
        lambda t: t[0] * t[1])


hyper = st.fixed_dictionaries({
    "kappa": signed(1e-2, 1e2),
    "eta_u": log_uniform(1e-2, 1e2),
    "eta_w": log_uniform(1e-2, 1e2),
    "teacher": signed(1e-2, 1e2),
    "x_var": log_uniform(1e-2, 1e2),
})

random_models = st.builds(
    lambda h, width, su, sw, seed: ed.Linear1D(width=width, sigma_u=su, sigma_w=sw,
                                               seed=seed, **h),
    hyper, st.integers(1, 200), log_uniform(1e-4, 1e2), log_uniform(1e-4, 1e2),
    st.integers(0, 2**32 - 1))


def degenerate_init(kind, width, a, rng):
    """Explicit degenerate or near-degenerate (u0, w0); a = sqrt(eta_u/eta_w)."""
    w0 = rng.normal(size=width)
    if kind == "balanced_aligned":
        return a * w0, w0
    if kind == "anti_aligned":
        return -a * w0, w0
    if kind == "zero_readout":
        return np.zeros(width), w0
    if kind == "zero_input":
        return rng.normal(size=width), np.zeros(width)
    if kind == "both_zero":
        return np.zeros(width), np.zeros(width)
    if kind == "tiny_kprime":
        return a * w0 + 1e-9 * rng.normal(size=width), w0
    if kind == "tiny_kprime_anti":
        return -a * w0 + 1e-9 * rng.normal(size=width), w0
    raise ValueError(kind)


DEGENERATE = ["balanced_aligned", "anti_aligned", "zero_readout", "zero_input", "both_zero",
              "tiny_kprime", "tiny_kprime_anti"]


def saddle_passage(m):
    """k' << |p0|, |p*| and sign p0 != sign p*: p is driven to ~0 and (k' > 0) escapes
    after a time ~ ln(1/k')/K_inf, which float64 integration cannot time to 1e-9 (the
    integrator's own rounding acts as a k' of ~1e-16 * scale). Not compared pointwise."""
    c = constants_mp(m)
    return (c["p0"] * c["pstar"] < 0) and c["kp2"] < 1e-12 * (c["p0"] ** 2 + c["pstar"] ** 2)


def compare_saddle_passage_high_precision(m, digits=30):
    """A saddle passage is timed by ln k', out of float64's reach: compare the closed form
    with the 30-digit Taylor integrator instead (both at 30 digits)."""
    t = np.linspace(0.0, horizon(m), 6)
    ex = ed.exact(m, t, precision=digits)
    nu = ed.solve(m, t, precision=digits)
    rho0 = abs(m.kappa) * float(ex["ntk"][0]) / float(constants_mp(m)["omega"])
    with mpmath.workdps(digits):
        for a, b in zip(ex["end_to_end"], nu["end_to_end"]):
            assert abs(a - b) <= mpmath.mpf(10) ** (8 - digits) * max(abs(a), rho0), (a, b, m)
    return ex


def compare_exact_solve(m, npts=25, rtol=1e-12):
    """end_to_end of exact() and solve() agree pointwise: 1e-9 relative, or 1e-12
    absolute, or 1e-9 relative to |kappa| max(rho(t), rho(0)), rho = NTK/omega = sqrt(p^2 + k'^2).

    The last clause is the conditioning of p = u.w in a float64 state: an error eps in
    the state moves p by ~eps rho, so when |p*| << k' (kernel regime) no float64
    integration of (u, w) reaches 1e-9 relative on p (measured: even at rtol = 3e-14,
    scipy's floor, ~6% of the drawn random inits fail the first two clauses alone).
    """
    if saddle_passage(m):
        return compare_saddle_passage_high_precision(m)
    t = np.linspace(0.0, horizon(m), npts)
    ex = ed.exact(m, t)
    got = ed.solve(m, t, rtol=rtol)["end_to_end"]
    v = ex["end_to_end"]
    rho = np.abs(m.kappa) * np.asarray(ex["ntk"], float) / float(constants_mp(m)["omega"])
    err = np.abs(np.asarray(got, float) - v)
    # rho(0) enters too: near a saddle (k' ~ 0, p -> 0) the integrator's absolute error
    # is set by the initial scale of the state (atol), not by the tiny current value.
    ok = (err <= 1e-9 * np.abs(v)) | (err <= 1e-12) | (err <= 1e-9 * np.maximum(rho, rho[0]))
    if not np.all(ok):
        k = int(np.argmax(~ok))
        raise AssertionError(f"solve vs exact at t={t[k]!r}: {got[k]!r} vs {v[k]!r}, "
                             f"rho={rho[k]!r}; {m!r}")
    return ex


# ---------------------------------------------------------------- 4. exact vs solve


@given(random_models)
def test_exact_matches_integrator_random_init(m):
    ex = compare_exact_solve(m)
    K = float(constants_mp(m)["K_inf"])
    assert ex.meta["K_inf"] == pytest.approx(K, rel=1e-10)


@given(hyper, st.sampled_from(DEGENERATE), st.integers(1, 200), st.integers(0, 2**32 - 1),
       st.sampled_from([1 / 16, 1.0, 16.0]))
def test_exact_matches_integrator_degenerate_init(h, kind, width, seed, ratio):
    # eta_u/eta_w = 16^k: a = 4^k and sqrt(a) are exact binary numbers, so the init is
    # degenerate in the floats too (see test_exact_anti_aligned_stuck_with_irrational_sqrt_a
    # for what goes wrong otherwise).
    h = dict(h, eta_u=h["eta_w"] * ratio)
    a = math.sqrt(h["eta_u"] / h["eta_w"])
    u0, w0 = degenerate_init(kind, width, a, np.random.default_rng(seed))
    compare_exact_solve(ed.Linear1D.from_init(u0, w0, **h))


@pytest.mark.parametrize("kind", DEGENERATE)
@pytest.mark.parametrize("teacher", [1.0, -1.0, 0.0])
@pytest.mark.parametrize("width", [1, 7])
def test_exact_matches_integrator_degenerate_grid(kind, teacher, width):
    rng = np.random.default_rng(width)
    eta_u, eta_w = 8.0, 0.5  # a = 4, sqrt(a) = 2: exact
    u0, w0 = degenerate_init(kind, width, math.sqrt(eta_u / eta_w), rng)
    m = ed.Linear1D.from_init(u0, w0, kappa=-0.7, eta_u=eta_u, eta_w=eta_w, teacher=teacher,
                              x_var=2.0)
    ex = compare_exact_solve(m)
    precision = ex.precision  # a saddle passage is compared at 30 digits
    nu = ed.solve(m, ex.t, precision=precision)
    for name in ("u", "w"):
        a = np.asarray(ex[name], float)
        err = np.abs(np.asarray(ex[name] - nu[name], float))
        scale = np.maximum(np.abs(a).max(axis=1, keepdims=True), np.abs(a[0]).max())
        tol = 1e-9 if precision is None else 1e-20
        assert np.all(err <= tol * scale + (1e-12 if precision is None else 0)), name


def test_solve_survives_overflow_in_a_rejected_trial_step():
    """Regression: solve() once aborted here on an overflow in a trial stage that the
    step controller rejects (the trajectory itself stays bounded)."""
    m = ed.Linear1D(width=150, kappa=-1.4830261095969408, eta_u=19.32380909728074,
                    eta_w=85.00896966275167, sigma_u=1.0, sigma_w=1.0, teacher=1.0, x_var=1.0,
                    seed=3345)
    compare_exact_solve(m)


# ---------------------------------------------------------------- 6. high precision


def mp_p(m, t, dps):
    """p(t) from the closed-form evaluator behind exact(), at an mpf time (no rounding
    of t to float64, which exact() does)."""
    with mpmath.workdps(dps):
        C = cfnum.constants(m, cfnum.MpOps)
        p, _rho, _e2 = cfnum.evaluate_p(C, mpmath.mpf(t), cfnum.MpOps)
        return +p


def reduced_rhs(c, p):
    return c["omega"] * (c["pstar"] - p) * mpmath.sqrt(p**2 + c["kp2"])


HP_MODELS = {
    "random": lambda: ed.Linear1D(width=9, kappa=0.8, eta_u=2.0, eta_w=0.5, sigma_u=0.3,
                                  sigma_w=1.2, teacher=-1.5, x_var=1.7, seed=3),
    "small_init": lambda: ed.Linear1D(width=30, kappa=1.0, sigma_u=1e-3, sigma_w=1e-3,
                                      teacher=2.0, seed=5),
    "large_init": lambda: ed.Linear1D(width=30, kappa=-2.0, sigma_u=3.0, sigma_w=0.1,
                                      teacher=0.5, seed=6),
    "tiny_kprime_anti": lambda: ed.Linear1D.from_init(
        *degenerate_init("tiny_kprime_anti", 5, 4.0, np.random.default_rng(1)),
        eta_u=16.0, eta_w=1.0, teacher=1.0),
}


@pytest.mark.parametrize("name", sorted(HP_MODELS))
def test_exact_50_digits_solves_reduced_ode(name):
    m = HP_MODELS[name]()
    with mpmath.workdps(80):
        c = constants_mp(m, 80)
        K = c["K_inf"]
        for frac in ("0.3", "1", "4", "20"):
            t = mpmath.mpf(frac) / K
            p = mp_p(m, t, 80)
            # Explicit step: central differences, error ~h^2 ~ 1e-50, rounding ~1e-80/h.
            dp = mpmath.diff(lambda s: mp_p(m, s, 80), t, h=mpmath.mpf(10) ** -25 / K)
            expected = reduced_rhs(c, p)
            scale = c["omega"] * (abs(c["pstar"]) + abs(p)) * mpmath.sqrt(p**2 + c["kp2"])
            assert abs(dp - expected) <= mpmath.mpf(10) ** -40 * scale, (name, frac, dp, expected)
            # The function differentiated is exact()'s: same value at a float64 time.
            tf = float(t)
            p_pub = ed.exact(m, [tf], precision=50)["end_to_end"][0] / mpmath.mpf(m.kappa)
            assert abs(p_pub - mp_p(m, tf, 80)) <= mpmath.mpf(10) ** -48 * (
                abs(p_pub) + mpmath.sqrt(c["kp2"]) + abs(c["pstar"]))


@pytest.mark.parametrize("name", sorted(HP_MODELS))
def test_public_exact_derivative_at_t0(name):
    """mpmath.diff on the public exact(): at t = 0 one-sided steps 2^-k are exact floats."""
    m = HP_MODELS[name]()
    with mpmath.workdps(110):
        c = constants_mp(m, 110)
        scale_t = 2.0 ** math.floor(math.log2(1.0 / float(c["K_inf"])))
        h = mpmath.mpf(scale_t) * mpmath.mpf(2) ** -140

        def f(s):
            assert float(s) == s  # exactly representable: no rounding inside exact()
            return ed.exact(m, [float(s)], precision=100)["end_to_end"][0] / mpmath.mpf(m.kappa)

        dp = mpmath.diff(f, 0, h=h, direction=1)
        expected = reduced_rhs(c, c["p0"])
        scale = c["omega"] * (abs(c["pstar"]) + abs(c["p0"])) * mpmath.sqrt(c["p0"]**2 + c["kp2"])
        assert abs(dp - expected) <= mpmath.mpf(10) ** -40 * scale, (dp, expected)


FLOAT_VS_MP = {
    **{k: (k, 1.0, 1.0) for k in DEGENERATE},
    **{k + "_a4": (k, 16.0, 1.0) for k in ("balanced_aligned", "anti_aligned", "tiny_kprime",
                                         "tiny_kprime_anti")},
    "random": ("random", 0.3, 3.0),
    "tiny_scale": ("tiny_scale", 1.0, 1.0),
    "huge_scale": ("huge_scale", 1.0, 1.0),
}


def float_vs_mp_model(key, teacher):
    kind, eta_u, eta_w = FLOAT_VS_MP[key]
    rng = np.random.default_rng(11)
    width = 6
    if kind == "random":
        u0, w0 = rng.normal(size=width), rng.normal(size=width)
    elif kind == "tiny_scale":  # k'^2 below float64's range: exact() must not lose it
        u0, w0 = 1e-150 * rng.normal(size=width), 1e-150 * rng.normal(size=width)
    elif kind == "huge_scale":
        u0, w0 = 1e100 * rng.normal(size=width), 1e-100 * rng.normal(size=width)
    else:
        u0, w0 = degenerate_init(kind, width, math.sqrt(eta_u / eta_w), rng)
    return ed.Linear1D.from_init(u0, w0, kappa=1.3, eta_u=eta_u, eta_w=eta_w,
                                 teacher=teacher, x_var=0.8)


@pytest.mark.parametrize("teacher", [1.0, -1.0, 0.0])
@pytest.mark.parametrize("key", sorted(FLOAT_VS_MP))
def test_float64_exact_agrees_with_50_digits(key, teacher):
    """The stable float64 evaluation against the 50-digit one, up to t = 1e3/K_inf.

    u0 - a w0 is rounded once in float64, so the near-degenerate cases use an exactly
    representable a = sqrt(eta_u/eta_w) and sqrt(a) (a = 1 or 4): otherwise the problem itself is
    ill-conditioned in the inputs and no float64 evaluation can be asked for 1e-13.
    """
    m = float_vs_mp_model(key, teacher)
    c = constants_mp(m)
    K = float(c["K_inf"])
    T = 1e3 / K if K > 0 else 10.0
    t = np.concatenate([[0.0], np.geomspace(T * 1e-6, T, 40)])
    with np.errstate(over="raise"):
        f = ed.exact(m, t)
    hp = ed.exact(m, t, precision=50).as_float()
    for name in ("end_to_end", "loss", "ntk", "norm_u", "norm_w"):
        assert np.all(np.isfinite(f[name])), name
    for name in ("u", "w"):
        assert np.all(np.isfinite(f[name])), name
    al = f["alignment"]
    zero = (f["norm_u"] == 0) | (f["norm_w"] == 0)
    assert np.all(np.isfinite(al[~zero])), "alignment NaN at a nonzero state"
    assert np.all(np.abs(al[~zero]) <= 1 + 1e-12)
    # p: relative to itself, with a floor at rounding of the problem's own scales (p may
    # cross 0 on the way from p0 to p*, or underflow below float64's range at long times).
    floor = 1e-15 * float(abs(c["pstar"]) + abs(c["p0"]) + mpmath.sqrt(c["kp2"])) * abs(m.kappa)
    assert_agree(f["end_to_end"], hp["end_to_end"], 1e-13, max(floor, 1e-300),
                 f"end_to_end float64 vs 50 digits ({key}, c={teacher})")
    assert_agree(f["ntk"], hp["ntk"], 1e-13, 1e-300, "ntk")
    for name in ("u", "w"):
        ref = hp[name]
        scale = np.abs(ref).max(axis=1)
        err = np.abs(f[name] - ref).max(axis=1)
        init_scale = np.abs(hp[name][0]).max() + np.abs(hp["w" if name == "u" else "u"][0]).max()
        ok = err <= 1e-13 * scale + 1e-300 + 1e-200 * init_scale * (scale < 1e-250 * init_scale)
        assert np.all(ok), (name, key, (err / np.where(scale > 0, scale, 1)).max())


# ---------------------------------------------------------------- 7. known values


@pytest.mark.parametrize("a0,c", [(1e-3, 1.0), (0.5, 2.0), (3.0, 1.0), (1e-6, 0.3),
                                  (2.0, -1.0)])
def test_saxe_sigmoid_balanced_width_one(a0, c):
    """[SMG] p(t) = c e^{2ct}/(e^{2ct} - 1 + c/a0) for u0 = w0 = sqrt(a0) (c > 0),
    and the stuck-at-saddle decay for c < 0 (p0 > 0)."""
    r = math.sqrt(a0)
    m = ed.Linear1D.from_init([r], [r], teacher=c)
    T = 30.0 / abs(c)
    t = np.linspace(0.0, T, 61)
    with mpmath.workdps(40):
        if c > 0:
            ref = [c / (1 + (c / a0 - 1) * mpmath.exp(-2 * c * mpmath.mpf(x))) for x in t]
        else:  # p' = 2 p (c - p), p > 0: p = c p0 / (p0 - (p0 - c) e^{-2ct})
            ref = [c * a0 / (a0 - (a0 - c) * mpmath.exp(-2 * c * mpmath.mpf(x))) for x in t]
        ref = np.array([float(v) for v in ref])
    ex = ed.exact(m, t)
    nu = ed.solve(m, t)
    assert_agree(ex["end_to_end"], ref, 1e-13, 1e-300, "exact vs Saxe")
    assert_agree(nu["end_to_end"], ref, 1e-9, 1e-12, "solve vs Saxe")
    # Balanced stays balanced: u = w.
    assert np.allclose(ex["u"], ex["w"], rtol=1e-14, atol=0)


@pytest.mark.parametrize("width", [1, 5])
@pytest.mark.parametrize("pstar", [0.5, 2.0])
def test_stuck_at_saddle_kprime_zero(width, pstar):
    """k' = 0, p0 < 0 < p*: p -> 0 monotonically and never changes sign; also against
    p(t) = p* p0 / (p0 - (p0 - p*) e^{omega p* t}) (p' = omega p (p - p*) for p < 0).

    The sign and monotonicity are exact properties of the closed form; the float64
    integrator is held to its tolerance only (its rounding seeds the unstable direction
    at width > 1, so p may wander ~1e-14 |p0| across 0 near the saddle)."""
    rng = np.random.default_rng(width)
    w0 = rng.normal(size=width)
    u0 = -w0  # eta_u = eta_w: a = 1, anti-aligned, k' = 0
    m = ed.Linear1D.from_init(u0, w0, kappa=1.0, teacher=pstar)
    p0 = -float(np.dot(w0, w0))
    omega = 2.0
    t = np.linspace(0.0, 40.0 / (omega * pstar), 200)
    ex = ed.exact(m, t)
    nu = ed.solve(m, t)
    for tr, tol in ((ex, 1e-13), (nu, 1e-9)):
        p = tr["end_to_end"]
        assert p[0] == pytest.approx(p0, rel=1e-14)
        if tr is ex:
            assert np.all(p < 0), "p changed sign or hit 0 at finite time"
            assert np.all(np.diff(p) > 0), "not monotone"
            assert abs(p[-1]) < 1e-20 * abs(p0) * 1e4
        with mpmath.workdps(40):
            ref = np.array([float(pstar * p0 / (p0 - (p0 - pstar) * mpmath.exp(omega * pstar * x)))
                            for x in t])
        assert_agree(p, ref, tol, 1e-300 if tr is ex else 1e-12 * abs(p0), "stuck saddle")


@pytest.mark.parametrize("precision", [None, 50])
def test_exact_anti_aligned_stuck_with_irrational_sqrt_a(precision):
    """u0 = -2 w0 exactly, eta_u/eta_w = 4 exactly (a = 2): Q1 = |u0|^2/4 - |w0|^2 = 0 and
    Q2 = 0 in exact arithmetic, so k' = 0 and (MATH.md §1) p stays < 0 for ever when
    p* > 0 (stuck at the saddle)."""
    w0 = np.array([0.3, -1.1, 0.7])
    m = ed.Linear1D.from_init(-2 * w0, w0, eta_u=4.0, eta_w=1.0, teacher=1.0)
    c = constants_mp(m)
    assert c["kp2"] == 0
    t = np.array([0.0, 1.0, 5.0, 10.0, 20.0, 40.0, 80.0, 200.0])
    p = np.asarray(ed.exact(m, t, precision=precision)["end_to_end"], dtype=float)
    assert np.all(p <= 0), p  # observed: p(20) = 0.9998 in float64, p(80) = 1 at 50 digits
