"""Progress of long integrations and of report building (issue 13 item 5, issue 14): shown
when asked for or on a terminal, never in a log by default, and never changing a number."""

import io

import numpy as np
import pytest

import exactdyn as ed
from exactdyn._progress import Progress
from exactdyn.datasets import synthetic_images


class Terminal(io.StringIO):
    def isatty(self):
        return True


def kinked():
    return ed.TwoLayer(8, "1d-sine", activation="relu", seed=0, n=10)


def cnn(activation="relu"):
    images, y = synthetic_images(6, 5, 5, 1, seed=1)
    return ed.TwoLayerCNN(2, 3, images, y, activation=activation, scale=0.3, seed=1)


T = np.linspace(0, 20, 11)


def same(a, b):
    return all(np.array_equal(a.state[k], b.state[k]) for k in a.state) and \
        all(np.array_equal(a.observables[k], b.observables[k]) for k in a.observables)


def test_kinked_solve_reports_time_and_kinks_and_not_a_bit_changes(capsys):
    quiet = ed.solve(kinked(), T, progress=False)
    assert capsys.readouterr().err == ""
    loud = ed.solve(kinked(), T, progress=True)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "\r" not in err and 1 <= len(lines) <= 11
    assert lines[-1].startswith("solve TwoLayer: t = 20/20 (")
    assert lines[-1].endswith(f"{quiet.meta['kinks']} kinks)")
    assert quiet.meta["kinks"] > 0 and same(quiet, loud)


def test_a_log_gets_nothing_by_default(capsys):
    ed.solve(kinked(), T)
    ed.solve(cnn(), [0, 1, 2])
    ed.solve(ed.Linear1D(4, seed=0), [0, 1])
    assert capsys.readouterr().err == ""


def test_a_callable_gets_the_lines():
    lines = []
    ed.solve(kinked(), T, progress=lines.append)
    assert lines and lines[-1].startswith("solve TwoLayer: t = 20/20")


@pytest.mark.parametrize("model", [
    cnn("relu"), cnn("tanh"),
    ed.TwoLayer(6, "1d-sine", activation="tanh", seed=0, n=8),
    ed.Linear1D(4, seed=0)], ids=["cnn-relu", "cnn-tanh", "two-layer-tanh", "generic"])
def test_every_float64_path_reports_and_agrees(model, capsys):
    t = [0, 0.5, 1.0]
    quiet = ed.solve(model, t, progress=False)
    loud = ed.solve(model, t, progress=True)
    err = capsys.readouterr().err
    assert f"solve {type(model).__name__}: t = 1/1" in err and "\r" not in err
    assert same(quiet, loud)


def test_reduced_and_modified_flows_report(capsys):
    ed.solve(ed.Linear1D(4, seed=0), [0, 1], reduced=True, progress=True)
    ed.solve(ed.Linear1D(4, seed=0), [0, 1], lr=0.01, progress=True)
    err = capsys.readouterr().err
    assert "solve Linear1D (reduced): t = 1/1" in err
    assert "solve Linear1D (modified): t = 1/1" in err


@pytest.mark.parametrize("bad", ["yes", 1, 0.0, [True]])
def test_bad_progress_names_it(bad):
    with pytest.raises(TypeError, match="progress must be True, False, None"):
        ed.solve(kinked(), [0, 1], progress=bad)


def test_auto_waits_before_drawing_on_a_terminal():
    """``None`` on a terminal: nothing until ``delay`` seconds have passed (a short run
    prints nothing); a forced bar draws at once."""
    tty = Terminal()
    bar = Progress(10.0, None, desc="solve", stream=tty, delay=3600)
    bar.to(5.0, "2 kinks")
    bar.to(10.0)
    bar.close()
    assert tty.getvalue() == ""
    tty = Terminal()
    bar = Progress(10.0, True, desc="solve", stream=tty, delay=3600)
    bar.to(10.0, "2 kinks")
    bar.close()
    assert "2 kinks" in tty.getvalue()
