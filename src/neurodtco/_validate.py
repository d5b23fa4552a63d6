"""Checks that name the bad value and what is accepted."""

from __future__ import annotations

import math

import numpy as np


def check_positive(name: str, value: float, accepted: str) -> None:
    """Refuse a value that is not a finite number above zero."""
    if not _is_real(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}={value!r} is not accepted: expected a positive finite number ({accepted})")


def check_non_negative(name: str, value: float, accepted: str) -> None:
    """Refuse a value that is negative or not finite."""
    if not _is_real(value) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}={value!r} is not accepted: expected a finite number >= 0 ({accepted})")


def check_range(name: str, value: float, low: float, high: float, accepted: str) -> None:
    """Refuse a value outside ``[low, high]``."""
    if not _is_real(value) or not low <= value <= high:
        raise ValueError(f"{name}={value!r} is not accepted: expected a number in [{low:g}, {high:g}] ({accepted})")


def check_finite_array(name: str, array: np.ndarray) -> None:
    """Refuse arrays with NaN or infinity, naming where the first bad entry is."""
    if not np.all(np.isfinite(array)):
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise ValueError(f"{name} has a non-finite entry at index {where}: {array[where]!r}; all values must be finite")


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
