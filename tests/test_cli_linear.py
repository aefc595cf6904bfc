"""Command line for ``linear`` and ``single-neuron``: round trips against the Python API
and one-line errors with exit status 2."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import exactdyn as ed
from exactdyn.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_exact_linear_decoupled_json_matches_python_api(capsys):
    code, out, _ = run(capsys, "exact", "linear", "--teacher-svals", "3,1", "--init",
                       "decoupled", "--strengths", "0.01,0.02", "--t", "0,1,2", "--format",
                       "json")
    assert code == 0
    data = json.loads(out)
    m = ed.LinearNet.decoupled(np.diag([3.0, 1.0]), strengths=[0.01, 0.02], seed=0)
    ref = ed.exact(m, [0, 1, 2])
    assert np.allclose(data["observables"]["end_to_end"], ref["end_to_end"], rtol=1e-15)
    assert np.allclose(data["observables"]["loss"], ref["loss"], rtol=1e-15)


def test_sigma_yx_from_file_and_explicit_init(tmp_path, capsys):
    syx = np.array([[2.0, 0.5, 0.0], [0.1, 1.0, 0.3]])
    np.save(tmp_path / "syx.npy", syx)
    np.savetxt(tmp_path / "w1.txt", [[0.5, 0, 0], [0, 0.5, 0]])
    np.savetxt(tmp_path / "w2.txt", [[1.0, 0], [0, 1.0]])
    code, out, _ = run(capsys, "verify", "linear", "--sigma-yx", str(tmp_path / "syx.npy"),
                       "--W1", str(tmp_path / "w1.txt"), "--W2", str(tmp_path / "w2.txt"),
                       "--t", "0,1,3", "--format", "json")
    assert code == 0 and json.loads(out)["passed"]


def test_single_neuron_csv(capsys):
    code, out, _ = run(capsys, "exact", "single-neuron", "--delta", "-1", "--beta", "1,0.5",
                       "--t", "0,1", "--format", "csv")
    assert code == 0
    head = next(csv.reader(out.splitlines()[:1]))  # quoted names: "end_to_end[0,1]"
    assert head[0] == "t" and "loss" in head and "nu" in head and "end_to_end[0,1]" in head
    ref = ed.exact(ed.SingleNeuron(2, delta=-1.0, beta=[1, 0.5]), [0, 1])
    assert float(next(csv.reader(out.splitlines()[2:3]))[head.index("nu")]) == pytest.approx(
        ref["nu"][1], rel=1e-15)


@pytest.mark.parametrize("argv,match", [
    (["solve", "linear", "--hidden", "0"], "hidden"),
    (["solve", "linear", "--eta1", "-1"], "eta1"),
    (["solve", "linear", "--teacher-svals", "1,2,3", "--out-dim", "2"], "teacher-svals"),
    (["solve", "linear", "--sigma-yx", "/nonexistent.npy"], "sigma-yx"),
    (["exact", "linear", "--teacher-svals", "2,1"], "no closed form"),
    (["solve", "linear", "--init", "lambda-balanced", "--lam", "0.5", "--hidden", "4",
      "--teacher-svals", "1,2"], "hidden <= out_dim"),
    (["solve", "linear", "--init", "lambda-balanced"], "--lam"),
    (["solve", "single-neuron", "--product", "0"], "product"),
])
def test_bad_input_one_line_exit_2(capsys, argv, match):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("exactdyn: error:") and err.count("\n") == 1
    assert match in err


def test_sigma_xx_not_positive_definite(tmp_path, capsys):
    np.savetxt(tmp_path / "sxx.txt", [[1.0, 0, 0], [0, 0, 0], [0, 0, 1]])
    code, _, err = run(capsys, "solve", "linear", "--sigma-xx", str(tmp_path / "sxx.txt"))
    assert code == 2 and "positive definite" in err
