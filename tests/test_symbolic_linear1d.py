"""Symbolic derivation of the 1-D linear network (MATH.md §1): proofs, and an
independent unrolled check of the derived flow."""

import itertools

import pytest
import sympy as sp

import exactdyn as ed
from exactdyn.symbolic.sums import WIDTH


@pytest.fixture(scope="module")
def flow():
    return ed.gradient_flow(ed.Linear1D())


def test_every_conserved_quantity_is_proven(flow):
    names = {q.name for q in flow.conserved}
    # C (entry-wise), Q1 = tr C and Q2 = |u|^2|w|^2 - p^2 are all expected.
    assert {"C_ab", "Q_1", "Q_2"} <= names, names
    for q in flow.conserved:
        assert q.proven is True, q.name
        assert sp.simplify(q.derivative) == 0, (q.name, q.derivative)


def test_every_reduction_step_is_proven(flow):
    assert flow.reduced is not None
    assert flow.reduced.steps
    for step in flow.reduced.steps:
        assert step.proven is True, step.title
    assert flow.reduced.proven


def test_reduced_equation_is_the_one_in_math_md(flow):
    red = flow.reduced
    P = red.variable
    om, ps = sp.Symbol("omega", positive=True), sp.Symbol("p^*")
    kp = sp.Symbol("k'", nonnegative=True)
    expected = om * (ps - P) * sp.sqrt(P**2 + kp**2)
    assert sp.simplify(red.rhs - expected) == 0


def test_closed_form_residuals_are_exactly_zero():
    cf = ed.closed_form(ed.Linear1D())
    res = cf.residual()
    assert len(res) >= 5
    for title, value in res.items():
        assert value == 0, (title, value)
        assert sp.S(value).is_zero is True, title
    assert cf.proven is True


def _unrolled(flow, d=3):
    """The derived per-neuron rhs at d symbols, and the same from the unrolled loss."""
    net = flow.network
    u, w = net.params
    h = net.hyper
    kappa, eta_u, eta_w, c, sxx = (h["kappa"], h["eta_u"], h["eta_w"], h["teacher"],
                                   h["x_var"])
    us = [sp.Symbol(f"U{i}", real=True) for i in range(d)]
    ws = [sp.Symbol(f"W{i}", real=True) for i in range(d)]
    # Written here, independently of the package: L = 1/2 Sxx (kappa sum_i u_i w_i - c)^2.
    loss = sxx * (kappa * sum(a * b for a, b in zip(us, ws)) - c) ** 2 / 2
    to_plain = {**{u[i]: us[i] for i in range(d)}, **{w[i]: ws[i] for i in range(d)}}
    j = sp.Symbol("j", integer=True)
    out = []
    for base, syms, eta in ((u, us, eta_u), (w, ws, eta_w)):
        rhs = flow.rhs[base]
        # The free neuron index is the one symbol besides the summation index.
        free = {s for s in rhs.free_symbols if s.is_integer and s != WIDTH} - {
            lim[0] for s in rhs.atoms(sp.Sum) for lim in s.limits}
        assert len(free) == 1, free
        (j,) = free
        rhs_d = rhs.subs(WIDTH, d).doit()
        for k in range(d):
            derived = rhs_d.subs(j, k).xreplace(to_plain)
            expected = -eta * sp.diff(loss, syms[k])
            out.append((base.name, k, derived, expected))
    return out


def test_derived_rhs_equals_unrolled_gradient_at_width_3(flow):
    for name, k, derived, expected in _unrolled(flow, 3):
        assert not derived.has(sp.Sum) and not derived.has(sp.Indexed), derived
        assert sp.expand(derived - expected) == 0, (name, k, derived, expected)


def test_conserved_quantities_unrolled_at_width_3(flow):
    """dQ/dt = 0 along the unrolled flow, for the package's Q expressions unrolled."""
    d = 3
    net = flow.network
    u, w = net.params
    rows = _unrolled(flow, d)
    plain = {**{u[i]: sp.Symbol(f"U{i}", real=True) for i in range(d)},
             **{w[i]: sp.Symbol(f"W{i}", real=True) for i in range(d)}}
    rhs = {}
    for name, k, _derived, expected in rows:
        rhs[plain[(u if name == "u" else w)[k]]] = expected
    for q in flow.conserved:
        expr = q.expr.subs(WIDTH, d).doit()
        idx = sorted({s for s in expr.free_symbols if s.is_integer}, key=str)
        # C_ab has free indices a, b: check all pairs.
        assignments = [dict(zip(idx, v)) for v in itertools.product(range(d), repeat=len(idx))]
        for assign in assignments:
            e = expr.subs(assign).xreplace(plain)
            assert not e.has(sp.Indexed), e
            dq = sum(sp.diff(e, x) * rhs[x] for x in rhs)
            assert sp.expand(dq) == 0, (q.name, assign)
