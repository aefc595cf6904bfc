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

Bad input prints one line (``exactdyn: error: ...``) and exits with status 2. Output cut
off by its reader (``exactdyn solve ... | head``) ends quietly with status 141 (128 +
SIGPIPE, like a Unix tool killed by SIGPIPE).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .._version import __version__
from ..errors import IntegrationError
from .common import (
    _NO_PROGRESS,
    _NO_REGIME,
    _floats,
    _Parser,
    _times,
    _UsageError,
    print_order_report,
    print_regime,
    print_trajectory,
)
from .families import add_linear1d_taxonomy_options, known_families

_COMMANDS = (
    ("solve", "integrate the full gradient flow numerically",
     "Integrate the model's gradient flow (derived symbolically, lowered to numpy or "
     "mpmath; kinked activations with their kinks located)."),
    ("exact", "evaluate the closed-form solution",
     "Evaluate the model's closed form (exact, or the early-stage linearization of the "
     "two-layer networks)."),
    ("verify", "closed form against the integrator",
     "Compare closed form and integrator on every observable (exact closed forms), or the "
     "scale convergence of an early-stage closed form (init x 1, 1/2, 1/4)."),
    ("report", "write a derivation report (Markdown, LaTeX, figures)",
     "Write the derivation report of the model into --out (atomically). `exactdyn report "
     "--check DIR` instead rebuilds the reports committed in DIR and exits 1 listing the "
     "files that differ."),
    ("classify", "which regime a model shows (and theory predicts)",
     "Classify a model by its family's taxonomy (docs: papers as read); with --t / --t-span "
     "the closed-form (or integrated) trajectory at those times."),
)


def _model(args):
    """The model the parsed ``args`` describe (``args.model`` names its family)."""
    return known_families()[args.model].build(args)


def build_parser(with_families: bool = True) -> argparse.ArgumentParser:
    """The whole command line: ``exactdyn COMMAND MODEL [options]``, one option table per
    family (``exactdyn solve linear1d --help``). ``with_families=False``: the commands
    only, for ``exactdyn --help`` and ``--version`` (no model module is imported, so they
    answer at once)."""
    fams = known_families() if with_families else {}
    parser = _Parser(prog="exactdyn", description="Exact gradient-flow dynamics of small "
                     "neural networks: integrate, solve in closed form, verify.",
                     epilog="Each command takes a model and that model's own options: "
                     "exactdyn solve --help lists the models, exactdyn solve linear1d --help "
                     "its options.")
    parser.add_argument("--version", action="version", version=f"exactdyn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command, short, description in _COMMANDS:
        p = sub.add_parser(command, help=short, description=description,
                           epilog=f"exactdyn {command} MODEL --help lists that model's options.")
        if not with_families:
            continue
        models = p.add_subparsers(dest="model", required=True, metavar="MODEL",
                                  title="models", parser_class=_Parser)
        for fam in fams.values():
            if not fam.offers(command):
                continue
            fp = models.add_parser(fam.name, help=fam.summary,
                                   description=f"{description} Model: {fam.summary}.")
            fam.add_options(fp)
            _add_command_options(fp, command, fam)
    _add_phase_diagram_parser(sub, fams)
    return parser


def family_parser(command: str, model: str) -> argparse.ArgumentParser:
    """The parser of ``exactdyn COMMAND MODEL`` (its help is that family's option table)."""
    def subparsers(p):
        return next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))

    commands = subparsers(build_parser()).choices
    if command not in commands:
        raise ValueError(f"command must be one of {', '.join(commands)}; got {command!r}")
    models = subparsers(commands[command]).choices
    if model not in models:
        raise ValueError(f"exactdyn {command} takes {', '.join(models)}; got {model!r}")
    return models[model]


def _add_command_options(p, command: str, fam) -> None:
    """Times, output and the command's own options, the same for every family."""
    t = p.add_argument_group("times and output")
    if command != "classify" or fam.classify_times:
        t.add_argument("--t", help="output times, comma-separated, e.g. 0.5,1,2")
        t.add_argument("--t-span", help="START:END of evenly spaced times (default 0:10)")
        t.add_argument("--points", type=int, default=41 if command == "report" else 11,
                       help="number of times in --t-span (default "
                       f"{41 if command == 'report' else 11})")
    if command in ("solve", "exact", "verify", "report"):
        t.add_argument("--precision", type=int, default=50 if command == "report" else None,
                       help="significant digits (mpmath); default "
                       + ("50" if command == "report" else "float64"))
    if command != "report":
        t.add_argument("--format", choices=("table", "json", "csv"), default="table",
                       help="output format (default table)")
    if command in ("solve", "exact"):
        t.add_argument("--save", help="also write the whole trajectory (states and "
                       "observables) to this .npz (ed.load reads it back)")
    if command == "solve":
        from ..numeric.integrate import FLOAT_METHODS, PRECISION_METHODS

        s = p.add_argument_group("integrator")
        s.add_argument("--method", default=None, help="float64: " + ", ".join(FLOAT_METHODS)
                       + " (default DOP853); with --precision: " + ", ".join(PRECISION_METHODS))
        s.add_argument("--rtol", type=float, default=None,
                       help="relative tolerance (default 1e-12; 1e-10 with a kinked "
                       "activation)")
        s.add_argument("--atol", type=float, default=None,
                       help="absolute tolerance (default scaled to the state)")
        s.add_argument("--max-steps", type=int, default=None,
                       help="float64: most integrator steps before an error (default 200000)")
        s.add_argument("--reduced", action="store_true",
                       help="integrate the reduced equation (a family that has one)")
        s.add_argument("--no-progress", action="store_true", help=_NO_PROGRESS)
    if command == "verify":
        v = p.add_argument_group("verification")
        v.add_argument("--rtol", type=float, default=None, help="integrator relative tolerance")
        v.add_argument("--order-tol", type=float, default=None,
                       help="early-stage closed forms: pass when the fitted order >= "
                       "predicted - this (default 0.2)")
        v.add_argument("--lrs", default=None,
                       help="also check gradient descent with these steps (each dividing "
                       "the last time), e.g. 0.02,0.01,0.005,0.0025: its global error must "
                       "be of order 1 against the flow and 2 against the modified flow")
    if command == "report":
        t.add_argument("--out", required=True, help="the report's directory (replaced whole)")
        t.add_argument("--no-figures", action="store_true", help="skip figures/*.png, *.svg")
        t.add_argument("--no-regime", action="store_true", help=_NO_REGIME)
        t.add_argument("--no-progress", action="store_true", help=_NO_PROGRESS)
    if command == "classify":
        c = p.add_argument_group("taxonomy")
        if fam.kernel_tol:
            c.add_argument("--kernel-tol", type=float, default=None,
                           help="kernel / lazy / ntk if the NTK's sup relative change < this "
                           "(default 0.1)")
        if fam.add_classify_options is not None:
            fam.add_classify_options(c)


def _add_phase_diagram_parser(sub, fams) -> None:
    names = [f.name for f in fams.values() if f.phase_diagram]
    p = sub.add_parser("phase-diagram", help="regimes over a grid of two hyperparameters",
                       description="Phase diagram: measured and predicted labels and scores "
                       "over two hyperparameters (vectorized closed form where the family "
                       "has one, else one classification per cell).")
    p.add_argument("model", choices=names, metavar="MODEL",
                   help="the model family: " + ", ".join(names))
    p.add_argument("--teacher-svals", default=None,
                   help="deep-linear: teacher singular values (Sigma_yx = diag(s), out x in "
                   "from --fixed in_dim=,out_dim= or len(s)); with mode_init on an axis or "
                   "in --fixed, the decoupled init's vectorized diagram (axes also s1, s2, ...)")
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
    add_linear1d_taxonomy_options(p, prefix="linear1d: ")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar on stderr (by default one is shown on a terminal only)")


def _regime_options(args) -> dict:
    """Phase diagram: taxonomy options from --kernel-tol, --ntk, --zeta-tol (the last two:
    linear1d)."""
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


def _classify(args, fam, model) -> int:
    from ..closed_form import exact, has_closed_form
    from ..regimes import classify
    from ..solve import solve

    opts = {} if getattr(args, "kernel_tol", None) is None else {"kernel_tol": args.kernel_tol}
    if fam.classify_options is not None:
        opts.update(fam.classify_options(args))
    if fam.classify_times and (args.t is not None or args.t_span is not None):
        times = _times(args)
        try:
            closed = has_closed_form(type(model))
            traj = exact(model, times) if closed else solve(model, times)
        except ValueError:
            if not closed:
                raise
            traj = solve(model, times)  # an init the closed form does not cover
        regime = classify(traj, **opts)
    else:
        regime = classify(model, **opts)
    print_regime(regime, args.format)
    return 0


def _family_class(name: str):
    return known_families()[name].model_type


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


def report_build(argv) -> tuple:
    """``(model, times, precision)`` from a report's recorded ``argv`` (the family's name
    and its options, as ``exactdyn report`` took them)."""
    args = build_parser().parse_args(["report", *argv, "--out", "-"])
    return _model(args), _times(args), args.precision


def _report_check(argv) -> int:
    from ..report import check_derivations

    p = _Parser(prog="exactdyn report --check")
    p.add_argument("--check", required=True, metavar="DIR")
    root = p.parse_args(argv).check
    built_in = [f.name for f in known_families().values() if not f.generated]
    differing, checked = check_derivations(root, report_build, built_in)
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
    if not argv or argv[0] in ("-h", "--help", "--version"):
        build_parser(with_families=False).parse_args(argv)  # prints, exits or errs
    args = build_parser().parse_args(argv)
    if args.command == "phase-diagram":
        return _phase_diagram(args)
    from ..closed_form import exact
    from ..solve import solve
    from ..verify import verify

    fam = known_families()[args.model]
    model = fam.build(args)
    if args.command == "classify":
        return _classify(args, fam, model)
    times = _times(args)
    if args.command == "report":
        from ..report import report

        if fam.slow_regime and not args.no_regime and not args.no_progress:
            print("report: the regime section classifies the model (training runs over "
                  "several widths; --no-regime skips it) ...", file=sys.stderr, flush=True)
        rep = report(model, args.out, times, precision=args.precision,
                     figures=not args.no_figures, regime=not args.no_regime,
                     progress=False if args.no_progress else None)
        print(f"wrote {rep.path}: " + ", ".join(rep.files))
        return 0
    if args.command == "verify":
        lrs = None if args.lrs is None else _floats("--lrs", args.lrs)
        if lrs is not None and args.format == "csv":
            raise ValueError("--format csv has one row per observable, no place for the "
                             "gradient-descent check of --lrs; use --format table or json")
        report = verify(model, times, precision=args.precision, rtol=args.rtol,
                        order_tol=args.order_tol, lrs=lrs)
        if report.kind == "asymptotic" and report.gd is None:
            print_order_report(report, args.format)
        elif args.format == "json":
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
                     precision=args.precision, reduced=args.reduced, max_steps=args.max_steps,
                     progress=False if args.no_progress else None)
    else:
        traj = exact(model, times, precision=args.precision)
    if args.save is not None:
        traj.to_npz(args.save)
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


#: Exit status when the reader of stdout went away (``exactdyn ... | head``): 128 + SIGPIPE,
#: what a Unix tool killed by SIGPIPE reports, so ``set -o pipefail`` sees a cut-off
#: output as such (not 0, success; not 1 or 2, a failed verify or bad input).
EXIT_BROKEN_PIPE = 141


def _quiet_broken_pipe() -> int:
    """stdout's reader has gone: point stdout at /dev/null so that the interpreter's
    flush at exit cannot raise (and print) ``BrokenPipeError`` again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no file descriptor (a captured stdout)
        pass
    return EXIT_BROKEN_PIPE


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        result = run(argv)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except BrokenPipeError:  # exactdyn ... | head: the reader has all it wanted
        return _quiet_broken_pipe()
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
