"""Stapper's negative-binomial yield, and the effective alpha a Monte-Carlo yield implies.

With ``lambda`` expected stuck cells per die and a per-die density multiplier Gamma(alpha, 1/alpha),
the number of stuck cells is negative-binomial and the share of dies without one is
``Y = (1 + lambda / alpha)^-alpha`` (``lambda = A D0`` with ``A`` the cells' area; ``alpha = inf``
gives Poisson's ``exp(-lambda)``).
"""

from __future__ import annotations

import math

import numpy as np

from ..circuit import Circuit
from .field import DefectField
from .geometry import Wafer


def stapper_yield(mean_defects: float, alpha: float) -> float:
    """``(1 + mean_defects / alpha)^-alpha`` (``exp(-mean_defects)`` for ``alpha = inf``)."""
    if mean_defects < 0 or not alpha > 0:
        raise ValueError(f"mean_defects={mean_defects!r} must be >= 0 and alpha={alpha!r} > 0")
    if math.isinf(alpha):
        return math.exp(-mean_defects)
    return math.exp(-alpha * math.log1p(mean_defects / alpha))


def field_stapper_yield(field: DefectField, circuit: Circuit, wafer: Wafer) -> float:
    """Stapper's yield of ``field`` on dies of ``circuit``, averaged over the wafer's dies (radial gradient included).

    Each die's expected defect count is taken at its centre (the arrays are small against the
    wafer). "Any stuck cell kills the die": a stuck cell is ``1 - exp(-lambda_cell)``, so the die
    survives with ``exp(-sum lambda_cell)`` for a given multiplier, exactly Stapper's integrand.
    """
    r = np.hypot(*wafer.centers_mm().T)
    mean = field.d0_per_cell * circuit.n_cells * field.radial(r, wafer.usable_radius_mm)
    return float(np.mean([stapper_yield(float(m), field.alpha) for m in mean]))


def effective_alpha(yield_: float, mean_defects: float) -> float:
    """The alpha for which Stapper's formula gives ``yield_`` at ``mean_defects`` (inf at or below Poisson's yield)."""
    if not 0 < yield_ < 1 or not mean_defects > 0:
        raise ValueError(f"yield_={yield_!r} must lie in (0, 1) and mean_defects={mean_defects!r} be > 0")
    if yield_ <= math.exp(-mean_defects):
        return math.inf
    from scipy.optimize import brentq

    # Stapper's yield falls monotonically from 1 (alpha -> 0) to exp(-lambda) (alpha -> inf).
    return math.exp(brentq(lambda t: stapper_yield(mean_defects, math.exp(t)) - yield_, -30.0, 30.0))
