"""Two-layer networks (MATH.md §4): derived flow against finite differences of a
hand-written loss and a hand-written rhs, conservation through ReLU kinks, the early-stage
closed form's O(scale^2) error, condensation, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.special import erf

import exactdyn as ed
from exactdyn.analysis.condensation import cosine_similarity, direction_clusters
from exactdyn.cli import main
from exactdyn.models.activations import NAMED, activation
from exactdyn.numeric.twolayer import lowered_two_layer, sources
from exactdyn.plotting.condensation import plot_condensation
from exactdyn.regimes.scaling import luo_exponents

# Hand-written activations and derivatives (independent of sympy): the oracle.
ORACLE = {
    "relu": (lambda h: np.maximum(h, 0), lambda h: (h > 0) * 1.0),
    "leaky_relu": (lambda h: np.where(h > 0, h, h / 100), lambda h: np.where(h > 0, 1, 0.01)),
    "tanh": (np.tanh, lambda h: 1 / np.cosh(h) ** 2),
    "sigmoid": (lambda h: 1 / (1 + np.exp(-h)),
                lambda h: np.exp(-h) / (1 + np.exp(-h)) ** 2),
    "softplus": (lambda h: np.log1p(np.exp(h)), lambda h: 1 / (1 + np.exp(-h))),
    "silu": (lambda h: h / (1 + np.exp(-h)),
             lambda h: 1 / (1 + np.exp(-h)) + h * np.exp(-h) / (1 + np.exp(-h)) ** 2),
    "gelu": (lambda h: h * (1 + erf(h / np.sqrt(2))) / 2,
             lambda h: (1 + erf(h / np.sqrt(2))) / 2 + h * np.exp(-h**2 / 2) / np.sqrt(2 * np.pi)),
    "x_tanh": (lambda h: h * np.tanh(h), lambda h: np.tanh(h) + h / np.cosh(h) ** 2),
    "x2_tanh": (lambda h: h**2 * np.tanh(h),
                lambda h: 2 * h * np.tanh(h) + h**2 / np.cosh(h) ** 2),
    "linear": (lambda h: h, lambda h: np.ones_like(h)),
}


def oracle_loss(a, W, X, y, alpha, act):
    s, _ = ORACLE[act]
    f = s(W @ X.T).T @ a / alpha
    return np.mean((f - y) ** 2) / 2


def oracle_rhs(a, W, X, y, alpha, act):
    s, ds = ORACLE[act]
    h = W @ X.T
    e = s(h).T @ a / alpha - y
    n = len(y)
    return -(s(h) @ e) / (alpha * n), -(a[:, None] / (alpha * n)) * ((ds(h) * e) @ X)


shapes = st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3))


@st.composite
def networks(draw):
    m, n, d = draw(shapes)
    vals = st.floats(-1.5, 1.5, allow_nan=False, allow_subnormal=False)
    a = np.array(draw(st.lists(vals, min_size=m, max_size=m)))
    W = np.array(draw(st.lists(vals, min_size=m * (d + 1), max_size=m * (d + 1)))).reshape(m, d + 1)
    X = np.array(draw(st.lists(vals, min_size=n * d, max_size=n * d))).reshape(n, d)
    y = np.array(draw(st.lists(vals, min_size=n, max_size=n)))
    alpha = draw(st.floats(0.3, 3.0))
    return a, W, X, y, alpha


@pytest.mark.parametrize("act", list(NAMED))
@given(net=networks())
def test_lowered_rhs_is_minus_gradient_of_handwritten_loss(act, net):
    a, W, X, y, alpha = net
    model = ed.TwoLayer.from_init(a, W, X, y, activation=act, alpha=alpha)
    if activation(act).piecewise:  # finite differences need a margin from the kinks
        assume(np.min(np.abs(W @ model.X.T)) > 1e-3)
    low = lowered_two_layer(model)
    r = low.rhs(0.0, low.pack(a, W))
    theta = low.pack(a, W)
    eps = 1e-6
    fd = np.empty_like(theta)
    for k in range(theta.size):
        tp, tm = theta.copy(), theta.copy()
        tp[k] += eps
        tm[k] -= eps
        fd[k] = -(oracle_loss(*low.unpack(tp).values(), model.X, y, alpha, act)
                  - oracle_loss(*low.unpack(tm).values(), model.X, y, alpha, act)) / (2 * eps)
    np.testing.assert_allclose(r, fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("act", list(NAMED))
@given(net=networks())
def test_lowered_rhs_equals_handwritten_rhs(act, net):
    a, W, X, y, alpha = net
    model = ed.TwoLayer.from_init(a, W, X, y, activation=act, alpha=alpha)
    low = lowered_two_layer(model)
    ra, rw = oracle_rhs(a, W, model.X, y, alpha, act)
    r = low.rhs(0.0, low.pack(a, W))
    np.testing.assert_allclose(r, low.pack(ra, rw), rtol=1e-12, atol=1e-14)


def test_generated_code_is_vectorized():
    src = sources()["rhs"].source
    assert "W @ X.T" in src
    assert "for " not in src and "while " not in src


def test_expression_activation_matches_named():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(5, 2)), rng.normal(size=5)
    a, W = rng.normal(size=3), rng.normal(size=(3, 3))
    r1 = lowered_two_layer(ed.TwoLayer.from_init(a, W, X, y, "x_tanh")).rhs(0, np.r_[a, W.ravel()])
    r2 = lowered_two_layer(ed.TwoLayer.from_init(a, W, X, y, "x*tanh(x)")).rhs(
        0, np.r_[a, W.ravel()])
    np.testing.assert_allclose(r1, r2, rtol=1e-14)


@pytest.mark.parametrize("act,p", [("tanh", 1), ("x_tanh", 2), ("x2_tanh", 3), ("relu", 1),
                                   ("sigmoid", 0), ("gelu", 1), ("sin(x)**2", 2),
                                   ("x**3 + x**5", 3)])
def test_multiplicity(act, p):
    assert activation(act).multiplicity == p


@pytest.mark.parametrize("act,expected", [("relu", True), ("leaky_relu", True),
                                          ("linear", True), ("tanh", False),
                                          ("x_tanh", False)])
def test_balance_proven_only_for_homogeneous(act, expected):
    model = ed.TwoLayer(4, "1d-sine", activation=act, n=5)
    assert model.conservation_proven() is expected
    assert activation(act).homogeneous is expected


@pytest.mark.parametrize("act", ["relu", "leaky_relu"])
def test_balance_conserved_through_kinks(act):
    model = ed.TwoLayer(12, "1d-sine", activation=act, beta1=0.3, beta2=0.3, seed=2, n=8)
    traj = ed.solve(model, np.linspace(0, 6, 7))
    q = traj["a"] ** 2 - np.sum(traj["W"] ** 2, axis=-1)
    assert traj.meta["kinks"] > 0
    np.testing.assert_allclose(q, np.broadcast_to(q[0], q.shape), atol=1e-9)
    assert np.all(np.diff(traj["loss"]) <= 1e-12)  # gradient flow decreases the loss


def test_balance_breaks_for_tanh():
    model = ed.TwoLayer(6, "1d-sine", activation="tanh", beta1=1.0, beta2=1.0, n=8)
    traj = ed.solve(model, [0, 3])
    q = traj["a"] ** 2 - np.sum(traj["W"] ** 2, axis=-1)
    assert np.max(np.abs(q[1] - q[0])) > 1e-3


def test_trajectory_shapes_and_observables():
    model = ed.TwoLayer(6, "1d-sine", activation="tanh", beta1=0.5, beta2=0.5, n=7)
    traj = ed.solve(model, [0.0, 0.5, 1.0])
    assert traj["a"].shape == (3, 6) and traj["W"].shape == (3, 6, 2)
    assert traj["output"].shape == (3, 7) and traj["rd"][0] == 0
    f = np.tanh(traj["W"][-1] @ model.X.T).T @ traj["a"][-1]
    np.testing.assert_allclose(traj["output"][-1], f, rtol=1e-12)
    np.testing.assert_allclose(traj["loss"][-1], np.mean((f - model.y) ** 2) / 2, rtol=1e-12)
    np.testing.assert_array_equal(model.X[:, -1], 1.0)  # bias column last


def test_inits():
    m = ed.TwoLayer(8, "1d-sine", init="mirrored", beta1=0.3, beta2=0.2, n=5)
    np.testing.assert_allclose(ed.lower(m).observe(m.a0, m.W0)[0], 0.0, atol=1e-15)
    b = ed.TwoLayer(8, "1d-sine", init="balanced", n=5)
    np.testing.assert_allclose(np.abs(b.a0), np.linalg.norm(b.W0, axis=1), rtol=1e-15)
    d = ed.TwoLayer(8, "1d-sine", init="dominated", n=5)
    assert np.all(np.abs(d.a0) >= np.linalg.norm(d.W0, axis=1))
    g1 = ed.TwoLayer(8, "1d-sine", seed=4, n=5)
    g2 = ed.TwoLayer(8, "1d-sine", seed=4, n=5)
    np.testing.assert_array_equal(g1.W0, g2.W0)


@given(g=st.floats(-1, 3), gp=st.floats(-2, 2), alpha=st.floats(0.1, 10),
       m=st.integers(2, 5000))
def test_gamma_mapping_round_trips_through_luo_exponents(g, gp, alpha, m):
    model = ed.TwoLayer(m, np.zeros((2, 1)), [0.0, 1.0], gamma=g, gamma_prime=gp, alpha=alpha)
    assert model.beta1 * model.beta2 / model.alpha == pytest.approx(m ** -g, rel=1e-9)
    got = luo_exponents(model.alpha, model.beta1, model.beta2, m)
    np.testing.assert_allclose(got, (g, gp), atol=1e-9)


def test_early_stage_closed_form_error_is_order_scale_squared():
    scales = np.array([0.08, 0.04, 0.02, 0.01])
    errs = []
    for sc in scales:
        model = ed.TwoLayer(10, "1d-sine", activation="tanh", beta1=sc, beta2=sc, seed=3, n=10)
        ts = [0.0, 1.0]
        cf, fl = ed.exact(model, ts), ed.solve(model, ts)
        diff = np.sqrt(np.sum((cf["a"][-1] - fl["a"][-1]) ** 2)
                       + np.sum((cf["W"][-1] - fl["W"][-1]) ** 2))
        size = np.sqrt(np.sum(fl["a"][-1] ** 2) + np.sum(fl["W"][-1] ** 2))
        errs.append(diff / size)
    order = np.polyfit(np.log(scales), np.log(errs), 1)[0]
    assert 1.8 < order < 2.2, (order, errs)


def test_closed_form_refuses_other_activations():
    # (ReLU and leaky ReLU go to the early-alignment form, tests/test_early_alignment.py)
    for act in ("x_tanh", "sigmoid"):
        with pytest.raises(ValueError, match="multiplicity-1"):
            ed.exact(ed.TwoLayer(4, "1d-sine", activation=act, n=4), [0, 1])


def test_tanh_small_init_condenses_onto_z():
    model = ed.TwoLayer(40, "1d-sine", activation="tanh", beta1=1e-4, beta2=1e-4, seed=1, n=20)
    z = model.X.T @ model.y / model.n
    traj = ed.solve(model, [0.0, 25.0])
    W = traj["W"][-1]
    cos = np.abs(W @ z) / (np.linalg.norm(W, axis=1) * np.linalg.norm(z))
    big = np.linalg.norm(W, axis=1) > 0.1 * np.linalg.norm(W, axis=1).max()
    assert np.min(cos[big]) > 0.99
    assert direction_clusters(W, rel_tol=0.1, signed=False) == 1
    assert direction_clusters(traj["W"][0], rel_tol=0.1, signed=False) > 3


def test_cosine_similarity_orders_two_clusters(tmp_path):
    W = np.array([[1, 0.01], [-1, 0], [1, -0.01], [-2, 0.02], [1e-9, 1e-9]])
    C, kept = cosine_similarity(W)
    assert 4 not in kept and C.shape == (4, 4)
    signs = np.sign(W[kept, 0])
    assert np.count_nonzero(np.diff(signs)) == 1  # ordered: the two clusters are contiguous
    assert direction_clusters(W) == 2 and direction_clusters(W, signed=False) == 1
    plot_condensation(W, path=tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 0


@pytest.mark.parametrize("kwargs,match", [
    ({"activation": "foo"}, "activation"),
    ({"activation": "bar(x)"}, "function 'bar'"),
    ({"activation": "x + os"}, "name 'os'"),
    ({"activation": "x**"}, "syntax"),
    ({"activation": "__import__('os')"}, "not allowed"),
    ({"activation": "x.real"}, "Attribute"),
    ({"alpha": 0.0}, "alpha"),
    ({"beta1": -1.0}, "beta1"),
    ({"beta2": 0.0}, "beta2"),
    ({"init": "xavier"}, "init"),
    ({"gamma": 1.0}, "gamma"),
    ({"beta1": 1.0, "gamma": 1.0, "gamma_prime": 0.0}, "either"),
])
def test_bad_model_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ed.TwoLayer(4, np.zeros((3, 1)), np.zeros(3), **kwargs)


def test_bad_data():
    with pytest.raises(ValueError, match="same number of samples"):
        ed.TwoLayer(4, np.zeros((3, 1)), np.zeros(2))
    with pytest.raises(ValueError, match="X must be finite"):
        ed.TwoLayer(4, np.array([[np.nan], [0.0]]), np.zeros(2))
    with pytest.raises(ValueError, match="y must be finite"):
        ed.TwoLayer(4, np.zeros((2, 1)), np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="width must be even"):
        ed.TwoLayer(3, np.zeros((2, 1)), np.zeros(2), init="mirrored")
    with pytest.raises(ValueError, match="W must have shape"):
        ed.TwoLayer.from_init(np.ones(2), np.ones((2, 1)), np.zeros((2, 1)), np.zeros(2))
    with pytest.raises(ValueError, match="data"):
        ed.TwoLayer(4, "no-such-data")


def test_npz_data(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, X=np.linspace(-1, 1, 4)[:, None], y=np.arange(4.0))
    model = ed.TwoLayer(4, str(p))
    assert model.X.shape == (4, 2)


@pytest.mark.parametrize("argv", [
    ["solve", "two-layer", "--activation", "foo"],
    ["solve", "two-layer", "--alpha", "-1"],
    ["solve", "two-layer", "--beta1", "1", "--gamma", "1", "--gamma-prime", "0"],
    ["solve", "two-layer", "--data", "nope"],
    ["exact", "two-layer", "--activation", "sigmoid"],
    ["solve", "two-layer", "--width", "x"],
])
def test_cli_errors_one_line_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("exactdyn: error: ") and err.count("\n") == 1


def test_cli_solve_two_layer(capsys):
    assert main(["solve", "two-layer", "--width", "6", "--activation", "tanh", "--gamma", "2",
                 "--gamma-prime", "0", "--n", "5", "--t", "0,1", "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    # every observable: the network's output at the 5 data points in named columns
    assert out[0] == "t,loss," + ",".join(f"output[{i}]" for i in range(5)) + ",rd"
    assert len(out) == 3


def _event_oracle(model, T, max_events=50):
    """Hand-written rhs, scipy events on every w_k . x_i, restart after each crossing."""
    from scipy.integrate import solve_ivp

    m, d = model.width, model.d_in
    X, y, al = model.X, model.y, model.alpha

    def f(t, s):
        ra, rw = oracle_rhs(s[:m], s[m:].reshape(m, d), X, y, al, "relu")
        return np.r_[ra, rw.ravel()]

    def event(k, i):
        ev = lambda t, s: s[m:].reshape(m, d)[k] @ X[i]  # noqa: E731
        ev.terminal = True
        return ev

    def pattern(s):
        return (s[m:].reshape(m, d) @ X.T).ravel() > 0  # entry k * n + i, as evs

    evs = [event(k, i) for k in range(m) for i in range(len(y))]
    t, s, n = 0.0, np.r_[model.a0, model.W0.ravel()], 0
    for _ in range(2 * max_events):  # bounded: every pass stops at an event or at T
        if t >= T or n >= max_events:
            break
        sol = solve_ivp(f, (t, T), s, method="DOP853", rtol=1e-12, atol=1e-14, events=evs)
        before = pattern(s)
        t, s = sol.t[-1], sol.y[:, -1]
        if sol.status == 1:
            fired = [j for j, te in enumerate(sol.t_events) if len(te)]
            # Step off the switching surface until the fired entry has changed sides: a
            # fixed nudge can leave it on the surface (rounding), and the restart would
            # fire the same event again, over and over. An entry that touches zero and
            # turns back (no side change within 1e-6) is no kink.
            for h in 1e-12 * 2.0 ** np.arange(21):
                trial = s + h * f(t, s)
                if any(pattern(trial)[j] != before[j] for j in fired):
                    break
            s, t = trial, t + h
            n += any(pattern(s)[j] != before[j] for j in fired)
    return s, n


@pytest.mark.parametrize("seed", [3, 4])
def test_relu_kinks_match_an_event_oracle(seed):
    X, y = np.array([[-1.0], [0.2], [0.9]]), np.array([0.8, -0.3, 0.6])
    model = ed.TwoLayer(3, X, y, activation="relu", seed=seed, beta1=0.5, beta2=0.5)
    traj = ed.solve(model, [0, 3.0], rtol=1e-12)
    ref, n = _event_oracle(model, 3.0)
    assert traj.meta["kinks"] == n > 0 and traj.meta["sliding_at_end"] == 0
    np.testing.assert_allclose(np.r_[traj["a"][-1], traj["W"][-1].ravel()], ref, atol=1e-9)


def test_relu_sliding_keeps_the_preactivation_at_zero():
    # seed 0: one neuron reaches a data point where both sides push h back (Filippov).
    X, y = np.array([[-1.0], [0.2], [0.9]]), np.array([0.8, -0.3, 0.6])
    model = ed.TwoLayer(3, X, y, activation="relu", seed=0, beta1=0.5, beta2=0.5)
    traj = ed.solve(model, np.linspace(0, 3, 7), rtol=1e-12)
    assert traj.meta["sliding_at_end"] == 1
    h = traj["W"][-1] @ model.X.T
    assert np.min(np.abs(h)) < 1e-8
    q = traj["a"] ** 2 - np.sum(traj["W"] ** 2, axis=-1)
    np.testing.assert_allclose(q, np.broadcast_to(q[0], q.shape), atol=1e-10)


def test_multiplicity_rule_p1_is_the_line_of_z():
    from exactdyn.closed_form.twolayer import stationary_directions

    model = ed.TwoLayer(4, "1d-cubic", activation="tanh", n=9)
    (u,) = stationary_directions(model)
    z = model.X.T @ model.y / model.n
    assert abs(u @ z) / np.linalg.norm(z) == pytest.approx(1.0, abs=1e-12)


def test_multiplicity_rule_x_tanh_lines_attract_the_full_flow():
    from exactdyn.closed_form.twolayer import stationary_directions

    model = ed.TwoLayer(40, "1d-cubic", activation="x_tanh", beta1=1e-2, beta2=1e-2, seed=1,
                        n=20)
    lines = np.array(stationary_directions(model))
    assert 1 <= len(lines) <= 2
    W = ed.solve(model, [0, 400.0])["W"][-1]
    norms = np.linalg.norm(W, axis=1)
    big = norms > 0.2 * norms.max()
    cos = np.max(np.abs((W[big] / norms[big, None]) @ lines.T), axis=1)
    assert np.min(cos) > 0.999
    with pytest.raises(ValueError, match="smooth"):
        stationary_directions(ed.TwoLayer(4, "1d-cubic", activation="relu", n=5))


@given(act=st.sampled_from(["tanh", "x_tanh", "x2_tanh"]),
       target=st.sampled_from(["sin", "cos", "sin+0.3", "cubic"]),
       n=st.integers(3, 12), exact_mirror=st.booleans())
def test_multiplicity_rule_on_symmetric_data_matches_a_scan_of_the_circle(act, target, n,
                                                                         exact_mirror):
    # Symmetric data make leading coefficients of the stationarity polynomial cancel (to
    # rounding, or exactly when x is mirrored bit for bit); the lines must still be found.
    # Independent check: the tangential derivative of Phi(theta) = (1/n) sum y_i
    # sigma~(cos(theta) x_i + sin(theta)), scanned on a fine grid, changes sign exactly at
    # the returned lines (mod pi), and there are at most p of them.
    from exactdyn.closed_form.twolayer import stationary_directions

    x = np.linspace(-1.0, 1.0, n)
    if exact_mirror:
        x = np.concatenate([-x[::-1][: n // 2], x[n // 2:]])
    y = {"sin": np.sin(np.pi * x), "cos": np.cos(np.pi * x),
         "sin+0.3": np.sin(np.pi * x) + 0.3, "cubic": x ** 3}[target]
    assume(np.max(np.abs(y)) > 1e-6)
    model = ed.TwoLayer(4, x[:, None], y, activation=act, beta1=1e-3, beta2=1e-3)
    p = model.act.multiplicity
    lines = stationary_directions(model)
    assert 1 <= len(lines) <= p
    theta = np.linspace(0.0, np.pi, 200001)[:-1]
    u = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    h = u @ model.X.T                                   # (angle, sample)
    dphi = (p * h ** (p - 1) * (u[:, [1]] * model.X[:, 0] - u[:, [0]])) @ model.y / model.n
    scale = np.max(np.abs(dphi))
    line_angles = np.sort(np.mod([np.arctan2(v[1], v[0]) for v in lines], np.pi))
    sign_changes = theta[np.nonzero(np.sign(dphi[:-1]) * np.sign(dphi[1:]) < 0)[0]]
    for ang in line_angles:                             # each line is a zero of Phi'
        v = np.array([np.cos(ang), np.sin(ang)])
        g = (p * (model.X @ v) ** (p - 1) * (v[1] * model.X[:, 0] - v[0])) @ model.y / model.n
        assert abs(g) <= 1e-9 * scale
    for ang in sign_changes:                            # each sign change is a line
        gap = np.min(np.abs(np.angle(np.exp(2j * (line_angles - ang))))) / 2
        assert gap < 1e-4


def test_solve_at_time_zero_only_and_after_a_failed_run():
    model = ed.TwoLayer(4, "1d-sine", activation="relu", n=5, beta1=0.3, beta2=0.3)
    traj = ed.solve(model, [0.0, 0.0])
    np.testing.assert_array_equal(traj["W"][1], model.W0)
    with pytest.raises(ed.IntegrationError):
        lowered_two_layer(model).integrate(np.array([0.0, 50.0]), max_kinks=0)
    again = ed.solve(model, [0.0, 1.0])
    assert np.isfinite(again["loss"]).all()


# ---- orientation / amplitude scatter (Luo et al. Fig. 5, Zhou et al.) ----------------------

def _tanh_condensed_run():
    # init scale 1e-6: by t = 35 the weights have grown ~1e4-fold (still small, |w| < 0.02)
    model = ed.TwoLayer(40, "1d-cubic", activation="tanh", beta1=1e-6, beta2=1e-6, seed=2,
                        n=20)
    return model, ed.solve(model, [0.0, 20.0, 35.0])


def test_orientations_collapse_onto_the_line_of_z_for_tanh():
    # Multiplicity 1 (MATH.md §4): every neuron's input weight condenses onto the line R z,
    # z = (1/n) sum_i y_i x_i; "1d-cubic" has a bias component in z, so the angle of z is
    # not 0 and the two orientations are atan2(z_2, z_1) and that minus pi.
    from exactdyn.analysis.condensation import orientation_amplitude, orientation_amplitude_series

    model, traj = _tanh_condensed_run()
    z = model.X.T @ model.y / model.n
    phi = np.arctan2(z[1], z[0])
    assert abs(np.sin(phi)) > 0.2
    (t0, th0, amp0), (t1, th1, amp1) = orientation_amplitude_series(traj, [0.0, 35.0])
    assert (t0, t1) == (0.0, 35.0)
    big = amp1 > 0.05 * amp1.max()
    gap = np.angle(np.exp(1j * (th1[big] - phi)))        # signed angle to z
    to_line = np.minimum(np.abs(gap), np.pi - np.abs(gap))
    assert np.max(to_line) < 2e-3
    # the clusters of the scatter are the two directions ±z, as direction_clusters counts
    n_orient = len({int(np.round(g / np.pi)) % 2 for g in gap})
    assert n_orient == 2 == direction_clusters(traj["W"][-1][big], signed=True)
    # at t = 0 the orientations are spread (Gaussian init)
    assert np.ptp(th0) > np.pi
    # amplitude |a_k| ||w_k|| by default with a; ||w_k|| without
    th, amp = orientation_amplitude(traj["W"][-1], traj["a"][-1])
    np.testing.assert_allclose(amp, np.abs(traj["a"][-1]) *
                               np.linalg.norm(traj["W"][-1], axis=1))
    np.testing.assert_allclose(orientation_amplitude(traj["W"][-1])[1],
                               np.linalg.norm(traj["W"][-1], axis=1))
    # with reference=z the condensed orientations are 0 or ±pi
    thz, _ = orientation_amplitude(traj["W"][-1], reference=z)
    assert np.max(np.minimum(np.abs(thz[big]), np.pi - np.abs(thz[big]))) < 2e-3


def test_orientation_against_hand_computed_angles():
    from exactdyn.analysis.condensation import orientation_amplitude, principal_direction

    W = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0], [-1.0, -1.0], [0.0, 0.0]])
    th, amp = orientation_amplitude(W, a=[1.0, -0.5, 2.0, 1.0, 3.0])
    np.testing.assert_allclose(th[:4], [0.0, np.pi / 2, np.pi, -3 * np.pi / 4])
    assert np.isnan(th[4]) and amp[4] == 0
    np.testing.assert_allclose(amp[:4], [1.0, 1.0, 2.0, np.sqrt(2)])
    # a reference rotates the angles (wrapped to (-pi, pi])
    th_r, _ = orientation_amplitude(W[:4], reference=[0.0, 1.0])
    np.testing.assert_allclose(th_r, [-np.pi / 2, 0.0, np.pi / 2, 3 * np.pi / 4])
    # d_in > 2: unsigned angle to the principal direction, here e_1 (weights along ±e_1)
    W3 = np.array([[2.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.1, 0.0, 0.1]])
    v = principal_direction(W3)
    assert v[0] > 0.9
    th3, _ = orientation_amplitude(W3)
    np.testing.assert_allclose(th3, np.arccos(W3 @ v / np.linalg.norm(W3, axis=1)))
    th3e, _ = orientation_amplitude(W3, reference=[1.0, 0.0, 0.0])
    np.testing.assert_allclose(th3e, [0.0, np.pi, np.pi / 4, np.pi / 4])


def test_orientation_amplitude_plot(tmp_path):
    from exactdyn.plotting.condensation import plot_orientation_amplitude

    model, traj = _tanh_condensed_run()
    z = model.X.T @ model.y / model.n
    phi = np.arctan2(z[1], z[0])
    ax = plot_orientation_amplitude(traj, marks=[phi, phi - np.pi], path=tmp_path / "oa.png")
    assert (tmp_path / "oa.png").stat().st_size > 0
    assert len(ax.collections) == 3          # first, middle, last time
    plot_orientation_amplitude(np.array([[1.0, 2.0, 0.5]]), path=tmp_path / "w.png")
    assert (tmp_path / "w.png").stat().st_size > 0


@pytest.mark.parametrize("args,kwargs,match", [
    ((np.ones(3),), {}, "W must be an"),
    ((np.ones((3, 1)),), {}, "at least 2 columns"),
    ((np.array([[1.0, np.nan]]),), {}, "finite"),
    ((np.ones((3, 2)),), {"a": np.ones(2)}, "one entry per row"),
    ((np.ones((3, 2)),), {"amplitude": "aw"}, "needs the output weights"),
    ((np.ones((3, 2)),), {"amplitude": "norm"}, "amplitude must be one of"),
    ((np.ones((3, 2)),), {"reference": [0.0, 0.0]}, "reference must be a nonzero"),
    ((np.ones((3, 2)),), {"reference": [1.0, 0.0, 0.0]}, "reference must be a nonzero"),
])
def test_orientation_amplitude_bad_input(args, kwargs, match):
    from exactdyn.analysis.condensation import orientation_amplitude

    with pytest.raises(ValueError, match=match):
        orientation_amplitude(*args, **kwargs)


def test_orientation_series_bad_input():
    from exactdyn.analysis.condensation import orientation_amplitude_series, principal_direction

    _model, traj = _tanh_condensed_run()
    with pytest.raises(ValueError, match="times must lie within"):
        orientation_amplitude_series(traj, [100.0])
    with pytest.raises(ValueError, match="times must be >= 0"):
        orientation_amplitude_series(traj, [-1.0])
    with pytest.raises(ValueError, match="states 'W' and 'a'"):
        orientation_amplitude_series(ed.solve(ed.Linear1D(width=3, seed=1), [0.0, 1.0]))
    with pytest.raises(ValueError, match="nonzero row"):
        principal_direction(np.zeros((2, 3)))


def test_orientation_series_in_higher_dimension_uses_the_last_principal_direction():
    # d_in = 3: weights that end on the line R e_2; every snapshot is measured against the
    # principal direction of the last weights (e_2), so the last angles are 0 or pi and the
    # first are the angles of the initial weights to e_2.
    from exactdyn.analysis.condensation import orientation_amplitude_series

    W0 = np.array([[1.0, 1.0, 0.0], [0.0, -1.0, 1.0], [1.0, 0.0, 0.0]])
    W1 = np.array([[0.0, 3.0, 0.0], [0.0, -2.0, 0.0], [0.0, 1.0, 0.0]])
    traj = ed.Trajectory(np.array([0.0, 1.0]), {"a": np.ones((2, 3)), "W": np.stack([W0, W1])},
                         {})
    (_, th0, _), (_, th1, amp1) = orientation_amplitude_series(traj)
    np.testing.assert_allclose(th1, [0.0, np.pi, 0.0], atol=1e-12)
    np.testing.assert_allclose(th0, [np.pi / 4, 3 * np.pi / 4, np.pi / 2])
    np.testing.assert_allclose(amp1, [3.0, 2.0, 1.0])


@given(name=st.sampled_from(["relu", "leaky_relu", "abs(x)*exp(x)", "x + abs(x)", "x*Abs(x)"]),
       h=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=20))
def test_piecewise_activation_lowered_by_sign_equals_the_sympy_expression(name, h):
    # Activation.numeric lowers a kink at 0 branch by branch (no numpy.select); away from
    # 0 it must give exactly the values of the sympy expression and its derivative, and at
    # 0 the one-sided convention sigma'(0) = sigma_-'(0) (0 for ReLU).
    import sympy as sp

    from exactdyn.models.activations import X

    act = activation(name)
    sig, dsig = act.numeric()
    h = np.array(h + [0.0])
    ref_s = np.array([float(act.expr.subs(X, sp.Float(v, 30))) for v in h])
    nz = h != 0
    # atol: below the smallest normal float (2.2e-308) rounding is absolute, ~5e-324 (the
    # random profile found leaky_relu(-2.2e-309) one subnormal step off the 30-digit value)
    np.testing.assert_allclose(sig(h), ref_s, rtol=1e-15, atol=1e-320)
    ref_d = np.array([float(act.derivative.subs(X, sp.Float(v, 30))) for v in h[nz]])
    # float64 sums the derivative's terms (-x e^x - e^x): near a cancellation its rounding
    # is relative to the terms, not to their sum (the dev profile drew h = -0.96875).
    terms = np.array([sum(abs(float(t.subs(X, sp.Float(v, 30))))
                          for t in sp.Add.make_args(sp.expand(act.derivative)))
                      for v in h[nz]])
    got = dsig(h)[nz]
    finite = np.isfinite(ref_d)
    np.testing.assert_array_equal(got[~finite], ref_d[~finite])
    np.testing.assert_array_less(np.abs(got[finite] - ref_d[finite]),
                                 (1e-15 * np.abs(ref_d) + 4e-16 * terms + 1e-320)[finite])
    _plus, minus = act.branches()
    assert dsig(np.array([0.0]))[0] == float(sp.diff(minus, X).subs(X, 0))
