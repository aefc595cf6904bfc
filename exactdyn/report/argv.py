"""The CLI arguments (after ``exactdyn report``) that rebuild a model, per family.

A report records the command that regenerates it, so each family maps its instance back
to ``exactdyn`` options; an instance the command line cannot build (explicit matrices,
non-whitened inputs, a random frame) gets ``None`` and its report says so. A family with
no builder here — every new one — has its options generated from its class's fields
(:func:`generated_args`), as the command line generates them.
"""

from __future__ import annotations

import numpy as np

from ..models.fields import field_args


def _f(x) -> str:
    return repr(float(x))


def _fs(xs) -> str:
    return ",".join(_f(x) for x in np.ravel(xs))


def _diagonal_svals(syx):
    """The diagonal of a rectangular-diagonal ``syx`` (else ``None``)."""
    syx = np.asarray(syx, dtype=float)
    d = np.zeros_like(syx)
    k = min(syx.shape)
    d[np.arange(k), np.arange(k)] = syx[np.arange(k), np.arange(k)]
    return None if not np.array_equal(d, syx) else syx[np.arange(k), np.arange(k)]


def _teacher(syx) -> list | None:
    s = _diagonal_svals(syx)
    if s is None:
        return None
    out_dim, in_dim = np.shape(syx)
    return ["--teacher-svals", _fs(s), "--in-dim", str(in_dim), "--out-dim", str(out_dim)]


def linear1d_args(model) -> list:
    args = ["linear1d"]
    for key, value in model.params.items():
        if value is None or isinstance(value, bool):
            continue
        opt = "--" + key.replace("_", "-")
        if isinstance(value, (list, tuple, np.ndarray)):
            args += [opt, _fs(value)]
        elif isinstance(value, (int, np.integer)):
            args += [opt, str(int(value))]
        else:
            args += [opt, _f(value)]
    return args


def linear_args(model) -> list | None:
    teacher = _teacher(model.sigma_yx)
    if teacher is None or model.sigma_xx is not None:
        return None
    args = ["linear", *teacher, "--hidden", str(model.hidden), "--eta1", _f(model.eta1),
            "--eta2", _f(model.eta2)]
    kind = model.init_kind
    if kind[0] == "random":
        return args + ["--scale1", _f(model.scale1), "--scale2", _f(model.scale2),
                       "--seed", str(model.seed)]
    if kind[0] == "decoupled":
        _, U, s, Vt, a, b, R = kind
        balanced = np.array_equal(b, np.sqrt(model.eta1 / model.eta2) * a)
        if not balanced or not np.array_equal(R, np.eye(*R.shape)):
            return None
        return args + ["--init", "decoupled", "--strengths", _fs(a), "--frame", "identity"]
    return None  # explicit or random balanced inits: no seed recorded to rebuild them


def single_neuron_args(model) -> list | None:
    if model.sigma_xx is not None or model._init is not None:
        return None
    return ["single-neuron", "--in-dim", str(model.in_dim), "--delta", _f(model.delta),
            "--beta", _fs(model.beta), "--eta-a", _f(model.eta_a), "--eta-w", _f(model.eta_w),
            "--product", _f(model.product), "--seed", str(model.seed)]


def deep_linear_args(model) -> list | None:
    from ..models.deep_linear import DeepLinear

    teacher = _teacher(model.sigma_yx)
    if teacher is None or model.sigma_xx is not None:
        return None
    args = ["deep-linear", *teacher, "--depth", str(model.depth), "--width", str(model.width)]
    if not model.explicit_init:
        return args + ["--sigma", _f(model.init_std), "--seed", str(model.seed)]
    # A decoupled init is an explicit one that DeepLinear.decoupled rebuilds bit for bit.
    r = min(model.out_dim, model.in_dim, model.width)
    U, _, Vt = np.linalg.svd(np.asarray(model.sigma_yx))
    W1 = model._init[0]
    a = np.diag(W1[:r] @ Vt[:r].T) if W1.shape[0] >= r else None
    if a is None or np.any(a < 0):
        return None
    try:
        again = DeepLinear.decoupled(model.depth, model.width, model.sigma_yx, a)
    except ValueError:
        return None
    if not all(np.array_equal(x, y) for x, y in zip(again._init, model._init)):
        return None
    scale = [_f(a[0])] if np.all(a == a[0]) else [_fs(a)]
    return args + ["--decoupled", *scale]


def two_layer_args(model) -> list | None:
    if model.data_name is None or model.beta1 is None or model.seed is None:
        return None  # explicit data or weights
    return ["two-layer", "--width", str(model.width), "--activation", model.act.name,
            "--alpha", _f(model.alpha), "--beta1", _f(model.beta1), "--beta2", _f(model.beta2),
            "--init", model.init, "--data", model.data_name, "--n", str(model.n),
            *([] if model.bias else ["--no-bias"]), "--seed", str(model.seed)]


def cnn_args(model) -> list | None:
    """Options of ``exactdyn report cnn``: the model's, then its data's
    (``model.data_args``, set by the CLI; else the default synthetic images when the
    images are exactly :func:`~exactdyn.models.datasets.synthetic_images` with data seed 0)."""
    if model.seed is None or model.scale is None:
        return None  # explicit kernels and readout
    data = getattr(model, "data_args", None)
    if data is None:
        from ..models.datasets import synthetic_images

        n, H, Wd, C = model.images.shape
        if H != Wd or n < 2:
            return None
        try:
            x, y = synthetic_images(n, H, Wd, C, 0)
        except ValueError:
            return None
        if not (np.array_equal(x, model.images) and np.array_equal(y, model.y)):
            return None
        data = ["--data", "synthetic", "--n", str(n), "--image-size", str(H),
                "--in-channels", str(C), "--data-seed", "0"]
    return ["cnn", "--channels", str(model.channels), "--kernel-size", str(model.kernel_size),
            "--scale", _f(model.scale), "--activation", model.act.name, "--init", model.init,
            "--padding", model.padding, "--alpha", _f(model.alpha), "--seed", str(model.seed),
            *data]


def generated_args(model) -> list | None:
    """``[cli-name, options...]`` of a family whose command-line options are generated
    from its class's fields (:mod:`exactdyn.models.fields`): every field as typed, or
    ``None`` when the fields do not rebuild this instance (an explicit init)."""
    name = getattr(type(model), "name", None)
    if not isinstance(name, str) or not name:
        return None
    options = field_args(model)
    return None if options is None else [name.replace("_", "-"), *options]


def model_args(model) -> list | None:
    """``[cli-name, options...]`` rebuilding ``model``, or ``None`` when the CLI cannot."""
    from ..models.cnn import TwoLayerCNN
    from ..models.deep_linear import DeepLinear
    from ..models.linear import LinearNet, SingleNeuron
    from ..models.linear1d import Linear1D
    from ..models.twolayer import TwoLayer

    builders = {Linear1D: linear1d_args, LinearNet: linear_args,
                SingleNeuron: single_neuron_args, DeepLinear: deep_linear_args,
                TwoLayer: two_layer_args, TwoLayerCNN: cnn_args}
    builder = next((builders[c] for c in type(model).__mro__ if c in builders), None)
    return generated_args(model) if builder is None else builder(model)
