"""``exactdyn solve cnn``, ``exactdyn exact cnn``, ``exactdyn verify cnn`` and
``exactdyn report cnn``.

    exactdyn solve cnn --channels 8 --kernel-size 3 --scale 1e-3 --activation tanh \\
        --data synthetic --n 64 --t-span 0:10 --points 11
    exactdyn exact cnn --images x.npy --labels y.npy --kernel-size 3 --t 1,2,4
    exactdyn verify cnn --channels 4 --n 16 --image-size 6 --scale 1e-3 --t-span 0:0.3 \\
        --points 3
    exactdyn report cnn --channels 4 --n 32 --scale 1e-3 --t-span 0:0.6 --points 7 \\
        --out derivations/cnn
"""

from __future__ import annotations

import os

import numpy as np

from ..models.cnn import INITS, PADDINGS


def add_options(p) -> None:
    """The CNN's options (hyperparameters, init, data)."""
    g = p.add_argument_group("cnn hyperparameters (Zhou et al. arXiv:2305.09947)")
    g.add_argument("--channels", type=int, default=8, help="number of kernels M (default 8)")
    g.add_argument("--kernel-size", type=int, default=3, help="kernel side s (default 3)")
    g.add_argument("--scale", type=float, default=1e-3, help="init std of every weight > 0")
    g.add_argument("--activation", default="tanh",
                   help="tanh (default), gelu, silu, softplus, linear, ... or an expression "
                   "in x such as 'tanh(x) + x**3/10'")
    g.add_argument("--init", default="gaussian", help="one of " + ", ".join(INITS))
    g.add_argument("--padding", default="valid", help="one of " + ", ".join(PADDINGS))
    g.add_argument("--alpha", type=float, default=1.0, help="output scale alpha > 0 (1)")
    g.add_argument("--seed", type=int, default=0, help="seed of the init (default 0)")
    d = p.add_argument_group("data")
    d.add_argument("--data", default=None,
                   help="synthetic: exactdyn.models.datasets.synthetic_images, horizontal (+1) "
                   "against vertical (-1) stripes (the default without --images)")
    d.add_argument("--n", type=int, default=64, help="number of synthetic images (64)")
    d.add_argument("--image-size", type=int, default=8, help="side of synthetic images (8)")
    d.add_argument("--in-channels", type=int, default=1, help="channels of synthetic images")
    d.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic images")
    d.add_argument("--images", help="images as .npy, N x H x W x C (or N x H x W)")
    d.add_argument("--labels", help="labels as .npy, length N (with --images)")
    d.add_argument("--channels-first", action="store_true",
                   help="--images is N x C x H x W")


def _load_npy(option: str, path: str) -> np.ndarray:
    if not path.endswith(".npy"):
        raise ValueError(f"{option} must be a .npy file; got {path!r}")
    if not os.path.exists(path):
        raise ValueError(f"{option} file {path!r} does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{option} file {path!r} is not a readable .npy array: {exc}") \
            from None


def data_from_args(args):
    """``(images, y)`` from ``--data synthetic`` or ``--images``/``--labels``."""
    if args.images is not None or args.labels is not None:
        if args.data is not None:
            raise ValueError("give either --data or --images/--labels, not both")
        if args.images is None or args.labels is None:
            raise ValueError("--images and --labels go together")
        return _load_npy("--images", args.images), _load_npy("--labels", args.labels)
    data = "synthetic" if args.data is None else args.data
    if data != "synthetic":
        raise ValueError(f"--data must be 'synthetic' (or use --images/--labels); got {data!r}")
    from ..models.datasets import synthetic_images

    return synthetic_images(args.n, args.image_size, args.image_size, args.in_channels,
                            args.data_seed)


def data_args(args) -> list:
    """The data options of ``args`` spelled out (recorded in a report's command)."""
    if args.images is not None:
        return ["--images", args.images, "--labels", args.labels,
                *(["--channels-first"] if args.channels_first else [])]
    return ["--data", "synthetic", "--n", str(args.n), "--image-size", str(args.image_size),
            "--in-channels", str(args.in_channels), "--data-seed", str(args.data_seed)]


def model_from_args(args):
    from ..models.cnn import TwoLayerCNN

    images, y = data_from_args(args)
    model = TwoLayerCNN(args.channels, args.kernel_size, images, y, activation=args.activation,
                        scale=args.scale, seed=args.seed, channels_first=args.channels_first,
                        padding=args.padding, init=args.init, alpha=args.alpha)
    model = model.with_data_args(data_args(args))
    return model
