"""Saddle-to-saddle dynamics of deep linear networks [JG]: plateau levels, rank
increments, escape-time scaling with the init scale, and the NTK regime at small gamma."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

import exactdyn as ed
from exactdyn.analysis import (
    analyze_saddles,
    deep_linear_ntk,
    kernel_distance,
    ntk_movement,
    numerical_rank,
)
from exactdyn.closed_form.deep_linear import chain_time
from exactdyn.models.deep_linear import teacher_matrix

matplotlib.use("Agg")

SVALS = [4.0, 2.0, 1.0]


def _saddle_levels(svals):
    s = np.sort(svals)[::-1]
    return [0.5 * float(np.sum(s[k:] ** 2)) for k in range(len(s))]


@pytest.mark.parametrize("depth, a0", [(2, 1e-5), (3, 1e-2), (4, 3e-2)])
def test_decoupled_plateaus_sit_at_the_saddle_losses(depth, a0):
    S = teacher_matrix(SVALS, 3, 3)
    model = ed.DeepLinear.decoupled(depth, 4, S, mode_init=a0)
    t = np.r_[0.0, np.geomspace(1e-2, 1e4, 400)]
    res = analyze_saddles(ed.exact(model, t))
    assert res.rank_increments == [1, 1, 1]
    levels = _saddle_levels(SVALS)
    found = {p.rank: p for p in res.plateaus}
    for k in range(3):
        assert found[k].loss == pytest.approx(levels[k], rel=0.01)
        assert found[k].rel_error < 0.01
        assert found[k].start < found[k].end
    assert len(res.escape_times) == 3 and np.all(np.diff(res.escape_times) > 0)


# float64 at rtol 1e-10 holds the plateaus to 1% (what this test checks) but not the passages'
# digits (6e-7 relative against rtol 1e-13, i.e. 6e3 x rtol): solve rightly warns.
@pytest.mark.filterwarnings("ignore::exactdyn.errors.PrecisionWarning")
def test_full_flow_from_small_random_init_visits_saddles_of_growing_rank():
    S = teacher_matrix(SVALS, 3, 3)
    model = ed.DeepLinear(depth=3, width=8, in_dim=3, out_dim=3, sigma=4e-3, sigma_yx=S,
                          seed=3)
    t = np.r_[0.0, np.geomspace(1e-1, 400, 500)]
    traj = ed.solve(model, t, rtol=1e-10)
    res = analyze_saddles(traj)
    assert res.rank_increments == [1, 1, 1]
    assert np.all(np.diff(res.rank) >= 0)
    levels = _saddle_levels(SVALS)
    found = {p.rank: p for p in res.plateaus}
    for k in range(3):
        assert found[k].loss == pytest.approx(levels[k], rel=0.01)
    assert traj["loss"][-1] < 1e-8  # the global minimum at the end


def test_escape_time_grows_like_log_one_over_sigma_at_depth_two():
    s = 2.0
    sigmas = np.geomspace(1e-2, 1e-6, 9)
    times = [chain_time(s / 2, sig**2, s, 2) for sig in sigmas]
    slope, _ = np.polyfit(np.log(1 / sigmas), times, 1)
    assert slope == pytest.approx(1 / s, rel=0.10)  # t ~ (1/s) log(1/sigma)
    resid = np.asarray(times) - np.polyval([slope, _], np.log(1 / sigmas))
    assert np.abs(resid).max() < 1e-3 * max(times)


@pytest.mark.parametrize("depth", [3, 4, 5])
def test_escape_time_grows_like_sigma_to_the_minus_depth_minus_two(depth):
    s = 2.0
    sigmas = np.geomspace(1e-2, 1e-4, 7)
    times = [chain_time(s / 2, sig**depth, s, depth) for sig in sigmas]
    slope, _ = np.polyfit(np.log(sigmas), np.log(times), 1)
    assert slope == pytest.approx(-(depth - 2), rel=0.10)


def test_full_flow_escape_time_exponent_at_depth_three():
    """The first escape of the full (random, unbalanced) flow scales like 1/sigma."""
    S = teacher_matrix([2.0, 1.0], 2, 2)
    sigmas = np.array([0.1, 0.05, 0.025]) / np.sqrt(6)
    escapes = []
    for sig in sigmas:
        model = ed.DeepLinear(depth=3, width=6, in_dim=2, out_dim=2, sigma=sig, sigma_yx=S,
                              seed=11)
        t = np.r_[0.0, np.geomspace(1e-1, 60 / (sig * np.sqrt(6)), 300)]
        traj = ed.solve(model, t, rtol=1e-9)
        escapes.append(analyze_saddles(traj).escape_times[0])
    slope, _ = np.polyfit(np.log(sigmas), np.log(escapes), 1)
    assert slope == pytest.approx(-1.0, rel=0.10)


def test_full_flow_escape_time_grows_like_log_one_over_sigma_at_depth_two():
    S = teacher_matrix([2.0, 1.0], 2, 2)
    sigmas = np.array([1e-1, 1e-2, 1e-3, 1e-4])
    escapes = []
    for sig in sigmas:
        model = ed.DeepLinear(depth=2, width=6, in_dim=2, out_dim=2, sigma=sig, sigma_yx=S,
                              seed=11)
        t = np.r_[0.0, np.geomspace(1e-1, 10 * np.log(1 / sig), 300)]
        escapes.append(analyze_saddles(ed.solve(model, t, rtol=1e-9)).escape_times[0])
    slope, _ = np.polyfit(np.log(1 / sigmas), escapes, 1)
    assert slope == pytest.approx(1 / 2.0, rel=0.10)  # (1/s_1) log(1/sigma)


@pytest.mark.slow
def test_full_flow_escape_time_exponent_at_depth_four():
    S = teacher_matrix([2.0, 1.0], 2, 2)
    sigmas = np.array([0.3, 0.2, 0.15]) / np.sqrt(6)
    escapes = []
    for sig in sigmas:
        model = ed.DeepLinear(depth=4, width=6, in_dim=2, out_dim=2, sigma=sig, sigma_yx=S,
                              seed=11)
        t = np.r_[0.0, np.geomspace(1e-1, 60 / (sig * np.sqrt(6)) ** 2, 300)]
        escapes.append(analyze_saddles(ed.solve(model, t, rtol=1e-9)).escape_times[0])
    slope, _ = np.polyfit(np.log(sigmas), np.log(escapes), 1)
    assert slope == pytest.approx(-2.0, rel=0.10)


def test_small_gamma_stays_in_the_ntk_regime_as_width_grows():
    S = teacher_matrix([2.0, 1.5, 1.0], 3, 3)
    moves = []
    widths = (16, 128, 1024)
    for w in widths:
        per_seed = []
        for seed in (0, 1):
            model = ed.DeepLinear(depth=2, width=w, in_dim=3, out_dim=3, gamma=0.5,
                                  sigma_yx=S, seed=seed)
            W = [model.initial_state()[n] for n in model.state_names]
            lam = np.linalg.eigvalsh(deep_linear_ntk(W)).min()
            traj = ed.solve(model, np.linspace(0, 20 / lam, 21), rtol=1e-9)
            assert traj["loss"][-1] < 1e-6 * traj["loss"][0]  # trained to convergence
            per_seed.append(ntk_movement(traj).max())
        moves.append(np.mean(per_seed))
    assert np.all(np.diff(moves) < 0)
    slope, _ = np.polyfit(np.log(widths), np.log(moves), 1)
    assert slope < -0.2
    assert moves[-1] < 0.02
    # ...whereas gamma = 2 (small init, saddle-to-saddle) moves the NTK by orders of magnitude.
    model = ed.DeepLinear(depth=2, width=128, in_dim=3, out_dim=3, gamma=2.0, sigma_yx=S)
    traj = ed.solve(model, np.linspace(0, 30, 7), rtol=1e-9)
    assert ntk_movement(traj).max() > 10


def test_kernel_distance_properties():
    S = teacher_matrix([2.0, 1.0], 2, 2)
    model = ed.DeepLinear(depth=3, width=5, in_dim=2, out_dim=2, sigma=0.3, sigma_yx=S)
    traj = ed.solve(model, np.linspace(0, 20, 5))
    assert kernel_distance(traj, 0, 0) == pytest.approx(0.0, abs=1e-12)
    d = kernel_distance(traj, 0, 4)
    assert 0 < d <= 1 and d == pytest.approx(kernel_distance(traj, 4, 0), rel=1e-12)
    # Scaling every weight by c scales the NTK by c^(2(L-1)): distance 0, movement exact.
    W = [model.initial_state()[n] for n in model.state_names]
    K, K2 = deep_linear_ntk(W), deep_linear_ntk([2 * w for w in W])
    np.testing.assert_allclose(K2, 2 ** 4 * K, rtol=1e-12)
    # The NTK is the Jacobian Gram matrix: check against finite differences of A.
    h = 1e-6
    J = []
    for l in range(3):
        for idx in np.ndindex(W[l].shape):
            Wp = [w.copy() for w in W]
            Wm = [w.copy() for w in W]
            Wp[l][idx] += h
            Wm[l][idx] -= h
            J.append(((Wp[2] @ Wp[1] @ Wp[0]) - (Wm[2] @ Wm[1] @ Wm[0])).ravel() / (2 * h))
    J = np.array(J)
    np.testing.assert_allclose(K, J.T @ J, rtol=1e-6, atol=1e-9)


def test_numerical_rank_and_bad_arguments():
    assert numerical_rank([[3.0, 0.2, 1e-9]], 0.1).tolist() == [2]
    S = teacher_matrix([1.0], 1, 1)
    traj = ed.solve(ed.DeepLinear(depth=2, width=2, in_dim=1, out_dim=1, sigma_yx=S), [0, 1])
    with pytest.raises(ValueError, match="rank_tol"):
        analyze_saddles(traj, rank_tol=-1)
    with pytest.raises(ValueError, match="band"):
        analyze_saddles(traj, band=0)
    with pytest.raises(ValueError, match="teacher_svals"):
        analyze_saddles(traj, teacher_svals=[-1.0])


def test_plot_marks_plateaus(tmp_path):
    from exactdyn.plotting import plot_singular_values

    S = teacher_matrix(SVALS, 3, 3)
    model = ed.DeepLinear.decoupled(3, 3, S, mode_init=1e-2)
    traj = ed.exact(model, np.r_[0.0, np.geomspace(1, 1e3, 200)])
    res = analyze_saddles(traj)
    fig = plot_singular_values(traj, res, title="depth 3")
    ax = fig.axes[0]
    assert len(ax.lines) >= 3 + 3 + len(res.escape_times)  # curves, teacher, escapes
    assert len(ax.patches) == len(res.plateaus)  # one shaded span per plateau
    fig.savefig(tmp_path / "sv.png")
    assert (tmp_path / "sv.png").stat().st_size > 0
