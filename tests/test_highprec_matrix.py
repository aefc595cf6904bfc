"""High precision for flows kept in matrix form (LinearNet, DeepLinear): the fixed-point
matrix Taylor engine checked against independent references.

* its Taylor coefficients against a hand-written Cauchy recurrence on the hand-written
  gradient-flow equations (no DAG, plain mpmath matrices), and the ``mpfr`` engine;
* ``solve(..., precision=N)`` against the Riccati closed form of LinearNet and the
  scalar-chain closed form of DeepLinear's decoupled modes, at 16, 30, 50 and 100 digits,
  to :math:`10^{-(N-5)}`;
* a generic (not closed-form) init with a non-identity input covariance against
  ``mpmath.odefun`` on the hand-written right-hand side.
"""

from __future__ import annotations

import gmpy2
import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import exactdyn as ed
from exactdyn.closed_form.deep_linear import chain_solution
from exactdyn.numeric.highprec import working_bits

S23 = np.array([[2.0, 0.5, 0.0], [0.1, 1.0, 0.3]])


# ------------------------------------------------------------------ hand-written reference
def _mp(a):
    return np.vectorize(lambda v: mpmath.mpf(float(v)), otypes=[object])(np.asarray(a))


def hand_written_rhs(weights, syx, sxx, rates):
    r"""Gradient flow of :math:`\tfrac12\operatorname{tr}(A\Sigma_{xx}A^\top)
    - \operatorname{tr}(\Sigma_{yx}^\top A)`, :math:`A = W_L\cdots W_1`, written out:
    :math:`\dot W_l = -\eta_l (W_L\cdots W_{l+1})^\top (A\Sigma_{xx} - \Sigma_{yx})
    (W_{l-1}\cdots W_1)^\top` (Saxe et al. 2014, Arora et al. 2018)."""
    L = len(weights)
    A = weights[0]
    for W in weights[1:]:
        A = W @ A
    R = A @ sxx - syx
    out = []
    for ell in range(L):
        left = np.eye(weights[-1].shape[0], dtype=object)
        for W in weights[ell + 1:][::-1]:
            left = left @ W
        right = np.eye(weights[0].shape[1], dtype=object)
        for W in weights[:ell]:
            right = W @ right
        out.append(-rates[ell] * (left.T @ R @ right.T))
    return out


def hand_written_taylor(weights, syx, sxx, rates, order):
    r"""Taylor coefficients :math:`W_{l,k}` of the flow at ``weights`` by the plain
    recurrence :math:`W_{k+1} = [F(W)]_k/(k+1)`, where :math:`[F(W)]_k` is obtained by
    evaluating the hand-written right-hand side on the truncated series with exact
    series arithmetic (each matrix entry a list of coefficients)."""
    L = len(weights)

    def series_mul(P, Q):  # matrices of coefficient lists, truncated at ``order``
        n = order + 1
        out = np.empty((P.shape[0], Q.shape[1]), dtype=object)
        for i in range(P.shape[0]):
            for j in range(Q.shape[1]):
                acc = [mpmath.mpf(0)] * n
                for m in range(P.shape[1]):
                    p, q = P[i, m], Q[m, j]
                    for a in range(n):
                        if p[a] == 0:
                            continue
                        for b in range(n - a):
                            acc[a + b] += p[a] * q[b]
                out[i, j] = acc
        return out

    def const(M):
        out = np.empty(M.shape, dtype=object)
        for idx in np.ndindex(M.shape):
            out[idx] = [M[idx]] + [mpmath.mpf(0)] * order
        return out

    coeffs = [[W] for W in weights]
    for k in range(order):
        series = []
        for c in coeffs:
            S = np.empty(c[0].shape, dtype=object)
            for idx in np.ndindex(S.shape):
                S[idx] = [c[m][idx] for m in range(k + 1)] + [mpmath.mpf(0)] * (order - k)
            series.append(S)
        A = series[0]
        for S in series[1:]:
            A = series_mul(S, A)
        R = series_mul(A, const(sxx))
        sy = const(syx)
        for idx in np.ndindex(R.shape):
            R[idx] = [a - b for a, b in zip(R[idx], sy[idx], strict=True)]
        for ell in range(L):
            n_out = weights[-1].shape[0]
            left = const(np.eye(n_out, dtype=object) * mpmath.mpf(1))
            for S in series[ell + 1:][::-1]:
                left = series_mul(left, S)
            n_in = weights[0].shape[1]
            right = const(np.eye(n_in, dtype=object) * mpmath.mpf(1))
            for S in series[:ell]:
                right = series_mul(S, right)
            lt = np.empty(left.shape[::-1], dtype=object)
            for i, j in np.ndindex(left.shape):
                lt[j, i] = left[i, j]
            rt = np.empty(right.shape[::-1], dtype=object)
            for i, j in np.ndindex(right.shape):
                rt[j, i] = right[i, j]
            F = series_mul(series_mul(lt, R), rt)
            nxt = np.empty(F.shape, dtype=object)
            for idx in np.ndindex(F.shape):
                nxt[idx] = -rates[ell] * F[idx][k] / (k + 1)
            coeffs[ell].append(nxt)
    return coeffs


def test_hand_written_rhs_is_the_derived_flow():
    """The reference right-hand side agrees with the package's lowered one (float64), so
    the references below test the same equations."""
    m = ed.DeepLinear(depth=3, width=3, in_dim=2, out_dim=2, sigma_yx=[[1.0, 0.3], [0.2, 0.8]],
                      sigma_xx=[[1.0, 0.2], [0.2, 0.5]], sigma=0.7, seed=3)
    lo = ed.lower(m)
    ws = [np.asarray(m.initial_state()[n]) for n in lo.state_names]
    syx, sxx = m.data_matrices()
    ref = hand_written_rhs(ws, syx, sxx, [1.0] * 3)
    got = lo.rhs(0.0, lo.pack(m.initial_state()))
    np.testing.assert_allclose(got, np.concatenate([r.ravel() for r in ref]).astype(float),
                               rtol=1e-12,
                               atol=1e-14)


def _instance(kind, dims, seed, spd, rates):
    rng = np.random.default_rng(seed)
    n_in, n_out = dims[0], dims[-1]
    syx = rng.normal(size=(n_out, n_in))
    if spd:
        B = rng.normal(size=(n_in, n_in))
        sxx = B @ B.T / n_in + 0.5 * np.eye(n_in)
    else:
        sxx = np.eye(n_in)
    ws = [rng.normal(scale=0.6, size=(dims[i + 1], dims[i])) for i in range(len(dims) - 1)]
    if kind == "LinearNet":
        m = ed.LinearNet.from_init(ws[0], ws[1], syx, sigma_xx=sxx, eta1=rates[0],
                                   eta2=rates[1])
        rates = rates[:2]
    else:
        m = ed.DeepLinear.from_init(ws, syx, sxx)
        rates = [1.0] * len(ws)
    return m, ws, syx, sxx, rates


@settings(max_examples=10, deadline=None)
@given(kind=st.sampled_from(["LinearNet", "DeepLinear"]),
       depth=st.integers(2, 4), sizes=st.lists(st.integers(1, 3), min_size=3, max_size=3),
       seed=st.integers(0, 2**16), spd=st.booleans(),
       rates=st.lists(st.sampled_from([0.25, 1.0, 1.5, 3.0]), min_size=2, max_size=2))
def test_matrix_taylor_coefficients_against_hand_written_recurrence(kind, depth, sizes, seed,
                                                                    spd, rates):
    """Both matrix engines (``mpfr`` and fixed-point ``mpz``) against the hand-written
    recurrence, over shapes from 1 x 1 matrices up, identity and general input
    covariances, and learning rates; agreement to the working precision (up to a few
    guard digits lost in the fixed-point roundings)."""
    if kind == "LinearNet":
        depth = 2
    n_in, hidden, n_out = sizes[:3]  # DeepLinear's hidden layers share one width
    dims = [n_in] + [hidden] * (depth - 1) + [n_out]
    m, ws, syx, sxx, rates = _instance(kind, dims, seed, spd, list(rates))
    lo = ed.lower(m)
    order, precision = 6, 40
    bits = working_bits(precision)
    with mpmath.workdps(precision + 20):
        ref = hand_written_taylor([_mp(W) for W in ws], _mp(syx), _mp(sxx),
                                  [mpmath.mpf(r) for r in rates], order)
        ref_packed = [np.concatenate([ref[ell][k].ravel() for ell in range(len(ws))])
                      for k in range(order + 1)]
        scale = max(max(abs(v) for v in row) for row in ref_packed) or mpmath.mpf(1)
        y0 = lo.pack(m.initial_state())
        with gmpy2.context(gmpy2.get_context(), precision=bits):
            mp_engine = lo.taylor_engine(order)
            mp_coeffs = mp_engine.coefficients(
                np.array([gmpy2.mpfr(float(v)) for v in y0], dtype=object))
            got_mpfr = [[mpmath.mpf(str(v)) for v in row] for row in mp_coeffs]
            fx = lo.taylor_engine(order, fixed_point=True)
            F = bits + 8
            yf = np.array([gmpy2.mpz(gmpy2.rint(gmpy2.mul_2exp(gmpy2.mpfr(float(v)), F)))
                           for v in y0], dtype=object)
            fx_coeffs = fx.coefficients(yf, F, 0)
            got_fixed = [[mpmath.mpf(int(v)) / mpmath.mpf(2) ** F for v in row]
                         for row in fx_coeffs]
        for k in range(order + 1):
            for got in (got_mpfr, got_fixed):
                err = max(abs(a - b) for a, b in zip(got[k], ref_packed[k], strict=True))
                assert err <= mpmath.mpf(10) ** -(precision - 2) * scale, (k, err)


def test_chains_are_associated_for_the_taylor_cost():
    """DeepLinear depth 3 (2 -> 4 -> 4 -> 2, Sigma_xx = I): with the shared subchains
    W2 W1 and W3^T R reused (and the identity dropped), 144 products of two series per
    order instead of the 192 of left-to-right association (4·4·2 + 2·4·2 for W3 W2 W1,
    then 4·2·2 + 4·4·2, 4·2·2 + 4·2·4 and 2·2·4 + 2·4·4 for the three right-hand sides).
    Counted by hand: W2W1 32, W3(W2W1) 16, W3^T R 16, W2^T(W3^T R) 32, (W3^T R)W1^T 32,
    R (W2W1)^T 16."""
    m = ed.DeepLinear(depth=3, width=4, in_dim=2, out_dim=2, sigma_yx=[[1.0, 0.3], [0.2, 0.8]])
    with gmpy2.context(gmpy2.get_context(), precision=200):
        engine = ed.lower(m).taylor_engine(20, fixed_point=True)
    assert engine.series_products_per_order() == 144


# ------------------------------------------------------------------ closed forms at N digits
@pytest.mark.parametrize("digits", [16, 30, 50, 100])
def test_linearnet_riccati_closed_form_at_each_precision(digits):
    """Zero-balanced LinearNet (Riccati closed form, evaluated at N + 10 digits) against
    ``solve(..., precision=N)`` to 10^-(N-5) of the end-to-end map's size."""
    m = ed.LinearNet.from_init([[0.5, 0, 0], [0, 0.25, 0]], [[0.5, 0], [0, 0.25]], S23)
    ts = [0.0, 0.5, 2.0]
    ex = ed.exact(m, ts, precision=digits + 10)
    num = ed.solve(m, ts, precision=digits)
    with mpmath.workdps(digits + 10):
        a, b = np.asarray(ex["end_to_end"]).ravel(), np.asarray(num["end_to_end"]).ravel()
        err = max(abs(mpmath.mpf(x) - mpmath.mpf(y)) for x, y in zip(a, b, strict=True))
        scale = max(abs(mpmath.mpf(x)) for x in a)
        assert err <= mpmath.mpf(10) ** -(digits - 5) * scale, mpmath.nstr(err, 3)


@pytest.mark.parametrize("digits", [16, 30, 50, 100])
@pytest.mark.parametrize("depth", [3, 4])
def test_deep_linear_decoupled_modes_at_each_precision(digits, depth):
    """Decoupled DeepLinear (diagonal teacher, so the SVD frames are exact): each diagonal
    entry of the end-to-end map is the scalar chain u' = L u^{2-2/L} (s - u) from u0 =
    a^L, evaluated by its own closed form at N + 10 digits; agreement to 10^-(N-5)."""
    svals, a0, ts = [2.0, 1.0], 0.5, [0.0, 0.7, 1.5]
    S = np.diag(svals)
    m = ed.DeepLinear.decoupled(depth=depth, width=3, sigma_yx=S, mode_init=a0)
    num = ed.solve(m, ts, precision=digits)
    A = np.asarray(num["end_to_end"])
    for alpha, s in enumerate(svals):
        ref = chain_solution(ts, a0 ** depth, s, depth, precision=digits + 10)
        with mpmath.workdps(digits + 10):
            for t_i, r in enumerate(ref):
                err = abs(mpmath.mpf(A[t_i, alpha, alpha]) - r)
                assert err <= mpmath.mpf(10) ** -(digits - 5) * abs(r), (alpha, t_i, err)
            off = max(abs(mpmath.mpf(A[t_i, 0, 1])) for t_i in range(len(ts)))
            assert off <= mpmath.mpf(10) ** -(digits - 5)


def test_generic_linearnet_against_mpmath_odefun():
    """A LinearNet 2-3-2 with a general init, a non-identity Sigma_xx and unequal rates
    (no closed form) against ``mpmath.odefun`` on the hand-written right-hand side at 30
    digits."""
    m, ws, syx, sxx, rates = _instance("LinearNet", [2, 3, 2], 11, True, [1.5, 0.5])
    t_end = 0.5
    num = ed.solve(m, [t_end], precision=30)
    with mpmath.workdps(32):
        shapes = [W.shape for W in ws]
        syx_mp, sxx_mp = _mp(syx), _mp(sxx)
        r = [mpmath.mpf(x) for x in rates]

        def rhs(_t, y):
            W1 = np.array(y[:6], dtype=object).reshape(shapes[0])
            W2 = np.array(y[6:], dtype=object).reshape(shapes[1])
            d1, d2 = hand_written_rhs([W1, W2], syx_mp, sxx_mp, r)
            return list(d1.ravel()) + list(d2.ravel())

        y0 = [mpmath.mpf(float(v)) for W in ws for v in W.ravel()]
        ref = mpmath.odefun(rhs, 0, y0)(mpmath.mpf(t_end))
        got = [mpmath.mpf(v) for n in ("W1", "W2") for v in np.asarray(num[n][-1]).ravel()]
        scale = max(abs(v) for v in ref)
        err = max(abs(a - b) for a, b in zip(got, ref, strict=True))
        assert err <= mpmath.mpf(10) ** -27 * scale, mpmath.nstr(err, 3)


@settings(max_examples=10, deadline=None)
@given(kind=st.sampled_from(["LinearNet", "DeepLinear"]),
       depth=st.integers(2, 4), sizes=st.lists(st.integers(1, 3), min_size=3, max_size=3),
       seed=st.integers(0, 2**16), spd=st.booleans(),
       rates=st.lists(st.sampled_from([0.25, 1.0, 1.5, 3.0]), min_size=2, max_size=2),
       tau_exp=st.integers(-6, 4))
def test_native_matrix_coefficients_against_hand_written_recurrence(kind, depth, sizes, seed,
                                                                    spd, rates, tau_exp):
    r"""The native-float matrix engine (``np.longdouble``, whatever its width on this
    platform) against the hand-written recurrence in mpmath, normalized time
    :math:`X_k = x_k\tau^k`, :math:`\tau = 2^e`: agreement to a few units in the last
    place of the type, relative to each order's largest coefficient."""
    if kind == "LinearNet":
        depth = 2
    n_in, hidden, n_out = sizes[:3]
    dims = [n_in] + [hidden] * (depth - 1) + [n_out]
    m, ws, syx, sxx, rates = _instance(kind, dims, seed, spd, list(rates))
    lo = ed.lower(m)
    order = 6
    ulp = mpmath.mpf(2) ** -np.finfo(np.longdouble).nmant
    with mpmath.workdps(40):
        ref = hand_written_taylor([_mp(W) for W in ws], _mp(syx), _mp(sxx),
                                  [mpmath.mpf(r) for r in rates], order)
        y0 = lo.pack(m.initial_state())
        with gmpy2.context(gmpy2.get_context(), precision=200):
            engine = lo.taylor_engine(order, native_dtype=np.longdouble)
            got = engine.coefficients(y0.astype(np.longdouble), tau_exp)
        for k in range(order + 1):
            tau_k = mpmath.mpf(2) ** (tau_exp * k)
            want = np.concatenate([ref[ell][k].ravel() for ell in range(len(ws))]) * tau_k
            scale = max(abs(v) for v in want) or mpmath.mpf(1)
            err = max(abs(mpmath.mpf(str(a)) - b) for a, b in zip(got[k], want, strict=True))
            assert err <= 64 * ulp * scale, (k, mpmath.nstr(err / scale, 3))
