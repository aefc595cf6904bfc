"""Vectorized closed-form phase diagrams of SingleNeuron and decoupled DeepLinear, against
the per-cell path (one ``classify`` per cell), and their bad input."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import exactdyn as ed
from exactdyn.analysis import ntk_movement
from exactdyn.cli import main
from exactdyn.models.deep_linear import teacher_matrix
from exactdyn.regimes import deep_linear as rdl

#: Scores of the single-neuron grid and the per-cell classify agree to this (the same
#: sampled times; the grid's explicit 3-variable solution vs the semigroup evaluation).
RTOL, ATOL = 1e-6, 1e-9


def _away(score, tol, margin=0.02):
    """Cells whose score is not within ``margin`` (relative) of the threshold ``tol``."""
    return np.abs(np.asarray(score) - tol) > margin * tol


# ---- SingleNeuron -------------------------------------------------------------------------

SN_AXES = dict(x=("delta", np.linspace(-4.0, 6.0, 6)), y=("product", np.geomspace(1e-3, 1, 6)))


@pytest.fixture(scope="module")
def sn_pair():
    grid = ed.phase_diagram(ed.SingleNeuron, fixed={"in_dim": 3}, **SN_AXES)
    with ThreadPoolExecutor(1) as pool:
        cells = ed.phase_diagram(ed.SingleNeuron, fixed={"in_dim": 3}, executor=pool,
                                 progress=False, **SN_AXES)
    return grid, cells


def test_single_neuron_grid_is_closed_form_by_default(sn_pair):
    grid, cells = sn_pair
    assert grid.method == "closed-form" and cells.method == "trajectory"
    assert not cells.failures
    assert set(grid.counts()) == {"lazy", "rich"}  # the grid crosses the boundary


def test_single_neuron_grid_labels_equal_per_cell(sn_pair):
    grid, cells = sn_pair
    away = _away(cells.scores["ntk_change"], 0.1)
    assert away.sum() >= 30
    np.testing.assert_array_equal(grid.labels[away], cells.labels[away])
    np.testing.assert_array_equal(grid.predicted, cells.predicted)


@pytest.mark.parametrize("name", ["ntk_change", "ntk_change_end", "ntk_change_predicted",
                                  "rho", "rho_lazy", "phi0", "phi_end", "alignment_change",
                                  "loss_end", "t_end", "delta", "s"])
def test_single_neuron_grid_scores_equal_per_cell(sn_pair, name):
    grid, cells = sn_pair
    np.testing.assert_allclose(grid.scores[name], cells.scores[name], rtol=RTOL, atol=ATOL)


def test_single_neuron_magnitude_change(sn_pair):
    # |log(mu_end/mu0)|: an absolute tolerance on a log (mu0 down to 1e-3)
    grid, cells = sn_pair
    np.testing.assert_allclose(grid.scores["magnitude_change"],
                               cells.scores["magnitude_change"], rtol=0, atol=1e-9)


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delta=st.one_of(st.just(0.0), st.floats(-20, -1e-3), st.floats(1e-3, 20)),
       product=st.floats(1e-4, 3.0), seed=st.integers(0, 50), in_dim=st.integers(2, 4),
       eta_a=st.floats(0.25, 4.0))
def test_single_neuron_one_cell_equals_classify(delta, product, seed, in_dim, eta_a):
    pd = ed.phase_diagram(ed.SingleNeuron, x=("delta", [delta]), y=("product", [product]),
                          fixed={"seed": seed, "in_dim": in_dim, "eta_a": eta_a})
    reg = ed.classify(ed.SingleNeuron(delta=delta, product=product, seed=seed,
                                      in_dim=in_dim, eta_a=eta_a))
    ev = reg.evidence
    for k in ("ntk_change", "ntk_change_predicted", "t_end"):
        np.testing.assert_allclose(pd.scores[k][0, 0], ev[k], rtol=RTOL, atol=ATOL)
    if abs(ev["ntk_change"] - 0.1) > 1e-3:
        assert pd.labels[0, 0] == reg.label
    assert pd.predicted[0, 0] == reg.predicted


def test_single_neuron_teacher_and_rates():
    beta = np.array([0.5, -2.0])
    pd = ed.phase_diagram(ed.SingleNeuron, x=("eta_w", [0.5, 2.0]), y=("delta", [-1.0, 3.0]),
                          fixed={"in_dim": 2, "beta": beta, "seed": 3})
    for i, d in enumerate([-1.0, 3.0]):
        for j, ew in enumerate([0.5, 2.0]):
            ev = ed.classify(ed.SingleNeuron(in_dim=2, beta=beta, delta=d, eta_w=ew,
                                             seed=3)).evidence
            np.testing.assert_allclose(pd.scores["ntk_change"][i, j], ev["ntk_change"],
                                       rtol=RTOL)
            np.testing.assert_allclose(pd.scores["phi_end"][i, j], ev["phi_end"], rtol=RTOL,
                                       atol=ATOL)


def test_single_neuron_closed_form_needs_whitened_inputs():
    kw = dict(x=("delta", [0.0, 1.0]), y=("product", [0.1]),
              fixed={"in_dim": 2, "sigma_xx": np.diag([1.0, 2.0])})
    with pytest.raises(ValueError, match="whitened"):
        ed.phase_diagram(ed.SingleNeuron, method="closed-form", **kw)
    # so method="auto" classifies cell by cell there
    from exactdyn.regimes.single_neuron import grid_applies

    assert "whitened" in grid_applies({"sigma_xx": np.diag([1.0, 2.0]), "seed": 0})
    assert grid_applies({"sigma_xx": None, "seed": 0}) == ""


# ---- DeepLinear, decoupled init ---------------------------------------------------------

SYX = teacher_matrix([3.0, 1.0], 2, 2)


def test_deep_linear_random_init_has_no_closed_form():
    with pytest.raises(ValueError, match="mode_init"):
        ed.phase_diagram(ed.DeepLinear, x=("gamma", [0.5, 2.0]), y=("depth", [2, 3]),
                         fixed={"sigma_yx": SYX, "in_dim": 2, "out_dim": 2},
                         method="closed-form")


def test_deep_linear_decoupled_instance_points_to_mode_init():
    with pytest.raises(ValueError, match="mode_init"):
        ed.phase_diagram(ed.DeepLinear.decoupled(3, 4, SYX, 1e-3), x=("depth", [2, 3]),
                         y=("width", [4, 8]))


@pytest.mark.parametrize("fixed, match", [
    ({"sigma_yx": SYX, "gamma": 1.0}, "random init"),
    ({}, "sigma_yx"),
    ({"sigma_yx": SYX, "s3": 1.0}, "unknown parameter"),
    ({"sigma_yx": SYX, "in_dim": 3}, "in_dim"),
])
def test_deep_linear_decoupled_bad_input(fixed, match):
    with pytest.raises(ValueError, match=match):
        ed.phase_diagram(ed.DeepLinear, x=("mode_init", [0.1, 1.0]), y=("depth", [2, 3]),
                         fixed=fixed)


def test_deep_linear_decoupled_is_closed_form_by_default():
    pd = ed.phase_diagram(ed.DeepLinear, x=("mode_init", np.geomspace(1e-4, 2, 12)),
                          y=("s2", np.linspace(0.1, 3, 5)), fixed={"sigma_yx": SYX})
    assert pd.method == "closed-form" and pd.model == "deep_linear_decoupled"
    assert {"intermediate", "saddle-to-saddle"} <= set(pd.counts())
    # an init at the teacher (a^3 = s for both modes) does not move: ntk
    at = ed.phase_diagram(ed.DeepLinear, x=("mode_init", [3 ** (1 / 3)]), y=("s2", [3.0]),
                          fixed={"sigma_yx": SYX})
    assert at.labels[0, 0] == "ntk" and at.scores["ntk_movement"][0, 0] < 1e-12
    assert pd.shape == (5, 12)


@settings(max_examples=15, deadline=None)
@given(depth=st.integers(2, 6), width=st.integers(2, 5), a=st.floats(1e-3, 3.0),
       s2=st.floats(0.05, 3.0))
def test_deep_linear_grid_horizon_sigma_and_limit_movement(depth, width, a, s2):
    """Per cell, against the model-level functions and the closed-form trajectory's NTK.
    (Width >= 2 and a^L >= 1e-11 s_min: ``horizon`` takes the init scale as at least
    1e-12 s_min, as that with a zero singular value in A0, and stops before a smaller
    mode escapes.)"""
    assume(a**depth >= 1e-11 * min(s2, 3.0))
    syx = teacher_matrix([3.0, s2], 2, 2)
    pd = ed.phase_diagram(ed.DeepLinear, x=("mode_init", [a]), y=("depth", [depth]),
                          fixed={"sigma_yx": syx, "width": width})
    model = ed.DeepLinear.decoupled(depth, width, syx, a)
    T = rdl.horizon(model)
    np.testing.assert_allclose(pd.scores["t_end"][0, 0], T, rtol=1e-12)
    np.testing.assert_allclose(pd.scores["sigma"][0, 0], rdl.effective_sigma(model),
                               rtol=1e-12)
    assert pd.predicted[0, 0] == rdl.predict(model)
    # NTK movement at convergence: the grid's mode eigenvalues vs the full matrices of the
    # closed-form trajectory far past the horizon (every mode at its teacher value)
    traj = ed.exact(model, [0.0, 50 * T])
    np.testing.assert_allclose(pd.scores["ntk_movement"][0, 0], ntk_movement(traj)[-1],
                               rtol=1e-6)


@pytest.fixture(scope="module")
def dl_pair():
    axes = dict(x=("mode_init", [1e-3, 0.05, 0.5, 2.0]), y=("depth", [2, 3]),
                fixed={"sigma_yx": SYX, "width": 3})
    grid = ed.phase_diagram(ed.DeepLinear, **axes)
    with ThreadPoolExecutor(1) as pool:
        cells = ed.phase_diagram(ed.DeepLinear, executor=pool, progress=False, **axes)
    return grid, cells


def test_deep_linear_grid_labels_equal_per_cell(dl_pair):
    grid, cells = dl_pair
    assert not cells.failures
    np.testing.assert_array_equal(grid.labels, cells.labels)
    np.testing.assert_array_equal(grid.predicted, cells.predicted)
    for k in ("ntk_movement", "param_movement"):
        np.testing.assert_allclose(grid.scores[k], cells.scores[k], rtol=1e-3)
    np.testing.assert_allclose(grid.scores["t_end"], cells.scores["t_end"], rtol=1e-12)


# ---- command line -------------------------------------------------------------------------

def test_cli_single_neuron_and_deep_linear_use_the_closed_form(capsys):
    assert main(["phase-diagram", "single-neuron", "--x", "delta=-4:6:lin:5",
                 "--y", "product=1e-3:1:log:4", "--fixed", "in_dim=3"]) == 0
    out = capsys.readouterr().out
    assert "4 x 5" in out and "closed-form" in out
    assert main(["phase-diagram", "deep-linear", "--teacher-svals", "3,1",
                 "--x", "mode_init=1e-4:2:log:6", "--y", "s2=0.2,1", "--fixed",
                 "width=4,depth=3"]) == 0
    out = capsys.readouterr().out
    assert "closed-form" in out and "saddle-to-saddle" in out


def test_single_neuron_seed_and_in_dim_axes_equal_classify():
    pd = ed.phase_diagram(ed.SingleNeuron, x=("seed", [0, 7, 11]), y=("in_dim", [2, 5]),
                          fixed={"delta": 1.5, "product": 0.05})
    for i, n in enumerate([2, 5]):
        for j, sd in enumerate([0, 7, 11]):
            reg = ed.classify(ed.SingleNeuron(in_dim=n, seed=sd, delta=1.5, product=0.05))
            for k in ("ntk_change", "phi0", "rho_lazy"):
                np.testing.assert_allclose(pd.scores[k][i, j], reg.evidence[k], rtol=RTOL,
                                           atol=ATOL)


def test_closed_form_needs_an_integer_seed():
    for cls, x in ((ed.Linear1D, ("sigma_u", [0.1, 1.0])), (ed.SingleNeuron, ("delta", [0, 1]))):
        with pytest.raises(ValueError, match="integer seed"):
            ed.phase_diagram(cls, x=x, y=("eta_w", [1.0, 2.0]) if cls is ed.SingleNeuron
                             else ("kappa", [1.0, 2.0]), fixed={"seed": None},
                             method="closed-form")
