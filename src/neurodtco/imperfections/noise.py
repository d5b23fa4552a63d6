"""Read noise: a fresh, state-dependent conductance sample for every inference, seeded.

Read noise is a simulation option, not part of the circuit: ``neurodtco.simulate(circuit, x,
read_noise=ReadNoiseModel(...), seed=...)`` draws a noisy copy of the conductances, runs the
engine on a group of inputs with it, and repeats for the next group. ``group_size=1`` gives
every inference its own independent sample. Larger groups share one sample among
``group_size`` inferences: each inference still sees exactly the right noise distribution, so
the *expected* accuracy is unchanged, but errors inside a group are correlated, which widens the
spread of the accuracy estimate; the gain is speed for engines that refactorize a nodal matrix
per sample (``nodal``, ``ngspice``).

The noise model (per cell, standard deviation of the read conductance) follows the noise budget
of M. R. Mahmoodi, A. F. Vincent, H. Nili, D. B. Strukov, "Intrinsic bounds for computing
precision in memristor-based vector-by-matrix multipliers", IEEE Trans. Nanotechnology 19,
429-435 (2020): thermal (Johnson) noise ``4kTG df``, shot noise ``2qI df`` and a low-frequency
(1/f and random telegraph) part proportional to the current, here ``relative_sigma * G``. The
bandwidth is ``df = 1 / (2 read_time_s)``. With ``V = v_read``:

    sigma_G^2 = (relative_sigma G)^2 + (4 k T G + 2 q G V) df / V^2

so low-conductance states are relatively noisier, as measured on metal-oxide crossbars.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .._validate import check_positive, check_range
from ..circuit import Circuit
from ..engines import TEMPERATURE_KEY
from ._common import BOLTZMANN_J_PER_K, ELEMENTARY_CHARGE_C, kelvin


@dataclass(frozen=True)
class ReadNoiseModel:
    """Per-read conductance noise: a state-proportional part plus thermal and shot noise."""

    relative_sigma: float = 0.01
    read_time_s: float = 1e-7
    thermal_shot: bool = True
    temperature_c: Optional[float] = None
    group_size: int = 1

    def __post_init__(self) -> None:
        check_range("relative_sigma", self.relative_sigma, 0.0, 1.0, "sigma_G / G of the 1/f and telegraph part, e.g. 0.01")
        check_positive("read_time_s", self.read_time_s, "seconds of integration per read, e.g. 1e-7")
        if not isinstance(self.thermal_shot, bool):
            raise ValueError(f"thermal_shot={self.thermal_shot!r} is not accepted: expected true or false")
        if self.temperature_c is not None:
            kelvin(self.temperature_c)
        if isinstance(self.group_size, bool) or not isinstance(self.group_size, (int, np.integer)) or self.group_size < 1:
            raise ValueError(f"group_size={self.group_size!r} is not accepted: expected an integer >= 1 "
                             "(inferences that share one noise sample)")

    @property
    def bandwidth_hz(self) -> float:
        """Noise bandwidth of one read, ``1 / (2 read_time_s)``."""
        return 0.5 / self.read_time_s

    def sigma(self, g: np.ndarray, v_read_v: float, temperature_c: float = 25.0) -> np.ndarray:
        """Standard deviation (S) of the read conductance of cells in state ``g`` (S)."""
        g = np.asarray(g, dtype=np.float64)
        var = (self.relative_sigma * g) ** 2
        if self.thermal_shot:
            t = kelvin(self.temperature_c if self.temperature_c is not None else temperature_c)
            current_psd = 4.0 * BOLTZMANN_J_PER_K * t * g + 2.0 * ELEMENTARY_CHARGE_C * g * v_read_v
            var = var + current_psd * self.bandwidth_hz / v_read_v**2
        return np.sqrt(var)

    def sample(self, g: np.ndarray, rng: np.random.Generator, v_read_v: float, temperature_c: float = 25.0) -> np.ndarray:
        """One noisy read of every cell (conductances stay >= 0)."""
        g = np.asarray(g, dtype=np.float64)
        return np.maximum(g + self.sigma(g, v_read_v, temperature_c) * rng.standard_normal(g.shape), 0.0)

    def to_dict(self) -> dict:
        """Plain parameters (for specs and records)."""
        return {"relative_sigma": self.relative_sigma, "read_time_s": self.read_time_s,
                "thermal_shot": self.thermal_shot, "temperature_c": self.temperature_c, "group_size": int(self.group_size)}


def circuit_temperature_c(circuit: Circuit) -> float:
    """The temperature a circuit was brought to (``apply_temperature``), else 25 C."""
    return float(circuit.metadata.get(TEMPERATURE_KEY, 25.0))


def read_noise_record(circuit: Circuit, model: ReadNoiseModel) -> dict:
    """The model's parameters and the relative sigma its cells are read with (at the circuit's temperature)."""
    temp = circuit_temperature_c(circuit)
    rel = [model.sigma(g, circuit.cell.v_read_v, temp) / np.maximum(g, np.finfo(float).tiny)
           for g in circuit.conductances]
    every = np.concatenate([r.ravel() for r in rel])
    return {"kind": "read_noise", **model.to_dict(), "temperature_c": temp,
            "relative_sigma_min": float(every.min()), "relative_sigma_max": float(every.max()),
            "relative_sigma_mean": float(every.mean()),
            "sampling": "per group of group_size inferences, in the simulation (simulate(..., read_noise=...))"}


__all__ = ["ReadNoiseModel", "read_noise_record", "circuit_temperature_c"]
