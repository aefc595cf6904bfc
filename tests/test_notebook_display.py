"""Notebook displays (``_repr_markdown_``) of Regime and PhaseDiagram."""

import numpy as np

import exactdyn as ed
from exactdyn.regimes.base import Regime


def test_regime_display_has_label_prediction_and_evidence():
    r = ed.classify(ed.Linear1D(width=16, sigma_u=0.1, sigma_w=0.1))
    md = r._repr_markdown_()
    assert md.startswith(f"**{r.label}** (linear1d taxonomy)")
    assert f"**{r.predicted}**" in md and "(agrees)" in md
    assert "| evidence | value |" in md
    for key in r.evidence:
        assert f"| {key} |" in md


def test_regime_display_without_prediction_or_evidence():
    md = Regime("kernel", "mine")._repr_markdown_()
    assert md == "**kernel** (mine taxonomy); predicted from the hyperparameters: none"


def test_regime_display_cells_stay_in_their_column():
    r = Regime("x", "t", evidence={"a|b": 1.0, "arr": np.arange(3.0), "big": np.zeros(20),
                                   "text": "a|b\nc", "flag": np.bool_(True)})
    md = r._repr_markdown_()
    assert "| arr | 0, 1, 2 |" in md
    assert "| big | array of shape (20,) |" in md
    assert "| text | a\\|b c |" in md
    assert "| flag | True |" in md


def test_phase_diagram_display_counts_every_cell():
    pd = ed.phase_diagram(ed.Linear1D, x=("sigma_u", np.geomspace(1e-3, 10, 8)),
                          y=("kappa", np.geomspace(1e-2, 1e2, 6)), fixed={"width": 16})
    md = pd._repr_markdown_()
    assert md.startswith("**Phase diagram of linear1d**")
    assert "6 × 8 cells" in md and "x = sigma_u" in md and "y = kappa" in md
    counted = sum(int(line.rsplit("|", 2)[1]) for line in md.splitlines()
                  if line.startswith("| ") and not line.startswith("| label"))
    assert counted == 48
    assert "cells away from a theory boundary" in md
