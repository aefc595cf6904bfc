"""Sharpness (top eigenvalue of the rate-weighted Hessian) against closed forms and
finite differences of plain-numpy losses."""

import numpy as np
import pytest

import exactdyn as ed


def _fd_hessian(f, x, eps=1e-4):
    n = x.size
    Hm = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            ei, ej = np.zeros(n), np.zeros(n)
            ei[i], ej[j] = eps, eps
            Hm[i, j] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) \
                / (4 * eps**2)
    return (Hm + Hm.T) / 2


def test_linear1d_width_one_matches_the_closed_form_two_by_two_eigenvalue():
    # L = 1/2 S (k u w - c)^2: d2L/du2 = S k^2 w^2, d2L/dw2 = S k^2 u^2,
    # d2L/dudw = S k (2 k u w - c); weighted by sqrt(eta_u eta_w) off the diagonal.
    u, w, k, s, eu, ew, c = 0.3, 0.7, 1.5, 0.8, 1.0, 0.5, 2.0
    m = ed.Linear1D.from_init([u], [w], kappa=k, eta_u=eu, eta_w=ew, teacher=c, x_var=s)
    a, d = s * k * k * eu * w * w, s * k * k * ew * u * u
    b = s * k * np.sqrt(eu * ew) * (2 * k * u * w - c)
    exact = (a + d) / 2 + np.sqrt(((a - d) / 2) ** 2 + b * b)
    assert ed.sharpness(m)[0] == pytest.approx(exact, rel=1e-13)


def test_linear1d_sharpness_matches_a_finite_difference_hessian():
    k, s, eu, ew, c = 1.2, 0.9, 0.7, 1.3, -1.0
    u0, w0 = np.array([0.3, -0.2, 0.5, 0.1]), np.array([0.4, 0.1, -0.3, 0.2])
    m = ed.Linear1D.from_init(u0, w0, kappa=k, eta_u=eu, eta_w=ew, teacher=c, x_var=s)
    L = lambda y: 0.5 * s * (k * (y[:4] @ y[4:]) - c) ** 2  # noqa: E731
    r = np.sqrt(np.array([eu] * 4 + [ew] * 4))
    ref = np.linalg.eigvalsh(r[:, None] * _fd_hessian(L, np.concatenate([u0, w0])) * r)[-1]
    assert ed.sharpness(m)[0] == pytest.approx(ref, rel=1e-6)


def test_linear1d_sharpness_at_convergence_is_the_closed_form_limit_ntk():
    # At a global minimum the Hessian is S k^2 g g^T (g = (w, u)), so the sharpness is the
    # NTK, whose limit is K_inf = omega sqrt(p*^2 + k'^2) (MATH.md section 1).
    k, s, eu, ew, c = 1.0, 1.0, 1.0, 0.5, 2.0
    u0, w0 = np.array([0.3, -0.2, 0.5]), np.array([0.4, 0.1, -0.3])
    m = ed.Linear1D.from_init(u0, w0, kappa=k, eta_u=eu, eta_w=ew, teacher=c, x_var=s)
    q1 = u0 @ u0 / eu - w0 @ w0 / ew
    q2 = (u0 @ u0) * (w0 @ w0) - (u0 @ w0) ** 2
    kp = np.sqrt(eu * ew * q1**2 / 4 + q2)
    omega = 2 * k * k * s * np.sqrt(eu * ew)
    k_inf = omega * np.sqrt((c / k) ** 2 + kp**2)
    traj = ed.solve(m, [0.0, 60.0])
    sharp = ed.sharpness(traj, model=m)
    assert sharp[-1] == pytest.approx(k_inf, rel=1e-9)


def test_two_layer_tanh_sharpness_matches_a_finite_difference_hessian():
    X = np.array([[1.0, 0.5], [-0.3, 1.0], [0.7, -1.0]])
    y = np.array([0.5, -0.2, 0.9])
    m = ed.TwoLayer(3, X, y, activation="tanh", beta1=0.8, beta2=0.8, seed=1)
    Xb, n, mm = m.X, m.n, 3

    def L(v):
        a, W = v[:mm], v[mm:].reshape(mm, -1)
        return np.sum((np.tanh(W @ Xb.T).T @ a / m.alpha - y) ** 2) / (2 * n)

    v0 = np.concatenate([m.a0, m.W0.ravel()])
    ref = np.linalg.eigvalsh(_fd_hessian(L, v0))[-1]
    assert ed.sharpness(m)[0] == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize("act", ["gelu", "x*tanh(x)", "sigmoid"])
def test_two_layer_sharpness_of_other_activations_matches_a_finite_difference_hessian(act):
    """GELU too (its erf has no complex continuation in numpy, so the complex step cannot
    serve it): the Jacobian comes from the symbolically derived directional derivative."""
    from scipy.special import erf

    sigma = {"gelu": lambda h: h * (1 + erf(h / np.sqrt(2))) / 2,
             "x*tanh(x)": lambda h: h * np.tanh(h),
             "sigmoid": lambda h: 1 / (1 + np.exp(-h))}[act]
    X = np.array([[1.0, 0.5], [-0.3, 1.0], [0.7, -1.0], [0.2, 0.3]])
    y = np.array([0.5, -0.2, 0.9, 0.1])
    m = ed.TwoLayer(2, X, y, activation=act, beta1=0.9, beta2=0.9, seed=3)
    Xb, n, mm = m.X, m.n, 2

    def L(v):
        a, W = v[:mm], v[mm:].reshape(mm, -1)
        return np.sum((sigma(W @ Xb.T).T @ a / m.alpha - y) ** 2) / (2 * n)

    v0 = np.concatenate([m.a0, m.W0.ravel()])
    ref = np.linalg.eigvalsh(_fd_hessian(L, v0))[-1]
    assert ed.sharpness(m)[0] == pytest.approx(ref, rel=1e-6)


def test_trajectory_needs_its_model():
    m = ed.Linear1D(width=2, seed=0)
    traj = ed.solve(m, [0.0, 1.0])
    with pytest.raises(ValueError, match="model"):
        ed.sharpness(traj)
    with pytest.raises(ValueError, match="model_or_trajectory"):
        ed.sharpness(traj, model=ed.Linear1D(width=3, seed=0))


def test_plot_sharpness_draws_the_stability_line(tmp_path):
    m = ed.Linear1D(width=2, seed=0)
    traj = ed.gd(m, 0.1, [0.0, 0.5, 1.0])
    ax = ed.plot_sharpness(traj.t, ed.sharpness(traj, model=m), lr=0.1,
                           path=tmp_path / "s.png")
    assert (tmp_path / "s.png").exists()
    assert any(np.allclose(line.get_ydata(), 20.0) for line in ax.get_lines())


def test_deep_linear_sharpness_matches_a_finite_difference_hessian():
    # no derived Jacobian in the chain lowering: complex-step Jacobian-vector products
    syx = np.array([[2.0, 0.3], [0.0, 1.0]])
    m = ed.DeepLinear(depth=3, width=3, in_dim=2, out_dim=2, sigma_yx=syx, seed=2)
    shapes = [(3, 2), (3, 3), (2, 3)]

    def L(v):
        mats, k = [], 0
        for s in shapes:
            mats.append(v[k:k + s[0] * s[1]].reshape(s))
            k += s[0] * s[1]
        return 0.5 * np.sum((mats[2] @ mats[1] @ mats[0] - syx) ** 2)

    v0 = np.concatenate([np.ravel(x) for x in m.initial_state().values()])
    ref = np.linalg.eigvalsh(_fd_hessian(L, v0))[-1]
    assert ed.sharpness(m)[0] == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize("factor, stable", [(0.9, True), (1.1, False)])
def test_gd_near_a_minimum_is_stable_exactly_below_two_over_the_sharpness(factor, stable):
    # At a global minimum the GD map's Jacobian is 1 - lr H Hess(L); its eigenvalues are
    # 1 - lr * lambda, so a perturbation decays iff lr * lambda_max < 2.
    eu, ew, c = 1.0, 0.5, 2.0
    u, w = np.sqrt(2.0), np.sqrt(2.0)  # u w = c: a global minimum, width 1
    sharp = ed.sharpness(ed.Linear1D.from_init([u], [w], eta_u=eu, eta_w=ew, teacher=c))[0]
    assert sharp == pytest.approx(eu * w * w + ew * u * u, rel=1e-13)  # the NTK there
    lr = factor * 2.0 / sharp
    m = ed.Linear1D.from_init([u + 1e-4], [w], eta_u=eu, eta_w=ew, teacher=c)
    traj = ed.gd(m, lr, np.arange(0, 201) * lr)
    p = traj["u"][:, 0] * traj["w"][:, 0]
    if stable:
        assert abs(p[-1] - c) < 1e-3 * abs(p[0] - c)
    else:
        assert abs(p[100] - c) > 10 * abs(p[0] - c)
