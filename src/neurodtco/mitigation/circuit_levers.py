"""Circuit levers: differential pairs vs one shared reference column, op-amp gain, read voltage.

Shared reference column. Instead of a ``G-`` column per neuron, every neuron ``j`` of a layer is
one column ``G_ij`` and all neurons subtract the current of one reference column ``g_i``
(``minus_columns`` all equal). With signed entries ``S_ij`` (the weights, and the bias scaled by
``V_in / V_bias`` on the bias row) and a scale ``k``, program

    G_ij = g_i + k S_ij.

Then ``I_j - I_ref = sum_i f(v_i) (G_ij - g_i) = k sum_i f(v_i) S_ij``: exactly the differential
pair's signal, for any choice of the reference values ``g_i``. For an input row the reference
value must be the very offset of that row's neuron cells, since ``f(v_i)`` varies with the input;
for the bias row, whose drive is constant, a reference value different from the neuron cells'
offset adds the same constant current ``(g_bias_ref - g_bias_offset) V_bias`` to every neuron,
which the neuron bias cells absorb by shifting by exactly that amount (that is the freedom the
``uniform`` reference uses). ``k`` is the largest scale for which every cell fits the window:

* ``reference="row"``: each row's reference is the lowest value that fits,
  ``g_i = G_min - k min(0, min_j S_ij)``, and ``k = (G_max - G_min) / max_i spread_i`` with
  ``spread_i = max(0, max_j S_ij) - min(0, min_j S_ij)``;
* ``reference="uniform"``: one reference value ``g`` for all input rows (a column that can be
  programmed in one step, or replaced by a fixed resistor), ``k`` set by the spread of all input
  entries; the bias row's reference cell takes the lowest value that fits the bias entries, and
  the neuron bias cells absorb the constant it differs by from ``g``.

A shared reference needs ``n + 1`` columns instead of ``2 n`` (half the neuron-side periphery)
but only half the window per sign, and its cells sit mid-window rather than at ``G_min``, which
costs read energy; its temperature behaviour differs because ``G_ij`` and ``g_i`` sit at
different states (no pairwise cancellation). ``sweep_circuit`` measures all of this.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Iterable, Literal, Optional, Sequence

import numpy as np
import pandas as pd

from ..circuit import Circuit, Layer
from ..data import Dataset, to_voltages
from ..engines import simulate
from ..imperfections import apply_imperfections, parse_imperfections
from ..imperfections.temperature import EFlashThermalModel, thermal_model
from ..mapping import MappingConfig, layer_neuron, map_network, signed_layers
from ..network import TrainedNetwork
from .common import resolve_engine

REFERENCES = ("row", "uniform")
ARRANGEMENTS = ("differential", "shared-row", "shared-uniform")


def map_shared_reference(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
                         config: MappingConfig = MappingConfig(),
                         reference: Literal["row", "uniform"] = "row") -> Circuit:
    """Map weights onto arrays with one shared reference column per layer (last column)."""
    if reference not in REFERENCES:
        raise ValueError(f"reference={reference!r} is not accepted: choose one of {list(REFERENCES)}")
    cell = config.make_cell()
    g_min, g_max = cell.g_min, cell.g_max
    span = g_max - g_min
    layers = []
    for index, last, signed, v_in, v_bias in signed_layers(weights, biases, config):
        signed = signed.T  # [rows, neurons]
        low = np.minimum(signed.min(axis=1), 0.0)
        high = np.maximum(signed.max(axis=1), 0.0)
        if reference == "row":
            spread = float(np.max(high - low))
        else:
            spread = max(float(high[:-1].max() - low[:-1].min()), float(high[-1] - low[-1]))
        if spread == 0:
            raise ValueError(f"layer {index} has all-zero weights and bias; nothing to map")
        k = span / spread
        if reference == "row":
            ref = g_min - k * low
        else:
            ref = np.full(signed.shape[0], g_min - k * float(low[:-1].min()))
            ref[-1] = g_min - k * float(low[-1])  # the bias row fits on its own; the offset is absorbed
        g = np.empty((signed.shape[0], signed.shape[1] + 1))
        g[:, :-1] = ref[:, None] + k * signed
        g[:, -1] = ref
        g = np.clip(g, g_min, g_max)  # rounding only: every entry is inside by construction
        n_out = signed.shape[1]
        neuron = layer_neuron(config, k, v_in, last)
        layers.append(Layer(conductance=g, plus_columns=np.arange(n_out), minus_columns=np.full(n_out, n_out),
                            neuron=neuron, bias_voltage_v=v_bias, r_word_ohm=config.r_word_ohm,
                            r_bit_ohm=config.r_bit_ohm, input_scale_v=v_in, weight_scale_s=k))
    metadata = {"mapping": config.__dict__.copy(), "arrangement": f"shared-{reference}"}
    return Circuit(layers=tuple(layers), cell=cell, input_scale_v=config.v_read_v,
                   output_scale_v=config.output_scale_v, metadata=metadata)


def map_arrangement(network: TrainedNetwork, config: MappingConfig = MappingConfig(),
                    arrangement: str = "differential") -> Circuit:
    """The network mapped as ``differential`` pairs, or with a ``shared-row`` / ``shared-uniform`` reference."""
    if arrangement == "differential":
        return map_network(network, config)
    if arrangement in ("shared-row", "shared-uniform"):
        circuit = map_shared_reference(network.weights, network.biases, config, reference=arrangement.split("-")[1])
        return circuit.replace(metadata={**circuit.metadata, "widths": list(network.config.widths)})
    raise ValueError(f"arrangement={arrangement!r} is not accepted: choose one of {list(ARRANGEMENTS)}")


def sweep_circuit(network: TrainedNetwork, dataset: Dataset, *, arrangements: Iterable[str] = ("differential",),
                  v_read_v: Iterable[float] = (0.2,), open_loop_gain: Iterable[float] = (math.inf,),
                  wire_ohm: Iterable[float] = (1.0,), temperatures_c: Iterable[float] = (25.0,),
                  base: MappingConfig = MappingConfig(), imperfection: Optional[Any] = None,
                  engine: Any = "nodal", read_time_s: float = 1e-7, seed: int = 0,
                  per_image: bool = False) -> pd.DataFrame:
    """Accuracy and array energy per inference over a grid of circuit choices (and temperatures).

    Each row of the grid maps the network with the given arrangement, read voltage (the input
    scale, hence also the hidden rails), op-amp open-loop gain and wire segment resistance, then
    applies ``imperfection`` (an ``apply_imperfections`` spec, e.g. programming) and the temperature
    (the ReRAM model of ``imperfections.temperature``; 25 C is the reference, no change), and runs
    ``engine`` on the test images (a read-noise item of ``imperfection`` is drawn per inference group).
    With ``per_image`` each row also carries ``correct``, the boolean correctness of every test image.
    """
    eng = resolve_engine(engine)
    items = parse_imperfections(imperfection if imperfection is not None else [])
    rows = []
    for arrangement in arrangements:
        for v in v_read_v:
            for gain in open_loop_gain:
                for wire in wire_ohm:
                    config = replace(base, v_read_v=float(v), open_loop_gain=float(gain), r_word_ohm=float(wire),
                                     r_bit_ohm=float(wire))
                    circuit = map_arrangement(network, config, arrangement)
                    circuit, _ = apply_imperfections(circuit, items, seed=seed)
                    for t in temperatures_c:
                        hot = circuit
                        if float(t) != 25.0:
                            hot, _ = apply_imperfections(circuit, {"kind": "temperature", "temperature_c": float(t)})
                        result = simulate(hot, to_voltages(dataset.x_test, hot.input_scale_v), engine=eng,
                                          read_noise=items.read_noise, seed=seed, return_power=True)
                        rows.append({"arrangement": arrangement, "v_read_v": float(v), "open_loop_gain": float(gain),
                                     "wire_ohm": float(wire), "temperature_c": float(t),
                                     "accuracy": result.accuracy(dataset.y_test),
                                     "energy_j": float(np.mean(result.power_w)) * read_time_s,
                                     "columns": int(sum(layer.n_columns for layer in hot.layers))})
                        if per_image:
                            rows[-1]["correct"] = result.predictions() == np.asarray(dataset.y_test)
    return pd.DataFrame(rows)


def track_temperature(cold: Circuit, hot: Circuit, temperature_c: float, feedback_state_s: Optional[float] = None,
                      technology: str = "reram", **model_params: Any) -> Circuit:
    """Make every TIA feedback element a cell of the memory technology, so it follows the temperature.

    ``cold`` is the circuit at the reference temperature, ``hot`` the same circuit after the cell
    temperature model (``imperfections.apply_temperature``). A feedback conductance built from
    cells programmed at ``feedback_state_s`` (default: the geometric middle of the window) changes
    by the model's factor ``G(T)/G(T_ref)`` like the array's cells, so ``R_f(T) = R_f / factor``:
    when all array cells share one factor (every state in the thermally activated regime, or a
    uniform shift) the product ``R_f G`` and hence every output is exactly temperature-independent.
    Feedback resistors already scaled by a linear TCR in ``hot`` keep that scaling on top.
    """
    model = thermal_model(technology, **model_params)
    cell = cold.cell
    g_f = feedback_state_s if feedback_state_s is not None else float(np.sqrt(cell.g_min * cell.g_max))
    if isinstance(model, EFlashThermalModel):
        factor = float(model.factor(np.array(g_f), temperature_c, g_threshold_s=cell.g_max))
    else:
        factor = float(model.factor(np.array(g_f), temperature_c))

    def scale(_: int, layer: Layer) -> Layer:
        neuron = replace(layer.neuron, feedback_resistance_ohm=layer.neuron.feedback_resistance_ohm / factor)
        return layer.replace(neuron=neuron)

    out = hot.map_layers(scale)
    return out.replace(metadata={**hot.metadata, "feedback_tracking": {"state_s": g_f, "factor": factor}})
