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


def add_init_options(p) -> None:
    """The named inits of ``linear`` (the hyperparameters are generated from LinearNet's
    fields, see :mod:`.families`)."""
    g = p.add_argument_group("init (default random, from --scale1, --scale2, --seed)")
    g.add_argument("--init", choices=INITS, default=None,
                   help="init family (default random; decoupled, zero-balanced and "
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


def linear_model(args, floats):
    """The LinearNet or SingleNeuron described by ``args`` (ValueError on bad input)."""
    from ..models.linear import LinearNet, SingleNeuron
    from .common import given_fields

    if args.model == "single-neuron":
        kwargs = given_fields(args, SingleNeuron)
        beta = None if args.beta is None else floats("--beta", args.beta)
        if beta is not None:
            kwargs.setdefault("in_dim", len(beta))
        sxx = None if args.sigma_xx is None else load_matrix("--sigma-xx", args.sigma_xx)
        return SingleNeuron(beta=beta, sigma_xx=sxx, **kwargs)
    kwargs = given_fields(args, LinearNet, skip=("in_dim", "hidden", "out_dim"))
    rates = {k: kwargs[k] for k in ("eta1", "eta2") if k in kwargs}
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
        return LinearNet.from_init(W1, W2, syx, sxx, **rates)
    hidden = args.hidden if args.hidden is not None else min(in_dim, out_dim)
    init = args.init or "random"
    if init != "random" and sxx is not None:
        raise ValueError(f"--init {init} assumes whitened inputs; drop --sigma-xx")
    if init == "decoupled":
        strengths = floats("--strengths", args.strengths or "0.001")
        return LinearNet.decoupled(syx, hidden=hidden, strengths=strengths if len(strengths) > 1
                                   else strengths[0], **rates, seed=kwargs.get("seed", 0),
                                   frame=None if args.frame == "random" else
                                   np.eye(hidden, min(hidden, in_dim, out_dim)))
    if init in ("zero-balanced", "lambda-balanced"):
        lam = 0.0 if init == "zero-balanced" else args.lam
        if lam is None:
            raise ValueError("--init lambda-balanced needs --lam")
        return LinearNet.lambda_balanced(syx, lam, hidden=hidden, scale=args.init_scale,
                                         **rates, seed=kwargs.get("seed", 0))
    return LinearNet(in_dim, hidden, out_dim, sigma_yx=syx, sigma_xx=sxx, **kwargs)
