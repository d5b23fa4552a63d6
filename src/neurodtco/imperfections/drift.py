"""Conductance drift over time: the power law ``G(t) = G0 (t / t0)^-nu`` with a spread of ``nu``.

The power law with a per-device drift exponent is the established retention model of
phase-change memory (D. Ielmini, A. L. Lacaita, D. Mantegazza, "Recovery and drift dynamics of
resistance and threshold voltages in phase-change memories", IEEE Trans. Electron Devices 54(2),
2007; with state-dependent, normally distributed ``nu`` in V. Joshi et al., "Accurate deep neural
network inference using computational phase-change memory", Nature Communications 11, 2473,
2020). Metal-oxide ReRAM relaxes far less; give it a small ``nu`` fitted to retention data.
``t0_s`` is the time of the programming verify read, so ``time_s = t0_s`` is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validate import check_non_negative, check_positive, check_range
from ..circuit import Circuit


@dataclass(frozen=True)
class PowerLawDrift:
    """``G(t) = G0 (t/t0)^-nu``, ``nu`` drawn per cell from N(nu, nu_sigma) and clipped at 0."""

    time_s: float
    nu: float = 0.05
    nu_sigma: float = 0.0
    t0_s: float = 1.0

    def __post_init__(self) -> None:
        check_positive("t0_s", self.t0_s, "seconds after programming of the reference read, e.g. 1")
        check_positive("time_s", self.time_s, "seconds after programming")
        if self.time_s < self.t0_s:
            raise ValueError(f"time_s={self.time_s:g} is before t0_s={self.t0_s:g}: the power law holds for t >= t0")
        check_range("nu", self.nu, 0.0, 1.0, "the drift exponent; PCM about 0.05-0.1, ReRAM much smaller")
        check_non_negative("nu_sigma", self.nu_sigma, "device-to-device spread of nu")

    def exponents(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Drift exponent of every cell (clipped at 0: conductance never grows back)."""
        if self.nu_sigma == 0:
            return np.full(shape, self.nu)
        return np.maximum(self.nu + self.nu_sigma * rng.standard_normal(shape), 0.0)

    def apply(self, g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Conductances after ``time_s``."""
        g = np.asarray(g, dtype=np.float64)
        return g * (self.time_s / self.t0_s) ** (-self.exponents(g.shape, rng))


def apply_drift(circuit: Circuit, model: PowerLawDrift, rng: np.random.Generator) -> tuple[Circuit, dict]:
    """The circuit ``model.time_s`` after programming, and a record of the change."""
    before = circuit.conductances
    after = [model.apply(g, rng) for g in before]
    ratio = np.concatenate([(a / np.maximum(b, np.finfo(float).tiny)).ravel() for a, b in zip(after, before)])
    record = {"kind": "drift", "time_s": model.time_s, "nu": model.nu, "nu_sigma": model.nu_sigma, "t0_s": model.t0_s,
              "conductance_factor_mean": float(ratio.mean()), "conductance_factor_min": float(ratio.min())}
    return circuit.with_conductances(after), record


__all__ = ["PowerLawDrift", "apply_drift"]
