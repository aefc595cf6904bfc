"""Command-line options and model construction for ``linear`` and ``single-neuron``.

    exactdyn solve linear --in-dim 3 --hidden 3 --out-dim 3 --teacher-svals 3,2,1
    exactdyn exact linear --teacher-svals 3,1 --init decoupled --strengths 1e-3
    exactdyn verify linear --teacher-svals 2,1 --init lambda-balanced --lam 0.5
    exactdyn exact single-neuron --in-dim 3 --delta -1 --beta 1,0.5,0
"""

from __future__ import annotations

import numpy as np

from .deep_linear import load_matrix

INITS = ("random", "decoupled", "zero-balanced", "lambda-balanced")


def add_options(p) -> None:
    g = p.add_argument_group("linear / single-neuron hyperparameters (MATH.md §2)")
    g.add_argument("--hidden", type=int, default=None, help="hidden width >= 1 (linear)")
    g.add_argument("--eta1", type=float, default=1.0, help="rate of W1 > 0 (linear)")
    g.add_argument("--eta2", type=float, default=1.0, help="rate of W2 > 0 (linear)")
    g.add_argument("--scale1", type=float, default=0.1, help="init std of W1 (random init)")
    g.add_argument("--scale2", type=float, default=0.1, help="init std of W2 (random init)")
    g.add_argument("--init", choices=INITS, default=None,
                   help="linear init family (default random; decoupled, zero-balanced and "
                   "lambda-balanced have closed forms)")
    g.add_argument("--lam", type=float, default=None, help="lambda of --init lambda-balanced")
    g.add_argument("--strengths", help="per-mode strengths of --init decoupled, e.g. 1e-3")
    g.add_argument("--frame", choices=("random", "identity"), default="random",
                   help="hidden frame R of --init decoupled: random (--seed) or identity "
                   "(exactly decoupled in float64, for high-precision checks)")
    g.add_argument("--init-scale", type=float, default=1e-2,
                   help="scale of the balanced inits (default 0.01)")
    g.add_argument("--W1", help="file with an explicit W1 (hidden x in), with --W2")
    g.add_argument("--W2", help="file with an explicit W2 (out x hidden), with --W1")
    g.add_argument("--delta", type=float, default=0.0, help="single neuron: imbalance delta")
    g.add_argument("--beta", help="single neuron: teacher beta*, comma-separated")
    g.add_argument("--product", type=float, default=1e-2,
                   help="single neuron: initial a0 |w0| > 0 (default 0.01)")
    g.add_argument("--eta-a", type=float, default=1.0, help="single neuron: rate of a > 0")


def linear_model(args, floats):
    """The LinearNet or SingleNeuron described by ``args`` (ValueError on bad input)."""
    from ..models.linear import LinearNet, SingleNeuron

    if args.model == "single-neuron":
        beta = None if args.beta is None else floats("--beta", args.beta)
        n = args.in_dim if args.in_dim is not None else (2 if beta is None else len(beta))
        sxx = None if args.sigma_xx is None else load_matrix("--sigma-xx", args.sigma_xx)
        return SingleNeuron(n, delta=args.delta, beta=beta, sigma_xx=sxx, eta_a=args.eta_a,
                            eta_w=args.eta_w, product=args.product, seed=args.seed)
    if args.teacher_svals is not None and args.sigma_yx is not None:
        raise ValueError("give either --teacher-svals or --sigma-yx, not both")
    if args.sigma_yx is not None:
        syx = load_matrix("--sigma-yx", args.sigma_yx)
    else:
        svals = floats("--teacher-svals", args.teacher_svals or "1,1,1")
        k = len(svals)
        out_dim = args.out_dim if args.out_dim is not None else k
        in_dim = args.in_dim if args.in_dim is not None else k
        if out_dim < 1 or in_dim < 1:
            raise ValueError(f"--in-dim and --out-dim must be >= 1; got {in_dim}, {out_dim}")
        if k > min(out_dim, in_dim):
            raise ValueError(f"--teacher-svals has {k} values but min(out, in) = "
                             f"{min(out_dim, in_dim)}")
        syx = np.zeros((out_dim, in_dim))
        syx[np.arange(k), np.arange(k)] = svals
    out_dim, in_dim = syx.shape
    for flag, val, want in (("--in-dim", args.in_dim, in_dim), ("--out-dim", args.out_dim,
                                                                 out_dim)):
        if val is not None and val != want:
            raise ValueError(f"{flag} {val} disagrees with Sigma_yx of shape {syx.shape}")
    sxx = None if args.sigma_xx is None else load_matrix("--sigma-xx", args.sigma_xx)
    if (args.W1 is None) != (args.W2 is None):
        raise ValueError("--W1 and --W2 go together (an explicit init needs both)")
    if args.W1 is not None:
        W1, W2 = load_matrix("--W1", args.W1), load_matrix("--W2", args.W2)
        return LinearNet.from_init(W1, W2, syx, sxx, eta1=args.eta1, eta2=args.eta2)
    hidden = args.hidden if args.hidden is not None else min(in_dim, out_dim)
    init = args.init or "random"
    if init != "random" and sxx is not None:
        raise ValueError(f"--init {init} assumes whitened inputs; drop --sigma-xx")
    if init == "decoupled":
        strengths = floats("--strengths", args.strengths or "0.001")
        return LinearNet.decoupled(syx, hidden=hidden, strengths=strengths if len(strengths) > 1
                                   else strengths[0], eta1=args.eta1, eta2=args.eta2,
                                   seed=args.seed, frame=None if args.frame == "random" else
                                   np.eye(hidden, min(hidden, in_dim, out_dim)))
    if init in ("zero-balanced", "lambda-balanced"):
        lam = 0.0 if init == "zero-balanced" else args.lam
        if lam is None:
            raise ValueError("--init lambda-balanced needs --lam")
        return LinearNet.lambda_balanced(syx, lam, hidden=hidden, scale=args.init_scale,
                                         eta1=args.eta1, eta2=args.eta2, seed=args.seed)
    return LinearNet(in_dim, hidden, out_dim, sigma_yx=syx, sigma_xx=sxx, eta1=args.eta1,
                     eta2=args.eta2, scale1=args.scale1, scale2=args.scale2, seed=args.seed)
