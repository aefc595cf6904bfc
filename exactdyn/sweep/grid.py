"""Axes of a hyperparameter grid: validation and the ``NAME=START:END:SCALE:N`` syntax."""

from __future__ import annotations

import numpy as np

from .._validation import show

#: Most points on one axis: a phase diagram computes every cell, so an axis of 10^8 points
#: (a typo for 10^2) would run for days; more than this is refused with a clear message.
MAX_AXIS_POINTS = 10_000


def axis_values(name: str, values, allowed) -> np.ndarray:
    """Check one axis: a known parameter name and a non-empty, finite 1-D array."""
    if name not in allowed:
        raise ValueError(f"unknown parameter name {name!r}; allowed: {', '.join(allowed)}")
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"values of {name} must be numbers, got {show(values)}") from None
    arr = np.atleast_1d(arr)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"values of {name} must be a non-empty 1-D sequence, got shape "
                         f"{arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"values of {name} must be finite, got {arr[~np.isfinite(arr)][0]!r}")
    if arr.size > MAX_AXIS_POINTS:
        raise ValueError(f"axis {name} has {arr.size} values; at most {MAX_AXIS_POINTS} per "
                         f"axis")
    return arr


def parse_axis(text: str) -> tuple:
    """``"sigma_u=1e-3:1e1:log:100"`` -> ``("sigma_u", values)``.

    ``SCALE`` is ``log`` (geometric, both ends > 0) or ``lin``; ``NAME=v1,v2,...`` lists
    values explicitly.
    """
    if "=" not in text:
        raise ValueError(f"axis must be NAME=START:END:SCALE:N or NAME=v1,v2,..., got {show(text)}")
    name, spec = (s.strip() for s in text.split("=", 1))
    if ":" not in spec:
        items = spec.split(",")
        if len(items) > 1 and any(not v.strip() for v in items):
            raise ValueError(f"axis {name} has an empty item (two commas in a row, or a comma "
                             f"at an end): {spec!r}")
        try:
            vals = [float(v) for v in items if v.strip()]
        except ValueError:
            raise ValueError(f"axis {name} values must be numbers, got {show(spec)}") from None
        if not vals:
            raise ValueError(f"axis {name} has an empty range {spec!r}")
        return name, np.array(vals)
    parts = spec.split(":")
    if len(parts) != 4:
        raise ValueError(f"axis {name} must be START:END:SCALE:N like 1e-3:1e1:log:100, "
                         f"got {show(spec)}")
    try:
        start, end, n = float(parts[0]), float(parts[1]), int(parts[3])
    except ValueError:
        raise ValueError(f"axis {name} needs numbers START, END and an integer N, "
                         f"got {show(spec)}") from None
    return name, make_range(name, start, end, parts[2], n)


def make_range(name, start, end, scale, n) -> np.ndarray:
    """``n`` values from ``start`` to ``end``, ``scale`` ``"log"`` or ``"lin"``."""
    if not (np.isfinite(start) and np.isfinite(end)):
        raise ValueError(f"axis {name} range must be finite, got {start}:{end}")
    if n < 1:
        raise ValueError(f"axis {name} needs N >= 1 points, got {n}")
    if n > MAX_AXIS_POINTS:
        raise ValueError(f"axis {name} asks for {n} points; at most {MAX_AXIS_POINTS} per axis")
    if scale == "log":
        if start <= 0 or end <= 0:
            raise ValueError(f"axis {name}: a log range needs both ends > 0, got {start}:{end}")
        return np.geomspace(start, end, n)
    if scale == "lin":
        return np.linspace(start, end, n)
    raise ValueError(f"axis {name} scale must be 'log' or 'lin', got {show(scale)}")


def parse_fixed(items) -> dict:
    """``["width=64", "eta_u=1,seed=3"]`` -> ``{"width": 64.0, ...}``."""
    out = {}
    for item in items or ():
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise ValueError(f"--fixed must be NAME=VALUE, got {show(part)}")
            k, v = (s.strip() for s in part.split("=", 1))
            try:
                out[k] = float(v)
            except ValueError:
                raise ValueError(f"--fixed {k} must be a number, got {show(v)}") from None
    return out
