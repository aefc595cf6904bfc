"""``exactdyn solve two-layer``, ``exactdyn exact two-layer``, ``exactdyn verify two-layer``,
``exactdyn report two-layer`` and ``exactdyn classify two-layer``.

    exactdyn solve two-layer --width 100 --activation tanh --beta1 1e-3 --beta2 1e-3 \\
        --data 1d-sine --t-span 0:20 --points 11
    exactdyn solve two-layer --width 1000 --gamma 2 --gamma-prime 0 --init mirrored
    exactdyn verify two-layer --width 20 --activation tanh --beta1 1e-3 --beta2 1e-3 \\
        --t-span 0:2 --points 5
    exactdyn classify two-layer --width 256 --gamma 1.75 --gamma-prime 0 --init mirrored \\
        --activation tanh --data 1d-linear --n 10 --widths 16,64,256 --seeds 0,1,2
"""

from __future__ import annotations

from ..models.twolayer import DATASETS, INITS


def add_options(p) -> None:
    """The two-layer network's options (hyperparameters, init, data)."""
    g = p.add_argument_group("two-layer hyperparameters (Luo et al.; Zhou et al.; Boursier & "
                             "Flammarion)")
    g.add_argument("--width", type=int, default=100, help="number of neurons m (default 100)")
    g.add_argument("--activation", default="relu",
                   help="relu, leaky_relu, tanh, sigmoid, softplus, silu, gelu, x_tanh, "
                   "x2_tanh, linear, or an expression in x such as 'x*tanh(x)'")
    g.add_argument("--alpha", type=float, default=1.0, help="output scale alpha > 0")
    g.add_argument("--beta1", type=float, default=None, help="init std of a (default 1)")
    g.add_argument("--beta2", type=float, default=None, help="init std of w (default 1)")
    g.add_argument("--gamma", type=float, default=None,
                   help="Luo et al.'s gamma: beta1*beta2/alpha = m^-gamma (with --gamma-prime)")
    g.add_argument("--gamma-prime", type=float, default=None,
                   help="Luo et al.'s gamma': beta1/beta2 = m^-gamma'")
    g.add_argument("--init", default="gaussian", help="one of " + ", ".join(INITS))
    g.add_argument("--seed", type=int, default=0, help="seed of the init (default 0)")
    d = p.add_argument_group("data")
    d.add_argument("--data", default="1d-sine",
                   help=f"built-in data set ({', '.join(DATASETS)}) or an .npz with X and y")
    d.add_argument("--n", type=int, default=20, help="points of a built-in data set")
    d.add_argument("--no-bias", action="store_true", help="do not append a column of ones")


def add_classify_options(p) -> None:
    """``classify two-layer``: the RD slope over widths (Luo et al.)."""
    p.add_argument("--widths", default=None,
                   help="widths of the RD fit, comma-separated (default m/4, m/2, m; "
                   "rounded to even widths of at least 4 for --init mirrored)")
    p.add_argument("--seeds", default=None,
                   help="seeds averaged per width, comma-separated (default --seed)")
    p.add_argument("--loss-fraction", type=float, default=0.05,
                   help="RD is read when the loss first reaches this fraction of its "
                   "start, in (0, 1) (default 0.05)")
    p.add_argument("--rd", default="all", choices=("all", "copy"),
                   help="RD over every input weight (all, default) or over the first copy of "
                   "a mirrored init, as Luo et al.'s code measures it (copy)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar on stderr (by default one is shown on a terminal only)")


def _int_list(name: str, text):
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"{name} must be comma-separated integers, got {text!r}") from None


def model_from_args(args):
    from ..models.twolayer import TwoLayer

    return TwoLayer(args.width, args.data, activation=args.activation, alpha=args.alpha,
                    beta1=args.beta1, beta2=args.beta2, gamma=args.gamma,
                    gamma_prime=args.gamma_prime, init=args.init, bias=not args.no_bias,
                    seed=args.seed, n=args.n)


def classify_options(args) -> dict:
    return {"widths": _int_list("--widths", args.widths),
            "seeds": _int_list("--seeds", args.seeds), "loss_fraction": args.loss_fraction,
            "rd": args.rd,
            # None: a bar on a terminal only, nothing in a log (issue 13)
            "progress": False if args.no_progress else None}
