"""Issue 14, "runs that never come back": tanh with a small init on ``1d-cubic`` plateaus
at ~29 % of its initial loss, so the 5 % stopping rule of the RD slope integrated to
``max_time=1e6`` at every width (10-20 minutes, no output). The plateau rule stops after
two flat decades of time and labels the run ``undetermined`` with the reason."""

import json

import pytest

import exactdyn as ed
from exactdyn.cli import main
from exactdyn.regimes.two_layer import NoStop, stop_rd

PLATEAU = dict(activation="tanh", beta1=1e-3, beta2=1e-3)


def test_classify_of_the_cubic_plateau_returns_undetermined_with_the_reason():
    messages = []
    # the per-member path (one run after another)
    reg = ed.classify(ed.TwoLayer(40, "1d-cubic", **PLATEAU), progress=messages.append,
                      ensemble=False)
    assert reg.label == "undetermined" and reg.predicted == "condensed"
    reason = reg.evidence["reason"]
    assert "plateau at 0.29" in reason and "loss_fraction" in reason
    # it stopped at the first width (no slope can come from the others)
    assert messages == ["rd_slope: width 10 (1/3), seed 0"]
    json.dumps(reg.to_dict(), allow_nan=False)  # no NaN in the JSON evidence


def test_the_plateau_stops_every_member_of_an_ensemble_with_the_same_reason():
    # The default path for tanh runs the three widths together (one ensemble per width);
    # each member stops on its own plateau, and the reason names the first run in order.
    messages = []
    reg = ed.classify(ed.TwoLayer(40, "1d-cubic", **PLATEAU), progress=messages.append)
    one = ed.classify(ed.TwoLayer(40, "1d-cubic", **PLATEAU), ensemble=False)
    assert reg.label == "undetermined" and reg.evidence["reason"] == one.evidence["reason"]
    assert messages == ["rd_slope: 3 runs as ensembles (one per width)"]
    json.dumps(reg.to_dict(), allow_nan=False)


def test_stop_rd_stops_on_the_plateau_long_before_max_time():
    with pytest.raises(NoStop) as info:
        stop_rd(ed.TwoLayer(10, "1d-cubic", **PLATEAU), 0.05, max_time=1e6)
    assert info.value.time <= 1e4 and 0.28 < info.value.loss_ratio < 0.31
    assert isinstance(info.value, ValueError)  # callers catching ValueError still do


def test_plateau_advice_measures_rd_on_the_way_to_the_plateau():
    # the reason's advice works: a loss fraction above the plateau is reached
    t_star, rd = stop_rd(ed.TwoLayer(10, "1d-cubic", **PLATEAU), 0.32)
    assert t_star < 1e3 and rd > 0


def _on_a_terminal(argv) -> tuple:
    """``(returncode, stdout, stderr)`` of a command whose stderr is a terminal (a pty of
    100 columns: tqdm draws nothing on a terminal of width 0)."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import termios
    import threading

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks = []

    def read():
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal closed with the process
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    out, _ = proc.communicate(timeout=600)
    reader.join(timeout=30)
    os.close(master)
    return proc.returncode, out.decode(), b"".join(chunks).decode(errors="replace")


def test_cli_classify_prints_progress_and_the_reason(capsys):
    # In a log (pytest's stderr is not a terminal) no progress lines (issue 13: off when not
    # a TTY); the plateau's reason is in the evidence.
    code = main(["classify", "two-layer", "--width", "16", "--data", "1d-cubic",
                 "--activation", "tanh", "--beta1", "1e-3", "--beta2", "1e-3",
                 "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    data = json.loads(out)
    assert data["label"] == "undetermined" and "plateau" in data["evidence"]["reason"]
    # On a terminal: the progress bar over the runs.
    import sys

    code, out, err = _on_a_terminal([
        sys.executable, "-m", "exactdyn", "classify", "two-layer", "--width", "16",
        "--gamma", "1.75", "--gamma-prime", "0", "--init", "mirrored", "--activation", "tanh",
        "--data", "1d-linear", "--n", "10", "--widths", "8,16", "--format", "json"])
    assert code == 0 and "RD slope at (1.75, 0)" in err and "2/2" in err
    assert json.loads(out)["label"] in ("condensed", "critical", "linear", "undetermined")


def test_report_no_regime_is_recorded_and_checked_fresh(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "derivations" / "two-layer"
    code = main(["report", "two-layer", "--width", "4", "--data", "1d-cubic", "--n", "6",
                 "--activation", "tanh", "--beta1", "1e-3", "--beta2", "1e-3",
                 "--t-span", "0:1", "--points", "3", "--precision", "20", "--no-figures",
                 "--no-regime", "--out", "derivations/two-layer"])
    assert code == 0
    data = json.loads((out / "data.json").read_text())
    assert data["regime"] is None and "--no-regime" in data["regime_note"]
    assert data["argv"][-1] == "--no-regime"
    assert "regime section" not in capsys.readouterr().err  # nothing long announced
    from exactdyn.cli import report_build
    from exactdyn.report import check_derivations

    differing, checked = check_derivations("derivations",
                                           lambda argv: report_build(argv))
    assert checked == ["two-layer"] and differing == []
