"""Progress on stderr: a bar on a terminal, nothing in a log unless asked for, and then
plain lines (regression: a sweep's log got 900 carriage-return updates on one line)."""

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import exactdyn as ed
from exactdyn.sweep.run import Progress, progress_enabled


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_auto_means_a_terminal_only():
    assert progress_enabled(None, Terminal()) is True
    assert progress_enabled(None, io.StringIO()) is False
    assert progress_enabled(True, io.StringIO()) is True
    assert progress_enabled(False, Terminal()) is False
    closed = io.StringIO()
    closed.close()
    assert progress_enabled(None, closed) is False


def test_a_log_gets_nothing_by_default():
    log = io.StringIO()
    bar = Progress(900, None, stream=log)
    for _ in range(900):
        bar.update()
    bar.close()
    assert log.getvalue() == ""


def test_a_log_asked_for_progress_gets_ten_plain_lines():
    log = io.StringIO()
    bar = Progress(900, True, desc="sweep", stream=log)
    for k in range(900):
        bar.update(failed=(k == 5))
    bar.close()
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 10
    assert lines[0] == "sweep: 90/900 cells (1 failed)"
    assert lines[-1] == "sweep: 900/900 cells (1 failed)"


def test_a_terminal_gets_a_bar():
    tty = Terminal()
    bar = Progress(50, None, desc="sweep", stream=tty)
    for _ in range(50):
        bar.update()
    bar.close()
    out = tty.getvalue()
    assert "\r" in out and "50/50" in out


def test_silenced_even_on_a_terminal():
    tty = Terminal()
    bar = Progress(10, False, stream=tty)
    bar.update(n=10)
    bar.close()
    assert tty.getvalue() == ""


def cells_grid():
    return dict(x=("sigma_u", np.geomspace(1e-2, 1, 3)), y=("kappa", np.geomspace(0.1, 1, 2)),
                fixed={"width": 4}, method="trajectory", executor=ThreadPoolExecutor(2))


def test_phase_diagram_is_quiet_in_a_log_by_default(capsys):
    ed.phase_diagram(ed.Linear1D, **cells_grid())
    assert capsys.readouterr().err == ""


def test_phase_diagram_progress_forced(capsys):
    ed.phase_diagram(ed.Linear1D, progress=True, **cells_grid())
    err = capsys.readouterr().err
    assert "phase diagram: 6/6 cells" in err and "\r" not in err


def test_rd_slope_is_quiet_in_a_log_and_reports_runs_when_asked(capsys):
    from exactdyn.regimes import rd_slope

    quiet = rd_slope(1.75, 0.0, widths=(16, 64), activation="tanh")
    assert capsys.readouterr().err == ""
    loud = rd_slope(1.75, 0.0, widths=(16, 64), activation="tanh", progress=True)
    err = capsys.readouterr().err
    assert "RD slope at (1.75, 0): 2/2 runs" in err and "\r" not in err
    assert loud.slope == quiet.slope


def test_cli_classify_two_layer_takes_no_progress(capsys):
    from exactdyn.cli import main

    code = main(["classify", "two-layer", "--width", "64", "--gamma", "1.75",
                 "--gamma-prime", "0", "--init", "mirrored", "--activation", "tanh",
                 "--data", "1d-linear", "--n", "10", "--widths", "16,64", "--no-progress",
                 "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0 and err == "" and '"condensed"' in out


def test_cli_classify_two_layer_writes_nothing_to_a_log(capsys):
    """Off when stderr is not a terminal (issue 13): the CLI printed a line per run."""
    from exactdyn.cli import main

    code = main(["classify", "two-layer", "--width", "16", "--gamma", "1.75",
                 "--gamma-prime", "0", "--init", "mirrored", "--activation", "tanh",
                 "--data", "1d-linear", "--n", "10", "--widths", "8,16", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0 and err == "" and '"label"' in out
