"""Phase diagrams: vectorized closed form vs trajectories, agreement with theory, resumable
cache, failures, dask, exports, figures, bad input."""

import json
import os
from concurrent.futures import Executor, Future, ThreadPoolExecutor

import numpy as np
import pytest

from exactdyn import Linear1D, PhaseDiagram, classify, phase_diagram
from exactdyn.sweep import CellCache, parse_axis, parse_fixed


class SyncExecutor(Executor):
    """Runs each task at submit time in this process (exceptions other than Exception,
    like KeyboardInterrupt, propagate: a kill)."""

    def submit(self, fn, *args, **kwargs):
        fut = Future()
        fut.set_result(fn(*args, **kwargs))
        return fut


CALLS = []
KILL_AFTER = [None]


def counting_cell(model):
    """Counts its calls; simulates a kill (KeyboardInterrupt) after KILL_AFTER calls."""
    if KILL_AFTER[0] is not None and len(CALLS) >= KILL_AFTER[0]:
        raise KeyboardInterrupt
    CALLS.append((model.sigma_u, model.kappa))
    return classify(model)


def failing_cell(model):
    if model.kappa > 1:
        raise RuntimeError(f"boom at kappa={model.kappa}")
    return classify(model)


AX = ("sigma_u", np.geomspace(1e-2, 3, 4))
AY = ("kappa", np.geomspace(1e-2, 1e1, 3))


def _agreement_report(pd):
    ag = pd.agreement(band=1)
    lines = [f"{d['label']} vs predicted {d['predicted']} at {pd.x_name}={d['x']:.4g}, "
             f"{pd.y_name}={d['y']:.4g}" for d in ag["disagreements"]]
    return ag, "\n".join(lines)


@pytest.mark.parametrize("x,y,fixed", [
    (("sigma_u", np.geomspace(1e-3, 1e1, 200)), ("kappa", np.geomspace(1e-4, 1e2, 200)),
     {"width": 64, "seed": 0}),
    (("sigma_u", np.geomspace(1e-4, 1e1, 120)), ("sigma_w", np.geomspace(1e-4, 1e1, 120)),
     {"width": 16, "seed": 1, "kappa": 1e-2}),
    (("sigma_u", np.geomspace(1e-4, 1e1, 120)), ("teacher", np.linspace(-3, 3, 121)),
     {"width": 4, "seed": 2, "kappa": 1e-2}),
    (("eta_u", np.geomspace(1e-3, 1e3, 100)), ("kappa", np.geomspace(1e-4, 1e2, 100)),
     {"width": 2, "sigma_u": 1.0, "sigma_w": 1.0, "seed": 3}),
])
def test_measured_labels_agree_with_theory_away_from_boundaries(x, y, fixed):
    pd = phase_diagram(Linear1D, x=x, y=y, fixed=fixed)
    ag, report = _agreement_report(pd)
    print(f"{x[0]} x {y[0]}: agreement {ag['fraction']:.4f} of {ag['compared']} cells; "
          f"disagreements:\n{report}")
    assert ag["compared"] > 0.5 * pd.labels.size
    assert ag["fraction"] >= 0.98, report
    # More than one label shows up (the diagram is not trivial).
    assert len(pd.counts()) >= 2


def test_vectorized_grid_matches_trajectory_cells():
    """The closed-form grid vs one sampled closed-form trajectory per cell."""
    pd_v = phase_diagram(Linear1D, x=AX, y=AY, fixed={"width": 32})
    pd_t = phase_diagram(Linear1D, x=AX, y=AY, fixed={"width": 32}, method="trajectory",
                         executor=ThreadPoolExecutor(2), progress=False)
    assert pd_t.method == "trajectory" and not pd_t.failures
    np.testing.assert_array_equal(pd_v.predicted, pd_t.predicted)
    np.testing.assert_allclose(pd_t.scores["ntk_ratio"], pd_v.scores["ntk_ratio"], rtol=1e-6)
    np.testing.assert_allclose(pd_t.scores["ntk_change"], pd_v.scores["ntk_change"],
                               rtol=2e-2, atol=1e-12)
    np.testing.assert_array_equal(pd_v.labels, pd_t.labels)


def test_killed_sweep_resumes_without_recomputing(tmp_path):
    CALLS.clear()
    cache = tmp_path / "cells"
    KILL_AFTER[0] = 5
    try:
        with pytest.raises(KeyboardInterrupt):
            phase_diagram(Linear1D, x=AX, y=AY, executor=SyncExecutor(), cache=cache,
                          cell=counting_cell, progress=False)
    finally:
        KILL_AFTER[0] = None
    assert len(CellCache(cache)) == 5
    assert not [f for f in os.listdir(cache) if f.startswith(".tmp-")]
    done_before = set(CALLS)
    CALLS.clear()
    pd = phase_diagram(Linear1D, x=AX, y=AY, executor=SyncExecutor(), cache=cache,
                       cell=counting_cell, progress=False)
    assert len(CALLS) == 12 - 5
    assert not done_before & set(CALLS)
    assert pd.meta["computed"] == 7 and pd.meta["cached"] == 5
    # A third run computes nothing, and the labels are those of the exact classifier.
    CALLS.clear()
    again = phase_diagram(Linear1D, x=AX, y=AY, executor=SyncExecutor(), cache=cache,
                          cell=counting_cell, progress=False)
    assert CALLS == []
    np.testing.assert_array_equal(again.labels,
                                  phase_diagram(Linear1D, x=AX, y=AY).labels)


def test_failing_cells_are_recorded_and_the_sweep_completes(tmp_path):
    pd = phase_diagram(Linear1D, x=AX, y=AY, executor=SyncExecutor(), cell=failing_cell,
                       cache=tmp_path / "c", progress=False)
    assert len(pd.failures) == 4  # kappa = 10, one row of 4 cells
    assert all("RuntimeError: boom at kappa=10" in f["error"] for f in pd.failures)
    assert {f["i"] for f in pd.failures} == {2}
    assert (pd.labels[2] == "").all() and (pd.labels[:2] != "").all()
    assert np.isnan(pd.scores["chi"][2]).all()
    assert len(CellCache(tmp_path / "c")) == 8  # failures are not cached: a rerun retries


def test_default_process_pool():
    pd = phase_diagram(Linear1D, x=("sigma_u", [0.1, 1.0]), y=("kappa", [0.1]),
                       method="trajectory", jobs=2, progress=False)
    assert pd.labels.shape == (1, 2) and not pd.failures


def test_dask_local_cluster():
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed not installed (pip install 'exactdyn[dask]')")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        pd = phase_diagram(Linear1D, x=AX, y=AY, executor=client.get_executor(),
                           progress=False)
    assert pd.method == "trajectory" and not pd.failures
    np.testing.assert_array_equal(pd.labels, phase_diagram(Linear1D, x=AX, y=AY).labels)


def test_exports_round_trip_and_figures(tmp_path):
    pd = phase_diagram(Linear1D, x=("sigma_u", np.geomspace(1e-3, 10, 30)),
                       y=("kappa", np.geomspace(1e-4, 1e2, 20)), fixed={"width": 64})
    assert pd.labels.shape == (20, 30) and pd.scores["chi"].shape == (20, 30)
    back = PhaseDiagram.from_json(pd.to_json(tmp_path / "pd.json"))
    json.loads((tmp_path / "pd.json").read_text())
    pd.to_npz(tmp_path / "pd.npz")
    for other in (back, PhaseDiagram.from_npz(tmp_path / "pd.npz")):
        np.testing.assert_array_equal(other.labels, pd.labels)
        np.testing.assert_array_equal(other.predicted, pd.predicted)
        np.testing.assert_array_equal(other.x, pd.x)
        for k, v in pd.scores.items():
            np.testing.assert_array_equal(other.scores[k], v)
    pd.plot(tmp_path / "pd.png")
    pd.plot(tmp_path / "pd.svg", quantity="alignment_score")
    assert (tmp_path / "pd.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "pd.svg").read_bytes()[:500]
    from exactdyn.plotting import plot_luo_diagram

    plot_luo_diagram(tmp_path / "luo.svg")
    assert (tmp_path / "luo.svg").stat().st_size > 1000


@pytest.mark.parametrize("kwargs,match", [
    (dict(x=("sigma_x", [1.0]), y=AY), "unknown parameter name 'sigma_x'"),
    (dict(x=("sigma_u", []), y=AY), "non-empty"),
    (dict(x=("sigma_u", [1.0, np.inf]), y=AY), "finite"),
    (dict(x=("sigma_u", [1.0, -1.0]), y=AY), "sigma_u must be >= 0"),
    (dict(x=AX, y=("sigma_u", [1.0])), "different parameters"),
    (dict(x=AX, y=AY, fixed={"widht": 3}), "unknown parameter name 'widht'"),
    (dict(x=AX, y=AY, fixed={"kappa": 3}), "on an axis"),
    (dict(x=AX, y=AY, fixed={"width": 2.5}), "width must be an integer"),
    (dict(x=AX, y=AY, quantity="rd"), "quantity must be one of"),
    (dict(x=AX, y=AY, method="fast"), "method must be one of"),
    (dict(x=AX, y=AY, kernel_tol=0), "kernel_tol"),
    (dict(x="sigma_u", y=AY), "pair"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        phase_diagram(Linear1D, **kwargs)


def test_axis_parsing():
    name, v = parse_axis("sigma_u=1e-3:1e1:log:5")
    assert name == "sigma_u"
    np.testing.assert_allclose(v, [1e-3, 1e-2, 1e-1, 1, 10])
    assert parse_axis("kappa=0:1:lin:3")[1].tolist() == [0, 0.5, 1]
    assert parse_axis("teacher=-1,2")[1].tolist() == [-1, 2]
    assert parse_fixed(["width=64,seed=3", "eta_u=2"]) == {"width": 64, "seed": 3, "eta_u": 2}
    for bad, match in [("sigma_u=0:1:log:5", "log range"), ("sigma_u=-1:1:log:5", "log range"),
                       ("sigma_u=1:nan:lin:5", "finite"), ("sigma_u=1:2:lin:0", "N >= 1"),
                       ("sigma_u=1:2:cube:4", "scale"), ("sigma_u", "NAME="),
                       ("sigma_u=", "empty"), ("sigma_u=1:2:log", "START:END:SCALE:N")]:
        with pytest.raises(ValueError, match=match):
            parse_axis(bad)


def test_sigkilled_sweep_restarts_without_recomputing(tmp_path):
    """A real kill (SIGKILL of the process running the sweep) part-way through."""
    import signal
    import subprocess
    import sys
    import time
    from concurrent.futures import ThreadPoolExecutor

    here = os.path.dirname(__file__)
    cache = tmp_path / "cells"
    script = (
        f"import sys, numpy as np; sys.path.insert(0, {here!r})\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "from exactdyn import Linear1D, phase_diagram\n"
        "from _sweep_cells import slow_cell\n"
        "phase_diagram(Linear1D, x=('sigma_u', np.geomspace(1e-2, 3, 6)),\n"
        "              y=('kappa', np.geomspace(1e-2, 1e1, 5)), cell=slow_cell,\n"
        f"              executor=ThreadPoolExecutor(1), cache={str(cache)!r}, progress=False)\n"
    )
    env = {**os.environ, "SWEEP_SLEEP": "0.2", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if cache.exists() and len(CellCache(cache)) >= 4:
                break
            assert proc.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    done = len(CellCache(cache))
    assert 4 <= done < 30
    sys.path.insert(0, here)
    try:
        from _sweep_cells import slow_cell
    finally:
        sys.path.remove(here)
    calls = tmp_path / "calls.txt"
    os.environ["SWEEP_CALLS"] = str(calls)
    try:
        pd = phase_diagram(Linear1D, x=("sigma_u", np.geomspace(1e-2, 3, 6)),
                           y=("kappa", np.geomspace(1e-2, 1e1, 5)), cell=slow_cell,
                           executor=ThreadPoolExecutor(2), cache=cache, progress=False)
    finally:
        del os.environ["SWEEP_CALLS"]
    assert len(calls.read_text().splitlines()) == 30 - done
    assert pd.meta["cached"] == done and not pd.failures
    np.testing.assert_array_equal(
        pd.labels, phase_diagram(Linear1D, x=("sigma_u", np.geomspace(1e-2, 3, 6)),
                                 y=("kappa", np.geomspace(1e-2, 1e1, 5))).labels)
