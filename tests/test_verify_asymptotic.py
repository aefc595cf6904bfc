"""verify() of approximate closed forms: the scale-convergence check.

The two-layer and CNN closed forms are early-stage approximations whose relative error
against the full flow is O(scale^p) at fixed t (p = 2 when sigma''(0) = 0, else 1). The
independent evidence here is the integrator (the full flow, DOP853 at rtol 1e-13): the
fitted order must match the predicted one, a closed form perturbed at order 1 must fail,
and the exact families' verification must keep its old shape.
"""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import exactdyn as ed
from exactdyn.cli import main
from exactdyn.closed_form import closed_form_order
from exactdyn.models.datasets import synthetic_images
from exactdyn.verify import ORDER_TOL, SCALE_FACTORS, rescaled

# The module (``exactdyn.verify`` the attribute is the function).
verify_mod = importlib.import_module("exactdyn.verify")

X1 = np.linspace(-1.0, 1.0, 8)
Y1 = np.sin(3.0 * X1)
T_TWO = np.linspace(0.0, 2.0, 3)
T_CNN = np.linspace(0.0, 0.3, 3)
IMAGES, LABELS = synthetic_images(16, 6, 6, 1, seed=0)


def two_layer(activation="tanh", beta=1e-2, **kw):
    return ed.TwoLayer(6, X1, Y1, activation=activation, beta1=beta, beta2=beta, **kw)


def cnn(activation="tanh", scale=1e-3, **kw):
    return ed.TwoLayerCNN(4, 3, IMAGES, LABELS, activation=activation, scale=scale, **kw)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_order(rep, predicted, lo, hi):
    assert rep.kind == "asymptotic" and rep.passed, rep.table()
    assert rep.factors == SCALE_FACTORS
    for c in rep.checks:
        assert c.predicted == predicted and c.passed
        # Errors fall with the scale; the order is at least the predicted one (the loss's
        # error is O(scale^(2p)): its first-order change in f is already O(scale^2)).
        assert c.order is None or c.order >= predicted - ORDER_TOL
    state = rep["state"]
    assert lo <= state.order <= hi, rep.table()
    assert state.errors[0] > state.errors[1] > state.errors[2]


def test_tanh_two_layer_converges_at_order_two():
    rep = ed.verify(two_layer("tanh"), T_TWO)
    assert_order(rep, 2, 1.8, 2.3)
    # The output is the observable the linearization is about: O(scale^2) as well.
    assert 1.8 <= rep["output"].order <= 2.3
    md = rep._repr_markdown_()
    assert md.startswith("| observable | err ×1 | err ×0.5 | err ×0.25 | order |")
    assert md.count("\n") == len(rep.checks) + 1


def test_relu_early_alignment_converges_at_order_two_through_region_crossings():
    model = two_layer("relu")
    flow = ed.solve(model, T_TWO)
    W = np.asarray(flow["W"], float)
    # The window contains activation-region changes, so the crossing times are checked too.
    assert np.any(np.sign(model.X @ W[0].T) != np.sign(model.X @ W[-1].T))
    assert_order(ed.verify(model, T_TWO), 2, 1.8, 2.3)


def test_cnn_tanh_converges_at_order_two():
    rep = ed.verify(cnn("tanh"), T_CNN)
    assert_order(rep, 2, 1.8, 2.3)
    assert set(rep.to_dict()["observables"]) == {"state", "loss", "output", "balance",
                                                 "kernel_norm"}


def test_quadratic_term_of_sigma_predicts_and_shows_order_one():
    # gelu has sigma''(0) = 2/sqrt(2 pi) != 0: its sigma'(h) changes at relative O(scale).
    model = cnn("gelu")
    assert closed_form_order(model) == 1
    assert_order(ed.verify(model, T_CNN), 1, 0.8, 1.3)


@settings(max_examples=4)
@given(seed=st.integers(0, 10**6), alpha=st.sampled_from([0.5, 1.0, 2.0]))
def test_order_two_over_seeds_and_output_scales(seed, alpha):
    model = ed.TwoLayer(5, X1, Y1, activation="tanh", beta1=1e-2 * alpha**0.5,
                        beta2=1e-2 * alpha**0.5, alpha=alpha, seed=seed)
    rep = ed.verify(model, alpha * T_TWO)
    assert rep.passed, rep.table()
    assert 1.8 <= rep["state"].order <= 2.3


def _perturbed_exact(monkeypatch):
    """Patch verify's closed form to add a relative perturbation proportional to the init
    scale (an order-1 error on top of the true order-2 one)."""
    from exactdyn.numeric.twolayer import trajectory_from_states

    true_exact = verify_mod.exact

    def wrong(model, times, precision=None):
        traj = true_exact(model, times, precision=precision)
        eps = float(np.sqrt(np.mean(model.a0**2)))
        a = np.asarray(traj["a"], float) + eps * model.a0
        W = np.asarray(traj["W"], float) + eps * model.W0
        return trajectory_from_states(model, times, a, W, dict(traj.meta))

    monkeypatch.setattr(verify_mod, "exact", wrong)


def test_closed_form_wrong_at_order_one_fails(monkeypatch):
    _perturbed_exact(monkeypatch)
    rep = ed.verify(two_layer("tanh"), T_TWO)
    assert not rep.passed
    state = rep["state"]
    assert not state.passed and 0.8 <= state.order <= 1.2
    assert "FAILED" in rep.table() and "< predicted 2" in rep.table()


def test_cli_exit_code_one_on_failure(monkeypatch, capsys):
    _perturbed_exact(monkeypatch)
    code, out, _ = run(capsys, "verify", "two-layer", "--width", "6", "--activation", "tanh",
                       "--beta1", "1e-2", "--beta2", "1e-2", "--n", "8", "--t", "0,1,2")
    assert code == 1 and "overall: FAILED" in out


def test_time_zero_only_passes_with_note():
    rep = ed.verify(cnn("tanh"), [0.0])
    assert rep.passed
    for c in rep.checks:
        assert c.order is None and max(c.errors) < 1e-13 and "t = 0 only" in c.note


def test_noise_floor_passes_without_fitting():
    rep = ed.verify(two_layer("tanh", beta=1e-6), T_TWO)
    assert rep.passed
    assert all(c.order is None and "noise floor" in c.note for c in rep.checks)
    assert max(max(c.errors) for c in rep.checks) < 1e-10


def test_outside_the_early_phase_fails():
    # Init of order 1: the linearization does not hold and the errors are not a power law.
    rep = ed.verify(two_layer("relu", beta=1.0), T_TWO)
    assert not rep.passed and "outside the early phase" in rep.note


def test_rescaled_copies_keep_data_activation_alpha_bias_padding():
    m = ed.TwoLayer(4, X1, Y1, activation="tanh", beta1=1e-2, beta2=1e-2, alpha=2.0,
                    bias=False)
    h = rescaled(m, 0.5)
    assert h.bias is False and h.alpha == 2.0 and h.act == m.act
    np.testing.assert_array_equal(h.X, m.X)
    np.testing.assert_array_equal(h.a0, 0.5 * m.a0)
    np.testing.assert_array_equal(h.W0, 0.5 * m.W0)
    c = cnn("tanh", padding="same", alpha=0.5)
    g = rescaled(c, 0.25)
    assert g.padding == "same" and g.alpha == 0.5 and g.out_shape == c.out_shape
    np.testing.assert_array_equal(g.patches, c.patches)
    np.testing.assert_array_equal(g.W0, 0.25 * c.W0)
    # Scaling the init by 1 changes nothing: the copy's flow is the original's.
    a = ed.solve(rescaled(m, 1.0), T_TWO)["loss"]
    np.testing.assert_allclose(a, ed.solve(m, T_TWO)["loss"], rtol=1e-12)


def test_exact_families_keep_the_round_off_check():
    model = ed.Linear1D(width=3, seed=0)
    assert closed_form_order(model) is None
    rep = ed.verify(model, np.linspace(0.0, 1.0, 4))
    assert rep.kind == "exact" and rep.passed
    lines = rep.table().splitlines()
    assert lines[0] == "verify linear1d (float64, integrator DOP853, rtol 1e-13)"
    assert lines[1].split() == ["observable", "max", "abs", "err", "max", "rel", "err", "rel",
                                "tol", "abs", "tol", "passed"]
    # head, one row per observable, the legend of the passed column, overall
    assert lines[-1] == "overall: PASSED" and len(lines) == len(rep.checks) + 4
    assert lines[-2].startswith("passed on: relative")
    for c in rep.checks:
        assert c.max_abs_error <= 1e-12 or c.max_rel_error <= 1e-9
    d = rep.to_dict()
    assert set(d) == {"model", "params", "precision", "method", "rtol", "passed",
                      "observables", "note"}
    assert set(next(iter(d["observables"].values()))) == {"max_abs_error", "max_rel_error",
                                                          "rel_tol", "abs_tol", "passed",
                                                          "passed_on"}


@pytest.mark.parametrize("kwargs, needle", [
    ({"rel_tol": 1e-3}, "rel_tol"), ({"abs_tol": 1e-3}, "abs_tol"),
    ({"precision": 30}, "precision"), ({"order_tol": -1.0}, "order_tol")])
def test_bad_options_for_approximate_forms(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        ed.verify(two_layer("tanh"), T_TWO, **kwargs)


def test_order_tol_rejected_for_exact_forms():
    with pytest.raises(ValueError, match="order_tol"):
        ed.verify(ed.Linear1D(width=3), [0.0, 1.0], order_tol=0.2)


def test_cli_verify_two_layer_table(capsys):
    code, out, _ = run(capsys, "verify", "two-layer", "--width", "6", "--activation", "tanh",
                       "--beta1", "1e-3", "--beta2", "1e-3", "--n", "8", "--t", "0,1,2")
    assert code == 0, out
    assert "scale convergence" in out and "predicted" in out and "overall: PASSED" in out
    assert out.splitlines()[3].split()[0] == "state"


def test_cli_verify_cnn_csv_and_json(capsys):
    base = ["verify", "cnn", "--channels", "3", "--n", "12", "--image-size", "5",
            "--scale", "1e-3", "--t", "0,0.3"]
    code, out, _ = run(capsys, *base, "--format", "csv")
    assert code == 0
    rows = [r.split(",") for r in out.strip().splitlines()]
    assert rows[0][:4] == ["observable", "error_x1", "error_x0.5", "error_x0.25"]
    state = dict(zip(rows[0], rows[1]))
    assert state["observable"] == "state" and 1.8 <= float(state["order"]) <= 2.3
    code, out, _ = run(capsys, *base, "--format", "json")
    d = json.loads(out)
    assert code == 0 and d["kind"] == "asymptotic" and d["passed"] is True
    assert d["observables"]["state"]["predicted_order"] == 2


def test_cli_bad_order_tol_one_line_exit_2(capsys):
    code, out, err = run(capsys, "verify", "cnn", "--channels", "2", "--n", "4",
                         "--image-size", "4", "--t", "0,0.1", "--order-tol", "-1")
    assert code == 2 and out == "" and err.count("\n") == 1 and "order_tol" in err


def test_report_tolerance_follows_the_predicted_order():
    from exactdyn.report.twolayer import AGREEMENT_FACTOR, early_stage_verification

    # sigma''(0) = 2: order 1, so the report's single-scale rule is 10 scale, not 10 scale².
    model = ed.TwoLayer(6, X1, Y1, activation="tanh(x) + x**2", beta1=1e-3, beta2=1e-3)
    assert closed_form_order(model) == 1
    assert_order(ed.verify(model, [0.0, 0.5, 1.0]), 1, 0.8, 1.3)
    rep = early_stage_verification(model, [0.0, 0.5, 1.0])
    assert rep.passed and all(c.rel_tol == AGREEMENT_FACTOR * 1e-3 for c in rep.checks)
    # The rd error is a relative O(scale) = 1e-4: above 10 scale² = 1e-5.
    assert rep["rd"].max_rel_error > AGREEMENT_FACTOR * 1e-6
