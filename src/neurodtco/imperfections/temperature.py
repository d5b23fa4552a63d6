"""Temperature: state-dependent cell conductance (metal-oxide ReRAM or eFlash) and wire resistance.

Every model is a pure ``Circuit -> Circuit`` transform: the cells keep the state they were
programmed to at the reference temperature, and their read conductance moves with the
temperature as the model says. Wires follow a linear temperature coefficient of resistance.
Because only conductances and resistances change, every engine sees the effect.

Models (parameters are representative values, to be refitted to a given device):

* ``ReRAMThermalModel``: two conduction channels weighted by the state. Low-conductance states
  conduct by thermally activated transport (hopping / trap-assisted tunnelling, conductance
  rises with temperature as ``exp(-Ea/kT)``); high-conductance states hold a metallic-like
  filament whose resistance rises linearly with temperature. Measurements on HfO2, NiO and
  TiO2-based cells show exactly this change of sign of the temperature coefficient from the
  high- to the low-resistance state (C. Walczyk et al., "Impact of temperature on the resistive
  switching behavior of embedded HfO2-based RRAM devices", IEEE Trans. Electron Devices 58(9),
  2011; U. Russo, D. Ielmini, C. Cagli, A. L. Lacaita, "Filament conduction and reset mechanism
  in NiO-based resistive-switching memory (RRAM) devices", IEEE Trans. Electron Devices 56(2),
  2009). The metallic weight of a state grows with ``log G`` from ``g_activated_s`` to
  ``g_metallic_s`` (default: one conductance quantum 2e^2/h = 77.5 uS, the usual boundary
  between metallic filaments and tunnelling gaps). So the temperature coefficient is
  state-dependent and crosses zero inside the window: the "choice of memory states" lever.
  By default every state's activated channel shares one activation energy. That is an
  idealization with a consequence: anything that follows one activated conductance (a tracking
  feedback resistor of the same material) then cancels the temperature of every low state
  exactly. ``activation_energy_slope_ev_per_decade`` lets the energy change with the state
  (``Ea(G) = Ea + slope log10(G / g_activated_s)``, clipped at zero) to test that cancellation.
* ``EFlashThermalModel``: a floating-gate cell read in subthreshold,
  ``I = I0 exp((Vg - Vt) / (n kT/q))`` (the analog eFlash vector-matrix multipliers of
  X. Guo, F. Merrikh Bayat, M. Prezioso, Y. Chen, B. Nguyen, N. Do, D. B. Strukov,
  "Temperature-insensitive analog vector-by-matrix multiplier based on 55 nm NOR flash memory
  cells", IEEE CICC 2017). A cell tuned to ``G_ref`` at ``T_ref`` has the gate overdrive
  ``Vg - Vt = n kT_ref/q ln(G_ref/G_th)``; at ``T`` its conductance is
  ``G_th (T/T_ref)^m exp((Vg - Vt - dVt/dT (T - T_ref)) / (n kT/q))``. With ``m = 0`` and no
  threshold shift this is ``G_th (G_ref/G_th)^(T_ref/T)``: deep-subthreshold states move most.
* ``WireThermalModel``: ``R(T) = R_ref (1 + alpha (T - T_ref))``; copper's alpha = 0.0039 /K
  (CRC Handbook of Chemistry and Physics, resistivity of metals; thin damascene lines have a
  somewhat lower coefficient).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Optional, Union

import numpy as np

from .._validate import check_positive, check_range
from ..circuit import Circuit, Layer
from ..engines import TEMPERATURE_KEY
from ._common import BOLTZMANN_EV_PER_K, kelvin

CONDUCTANCE_QUANTUM_S = 7.748091729e-5  # 2 e^2 / h
COPPER_TCR_PER_K = 0.0039


@dataclass(frozen=True)
class ReRAMThermalModel:
    """State-dependent temperature response of metal-oxide ReRAM (activated + metallic channels)."""

    t_ref_c: float = 25.0
    activation_energy_ev: float = 0.1
    metallic_tcr_per_k: float = 1.0e-3
    g_activated_s: float = 1.0e-6
    g_metallic_s: float = CONDUCTANCE_QUANTUM_S
    activation_energy_slope_ev_per_decade: float = 0.0

    def __post_init__(self) -> None:
        kelvin(self.t_ref_c, "t_ref_c")
        check_range("activation_energy_ev", self.activation_energy_ev, 0.0, 2.0,
                    "eV; hopping in oxides is typically 0.02-0.3 eV")
        check_range("activation_energy_slope_ev_per_decade", self.activation_energy_slope_ev_per_decade, -1.0, 1.0,
                    "eV per decade of conductance above g_activated_s; negative when more conductive states "
                    "are less activated, 0 for one activation energy shared by every state")
        check_range("metallic_tcr_per_k", self.metallic_tcr_per_k, -0.01, 0.01,
                    "1/K; metallic filaments are about +1e-3 /K")
        check_positive("g_activated_s", self.g_activated_s, "siemens; fully activated below this state")
        check_positive("g_metallic_s", self.g_metallic_s, "siemens; fully metallic above this state")
        if self.g_metallic_s <= self.g_activated_s:
            raise ValueError(f"g_metallic_s={self.g_metallic_s:g} must exceed g_activated_s={self.g_activated_s:g}")

    def metallic_fraction(self, g_ref: np.ndarray) -> np.ndarray:
        """Weight of the metallic channel of each state, 0 (activated) to 1 (metallic)."""
        g = np.maximum(np.asarray(g_ref, dtype=np.float64), np.finfo(float).tiny)
        return np.clip(np.log(g / self.g_activated_s) / math.log(self.g_metallic_s / self.g_activated_s), 0.0, 1.0)

    def activation_energy(self, g_ref: np.ndarray) -> np.ndarray:
        """Activation energy (eV) of the activated channel of each state, never below zero."""
        g = np.maximum(np.asarray(g_ref, dtype=np.float64), np.finfo(float).tiny)
        decades = np.maximum(np.log10(g / self.g_activated_s), 0.0)
        return np.maximum(self.activation_energy_ev + self.activation_energy_slope_ev_per_decade * decades, 0.0)

    def factor(self, g_ref: np.ndarray, temperature_c: float) -> np.ndarray:
        """``G(T) / G(T_ref)`` of cells programmed to ``g_ref`` at the reference temperature."""
        t, t_ref = kelvin(temperature_c), kelvin(self.t_ref_c, "t_ref_c")
        metal = 1.0 + self.metallic_tcr_per_k * (t - t_ref)
        if metal <= 0:
            raise ValueError(f"temperature_c={temperature_c} drives the metallic resistance factor to {metal:g} <= 0; "
                             "the linear coefficient is not valid that far from t_ref_c")
        activated = np.exp(-self.activation_energy(g_ref) / BOLTZMANN_EV_PER_K * (1.0 / t - 1.0 / t_ref))
        m = self.metallic_fraction(g_ref)
        return m / metal + (1.0 - m) * activated

    def conductance(self, g_ref: np.ndarray, temperature_c: float) -> np.ndarray:
        """Read conductance (S) at ``temperature_c`` of cells programmed to ``g_ref`` at ``t_ref_c``."""
        return np.asarray(g_ref, dtype=np.float64) * self.factor(g_ref, temperature_c)

    def temperature_coefficient(self, g_ref: np.ndarray) -> np.ndarray:
        """``d ln G / dT`` (1/K) at the reference temperature: positive for activated states."""
        t_ref = kelvin(self.t_ref_c, "t_ref_c")
        m = self.metallic_fraction(g_ref)
        return -m * self.metallic_tcr_per_k + (1.0 - m) * self.activation_energy(g_ref) / (BOLTZMANN_EV_PER_K * t_ref**2)


@dataclass(frozen=True)
class EFlashThermalModel:
    """Subthreshold eFlash cell: ``I = I0 exp((Vg - Vt) / (n kT/q))`` at a fixed read gate voltage."""

    t_ref_c: float = 25.0
    slope_factor: float = 1.5
    g_threshold_s: Optional[float] = None
    vt_tc_v_per_k: float = 0.0
    mobility_exponent: float = 0.0

    def __post_init__(self) -> None:
        kelvin(self.t_ref_c, "t_ref_c")
        check_range("slope_factor", self.slope_factor, 1.0, 5.0, "the subthreshold slope factor n, typically 1.2-2")
        if self.g_threshold_s is not None:
            check_positive("g_threshold_s", self.g_threshold_s, "siemens at Vg = Vt; None uses the window's g_max")
        check_range("vt_tc_v_per_k", self.vt_tc_v_per_k, -0.01, 0.01, "V/K; MOS thresholds move about -1 mV/K")
        check_range("mobility_exponent", self.mobility_exponent, -3.0, 3.0, "exponent m of I0 ~ T^m")

    def overdrive_v(self, g_ref: np.ndarray, g_threshold_s: float) -> np.ndarray:
        """Gate overdrive ``Vg - Vt`` (V, negative in subthreshold) that gives ``g_ref`` at ``t_ref_c``."""
        vt_ref = BOLTZMANN_EV_PER_K * kelvin(self.t_ref_c, "t_ref_c")
        g = np.maximum(np.asarray(g_ref, dtype=np.float64), np.finfo(float).tiny)
        return self.slope_factor * vt_ref * np.log(g / g_threshold_s)

    def conductance(self, g_ref: np.ndarray, temperature_c: float, g_threshold_s: Optional[float] = None) -> np.ndarray:
        """Read conductance (S) at ``temperature_c`` of cells tuned to ``g_ref`` at ``t_ref_c``."""
        g_th = self._threshold(g_threshold_s)
        t, t_ref = kelvin(temperature_c), kelvin(self.t_ref_c, "t_ref_c")
        overdrive = self.overdrive_v(g_ref, g_th) - self.vt_tc_v_per_k * (t - t_ref)
        g = g_th * (t / t_ref) ** self.mobility_exponent * np.exp(overdrive / (self.slope_factor * BOLTZMANN_EV_PER_K * t))
        return np.where(np.asarray(g_ref) > 0, g, 0.0)

    def factor(self, g_ref: np.ndarray, temperature_c: float, g_threshold_s: Optional[float] = None) -> np.ndarray:
        """``G(T) / G(T_ref)``."""
        g_ref = np.asarray(g_ref, dtype=np.float64)
        g = self.conductance(g_ref, temperature_c, g_threshold_s)
        return np.divide(g, g_ref, out=np.ones_like(g), where=g_ref > 0)

    def temperature_coefficient(self, g_ref: np.ndarray, g_threshold_s: Optional[float] = None) -> np.ndarray:
        """``d ln G / dT`` (1/K) at the reference temperature."""
        g_th = self._threshold(g_threshold_s)
        t_ref = kelvin(self.t_ref_c, "t_ref_c")
        n_vt = self.slope_factor * BOLTZMANN_EV_PER_K * t_ref
        return (-self.overdrive_v(g_ref, g_th) / (n_vt * t_ref) - self.vt_tc_v_per_k / n_vt
                + self.mobility_exponent / t_ref)

    def _threshold(self, g_threshold_s: Optional[float]) -> float:
        g_th = self.g_threshold_s if self.g_threshold_s is not None else g_threshold_s
        if g_th is None:
            raise ValueError("g_threshold_s is not set: give the conductance at Vg = Vt (siemens)")
        check_positive("g_threshold_s", g_th, "siemens at Vg = Vt")
        return float(g_th)


@dataclass(frozen=True)
class WireThermalModel:
    """Linear temperature coefficient of the word- and bit-line resistance (copper by default)."""

    tcr_per_k: float = COPPER_TCR_PER_K
    t_ref_c: float = 25.0

    def __post_init__(self) -> None:
        check_range("tcr_per_k", self.tcr_per_k, -0.01, 0.01, "1/K; copper 0.0039, aluminium 0.0043")
        kelvin(self.t_ref_c, "t_ref_c")

    def factor(self, temperature_c: float) -> float:
        """``R(T) / R(T_ref)``."""
        factor = 1.0 + self.tcr_per_k * (kelvin(temperature_c) - kelvin(self.t_ref_c, "t_ref_c"))
        if factor <= 0:
            raise ValueError(f"temperature_c={temperature_c} gives a wire resistance factor {factor:g} <= 0")
        return factor


CellThermalModel = Union[ReRAMThermalModel, EFlashThermalModel]
TECHNOLOGIES = ("reram", "eflash")


def thermal_model(technology: str, **params: Any) -> CellThermalModel:
    """The cell temperature model of a technology (``reram`` or ``eflash``) with its parameters."""
    if technology == "reram":
        return ReRAMThermalModel(**params)
    if technology == "eflash":
        return EFlashThermalModel(**params)
    raise ValueError(f"technology={technology!r} is not accepted: choose one of {list(TECHNOLOGIES)}")


def apply_temperature(
    circuit: Circuit,
    temperature_c: float,
    cell_model: CellThermalModel = ReRAMThermalModel(),
    wire_model: Optional[WireThermalModel] = WireThermalModel(),
    feedback_tcr_per_k: float = 0.0,
) -> tuple[Circuit, dict]:
    """The circuit at ``temperature_c``: cells, wires (and optionally feedback resistors) follow it."""
    check_range("feedback_tcr_per_k", feedback_tcr_per_k, -0.01, 0.01,
                "1/K of the TIA feedback resistors; 0 for temperature-compensated resistors")
    kelvin(temperature_c)
    wire = wire_model.factor(temperature_c) if wire_model is not None else 1.0
    t_ref = cell_model.t_ref_c
    feedback = 1.0 + feedback_tcr_per_k * (temperature_c - t_ref)
    if feedback <= 0:
        raise ValueError(f"feedback_tcr_per_k={feedback_tcr_per_k} gives a non-positive feedback resistor at {temperature_c} C")
    g_max = circuit.cell.g_max
    factors = []

    def heat(_: int, layer: Layer) -> Layer:
        if isinstance(cell_model, EFlashThermalModel):
            g = cell_model.conductance(layer.conductance, temperature_c, g_threshold_s=g_max)
        else:
            g = cell_model.conductance(layer.conductance, temperature_c)
        ratio = np.divide(g, layer.conductance, out=np.ones_like(g), where=layer.conductance > 0)
        factors.append(ratio)
        neuron = layer.neuron
        if feedback != 1.0:
            neuron = replace(neuron, feedback_resistance_ohm=neuron.feedback_resistance_ohm * feedback)
        return layer.replace(conductance=g, r_word_ohm=layer.r_word_ohm * wire, r_bit_ohm=layer.r_bit_ohm * wire,
                             neuron=neuron)

    hot = circuit.map_layers(heat)
    hot = hot.replace(metadata={**circuit.metadata, TEMPERATURE_KEY: float(temperature_c)})
    every = np.concatenate([f.ravel() for f in factors])
    record = {
        "kind": "temperature",
        "temperature_c": float(temperature_c),
        "t_ref_c": float(t_ref),
        "technology": "eflash" if isinstance(cell_model, EFlashThermalModel) else "reram",
        "conductance_factor_min": float(every.min()),
        "conductance_factor_max": float(every.max()),
        "conductance_factor_mean": float(every.mean()),
        "wire_factor": float(wire),
        "feedback_factor": float(feedback),
    }
    return hot, record


__all__ = [
    "CONDUCTANCE_QUANTUM_S", "COPPER_TCR_PER_K", "ReRAMThermalModel", "EFlashThermalModel", "WireThermalModel",
    "thermal_model", "apply_temperature", "TECHNOLOGIES",
]
