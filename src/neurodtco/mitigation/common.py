"""Small shared helpers: circuit accuracy through an engine, seeds, log-interpolated crossings."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..circuit import Circuit
from ..data import Dataset, to_voltages
from ..engines import get_engine


def resolve_engine(engine: Any) -> Any:
    """An engine instance from a name or an instance."""
    return get_engine(engine) if isinstance(engine, str) else engine


def circuit_accuracy(circuit: Circuit, dataset: Dataset, engine: Any = "ideal", split: str = "test",
                     return_power: bool = False) -> Any:
    """Accuracy of ``circuit`` simulated by ``engine`` on the test (or train) images.

    With ``return_power`` it returns ``(accuracy, mean array power in W)``: the power drawn from the
    row drivers of every array, averaged over the images (the engines' ``power_w``).
    """
    if split not in ("test", "train"):
        raise ValueError(f"split={split!r} is not accepted: choose 'test' or 'train'")
    x, y = (dataset.x_test, dataset.y_test) if split == "test" else (dataset.x_train, dataset.y_train)
    result = resolve_engine(engine).run(circuit, to_voltages(x, circuit.input_scale_v), return_power=return_power)
    acc = result.accuracy(y)
    if return_power:
        return acc, float(np.mean(result.power_w))
    return acc


def drop_crossing(levels: Sequence[float], values: Sequence[float], threshold: float) -> float:
    """The level at which ``values`` first falls below ``threshold`` (log-linear interpolation).

    ``levels`` ascend. Returns ``nan`` when even the first level is already below (the crossing
    lies below the grid) and ``inf`` when no level falls below (the crossing lies above it).
    """
    levels = np.asarray(levels, dtype=float)
    values = np.asarray(values, dtype=float)
    if levels.ndim != 1 or levels.shape != values.shape or np.any(np.diff(levels) <= 0):
        raise ValueError("levels must be a strictly ascending 1-D grid with one value each")
    below = np.flatnonzero(values < threshold)
    if below.size == 0:
        return math.inf
    i = int(below[0])
    if i == 0:
        return math.nan
    a, b = levels[i - 1], levels[i]
    va, vb = values[i - 1], values[i]
    t = (va - threshold) / (va - vb)
    if a > 0:
        return float(math.exp(math.log(a) + t * (math.log(b) - math.log(a))))
    return float(a + t * (b - a))


def check_seed(seed: Any) -> int:
    """Refuse a seed that is not a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} is not accepted: expected an integer >= 0")
    return int(seed)
