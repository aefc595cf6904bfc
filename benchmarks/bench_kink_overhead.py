"""Per-kink overhead of kinked ReLU solves, this tree against an older exactdyn, side by
side (issue 15, item 1: kinked flows at the cost of the smooth ones).

The instances of ``bench_twolayer_gd.py`` (``teacher``: m = 64, n = 40, d = 4, t <= 50;
``bf256``: Boursier–Flammarion, m = 256, t <= 100). Each solve runs in its own
subprocess, before and after alternating, ``--repeat`` times; in each, the flow is lowered
and a short solve run first, and (``--warm-scipy``, the default) ``scipy.optimize`` is
imported before the clock starts, so that the times compare the kink handling alone and
not the ~0.8 s import the older location (``brentq``) pays once per process. Reported:
kinks, rhs evaluations, evaluations per kink, CPU seconds of the solve (median of the
repeats; single-threaded BLAS, so on a machine loaded by other processes the CPU time is
the steadier measure) and the before / after ratio, the same for wall seconds, and the
solve's CPU time in units of its evaluations at the cost of the flow's own smooth-path
rhs (``ed.lower(net).rhs`` timed at the final state in the same process): 1 would be
a kinked solve that costs what its evaluations cost on a smooth flow.

``--in-run``: instead, one solve per instance with this tree in which every kink is
located twice, by this tree's ``KinkState.locate`` and by DIR's (its source, run on this
tree's state; the memoized pattern tests restored in between, the order alternating), CPU
time of each summed: the location's cost before/after on the very same steps, which a
loaded machine cannot blur, and how far apart the two kink times are.

``--instructions``: the ``teacher`` solve to t = 5 in instructions (valgrind's callgrind,
deterministic where this shared machine's CPU time varies by ±30%): a process that builds
the instance, lowers it and runs two short solves, minus the same process with the solve
after that; per kink; and per evaluation in units of the flow's own smooth-path rhs
(the same process evaluating ``ed.lower(net).rhs`` as many times, minus setup). About
10 minutes.

Run: ``python benchmarks/bench_kink_overhead.py --before DIR [--repeat 3] [--cold-scipy]
[--in-run] [--instructions]`` with DIR holding an exported ``exactdyn`` package (``git
archive <commit> exactdyn``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve()

# The start of every child: the exactdyn of the tree in argv[1], the benchmarks in argv[2].
PREAMBLE = """
import os, sys, time, json
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, sys.argv[1])
sys.path.insert(1, sys.argv[2])
import exactdyn as ed
assert ed.__file__.startswith(sys.argv[1]), ed.__file__
import bench_twolayer_gd as bench
bench.ed = ed
"""

CHILD = PREAMBLE + """
name, rtol, warm = sys.argv[3], float(sys.argv[4]), sys.argv[5] == "1"
m = 64 if name == "teacher" else bench.BF_WIDTH
net = bench.build(name, m, bench.N_SAMPLES)
ed.solve(net, [0.0, 1e-3])
if warm:
    import scipy.optimize  # noqa: F401
T = bench.INSTANCES[name][0]
t0, c0 = time.perf_counter(), time.process_time()
tr = ed.solve(net, [0.0, T], rtol=rtol)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
# one evaluation of the flow's own (smooth-path) right-hand side at the final state, the
# unit of "kinked at the cost of the smooth ones"
low = ed.lower(net)
y = low.pack(tr["a"][-1], tr["W"][-1])
calls = 3000
c1 = time.process_time()
for _ in range(calls):
    low.rhs(0.0, y)
rhs = (time.process_time() - c1) / calls
print(json.dumps({"time": wall, "cpu": cpu, "kinks": tr.meta["kinks"],
                  "nfev": tr.meta["nfev"], "rhs": rhs}))
"""

CASES = (("teacher", 1e-10), ("teacher", 1e-4), ("bf256", 1e-10), ("bf256", 1e-5))

# --instructions: one process per (tree, mode) under callgrind; "setup" builds the instance,
# lowers it and runs two short solves, "solve" then one solve to T_INSTRUCTIONS, "rhs"
# then as many evaluations of the flow's own smooth-path rhs as that solve made.
T_INSTRUCTIONS = 5.0
INSTR = PREAMBLE + """
mode, T, evals = sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
net = bench.build("teacher", bench.M, bench.N_SAMPLES)
ed.solve(net, [0.0, 1e-3])
ed.solve(net, [0.0, 0.5])
if mode == "solve":
    tr = ed.solve(net, [0.0, T])
    print(tr.meta["kinks"], tr.meta["nfev"])
elif mode == "rhs":
    low = ed.lower(net)
    y = low.pack(net.a0, net.W0)
    for _ in range(evals):
        low.rhs(0.0, y)
"""


def child(tree, name, rtol, warm):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", CHILD, str(tree), str(HERE.parent), name,
                          repr(rtol), "1" if warm else "0"], env=env, capture_output=True,
                         text=True, check=True, cwd=str(tree))
    return json.loads(out.stdout.strip().splitlines()[-1])


IN_RUN = """
import ast, os, sys, textwrap, time
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, sys.argv[1])
sys.path.insert(1, sys.argv[2])
import numpy as np
import exactdyn as ed
assert ed.__file__.startswith(sys.argv[1]), ed.__file__
from exactdyn.numeric import kinks
import bench_twolayer_gd as bench
import scipy.optimize  # noqa: F401  (the older location's import, outside the clock)
source = open(os.path.join(sys.argv[3], "exactdyn", "numeric", "kinks.py")).read()
cls = next(n for n in ast.parse(source).body
           if isinstance(n, ast.ClassDef) and n.name == "KinkState")
node = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "locate")
namespace = dict(vars(kinks))
exec(textwrap.dedent(ast.get_source_segment(source, node)), namespace)
locates = {"before": namespace["locate"], "after": kinks.KinkState.locate}
acc = {"before": 0.0, "after": 0.0, "n": 0, "differ": 0, "widths": 0.0}
stores = ("_memo_eval", "_memo_events", "_memo_unc")

def both(self, dense, t_old, t_new, y_end=None):
    saved = {s: list(getattr(self, s)) for s in stores}
    result = {}
    for side in (("before", "after") if acc["n"] % 2 else ("after", "before")):
        for s in stores:
            setattr(self, s, list(saved[s]))
        c0 = time.process_time()
        result[side] = locates[side](self, dense, t_old, t_new, y_end)
        acc[side] += time.process_time() - c0
    acc["n"] += 1
    if result["before"] != result["after"]:
        acc["differ"] += 1
        tol = 8 * np.finfo(float).eps * max(1.0, abs(t_new))
        acc["widths"] = max(acc["widths"], abs(result["before"] - result["after"]) / tol)
    return result["after"]

kinks.KinkState.locate = both
name = sys.argv[4]
rtol = float(sys.argv[5])
net = bench.build(name, 64 if name == "teacher" else bench.BF_WIDTH, bench.N_SAMPLES)
c0 = time.process_time()
tr = ed.solve(net, [0.0, bench.INSTANCES[name][0]], rtol=rtol)
total = time.process_time() - c0 - acc["before"]
n = max(acc["n"], 1)
print(f"| {name}, {rtol:g} | {tr.meta['kinks']} | {acc['before'] / n * 1e3:.3f} | "
      f"{acc['after'] / n * 1e3:.3f} | {acc['before'] / acc['after']:.2f} | "
      f"{acc['before'] - acc['after']:.2f} of {total:.2f} | {acc['differ']} of {n}, "
      f"<= {acc['widths']:.2f} |", flush=True)
"""


def in_run(before):
    print("| instance, rtol | kinks | locate CPU ms per kink before | after | before / after | "
          "CPU s saved of the solve's | kink times that differ, by (bracket widths) |")
    print("|---|---|---|---|---|---|---|")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for name, rtol in CASES:
        out = subprocess.run([sys.executable, "-c", IN_RUN, str(HERE.parents[1]),
                              str(HERE.parent), str(before), name, repr(rtol)], env=env,
                             capture_output=True, text=True, check=True)
        print(out.stdout.strip().splitlines()[-1], flush=True)


def instruction_count(tree, mode, evals=0):
    """Instructions (valgrind's callgrind, ``I refs``) of one INSTR process, and its
    stdout; the on-disk flow cache is warmed by one run without valgrind first."""
    import re

    args = [sys.executable, "-c", INSTR, str(tree), str(HERE.parent), mode,
            repr(T_INSTRUCTIONS), str(evals)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    subprocess.run(args, env=env, capture_output=True, text=True, check=True, cwd=str(tree))
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
                         + args, env=env, capture_output=True, text=True, check=True,
                         cwd=str(tree))
    refs = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
    return int(refs.group(1).replace(",", "")), out.stdout.strip()


def instructions(before):
    """The ``teacher`` solve to T_INSTRUCTIONS in instructions, before and after."""
    print("| | before | after |")
    print("|---|---|---|")
    rows = {}
    for side, tree in (("before", before), ("after", HERE.parents[1])):
        setup, _ = instruction_count(tree, "setup")
        solve, info = instruction_count(tree, "solve")
        kinks, nfev = (int(v) for v in info.split()[-2:])
        rhs, _ = instruction_count(tree, "rhs", nfev)
        rows[side] = (solve - setup, kinks, nfev, (rhs - setup) / nfev)
    (sb, kb, nb, rb), (sa, ka, na, ra) = rows["before"], rows["after"]
    print(f"| kinks, rhs evaluations | {kb}, {nb} | {ka}, {na} |")
    print(f"| instructions of the solve | {sb / 1e9:.2f}e9 | {sa / 1e9:.2f}e9 "
          f"({sb / sa:.2f}x fewer) |")
    print(f"| per kink | {sb / kb / 1e6:.1f}e6 | {sa / ka / 1e6:.1f}e6 |")
    print(f"| per evaluation, in smooth-rhs evaluations | {sb / nb / rb:.2f} "
          f"({rb:.3g} each) | {sa / na / ra:.2f} ({ra:.3g} each) |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cold-scipy", action="store_true",
                        help="do not import scipy.optimize before the clock starts")
    parser.add_argument("--in-run", action="store_true",
                        help="both locations on the same steps of one run (see above)")
    parser.add_argument("--instructions", action="store_true",
                        help="instruction counts under valgrind's callgrind (see above)")
    args = parser.parse_args()
    if args.instructions:
        instructions(args.before.resolve())
        return
    if args.in_run:
        in_run(args.before.resolve())
        return
    after = HERE.parents[1]
    print("| instance, rtol | kinks before/after | rhs evals before/after | evals per kink "
          "before/after | CPU before (s) | CPU after (s) | CPU before / after | "
          "wall before / after | solve / (evals × one rhs) before/after |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, rtol in CASES:
        runs = {"before": [], "after": []}
        for _ in range(args.repeat):
            for side, tree in (("before", args.before.resolve()), ("after", after)):
                runs[side].append(child(tree, name, rtol, not args.cold_scipy))
        b, a = runs["before"][-1], runs["after"][-1]
        cb = statistics.median(r["cpu"] for r in runs["before"])
        ca = statistics.median(r["cpu"] for r in runs["after"])
        tb = statistics.median(r["time"] for r in runs["before"])
        ta = statistics.median(r["time"] for r in runs["after"])
        # the solve's CPU in units of its evaluations at the smooth rhs's cost
        ob = cb / (b["nfev"] * statistics.median(r["rhs"] for r in runs["before"]))
        oa = ca / (a["nfev"] * statistics.median(r["rhs"] for r in runs["after"]))
        print(f"| {name}, {rtol:g} | {b['kinks']}/{a['kinks']} | {b['nfev']}/{a['nfev']} | "
              f"{b['nfev'] / max(b['kinks'], 1):.1f}/{a['nfev'] / max(a['kinks'], 1):.1f} | "
              f"{cb:.2f} | {ca:.2f} | {cb / ca:.2f} | {tb / ta:.2f} | {ob:.1f}/{oa:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
