"""Phase diagrams of the families beyond Linear1D (one classification per cell)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import exactdyn as ed
from exactdyn.cli import main
from exactdyn.models.deep_linear import teacher_matrix


def test_single_neuron_lazy_rich_diagram_agrees_with_theory():
    """Kunin et al.: large positive delta is lazy, delta near 0 rich, at any small product;
    the measured labels (NTK movement of the closed-form trajectory) agree with the
    predicted ones (from delta, s = |beta*| and the rates) cell by cell."""
    deltas = np.array([-2.0, 0.0, 0.5, 20.0, 50.0])
    pd = ed.phase_diagram(ed.SingleNeuron, x=("delta", deltas),
                          y=("product", [1e-3, 1e-2]), fixed={"in_dim": 2}, jobs=1,
                          progress=False)
    assert pd.labels.shape == (2, 5)
    assert np.all(pd.labels[:, deltas >= 20] == "lazy")
    assert np.all(pd.labels[:, np.abs(deltas) <= 0.5] == "rich")
    assert np.array_equal(pd.labels, pd.predicted)
    assert not pd.failures


def test_deep_linear_diagram_over_gamma_and_width():
    S = teacher_matrix([2.0, 1.0], 2, 2)
    pd = ed.phase_diagram(ed.DeepLinear, x=("gamma", [0.25, 3.0]), y=("width", [32]),
                          fixed={"depth": 2, "in_dim": 2, "out_dim": 2, "sigma_yx": S},
                          jobs=1, progress=False)
    assert list(pd.predicted[0]) == ["ntk", "saddle-to-saddle"]
    assert pd.labels[0, 1] == "saddle-to-saddle"


def test_family_without_taxonomy_and_missing_required_parameter():
    @dataclasses.dataclass(frozen=True)
    class NoTaxonomy:  # a family without a taxonomy (LinearNet has one since linear_net)
        name = "no_taxonomy"
        eta1: float = 1.0
        eta2: float = 1.0

    with pytest.raises(ValueError, match="no regime taxonomy"):
        ed.phase_diagram(NoTaxonomy, x=("eta1", [1, 2]), y=("eta2", [1, 2]), progress=False)
    with pytest.raises(ValueError, match="required hyperparameters"):
        ed.phase_diagram(ed.DeepLinear, x=("gamma", [1, 2]), y=("width", [4, 8]),
                         progress=False)
    with pytest.raises(ValueError, match="unknown parameter name"):
        ed.phase_diagram(ed.SingleNeuron, x=("kappa", [1, 2]), y=("delta", [1, 2]),
                         progress=False)


def test_cli_phase_diagram_for_other_families(tmp_path, capsys):
    data = tmp_path / "pd.json"
    code = main(["phase-diagram", "single-neuron", "--x", "delta=0,30", "--y",
                 "product=1e-3,1e-2", "--fixed", "in_dim=2", "--data", str(data),
                 "--no-progress", "--jobs", "1"])
    assert code == 0
    saved = json.loads(data.read_text())
    assert saved["labels"] == [["rich", "lazy"], ["rich", "lazy"]]
    code = main(["phase-diagram", "deep-linear", "--teacher-svals", "2,1", "--x",
                 "gamma=0.25,3", "--y", "width=16", "--fixed", "depth=2", "--no-progress",
                 "--jobs", "1"])
    assert code == 0
    capsys.readouterr()
    # LinearNet (taxonomy linear_net): the decoupled init from the closed form, a random
    # init cell by cell
    code = main(["phase-diagram", "linear", "--teacher-svals", "3,1", "--x",
                 "strengths=1e-3,10", "--y", "b_strengths=1e-3", "--data", str(data)])
    assert code == 0
    saved = json.loads(data.read_text())
    assert saved["method"] == "closed-form" and saved["labels"] == [["rich", "lazy"]]
    code = main(["phase-diagram", "linear", "--x", "scale1=1e-3", "--y", "scale2=1e-3",
                 "--fixed", "hidden=2", "--no-progress", "--jobs", "1", "--data", str(data)])
    assert code == 0
    saved = json.loads(data.read_text())
    assert saved["method"] == "trajectory" and saved["labels"] == [["rich"]]
    code = main(["phase-diagram", "linear", "--teacher-svals", "3,1", "--x",
                 "strengths=1e-3,10", "--y", "scale1=1", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "scale1" in err
