"""Progress of long integrations and of report building (issue 13 item 5, issue 14): shown
when asked for or on a terminal, never in a log by default, and never changing a number."""

import io

import numpy as np
import pytest

import exactdyn as ed
from exactdyn._progress import Progress
from exactdyn.models.datasets import synthetic_images


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


def test_quiet_turns_automatic_progress_off_only():
    """Inside a report (or report --check), the operations it runs draw no bars of their
    own: automatic progress is off there, explicit progress is not."""
    from exactdyn._progress import quiet

    with quiet():
        assert not Progress(10, None, stream=Terminal()).enabled
        assert Progress(10, True, stream=Terminal()).enabled
    assert Progress(10, None, stream=Terminal()).enabled


def read(path):
    with open(path, "rb") as fh:
        return fh.read()


def test_report_names_its_stages_and_its_files_do_not_change(tmp_path, capsys):
    model = ed.Linear1D(4, seed=0)
    quiet = ed.report(model, tmp_path / "quiet", figures=False, progress=False)
    assert capsys.readouterr().err == ""
    ed.report(model, tmp_path / "loud", figures=False, progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err
    assert err.splitlines() == [
        "report linear1d: stage 1/7 (derivation)", "report linear1d: stage 3/7 (closed form)",
        "report linear1d: stage 4/7 (verification)", "report linear1d: stage 5/7 (regime)",
        "report linear1d: stage 6/7 (writing)"]
    for name in quiet.files:  # the same bytes but the directory in the command line
        assert read(tmp_path / "quiet" / name).replace(b"quiet", b"loud") == \
            read(tmp_path / "loud" / name), name


def test_report_is_quiet_in_a_log_by_default(tmp_path, capsys):
    lines = []
    ed.report(ed.Linear1D(3, seed=1), tmp_path / "r", figures=False, regime=False)
    assert capsys.readouterr().err == ""
    ed.report(ed.Linear1D(3, seed=1), tmp_path / "r", figures=False, regime=False,
              progress=lines.append)
    assert lines[0] == "report linear1d: stage 1/7 (derivation)"
    with pytest.raises(TypeError, match="progress must be"):
        ed.report(ed.Linear1D(3, seed=1), tmp_path / "r", progress="no")


def test_kinked_family_reports_name_their_stages(tmp_path):
    lines = []
    ed.report(cnn(), tmp_path / "cnn", t=[0, 0.5, 1], figures=False, regime=False,
              progress=lines.append)
    assert [x.split("(")[-1].rstrip(")") for x in lines] == [
        "derivation", "integration", "writing"]
    lines.clear()
    ed.report(ed.TwoLayer(6, "1d-sine", activation="tanh", beta1=0.01, beta2=0.01, n=8),
              tmp_path / "tl", t=[0, 0.5, 1], figures=False, regime=False,
              progress=lines.append)
    assert [x.split("(")[-1].rstrip(")") for x in lines] == [
        "derivation", "closed form", "verification", "writing"]


@pytest.mark.parametrize("argv", [
    ["solve", "linear1d", "--width", "4", "--t", "0,1"],
    ["solve", "two-layer", "--width", "6", "--activation", "relu", "--n", "8", "--t", "0,5"],
    ["report", "linear1d", "--width", "3", "--t", "0,1", "--no-figures", "--no-regime"],
    ["report", "two-layer", "--width", "6", "--n", "8", "--t", "0,1", "--no-figures",
     "--no-regime"],
], ids=["solve", "solve-two-layer", "report", "report-two-layer"])
def test_cli_takes_no_progress_and_is_silent(argv, tmp_path, capsys):
    from exactdyn.cli import main

    out = ["--out", str(tmp_path / "r")] if argv[0] == "report" else []
    assert main([*argv, *out, "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


def test_cli_solve_cnn_takes_no_progress(tmp_path, capsys):
    from exactdyn.cli import main

    images, y = synthetic_images(6, 5, 5, 1, seed=9)
    np.save(tmp_path / "x.npy", images)
    np.save(tmp_path / "y.npy", y)
    assert main(["solve", "cnn", "--images", str(tmp_path / "x.npy"), "--labels",
                 str(tmp_path / "y.npy"), "--channels", "2", "--activation", "relu",
                 "--scale", "0.3", "--t", "0,1", "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


def _auto_on_a_terminal(_x):
    from exactdyn._progress import progress_enabled

    return progress_enabled(None, Terminal())


def test_a_sweeps_cells_draw_no_bars_of_their_own():
    from concurrent.futures import ThreadPoolExecutor

    from exactdyn.sweep.run import run_cells

    results, errors, _ = run_cells(_auto_on_a_terminal, [(0,), (1,)], ["a", "b"],
                                   executor=ThreadPoolExecutor(2), progress=False)
    assert results == [False, False] and not errors


def test_every_progress_argument_takes_the_same_values():
    with pytest.raises(TypeError, match="progress must be"):
        ed.phase_diagram(ed.Linear1D, x=("sigma_u", [0.1, 1.0]), y=("kappa", [0.5, 1.0]),
                         fixed={"width": 4}, method="trajectory", progress="quiet")
