"""Derivation report of the two-layer family (linearized early-stage closed form)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import sympy as sp

import exactdyn as ed
from exactdyn.cli import run
from exactdyn.closed_form.twolayer import TwoLayerClosedForm
from exactdyn.models.twolayer import TwoLayer
from exactdyn.report.twolayer import LABEL
from exactdyn.symbolic.latex import latex
from exactdyn.symbolic.twolayer import derive_two_layer_flow

TIMES = np.linspace(0.0, 2.0, 5)
ROOT = os.path.join(os.path.dirname(__file__), os.pardir, "derivations")


def read(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    model = TwoLayer(8, "1d-sine", activation="tanh", beta1=0.01, beta2=0.01, n=10, seed=0)
    out = tmp_path_factory.mktemp("tl") / "two-layer"
    return ed.report(model, out=str(out), t=TIMES, precision=20, figures=False)


def test_readme_prints_every_flow_step_and_closed_form(built):
    readme = read(os.path.join(built.path, "README.md"))
    tex = read(os.path.join(built.path, "derivation.tex"))
    for step in derive_two_layer_flow().steps:
        assert latex(step.expr) in readme and latex(step.expr) in tex
    for eq in TwoLayerClosedForm().equations():
        assert isinstance(eq, sp.Eq) and latex(eq) in readme
    assert LABEL in readme and "not available" in readme
    assert "not conserved" in readme  # tanh: h sigma'(h) != sigma(h)


def test_closed_form_equations_solve_the_linearized_system_numerically():
    # independent of the sympy proof: finite differences of the lambdified solution
    cf = TwoLayerClosedForm()
    syms = (cf.t, cf.nz, cf.alpha, cf.a0, cf.p0)
    a = sp.lambdify(syms, cf.a_expr)
    p = sp.lambdify(syms, cf.p_expr)
    t, h, nz, al, a0, p0 = 0.7, 1e-6, 1.3, 0.8, 0.2, -0.5
    da = (a(t + h, nz, al, a0, p0) - a(t - h, nz, al, a0, p0)) / (2 * h)
    dp = (p(t + h, nz, al, a0, p0) - p(t - h, nz, al, a0, p0)) / (2 * h)
    assert da == pytest.approx(nz * p(t, nz, al, a0, p0) / al, rel=1e-8)
    assert dp == pytest.approx(nz * a(t, nz, al, a0, p0) / al, rel=1e-8)
    assert all(s.proven for s in cf.proofs)


def test_verification_and_command_rebuild(built):
    data = json.loads(read(os.path.join(built.path, "data.json")))
    assert data["verification"][LABEL]["passed"]
    assert "not available" in data["verification_notes"]["20 digits"]
    assert data["argv"][0] == "two-layer"
    from exactdyn.cli import report_build

    model, times, precision = report_build(data["argv"])
    assert json.dumps(model.params) == json.dumps(built.content.model.params)
    np.testing.assert_array_equal(model.a0, built.content.model.a0)
    np.testing.assert_array_equal(times, TIMES)
    assert precision == 20


def test_relu_report_proves_balance(tmp_path):
    model = TwoLayer(4, "1d-sine", activation="relu", beta1=0.01, beta2=0.01, n=6, seed=1)
    # The regime (an RD slope over widths, through ReLU kinks) is not what this tests.
    rep = ed.report(model, out=str(tmp_path / "r"), t=TIMES, figures=False, regime=False)
    data = json.loads(read(os.path.join(rep.path, "data.json")))
    assert data["regime"] is None and "not computed" in data["regime_note"]
    assert data["conserved"] == {"Q_j": True}
    # relu is not smooth at 0: no linearized closed form, said in the report
    assert data["verification"] == {}
    assert "not available" in data["verification_notes"][LABEL]


def test_check_passes_on_a_copy_of_derivations(tmp_path, capsys):
    shutil.copytree(ROOT, tmp_path / "derivations")
    assert run(["report", "--check", str(tmp_path / "derivations")]) == 0
    assert "two-layer" in capsys.readouterr().out


def test_committed_two_layer_tex_compiles(tmp_path):
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed")
    work = tmp_path / "two-layer"
    shutil.copytree(os.path.join(ROOT, "two-layer"), work)
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                           "derivation.tex"], cwd=work, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]
