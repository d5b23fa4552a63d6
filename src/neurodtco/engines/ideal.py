"""Ideal wires and ideal op-amps: each cell sees exactly its row's drive voltage.

``device`` (a torch device, e.g. ``"cuda"``): with linear cells every layer is the affine map of
``ideal_layer_map``, applied on that device in float64; gap cells and node or power reports run on
the CPU only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..circuit import Circuit, Layer
from .base import SimulationResult
from .forward import affine_layers, forward, refuse_reports, runs_on_device, torch_device


def layer_column_currents(circuit: Circuit, layer: Layer, inputs_v: np.ndarray) -> np.ndarray:
    """Column currents ``[batch, columns]`` with every cell across its row voltage and 0 V."""
    rows = layer.row_voltages(inputs_v)
    if circuit.cell.is_linear:
        return rows @ layer.conductance
    return circuit.cell.current(layer.conductance[None], rows[:, :, None]).sum(axis=1)


def layer_outputs(circuit: Circuit, layer: Layer, rows_v: np.ndarray) -> np.ndarray:
    """Activated neuron outputs of one layer for row-input vectors ``[vectors, n_inputs]``."""
    tia = -layer.neuron.feedback_resistance_ohm * layer_column_currents(circuit, layer, rows_v)
    return layer.neuron.activate(layer.neuron.difference_gain * (tia[:, layer.minus_columns] - tia[:, layer.plus_columns]))


def ideal_layer_map(layer: Layer) -> tuple[np.ndarray, np.ndarray]:
    """A layer of linear cells as an affine map: difference-stage outputs ``x @ W + c`` (before the clamp)."""
    neuron = layer.neuron
    per_volt = -neuron.feedback_resistance_ohm * neuron.difference_gain * (
        layer.conductance[:, layer.minus_columns] - layer.conductance[:, layer.plus_columns])
    return per_volt[:-1], layer.bias_voltage_v * per_volt[-1]


class IdealEngine:
    """Matrix products and ideal op-amps; the cell model's I-V is honoured, wires are not."""

    name = "ideal"

    def __init__(self, device: Any = None) -> None:
        self.device = torch_device(device)

    def run(self, circuit: Circuit, inputs_v: np.ndarray, *, return_hidden: bool = False,
            return_nodes: bool = False, return_power: bool = False) -> SimulationResult:
        """Simulate a batch; node voltages are the row drives (word) and 0 V (bit)."""
        x = circuit.check_inputs(inputs_v)
        if runs_on_device(self.name, self.device, circuit, return_nodes or return_power):
            run_layer = affine_layers(lambda index, layer: ideal_layer_map(layer), self.device)
            out, hidden = forward(circuit, x, run_layer, return_hidden, self.device)
            return SimulationResult(outputs_v=out, engine=self.name, hidden_v=hidden if return_hidden else None,
                                    info={"device": str(self.device)})
        if not (return_nodes or return_power):
            # Tiles change nothing here: with ideal wires and virtual grounds their currents simply add.
            out, hidden = forward(circuit, x, lambda i, layer, rows: layer_outputs(circuit, layer, rows), return_hidden)
            return SimulationResult(outputs_v=out, engine=self.name, hidden_v=hidden if return_hidden else None)
        refuse_reports(circuit, self.name)
        hidden, nodes = [], []
        power = np.zeros(len(x))
        for index, layer in enumerate(circuit.layers):
            currents = layer_column_currents(circuit, layer, x)
            neuron = layer.neuron
            tia = -neuron.feedback_resistance_ohm * currents
            diff = neuron.difference_gain * (tia[:, layer.minus_columns] - tia[:, layer.plus_columns])
            out = neuron.activate(diff)
            if return_power:
                power += np.sum(layer.row_voltages(x) * _row_currents(circuit, layer, x), axis=1)
            if return_nodes:
                rows = layer.row_voltages(x)
                nodes.append({
                    "word": np.repeat(rows[:, :, None], layer.n_columns, axis=2),
                    "bit": np.zeros((len(x), layer.n_rows, layer.n_columns)),
                    "neuron_in": np.zeros((len(x), layer.n_columns)),
                    "tia_out": tia,
                    "difference_out": diff,
                })
            if index < circuit.n_layers - 1:
                hidden.append(out)
            x = out
        return SimulationResult(outputs_v=x, engine=self.name, hidden_v=hidden if return_hidden else None,
                                nodes=nodes if return_nodes else None, power_w=power if return_power else None)


def _row_currents(circuit: Circuit, layer: Layer, inputs_v: np.ndarray) -> np.ndarray:
    rows = layer.row_voltages(inputs_v)
    return circuit.cell.current(layer.conductance[None], rows[:, :, None]).sum(axis=2)
