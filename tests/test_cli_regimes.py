"""CLI: classify and phase-diagram against the Python API; bad input exits 2, one line."""

import json

import numpy as np
import pytest

import exactdyn as ed
from exactdyn.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_classify_json_matches_api(capsys):
    code, out, _ = run(capsys, "classify", "linear1d", "--width", "256", "--sigma-u", "0.03",
                       "--sigma-w", "0.03", "--format", "json")
    assert code == 0
    data = json.loads(out)
    ref = ed.classify(ed.Linear1D(width=256, sigma_u=0.03, sigma_w=0.03))
    assert (data["label"], data["predicted"]) == (ref.label, ref.predicted) == ("alignment",) * 2
    assert data["evidence"]["alignment_score"] == ref.evidence["alignment_score"]


def test_classify_table_and_trajectory(capsys):
    code, out, _ = run(capsys, "classify", "linear1d", "--u0", "3,0", "--w0", "1.8,2.4")
    assert code == 0 and "label:     disalignment" in out
    # d = 1: zeta = 1 throughout while |p| shrinks 9x: rescaling by the zeta path.
    code, out, _ = run(capsys, "classify", "linear1d", "--u0", "3", "--w0", "3")
    assert code == 0 and "label:     rescaling" in out
    # Unequal rates: the NTK of the kernel test is chosen on the command line.
    argv = ("classify", "linear1d", "--width", "64", "--eta-u", "0.01", "--sigma-u", "0.125",
            "--sigma-w", "1e-3", "--format", "json")
    code, out, _ = run(capsys, *argv)
    assert code == 0 and json.loads(out)["label"] != "kernel"
    code, out, _ = run(capsys, *argv, "--ntk", "weighted")
    data = json.loads(out)
    assert code == 0 and data["label"] == "kernel"
    assert data["evidence"]["kernel_ntk"] == "weighted"
    code, out, _ = run(capsys, "classify", "linear1d", "--width", "64", "--t-span", "0:50",
                       "--points", "200", "--format", "csv")
    assert code == 0 and "source,'trajectory'" in out


def test_phase_diagram_writes_data_and_figures(capsys, tmp_path):
    code, out, _ = run(capsys, "phase-diagram", "linear1d", "--x", "sigma_u=1e-3:1e1:log:30",
                       "--y", "kappa=1e-2:1e2:log:20", "--fixed", "width=64,seed=0",
                       "--out", str(tmp_path / "pd.png"), "--data", str(tmp_path / "pd.json"))
    assert code == 0 and "agreement with theory" in out
    pd = ed.PhaseDiagram.from_json(tmp_path / "pd.json")
    ref = ed.phase_diagram(ed.Linear1D, x=("sigma_u", np.geomspace(1e-3, 10, 30)),
                           y=("kappa", np.geomspace(1e-2, 1e2, 20)), fixed={"width": 64})
    np.testing.assert_array_equal(pd.labels, ref.labels)
    assert (tmp_path / "pd.png").stat().st_size > 1000
    code, out, _ = run(capsys, "phase-diagram", "linear1d", "--x", "sigma_u=0.1,1",
                       "--y", "teacher=-1,1", "--data", str(tmp_path / "pd.npz"),
                       "--method", "trajectory", "--jobs", "1", "--no-progress",
                       "--cache", str(tmp_path / "cells"))
    assert code == 0
    assert ed.PhaseDiagram.from_npz(tmp_path / "pd.npz").labels.shape == (2, 2)


@pytest.mark.parametrize("argv,needle", [
    (["--x", "sigma_x=1:2:log:3", "--y", "kappa=1:2:log:3"], "unknown parameter name"),
    (["--x", "sigma_u=0:2:log:3", "--y", "kappa=1:2:log:3"], "log range"),
    (["--x", "sigma_u=1:inf:lin:3", "--y", "kappa=1:2:log:3"], "finite"),
    (["--x", "sigma_u=", "--y", "kappa=1:2:log:3"], "empty"),
    (["--x", "sigma_u=1:2:log:3", "--y", "kappa=1:2:log:3", "--out", "a.pdf"], ".png or .svg"),
    (["--x", "sigma_u=1:2:log:3", "--y", "kappa=1:2:log:3", "--fixed", "width"], "NAME=VALUE"),
    (["--x", "sigma_u=1:2:log:3"], "required"),
])
def test_phase_diagram_bad_input_exits_2_one_line(capsys, argv, needle):
    code, out, err = run(capsys, "phase-diagram", "linear1d", *argv)
    assert code == 2 and out == ""
    assert err.startswith("exactdyn: error: ") and err.count("\n") == 1
    assert needle in err


def test_classify_bad_input_exits_2(capsys):
    code, _, err = run(capsys, "classify", "linear1d", "--kernel-tol", "-1")
    assert code == 2 and "kernel_tol" in err and err.count("\n") == 1


def test_phase_diagram_on_a_dask_scheduler(capsys, tmp_path):
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed not installed (pip install 'exactdyn[dask]')")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        code, out, _ = run(capsys, "phase-diagram", "linear1d", "--x", "sigma_u=0.1,1",
                           "--y", "kappa=0.1,1", "--scheduler", cluster.scheduler_address,
                           "--no-progress", "--data", str(tmp_path / "pd.json"))
    assert code == 0 and "trajectory" in out
    pd = ed.PhaseDiagram.from_json(tmp_path / "pd.json")
    ref = ed.phase_diagram(ed.Linear1D, x=("sigma_u", [0.1, 1]), y=("kappa", [0.1, 1]))
    np.testing.assert_array_equal(pd.labels, ref.labels)


def test_classify_two_layer_measures_the_rd_slope(capsys):
    # Luo et al.'s (1.75, 0) is condensed: RD grows with width (slope > 0). The CLI's
    # slope must be the one rd_slope measures on the same runs.
    argv = ["classify", "two-layer", "--width", "256", "--gamma", "1.75", "--gamma-prime", "0",
            "--init", "mirrored", "--activation", "tanh", "--data", "1d-linear", "--n", "10",
            "--widths", "16,64,256", "--seeds", "0,1", "--format", "json"]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    data = json.loads(out)
    assert data["predicted"] == "condensed" and data["evidence"]["rd_slope"] > 0
    ref = ed.regimes.rd_slope(1.75, 0.0, widths=(16, 64, 256), activation="tanh",
                              data="1d-linear", n=10, seeds=(0, 1), init="mirrored")
    assert data["evidence"]["rd_slope"] == pytest.approx(ref.slope, rel=1e-9)


@pytest.mark.parametrize("extra,word", [(["--widths", "a,b"], "--widths"),
                                        (["--seeds", "1.5"], "--seeds"),
                                        (["--loss-fraction", "2"], "loss_fraction")])
def test_classify_two_layer_bad_input_exits_2(capsys, extra, word):
    code, out, err = run(capsys, "classify", "two-layer", "--width", "8", *extra)
    assert code == 2 and out == "" and word in err and len(err.strip().splitlines()) == 1
