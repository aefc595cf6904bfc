"""Issue 16, "Trust on the whole domain": regression tests named after the defects they pin.

Each test checks against something independent of the code under test: an exact value
known by hand, the 30-digit integrator, or the documented contract (exception type, the
message naming the option, the time reached).
"""

from __future__ import annotations

import numpy as np
import pytest

import exactdyn as ed
from exactdyn.errors import IntegrationError

T5 = np.linspace(0.0, 1.0, 5)


# ---- 1. hangs become IntegrationError ------------------------------------------------------
def test_huge_init_overflowing_rhs_raises_instead_of_hanging():
    with pytest.raises(IntegrationError, match="not finite at the initial state") as exc:
        ed.solve(ed.Linear1D(width=4, sigma_u=1e200, sigma_w=1e200), T5)
    assert exc.value.t_reached == 0.0


def test_horizon_1e300_raises_step_budget_naming_max_steps():
    with pytest.raises(IntegrationError, match="max_steps=300") as exc:
        ed.solve(ed.Linear1D(width=4), [0.0, 1e300], max_steps=300)
    # The flow was integrated up to where the budget ran out, not from scratch.
    assert 0.0 < exc.value.t_reached < 1e300


def test_max_steps_is_validated():
    with pytest.raises(TypeError, match="max_steps"):
        ed.solve(ed.Linear1D(width=4), T5, max_steps=True)
    with pytest.raises(ValueError, match="max_steps"):
        ed.solve(ed.Linear1D(width=4), T5, max_steps=0)


def test_max_steps_does_not_change_a_run_within_budget():
    m = ed.Linear1D(width=4)
    a = ed.solve(m, T5)
    b = ed.solve(m, T5, max_steps=10_000)
    np.testing.assert_array_equal(a["u"], b["u"])


def _deep_linear_4x6():
    from exactdyn.models.deep_linear import teacher_matrix

    return ed.DeepLinear(depth=4, width=6, in_dim=3, out_dim=3,
                         sigma_yx=teacher_matrix([4.0, 2.0, 1.0], 3, 3), seed=0)


def test_a_converged_deep_linear_flow_reaches_t_1e6_in_bounded_steps():
    # Issue 16: depth 4, width 6 to t = 1e6 had not finished after four minutes (DOP853
    # at its stability limit, ~6 steps per unit of time). Now the explicit steps stop at
    # the stiffness test after REST_MIN_STEPS, the implicit method takes the tail.
    from exactdyn.numeric import stepping

    m = _deep_linear_4x6()
    tr = ed.solve(m, np.concatenate([[0.0], np.logspace(0, 6, 13)]))
    assert tr.meta["switched_to"] == stepping.REST_METHOD
    assert tr.meta["at_rest_from"] >= tr.meta["switched_at"] > 0
    # Bounded: 12 evaluations per DOP853 step up to the switch (plus a few rejected steps)
    # and a short implicit tail, not the ~7e7 evaluations of explicit steps to t = 1e6.
    assert tr.meta["nfev"] <= 13 * (stepping.REST_MIN_STEPS + stepping.STIFF_STEPS)
    W = [tr[f"W{l + 1}"] for l in range(4)]
    # Independent checks: the conserved W_{l+1}^T W_{l+1} - W_l W_l^T (MATH.md §3) ...
    for lo, hi in zip(W[:-1], W[1:]):
        c = np.einsum("tji,tjk->tik", hi, hi) - np.einsum("tij,tkj->tik", lo, lo)
        np.testing.assert_allclose(c[-1], c[0], rtol=0, atol=1e-10)
    # ... the global minimum (whitened, full-rank teacher, width >= 3: A = Sigma_yx) ...
    A = W[3][-1] @ W[2][-1] @ W[1][-1] @ W[0][-1]
    np.testing.assert_allclose(A, m.sigma_yx, rtol=0, atol=1e-10)
    # ... and the explicit integrator's own state where it can still reach (t = 200,
    # converged: the loss is at rounding level), which the flow no longer leaves.
    ref = ed.solve(m, [0.0, 200.0])
    assert "switched_to" not in ref.meta
    assert ref["loss"][-1] < 1e-18
    for l in range(4):
        np.testing.assert_allclose(W[l][-1], ref[f"W{l + 1}"][-1], rtol=0, atol=1e-10)


def test_a_two_layer_relu_flow_reaches_t_1e6_through_its_kinks_in_bounded_steps():
    # The kinked loop (numeric/kinks.py) had no rest switch: a ReLU network to t = 1e6 ran
    # minutes at DOP853's stability limit, then stopped at max_steps. Now it continues with
    # Radau after REST_MIN_STEPS (kinks located the same way) and holds the settled state.
    from exactdyn.numeric import stepping

    m = ed.TwoLayer(8, "1d-sine", activation="relu", beta1=0.5, beta2=0.5, n=10)
    tr = ed.solve(m, [0.0, 100.0, 1e6])
    assert tr.meta["switched_to"] == "Radau" and tr.meta["kinks"] > 0
    assert tr.meta["at_rest_from"] >= tr.meta["switched_at"] > 0
    assert tr.meta["nfev"] < 20 * (stepping.REST_MIN_STEPS + stepping.STIFF_STEPS)
    # Independent: ReLU is 1-homogeneous, so a_k^2 - |w_k|^2 (bias weight included) is
    # conserved by the flow through every kink (MATH.md §4) ...
    balance = tr["a"] ** 2 - np.sum(tr["W"] ** 2, axis=2)
    np.testing.assert_allclose(balance[-1], balance[0], rtol=0, atol=1e-8)
    # ... and the loss never rises along a gradient flow.
    assert np.all(np.diff(tr["loss"]) <= 1e-12)


@pytest.mark.slow
def test_a_two_layer_flow_switched_to_radau_agrees_with_the_explicit_run():
    from exactdyn.numeric import stepping

    for act in ("tanh", "relu"):
        m = ed.TwoLayer(8, "1d-sine", activation=act, beta1=0.5, beta2=0.5, n=10)
        t = [0.0, 100.0, 1e4]
        fast = ed.solve(m, t)
        assert fast.meta["switched_to"] == "Radau"
        old, stepping.REST_MIN_STEPS = stepping.REST_MIN_STEPS, 10**9
        try:
            ref = ed.solve(m, t, max_steps=10**6)  # DOP853 all the way
        finally:
            stepping.REST_MIN_STEPS = old
        for k in ("a", "W"):
            np.testing.assert_allclose(fast[k], ref[k], rtol=0,
                                       atol=1e-9 * np.abs(ref[k]).max())


def test_a_converged_linear1d_flow_reaches_t_1e300_and_matches_the_closed_form():
    # Issue 16: Linear1D to t = 1e300 ran into max_steps at the explicit stability limit.
    # With the default budget it now finishes, says so, and agrees with ed.exact; its
    # cost does not grow with the horizon (same evaluations to 1e6 as to 1e300).
    m = ed.Linear1D(width=4)
    t = [0.0, 1.0, 1e300]
    tr = ed.solve(m, t)
    assert tr.meta["switched_to"] == "Radau" and "at_rest_from" in tr.meta
    ex = ed.exact(m, t)
    for name in ("u", "w"):
        np.testing.assert_allclose(tr[name], ex[name], rtol=1e-10, atol=1e-12)
    near = ed.solve(m, [0.0, 1.0, 1e6])
    assert near.meta["nfev"] == tr.meta["nfev"]


def test_saddle_to_saddle_plateaus_are_not_taken_for_rest():
    # Decoupled depth 4, modes u0 = 1e-8 of s = 4, 2, 1: plateaus until the escapes near
    # t = 1250, 2500, 5000 (u^{-1/2} = u0^{-1/2} - 2 s t). Small velocities on a plateau
    # must not end the run early: the escapes match the closed form, and the state is
    # held only after the last one.
    from exactdyn.models.deep_linear import teacher_matrix

    m = ed.DeepLinear.decoupled(depth=4, width=6, sigma_yx=teacher_matrix([4, 2, 1], 3, 3),
                                mode_init=1e-2)
    t = [0.0, 1e3, 2e3, 3e3, 6e3, 1e6]
    tr = ed.solve(m, t)
    assert tr.meta.get("at_rest_from", np.inf) > 5000
    np.testing.assert_allclose(tr["singular_values"], ed.exact(m, t)["singular_values"],
                               rtol=1e-6)


def test_a_run_within_rest_min_steps_never_switches():
    # The switch must not change ordinary runs: fewer steps than REST_MIN_STEPS, no switch.
    tr = ed.solve(_deep_linear_4x6(), [0.0, 50.0])
    assert not {"switched_to", "switched_at", "at_rest_from"} & set(tr.meta)


@pytest.mark.parametrize("act", ["log(x)", "x**0.5"])
def test_two_layer_activation_outside_its_domain_raises_instead_of_hanging(act):
    m = ed.TwoLayer(4, "1d-sine", activation=act)
    with pytest.raises(IntegrationError, match="not finite") as exc:
        ed.solve(m, T5)
    assert exc.value.t_reached == 0.0


def test_two_layer_step_budget_raises_naming_max_steps():
    m = ed.TwoLayer(4, "1d-sine", activation="tanh")
    with pytest.raises(IntegrationError, match="max_steps=5"):
        ed.solve(m, [0.0, 1e6], max_steps=5)


def test_cnn_step_budget_raises_naming_max_steps():
    X = np.random.default_rng(0).normal(size=(3, 5, 5))
    m = ed.TwoLayerCNN(2, 3, X, np.array([1.0, -1.0, 0.5]), activation="tanh", scale=0.5)
    with pytest.raises(IntegrationError, match="max_steps=3"):
        ed.solve(m, [0.0, 1e6], max_steps=3)


def test_single_neuron_huge_delta_closed_form_has_bounded_cost_and_reaches_teacher():
    # delta = 1e300: the flow converges at rate ~1e300, so at every t > 0 the end-to-end
    # map is the teacher beta* = (1, 0) (SingleNeuron's default) and nu = w.beta*/a is
    # s^2/delta (the stable root of s^2 - delta nu - nu^2 = 0), by hand.
    m = ed.SingleNeuron(2, delta=1e300)
    tr = ed.exact(m, T5)
    beta = np.asarray(m.beta, dtype=float)
    np.testing.assert_allclose(tr["end_to_end"][1:, 0, :], np.tile(beta, (4, 1)),
                               rtol=1e-12, atol=1e-300)
    s2 = float(beta @ beta)
    np.testing.assert_allclose(tr["nu"][1:], s2 / 1e300, rtol=1e-12)
    # and at t = 0 the init, to rounding
    a0, w0 = m.init_aw()
    np.testing.assert_allclose(tr["end_to_end"][0, 0, :], a0 * w0, rtol=1e-12)


def test_overflowing_closed_form_raises_instead_of_returning_inf():
    with pytest.raises(ValueError, match="precision=N"):
        ed.exact(ed.Linear1D(width=4, sigma_u=1e200, sigma_w=1e200), T5)


# ---- 2. activation expressions -------------------------------------------------------------
@pytest.mark.parametrize("text, reason", [
    ("sqrt(-1)*x", "not a real function"),        # was accepted: trained with sigma = 0
    ("log(-1)*x", "not a real function"),
    ("x/0", "not a real function"),               # was a KeyError 'ComplexInfinity'
    ("x*1e400", "finite"),                        # inf constant: NaN rhs
    ("x*9**9**9", "exponent"),                    # hung at construction
    ("x**(9**9)", "exponent"),
    ("x*10**400", "exponent"),
    ("sqrt(-1 - x**2)", "not real at any"),
    ("x\u200b+1", "not allowed"),                 # zero-width space: parser and AST differ
])
def test_activation_expression_rejected_with_a_value_error_naming_it(text, reason):
    from exactdyn.models.activations import parse_activation

    with pytest.raises(ValueError, match=reason) as exc:
        parse_activation(text)
    assert repr(text) in str(exc.value)


def test_activation_unicode_is_normalised_before_the_whitelist_check():
    from exactdyn.models.activations import X, parse_activation

    # Fullwidth x (NFKC -> x) reads as x in both the whitelist check and the parser.
    assert parse_activation("\uff58**2") == X**2


@pytest.mark.parametrize("text", ["x**0.5", "x**(1/2)", "x**(-1/3)", "x**sqrt(2)", "2**x",
                                  "log(1 + exp(x))", "x**64"])
def test_activation_ordinary_powers_still_accepted(text):
    from exactdyn.models.activations import parse_activation

    parse_activation(text)


# ---- 3. the command line: one line, exit 2 -------------------------------------------------
def _cli(capsys, *argv):
    from exactdyn.cli import main

    code = main(list(argv))
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize("argv, needle", [
    (["solve", "linear1d", "--width", "4", "--t", "1,,2"], "empty item"),
    (["solve", "linear1d", "--width", "4", "--t", "1,2,"], "empty item"),
    (["solve", "linear1d", "--width", "4", "--kappa", "1e300", "--teacher", "1e300",
      "--t", "0,1"], "not finite"),
    (["solve", "linear1d", "--width", "1000000000000", "--t", "0,1"], "memory"),
    (["solve", "two-layer", "--width", "4", "--activation", "x/0", "--t", "0,1"], "x/0"),
    (["phase-diagram", "linear1d", "--x", "sigma_u=1,,2", "--y", "kappa=1:2:lin:2",
      "--fixed", "width=4"], "empty item"),
    (["phase-diagram", "linear1d", "--x", "sigma_u=1:2:lin:100000000", "--y",
      "kappa=1:2:lin:2", "--fixed", "width=4"], "at most"),
])
def test_cli_bad_input_is_one_line_and_exit_2(capsys, argv, needle):
    code, err = _cli(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("exactdyn: error: ")
    assert needle in lines[0]


@pytest.mark.parametrize("option", ["--data", "--out", "--cache"])
def test_cli_unwritable_path_is_one_line_and_exit_2(capsys, tmp_path, option):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    target = str(blocker / ("x.png" if option == "--out" else "x.json"))
    code, err = _cli(capsys, "phase-diagram", "linear1d", "--x", "sigma_u=1,2", "--y",
                     "kappa=1,2", "--fixed", "width=4", option, target)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("exactdyn: error: ")
    # the message names the user's path, not a temporary file beside it
    assert str(blocker) in lines[0] and ".tmp-" not in lines[0]


def test_cli_unwritable_save_is_one_line_and_exit_2(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, err = _cli(capsys, "solve", "two-layer", "--width", "3", "--activation", "tanh",
                     "--t", "0,0.1", "--save", str(blocker / "run.npz"))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("exactdyn: error: ")


# ---- 4. the sweep cache heals --------------------------------------------------------------
@pytest.mark.parametrize("content", [b"\x00\xff\xfe binary", b"[]", b'"a string"',
                                     b'{"label": 3}', b"{not json", "directory"])
def test_sweep_cache_bad_cell_is_recomputed_with_one_warning_naming_it(tmp_path, content):
    from exactdyn.sweep import CellCache

    ax, ay = ("sigma_u", [0.1, 1.0]), ("kappa", [0.5])
    good = ed.phase_diagram(ed.Linear1D, x=ax, y=ay, fixed={"width": 4}, method="trajectory",
                            cache=tmp_path / "ref", jobs=1, progress=False)
    cache = tmp_path / "cells"
    ed.phase_diagram(ed.Linear1D, x=ax, y=ay, fixed={"width": 4}, method="trajectory",
                     cache=cache, jobs=1, progress=False)
    key = CellCache(cache).keys()[0]
    path = cache / f"{key}.json"
    path.unlink()
    if content == "directory":
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.warns(RuntimeWarning, match=str(path)) as record:
        again = ed.phase_diagram(ed.Linear1D, x=ax, y=ay, fixed={"width": 4},
                                 method="trajectory", cache=cache, jobs=1, progress=False)
    assert len([w for w in record if "sweep cache" in str(w.message)]) == 1
    assert again.meta["computed"] == 1 and not again.failures
    np.testing.assert_array_equal(again.labels, good.labels)
    assert CellCache(cache).get(key) is not None  # healed on disk too


def test_files_written_follow_the_umask_not_0600(tmp_path):
    import os
    import stat

    from exactdyn._atomic import write_text

    old = os.umask(0o022)
    try:
        write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "f.txt").st_mode) == 0o644


def test_plot_condensation_with_path_is_atomic(tmp_path, monkeypatch):
    import matplotlib.figure

    from exactdyn.plotting import condensation

    target = tmp_path / "c.png"
    target.write_bytes(b"old")

    def boom(self, *a, **k):
        open(a[0], "wb").write(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", boom)
    W = np.random.default_rng(0).normal(size=(6, 2))
    with pytest.raises(RuntimeError):
        condensation.plot_condensation(W, path=target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["c.png"]


def test_killed_run_temporary_report_dirs_are_removed_on_the_next_run(tmp_path):
    import subprocess
    import sys

    # A temporary directory named after a process that no longer exists.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".rep.tmp-{dead.pid}-abc123"
    stale.mkdir()
    (stale / "README.md").write_text("half")
    ed.report(ed.Linear1D(width=2), tmp_path / "rep", t=np.linspace(0, 0.1, 3), precision=20,
              figures=False, regime=False)
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"),
                    reason="reads process states from /proc")
def test_killed_sweep_leaves_no_pool_workers(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    pidfile = tmp_path / "worker.pid"
    script = (
        "import os, time\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from exactdyn.sweep.run import watch_parent\n"
        "def task(path):\n"
        "    open(path, 'w').write(str(os.getpid()))\n"
        "    time.sleep(600)\n"
        "if __name__ == '__main__':\n"
        "    ex = ProcessPoolExecutor(1, initializer=watch_parent, initargs=(os.getpid(), 0.05))\n"
        f"    ex.submit(task, {str(pidfile)!r})\n"
        "    time.sleep(600)\n")
    (tmp_path / "run.py").write_text(script)
    proc = subprocess.Popen([sys.executable, str(tmp_path / "run.py")])
    try:
        deadline = time.monotonic() + 120
        while not (pidfile.exists() and pidfile.read_text()):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        worker = int(pidfile.read_text())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def running(pid):
        try:
            with open(f"/proc/{pid}/status") as fh:
                return not any(line.startswith("State:") and "Z" in line.split()[1]
                               for line in fh)
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 60
    while running(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = running(worker)
    if alive:
        os.kill(worker, signal.SIGKILL)
    assert not alive, "the pool worker outlived its killed parent"


# ---- 5. high precision without global state ------------------------------------------------
def test_precision_calls_leave_mpmath_dps_unchanged():
    import mpmath

    before = mpmath.mp.dps
    m = ed.Linear1D(width=3)
    ed.exact(m, [0.0, 0.01], precision=30)
    ed.solve(m, [0.0, 0.01], precision=30)
    ed.exact(ed.SingleNeuron(2), [0.0, 0.1], precision=25)
    assert mpmath.mp.dps == before


def test_precision_from_twenty_threads_each_get_full_precision():
    # Was: one call in twenty came back with float64 accuracy (another thread's workdps
    # block had reset the shared mpmath precision). The reference is the same call made
    # alone; every threaded result must equal it to all 30 digits, while other threads
    # compute at other precisions at the same time.
    import threading

    import mpmath

    m = ed.Linear1D(width=3, seed=5)
    t = [0.0, 0.02, 0.05]
    ref = ed.exact(m, t, precision=30)["end_to_end"]
    out, errors = {}, []

    def work(i):
        try:
            if i % 2:
                ed.exact(m, t, precision=16 + i)  # a different precision meanwhile
            out[i] = ed.exact(m, t, precision=30)["end_to_end"]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors and len(out) == 20
    with mpmath.workdps(40):
        for v in out.values():
            assert all(abs(a - b) <= abs(b) * mpmath.mpf(10) ** -29 for a, b in zip(v, ref))
    assert mpmath.mp.dps == 15


# ---- 6. validation that states what it does ------------------------------------------------
def test_rtol_below_what_float64_honours_raises_instead_of_being_clipped():
    with pytest.raises(ValueError, match="rtol=1e-30"):
        ed.solve(ed.Linear1D(width=3), [0.0, 0.1], rtol=1e-30)
    # With precision the Taylor integrator honours it, and meta says what was used.
    tr = ed.solve(ed.Linear1D(width=3), [0.0, 1e-3], rtol=1e-30, precision=35)
    assert tr.meta["rtol"] == 1e-30


@pytest.mark.parametrize("call", [
    lambda: ed.solve(ed.Linear1D(width=3), [0.0, 0.1], reduced="no"),
    lambda: ed.TwoLayer(4, "1d-sine", bias="False"),
    lambda: ed.TwoLayer(4, "1d-sine", bias=0),
])
def test_boolean_options_must_be_booleans_not_truthy_strings(call):
    with pytest.raises(TypeError, match="must be True or False"):
        call()


def test_deep_linear_decoupled_depth_1_is_rejected_not_built_as_depth_2():
    with pytest.raises(ValueError, match="depth must be an integer >= 2"):
        ed.DeepLinear.decoupled(depth=1, width=3, sigma_yx=np.eye(2))


def test_gamma_underflowing_the_init_to_zero_is_rejected():
    with pytest.raises(ValueError, match="gamma=1000000.0"):
        ed.DeepLinear(depth=3, width=16, gamma=1e6, sigma_yx=np.eye(3))
    with pytest.raises(ValueError, match="gamma=-1000000.0"):
        ed.DeepLinear(depth=3, width=16, gamma=-1e6, sigma_yx=np.eye(3))
    with pytest.raises(ValueError, match="beta1=0.0"):
        ed.TwoLayer(4, "1d-sine", gamma=1e6, gamma_prime=0.0)


# ---- 7. Markdown escapes user text ---------------------------------------------------------
def test_report_markdown_escapes_an_activation_name_with_a_script_tag(tmp_path):
    import re

    from exactdyn.models.activations import Activation, X

    name = "<script>alert(1)</script>```"
    m = ed.TwoLayer(3, "1d-sine", activation=Activation(name, X**3 + X))
    ed.report(m, tmp_path / "rep", t=np.linspace(0, 0.1, 3), figures=False, regime=False)
    text = (tmp_path / "rep" / "README.md").read_text()
    # Outside fenced code, no raw tag survives; inside, the fence outlasts the name's backticks.
    outside = re.sub(r"(`{3,})[^\n]*\n.*?\n\1\n", "", text, flags=re.S)
    assert "<script>" not in outside
    assert "\\<script\\>" in outside


# ---- 8. closed-form digits -----------------------------------------------------------------
def test_linear1d_exact_at_t0_returns_the_init_to_rounding():
    # The case of issue 16: off the init by 1.6e-5 relative (p0 small against k').
    m = ed.Linear1D(width=115, sigma_u=2.1268135304518544e-08, sigma_w=21.01349160596131,
                    seed=739, kappa=0.031614451780858775, eta_u=194.3835654363226,
                    eta_w=251.93190440717888, x_var=49.06643473876122,
                    teacher=494.4041622565958)
    import mpmath

    st = m.initial_state()
    with mpmath.workdps(50):  # kappa * u0.w0 exactly, from the float64 init
        p0 = float(mpmath.mpf(m.kappa) * mpmath.fsum(mpmath.mpf(a) * mpmath.mpf(b)
                                                     for a, b in zip(st["u"], st["w"])))
    tr = ed.exact(m, [0.0, 1e-9])
    assert tr["end_to_end"][0] == pytest.approx(p0, rel=1e-14)
    np.testing.assert_array_equal(tr["u"][0], st["u"])


def test_single_neuron_nu_keeps_its_digits_at_delta_60_and_small_product():
    # nu = w.beta*/a, read off the 30-digit integrator's state (independent of Kunin's form).
    m = ed.SingleNeuron(2, delta=60.0, product=1e-4, seed=1)
    t = [0.0, 0.01, 0.1, 1.0]
    ex = ed.exact(m, t)
    num = ed.solve(m, t, precision=30)
    beta = np.asarray(m.beta, dtype=float)
    w = num["W1"].astype(float)[:, 0, :]
    a = num["W2"].astype(float)[:, 0, 0]
    nu_ref = (w @ beta) / a
    np.testing.assert_allclose(ex["nu"], nu_ref, rtol=1e-12)


def test_deep_linear_small_mode_is_not_zeroed_and_escapes_near_1e5():
    # Depth 4, mode_init 1e-3: initial mode u0 = 1e-12 of the teacher's s = 4 (was zeroed:
    # sigma_1 = 0 for ever). For u << s the chain u' = 4 u^{3/2}(s - u) gives
    # u^{-1/2} = u0^{-1/2} - 2 s t, so u(1e5) = (1e6 - 8e5)^{-2} = 2.5e-11 and the escape
    # (blow-up of that leading order) at t = 1.25e5.
    from exactdyn.models.deep_linear import teacher_matrix

    m = ed.DeepLinear.decoupled(depth=4, width=6, sigma_yx=teacher_matrix([4, 2, 1], 3, 3),
                                mode_init=1e-3)
    tr = ed.exact(m, [0.0, 1e5, 2e5])
    sv = tr["singular_values"][:, 0]
    assert sv[0] == pytest.approx(1e-12, rel=1e-12)
    assert sv[1] == pytest.approx(2.5e-11, rel=1e-4)
    assert sv[2] == pytest.approx(4.0, rel=1e-9)


def test_taylor_step_budget_says_so_instead_of_step_size_collapsed(monkeypatch):
    from exactdyn.numeric import highprec

    monkeypatch.setattr(highprec, "MAX_STEPS", 50)
    with pytest.raises(IntegrationError, match="MAX_STEPS=50") as exc:
        ed.solve(ed.Linear1D(width=4), [0.0, 1e300], precision=20)
    assert 0.0 < exc.value.t_reached < 1e300


def test_taylor_to_t_1e300_stops_in_its_first_steps_not_after_minutes():
    """The Taylor step of a flow at rest is about its time scale, so t = 1e300 would take
    ~1e299 steps: the run stops after a hundred steps with the projection, not after
    MAX_STEPS = 10**6 of them (minutes)."""
    with pytest.raises(IntegrationError, match=r"more steps, far beyond MAX_STEPS") as exc:
        ed.solve(ed.Linear1D(width=4), [0.0, 1e300], precision=20)
    assert 0.0 < exc.value.t_reached < 1e4
    # A long horizon the steps can reach is integrated as before (against the closed form).
    model = ed.Linear1D(width=4)
    got = ed.solve(model, [0.0, 300.0], precision=20)["end_to_end"][-1]
    ref = ed.exact(model, [0.0, 300.0], precision=20)["end_to_end"][-1]
    assert abs(got - ref) <= 1e-15 * abs(ref)


# ---- 9. kinks shared by many entries -------------------------------------------------------
def _relu_1d_no_bias_rk4(m, times, dt):
    """Reference: classical RK4 on the ReLU flow with sigma'(0) = 0, written by hand
    (MATH.md §4), at a fixed step dt; output at ``times`` (multiples of dt)."""
    x, y, n, width = m.X[:, 0], m.y, m.n, m.width

    def rhs(s):
        a, w = s[:width], s[width:]
        h = np.outer(w, x)
        sig, ds = np.maximum(h, 0.0), (h > 0).astype(float)
        e = a @ sig / m.alpha - y
        return np.r_[-(sig @ e) / (m.alpha * n), -a * ((ds * x) @ e) / (m.alpha * n)]

    s = np.r_[m.a0, m.W0[:, 0]]
    out, t = [s], 0.0
    for t_next in times[1:]:
        for _ in range(int(round((t_next - t) / dt))):
            k1 = rhs(s)
            k2 = rhs(s + dt / 2 * k1)
            k3 = rhs(s + dt / 2 * k2)
            k4 = rhs(s + dt * k3)
            s = s + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        out.append(s)
        t = t_next
    return np.array(out)


def test_shared_surfaces_groups_parallel_inputs_with_their_signs():
    from exactdyn.numeric.kinks import shared_surfaces

    X = np.array([[1.0, 2.0], [2.0, 4.0], [-3.0, -6.0], [1.0, 0.0], [0.0, 0.0],
                  [1.0, 1.0], [2.0, 2.0]])
    cls, sgn, classes, cdir = shared_surfaces(X)
    assert [c.tolist() for c in classes] == [[0, 1, 2], [5, 6]]
    assert cls.tolist() == [0, 0, 0, -1, -1, 1, 1]
    assert sgn[[0, 1, 2]].tolist() == [1.0, 1.0, -1.0]
    np.testing.assert_allclose(cdir[0], [1 / np.sqrt(5), 2 / np.sqrt(5)], rtol=1e-15)
    # with a bias column no two points of distinct x are parallel
    x = np.linspace(-1.0, 1.0, 20)
    assert shared_surfaces(np.c_[x, np.ones(20)])[2] == []


def test_relu_without_bias_on_1d_data_crosses_shared_kinks_as_one_event():
    # Issue 16: x = linspace(-1, 1, 20), y = x, beta = 1e-3, width 10, no bias: all 20
    # kinks of neuron k lie on one surface, w_k = 0. The entries were decided one by one
    # (the first saw no other entry on, "dead", so all stayed off and w_k was projected
    # to ~1e-35, of either sign): 2,000 kinks by t = 1.1. Now one event per crossing.
    x = np.linspace(-1.0, 1.0, 20)
    m = ed.TwoLayer(width=10, X=x, y=x, activation="relu", beta1=1e-3, beta2=1e-3,
                    bias=False, seed=0)
    t = np.linspace(0.0, 96.0, 7)
    tr = ed.solve(m, t)   # raised IntegrationError (max_kinks) before
    a, w = tr["a"], tr["W"][..., 0]
    # Count from the dynamics: while e ~ -y, on both sides of w_k = 0 w_k moves towards
    # sign(a_k) (w' = (a_k/n) sum over the active half of x_i^2), so a neuron crosses
    # once if it starts on the wrong side (a_k w_k < 0) and can reach w_k = 0, i.e.
    # a_k^2 > w_k^2 (a_k^2 - w_k^2 is conserved); afterwards the fit has signs matched.
    a0, w0 = m.a0, m.W0[:, 0]
    crossing = int(np.sum((a0 * w0 < 0) & (a0**2 > w0**2)))
    assert 0 < crossing < m.width
    assert tr.meta["kinks"] == crossing
    assert tr.meta["sliding_at_end"] == 0
    # The balance law a_k^2 - |w_k|^2 of a 1-homogeneous activation (MATH.md §4).
    np.testing.assert_allclose(a**2 - w**2, np.broadcast_to(a0**2 - w0**2, a.shape),
                               rtol=0, atol=1e-13)
    # Converged to y = x: the loss at rounding level.
    assert tr["loss"][-1] < 1e-15
    # An independent fixed-step RK4 of the hand-written flow (its error here ~1e-11,
    # the crossings being transversal).
    ref = _relu_1d_no_bias_rk4(m, t, 2e-3)
    np.testing.assert_allclose(np.c_[a, w], ref, rtol=0, atol=1e-9)


def test_relu_without_bias_slides_a_whole_neuron_on_its_shared_kink():
    # y = -|x|, seed 1: a neuron whose two sides both push w_k to 0 (attracting on the
    # shared surface) slides there as one: all its 20 entries at once, w_k = 0 exactly
    # from then on (sigma(0) = 0 also freezes a_k), one event.
    x = np.linspace(-1.0, 1.0, 20)
    m = ed.TwoLayer(width=10, X=x, y=-np.abs(x), activation="relu", beta1=1e-3,
                    beta2=1e-3, bias=False, seed=1)
    t = np.linspace(0.0, 96.0, 7)
    tr = ed.solve(m, t)
    assert tr.meta["kinks"] == 1
    (k,) = {kk for kk, _ in tr.meta["sliding_entries"]}
    assert tr.meta["sliding_at_end"] == m.n
    w = tr["W"][..., 0]
    stuck = np.flatnonzero(w[:, k] == 0.0)
    assert stuck.size and np.all(np.diff(stuck) == 1) and stuck[-1] == len(t) - 1
    assert np.all(tr["a"][stuck, k] == tr["a"][stuck[0], k])
    a0, w0 = m.a0, m.W0[:, 0]
    np.testing.assert_allclose(tr["a"]**2 - w**2, np.broadcast_to(a0**2 - w0**2, w.shape),
                               rtol=0, atol=1e-13)
    assert tr["loss"][-1] < 1e-15
    # RK4 chatters about w_k = 0 where the flow slides: first order in dt there
    # (measured 7.8e-7, 3.9e-7, 2.0e-7 at dt = 4e-3, 2e-3, 1e-3).
    ref = _relu_1d_no_bias_rk4(m, t, 2e-3)
    np.testing.assert_allclose(np.c_[tr["a"], w], ref, rtol=0, atol=2e-6)


def test_linear1d_anti_balanced_init_with_irrational_a_escapes_the_saddle_in_float64():
    # u0 = -a w0 with a = sqrt(eta_u/eta_w) irrational: in exact arithmetic the float64 init
    # has k' ~ 1e-17 (not 0), so p is driven to ~k' and escapes to p* near
    # t = ln(|p0|/k')/K_inf. float64 exact took k' from u0 + a w0 rounded (0, or a wrong
    # rounding-level value) and stayed at the saddle or escaped at the wrong time (found by
    # tests/test_exact_vs_precision_sweep.py); the reference is the 30-digit integrator.
    eta_u, eta_w = 1.7790613846114531, 6.229132974474139
    w0 = np.array([0.3, -1.1, 0.7])
    a = np.sqrt(eta_u / eta_w)
    m = ed.Linear1D.from_init(-a * w0, w0, eta_u=eta_u, eta_w=eta_w, teacher=1.0)
    t = np.linspace(0.0, 40.0, 9)
    ex, ref = ed.exact(m, t), ed.solve(m, t, precision=30)
    p = np.asarray(ref["end_to_end"], float)
    assert p[0] < 0 and p[-1] == pytest.approx(1.0, rel=1e-6)  # through the saddle, escaped
    for k in ("end_to_end", "loss", "ntk", "norm_u", "norm_w"):
        b = np.asarray(ref[k], float)
        np.testing.assert_allclose(ex[k], b, rtol=0, atol=1e-10 * np.abs(b).max())


def test_linear_net_zero_balanced_1x1_opposing_the_teacher_stays_at_the_saddle_in_float64():
    # W2 = -W1 (1 x 1 x 1, zero-balanced, eta1 = eta2) against a positive teacher: k' = 0,
    # the path decays into the saddle at 0 for ever. The float64 Riccati semigroup let the
    # rounding of F's eigenbasis grow as e^{2st} against the decaying path (W1 off by 1.2%
    # and W2 != -W1 at t = 49; found by tests/test_exact_vs_precision_sweep.py). The
    # reference is the 30-digit integrator, which holds the path to rounding up to t = 49.
    x = 0.05878640931922837
    m = ed.LinearNet.from_init([[x]], [[-x]], [[0.34558419]], _kind=("zero_balanced", 0.0))
    t = np.linspace(0.0, 48.7445952, 7)
    ex, ref = ed.exact(m, t), ed.solve(m, t, precision=30)
    for k in ("W1", "W2", "end_to_end"):
        b = np.asarray(ref[k], float)
        np.testing.assert_allclose(ex[k], b, rtol=1e-10, atol=0)
    np.testing.assert_array_equal(ex["W1"], -ex["W2"][:, 0, :, None])


@pytest.mark.parametrize("beta, seed", [([1.0], 4), ([-1.0], 0), ([3.16227766], 4)])
def test_single_neuron_nu_into_the_saddle_leaves_the_unstable_root_where_30_digits_say(beta,
                                                                                       seed):
    # in_dim 1, delta 0: w0 anti-aligned with beta (seed's sign) puts nu0 at the unstable
    # root -s of nu' = s^2 - nu^2 to rounding; nu leaves it where the init's last digits
    # say. Kunin's form in float64 rounded nu0 and delta and left it elsewhere (nu off by
    # 1e-2, or NaN / inf where the reference is finite; found by the precision sweep).
    m = ed.SingleNeuron(1, delta=0.0, beta=beta, product=0.01, seed=seed)
    a0, w0 = m.init_aw()
    assert np.sign(w0[0]) != np.sign(beta[0])
    t = np.linspace(0.0, 40.0, 9) / np.linalg.norm(beta)
    ex, ref = ed.exact(m, t), ed.solve(m, t, precision=30)
    w = ref["W1"].astype(float)[:, 0, :]
    a = ref["W2"].astype(float)[:, 0, 0]
    nu_ref = (w @ np.asarray(beta)) / a
    np.testing.assert_allclose(ex["nu"], nu_ref, rtol=0, atol=1e-10 * np.abs(nu_ref).max())


def test_single_neuron_nu_exactly_at_the_unstable_root_stays_there():
    m = ed.SingleNeuron.from_init(1.0, [-1.0], beta=[1.0])  # nu0 = -1 = -s, delta = 0
    tr = ed.exact(m, [0.0, 10.0, 100.0])
    np.testing.assert_array_equal(tr["nu"], [-1.0, -1.0, -1.0])
