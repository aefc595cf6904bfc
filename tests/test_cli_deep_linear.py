"""The deep-linear command line: round trips against the Python API, files, one-line errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import exactdyn as ed
from exactdyn.cli import main
from exactdyn.models.deep_linear import teacher_matrix


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_exact_json_matches_python_api(capsys):
    code, out, _ = run(capsys, "exact", "deep-linear", "--depth", "3", "--width", "4",
                       "--teacher-svals", "3,2,1", "--decoupled", "0.2", "--t", "0,1,2",
                       "--format", "json")
    assert code == 0
    data = json.loads(out)
    model = ed.DeepLinear.decoupled(3, 4, teacher_matrix([3, 2, 1], 3, 3), 0.2)
    ref = ed.exact(model, [0, 1, 2])
    np.testing.assert_array_equal(np.array(data["observables"]["end_to_end"]),
                                  ref["end_to_end"])
    assert np.array(data["observables"]["singular_values"]).shape == (3, 3)


def test_solve_from_matrix_files_agrees_with_api(capsys, tmp_path):
    rng = np.random.default_rng(0)
    syx = rng.normal(size=(2, 3))
    m = rng.normal(size=(3, 3))
    sxx = m @ m.T + np.eye(3)
    np.save(tmp_path / "syx.npy", syx)
    np.savetxt(tmp_path / "sxx.txt", sxx)
    code, out, _ = run(capsys, "solve", "deep-linear", "--depth", "2", "--width", "3",
                       "--sigma-yx", str(tmp_path / "syx.npy"), "--sigma-xx",
                       str(tmp_path / "sxx.txt"), "--gamma", "0.5", "--seed", "4",
                       "--t-span", "0:2", "--points", "3", "--format", "csv")
    assert code == 0
    rows = list(csv.reader(out.strip().splitlines()))
    col = rows[0].index("loss")
    loss = np.array([float(r[col]) for r in rows[1:]])
    model = ed.DeepLinear(depth=2, width=3, in_dim=3, out_dim=2, gamma=0.5, sigma_yx=syx,
                          sigma_xx=np.loadtxt(tmp_path / "sxx.txt"), seed=4)
    np.testing.assert_allclose(loss, ed.solve(model, [0, 1, 2])["loss"], rtol=1e-9)


def test_weights_file_and_verify(capsys, tmp_path):
    model = ed.DeepLinear.decoupled(2, 3, teacher_matrix([2, 1], 2, 2), [0.5, 0.3])
    np.savez(tmp_path / "w.npz", **model.initial_state())
    code, out, _ = run(capsys, "verify", "deep-linear", "--teacher-svals", "2,1",
                       "--weights", str(tmp_path / "w.npz"), "--t-span", "0:3",
                       "--points", "4")
    assert code == 0 and "PASSED" in out


@pytest.mark.parametrize("argv, word", [
    (["solve", "deep-linear", "--depth", "1", "--teacher-svals", "1"], "depth"),
    (["solve", "deep-linear", "--width", "0", "--teacher-svals", "1"], "width"),
    (["solve", "deep-linear"], "--teacher-svals"),
    (["solve", "deep-linear", "--teacher-svals", "1,x"], "--teacher-svals"),
    (["solve", "deep-linear", "--teacher-svals", "1", "--sigma-xx", "/no/file"], "--sigma-xx"),
    (["solve", "deep-linear", "--teacher-svals", "2,1", "--out-dim", "1"], "teacher_svals"),
    (["exact", "deep-linear", "--teacher-svals", "2,1"], "closed form"),
    (["solve", "deep-linear", "--teacher-svals", "2,1", "--precision", "5"], "precision"),
])
def test_errors_are_one_line_exit_2(capsys, argv, word):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("exactdyn: error:") and err.count("\n") == 1
    assert word in err


def test_sigma_xx_not_positive_definite(capsys, tmp_path):
    np.savetxt(tmp_path / "bad.txt", -np.eye(2))
    code, _, err = run(capsys, "solve", "deep-linear", "--teacher-svals", "2,1",
                       "--sigma-xx", str(tmp_path / "bad.txt"))
    assert code == 2 and "sigma_xx" in err and "positive definite" in err
