"""Checks of user input: each failure is a ValueError (or TypeError) naming the
parameter, the value received and what is allowed. Nothing is clipped."""

from __future__ import annotations

import math
import numbers

import numpy as np


def show(value) -> str:
    """``value`` for a message: numpy scalars and arrays as plain numbers (``-1.0``, not
    ``np.float64(-1.0)``), everything else as its ``repr``."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        if value.size <= 12 and value.dtype.kind in "biuf":
            return repr(value.tolist())
        with np.printoptions(threshold=12, edgeitems=3):
            return np.array2string(value, separator=", ")
    return repr(value)


def real(name: str, value) -> float:
    """A finite real number, returned as float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if isinstance(value, np.ndarray) and value.shape == () and np.isrealobj(value):
            value = value.item()
        else:
            raise TypeError(f"{name} must be a real number, got {show(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {show(value)}")
    return value


def positive(name: str, value) -> float:
    value = real(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {show(value)}")
    return value


def nonnegative(name: str, value) -> float:
    value = real(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {show(value)}")
    return value


def nonzero(name: str, value) -> float:
    value = real(name, value)
    if value == 0:
        raise ValueError(f"{name} must be nonzero, got {show(value)}")
    return value


def positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise TypeError(f"{name} must be an integer >= 1, got {show(value)}")
    value = int(value)
    if value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {show(value)}")
    return value


def seed(name: str, value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer or None, got {show(value)}")
    return int(value)


def finite_vector(name: str, value) -> np.ndarray:
    """A 1-D, non-empty, finite float64 vector."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a 1-D array of real numbers, got {show(value)}") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must have at least one entry (width >= 1)")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got non-finite entries in {show(arr)}")
    return arr


def finite_matrix(name: str, value, shape=None) -> np.ndarray:
    """A finite, non-empty, read-only float64 matrix (of ``shape`` when given; a vector is
    reshaped when ``shape`` has a 1 in it)."""
    try:
        arr = np.array(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a 2-D array of real numbers, got {show(value)}") from exc
    if arr.ndim == 1 and shape is not None and 1 in shape:
        arr = arr.reshape(shape)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (a matrix), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")
    arr.setflags(write=False)
    return arr


def times(name: str, value) -> np.ndarray:
    """Output times: a finite, non-negative, non-decreasing 1-D array (a scalar is allowed)."""
    try:
        arr = np.atleast_1d(np.asarray(value, dtype=float))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be real times, got {show(value)}") from exc
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of times, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {show(arr)}")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0 (the flow starts at t = 0), got {show(arr.min())}")
    if np.any(np.diff(arr) < 0):
        raise ValueError(f"{name} must be non-decreasing")
    return arr


def precision(name: str, value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be None (float64) or an integer number of digits, got {show(value)}")
    if not 16 <= value <= 2000:
        raise ValueError(f"{name} must be between 16 and 2000 significant digits, "
                         f"got {show(value)}")
    return int(value)


def choice(name: str, value, allowed) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; "
                         f"got {show(value)}")
    return value


def nonnegative_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise TypeError(f"{name} must be an integer >= 0, got {show(value)}")
    value = int(value)
    if value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {show(value)}")
    return value


def boolean(name: str, value) -> bool:
    """``True`` or ``False`` (numpy's ``bool_`` too); anything else, a string ``"False"``
    or the number 0 included, is a TypeError rather than read by its truth value."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r}")
