"""User-defined networks (``exactdyn.Network``) through the whole pipeline.

The reference for the diagonal linear network :math:`L = (\\sum_i u_i^2 - v_i^2 - \\beta)^2/2`
is solved here by hand, independently of the package: the flow is
:math:`\\dot u_i = -2ru_i`, :math:`\\dot v_i = 2rv_i` with :math:`r = \\sum(u^2 - v^2) - \\beta`,
so :math:`u_i = u_{0i}z^{-1/2}`, :math:`v_i = v_{0i}z^{1/2}` with :math:`z = e^{4R}`,
:math:`R' = r`, and :math:`z' = 4(A - \\beta z - Bz^2)` (:math:`A = |u_0|^2`,
:math:`B = |v_0|^2`), a Riccati equation with constant coefficients whose solution through
its roots :math:`z_\\pm` is written below in mpmath.
"""

from __future__ import annotations

import os
import pickle

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import exactdyn as ed

i, d = sp.symbols("i d", integer=True)
u, v = sp.IndexedBase("u"), sp.IndexedBase("v")
b = sp.Symbol("beta_star")
LOSS = (sp.Sum(u[i] ** 2 - v[i] ** 2, (i, 0, d - 1)) - b) ** 2 / 2


def diag_net(**kw):
    return ed.Network("diag_linear", params=[u, v], index=i, width=d, loss=LOSS, hyper=[b],
                      **kw)


U0 = np.array([0.3, 0.1, -0.2])
V0 = np.array([0.05, 0.2, 0.1])
TIMES = np.linspace(0.0, 4.0, 9)


def riccati_reference(u0, v0, beta, times, dps=40):
    """The hand solution of the module docstring, in mpmath at ``dps`` digits."""
    with mpmath.workdps(dps):
        u0 = [mpmath.mpf(float(x)) for x in u0]
        v0 = [mpmath.mpf(float(x)) for x in v0]
        beta = mpmath.mpf(beta)
        A, B = mpmath.fsum(x * x for x in u0), mpmath.fsum(x * x for x in v0)
        rows_u, rows_v = [], []
        for tv in times:
            tv = mpmath.mpf(float(tv))
            if B == 0:  # z' = 4(A - beta z): linear
                z = A / beta + (1 - A / beta) * mpmath.exp(-4 * beta * tv)
            else:
                lam = mpmath.sqrt(beta * beta + 4 * A * B)
                zp, zm = (-beta + lam) / (2 * B), (-beta - lam) / (2 * B)
                E = (1 - zp) / (1 - zm) * mpmath.exp(-4 * lam * tv)
                z = (zp - zm * E) / (1 - E)
            rows_u.append([x / mpmath.sqrt(z) for x in u0])
            rows_v.append([x * mpmath.sqrt(z) for x in v0])
        return np.array(rows_u, dtype=object), np.array(rows_v, dtype=object)


def test_the_issue_names_work_end_to_end():
    net = diag_net()
    model = net.from_init({"u": U0, "v": V0}, beta_star=0.5)
    assert model.width == 3
    traj = ed.solve(model, TIMES)
    assert traj["u"].shape == (len(TIMES), 3) and traj["loss"].shape == (len(TIMES),)
    assert traj.meta["model"] == "diag_linear"
    hp = ed.solve(model, TIMES, precision=30)
    assert hp["u"].dtype == object and hp.meta["precision"] == 30
    eqs = ed.gradient_flow(model).equations()
    assert len(eqs) == 2 and all(isinstance(e, sp.Eq) for e in eqs)
    assert "def rhs" in ed.lower(model).sources["rhs"]


def test_float64_and_30_digits_agree_with_an_independent_reference():
    """The issue's bar: float64 to 1e-9 relative, precision=30 to 1e-20, against the hand
    solution above (not the package's integrator)."""
    model = diag_net().from_init({"u": U0, "v": V0}, beta_star=0.5)
    ru, rv = riccati_reference(U0, V0, 0.5, TIMES)
    f64 = ed.solve(model, TIMES)
    for name, ref in (("u", ru), ("v", rv)):
        ref = np.array(ref, dtype=float)
        np.testing.assert_allclose(f64[name], ref, rtol=1e-9, atol=1e-9 * np.abs(ref).max())
    hp = ed.solve(model, TIMES, precision=30)
    with mpmath.workdps(40):
        for name, ref in (("u", ru), ("v", rv)):
            err = max(abs(x - y) / abs(y) for x, y in zip(hp[name].ravel(), ref.ravel()))
            assert err < 1e-20, (name, err)


@settings(max_examples=25, deadline=None)
@given(width=st.integers(1, 6), seed=st.integers(0, 2**16), scale=st.sampled_from(
    [1e-4, 1e-2, 0.3, 1.0]), beta=st.floats(0.05, 3.0), zero_v=st.booleans())
def test_float64_flow_matches_the_reference_over_inits(width, seed, scale, beta, zero_v):
    """Width 1, tiny scales and a zero second layer (v = 0 stays 0) included; the error is
    measured relative to each array's scale over the trajectory (entries cross no zero
    here, but a tiny init makes them small)."""
    rng = np.random.default_rng(seed)
    u0 = scale * rng.standard_normal(width) + 1e-3 * np.sign(rng.standard_normal(width))
    v0 = np.zeros(width) if zero_v else scale * rng.standard_normal(width)
    model = diag_net().from_init({"u": u0, "v": v0}, beta_star=beta)
    times = np.linspace(0.0, 2.0, 5)
    traj = ed.solve(model, times)
    ru, rv = riccati_reference(u0, v0, beta, times, dps=30)
    for name, ref in (("u", ru), ("v", rv)):
        ref = np.array(ref, dtype=float)
        scale_ref = max(np.abs(ref).max(), 1e-300)
        assert np.abs(traj[name] - ref).max() <= 1e-9 * scale_ref, name


def test_derived_rhs_is_minus_rate_times_the_finite_difference_gradient():
    eta_v = sp.Symbol("eta_v")
    net = ed.Network("diag_rates", params=[u, v], index=i, width=d, loss=LOSS,
                     hyper=[b, eta_v], rates={u: 2, v: eta_v})
    model = net.from_init({"u": U0, "v": V0}, beta_star=0.7, eta_v=0.25)
    low = ed.lower(model)
    y = low.pack(model.initial_state())

    def loss(y):
        uu, vv = y[:3], y[3:]
        return (np.sum(uu**2 - vv**2) - 0.7) ** 2 / 2

    h = 1e-6
    grad = np.array([(loss(y + h * e) - loss(y - h * e)) / (2 * h) for e in np.eye(6)])
    rates = np.r_[np.full(3, 2.0), np.full(3, 0.25)]
    np.testing.assert_allclose(low.rhs(0.0, y), -rates * grad, rtol=1e-7, atol=1e-10)


@settings(max_examples=15, deadline=None)
@given(width=st.integers(1, 6), seed=st.integers(0, 2**16), lam=st.floats(0.0, 2.0),
       beta=st.floats(-2.0, 2.0))
def test_rhs_with_weight_decay_is_minus_the_finite_difference_gradient(width, seed, lam, beta):
    """A loss whose derived rhs is a sum at the top (residual term plus decay), written by
    the generated code into the result in place, against 30-digit central differences of
    the loss written here; and every call returns a new array (the integrators keep them)."""
    lam_s = sp.Symbol("lam")
    loss = (sp.Sum(u[i] * v[i], (i, 0, d - 1)) - b) ** 2 / 2 \
        + lam_s / 2 * sp.Sum(u[i] ** 2 + v[i] ** 2, (i, 0, d - 1))
    net = ed.Network("decay", params=[u, v], index=i, width=d, loss=loss, hyper=[b, lam_s])
    rng = np.random.default_rng(seed)
    u0, v0 = rng.normal(size=width), rng.normal(size=width)
    model = net.from_init({"u": u0, "v": v0}, beta_star=beta, lam=lam)
    low = ed.lower(model)
    y = low.pack(model.initial_state())

    def loss_mp(z):
        uu, vv = z[:width], z[width:]
        return (mpmath.fsum(a * c for a, c in zip(uu, vv)) - beta) ** 2 / 2 \
            + lam / 2 * mpmath.fsum(x ** 2 for x in z)

    with mpmath.workdps(30):
        z = [mpmath.mpf(float(x)) for x in y]
        h = mpmath.mpf("1e-12")
        grad = [float((loss_mp(z[:k] + [z[k] + h] + z[k + 1:])
                       - loss_mp(z[:k] + [z[k] - h] + z[k + 1:])) / (2 * h))
                for k in range(2 * width)]
    first = low.rhs(0.0, y)
    np.testing.assert_allclose(first, -np.array(grad), rtol=1e-12, atol=1e-13)
    second = low.rhs(0.0, 2 * y)
    assert second is not first
    np.testing.assert_allclose(low.rhs(0.0, y), first, rtol=0, atol=0)


def test_declared_symmetry_is_proven_and_conserved_along_the_flow():
    net = diag_net(symmetries={"hyperbolic": {u: v[i], v: u[i]}})
    flow = ed.gradient_flow(net.from_init({"u": U0, "v": V0}, beta_star=0.5))
    (q,) = flow.conserved
    assert q.proven
    # Noether: Q = (1/2) Σ_b Σ_i θ_bi (Aθ)_bi = Σ_i u_i v_i.
    from exactdyn.symbolic.sums import WIDTH, normalize

    assert sp.simplify(q.expr - normalize(sp.Sum(u[i] * v[i], (i, 0, WIDTH - 1)))) == 0
    traj = ed.solve(net.from_init({"u": U0, "v": V0}, beta_star=0.5), TIMES)
    Q = np.sum(traj["u"] * traj["v"], axis=1)
    np.testing.assert_allclose(Q, Q[0], rtol=1e-10)


def test_a_false_symmetry_is_not_proven():
    net = diag_net(symmetries={"scaling": {u: u[i], v: v[i]}})  # not a symmetry of L
    (q,) = ed.gradient_flow(net.from_init({"u": U0, "v": V0}, beta_star=0.5)).conserved
    assert not q.proven


# ---- closed forms -------------------------------------------------------------------------
w = sp.IndexedBase("w")
c = sp.Symbol("c")
SUM_LOSS = (sp.Sum(w[i], (i, 0, d - 1)) - c) ** 2 / 2  # dw_i/dt = -(Σw - c)
w0 = sp.IndexedBase("w0")
t = sp.Symbol("t", nonnegative=True)
S0 = sp.Sum(w0[i], (i, 0, d - 1))
RIGHT = w0[i] - (S0 - c) * (1 - sp.exp(-d * t)) / d  # Σw relaxes at rate d
WRONG = w0[i] - (S0 - c) * (1 - sp.exp(-t))


def sum_net(solution):
    return ed.Network("sum_regression", params=[w], index=i, width=d, loss=SUM_LOSS,
                      hyper=[c], closed_form=ed.ClosedForm({w: solution}, {w: w0}, t=t))


def test_user_closed_form_is_proven_and_verified():
    net = sum_net(RIGHT)
    model = net.from_init({"w": [0.5, -1.0, 0.25, 2.0]}, c=1.5)
    cf = ed.closed_form(model)
    assert cf.proven and all(r == 0 for r in cf.residual().values())
    # The closed form against a hand evaluation (width d = 4 enters the rate).
    ex = ed.exact(model, TIMES)
    w0v = np.array([0.5, -1.0, 0.25, 2.0])
    hand = w0v[None, :] - (w0v.sum() - 1.5) * (1 - np.exp(-4 * TIMES))[:, None] / 4
    np.testing.assert_allclose(ex["w"], hand, rtol=1e-14, atol=1e-15)
    assert ed.verify(model, TIMES).passed
    rep = ed.verify(model, TIMES, precision=30)
    assert rep.passed and rep["w"].max_abs_error < 1e-25


def test_a_wrong_closed_form_fails_its_residual_and_verify():
    model = sum_net(WRONG).from_init({"w": [0.5, -1.0, 0.25, 2.0]}, c=1.5)
    cf = ed.closed_form(model)
    assert not cf.proven
    assert not ed.verify(model, TIMES).passed


def riccati_closed_form() -> ed.ClosedForm:
    """The diagonal network's closed form (module docstring) as the user would write it."""
    u0b, v0b = sp.IndexedBase("u0"), sp.IndexedBase("v0")
    A = sp.Sum(u0b[i] ** 2, (i, 0, d - 1))
    B = sp.Sum(v0b[i] ** 2, (i, 0, d - 1))
    lam = sp.sqrt(b**2 + 4 * A * B)
    zp, zm = (-b + lam) / (2 * B), (-b - lam) / (2 * B)
    E = (1 - zp) / (1 - zm) * sp.exp(-4 * lam * t)
    z = (zp - zm * E) / (1 - E)
    return ed.ClosedForm({u: u0b[i] / sp.sqrt(z), v: v0b[i] * sp.sqrt(z)}, {u: u0b, v: v0b}, t=t)


def test_closed_form_and_precision_agree_on_the_diagonal_network():
    """The Riccati closed form given by the user, evaluated by the package at 30 digits,
    against the hand solution (a numeric check: its symbolic proof is the slow test)."""
    net = diag_net(closed_form=riccati_closed_form())
    model = net.from_init({"u": U0, "v": V0}, beta_star=0.5)
    ex = ed.exact(model, TIMES, precision=30)
    ru, _ = riccati_reference(U0, V0, 0.5, TIMES)
    with mpmath.workdps(40):
        err = max(abs(x - y) / abs(y) for x, y in zip(ex["u"].ravel(), ru.ravel()))
    assert err < 1e-25
    assert ed.verify(model, TIMES).passed


# ---- report, phase diagram, pickling ------------------------------------------------------
def test_report_of_a_user_network(tmp_path):
    model = sum_net(RIGHT).from_init({"w": [0.5, -1.0]}, c=1.0)
    rep = ed.report(model, tmp_path / "rep", t=[0.0, 0.5, 1.0], precision=20, figures=False)
    text = (tmp_path / "rep" / "README.md").read_text()
    assert "sum_regression" in text and "PASSED" in text
    assert rep.content.proofs and all(s.proven for s in rep.content.proofs)


def _loss_label(model):
    """A user classifier: converged or not at t = 3 (module-level: picklable)."""
    loss = float(ed.solve(model, [0.0, 3.0])["loss"][-1])
    return {"label": "converged" if loss < 1e-6 else "slow", "scores": {"loss": loss}}


def test_phase_diagram_over_a_user_networks_hyperparameters():
    from concurrent.futures import ThreadPoolExecutor

    model = diag_net().random_init(4, scale=0.3, seed=1, beta_star=0.5)
    with ThreadPoolExecutor(2) as pool:
        pd = ed.phase_diagram(model, x=("beta_star", [0.01, 1.0]), y=("scale", [0.05, 0.5]),
                              cell=_loss_label, executor=pool, progress=False)
    assert pd.labels.shape == (2, 2) and not pd.failures
    # beta = 1: the loss's Hessian eigenvalue ~ 8 beta makes it converge by t = 3;
    # beta = 0.01 from a small init is stuck on the plateau near the origin.
    assert set(pd.labels[:, 1]) == {"converged"} and pd.labels[0, 0] == "slow"


def test_network_models_pickle_and_solve_the_same():
    model = diag_net(symmetries={"Q": {u: v[i], v: u[i]}}).from_init({"u": U0, "v": V0},
                                                                     beta_star=0.5)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(ed.solve(again, TIMES)["u"], ed.solve(model, TIMES)["u"])


# ---- bad input ----------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    ({"loss": "u[i]**2"}, "loss must be a sympy expression"),
    ({"loss": 1.5}, "loss must be a sympy expression"),
    ({"loss": sp.Sum(u[i] ** 2, (i, 0, d - 1))}, "parameter 'v' does not appear"),
    ({"loss": LOSS + sp.Symbol("mystery")}, "free symbol mystery"),
    ({"loss": u[i] ** 2 + LOSS}, "outside a reduction"),
    ({"params": [u, "v"]}, "IndexedBase"),
    ({"rates": {u: -1}}, r"rates\[u\]"),
    ({"name": "has space"}, "name must be"),
])
def test_bad_network_definitions_name_the_problem(kwargs, match):
    args = dict(name="diag_linear", params=[u, v], index=i, width=d, loss=LOSS, hyper=[b])
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ed.Network(**args)


@pytest.mark.parametrize("init, values, match", [
    ({"u": [1.0, 2.0], "v": [1.0]}, {"beta_star": 1.0}, "init\\['v'\\] has length 1"),
    ({"u": [1.0, np.nan], "v": [1.0, 0.0]}, {"beta_star": 1.0}, "must be finite"),
    ({"u": [1.0, np.inf], "v": [1.0, 0.0]}, {"beta_star": 1.0}, "must be finite"),
    ({"u": [1.0]}, {"beta_star": 1.0}, "give an initial value for v"),
    ({"u": [1.0], "v": [1.0], "x": [1.0]}, {"beta_star": 1.0}, "'x' is not a parameter"),
    ({"u": [1.0], "v": [1.0]}, {}, "give a value for beta_star"),
    ({"u": [1.0], "v": [1.0]}, {"beta_star": 1.0, "gamma": 2.0}, "unknown value 'gamma'"),
    ({"u": [1.0], "v": [1.0]}, {"beta_star": float("nan")}, "beta_star must be finite"),
])
def test_bad_inits_and_values_name_the_problem(init, values, match):
    with pytest.raises(ValueError, match=match):
        diag_net().from_init(init, **values)


def test_a_network_without_closed_form_says_so():
    model = diag_net().from_init({"u": U0, "v": V0}, beta_star=0.5)
    with pytest.raises(ValueError, match="has no closed form"):
        ed.exact(model, TIMES)


@pytest.mark.slow
def test_riccati_closed_form_of_the_diagonal_network_is_proven():
    net = diag_net(closed_form=riccati_closed_form())
    assert ed.closed_form(net.from_init({"u": U0, "v": V0}, beta_star=0.5)).proven


def test_example_script_runs(tmp_path, monkeypatch):
    import runpy
    import sys

    path = os.path.join(os.path.dirname(__file__), "..", "examples", "user_network.py")
    monkeypatch.syspath_prepend(os.path.dirname(path))  # the examples' shared _out.py
    argv = sys.argv
    sys.argv = [path, "--out", str(tmp_path), "--quick"]
    try:
        runpy.run_path(path, run_name="__main__")
    finally:
        sys.argv = argv
    assert (tmp_path / "report" / "README.md").exists()


def test_gradient_descent_on_a_user_network_meets_the_flow_and_the_modified_flow():
    """Issue 12 for a user-defined network: GD against the flow at order 1 and against the
    modified flow (derived from the user's loss) at order 2, over four step sizes."""
    model = diag_net().from_init({"u": U0, "v": V0}, beta_star=0.5)
    res = ed.verify_gd(model, [0.02, 0.01, 0.005, 0.0025], t=1.0)
    assert res.order_flow == pytest.approx(1.0, abs=0.05)
    assert res.order_modified == pytest.approx(2.0, abs=0.1)
