"""Generated right-hand sides against hand-written numpy ones, in this tree and another.

The one-pipeline issue asks that every lowered right-hand side keeps its ratio to the
hand-written baseline (within 10%) as the pipeline changes. For each case the generated
rhs (``exactdyn.lower(model).rhs``) and the obvious hand-written numpy rhs (the same
functions as ``bench_deep_linear.py``, ``bench_twolayer.py`` and ``bench_cnn.py``; checked
equal to 1e-12 first) are timed in alternating blocks of CPU time (``time.process_time``),
best of 7 (so a load change on a shared machine hits both alike), and the ratio
generated / hand-written is reported.

Run: ``python benchmarks/bench_rhs_ratios.py`` (this tree), or
``python benchmarks/bench_rhs_ratios.py --before PATH`` to measure also the exactdyn
checkout at ``PATH`` (e.g. ``git worktree add /tmp/before a4609e0``), in its own process,
before and after alternately (two rounds each, the best ratio kept), and print both. The
hand-written functions always come from this script's folder, so both trees are compared
with the same baseline. Writes ``benchmarks/results/rhs_ratios.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # single-threaded BLAS: steadier on a shared machine

HERE = Path(__file__).resolve().parent


def _interleaved(f, g, rounds=7, target=0.05):
    """Best seconds per call of ``f`` and of ``g``, in alternating blocks of about
    ``target`` seconds. The clock is the process's CPU time: on a machine loaded by other
    jobs, time spent waiting for a core does not count (wall-clock ratios moved by ±50%)."""
    import time

    clock = time.process_time
    f()
    g()
    number = 1
    while True:  # calls per block: enough for ``target`` seconds of CPU time
        t0 = clock()
        for _ in range(number):
            f()
            g()
        if clock() - t0 > target:
            break
        number *= 2

    def block(h):
        t0 = clock()
        for _ in range(number):
            h()
        return (clock() - t0) / number

    tf = tg = float("inf")
    for _ in range(rounds):
        tf = min(tf, block(f))
        tg = min(tg, block(g))
    return tf, tg


def _lowered(model):
    import exactdyn as ed

    try:
        return ed.lower(model)
    except AttributeError:  # older trees: the two-layer network lowered itself
        from exactdyn.numeric.twolayer import lowered_two_layer

        return lowered_two_layer(model)


def measure() -> dict:
    """Case name -> (generated s, hand-written s, ratio) in the imported exactdyn."""
    # exactdyn first, from PYTHONPATH: the bench modules put their own tree on sys.path.
    import numpy as np

    import exactdyn as ed
    from exactdyn.models.datasets import synthetic_images
    from exactdyn.models.deep_linear import teacher_matrix

    sys.path.insert(0, str(HERE))
    from bench_cnn import hand_rhs as cnn_hand
    from bench_deep_linear import handwritten_rhs as deep_hand
    from bench_twolayer import hand_rhs as two_hand

    out = {}

    def record(name, gen, hand):
        np.testing.assert_allclose(gen(), hand(), rtol=1e-12,
                                   atol=1e-12 * float(np.max(np.abs(hand()))))
        tg, th = _interleaved(gen, hand)
        out[name] = (tg, th, tg / th)
        print(f"  {name}: {tg * 1e6:.1f} / {th * 1e6:.1f} us = {tg / th:.2f}", flush=True)

    def linear1d_hand(model):
        """The obvious numpy rhs of Linear1D (MATH.md §1), allocating as a user writes it."""
        k, c, sxx, eu, ew = model.kappa, model.teacher, model.x_var, model.eta_u, model.eta_w
        d = model.width

        def rhs(y):
            u, w = y[:d], y[d:]
            r = sxx * k * (k * np.dot(u, w) - c)
            return np.concatenate([-eu * r * w, -ew * r * u])
        return rhs

    def linear1d_inplace(model):
        """The best numpy rhs of Linear1D: ufuncs writing into a new result (out=)."""
        k, c, sxx, eu, ew = model.kappa, model.teacher, model.x_var, model.eta_u, model.eta_w
        d = model.width

        def rhs(y):
            u, w = y[:d], y[d:]
            r = sxx * k * (k * np.dot(u, w) - c)
            out = np.empty(2 * d)
            np.multiply(-eu * r, w, out=out[:d])
            np.multiply(-ew * r, u, out=out[d:])
            return out
        return rhs

    for width in (8, 1000, 100_000):
        model = ed.Linear1D(width=width, teacher=0.5, sigma_u=0.3, sigma_w=0.7, eta_w=0.5)
        low = _lowered(model)
        y = np.asarray(low.pack(model.initial_state()), float)
        hand = linear1d_hand(model)
        record(f"Linear1D width {width}", lambda: low.rhs(0.0, y), lambda: hand(y))
        inplace = linear1d_inplace(model)
        record(f"Linear1D width {width}, in-place hand", lambda: low.rhs(0.0, y),
               lambda: inplace(y))

    def linearnet_hand(model, low):
        """W1' = -eta1 W2^T R, W2' = -eta2 R W1^T, R = W2 W1 Sxx - Syx."""
        # from the model, not the lowering (whose attributes differ between trees)
        sxx = np.asarray(model.sxx, float)
        syx = np.asarray(model.sigma_yx, float)
        h, i = model.hidden, model.in_dim
        e1, e2 = model.eta1, model.eta2

        def rhs(y):
            W1, W2 = y[:h * i].reshape(h, i), y[h * i:].reshape(-1, h)
            R = W2 @ W1 @ sxx - syx
            return np.concatenate([(-e1 * (W2.T @ R)).ravel(), (-e2 * (R @ W1.T)).ravel()])
        return rhs

    for hidden in (4, 200):
        model = ed.LinearNet(3, hidden, 2, sigma_yx=[[1.0, 0.5, 0.0], [0.0, 1.0, 0.3]],
                             eta2=0.5)
        low = _lowered(model)
        y = np.asarray(low.pack(model.initial_state()), float)
        hand = linearnet_hand(model, low)
        record(f"LinearNet 3-{hidden}-2", lambda: low.rhs(0.0, y), lambda: hand(y))

    S = teacher_matrix([4.0, 2.0, 1.0], 3, 3)
    for width in (10, 100, 300):
        model = ed.DeepLinear.decoupled(3, width, S, mode_init=0.05)
        low = _lowered(model)
        y = np.asarray(low.pack(model.initial_state()), float)
        hand = deep_hand(model)
        record(f"DeepLinear depth 3 width {width}", lambda: low.rhs(0.0, y),
               lambda: hand(0.0, y))
    for act in ("tanh", "relu"):
        for m, n in ((100, 20), (1000, 200)):
            model = ed.TwoLayer(m, "1d-sine", activation=act, n=n, beta1=1e-2, beta2=1e-2)
            low = _lowered(model)
            a0, W0 = model.initial_state()["a"], model.initial_state()["W"]
            try:
                y = low.pack(model.initial_state())
            except TypeError:  # older trees: pack(a, W)
                y = low.pack(a0, W0)
            record(f"TwoLayer {act} m {m} n {n}", lambda: low.rhs(0.0, y),
                   lambda: two_hand(a0, W0, model.X, model.y, model.alpha, act))
    for act in ("tanh", "relu"):
        for n, M in ((64, 8), (256, 32)):
            images, yl = synthetic_images(n, 8, 8, 1, seed=0)
            model = ed.TwoLayerCNN(M, 3, images, yl, activation=act, scale=1e-2)
            low = _lowered(model)
            v = low.pack(model.initial_state())
            D, P, X = model.patch_dim, model.positions, model.patches
            record(f"TwoLayerCNN {act} N {n} M {M}", lambda: low.rhs(0.0, v),
                   lambda: cnn_hand(v, X, model.y, D, P, M, act))
    return out


def _measure_tree(path: str) -> dict:
    root = Path(path).resolve()
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.run([sys.executable, __file__, "--measure-only"], env=env,
                          capture_output=True, text=True, check=True, cwd=str(HERE))
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    used = Path(result.pop("_exactdyn")).resolve()
    if root not in used.parents:
        raise RuntimeError(f"measured {used}, not the tree {root}")
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", help="an exactdyn checkout to measure too")
    p.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure_only:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            result = measure()
        import exactdyn

        print(json.dumps({**result, "_exactdyn": exactdyn.__file__}))
        return
    here = str(HERE.parent)
    if args.before is None:
        after = _measure_tree(here)
        rows = ["| case | generated (us) | hand-written (us) | ratio |", "|---|---:|---:|---:|"]
        rows += [f"| {k} | {v[0] * 1e6:.1f} | {v[1] * 1e6:.1f} | {v[2]:.2f} |"
                 for k, v in after.items()]
    else:
        runs = {"before": [], "after": []}
        for _ in range(2):
            runs["before"].append(_measure_tree(args.before))
            runs["after"].append(_measure_tree(here))
        best = {k: {c: min(r[c][2] for r in v) for c in v[0]} for k, v in runs.items()}
        rows = ["| case | ratio before | ratio after | change |", "|---|---:|---:|---:|"]
        for c in best["after"]:
            b, a = best["before"].get(c), best["after"][c]
            change = "" if b is None else f"{(a / b - 1) * 100:+.0f}%"
            rows.append(f"| {c} | {'' if b is None else f'{b:.2f}'} | {a:.2f} | {change} |")
    text = "\n".join(rows)
    print(text)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "rhs_ratios.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
