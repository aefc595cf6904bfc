"""ReLU early alignment (Boursier & Flammarion, arXiv:2401.10791; MATH.md §4): the
region-by-region closed form against the full flow (weights and crossing times, fitted
order in the init scale), against a hand-written early-phase rhs, its conservation law and
the balanced tan(θ/2) law; extremal vectors of 2-D data against a brute-force scan of the
circle and against where the full flow's neurons go; the three-point failure data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import exactdyn as ed
from exactdyn.closed_form.early_alignment import (
    alignment_path,
    d_vector,
    extremal_vectors,
    stationary_directions_2d,
)
from exactdyn.models.datasets import boursier_flammarion_data

SIX = (np.linspace(-1, 1, 6), np.array([1.0, -0.5, 0.3, 0.8, -0.2, 0.6]))
SINE = (np.linspace(-1, 1, 7), np.sin(np.pi * np.linspace(-1, 1, 7)))


def D_oracle(X, y, u):
    """Hand-written D(u) = (1/n) sum_i y_i 1{u.x_i > 0} x_i (ReLU), X with the bias column."""
    return ((X @ u > 0) * y) @ X / len(y)


def rel_weight_error(a, W, traj):
    err = np.sqrt(np.sum((a - traj["a"]) ** 2, axis=1) + np.sum((W - traj["W"]) ** 2, axis=(1, 2)))
    size = np.sqrt(np.sum(traj["a"] ** 2, axis=1) + np.sum(traj["W"] ** 2, axis=(1, 2)))
    return float(np.max(err / size))


# ---- the closed form against the full flow ----------------------------------------------

@pytest.mark.parametrize("init", ["balanced", "gaussian"])
def test_weights_agree_with_full_flow_to_order_scale_squared(init):
    lams = np.array([4e-3, 2e-3, 1e-3])
    T = np.linspace(0.0, 4.0, 9)
    errs = []
    for lam in lams:
        net = ed.TwoLayer(8, *SIX, init=init, beta1=lam, beta2=lam, seed=3)
        cf, fl = ed.exact(net, T), ed.solve(net, T, rtol=1e-12)
        assert cf.meta["crossings"]  # the comparison spans region changes
        errs.append(rel_weight_error(cf["a"], cf["W"], fl))
    order = np.polyfit(np.log(lams), np.log(errs), 1)[0]
    assert 1.8 < order < 2.2, (order, errs)
    assert errs[-1] < 1e-3


def full_flow_crossings(net, crossings, T, width=0.01, pts=401):
    """Times where the full flow's w_k . x_i changes sign, near each predicted crossing:
    the full flow on a fine window, the first sign change, then the root of a cubic through
    the four grid values before it (so the kink of h after the crossing is not used)."""
    wins = [np.linspace(t * (1 - width), t * (1 + width), pts) for t, _k, _i, _kd in crossings]
    grid = np.unique(np.concatenate([[0.0, T], *wins]))
    traj = ed.solve(net, grid, rtol=1e-12)
    out = []
    for (_t, k, i, _kind), w in zip(crossings, wins):
        h = traj["W"][np.searchsorted(grid, w), k] @ net.X[i]
        # An entry whose off side still pushes h up (at higher order than the closed form)
        # slides: h reaches 0 and is held there (to rounding), which counts as the crossing.
        h = np.where(np.abs(h) <= 1e-12 * np.max(np.abs(h)), 0.0, h)
        changed = np.flatnonzero(np.sign(h) != np.sign(h[0]))
        if changed.size == 0 or changed[0] < 4:
            out.append(np.nan)
            continue
        j = changed[0]
        c = np.polyfit(w[j - 4:j] - w[j - 1], h[j - 4:j], 3)
        roots = [z.real for z in np.roots(c)
                 if abs(z.imag) < 1e-14 and 0 <= z.real <= w[j] - w[j - 1]]
        out.append(w[j - 1] + roots[0] if roots else np.nan)
    return np.array(out)


@pytest.mark.parametrize("data,init", [(SIX, "gaussian"), (SINE, "balanced")])
def test_crossing_times_agree_with_full_flow(data, init):
    T, rel = 6.0, []
    for lam in (2e-3, 1e-3):
        net = ed.TwoLayer(16, *data, init=init, beta1=lam, beta2=lam, seed=5)
        path = alignment_path(net, T)
        cross = [c for c in path.crossing_times() if c[3] in ("on", "off")]
        assert len(cross) >= 10
        tf = full_flow_crossings(net, cross, T)
        tc = np.array([c[0] for c in cross])
        assert np.all(np.isfinite(tf)), "a predicted crossing has no sign change nearby"
        rel.append(np.max(np.abs(tf - tc) / tc))
    order = np.log(rel[0] / rel[1]) / np.log(2.0)
    assert 1.6 < order < 2.4, rel
    assert rel[-1] < 1e-4


def test_no_unpredicted_sign_changes_and_same_kink_count():
    T = np.linspace(0.0, 6.0, 3001)
    net = ed.TwoLayer(16, *SIX, init="gaussian", beta1=1e-3, beta2=1e-3, seed=5)
    path = alignment_path(net, T[-1])
    fl = ed.solve(net, T, rtol=1e-12)
    h = np.einsum("tkd,id->tki", fl["W"], net.X)
    changes = np.count_nonzero(np.diff(np.sign(h), axis=0), axis=0)
    predicted = np.zeros_like(changes)
    for _t, k, i, _kind in path.crossing_times():
        predicted[k, i] += 1
    assert np.array_equal(changes, predicted)
    assert fl.meta["kinks"] == len(path.crossings)


def test_closed_form_solves_the_early_phase_flow():
    """Central differences of the closed form against a hand-written early-phase rhs
    (e = -y): wdot = (a/alpha) D(w), adot = <D(w), w>/alpha, away from crossings."""
    net = ed.TwoLayer(12, *SINE, init="gaussian", beta1=0.3, beta2=0.5, alpha=0.7, seed=1)
    path = alignment_path(net, 5.0)
    cross = np.array([c[0] for c in path.crossing_times()])
    assert cross.size >= 3
    ts = np.linspace(0.05, 4.95, 60)
    ts = ts[np.min(np.abs(ts[:, None] - cross[None, :]), axis=1) > 1e-3]
    dt = 1e-6
    a, W = path.state(ts)
    ap, Wp = path.state(ts + dt)
    am, Wm = path.state(ts - dt)
    for j in range(ts.size):
        for k in range(net.width):
            D = D_oracle(net.X, net.y, W[j, k])
            # sliding neurons follow the Filippov combination, checked separately
            if path.segments[k][np.searchsorted([s.t0 for s in path.segments[k]], ts[j]) - 1
                                ].sliding.any():
                continue
            np.testing.assert_allclose((Wp[j, k] - Wm[j, k]) / (2 * dt),
                                       a[j, k] * D / net.alpha, rtol=1e-6, atol=1e-7)
            assert (ap[j, k] - am[j, k]) / (2 * dt) == pytest.approx(D @ W[j, k] / net.alpha,
                                                                     rel=1e-6, abs=1e-7)


def test_sliding_segments_stay_on_their_boundary():
    net = ed.TwoLayer(16, *SINE, init="balanced", beta1=1e-3, beta2=1e-3, seed=5)
    path = alignment_path(net, 6.0)
    n_slide = 0
    for segs in path.segments:
        for s in segs:
            if s.sliding.any() and np.isfinite(s.t1):
                t = np.linspace(s.t0, s.t1, 5)
            elif s.sliding.any():
                t = s.t0 + np.linspace(0, 3, 5)
            else:
                continue
            n_slide += 1
            _a, W = s.at(t)
            h = W @ net.X[s.sliding].T
            assert np.max(np.abs(h)) <= 1e-12 * np.max(np.linalg.norm(W, axis=1))
            # Filippov: D_eff = D_active + lambda y_i x_i / n with lambda in [0, 1], D_eff . x_i = 0
            if s.sliding.sum() != 1:
                continue
            (i,) = np.flatnonzero(s.sliding)
            assert abs(s.D @ net.X[i]) <= 1e-12 * np.linalg.norm(s.D) * np.linalg.norm(net.X[i])
            Dact = ((s.active & ~s.sliding) * net.y) @ net.X / net.n
            lam = (s.D - Dact) @ net.X[i] / (net.y[i] * (net.X[i] @ net.X[i]) / net.n)
            assert -1e-12 <= lam <= 1 + 1e-12
            np.testing.assert_allclose(s.D, Dact + lam * net.y[i] * net.X[i] / net.n, atol=1e-14)
    assert n_slide >= 2


@given(seed=st.integers(0, 10_000), alpha=st.floats(0.3, 3.0))
def test_balanced_neurons_stay_balanced_and_follow_the_half_angle_law(seed, alpha):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 7))
    x, y = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    net = ed.TwoLayer(6, x, y, init="balanced", beta1=0.1, beta2=0.1, alpha=alpha, seed=seed)
    path = alignment_path(net, 3.0)
    ts = np.linspace(0, 3.0, 13)
    a, W = path.state(ts)
    nw = np.linalg.norm(W, axis=2)
    np.testing.assert_allclose(np.abs(a), nw, rtol=1e-9)  # a^2 - |w|^2 = 0 is conserved
    np.testing.assert_array_equal(np.sign(a), np.broadcast_to(np.sign(net.a0), a.shape))
    # inside the first region: tan(theta/2) = tan(theta0/2) exp(-(a/|w|) |D| t / alpha)
    for k, segs in enumerate(path.segments):
        s0 = segs[0]
        nd = np.linalg.norm(s0.D)
        if nd == 0:
            continue
        t = np.linspace(0, min(s0.t1, 3.0), 6)
        _a, Wk = s0.at(t)
        cos = Wk @ s0.D / (np.linalg.norm(Wk, axis=1) * nd)
        theta = np.arccos(np.clip(cos, -1, 1))
        assume(0.05 < theta[0] < np.pi - 0.05)
        want = np.tan(theta[0] / 2) * np.exp(-np.sign(net.a0[k]) * nd * t / alpha)
        np.testing.assert_allclose(np.tan(theta / 2), want, rtol=1e-8)


def test_unbalanced_init_conserves_a2_minus_w2():
    net = ed.TwoLayer(10, *SINE, init="gaussian", beta1=0.2, beta2=0.4, seed=4)
    path = alignment_path(net, 4.0)
    a, W = path.state(np.linspace(0, 4.0, 9))
    q = a**2 - np.sum(W**2, axis=2)
    np.testing.assert_allclose(q, np.broadcast_to(q[0], q.shape), atol=1e-13)


def test_leaky_relu_agrees_with_full_flow():
    T = np.linspace(0, 3.0, 7)
    errs = []
    for lam in (2e-3, 1e-3):
        net = ed.TwoLayer(8, *SIX, activation="leaky_relu", init="balanced", beta1=lam,
                          beta2=lam, seed=2)
        cf = ed.exact(net, T)
        assert cf.meta["slopes"] == [1.0, 0.01]
        errs.append(rel_weight_error(cf["a"], cf["W"], ed.solve(net, T, rtol=1e-12)))
    assert 3.2 < errs[0] / errs[1] < 4.8 and errs[1] < 1e-3


# ---- extremal vectors ----------------------------------------------------------------------

def brute_force_stationary(X, y, pts=40_000):
    """Sign changes of the tangential velocity g(θ) = <D(u_θ), τ_θ> on a dense scan
    (D by the hand-written oracle; scan points with D = 0 skipped): +→− attracts a > 0
    neurons, −→+ attracts a < 0 neurons."""
    th = np.linspace(-np.pi, np.pi, pts, endpoint=False) + 1.234e-7
    U = np.column_stack([np.cos(th), np.sin(th)])
    D = ((U @ X.T > 0) * y) @ X / len(y)
    g = U[:, 0] * D[:, 1] - U[:, 1] * D[:, 0]
    live = np.any(D != 0, axis=1)
    found = []
    for j in range(pts):
        k = (j + 1) % pts
        if live[j] and live[k] and np.sign(g[j]) != np.sign(g[k]) and g[j] * g[k] < 0:
            mid = 0.5 * (th[j] + th[k] + (2 * np.pi if k == 0 else 0))
            found.append((mid, 1 if g[j] > 0 else -1))
    return found, 2 * np.pi / pts


def _close(a, b, tol):
    d = np.mod(a - b + np.pi, 2 * np.pi) - np.pi
    return abs(d) <= tol


# The assumptions reject data hypothesis 6.80 (the oldest allowed) generates often enough to
# trip its filter_too_much health check; the examples that pass them are what is tested.
@settings(suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.lists(st.tuples(st.floats(-2, 2), st.floats(-1, 1)), min_size=1, max_size=6))
def test_2d_enumeration_matches_a_brute_force_scan(data):
    x = np.array([p[0] for p in data])
    y = np.array([p[1] for p in data])
    assume(np.min(np.abs(y)) > 1e-3)
    assume(len(x) < 2 or np.min(np.diff(np.sort(x))) > 1e-2)
    net = ed.TwoLayer(2, x, y, init="balanced", seed=0)
    stat, dead = stationary_directions_2d(net)
    for s in stat:
        D = D_oracle(net.X, net.y, s.u)
        if s.kind == "extremal":  # D(u) = Phi(u) u, Phi != 0
            np.testing.assert_allclose(D, s.phi * s.u, atol=1e-12)
            assert s.attracts == np.sign(s.phi) != 0
    brute, step = brute_force_stationary(net.X, net.y)
    # the enumeration's moving stationary points must all show up in the scan and v.v.
    enum = [(s.angle, s.attracts) for s in stat if s.attracts != 0]
    # boundary points adjacent to a dead arc: the scan skips D = 0, so drop those too
    def next_to_dead(th):
        return any(_close(th, lo, 1e-9) or _close(th, hi, 1e-9) for lo, hi in dead)
    enum = [e for e in enum if not next_to_dead(e[0])]
    for th, sgn in enum:
        assert any(_close(th, b, 2 * step) and sb == sgn for b, sb in brute), (th, sgn, brute)
    for b, sb in brute:
        assert any(_close(th, b, 2 * step) and sgn == sb for th, sgn in enum), (b, sb, enum)
    for lo, hi in dead:  # dead arcs: no point active
        mid = 0.5 * (lo + hi)
        assert not np.any(net.X @ np.array([np.cos(mid), np.sin(mid)]) > 0)


@pytest.mark.parametrize("data", [SIX, SINE, boursier_flammarion_data(0.1)])
def test_flow_search_finds_the_enumerated_attractors(data):
    net = ed.TwoLayer(2, *data, init="balanced", seed=0)
    stat, _dead = stationary_directions_2d(net)
    want = sorted((round(s.angle, 9), s.attracts) for s in stat if s.attracts != 0)
    got = sorted((round(s.angle, 9), s.attracts) for s in extremal_vectors(net, 300))
    assert got == want


def test_flow_search_in_three_dimensions():
    rng = np.random.default_rng(7)
    X, y = rng.normal(size=(8, 2)), rng.normal(size=8)
    net = ed.TwoLayer(2, X, y, init="balanced", seed=0)
    found = extremal_vectors(net, 150)
    assert any(s.kind == "extremal" for s in found)
    for s in found:
        D = D_oracle(net.X, net.y, s.u)
        if s.kind == "extremal":
            np.testing.assert_allclose(D, s.phi * s.u, atol=1e-10)
            assert np.min(np.abs(net.X @ s.u)) > 1e-9  # strictly inside its region
            assert s.attracts == np.sign(s.phi)
        else:  # sliding: on a boundary, D_eff = D(u) + lambda y_i x_i/n parallel to u
            on = np.flatnonzero(np.abs(net.X @ s.u) < 1e-9)
            assert on.size >= 1
            assert np.isclose(d_vector(net, s.u) @ s.u, s.phi, atol=1e-12)


@pytest.mark.parametrize("data", [SIX, SINE, boursier_flammarion_data(0.1)])
def test_full_flow_directions_end_where_predicted(data):
    lam = 1e-5
    net = ed.TwoLayer(16, *data, init="balanced", beta1=lam, beta2=lam, seed=5)
    stat, _dead = stationary_directions_2d(net)
    T = 0.6 * np.log(1 / lam) / max(abs(s.phi) for s in stat)  # well inside the early phase
    path = alignment_path(net, T)
    fl = ed.solve(net, [0.0, T], rtol=1e-10)
    assert fl["loss"][-1] > 0.99 * fl["loss"][0]  # still early: f ~ 0
    W = fl["W"][-1]
    u = W / np.linalg.norm(W, axis=1, keepdims=True)
    _a, Wc = path.state([T])
    uc = Wc[0] / np.linalg.norm(Wc[0], axis=1, keepdims=True)
    assert np.min(np.sum(u * uc, axis=1)) > 1 - 1e-6  # closed form's direction at T
    limits = {round(s.angle, 9) for s in stat if s.attracts != 0}
    for k, status in enumerate(path.status):
        lim_angle = round(float(np.arctan2(path.limit[k, 1], path.limit[k, 0])), 9)
        if status in ("extremal", "boundary"):
            assert lim_angle in limits
            assert u[k] @ path.limit[k] > np.cos(np.radians(10))
        elif status == "dead":
            assert np.all(W[k] @ net.X.T <= 1e-15 * np.linalg.norm(W[k]))
            np.testing.assert_allclose(W[k], Wc[0][k], rtol=1e-4)


def test_three_point_data_all_live_neurons_align_to_one_direction():
    X, y = boursier_flammarion_data(0.1)
    net = ed.TwoLayer(20, X, y, init="balanced", beta1=1e-5, beta2=1e-5, seed=1)
    stat, dead = stationary_directions_2d(net)
    (only,) = [s for s in stat if s.attracts != 0]
    assert only.kind == "extremal" and only.attracts == 1
    np.testing.assert_allclose(only.u, [0.0, 1.0], atol=1e-15)  # D of all three points
    assert only.phi == pytest.approx(np.mean(y), rel=1e-14)
    assert len(dead) == 1 and np.allclose(np.degrees(dead[0]), [-135, -45])
    path = alignment_path(net)
    assert set(path.status) == {"extremal", "dead"}
    live = [k for k, s in enumerate(path.status) if s == "extremal"]
    assert live and all(net.a0[k] > 0 for k in live)
    np.testing.assert_allclose(path.limit[live], np.tile(only.u, (len(live), 1)), atol=1e-15)
    T = 0.8 * np.log(1e5) / only.phi
    fl = ed.solve(net, [0.0, T], rtol=1e-10)
    W = fl["W"][-1]
    big = np.linalg.norm(W, axis=1) > 1e-3
    assert set(np.flatnonzero(big)) <= set(live)
    cos = W[big] @ only.u / np.linalg.norm(W[big], axis=1)
    assert np.min(cos) > 0.999


# ---- bad input -----------------------------------------------------------------------------

def test_bad_input():
    tanh = ed.TwoLayer(4, *SIX, activation="tanh")
    with pytest.raises(ValueError, match="piecewise"):
        alignment_path(tanh, 1.0)
    with pytest.raises(ValueError, match="piecewise"):
        ed.early_alignment(tanh, [0, 1])
    relu = ed.TwoLayer(4, *SIX)
    with pytest.raises(ValueError, match="precision"):
        ed.exact(relu, [0, 1], precision=30)
    with pytest.raises(ValueError, match="t must be >= 0"):
        ed.exact(relu, [-1.0])
    with pytest.raises(ValueError, match="t_end"):
        alignment_path(relu, -1.0)
    with pytest.raises(ValueError, match="d_in = 3"):
        stationary_directions_2d(ed.TwoLayer(4, np.zeros((3, 2)), np.ones(3)))
    with pytest.raises(ValueError, match="u must"):
        d_vector(relu, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="directions"):
        extremal_vectors(relu, 0)


def test_polar_plot(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from exactdyn.plotting import plot_polar_directions

    net = ed.TwoLayer(6, *SIX, init="balanced", beta1=1e-3, beta2=1e-3, seed=0)
    traj = ed.exact(net, np.linspace(0, 4, 9))
    fig = plot_polar_directions(traj, net, times=[0, 2, 4])
    ax = fig.axes[0]
    stat, _dead = stationary_directions_2d(net)
    # one marker set per (time, sign of a), one line per stationary direction and boundary
    assert len(ax.collections) >= 3 + 1  # 3 times x 2 signs of scatter + the dead arc
    labels = [t.get_text() for t in fig.legends[0].get_texts()]  # a figure legend
    assert sum(lab.startswith(("extremal", "boundary")) for lab in labels) == len(stat)
    assert [lab for lab in labels if lab.startswith("t = ")] == ["t = 0", "t = 2", "t = 4"]
    fig.savefig(tmp_path / "p.png")
    with pytest.raises(ValueError, match="2-D inputs"):
        plot_polar_directions(ed.exact(ed.TwoLayer(2, np.zeros((3, 2)), np.ones(3)), [0, 1]))


def test_max_crossings_truncates_honestly():
    net = ed.TwoLayer(16, *SIX, init="gaussian", beta1=1e-3, beta2=1e-3, seed=5)
    path = alignment_path(net, 6.0, max_crossings=1)
    assert "truncated" in path.status
    k = path.status.index("truncated")
    with pytest.raises(ed.IntegrationError, match=f"neuron {k}"):
        path.state([6.0])
    t_last = min(segs[-1].t0 for segs, st in zip(path.segments, path.status)
                 if st == "truncated")
    full = alignment_path(net, 6.0)
    np.testing.assert_allclose(path.state([0.5 * t_last])[1], full.state([0.5 * t_last])[1],
                               rtol=1e-14)


def test_symbolic_proofs():
    from exactdyn.closed_form.early_alignment import proofs

    res = proofs()
    assert len(res) == 4 and all(v == 0 for v in res.values()), res


@pytest.mark.xfail(strict=True, reason="known bug, reported in the session note: the 2-D "
                   "enumeration misses the Filippov attractor of negative neurons on the "
                   "activation boundary of a data point at x = 0 (bias only)")
def test_enumeration_finds_the_sliding_attractor_on_the_boundary_of_a_point_at_x0():
    """x = (0, 1), y = (1, -1): for a < 0 the flow pushes u toward (1, 1) below the
    boundary w2 = 0 of the point x = 0 and toward (1, 0) above it, so theta = 0 is a sliding
    attractor (the brute-force scan finds it at |theta| < 1e-4); the enumeration does not."""
    x, y = np.array([0.0, 1.0]), np.array([1.0, -1.0])
    net = ed.TwoLayer(2, x, y, init="balanced", seed=0)
    stat, _dead = stationary_directions_2d(net)
    assert any(abs(s.angle) < 1e-3 and s.attracts == -1 for s in stat)
