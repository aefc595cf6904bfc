"""Kink location on the step's own polynomial (issue 15, item 1).

:class:`exactdyn.numeric.kinks.KinkState.locate` finds the first crossing inside a step
from the power coefficients of the step's dense output
(``power_coefficients()`` of :mod:`exactdyn.numeric.runge_kutta`'s dense outputs) and
:func:`exactdyn.numeric.kinks.first_root`; sliding exits still go through Brent's method
(:func:`exactdyn.numeric.kinks._brent`, a port of scipy's ``brentq``). Checked against
independent references:

- the power coefficients against the dense output's own evaluation (Hairer's nested form
  for DOP853, :math:`h Q (x, x^2, ...)` for RK45/RK23) at random points of steps of
  nonlinear ODEs;
- ``first_root`` against scipy's ``brentq`` on the same polynomials, bracketed at the
  true first root (polynomials built from their roots, so the first root is known):
  simple roots anywhere in (0, 1] including within 1e-12 of both ends, roots of
  several rows, a double root (tangency) after a simple one, and rows with no root;
- ``_brent`` against scipy's ``brentq`` on the same functions: the same root and
  convergence flag (it is a port of the same algorithm).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from numpy.polynomial import polynomial as npoly
from scipy.optimize import brentq

from exactdyn.numeric import kinks
from exactdyn.numeric import runge_kutta as rk

EPS = np.finfo(float).eps


def _pendulum(t, y):
    return np.array([y[1], -np.sin(y[0]) + 0.3 * np.cos(3 * t), -y[2] * y[0]])


@pytest.mark.parametrize("method", ["DOP853", "RK45", "RK23"])
@given(y0=st.tuples(*[st.floats(-2, 2)] * 3), steps=st.integers(1, 5),
       x=st.lists(st.floats(0, 1), min_size=1, max_size=8))
def test_power_coefficients_reproduce_the_dense_output(method, y0, steps, x):
    solver = getattr(rk, method)(_pendulum, 0.0, np.array(y0), 10.0, rtol=1e-6)
    for _ in range(steps):
        solver.step()
    dense = solver.dense_output()
    C = dense.power_coefficients()
    assert np.array_equal(C[0], dense.y_old)  # x = 0 exactly
    x = np.array(x)
    expected = dense(dense.t_old + x * (dense.t - dense.t_old))
    scale = np.abs(C).sum(axis=0)[:, None]
    assert np.all(np.abs(npoly.polyval(x, C).reshape(expected.shape) - expected)
                  <= 64 * EPS * scale + 1e-300)  # subnormal states: an absolute floor


def test_dop853_power_basis_is_the_nested_form():
    """Each row of the basis is the factor of F_r in x(F0 + (1-x)(F1 + x(F2 + ...)))."""
    B = rk._dop853_power_basis(7)
    x = np.linspace(0, 1, 11)
    for r in range(7):
        F = np.zeros((7, 1))
        F[r] = 1.0
        dense = rk.Dop853DenseOutput(0.0, 1.0, np.zeros(1), F)
        assert np.allclose(npoly.polyval(x, B[r]), dense(x)[0], atol=1e-15)


def _from_roots(roots, scale, positive_at_zero=True):
    """Coefficients (ascending) of scale * prod(x - r), sign chosen positive at x = 0."""
    c = npoly.polyfromroots(roots) * scale
    if positive_at_zero and c[0] < 0:
        c = -c
    return c


root_in_step = st.one_of(st.floats(0.01, 0.99), st.floats(1 - 1e-12, 1.0),
                         st.floats(1e-12, 1e-9), st.floats(0.0, 1.0))
far_roots = st.lists(st.one_of(st.floats(1.5, 4), st.floats(-4, -0.5)), max_size=5)


def _xtol():
    return 4 * EPS


def _noise(c, x):
    """How far round-off of p moves a simple root at x: 64 eps sum|c_i x^i| / |p'(x)|."""
    powers = np.abs(x) ** np.arange(len(c))
    return 64 * EPS * float(np.abs(c) @ powers) / abs(npoly.polyval(x, npoly.polyder(c)))


@given(first=root_in_step, others=far_roots, scale=st.floats(1e-8, 1e8))
def test_first_root_of_one_polynomial_is_brentqs(first, others, scale):
    """One root in (0, 1] (the others outside): anywhere, within 1e-12 of either end."""
    assume(first > 0)
    c = _from_roots([first, *others], scale)
    x = kinks.first_root(c[None, :], _xtol())
    f = lambda t: npoly.polyval(t, c)  # noqa: E731
    if not f(1.0) < 0:
        # the root at the end of the step, at the level of round-off: no negative value
        assert np.isnan(x) or abs(x - first) <= 1e-9
        return
    reference = brentq(f, 0.0, 1.0, xtol=1e-15, rtol=4 * EPS)
    assert abs(x - reference) <= 2 * _xtol() + 2 * _noise(c, first)


@given(rows=st.lists(st.tuples(root_in_step, far_roots, st.floats(1e-3, 1e3)),
                     min_size=1, max_size=6),
       none=st.integers(0, 3))
def test_first_root_of_many_rows_is_the_smallest(rows, none):
    """Several candidates at once: the earliest of their first roots; rows without a
    root in the step (all roots outside) do not count."""
    inside = [(r, _from_roots([r, *o], s)) for r, o, s in rows if 1e-6 < r < 1 - 1e-6]
    assume(inside)
    # each row has one root in [0, 1] (the others are outside): the first is the row of
    # the smallest, and brentq on that row, bracketed around it, is the reference
    truth, c = min(inside, key=lambda rc: rc[0])
    cs = [rc[1] for rc in inside] + [_from_roots([2.0 + k, -1.0 - k], 1.0)
                                     for k in range(none)]
    width = max(len(c) for c in cs)
    P = np.array([np.r_[c, np.zeros(width - len(c))] for c in cs])
    x = kinks.first_root(P, _xtol())
    f = lambda t: npoly.polyval(t, c)  # noqa: E731
    lo, hi = max(0.0, truth - 1e-3), min(1.0, truth + 1e-3)
    assume(f(lo) > 0 > f(hi))
    reference = brentq(f, lo, hi, xtol=1e-15, rtol=4 * EPS)
    assert abs(x - reference) <= 2 * _xtol() + 2 * _noise(c, truth)


@given(simple=st.floats(0.05, 0.6), gap=st.floats(0.1, 0.3), scale=st.floats(1e-4, 1e4))
def test_a_tangency_after_a_simple_root_does_not_hide_it(simple, gap, scale):
    """p = (x - r1)(x - r2)^2 q: the margin crosses at r1 and touches zero at r2."""
    double = min(simple + gap, 0.95)
    c = _from_roots([simple, double, double, 3.0], scale)
    x = kinks.first_root(c[None, :], _xtol())
    reference = brentq(lambda t: npoly.polyval(t, c), 0.0, 0.5 * (simple + double),
                       xtol=1e-15, rtol=4 * EPS)
    assert abs(x - reference) <= 1e-12


@given(double=st.floats(0.05, 0.95), scale=st.floats(1e-4, 1e4))
def test_a_double_root_crossing_is_found_to_tolerance(double, scale):
    """p = (x - r)^3 (1 + x^2) (negative past r): Newton is slow on the triple root; the
    bisection safeguard still ends within the tolerance of the true root, as brentq."""
    c = -npoly.polymul(npoly.polyfromroots([double] * 3), [1.0, 0.0, 1.0]) * scale
    x = kinks.first_root(c[None, :], 1e-12)
    reference = brentq(lambda t: npoly.polyval(t, c), 0.0, 1.0, xtol=1e-15, rtol=4 * EPS)
    # a triple root is flat: round-off of p (~1e-16 scale) moves it by ~(1e-16)^(1/3)
    assert abs(x - reference) <= 1e-4
    assert abs(x - double) <= 1e-4


@given(roots=st.lists(st.one_of(st.floats(1.01, 5), st.floats(-5, -0.01)), max_size=6),
       scale=st.floats(1e-6, 1e6))
def test_no_root_in_the_step_is_nan(roots, scale):
    c = _from_roots(roots, scale) if roots else np.array([scale])
    assert np.isnan(kinks.first_root(c[None, :], _xtol()))


def test_first_root_rejects_bad_input():
    with pytest.raises(ValueError, match="P"):
        kinks.first_root(np.ones(3), 1e-12)
    with pytest.raises(ValueError, match="xtol"):
        kinks.first_root(np.ones((1, 3)), 0.0)


functions = [
    lambda t: np.cos(t) - t,
    lambda t: (t - 0.3) ** 3,
    lambda t: np.exp(t) - 2,
    lambda t: np.tanh(10 * (t - 0.77)),
    lambda t: 1e-300 * (t - 0.5),
    lambda t: (t - 0.2) * (t - 0.2000001) * (t - 0.21),
]


@pytest.mark.parametrize("f", functions)
@given(a=st.floats(-0.2, 0.19), b=st.floats(0.8, 1.5), xtol=st.floats(1e-15, 1e-3))
def test_brent_is_scipys_brentq(f, a, b, xtol):
    assume(np.sign(f(a)) != np.sign(f(b)) and f(a) != 0 and f(b) != 0)
    root, converged = kinks._brent(f, a, b, xtol=xtol, rtol=4 * EPS)
    reference, info = brentq(f, a, b, xtol=xtol, rtol=4 * EPS, full_output=True, disp=False)
    assert converged == info.converged
    assert root == reference


def test_locate_on_a_relu_run_agrees_with_brentq_on_the_same_dense_output(monkeypatch):
    """Every kink of a small ReLU run (teacher data, m = 8, n = 12): the polynomial root
    of the candidates' margins against scipy's brentq on the smallest margin itself
    (``KinkState._gap``, the dense output evaluated by its nested form) over the same
    step: the same root, within the width of locate's final bracket."""
    import exactdyn as ed

    rng = np.random.default_rng(3)
    X = np.c_[rng.normal(size=(12, 2)), np.ones(12)]
    u = rng.normal(size=(2, 3))
    y = np.maximum(X @ u[0], 0) - 0.5 * np.maximum(X @ u[1], 0)
    net = ed.TwoLayer(8, X, y, activation="relu", beta1=1e-2, beta2=1e-2, seed=1)
    pairs = []
    original = kinks.KinkState._polynomial_root

    def compare(self, dense, cand, tol):
        root = original(self, dense, cand, tol)
        if root is not None and not np.isnan(root):
            gap = self._gap(dense, cand)
            if gap(dense.t_old) > 0 > gap(dense.t):
                pairs.append((root, brentq(gap, dense.t_old, dense.t, xtol=tol / 4,
                                           rtol=4 * EPS), tol, dense.t - dense.t_old))
        return root

    monkeypatch.setattr(kinks.KinkState, "_polynomial_root", compare)
    traj = ed.solve(net, [0.0, 20.0])
    assert traj.meta["kinks"] >= 10 and len(pairs) >= 10
    for poly, brent, tol, _h in pairs:
        # the same root within locate's bracket width 8 eps max(1, |t|) (measured: at
        # most 0.46 of it on this run)
        assert abs(poly - brent) <= tol
