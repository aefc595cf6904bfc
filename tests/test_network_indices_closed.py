r"""User networks over several index kinds: closed forms, heyoka, the modified flow.

The references are independent of the code under test: heyoka.py's own Taylor integrator
against exactdyn's (two implementations of one unrolled flow, agreeing to 1e-25 at 30
digits), closed forms solved by hand (a Riccati equation per entry of a diagonal network,
a linear relaxation with a reduction), and gradient-descent steps taken by a hand-written
numpy loop, whose one-step defect against the modified flow is :math:`O(h^3)`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import exactdyn as ed

sys.path.insert(0, str(Path(__file__).parent))
from test_network_indices import instance, linear_two_layer, two_layer  # noqa: E402


# ---- heyoka ---------------------------------------------------------------------------
@pytest.mark.parametrize("build, seed, alpha", [(two_layer, 5, 1.5), (linear_two_layer, 2, 0.8)])
def test_heyoka_agrees_with_precision_30_taylor_on_a_user_network(build, seed, alpha):
    pytest.importorskip("heyoka")
    times = [0.0, 0.4, 1.0]
    a0, W0, X0, Y0 = instance(seed, m=2, dim=2, samples=3)
    model = build().from_init({"a": a0, "W": W0}, X=X0, Y=Y0, alpha=alpha)
    hey = ed.solve(model, times, precision=30, method="heyoka")
    tay = ed.solve(model, times, precision=30)
    assert hey.meta["method"] == "heyoka"
    with mpmath.workdps(40):
        for row in range(len(times)):
            got = list(hey["a"][row]) + list(hey["W"][row].ravel())
            want = list(tay["a"][row]) + list(tay["W"][row].ravel())
            assert max(abs(x - y) for x, y in zip(got, want)) < 1e-25 * max(map(abs, want))
        np.testing.assert_allclose(np.array(hey["loss"], dtype=float),
                                   np.array(tay["loss"], dtype=float), rtol=1e-14)


def test_heyoka_follows_each_data_set_of_one_shape():
    # The compiled integrator is cached per flow and shapes, the data being its runtime
    # parameters: a second data set of the same shapes must not reuse the first's values.
    pytest.importorskip("heyoka")
    net = two_layer()
    ends = []
    for seed in (7, 8):
        a0, W0, X0, Y0 = instance(seed, m=2, dim=2, samples=3)
        model = net.from_init({"a": a0, "W": W0}, X=X0, Y=Y0, alpha=1.0)
        hey = ed.solve(model, [0.0, 0.5], precision=20, method="heyoka")
        flt = ed.solve(model, [0.0, 0.5], rtol=1e-13)
        np.testing.assert_allclose(np.array(hey["W"], dtype=float), flt["W"], rtol=1e-10)
        ends.append(np.array(hey["W"][-1], dtype=float))
    assert not np.allclose(ends[0], ends[1])


# ---- closed forms -----------------------------------------------------------------------
p, k = sp.symbols("p k", integer=True)
P, D = sp.symbols("P D", integer=True, positive=True)
u, w, B, c = (sp.IndexedBase(x) for x in ("u", "w", "B", "c"))
u0, w0 = sp.IndexedBase("u0"), sp.IndexedBase("w0")
t = sp.Symbol("t", nonnegative=True)
#: Two networks over outputs p and whitened features k (population losses, Sigma_xx = I):
#: the squared-parametrization diagonal network beta = u∘u with target B = Sigma_yx (each
#: entry learns along a logistic curve, as Saxe's modes do), and a linear layer w whose
#: outputs are read through the sum over features, with targets c_p.
LOSS = sp.Sum(sp.Sum((u[p, k] ** 2 - B[p, k]) ** 2, (k, 0, D - 1)), (p, 0, P - 1)) / 2 \
    + sp.Sum((sp.Sum(w[p, k], (k, 0, D - 1)) - c[p]) ** 2, (p, 0, P - 1)) / 2


def u_solution(rate=4):
    """q = u^2 obeys q' = -4 q (q - B): q(t) = B q0 / (q0 + (B - q0) e^{-4Bt})."""
    return u0[p, k] * sp.sqrt(B[p, k] / (u0[p, k] ** 2 + (B[p, k] - u0[p, k] ** 2)
                                         * sp.exp(-rate * B[p, k] * t)))


def w_solution(rate=D):
    """The row sums relax at rate D: w = w0 - (sum_k w0 - c)(1 - e^{-Dt})/D."""
    return w0[p, k] - (sp.Sum(w0[p, k], (k, 0, D - 1)) - c[p]) * (1 - sp.exp(-rate * t)) / D


def closed_net(u_sol=None, w_sol=None, cf=True) -> ed.Network:
    form = ed.ClosedForm({u: u_sol if u_sol is not None else u_solution(),
                          w: w_sol if w_sol is not None else w_solution()},
                         {u: u0, w: w0}, t=t) if cf else None
    return ed.Network("diag_sq_and_sum", params=[u, w], indices={p: P, k: D}, loss=LOSS,
                      data=[B, c], closed_form=form)


def closed_instance(seed, outputs=2, features=3):
    rng = np.random.default_rng(seed)
    # u0 != 0 and B > 0: the logistic runs from u0^2 to B (u0 = 0 is a fixed point).
    return (rng.uniform(0.1, 1.2, (outputs, features)) * rng.choice([-1, 1], (outputs, features)),
            rng.standard_normal((outputs, features)), rng.uniform(0.2, 1.5, (outputs, features)),
            rng.standard_normal(outputs))


def hand_solution(U0, W0, B0, C0, times, u_rate=4.0, w_rate=None):
    times = np.asarray(times, float)[:, None, None]
    w_rate = W0.shape[1] if w_rate is None else w_rate
    q = B0 * U0 ** 2 / (U0 ** 2 + (B0 - U0 ** 2) * np.exp(-u_rate * B0 * times))
    uu = np.sign(U0) * np.sqrt(q)
    ww = W0 - (W0.sum(axis=1) - C0)[:, None] * (1 - np.exp(-w_rate * times)) / W0.shape[1]
    return uu, ww


TIMES = np.linspace(0.0, 2.0, 6)


def test_a_multi_index_closed_form_is_proven_evaluated_and_verified():
    U0, W0, B0, C0 = closed_instance(0)
    model = closed_net().from_init({"u": U0, "w": W0}, B=B0, c=C0)
    cf = ed.closed_form(model)
    assert cf.proven and all(r == 0 for r in cf.residual().values())
    assert [s.title for s in cf.proofs] == ["Initial value of u", "Initial value of w",
                                           "Closed form solves the flow of u",
                                           "Closed form solves the flow of w"]
    ex = ed.exact(model, TIMES)
    hu, hw = hand_solution(U0, W0, B0, C0, TIMES)
    assert ex["u"].shape == (6, 2, 3)
    np.testing.assert_allclose(ex["u"], hu, rtol=1e-13)
    np.testing.assert_allclose(ex["w"], hw, rtol=1e-13, atol=1e-14)
    rep = ed.verify(model, TIMES)
    assert rep.passed
    rep30 = ed.verify(model, TIMES, precision=30)
    assert rep30.passed and rep30["u"].max_abs_error < 1e-25 and rep30["w"].max_abs_error < 1e-25


def test_the_closed_form_at_30_digits_matches_a_hand_mpmath_evaluation():
    U0, W0, B0, C0 = closed_instance(3, outputs=1, features=2)
    model = closed_net().from_init({"u": U0, "w": W0}, B=B0, c=C0)
    ex = ed.exact(model, [0.0, 0.7], precision=30)
    with mpmath.workdps(45):
        tv = mpmath.mpf(0.7)
        for kk in range(2):
            x0, b = mpmath.mpf(float(U0[0, kk])), mpmath.mpf(float(B0[0, kk]))
            want = x0 * mpmath.sqrt(b / (x0 ** 2 + (b - x0 ** 2) * mpmath.exp(-4 * b * tv)))
            assert abs(ex["u"][1][0, kk] - want) < 1e-28 * abs(want)
        s = mpmath.fsum(mpmath.mpf(float(x)) for x in W0[0])
        want_w = mpmath.mpf(float(W0[0, 0])) - (s - mpmath.mpf(float(C0[0]))) \
            * (1 - mpmath.exp(-2 * tv)) / 2
        assert abs(ex["w"][1][0, 0] - want_w) < 1e-28 * max(1, abs(want_w))


@pytest.mark.parametrize("which", ["u", "w"])
def test_a_wrong_multi_index_closed_form_fails_its_residual_and_verify(which):
    U0, W0, B0, C0 = closed_instance(1)
    wrong = {"u": {"u_sol": u_solution(rate=2)}, "w": {"w_sol": w_solution(rate=1)}}[which]
    model = closed_net(**wrong).from_init({"u": U0, "w": W0}, B=B0, c=C0)
    cf = ed.closed_form(model)
    proven = {s.title: s.proven for s in cf.proofs}
    # Both start right (t = 0); only the wrong parameter's flow residual is nonzero.
    assert proven[f"Initial value of {which}"]
    assert not proven[f"Closed form solves the flow of {which}"]
    other = "w" if which == "u" else "u"
    assert proven[f"Closed form solves the flow of {other}"] and not cf.proven
    rep = ed.verify(model, TIMES)
    assert not rep.passed
    # The error verify reports is the distance of the wrong formula from the true one.
    true_u, true_w = hand_solution(U0, W0, B0, C0, TIMES)
    bad_u, bad_w = hand_solution(U0, W0, B0, C0, TIMES, u_rate=2.0, w_rate=1.0)
    want = np.max(np.abs((bad_u - true_u) if which == "u" else (bad_w - true_w)))
    assert rep[which].max_abs_error == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("bad, match", [
    ({u: u0[p, k] * sp.exp(-t), w: w0[p]}, r"write w0 at its declared indices, w0\[p, k\]"),
    ({u: u[p, k], w: w_solution()}, r"closed_form\[u\]: u\[p, k\] is a parameter"),
    ({u: u0[p, k] + sp.IndexedBase("Z")[p, k], w: w_solution()},
     r"closed_form\[u\]: Z is neither an initial value"),
    ({u: u0[p, k], w: w0[p, k] + c[p] * sp.Symbol("mystery")},
     r"closed_form\[w\]: the free symbol mystery"),
    ({u: sp.Sum(u0[p, k], (p, 0, 4)), w: w_solution()}, r"the reduction .* must run over"),
    ({u: "u0[p, k]", w: w_solution()}, r"closed_form\[u\] must be a sympy expression"),
])
def test_bad_multi_index_closed_forms_name_the_problem(bad, match):
    with pytest.raises(ValueError, match=match):
        closed_net(u_sol=bad[u], w_sol=bad[w])


def test_a_closed_form_free_index_must_be_its_parameters():
    a_, W_ = sp.IndexedBase("a"), sp.IndexedBase("W")
    i, dd = sp.symbols("i d", integer=True)
    a0_, W0_ = sp.IndexedBase("a0"), sp.IndexedBase("W0")
    loss = sp.Sum((sp.Sum(a_[i] * W_[i, k], (i, 0, dd - 1)) - B[0, k]) ** 2, (k, 0, D - 1))
    with pytest.raises(ValueError, match=r"closed_form\[a\]: the index k is neither one of a's"):
        ed.Network("x", params=[a_, W_], indices={i: dd, k: D}, loss=loss.xreplace(
            {B[0, k]: c[k]}), data=[c],
            closed_form=ed.ClosedForm({a_: a0_[i] * W0_[i, k], W_: W0_[i, k]},
                                      {a_: a0_, W_: W0_}, t=t))
    with pytest.raises(ValueError, match="closed_form: the initial value of a must be a new"):
        ed.Network("x", params=[a_, W_], indices={i: dd, k: D}, loss=loss.xreplace(
            {B[0, k]: c[k]}), data=[c],
            closed_form=ed.ClosedForm({a_: c[i], W_: W0_[i, k]}, {a_: c, W_: W0_}, t=t))


# ---- the modified flow of gradient descent ----------------------------------------------
a, W = sp.IndexedBase("a"), sp.IndexedBase("W")


def hand_rhs(theta, X0, Y0, alpha, m, dim):
    """The tanh two-layer flow written out by hand in mpmath (state: a, then W by rows)."""
    av = theta[:m]
    Wv = [theta[m + r * dim: m + (r + 1) * dim] for r in range(m)]
    n = len(Y0)
    th = [[mpmath.tanh(mpmath.fsum(Wv[r][q] * X0[s_, q] for q in range(dim)))
           for s_ in range(n)] for r in range(m)]
    e = [mpmath.fsum(av[r] * th[r][s_] for r in range(m)) / alpha - Y0[s_] for s_ in range(n)]
    da = [-mpmath.fsum(e[s_] * th[r][s_] for s_ in range(n)) / (alpha * n) for r in range(m)]
    dW = [-av[r] * mpmath.fsum(e[s_] * (1 - th[r][s_] ** 2) * X0[s_, q] for s_ in range(n))
          / (alpha * n) for r in range(m) for q in range(dim)]
    return da + dW


def unrolled(expr, model, entries, free=None):
    """``expr`` with the sizes, free indices and data of ``model`` substituted, every
    reduction written out, as an mpmath function of the state ``entries`` (sympy only:
    no exactdyn code on this path)."""
    sizes = {sp.Symbol(name, integer=True, positive=True): v for name, v in
             model.sizes().items()}
    data = {}
    for name, arr in model.data_arrays().items():
        base = sp.IndexedBase(name)
        for idx in np.ndindex(arr.shape):
            data[base[idx]] = sp.Float(float(arr[idx]), 60)
    values = {sp.Symbol(k, positive=True): sp.Float(v, 60) for k, v in model._values}
    def written_out(s_):  # integer limits by now; innermost first (replace is bottom-up)
        body = s_.function
        for idx, lo, hi in s_.limits:
            body = sp.Add(*[body.xreplace({idx: sp.Integer(v)})
                            for v in range(int(lo), int(hi) + 1)])
        return body

    e = expr.xreplace(free or {}).xreplace(sizes)
    e = e.replace(lambda x: isinstance(x, sp.Sum), written_out)
    return sp.lambdify(entries, e.xreplace(data).xreplace(values), "mpmath")


def test_multi_index_modified_flow_is_recorded_and_its_order_h_term_matches_gd_steps():
    from exactdyn.report.content import modified_flow_steps
    from exactdyn.symbolic.modified import derive_modified_flow

    m, dim, al = 2, 2, 1.3
    a0, W0, X0, Y0 = instance(4, m=m, dim=dim, samples=2)
    model = two_layer().from_init({"a": a0, "W": W0}, X=X0, Y=Y0, alpha=al)
    flow = ed.gradient_flow(model)
    steps, note = modified_flow_steps(flow)  # the report's section
    assert not note and [s.title for s in steps] == ["Modified loss", "Modified flow of a",
                                                     "Modified flow of W"]
    mod = derive_modified_flow(flow)
    entries = [a[r] for r in range(m)] + [W[r, q] for r in range(m) for q in range(dim)]
    ip, kp = (sp.Symbol(x, integer=True) for x in ("i'", "k'"))
    ff_of = [unrolled(mod.correction[a], model, entries, {ip: r}) for r in range(m)] + \
        [unrolled(mod.correction[W], model, entries, {ip: r, kp: q})
         for r in range(m) for q in range(dim)]
    with mpmath.workdps(40):
        theta = [mpmath.mpf(float(x)) for x in list(a0) + list(W0.ravel())]
        X, Y = X0.astype(object), Y0.astype(object)
        alpha = mpmath.mpf(al)

        def f(th):
            return hand_rhs(th, X, Y, alpha, m, dim)

        f0 = f(theta)
        ff = [g(*theta) for g in ff_of]
        # 1. f'f is the derivative of the hand-written flow along itself.
        eps = mpmath.mpf(10) ** -12
        up = f([x + eps * y for x, y in zip(theta, f0)])
        down = f([x - eps * y for x, y in zip(theta, f0)])
        fd = [(p_ - q_) / (2 * eps) for p_, q_ in zip(up, down)]
        assert max(abs(x - y) for x, y in zip(ff, fd)) < 1e-18 * max(map(abs, fd))
        # 2. Backward error: one GD step of size h falls short of the exact flow at t = h
        #    by (h^2/2) f'f + O(h^3); the flow by mpmath's own Taylor integrator.
        h = mpmath.mpf(10) ** -6
        exact = mpmath.odefun(lambda _t, y: f(y), 0, theta)(h)
        gd = [x + h * y for x, y in zip(theta, f0)]
        defect = [(x - y) / h ** 2 for x, y in zip(exact, gd)]
        assert max(abs(x - y / 2) for x, y in zip(defect, ff)) < 1e-4 * max(map(abs, ff))
        # 3. The recorded modified flow f - (h/2) f'f is -H grad of the recorded modified
        #    loss (finite differences of it, written out by sympy).
        lr = sp.Rational(1, 10)
        Lt = unrolled(mod.steps[0].expr.rhs.xreplace({mod.lr: lr}), model, entries)
        for pos in range(len(theta)):
            plus, minus = list(theta), list(theta)
            plus[pos] += eps
            minus[pos] -= eps
            grad = (Lt(*plus) - Lt(*minus)) / (2 * eps)
            want = f0[pos] - mpmath.mpf(0.1) / 2 * ff[pos]
            assert abs(-grad - want) < 1e-15 * max(1, abs(want))


CLOSED_NET = closed_net()


@settings(max_examples=20, deadline=None)
@given(outputs=st.integers(1, 3), features=st.integers(1, 3), seed=st.integers(0, 2**16),
       u_scale=st.sampled_from([1e-3, 0.1, 1.0, 2.0]), b_lo=st.sampled_from([0.05, 0.5, 1.5]))
def test_closed_form_exact_and_integration_agree_over_shapes_and_scales(outputs, features, seed,
                                                                       u_scale, b_lo):
    rng = np.random.default_rng(seed)
    U0 = u_scale * rng.uniform(0.5, 1.0, (outputs, features)) * \
        rng.choice([-1, 1], (outputs, features))
    W0 = rng.standard_normal((outputs, features))
    B0 = rng.uniform(b_lo, b_lo + 1.0, (outputs, features))
    C0 = rng.standard_normal(outputs)
    model = CLOSED_NET.from_init({"u": U0, "w": W0}, B=B0, c=C0)
    ex = ed.exact(model, TIMES)
    hu, hw = hand_solution(U0, W0, B0, C0, TIMES)
    np.testing.assert_allclose(ex["u"], hu, rtol=1e-12)
    np.testing.assert_allclose(ex["w"], hw, rtol=1e-12, atol=1e-13)
    sol = ed.solve(model, TIMES)
    np.testing.assert_allclose(sol["u"], hu, rtol=1e-9)
    np.testing.assert_allclose(sol["w"], hw, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(sol["loss"], ex["loss"], rtol=1e-8, atol=1e-14)
