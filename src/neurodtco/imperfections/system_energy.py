"""Energy and latency of a whole inference: op-amps, arrays and input drivers.

A fully analog network settles layer after layer: layer ``l`` cannot settle before its inputs
(layer ``l-1``'s outputs) have, so the latency of one inference is the sum of the layers'
settling times (a layer read once per output position of a convolution counts that many
times). Over that latency:

* **op-amps**: every op-amp is biased the whole time (a static class-A bias, no power gating),
  so their energy is ``n_opamps * P_opamp * latency``. ``schedule="per_layer"`` is the lower
  bound where each layer's op-amps are biased only while that layer settles
  (``sum_l n_l * P_opamp * t_l``).
* **arrays**: the row drivers' power into the cells and wires (``SimulationResult.power_w``)
  for the whole latency: ``energy_per_inference_j(result, read_time_s=latency)``. The nodal engine
  reports it for every circuit, tiled or not; ``ideal_wire_power_w`` is the closed form it reduces
  to with ideal wires. A layer read several times (a convolution) is driven for the whole latency
  too, at its mean read power: its part of ``SimulationResult.layer_power_w`` (the sum over its
  reads) divided by its reads.
* **drivers**: the input drivers charge the first layer's word lines from 0 V to their input
  voltage once per inference: ``sum_rows C_row V_row^2`` (a driver whose supply equals the
  drive voltage: half stored, half lost in the driver); a first layer that is a convolution, once
  per output position, each patch charged from 0 V (an upper bound). Hidden word lines are charged by the
  neurons' output stages, whose supply current is already counted in ``P_opamp``; bias rows
  hold one voltage and are charged once, not per inference.

The capacitances live in ``ArrayParasitics`` with their sources (``docs/energy.md``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Sequence

import numpy as np

from .._validate import check_non_negative, check_positive
from ..circuit import Circuit, Crossbar, Layer

Schedule = Literal["always_on", "per_layer"]

#: Three op-amps per neuron: two transimpedance stages and the difference stage.
OPAMPS_PER_NEURON = 3


@dataclass(frozen=True)
class ArrayParasitics:
    """Capacitances of the arrays (F), and the last layer's output load.

    Defaults (sources in ``docs/energy.md``): ``wire_capacitance_f_per_m`` 0.2 fF/um, the local
    interconnect capacitance NeuroSim uses at its 45 nm-class nodes (ITRS-based); ``cell_pitch_m``
    0.2 um, an assumption for a 1T1R cell whose access transistor sets the pitch (about 4.4 F at
    F = 45 nm); ``cell_capacitance_f`` 1 fF, an assumption: a parallel-plate estimate of a
    100 nm x 100 nm HfO2 stack (k ~ 20, 5 nm: 0.35 fF) plus the access transistor's drain junction,
    rounded up; ``output_load_f`` 50 fF, an assumption for the read-out's input.
    """

    cell_capacitance_f: float = 1e-15
    wire_capacitance_f_per_m: float = 0.2e-15 / 1e-6
    cell_pitch_m: float = 0.2e-6
    output_load_f: float = 50e-15

    def __post_init__(self) -> None:
        check_non_negative("cell_capacitance_f", self.cell_capacitance_f, "farads per cell, e.g. 1e-15")
        check_non_negative("wire_capacitance_f_per_m", self.wire_capacitance_f_per_m,
                           "farads per metre of wire, e.g. 2e-10 (0.2 fF/um)")
        check_positive("cell_pitch_m", self.cell_pitch_m, "metres between neighbouring cells, e.g. 0.2e-6")
        check_non_negative("output_load_f", self.output_load_f, "farads on each output of the last layer, e.g. 50e-15")

    @property
    def segment_capacitance_f(self) -> float:
        """Capacitance of one wire segment (one cell pitch of word or bit line) to ground."""
        return self.wire_capacitance_f_per_m * self.cell_pitch_m

    @property
    def per_cell_line_capacitance_f(self) -> float:
        """What each cell adds to the capacitance of its word line: its own plus one wire segment."""
        return self.cell_capacitance_f + self.segment_capacitance_f

    def to_dict(self) -> dict:
        """Plain dictionary (for JSON output)."""
        return {**asdict(self), "segment_capacitance_f": self.segment_capacitance_f}


def word_line_capacitance_f(layer: Layer, parasitics: ArrayParasitics) -> np.ndarray:
    """Capacitance (F) of each input row's word lines, over all column tiles: cells plus wire."""
    return np.full(layer.n_inputs, layer.n_columns * parasitics.per_cell_line_capacitance_f)


def opamps_per_layer(circuit: Circuit) -> list[int]:
    """Op-amps of each layer: three per neuron, and for ``summing`` tiles a transimpedance stage per row tile."""
    counts = []
    for layer in circuit.layers:
        if layer.tiling is not None and layer.tiling.combine == "summing":
            # each row tile has its own TIA per column, then one summer per column of the pair
            row_tiles = layer.tiling.grid_shape[0]
            counts.append(layer.n_outputs * (2 * row_tiles + 2 + 1))
        else:
            counts.append(layer.n_outputs * OPAMPS_PER_NEURON)
    return counts


def reads_per_layer(circuit: Circuit) -> list[int]:
    """How many times each layer is read per inference (output positions of a convolution, else 1)."""
    reads = [0] * circuit.n_layers
    for stage in circuit.stage_list():
        if isinstance(stage, Crossbar):
            reads[stage.layer] = 1 if stage.conv is None else stage.conv.n_positions
    return reads


@dataclass(frozen=True)
class SystemEnergy:
    """Energy per inference (J) of the whole system, its parts and the latency (s)."""

    layer_settling_s: tuple[float, ...]
    layer_reads: tuple[int, ...]
    layer_opamps: tuple[int, ...]
    opamp_power_w: float
    array_power_w: float
    latency_s: float
    opamps_j: float
    arrays_j: float
    drivers_j: float
    schedule: str

    @property
    def total_j(self) -> float:
        """Sum of the parts."""
        return self.opamps_j + self.arrays_j + self.drivers_j

    @property
    def opamp_share(self) -> float:
        """Fraction of the total spent in the op-amps."""
        return self.opamps_j / self.total_j

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary with the derived totals."""
        return {**asdict(self), "total_j": self.total_j, "opamp_share": self.opamp_share,
                "n_opamps": int(sum(self.layer_opamps))}


def driver_energy_j(circuit: Circuit, inputs_v: Any, parasitics: ArrayParasitics) -> np.ndarray:
    """Energy (J) the input drivers spend charging the first layer's word lines, per inference."""
    x = circuit.check_inputs(inputs_v)
    stage = circuit.stage_list()[0]
    first = circuit.layers[stage.layer]
    if stage.conv is None:
        return (x ** 2) @ word_line_capacitance_f(first, parasitics)
    # every output position's read drives its patch onto the word lines, charged from 0 V (an upper bound)
    per_read = (stage.conv.patches(x) ** 2) @ word_line_capacitance_f(first, parasitics)
    return per_read.reshape(len(x), -1).sum(axis=1)


def ideal_wire_power_w(circuit: Circuit, inputs_v: Any, hidden_v: Sequence[Any]) -> np.ndarray:
    """Row drivers' power (W) per inference with ideal wires and op-amps: ``sum G V_row^2`` over the cells.

    Every bit line sits at a virtual ground, so a cell draws ``G V_row`` whatever tile it is in;
    ``hidden_v`` are the hidden layers' outputs (``simulate(..., return_hidden=True)``). The nodal
    engine's ``power_w`` with ideal wires and op-amps (tiled or not); with resistive wires an estimate.
    """
    if any(not isinstance(s, Crossbar) or s.conv is not None for s in circuit.stage_list()):
        raise ValueError("ideal_wire_power_w takes a chain of dense layers; this circuit has convolution, pooling "
                         "or residual stages")
    x = circuit.check_inputs(inputs_v)
    if len(hidden_v) != circuit.n_layers - 1:
        raise ValueError(f"hidden_v needs the outputs of the {circuit.n_layers - 1} hidden layers; got {len(hidden_v)}")
    power = np.zeros(len(x))
    for layer, inputs in zip(circuit.layers, [x] + [np.asarray(h, dtype=np.float64) for h in hidden_v]):
        power += (layer.row_voltages(inputs) ** 2) @ layer.conductance.sum(axis=1)
    return power


def array_power_per_inference_w(circuit: Circuit, array_power_w: Any, reads: np.ndarray) -> np.ndarray:
    """Power ``[inputs]`` the arrays draw over the latency: per layer its reads' sum over its reads."""
    power = np.asarray(array_power_w, dtype=np.float64)
    if not np.all(np.isfinite(power)) or np.any(power < 0):
        raise ValueError("array_power_w must hold finite powers >= 0 (W), one per inference (or per inference "
                         "and layer)")
    if power.ndim == 2 and power.shape[1] == circuit.n_layers:
        return power @ (1.0 / reads)
    if power.ndim != 1:
        raise ValueError(f"array_power_w of shape {power.shape} is not accepted: expected [inputs] or "
                         f"[inputs, {circuit.n_layers}] (one column per layer: SimulationResult.layer_power_w)")
    if np.any(reads > 1):
        raise ValueError(f"this circuit reads its layers {reads.tolist()} times per inference: a total power "
                         "cannot say which reads it sums; pass the power per layer (SimulationResult.layer_power_w "
                         "of the nodal engine)")
    return power


def system_energy(circuit: Circuit, array_power_w: Any, inputs_v: Any, layer_settling_s: Sequence[float],
                  opamp_power_w: float, parasitics: ArrayParasitics = ArrayParasitics(),
                  schedule: Schedule = "always_on") -> SystemEnergy:
    """Energy per inference (mean over ``inputs_v``) of op-amps, arrays and drivers, from measured settling times.

    ``array_power_w``: the arrays' power for each input, ``[inputs]`` (``SimulationResult.power_w``
    of a run with ``return_power=True``) when every layer is read once, or per layer
    ``[inputs, n_layers]`` (``SimulationResult.layer_power_w``, each layer's reads added), which a
    circuit with convolutions needs; ``layer_settling_s``: one settling time
    per layer (``periphery.settling``); ``opamp_power_w``: the supply power of one op-amp (the
    characterization's ``power_w``).
    """
    settling = np.asarray(layer_settling_s, dtype=np.float64)
    if settling.shape != (circuit.n_layers,) or not np.all(np.isfinite(settling)) or np.any(settling <= 0):
        raise ValueError(f"layer_settling_s={list(layer_settling_s)!r} is not accepted: expected {circuit.n_layers} "
                         "positive settling times (s), one per layer")
    check_positive("opamp_power_w", opamp_power_w, "watts per op-amp, e.g. 6.2e-4")
    if schedule not in ("always_on", "per_layer"):
        raise ValueError(f"schedule={schedule!r} is not accepted: choose 'always_on' (op-amps biased for the whole "
                         "latency) or 'per_layer' (biased only while their layer settles)")
    reads = np.asarray(reads_per_layer(circuit))
    opamps = np.asarray(opamps_per_layer(circuit))
    per_layer_s = reads * settling
    latency = float(per_layer_s.sum())
    if schedule == "always_on":
        opamps_j = float(opamps.sum()) * opamp_power_w * latency
    else:
        opamps_j = float(np.dot(opamps, per_layer_s)) * opamp_power_w
    power = array_power_per_inference_w(circuit, array_power_w, reads)
    arrays = power * latency  # energy_per_inference_j at a read time equal to the latency
    drivers = driver_energy_j(circuit, inputs_v, parasitics)
    if len(arrays) != len(drivers):
        raise ValueError(f"array_power_w holds {len(arrays)} inferences but inputs_v {len(drivers)}: "
                         "simulate the same inputs")
    return SystemEnergy(layer_settling_s=tuple(float(s) for s in settling), layer_reads=tuple(int(r) for r in reads),
                        layer_opamps=tuple(int(n) for n in opamps), opamp_power_w=float(opamp_power_w),
                        array_power_w=float(np.mean(power)), latency_s=latency, opamps_j=opamps_j,
                        arrays_j=float(np.mean(arrays)), drivers_j=float(np.mean(drivers)), schedule=schedule)


__all__ = ["ArrayParasitics", "OPAMPS_PER_NEURON", "Schedule", "SystemEnergy", "array_power_per_inference_w",
           "driver_energy_j", "ideal_wire_power_w",
           "opamps_per_layer", "reads_per_layer", "system_energy", "word_line_capacitance_f"]
