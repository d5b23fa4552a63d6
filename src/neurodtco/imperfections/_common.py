"""Constants and small helpers shared by the imperfection models."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validate import check_range

BOLTZMANN_J_PER_K = 1.380649e-23
ELEMENTARY_CHARGE_C = 1.602176634e-19
BOLTZMANN_EV_PER_K = BOLTZMANN_J_PER_K / ELEMENTARY_CHARGE_C
ZERO_CELSIUS_K = 273.15


def kelvin(temperature_c: float, name: str = "temperature_c") -> float:
    """Convert a temperature in degrees Celsius to kelvin, refusing non-physical values."""
    check_range(name, temperature_c, -273.0, 1000.0, "degrees Celsius; chips operate around -40..150 C")
    return float(temperature_c) + ZERO_CELSIUS_K


def thermal_voltage_v(temperature_c: float) -> float:
    """kT/q (V) at a temperature in degrees Celsius."""
    return BOLTZMANN_EV_PER_K * kelvin(temperature_c)


def make_rng(seed: Any) -> np.random.Generator:
    """A NumPy generator from an int seed, a SeedSequence or an existing generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, float)) or (seed is not None and not isinstance(seed, (int, np.integer, np.random.SeedSequence))):
        raise ValueError(f"seed={seed!r} is not accepted: expected a non-negative integer")
    return np.random.default_rng(seed)


def log_window_position(g: np.ndarray, g_low: float, g_high: float) -> np.ndarray:
    """Where ``g`` sits between ``g_low`` (0) and ``g_high`` (1) on a log scale, clipped to [0, 1]."""
    g = np.maximum(np.asarray(g, dtype=np.float64), np.finfo(float).tiny)
    return np.clip(np.log(g / g_low) / math.log(g_high / g_low), 0.0, 1.0)
