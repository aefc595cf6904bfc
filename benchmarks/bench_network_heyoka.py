"""Benchmark: ``precision=N`` on a user network over several index kinds, exactdyn's Taylor
integrator against heyoka.py (``method="heyoka"``), in one run.

The network is the two-layer tanh network written by the user
(``bench_network_twolayer.user_two_layer``). Both methods integrate the same unrolled
program (the derived flow written out entry by entry, the data as exact binary numbers);
heyoka JIT-compiles it once per flow and shapes, so its first call (compilation included)
is timed apart from the best of the following ones. Times are CPU times of this
one-threaded process (a loaded machine makes wall times of short calls unreproducible);
the final states are checked to agree to ``10**-(N - 5)`` relative before any time is
printed. The table goes to stdout and to ``benchmarks/results/network_heyoka.md``.

Run: ``python benchmarks/bench_network_heyoka.py [--digits 16,30,50]``;
``PYTHONPATH=<tree>`` selects the exactdyn under test.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import mpmath
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.append(str(HERE.parent))

from bench_network_twolayer import user_two_layer  # noqa: E402

import exactdyn as ed  # noqa: E402

SHAPES = ((2, 2, 2), (3, 2, 4), (4, 3, 5))  # (m, D, n)
T_END = 5.0


def cpu(f):
    t0 = time.process_time()
    out = f()
    return time.process_time() - t0, out


def best_cpu(f, repeat=3):
    best, out = float("inf"), None
    for _ in range(repeat):
        t, out = cpu(f)
        best = min(best, t)
    return best, out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--digits", default="16,30,50")
    args = p.parse_args(argv)
    net = user_two_layer()
    rows = []
    for m, dim, n in SHAPES:
        rng = np.random.default_rng(0)
        model = net.from_init({"a": rng.standard_normal(m),
                               "W": rng.standard_normal((m, dim)) / np.sqrt(dim)},
                              X=rng.standard_normal((n, dim)), Y=rng.standard_normal(n),
                              alpha=1.0)
        for digits in map(int, args.digits.split(",")):
            def run(method, model=model, digits=digits):
                return ed.solve(model, [0.0, T_END], precision=digits, method=method)

            first, hey = cpu(lambda: run("heyoka"))
            t_hey, hey = best_cpu(lambda: run("heyoka"))
            t_tay, tay = best_cpu(lambda: run("taylor"))
            with mpmath.workdps(digits + 10):
                got = list(hey["a"][-1]) + list(hey["W"][-1].ravel())
                want = list(tay["a"][-1]) + list(tay["W"][-1].ravel())
                err = max(abs(x - y) for x, y in zip(got, want)) / max(map(abs, want))
                assert err < mpmath.mpf(10) ** -(digits - 5), (m, dim, n, digits, err)
            rows.append((m, dim, n, digits, t_tay, first, t_hey, float(err)))
    head = ("| m | D | n | digits | taylor (s) | heyoka first call (s) | heyoka after (s) "
            "| taylor / heyoka | agreement |\n|---|---|---|---|---|---|---|---|---|\n")
    body = "".join(f"| {m} | {dim} | {n} | {dg} | {tt:.3f} | {f1:.3f} | {th:.3f} | "
                   f"{tt / th:.1f} | {e:.0e} |\n" for m, dim, n, dg, tt, f1, th, e in rows)
    text = (f"# precision=N on a user two-layer network: Taylor vs heyoka (t = {T_END})\n\n"
            f"{platform.platform()}, Python {platform.python_version()}, CPU times\n\n"
            + head + body)
    print(text)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "network_heyoka.md").write_text(text)


if __name__ == "__main__":
    main()
