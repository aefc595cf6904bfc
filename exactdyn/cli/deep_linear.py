"""Command-line options of the deep linear network (``exactdyn ... deep-linear``).

    exactdyn solve deep-linear --depth 3 --width 16 --teacher-svals 3,2,1 --gamma 2
    exactdyn exact deep-linear --depth 4 --teacher-svals 3,2,1 --decoupled 0.01
    exactdyn verify deep-linear --sigma-yx teacher.npy --decoupled 0.1

Matrices are read from ``.npy`` or whitespace-separated ``.txt`` files; weights for an
explicit init from an ``.npz`` file holding ``W1``, ..., ``WL``.
"""

from __future__ import annotations

import os

import numpy as np

from ..models.deep_linear import DeepLinear, teacher_matrix
from .common import _floats, given_fields


def add_init_options(p) -> None:
    """The explicit and decoupled inits of ``deep-linear`` (the hyperparameters are
    generated from DeepLinear's fields, see :mod:`.families`)."""
    g = p.add_argument_group("init (default random, from --gamma or --sigma and --seed)")
    g.add_argument("--weights", default=None, help="explicit init: .npz with W1, ..., WL")
    g.add_argument("--decoupled", default=None, help="decoupled balanced init with per-layer "
                   "mode scale(s) a, e.g. 0.01 or 0.01,0.02,0.03 (has a closed form)")


def load_matrix(option: str, path: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise ValueError(f"{option}: no such file {path!r}")
    try:
        if path.endswith(".npy"):
            m = np.load(path, allow_pickle=False)
        else:
            m = np.loadtxt(path, ndmin=2)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{option}: cannot read a matrix from {path!r} ({exc})") from None
    return np.atleast_2d(np.asarray(m, dtype=float))


def model_from_args(args) -> DeepLinear:
    if (args.teacher_svals is None) == (args.sigma_yx is None):
        raise ValueError("deep-linear needs exactly one of --teacher-svals 3,2,1 or "
                         "--sigma-yx FILE")
    if args.sigma_yx is not None:
        syx = load_matrix("--sigma-yx", args.sigma_yx)
    else:
        s = _floats("--teacher-svals", args.teacher_svals)
        out_dim = len(s) if args.out_dim is None else args.out_dim
        in_dim = len(s) if args.in_dim is None else args.in_dim
        syx = teacher_matrix(s, out_dim, in_dim)
    out_dim, in_dim = syx.shape
    for opt, given, have in (("--out-dim", args.out_dim, out_dim), ("--in-dim", args.in_dim,
                                                                     in_dim)):
        if given is not None and given != have:
            raise ValueError(f"{opt} {given} disagrees with Sigma_yx of shape {syx.shape}")
    sxx = load_matrix("--sigma-xx", args.sigma_xx) if args.sigma_xx is not None else None
    if args.weights is not None and args.decoupled is not None:
        raise ValueError("give either --weights or --decoupled, not both")
    if args.weights is not None:
        if not os.path.isfile(args.weights):
            raise ValueError(f"--weights: no such file {args.weights!r}")
        try:
            data = np.load(args.weights, allow_pickle=False)
            names = sorted((k for k in data.files if k[:1] == "W" and k[1:].isdigit()),
                           key=lambda k: int(k[1:]))
        except (OSError, ValueError) as exc:
            raise ValueError(f"--weights: cannot read {args.weights!r} ({exc})") from None
        if not names:
            raise ValueError(f"--weights: {args.weights!r} holds no arrays named W1, W2, ...")
        return DeepLinear.from_init([data[k] for k in names], syx, sxx)
    kwargs = given_fields(args, DeepLinear, skip=("in_dim", "out_dim"))
    if args.decoupled is not None:
        for random_only in ("gamma", "sigma", "seed"):
            if random_only in kwargs:
                raise ValueError(f"--{random_only} draws the random init; --decoupled gives "
                                 "the init")
        a = _floats("--decoupled", args.decoupled)
        return DeepLinear.decoupled(kwargs.get("depth", 3), kwargs.get("width", 16), syx,
                                    a[0] if len(a) == 1 else a, sxx)
    return DeepLinear(in_dim=in_dim, out_dim=out_dim, sigma_yx=syx, sigma_xx=sxx, **kwargs)
