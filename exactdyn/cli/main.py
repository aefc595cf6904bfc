"""The ``exactdyn`` command line.

    exactdyn solve linear1d --width 64 --kappa 1 --t-span 0:10 --points 11
    exactdyn solve two-layer --width 100 --activation tanh --beta1 1e-3 --beta2 1e-3
    exactdyn solve cnn --channels 8 --kernel-size 3 --scale 1e-3 --data synthetic
    exactdyn exact linear1d --u0 1,0 --w0 0.5,1 --t 0.5,1,2 --format json
    exactdyn verify linear1d --precision 50
    exactdyn verify two-layer --width 20 --activation tanh --beta1 1e-3 --beta2 1e-3 --t 0,1,2
    exactdyn report linear1d --width 8 --out reports/linear1d
    exactdyn report --check derivations/
    exactdyn classify linear1d --width 64 --kappa 0.01
    exactdyn classify single-neuron --delta 10
    exactdyn classify deep-linear --depth 3 --width 32 --teacher-svals 3,2,1 --gamma 2
    exactdyn phase-diagram linear1d --x sigma_u=1e-3:1e1:log:100 --y kappa=1e-2:1e2:log:100 \
        --fixed width=64 --out pd.png --data pd.json
    exactdyn solve deep-linear --depth 3 --width 16 --teacher-svals 3,2,1 --gamma 2

Bad input prints one line (``exactdyn: error: ...``) and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from .._version import __version__
from ..closed_form import exact
from ..errors import IntegrationError
from ..models.linear1d import Linear1D
from ..solve import FLOAT_METHODS, PRECISION_METHODS, solve
from ..verify import verify
from .common import (
    _NO_PROGRESS,
    _NO_REGIME,
    _floats,
    _Parser,
    _times,
    _UsageError,
    print_regime,
    print_trajectory,
)

MODELS = ("linear1d", "deep-linear", "linear", "single-neuron")


_MORE_MODELS = ("Two-layer networks (Luo et al.; Zhou et al.; Boursier & Flammarion) and "
                "two-layer CNNs (Zhou et al.) take their own options: "
                "exactdyn {solve,exact,verify,report} two-layer --help, and the same with cnn "
                "(classify takes two-layer as well).")


def _model(args):
    if args.model == "deep-linear":
        from .deep_linear import model_from_args

        return model_from_args(args)
    if args.model in ("linear", "single-neuron"):
        from .linear import linear_model

        return linear_model(args, _floats)
    if args.model != "linear1d":  # argparse's choices already guard this
        raise ValueError(f"unknown model {args.model!r}; known: {', '.join(MODELS)}")
    if (args.u0 is None) != (args.w0 is None):
        raise ValueError("--u0 and --w0 go together (an explicit init needs both)")
    if args.u0 is not None:
        u0, w0 = _floats("--u0", args.u0), _floats("--w0", args.w0)
        if args.width is not None and args.width != len(u0):
            raise ValueError(f"--width {args.width} disagrees with --u0 of length {len(u0)}")
        return Linear1D.from_init(u0, w0, kappa=args.kappa, eta_u=args.eta_u, eta_w=args.eta_w,
                                  teacher=args.teacher, x_var=args.x_var)
    return Linear1D(width=64 if args.width is None else args.width, kappa=args.kappa,
                    eta_u=args.eta_u, eta_w=args.eta_w, sigma_u=args.sigma_u,
                    sigma_w=args.sigma_w, teacher=args.teacher, x_var=args.x_var, seed=args.seed)


def _add_model_options(p):
    p.add_argument("model", choices=MODELS, help="the model: linear1d (Xu & Ziyin), linear "
                   "(W2 W1 x, Saxe et al.), single-neuron (Kunin et al.), deep-linear "
                   "(W_L...W_1 x, Jacot et al.); two-layer and cnn have their own options, "
                   "see the end of this help")
    m = p.add_argument_group("matrix data (linear, single-neuron, deep-linear)")
    m.add_argument("--in-dim", type=int, default=None,
                   help="input dimension >= 1 (default: the teacher's)")
    m.add_argument("--out-dim", type=int, default=None,
                   help="output dimension >= 1 (default: the teacher's)")
    m.add_argument("--teacher-svals", default=None,
                   help="teacher singular values (Sigma_yx = diag(s), out x in), e.g. 3,2,1")
    m.add_argument("--sigma-yx", default=None, help="file with Sigma_yx (out x in; .npy or text)")
    m.add_argument("--sigma-xx", default=None,
                   help="file with Sigma_xx (in x in, positive definite; default identity)")
    from .deep_linear import add_options as add_deep_linear_options

    add_deep_linear_options(p)
    g = p.add_argument_group("linear1d hyperparameters (MATH.md §1)")
    g.add_argument("--width", type=int, default=None, help="hidden width d >= 1 (default 64)")
    g.add_argument("--kappa", type=float, default=1.0, help="output scale, nonzero (default 1)")
    g.add_argument("--eta-u", type=float, default=1.0, help="readout learning rate > 0")
    g.add_argument("--eta-w", type=float, default=1.0, help="input-layer learning rate > 0")
    g.add_argument("--sigma-u", type=float, default=1.0, help="init std of u >= 0 (default 1)")
    g.add_argument("--sigma-w", type=float, default=1.0, help="init std of w >= 0 (default 1)")
    g.add_argument("--teacher", type=float, default=1.0, help="teacher slope c (default 1)")
    g.add_argument("--x-var", type=float, default=1.0, help="input second moment > 0")
    g.add_argument("--seed", type=int, default=0, help="seed of the random init (default 0)")
    g.add_argument("--u0", help="explicit init of u, comma-separated (with --w0)")
    g.add_argument("--w0", help="explicit init of w, comma-separated (with --u0)")
    from .linear import add_options

    add_options(p)
    t = p.add_argument_group("times and output")
    t.add_argument("--t", help="output times, comma-separated, e.g. 0.5,1,2")
    t.add_argument("--t-span", help="START:END of evenly spaced times (default 0:10)")
    t.add_argument("--points", type=int, default=11, help="number of times in --t-span")
    t.add_argument("--precision", type=int, default=None,
                   help="significant digits (mpmath); default float64")
    t.add_argument("--format", choices=("table", "json", "csv"), default="table",
                   help="output format (default table)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="exactdyn", description="Exact gradient-flow dynamics of small "
                     "neural networks: integrate, solve in closed form, verify.",
                     epilog=_MORE_MODELS, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"exactdyn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("solve", help="integrate the full gradient flow numerically",
                       epilog=_MORE_MODELS,
                       description="Integrate the model's gradient flow (derived symbolically, "
                       "lowered to numpy or mpmath).")
    _add_model_options(p)
    p.add_argument("--method", default=None, help="float64: " + ", ".join(FLOAT_METHODS)
                   + " (default DOP853); with --precision: " + ", ".join(PRECISION_METHODS))
    p.add_argument("--rtol", type=float, default=1e-12, help="relative tolerance (1e-12)")
    p.add_argument("--atol", type=float, default=None, help="absolute tolerance (scaled)")
    p.add_argument("--reduced", action="store_true", help="integrate the reduced equation")
    p.add_argument("--no-progress", action="store_true", help=_NO_PROGRESS)
    p = sub.add_parser("exact", help="evaluate the closed-form solution", epilog=_MORE_MODELS,
                       description="Evaluate the closed form (stable Möbius form).")
    _add_model_options(p)
    p = sub.add_parser("verify", help="closed form against the integrator", epilog=_MORE_MODELS,
                       description="Compare closed form and integrator on every observable.")
    _add_model_options(p)
    p.add_argument("--rtol", type=float, default=None, help="integrator relative tolerance")
    p = sub.add_parser("report", help="write a derivation report (Markdown, LaTeX, figures)",
                       epilog=_MORE_MODELS,
                       description="Write the derivation report of the model into --out "
                       "(atomically). `exactdyn report --check DIR` instead rebuilds the "
                       "reports committed in DIR and exits 1 listing the files that differ.")
    _add_model_options(p)
    p.set_defaults(points=41, precision=50)
    p.add_argument("--out", required=True, help="the report's directory (replaced whole)")
    p.add_argument("--no-figures", action="store_true", help="skip figures/*.png, *.svg")
    p.add_argument("--no-regime", action="store_true", help=_NO_REGIME)
    p.add_argument("--no-progress", action="store_true", help=_NO_PROGRESS)
    _add_regime_parsers(sub)
    return parser


def _add_regime_parsers(sub):
    p = sub.add_parser("classify", help="which regime a model shows (and theory predicts)",
                       description="Classify a model from its exact solution, or its "
                       "closed-form trajectory at --t / --t-span when given (MATH.md §1-3; "
                       "the thresholds are the project's operational definitions).")
    _add_model_options(p)
    p.add_argument("--kernel-tol", type=float, default=None,
                   help="kernel / lazy / ntk if the NTK's sup relative change < this "
                   "(default 0.1)")
    _add_linear1d_regime_options(p)
    p = sub.add_parser("phase-diagram", help="regimes over a grid of two hyperparameters",
                       description="Phase diagram: measured and predicted labels and scores "
                       "over two hyperparameters (vectorized closed form by default).")
    p.add_argument("model", choices=MODELS, help="the model family: linear1d (vectorized "
                   "closed form), single-neuron, deep-linear (one classification per cell)")
    p.add_argument("--teacher-svals", default=None,
                   help="deep-linear: teacher singular values (Sigma_yx = diag(s), out x in "
                   "from --fixed in_dim=,out_dim= or len(s))")
    p.add_argument("--x", required=True, help="NAME=START:END:log|lin:N or NAME=v1,v2,...")
    p.add_argument("--y", required=True, help="NAME=START:END:log|lin:N or NAME=v1,v2,...")
    p.add_argument("--fixed", action="append", default=[],
                   help="NAME=VALUE[,NAME=VALUE...], e.g. width=64,seed=0 (repeatable)")
    p.add_argument("--quantity", default=None, help="score for the colour map (default chi)")
    p.add_argument("--method", choices=("auto", "closed-form", "trajectory"), default="auto",
                   help="auto: vectorized closed form unless --scheduler or --cache")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (trajectory path)")
    p.add_argument("--scheduler", default=None,
                   help="dask.distributed scheduler ADDRESS (needs the 'dask' extra)")
    p.add_argument("--cache", default=None, help="folder of finished cells (resumable)")
    p.add_argument("--out", action="append", default=[], help="figure file, .png or .svg")
    p.add_argument("--data", default=None, help="data file, .json or .npz")
    p.add_argument("--kernel-tol", type=float, default=None,
                   help="kernel if sup |K/K0 - 1| < this (default 0.1)")
    _add_linear1d_regime_options(p)
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar on stderr (by default one is shown on a terminal only)")


def _add_linear1d_regime_options(p):
    p.add_argument("--ntk", choices=("plain", "weighted"), default=None,
                   help="linear1d: the NTK of the kernel test, plain grad f . grad f (Xu & "
                   "Ziyin, default) or rate-weighted (ours)")
    p.add_argument("--zeta-tol", type=float, default=None,
                   help="linear1d: a change of the cosine zeta that counts as (dis)alignment "
                   "(default 0.1)")


def _regime_options(args) -> dict:
    """Taxonomy options from --kernel-tol, --ntk, --zeta-tol (the last two: linear1d)."""
    opts = {} if args.kernel_tol is None else {"kernel_tol": args.kernel_tol}
    for name in ("ntk", "zeta_tol"):
        value = getattr(args, name, None)
        if value is None:
            continue
        if args.model != "linear1d":
            raise ValueError(f"--{name.replace('_', '-')} applies to linear1d only, "
                             f"got model {args.model!r}")
        opts[name] = value
    return opts


def _classify(args) -> int:
    from ..regimes import classify

    model = _model(args)
    opts = _regime_options(args)
    if args.t is not None or args.t_span is not None:
        try:
            traj = exact(model, _times(args), precision=args.precision)
        except ValueError:
            if args.model != "deep-linear":  # a random deep-linear init has no closed form
                raise
            traj = solve(model, _times(args))
        regime = classify(traj, **opts)
    else:
        regime = classify(model, **opts)
    print_regime(regime, args.format)
    return 0


def _family_class(name: str):
    from ..models.deep_linear import DeepLinear
    from ..models.linear import LinearNet, SingleNeuron

    return {"linear1d": Linear1D, "linear": LinearNet, "single-neuron": SingleNeuron,
            "deep-linear": DeepLinear}[name]


def _with_teacher(args, fixed: dict) -> dict:
    if args.teacher_svals is None:
        return fixed
    from ..models.deep_linear import teacher_matrix

    svals = _floats("--teacher-svals", args.teacher_svals)
    n_in = int(fixed.get("in_dim", len(svals)))
    n_out = int(fixed.get("out_dim", len(svals)))
    return {**fixed, "in_dim": n_in, "out_dim": n_out,
            "sigma_yx": teacher_matrix(svals, n_out, n_in)}


def _phase_diagram(args) -> int:
    from ..sweep import parse_axis, parse_fixed, phase_diagram

    for path in args.out:
        if not path.lower().endswith((".png", ".svg")):
            raise ValueError(f"--out must end in .png or .svg, got {path!r}")
    if args.data is not None and not args.data.lower().endswith((".json", ".npz")):
        raise ValueError(f"--data must end in .json or .npz, got {args.data!r}")
    if args.jobs is not None and args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
    x, y = parse_axis(args.x), parse_axis(args.y)
    fixed = parse_fixed(args.fixed)
    executor = client = None
    if args.scheduler is not None:
        try:
            from distributed import Client
        except ImportError:
            raise ValueError("--scheduler needs dask.distributed: pip install "
                             "'exactdyn[dask]'") from None
        try:
            client = Client(args.scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"--scheduler {args.scheduler!r}: cannot connect ({exc})") from None
        executor = client.get_executor()
    opts = _regime_options(args)
    try:
        pd = phase_diagram(_family_class(args.model), x=x, y=y,
                           fixed=_with_teacher(args, fixed), quantity=args.quantity,
                           executor=executor, cache=args.cache, method=args.method,
                           jobs=args.jobs, progress=False if args.no_progress else None, **opts)
    finally:
        if client is not None:
            client.close()
    for path in args.out:
        pd.plot(path)
    if args.data is not None:
        pd.to_npz(args.data) if args.data.lower().endswith(".npz") else pd.to_json(args.data)
    counts = ", ".join(f"{k or 'failed'} {v}" for k, v in pd.counts().items())
    print(f"{pd.model} phase diagram {len(pd.y)} x {len(pd.x)} ({pd.y_name} x {pd.x_name}, "
          f"{pd.method}): {counts}")
    if pd.predicted is not None:
        ag = pd.agreement()
        print(f"agreement with theory away from boundaries: {ag['fraction']:.4f} of "
              f"{ag['compared']} cells ({len(ag['disagreements'])} disagree)")
    if pd.failures:
        print(f"{len(pd.failures)} cells failed; first: {pd.failures[0]['error']}")
    return 0


def _report_check(argv) -> int:
    from ..report import check_derivations

    p = _Parser(prog="exactdyn report --check")
    p.add_argument("--check", required=True, metavar="DIR")
    root = p.parse_args(argv).check

    def build(report_argv):
        if report_argv[:1] == ["two-layer"]:
            from .twolayer import report_build

            return report_build(report_argv[1:])
        if report_argv[:1] == ["cnn"]:
            from .cnn import report_build as cnn_report_build

            return cnn_report_build(report_argv[1:])
        args = build_parser().parse_args(["report", *report_argv, "--out", "-"])
        return _model(args), _times(args), args.precision

    from ..report import REPORTABLE

    differing, checked = check_derivations(
        root, build, [m for m in (*MODELS, "two-layer", "cnn") if m in REPORTABLE])
    if differing:
        print("exactdyn: derivations differ from a fresh build (regenerate them with the "
              "command in each README):", file=sys.stderr)
        for name in differing:
            print(f"  {name}", file=sys.stderr)
        return 1
    print(f"derivations fresh: {', '.join(checked)}")
    return 0


def run(argv) -> int:
    if argv[:1] == ["report"] and any(a == "--check" or a.startswith("--check=") for a in argv):
        return _report_check(argv[1:])
    if argv[:1] in (["solve"], ["exact"], ["report"], ["verify"], ["classify"]) and \
            argv[1:2] == ["two-layer"]:
        from .twolayer import run as run_two_layer

        return run_two_layer(argv[0], argv[2:])
    if argv[:1] in (["solve"], ["exact"], ["report"], ["verify"]) and argv[1:2] == ["cnn"]:
        from .cnn import run as run_cnn

        return run_cnn(argv[0], argv[2:])
    args = build_parser().parse_args(argv)
    if args.command == "classify":
        return _classify(args)
    if args.command == "phase-diagram":
        return _phase_diagram(args)
    model = _model(args)
    times = _times(args)
    if args.command == "report":
        from ..report import report

        rep = report(model, args.out, times, precision=args.precision,
                     figures=not args.no_figures, regime=not args.no_regime,
                     progress=False if args.no_progress else None)
        print(f"wrote {rep.path}: " + ", ".join(rep.files))
        return 0
    if args.command == "verify":
        report = verify(model, times, precision=args.precision, rtol=args.rtol)
        if args.format == "json":
            print(json.dumps(report.to_dict()))
        elif args.format == "csv":
            print("observable,max_abs_error,max_rel_error,rel_tol,abs_tol,passed,passed_on")
            for c in report.checks:
                print(f"{c.name},{c.max_abs_error!r},{c.max_rel_error!r},{c.rel_tol!r},"
                      f"{c.abs_tol!r},{c.passed},{c.passed_on}")
        else:
            print(report.table())
        return 0 if report.passed else 1
    if args.command == "solve":
        traj = solve(model, times, method=args.method, rtol=args.rtol, atol=args.atol,
                     precision=args.precision, reduced=args.reduced,
                     progress=False if args.no_progress else None)
    else:
        traj = exact(model, times, precision=args.precision)
    print_trajectory(traj, args.format)
    return 0


#: Python API names in error messages and the command line's flags for the same thing,
#: so an error printed by the CLI names what its user can type.
_CLI_NAMES = (
    ("decoupled (LinearNet.decoupled), zero- or lambda-balanced "
     "(sqrt(eta1 eta2) (W2^T W2/eta2 - W1 W1^T/eta1) = lambda I), or have hidden width 1",
     "decoupled (--init decoupled), zero- or lambda-balanced (--init zero-balanced, --init "
     "lambda-balanced --lam L), or have hidden width 1 (--hidden 1)"),
)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        result = run(argv)
    except (_UsageError, ValueError, TypeError, IntegrationError, OverflowError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        for python_name, flag in _CLI_NAMES:
            msg = msg.replace(python_name, flag)
    except OSError as exc:  # a path that cannot be read or written (--out, --data, --cache)
        where = f" {exc.filename}" if exc.filename else ""
        msg = f"cannot use{where}: {exc.strerror or exc}"
    except MemoryError as exc:  # e.g. --width 1000000000000
        detail = str(exc).splitlines()[0] if str(exc) else "the request is too large"
        msg = f"not enough memory ({detail}); use a smaller width or fewer points"
    else:
        return 0 if result is None else result
    print(f"exactdyn: error: {msg}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
