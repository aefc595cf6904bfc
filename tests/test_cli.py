"""The command line: round trips against the Python API, help, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import mpmath
import numpy as np
import pytest

import exactdyn as ed
from exactdyn.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_exact_json_round_trip_matches_python_api(capsys):
    code, out, _ = run(capsys, "exact", "linear1d", "--u0", "1,0", "--w0", "0.5,1",
                       "--t", "0.5,1,2", "--format", "json", "--teacher", "-0.7",
                       "--kappa", "2")
    assert code == 0
    data = json.loads(out)
    assert set(data) >= {"model", "params", "method", "t", "observables"}
    model = ed.Linear1D.from_init([1, 0], [0.5, 1], kappa=2, teacher=-0.7)
    ref = ed.exact(model, [0.5, 1, 2])
    assert data["t"] == [0.5, 1.0, 2.0]
    np.testing.assert_array_equal(data["observables"]["end_to_end"], ref["end_to_end"])
    # kappa * p approaches the teacher slope c.
    assert abs(data["observables"]["end_to_end"][-1] - (-0.7)) < 0.05


def test_solve_csv_agrees_with_closed_form(capsys):
    code, out, _ = run(capsys, "solve", "linear1d", "--width", "5", "--seed", "3",
                       "--t-span", "0:1", "--points", "5", "--format", "csv")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split(",")[:2] == ["t", "end_to_end"]
    assert len(lines) == 6
    values = np.array([float(line.split(",")[1]) for line in lines[1:]])
    ref = ed.exact(ed.Linear1D(width=5, seed=3), np.linspace(0, 1, 5))["end_to_end"]
    np.testing.assert_allclose(values, ref, rtol=1e-9, atol=1e-12)


def test_high_precision_json_keeps_digits(capsys):
    code, out, _ = run(capsys, "exact", "linear1d", "--width", "3", "--t", "0.25",
                       "--precision", "40", "--format", "json")
    assert code == 0
    with mpmath.workdps(40):  # mpf parses at the working precision
        data = json.loads(out)  # high-precision numbers are strings with all their digits
        ref = ed.exact(ed.Linear1D(width=3), [0.25], precision=40)["end_to_end"][0]
        got = mpmath.mpf(data["observables"]["end_to_end"][0])
        assert abs(got - ref) <= abs(ref) * mpmath.mpf(10) ** -38


def test_verify_table_passes(capsys):
    code, out, _ = run(capsys, "verify", "linear1d", "--width", "4", "--t-span", "0:2",
                       "--points", "5")
    assert code == 0
    assert "end_to_end" in out and "PASSED" in out


def test_reduced_solve_from_cli(capsys):
    code, out, _ = run(capsys, "solve", "linear1d", "--width", "4", "--reduced", "--t", "0,1",
                       "--format", "json")
    assert code == 0
    assert json.loads(out)["method"].endswith("(reduced)")


@pytest.mark.parametrize("argv, needle", [
    (["solve", "linear1d", "--width", "0"], "width"),
    (["solve", "linear1d", "--width", "-3"], "width"),
    (["solve", "linear1d", "--eta-u", "0"], "eta_u"),
    (["solve", "linear1d", "--eta-w", "-1"], "eta_w"),
    (["solve", "linear1d", "--x-var", "0"], "x_var"),
    (["solve", "linear1d", "--kappa", "0"], "kappa"),
    (["solve", "linear1d", "--kappa", "nan"], "kappa"),
    (["solve", "linear1d", "--teacher", "inf"], "teacher"),
    (["solve", "linear1d", "--sigma-u", "-1"], "sigma_u"),
    (["exact", "linear1d", "--u0", "1,2", "--w0", "1"], "same length"),
    (["exact", "linear1d", "--u0", "1,nan", "--w0", "1,2"], "u0"),
    (["exact", "linear1d", "--u0", "1,2"], "--w0"),
    (["solve", "linear2d"], "linear2d"),
    (["solve", "linear1d", "--t", "1,a"], "--t"),
    (["solve", "linear1d", "--t", "2,1"], "non-decreasing"),
    (["solve", "linear1d", "--t", "-1"], ">= 0"),
    (["solve", "linear1d", "--t-span", "0-10"], "--t-span"),
    (["solve", "linear1d", "--precision", "5"], "precision"),
    (["solve", "linear1d", "--method", "Euler"], "method"),
    (["solve", "linear1d", "--format", "xml"], "format"),
    ([], "command"),
])
def test_bad_input_one_line_exit_2(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("exactdyn: error:")
    assert needle in lines[0]


def test_console_script_help_is_complete():
    out = subprocess.run([sys.executable, "-m", "exactdyn", "solve", "linear1d", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for option in ("--width", "--kappa", "--eta-u", "--eta-w", "--sigma-u", "--sigma-w",
                   "--teacher", "--x-var", "--seed", "--u0", "--w0", "--t", "--t-span",
                   "--points", "--precision", "--format", "--method", "--rtol", "--atol",
                   "--reduced"):
        assert option in out
    top = subprocess.run([sys.executable, "-m", "exactdyn", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for command in ("solve", "exact", "verify"):
        assert command in top


def test_console_script_error_exit_code():
    res = subprocess.run([sys.executable, "-m", "exactdyn", "solve", "linear1d", "--width", "0"],
                         capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "width" in res.stderr


def test_output_cut_off_by_its_reader_ends_quietly():
    """``exactdyn ... | head``: the reader closes the pipe after one line; the command
    ends with 128 + SIGPIPE and nothing on stderr (no traceback, no "Broken pipe")."""
    proc = subprocess.Popen([sys.executable, "-m", "exactdyn", "exact", "linear1d", "--u0",
                             "1,0", "--w0", "0.5,1", "--t-span", "0:3", "--points", "5000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # ~650 kB of table, far more than a pipe holds: the writer is still writing.
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 141
    assert first.split()[:2] == ["t", "end_to_end"]
    assert err == ""
