"""The lowered numpy callables against a hand-written numpy oracle (MATH.md §1).

L(u, w) = 1/2 Sxx (kappa u.w - c)^2 is quadratic in each single coordinate, and so is
each entry of the rhs, so central differences are exact up to rounding: the step can be
as large as the state itself, which keeps rounding small for every scale drawn here.
"""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import exactdyn as ed


def log_uniform(lo, hi):
    return st.floats(np.log10(lo), np.log10(hi)).map(lambda e: float(10.0**e))


def signed(lo, hi):
    return st.tuples(st.sampled_from([-1.0, 1.0]), log_uniform(lo, hi)).map(
        lambda t: t[0] * t[1])


models = st.builds(
    ed.Linear1D,
    width=st.integers(1, 50),
    kappa=signed(1e-2, 1e2),
    eta_u=log_uniform(1e-2, 1e2),
    eta_w=log_uniform(1e-2, 1e2),
    sigma_u=log_uniform(1e-3, 1e1),
    sigma_w=log_uniform(1e-3, 1e1),
    teacher=signed(1e-2, 1e2),
    x_var=log_uniform(1e-2, 1e2),
    seed=st.integers(0, 2**32 - 1),
)


def oracle_loss(m, u, w):
    return 0.5 * m.x_var * (m.kappa * np.dot(u, w) - m.teacher) ** 2


def oracle_rhs_scale(m, u, w, h):
    """Natural size of -eta dL/dtheta over the perturbed states used below."""
    r = abs(m.kappa * np.dot(u, w) - m.teacher) + abs(m.kappa) * h * (
        np.abs(u).max() + np.abs(w).max())
    return max(m.eta_u, m.eta_w) * m.x_var * abs(m.kappa) * r * (
        np.abs(u).max() + np.abs(w).max() + h)


def central_grad(f, y, h):
    g = np.empty_like(y)
    for k in range(y.size):
        e = np.zeros_like(y)
        e[k] = h
        g[k] = (f(y + e) - f(y - e)) / (2 * h)
    return g


@given(models)
def test_rhs_is_minus_eta_times_gradient_of_handwritten_loss(m):
    low = ed.lower(m)
    st0 = m.initial_state()
    y = low.pack(st0)
    n = m.width
    assert y.shape == (2 * n,)
    assert np.array_equal(low.unpack(y)["u"], st0["u"])
    assert np.array_equal(low.unpack(y)["w"], st0["w"])
    h = 0.5 * np.abs(y).max()

    def L(yy):
        return oracle_loss(m, yy[:n], yy[n:])

    rates = np.concatenate([np.full(n, m.eta_u), np.full(n, m.eta_w)])
    fd = -rates * central_grad(L, y, h)
    got = low.rhs(0.0, y)
    scale = oracle_rhs_scale(m, st0["u"], st0["w"], h)
    assert np.all(np.abs(got - fd) <= 1e-6 * np.abs(fd) + 1e-10 * scale), (
        np.abs(got - fd).max(), scale)
    # And the rhs is the closed-form gradient written by hand (an exact second oracle).
    r = m.x_var * m.kappa * (m.kappa * np.dot(st0["u"], st0["w"]) - m.teacher)
    hand = np.concatenate([-m.eta_u * r * st0["w"], -m.eta_w * r * st0["u"]])
    assert np.allclose(got, hand, rtol=1e-12, atol=1e-14 * scale)


@given(models)
def test_jacobian_is_finite_difference_of_rhs(m):
    low = ed.lower(m)
    y = low.pack(m.initial_state())
    n = m.width
    h = 0.5 * np.abs(y).max()
    J = low.jac(0.0, y)
    assert J.shape == (2 * n, 2 * n)
    fd = np.empty_like(J)
    for k in range(2 * n):
        e = np.zeros_like(y)
        e[k] = h
        fd[:, k] = (low.rhs(0.0, y + e) - low.rhs(0.0, y - e)) / (2 * h)
    ymax = np.abs(y).max() + h
    r = abs(m.kappa * np.dot(y[:n], y[n:]) - m.teacher)
    scale = max(m.eta_u, m.eta_w) * m.x_var * abs(m.kappa) * (abs(m.kappa) * ymax**2 + r)
    assert np.all(np.abs(J - fd) <= 1e-6 * np.abs(fd) + 1e-10 * scale), (
        np.abs(J - fd).max(), scale)


@given(models, st.integers(1, 5))
def test_observables_match_handwritten_formulas(m, T):
    low = ed.lower(m)
    rng = np.random.default_rng(m.seed)
    st0 = m.initial_state()
    # A small batch of states (time x width): the init and random rescalings of it.
    s = rng.uniform(0.1, 3.0, size=(T, 1))
    U, W = s * st0["u"][None, :], st0["w"][None, :] / s
    obs = low.observables({"u": U, "w": W})
    assert set(obs) >= {"end_to_end", "loss", "ntk", "norm_u", "norm_w", "alignment"}
    for k in range(T):
        u, w = U[k], W[k]
        p = np.dot(u, w)
        nu, nw = np.linalg.norm(u), np.linalg.norm(w)
        expected = {
            "end_to_end": m.kappa * p,
            "loss": 0.5 * m.x_var * (m.kappa * p - m.teacher) ** 2,
            "ntk": m.kappa**2 * m.x_var * (m.eta_u * nw**2 + m.eta_w * nu**2),
            "norm_u": nu,
            "norm_w": nw,
            "alignment": p / (nu * nw),
        }
        scale = {"end_to_end": abs(m.kappa) * nu * nw,
                 "loss": m.x_var * (abs(m.kappa) * nu * nw + abs(m.teacher)) ** 2,
                 "ntk": expected["ntk"], "norm_u": nu, "norm_w": nw, "alignment": 1.0}
        for name, val in expected.items():
            got = obs[name][k]
            assert abs(got - val) <= 1e-12 * scale[name], (name, got, val)
        assert -1 - 1e-12 <= obs["alignment"][k] <= 1 + 1e-12
