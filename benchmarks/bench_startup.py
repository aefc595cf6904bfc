"""Start-up of a new process: import, first solve with a cold and a warm on-disk cache,
steady-state solve (issue 15, item 4).

Each measurement runs in a fresh Python process (``python -c``), several times, and the
medians are reported. In each process: ``import exactdyn`` (wall time), building the model
(imports numpy; sympy too for TwoLayer and TwoLayerCNN, whose activations are sympy
expressions), the first ``ed.solve`` (lowers the flow: derived with sympy on a cold
cache, read from disk on a warm one; before exactdyn had its own DOP853 it also imported
scipy.integrate), then the median of 5 further
solves of the same model (the steady state). "pre-imported" rows import scipy.integrate
before the first solve, so the difference to the steady state is what the lowering costs.

"warm − steady, CPU" is the same difference in the process's CPU time
(``time.process_time``), which a loaded machine inflates far less than wall time. The last
column says whether the warm process imported sympy at all (only the
``Network`` case imports it itself, to write the user's network).

Run: ``python benchmarks/bench_startup.py [runs] [--tree PATH] [--families A,B]`` (default
5 runs, every family; writes
benchmarks/results/startup.md; ``--tree`` measures another source tree, such as a
checkout of an earlier commit, with this script's child code, and writes
startup_<folder name>.md).

``--exact``: instead of ``solve``, a float64 ``ed.exact`` of each family with a closed
form (:data:`EXACT_CASES`; TwoLayer and TwoLayerCNN at a small init, their early-stage
forms), in fresh processes, cold and warm cache: import, build, first ``exact``, and
whether the process imported sympy (writes startup_exact[_<folder name>].md).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CHILD = r"""
import sys, time, json
t0 = time.perf_counter()
import exactdyn as ed
t1 = time.perf_counter()
import numpy as np
which, pre = sys.argv[1], sys.argv[2] == "1"
if which == "Linear1D":
    make = lambda: ed.Linear1D(width=64)
elif which == "Network":
    import sympy as sp  # a user's network is written in sympy
    i, d = sp.symbols("i d", integer=True)
    u, v = sp.IndexedBase("u"), sp.IndexedBase("v")
    b = sp.Symbol("beta_star")
    net = ed.Network("diag", params=[u, v], index=i, width=d,
                     loss=(sp.Sum(u[i]**2 - v[i]**2, (i, 0, d - 1)) - b)**2 / 2, hyper=[b])
    make = lambda: net.random_init(64, scale=0.5, seed=1, beta_star=0.7)
elif which == "LinearNet":
    make = lambda: ed.LinearNet(in_dim=5, hidden=8, out_dim=3)
elif which == "TwoLayer":
    make = lambda: ed.TwoLayer(16, "1d-sine", activation="tanh", n=8)
elif which == "TwoLayerCNN":
    rng = np.random.default_rng(0)
    images, y = rng.normal(size=(4, 6, 6, 1)), rng.normal(size=4)
    make = lambda: ed.TwoLayerCNN(2, 3, images, y, scale=0.5)
else:
    make = lambda: ed.DeepLinear(depth=3, width=8, in_dim=3, out_dim=3,
                                 sigma_yx=np.diag([3.0, 2.0, 1.0]))
model = make()
t15 = time.perf_counter()
if pre:
    import scipy.integrate  # noqa: F401
    import exactdyn.solve  # noqa: F401
t2 = time.perf_counter()
ts = np.linspace(0, 5, 51)
c2 = time.process_time()
ed.solve(model, ts)
t3 = time.perf_counter()
c3 = time.process_time()
steady, steady_cpu = [], []
for _ in range(5):
    s, c = time.perf_counter(), time.process_time()
    ed.solve(model, ts)
    steady.append(time.perf_counter() - s)
    steady_cpu.append(time.process_time() - c)
steady.sort()
steady_cpu.sort()
print(json.dumps({"import": t1 - t0, "model": t15 - t1, "pre": t2 - t15, "first": t3 - t2,
                  "steady": steady[2], "first_cpu": c3 - c2, "steady_cpu": steady_cpu[2],
                  "sympy": "sympy" in sys.modules}))
"""

FAMILIES = ("Linear1D", "Network", "LinearNet", "DeepLinear", "TwoLayer", "TwoLayerCNN")



def _child_env(**extra) -> dict:
    """The children's environment: this one, with bytecode caching on (an installed
    package has its .pyc files; with PYTHONDONTWRITEBYTECODE every import compiles the
    module's source again, ~30 ms on the first solve), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra)
    return env

def _child(which: str, cache: str, pre: bool, tree: str = ROOT) -> dict:
    env = _child_env(EXACTDYN_CACHE_DIR=cache, PYTHONPATH=tree)
    # Run from the tree: ``python -c`` puts the working folder first on sys.path.
    out = subprocess.run([sys.executable, "-c", _CHILD, which, "1" if pre else "0"],
                         capture_output=True, text=True, env=env, check=True, cwd=tree)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _median(rows, key) -> float:
    return statistics.median(r[key] for r in rows)


def main(runs: int = 5, tree: str = ROOT, families=FAMILIES) -> str:
    lines = [f"Fresh processes, medians of {runs} runs each ({sys.version.split()[0]}); times "
             "in ms. cold: empty cache folder (derives and prints with sympy, then writes the "
             "entry); warm: the entry on disk.", "",
             "| family | scipy and exactdyn.solve | import exactdyn | build model | "
             "first solve, cold | first solve, warm | steady solve | warm − steady | "
             "warm − steady, CPU | sympy imported (warm) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for which in families:
        for pre in (False, True):
            cold, warm = [], []
            for _ in range(runs):
                with tempfile.TemporaryDirectory() as tmp:
                    cold.append(_child(which, tmp, pre, tree))
                    warm.append(_child(which, tmp, pre, tree))
            ms = {k: 1e3 * _median(warm, k) for k in ("import", "model", "pre", "first",
                                                      "steady")}
            where = f"imported before ({ms['pre']:.0f})" if pre else "in the first solve"
            lines.append(
                f"| {which} | {where} | "
                f"{ms['import']:.0f} | {ms['model']:.0f} | "
                f"{1e3 * _median(cold, 'first'):.0f} | {ms['first']:.0f} | "
                f"{ms['steady']:.1f} | "
                f"{1e3 * statistics.median(w['first'] - w['steady'] for w in warm):.0f} | "
                f"{1e3 * statistics.median(w['first_cpu'] - w['steady_cpu'] for w in warm):.0f} | "
                f"{'yes' if any(w['sympy'] for w in warm) else 'no'} |")
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    name = "startup.md" if tree == ROOT else f"startup_{os.path.basename(tree)}.md"
    out = os.path.join(ROOT, "benchmarks", "results", name)
    with open(out, "w") as fh:
        fh.write(text)
    return text


_CHILD_EXACT = r"""
import sys, time, json
t0 = time.perf_counter()
import exactdyn as ed
t1 = time.perf_counter()
import numpy as np
which = sys.argv[1]
S = np.diag([3.0, 2.0, 1.0])
rng = np.random.default_rng(0)
images, y = rng.normal(size=(4, 6, 6, 1)), rng.normal(size=4)
make = {
    "Linear1D": lambda: ed.Linear1D(width=64),
    "LinearNet": lambda: ed.LinearNet.decoupled(S),
    "SingleNeuron": lambda: ed.SingleNeuron(in_dim=3),
    "DeepLinear": lambda: ed.DeepLinear.decoupled(3, 3, S, [0.05, 0.02, 0.01]),
    "TwoLayer": lambda: ed.TwoLayer(16, "1d-sine", activation="tanh", n=8, beta1=1e-3,
                                    beta2=1e-3),
    "TwoLayer-relu": lambda: ed.TwoLayer(16, "1d-sine", activation="relu", n=8,
                                         beta1=1e-3, beta2=1e-3),
    "TwoLayerCNN": lambda: ed.TwoLayerCNN(2, 3, images, y, scale=1e-3),
}[which]
model = make()
t2 = time.perf_counter()
sympy_built = "sympy" in sys.modules
ts = np.linspace(0, 2, 51)
ed.exact(model, ts)
t3 = time.perf_counter()
steady = []
for _ in range(5):
    s = time.perf_counter()
    ed.exact(model, ts)
    steady.append(time.perf_counter() - s)
steady.sort()
print(json.dumps({"import": t1 - t0, "model": t2 - t1, "first": t3 - t2, "steady": steady[2],
                  "sympy_built": sympy_built, "sympy": "sympy" in sys.modules}))
"""

EXACT_CASES = ("Linear1D", "LinearNet", "SingleNeuron", "DeepLinear", "TwoLayer",
               "TwoLayer-relu", "TwoLayerCNN")


def main_exact(runs: int = 5, tree: str = ROOT, cases=EXACT_CASES) -> str:
    """Fresh processes: import, build, first float64 ``ed.exact`` (cold and warm cache),
    steady ``exact``; whether sympy was imported by the build and by the whole process."""
    lines = [f"Fresh processes, medians of {runs} runs each ({sys.version.split()[0]}); times "
             "in ms; float64 `ed.exact` on 51 times. cold: empty cache folder; warm: a "
             "second process on the same folder.", "",
             "| family | import exactdyn | build model | first exact, cold | first exact, "
             "warm | steady exact | sympy imported by the build | sympy imported (warm) |",
             "|---|---|---|---|---|---|---|---|"]
    for which in cases:
        cold, warm = [], []
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as tmp:
                env = _child_env(EXACTDYN_CACHE_DIR=tmp, PYTHONPATH=tree)
                for rows in (cold, warm):
                    out = subprocess.run([sys.executable, "-c", _CHILD_EXACT, which],
                                         capture_output=True, text=True, env=env,
                                         check=True, cwd=tree)
                    rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        ms = {k: 1e3 * _median(warm, k) for k in ("import", "model", "first", "steady")}
        lines.append(
            f"| {which} | {ms['import']:.0f} | {ms['model']:.0f} | "
            f"{1e3 * _median(cold, 'first'):.0f} | {ms['first']:.0f} | {ms['steady']:.1f} | "
            f"{'yes' if any(w['sympy_built'] for w in warm) else 'no'} | "
            f"{'yes' if any(w['sympy'] for w in warm) else 'no'} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    name = "startup_exact.md" if tree == ROOT else \
        f"startup_exact_{os.path.basename(tree)}.md"
    with open(os.path.join(ROOT, "benchmarks", "results", name), "w") as fh:
        fh.write(text)
    return text


if __name__ == "__main__":
    args = sys.argv[1:]
    tree = ROOT
    if "--tree" in args:
        at = args.index("--tree")
        tree = os.path.abspath(args[at + 1])
        del args[at:at + 2]
    families = FAMILIES
    if "--families" in args:
        at = args.index("--families")
        families = tuple(args[at + 1].split(","))
        del args[at:at + 2]
    if "--exact" in args:
        args.remove("--exact")
        cases = families if families is not FAMILIES else EXACT_CASES
        print(main_exact(int(args[0]) if args else 5, tree, cases))
    else:
        print(main(int(args[0]) if args else 5, tree, families))
