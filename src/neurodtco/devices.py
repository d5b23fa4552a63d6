"""Resistive memory cell models: how a programmed state turns a voltage into a current.

Every cell is described by its *read conductance* ``G``: the chord conductance ``I(V_read)/V_read``
at the read voltage. Weights map to read conductances; a cell model then says what current flows
at any other voltage. For a linear cell that is ``G * V``; for the gap-based ReRAM model it is
``I0 exp(-gap/g0) sinh(V/V0)``, with the gap chosen so that the chord conductance at ``V_read``
equals ``G``. Keeping ``G`` as the one state variable lets defects ("stuck at G_max") and mappings
be written once for every cell model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import numpy as np

from ._validate import check_positive, check_range


@dataclass(frozen=True)
class LinearCell:
    """An ohmic cell, ``I = G V``, programmable in ``[1/r_off_ohm, 1/r_on_ohm]``."""

    r_on_ohm: float = 10e3
    r_off_ohm: float = 1e6
    v_read_v: float = 0.2

    def __post_init__(self) -> None:
        _check_window(self.r_on_ohm, self.r_off_ohm, self.v_read_v)

    @property
    def name(self) -> str:
        """Short identifier used in configs and netlists."""
        return "linear"

    @property
    def g_min(self) -> float:
        """Lowest programmable read conductance (S)."""
        return 1.0 / self.r_off_ohm

    @property
    def g_max(self) -> float:
        """Highest programmable read conductance (S)."""
        return 1.0 / self.r_on_ohm

    @property
    def is_linear(self) -> bool:
        """True when the current is proportional to the voltage."""
        return True

    def current(self, g: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Current (A) through cells of read conductance ``g`` (S) at voltage ``v`` (V)."""
        return np.asarray(g) * np.asarray(v)

    def differential_conductance(self, g: np.ndarray, v: np.ndarray) -> np.ndarray:
        """dI/dV (S) at voltage ``v``."""
        return np.broadcast_to(np.asarray(g, dtype=float), np.broadcast(g, v).shape).copy()


@dataclass(frozen=True)
class GapReRAMCell:
    """Gap-based metal-oxide ReRAM: ``I = I0 exp(-gap/g0) sinh(V/V0)``.

    Source of the default parameters: the Stanford-PKU RRAM compact model (X. Guan, S. Yu,
    H.-S. P. Wong, "A SPICE compact model of metal oxide resistive switching memory with
    variations", IEEE Electron Device Letters 33(10), 2012; Verilog-A release "Stanford RRAM
    model" on nanoHUB, 2014): I0 = 1 mA, g0 = 0.25 nm, V0 = 0.25 V. The published gap range is
    0.1-1.7 nm; the default window R_off = 1 Mohm at 0.2 V needs a gap of about 2.1 nm, so the
    accepted gap range here is bounded by the oxide thickness (5 nm in the same model) instead.
    """

    r_on_ohm: float = 10e3
    r_off_ohm: float = 1e6
    v_read_v: float = 0.2
    i0_a: float = 1e-3
    g0_m: float = 0.25e-9
    v0_v: float = 0.25
    oxide_thickness_m: float = 5e-9

    def __post_init__(self) -> None:
        _check_window(self.r_on_ohm, self.r_off_ohm, self.v_read_v)
        check_positive("i0_a", self.i0_a, "a current in amperes, e.g. 1e-3")
        check_positive("g0_m", self.g0_m, "a length in metres, e.g. 0.25e-9")
        check_positive("v0_v", self.v0_v, "a voltage in volts, e.g. 0.25")
        check_positive("oxide_thickness_m", self.oxide_thickness_m, "a length in metres, e.g. 5e-9")
        for label, g in (("r_on_ohm", self.g_max), ("r_off_ohm", self.g_min)):
            gap = float(self.gap_from_conductance(np.array(g)))
            if not 0.0 <= gap <= self.oxide_thickness_m:
                raise ValueError(
                    f"{label} needs a gap of {gap * 1e9:.3g} nm, outside the oxide [0, "
                    f"{self.oxide_thickness_m * 1e9:.3g}] nm; choose a resistance window the "
                    f"gap model can reach (i0_a={self.i0_a}, g0_m={self.g0_m})"
                )

    @property
    def name(self) -> str:
        """Short identifier used in configs and netlists."""
        return "gap"

    @property
    def g_min(self) -> float:
        """Lowest programmable read conductance (S)."""
        return 1.0 / self.r_off_ohm

    @property
    def g_max(self) -> float:
        """Highest programmable read conductance (S)."""
        return 1.0 / self.r_on_ohm

    @property
    def is_linear(self) -> bool:
        """True when the current is proportional to the voltage."""
        return False

    @property
    def shape_factor(self) -> float:
        """``V_read / sinh(V_read/V0)``: turns a read conductance into the sinh prefactor."""
        return self.v_read_v / math.sinh(self.v_read_v / self.v0_v)

    def current(self, g: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Current (A) through cells of read conductance ``g`` (S) at voltage ``v`` (V)."""
        return np.asarray(g) * self.shape_factor * np.sinh(np.asarray(v) / self.v0_v)

    def differential_conductance(self, g: np.ndarray, v: np.ndarray) -> np.ndarray:
        """dI/dV (S) at voltage ``v``."""
        return np.asarray(g) * self.shape_factor / self.v0_v * np.cosh(np.asarray(v) / self.v0_v)

    def gap_from_conductance(self, g: np.ndarray) -> np.ndarray:
        """Filament gap (m) whose chord conductance at ``V_read`` is ``g`` (S)."""
        prefactor = np.asarray(g, dtype=float) * self.shape_factor
        return -self.g0_m * np.log(prefactor / self.i0_a)

    def conductance_from_gap(self, gap: np.ndarray) -> np.ndarray:
        """Read conductance (S) of a cell with filament gap ``gap`` (m)."""
        return self.i0_a * np.exp(-np.asarray(gap, dtype=float) / self.g0_m) / self.shape_factor


CellModel = Union[LinearCell, GapReRAMCell]

CELL_MODELS = {"linear": LinearCell, "gap": GapReRAMCell}


def make_cell(name: str, **params: float) -> CellModel:
    """Build a cell model by name (``linear`` or ``gap``) with its parameters."""
    try:
        cls = CELL_MODELS[name]
    except KeyError:
        raise ValueError(f"unknown cell model {name!r}; choose one of {sorted(CELL_MODELS)}") from None
    return cls(**params)


def _check_window(r_on: float, r_off: float, v_read: float) -> None:
    check_positive("r_on_ohm", r_on, "a resistance in ohms, e.g. 10e3")
    check_positive("r_off_ohm", r_off, "a resistance in ohms, e.g. 1e6")
    if r_on >= r_off:
        raise ValueError(
            f"r_on_ohm={r_on:g} must be below r_off_ohm={r_off:g}: the on state is the low "
            "resistance one (default 10e3 and 1e6 ohm)"
        )
    check_positive("v_read_v", v_read, "a read voltage in volts, e.g. 0.2")
    check_range("v_read_v", v_read, 0.0, 5.0, "volts; ReRAM reads stay well below the set voltage")
