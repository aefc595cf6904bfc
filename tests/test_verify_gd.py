"""``verify(..., lrs=...)``: gradient descent against the flow (order 1) and the modified
flow (order 2) as part of verify (issue 12, item 2), in Python and on the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

import exactdyn as ed
from exactdyn.cli import main

SMALL = [0.02, 0.01, 0.005, 0.0025]


def test_verify_checks_gd_at_order_1_against_the_flow_and_2_against_the_modified_flow():
    rep = ed.verify(ed.Linear1D(width=4, seed=1), np.linspace(0, 1, 5), lrs=SMALL)
    assert rep.kind == "exact" and rep.checks and rep.gd is not None
    assert abs(rep.gd.order_flow - 1) < 0.05 and abs(rep.gd.order_modified - 2) < 0.1
    assert rep.passed and rep.gd.passed
    # Halving the step halves GD's distance to the flow and quarters it to the modified one.
    ratios_flow = rep.gd.error_flow[:-1] / rep.gd.error_flow[1:]
    ratios_mod = rep.gd.error_modified[:-1] / rep.gd.error_modified[1:]
    np.testing.assert_allclose(ratios_flow, 2.0, rtol=0.05)
    np.testing.assert_allclose(ratios_mod, 4.0, rtol=0.1)
    assert "fitted order" in rep.table() and "overall: PASSED" in rep.table()
    assert rep.to_dict()["gd"]["passed"] is True


def test_a_gd_check_that_fails_fails_the_report():
    # Steps this large leave the asymptotic range: the flow's order is 1.09, not 1 +- 0.05.
    rep = ed.verify(ed.Linear1D(width=4, seed=1), np.linspace(0, 1, 5),
                    lrs=[0.1, 0.05, 0.025, 0.0125])
    assert all(c.passed for c in rep.checks)
    assert not rep.gd.passed and not rep.passed and "overall: FAILED" in rep.table()


def test_a_model_without_a_closed_form_gets_the_gd_check_alone():
    model = ed.DeepLinear(depth=3, width=4, in_dim=2, out_dim=2, sigma=0.3,
                          sigma_yx=np.diag([2.0, 1.0]), seed=0)
    rep = ed.verify(model, [0.0, 1.0], lrs=SMALL)
    assert rep.kind == "gd" and rep.checks == [] and "no closed form" in rep.note
    assert abs(rep.gd.order_flow - 1) < 0.05 and abs(rep.gd.order_modified - 2) < 0.1
    with pytest.raises(ValueError, match="precision applies to a closed form"):
        ed.verify(model, [0.0, 1.0], lrs=SMALL, precision=30)
    with pytest.raises(ValueError, match="no closed form"):
        ed.verify(model, [0.0, 1.0])  # without lrs: verify needs the closed form


def test_approximate_closed_forms_take_the_gd_check_too():
    net = ed.TwoLayer(6, "1d-sine", activation="tanh", beta1=1e-2, beta2=1e-2, n=8)
    rep = ed.verify(net, np.linspace(0.0, 1.0, 3), lrs=SMALL)
    assert rep.kind == "asymptotic" and rep.gd.passed and rep.passed


@pytest.mark.parametrize("lrs", [[0.3, 0.2], [0.01], [0.01, -0.01], [0.01, np.inf]])
def test_bad_steps_are_refused(lrs):
    with pytest.raises(ValueError, match="lr"):
        ed.verify(ed.Linear1D(width=2), [0.0, 1.0], lrs=lrs)


def test_cli_verify_takes_lrs(capsys):
    argv = ["verify", "linear1d", "--width", "3", "--t-span", "0:1", "--points", "3",
            "--lrs", "0.02,0.01,0.005,0.0025"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "fitted order" in out and "gd: passed" in out
    assert main([*argv, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["gd"]["passed"] is True
    assert main([*argv, "--format", "csv"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("exactdyn: error:") and "--lrs" in err and err.count("\n") == 1
