"""Derivation reports of the matrix families: linear, single-neuron, deep-linear."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import sympy as sp

import exactdyn as ed
from exactdyn.cli import _model as cli_model
from exactdyn.cli import _times as cli_times
from exactdyn.cli import build_parser
from exactdyn.closed_form import closed_form
from exactdyn.closed_form.deep_linear import chain_solution
from exactdyn.flows import gradient_flow
from exactdyn.models.deep_linear import DeepLinear
from exactdyn.models.linear import LinearNet, SingleNeuron
from exactdyn.report import figures as figures_mod
from exactdyn.symbolic.latex import latex

TIMES = np.linspace(0.0, 2.0, 5)
PRECISION = 20
SYX = np.diag([3.0, 2.0, 1.0])

MODELS = {
    "linear": lambda: LinearNet.decoupled(SYX, strengths=[0.5, 0.25, 0.125], frame=np.eye(3)),
    "single-neuron": lambda: SingleNeuron(2, delta=1.0, beta=[1.0, 0.5], product=0.25),
    "deep-linear": lambda: DeepLinear.decoupled(3, 3, SYX, 0.5),
}


def read(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("model_reports")
    return {name: ed.report(make(), out=str(root / name), t=TIMES, precision=PRECISION,
                            figures=name == "deep-linear")
            for name, make in MODELS.items()}


@pytest.mark.parametrize("name", list(MODELS))
def test_readme_prints_every_step_of_the_flow_and_closed_form(built, name):
    rep = built[name]
    readme = read(os.path.join(rep.path, "README.md"))
    tex = read(os.path.join(rep.path, "derivation.tex"))
    flow = gradient_flow(rep.content.model)
    assert flow.steps
    for step in flow.steps:
        assert latex(step.expr) in readme
        assert latex(step.expr) in tex
    for eq in closed_form(rep.content.model).equations():
        assert isinstance(eq, sp.Eq)
        assert latex(eq) in readme
    for q in flow.conserved:
        assert latex(q.expr) in readme
    assert "## Closed form" in readme and "## Proofs" in readme


@pytest.mark.parametrize("name", list(MODELS))
def test_verification_and_printed_command(built, name):
    rep = built[name]
    data = json.loads(read(os.path.join(rep.path, "data.json")))
    assert data["verification"]["float64"]["passed"]
    assert all(data["proofs"].values()) and all(data["conserved"].values())
    label = f"{PRECISION} digits"
    # Every family now has a high-precision integrator (deep-linear: the matrix Taylor
    # engine), so every report carries the 50-digit verification.
    assert data["verification"][label]["passed"]
    # the printed command rebuilds the same model and times
    args = build_parser().parse_args(["report", *data["argv"], "--out", "x"])
    again = cli_model(args)
    assert json.dumps(again.params) == json.dumps(rep.content.model.params)
    np.testing.assert_array_equal(cli_times(args), TIMES)
    assert data["command"] in read(os.path.join(rep.path, "README.md"))


def test_deep_linear_figures(built):
    rep = built["deep-linear"]
    for stem in ("trajectory", "error", "conserved"):
        assert os.path.getsize(os.path.join(rep.path, "figures", f"{stem}.png")) > 0


def test_matrix_conserved_drift_matches_a_numpy_oracle():
    # a random (not balanced) init, so the conserved matrix is nonzero
    model = LinearNet(3, 2, 3, sigma_yx=SYX, eta1=2.0, eta2=0.5, scale1=0.5, scale2=0.5)
    traj = ed.solve(model, TIMES)
    drift = figures_mod.conserved_values(model, traj.state)
    C = model.conserved(traj.state)  # hand-written oracle: W1 W1^T/eta1 - W2^T W2/eta2
    assert np.linalg.norm(C[0]) > 0.1
    oracle = np.linalg.norm(C - C[0], axis=(1, 2))
    (name,) = drift
    np.testing.assert_allclose(drift[name], oracle, atol=1e-12)
    assert drift[name][-1] < 1e-10  # conserved along the integrator


def test_chain_equation_matches_the_numeric_closed_form():
    u_t = closed_form(DeepLinear.decoupled(2, 2, np.diag([2.0, 1.0]), 0.5)).equations()[1]
    f = sp.lambdify(sorted(u_t.rhs.free_symbols, key=str), u_t.rhs)  # s, t, u_0
    t = np.linspace(0.0, 3.0, 7)
    np.testing.assert_allclose(f(2.0, t, 0.25), chain_solution(t, 0.25, 2.0, 2), rtol=1e-13)


def test_a_model_the_cli_cannot_build_still_gets_a_report(tmp_path):
    model = LinearNet(2, 2, 2, sigma_yx=[[1.0, 0.5], [0.0, 1.0]], scale1=0.5, scale2=0.5)
    rep = ed.report(model, out=str(tmp_path / "r"), t=TIMES, precision=PRECISION, figures=False)
    data = json.loads(read(os.path.join(rep.path, "data.json")))
    assert data["argv"] is None and "built from Python" in data["command"]
    # a random init has no closed form: said in the report, not an error
    assert data["verification"] == {} and "not available" in data["verification_notes"]["float64"]
    assert "Not available" in rep.markdown


@pytest.mark.parametrize("folder", ["linear1d", "linear", "single-neuron", "deep-linear"])
def test_committed_derivation_tex_compiles(folder, tmp_path):
    """Every committed derivation.tex compiles (regression: a proof label with an umlaut
    once stopped pdflatex in math mode)."""
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed (apt-get install texlive-latex-base "
                    "texlive-latex-recommended); .ci/run installs it")
    root = os.path.join(os.path.dirname(__file__), os.pardir, "derivations", folder)
    work = tmp_path / folder
    shutil.copytree(root, work)
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                           "derivation.tex"], cwd=work, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]
