"""Wafers and dies: the die grid inside the usable circle, each die's position in millimetres.

Coordinates: the wafer centre is ``(0, 0)`` mm, ``x`` to the right, ``y`` up. Dies sit on a grid
whose lines pass through the centre: die ``(i, j)`` covers ``[i w, (i + 1) w] x [j h, (j + 1) h]``
for a die of width ``w`` and height ``h``; ``(die_x, die_y) = (i, j)`` names it in defect-map
files. A die is on the wafer when all four of its corners lie inside the usable circle of radius
``diameter / 2 - edge_exclusion``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
import numpy as np

from .._validate import check_positive

DieKey = tuple[int, int, int]  # (wafer, die_x, die_y)


@dataclass(frozen=True)
class Die:
    """One die: its grid indices and its centre on the wafer (mm)."""

    die_x: int
    die_y: int
    center_mm: tuple[float, float]

    def key(self, wafer: int) -> DieKey:
        """``(wafer, die_x, die_y)``, the die's name in a defect-map file."""
        return (int(wafer), self.die_x, self.die_y)


@dataclass(frozen=True)
class Wafer:
    """A round wafer cut into rectangular dies, with an edge band where no die is kept."""

    diameter_mm: float = 300.0
    die_width_mm: float = 10.0
    die_height_mm: float = 10.0
    edge_exclusion_mm: float = 3.0

    def __post_init__(self) -> None:
        check_positive("diameter_mm", self.diameter_mm, "millimetres (300 for a 12-inch wafer)")
        check_positive("die_width_mm", self.die_width_mm, "millimetres")
        check_positive("die_height_mm", self.die_height_mm, "millimetres")
        if not (isinstance(self.edge_exclusion_mm, (int, float)) and 0 <= self.edge_exclusion_mm < self.diameter_mm / 2):
            raise ValueError(f"edge_exclusion_mm={self.edge_exclusion_mm!r} is not accepted: expected millimetres in "
                             f"[0, {self.diameter_mm / 2:g}) (below the wafer's radius)")
        if not self.dies:
            raise ValueError(f"no {self.die_width_mm:g} x {self.die_height_mm:g} mm die fits inside the usable circle "
                             f"of radius {self.usable_radius_mm:g} mm: use smaller dies or a smaller edge exclusion")

    @property
    def usable_radius_mm(self) -> float:
        """Radius of the circle inside which dies are kept."""
        return self.diameter_mm / 2.0 - self.edge_exclusion_mm

    @property
    def die_area_cm2(self) -> float:
        """Area of one die (cm^2)."""
        return self.die_width_mm * self.die_height_mm / 100.0

    @property
    def dies(self) -> tuple[Die, ...]:
        """Every die fully inside the usable circle, ordered by ``die_y`` then ``die_x``."""
        return _dies(self.diameter_mm, self.die_width_mm, self.die_height_mm, self.edge_exclusion_mm)

    @property
    def n_dies(self) -> int:
        """Dies per wafer."""
        return len(self.dies)

    def centers_mm(self) -> np.ndarray:
        """Die centres ``[n_dies, 2]`` as ``(x, y)`` in mm."""
        return np.array([d.center_mm for d in self.dies], dtype=np.float64).reshape(-1, 2)

    def keys(self, n_wafers: int = 1) -> list[DieKey]:
        """``(wafer, die_x, die_y)`` of every die of wafers ``0 .. n_wafers - 1``."""
        return [die.key(w) for w in range(n_wafers) for die in self.dies]


@lru_cache(maxsize=64)
def _dies(diameter_mm: float, w: float, h: float, edge_mm: float) -> tuple[Die, ...]:
    radius = diameter_mm / 2.0 - edge_mm
    n_x, n_y = math.ceil(radius / w), math.ceil(radius / h)
    out = []
    for j in range(-n_y, n_y):
        for i in range(-n_x, n_x):
            # The corner farthest from the centre decides whether the die fits.
            far_x = max(abs(i * w), abs((i + 1) * w))
            far_y = max(abs(j * h), abs((j + 1) * h))
            if math.hypot(far_x, far_y) <= radius:
                out.append(Die(i, j, ((i + 0.5) * w, (j + 0.5) * h)))
    return tuple(out)


def wafers_needed(wafer: Wafer, n_dies: int) -> int:
    """Wafers needed to hold ``n_dies`` dies."""
    if isinstance(n_dies, bool) or not isinstance(n_dies, (int, np.integer)) or n_dies < 1:
        raise ValueError(f"n_dies={n_dies!r} is not accepted: expected an integer >= 1")
    return math.ceil(n_dies / wafer.n_dies)
