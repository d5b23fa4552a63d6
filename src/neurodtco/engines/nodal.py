"""The exact built-in engine: nodal analysis of every array with its wires and op-amp neurons.

Each layer is one linear (or, with gap cells, nonlinear) resistor network: every cell's word and
bit node, the wire segments, the row drivers (the previous layer's outputs, the bias row) and
the neuron inputs. A transimpedance stage of open-loop gain ``A``, feedback ``R_f`` and offset
``V_os`` has output ``t = A (V_os - n)``; Kirchhoff at its input ``n`` gives
``I_col + (t - n) / R_f = 0``, i.e. ``n`` sits on a conductance ``(1 + A) / R_f`` to the offset
voltage: that is how the op-amps enter the array solve (``A = inf`` holds ``n`` at ``V_os``).
The difference stage and the clamp follow ``circuit.py``.

Linear cells: the array is factorized once per layer and run; the layer is then an affine map
from row voltages to neuron inputs and collected currents, applied to the whole batch as one
matrix product. Large arrays (tiles) with resistive lines are reduced by nested dissection
(``_nodal/sparse.py``, on the CPU) where that is measured faster than the dense sweep. Gap cells:
Newton across the batch (``_nodal/newton.py``).

Tiled layers (``Layer.tiling``): every tile is factorized on its own and reduced to its Norton
equivalent at its column ends; the row tiles of a column block are joined at their shared neuron
inputs, or each feeds its own transimpedance stage and a summing amplifier adds them
(``_nodal/tiles.py``). The layer stays one affine map. Gap cells: chord Newton on each group of
tiles that share neuron inputs, the group coupled inside every step (``_nodal/chord.py``).

``device`` (a torch device, e.g. ``"cuda"``): with linear cells the affine maps are computed as
above and applied on that device in float64 (``forward.affine_layers``); with gap cells every
layer's chord Newton runs there as dense matrix products (``_nodal/device_chord.py``); node or
power reports run on the CPU only.
"""

from __future__ import annotations

import math
import time
from typing import Any, Optional

import numpy as np

from ..circuit import Circuit, Layer
from ..ops import torch_activate
from ._nodal import ArrayNetwork, ArraySolution, factorize, solve, unit_drives, wire_conductance
from ._nodal.chord import group_cells
from ._nodal.device_chord import device_group_cells
from ._nodal.newton import ConvergenceError, NewtonSettings, solve_cells
from ._nodal.sparse import dissection_pays, port_response
from ._nodal.tiles import DriverMap, TileResponse, driver_map, tia_map, tile_response
from .base import SimulationResult
from .forward import affine_layers, forward, is_plain, runs_on_device, torch_device, walk

__all__ = ["ConvergenceError", "NodalEngine"]

#: Largest dense factorization (rows x columns^2 doubles, 1 GiB) a node voltage report may build.
NODES_MAX_DOUBLES = 1 << 27


class NodalEngine:
    """Exact nodal analysis of the whole circuit (wires, finite-gain op-amps, nonlinear cells)."""

    name = "nodal"

    def __init__(self, rtol: float = 1e-12, max_iterations: int = 100, newton: str = "chord",
                 device: Any = None) -> None:
        self.settings = NewtonSettings(rtol=rtol, max_iterations=max_iterations, method=newton)
        self.device = torch_device(device)

    def run(self, circuit: Circuit, inputs_v: np.ndarray, *, return_hidden: bool = False,
            return_nodes: bool = False, return_power: bool = False) -> SimulationResult:
        """Simulate ``inputs_v`` ``[batch, n_inputs]`` (volts) through every layer."""
        x = circuit.check_inputs(inputs_v)
        if runs_on_device(self.name, self.device, circuit, return_nodes or return_power, nonlinear=True):
            if circuit.cell.is_linear:
                run_layer = affine_layers(lambda index, layer: linear_layer_map(layer, f"layer {index}"), self.device)
                layer_info = {i: {"method": "affine"} for i in range(circuit.n_layers)}
            else:
                layer_info = {}

                def run_layer(index: int, layer: Layer, rows_v: Any) -> Any:
                    out, layer_info[index], _ = cell_outputs(circuit.cell, layer, rows_v, self.settings,
                                                             f"layer {index}")
                    return out

            out, hidden = forward(circuit, x, run_layer, return_hidden, self.device)
            return SimulationResult(outputs_v=out, engine=self.name, hidden_v=hidden if return_hidden else None,
                                    info={"layers": [layer_info[i] for i in sorted(layer_info)],
                                          "device": str(self.device)})
        if not return_nodes:
            maps: dict[int, tuple] = {}
            layer_info: dict[int, dict] = {}

            def run_layer(index: int, layer: Layer, rows_v: np.ndarray) -> Any:
                return self._layer_outputs(circuit, index, layer, rows_v, maps, layer_info, return_power)

            walked = walk(circuit, x, run_layer, return_hidden, return_power=return_power)
            layer_power = walked.layer_power_w
            return SimulationResult(outputs_v=walked.outputs, engine=self.name,
                                    hidden_v=walked.hidden if return_hidden else None,
                                    power_w=None if layer_power is None else layer_power.sum(axis=1),
                                    layer_power_w=layer_power,
                                    info={"layers": [layer_info[i] for i in sorted(layer_info)]})
        refuse_node_reports(circuit, self.name)
        hidden, nodes, layer_info = [], [], []
        power = np.zeros((len(x), circuit.n_layers))
        for index, layer in enumerate(circuit.layers):
            sol, info = solve_layer(circuit.cell, layer, x, nodes=True, power=True, settings=self.settings,
                                    label=f"layer {index}")
            out, layer_nodes = neuron_outputs(layer, sol, nodes=True)
            power[:, index] = np.sum(layer.row_voltages(x) * sol.driver_a, axis=1)
            nodes.append(layer_nodes)
            if index < circuit.n_layers - 1:
                hidden.append(out)
            layer_info.append(info)
            x = out
        return SimulationResult(outputs_v=x, engine=self.name, hidden_v=hidden if return_hidden else None,
                                nodes=nodes, power_w=power.sum(axis=1) if return_power else None,
                                layer_power_w=power if return_power else None, info={"layers": layer_info})

    def _layer_outputs(self, circuit: Circuit, index: int, layer: Layer, rows_v: np.ndarray, maps: dict[int, tuple],
                       info: dict[int, dict], power: bool = False) -> Any:
        """One layer's activated outputs (and with ``power`` the power its drivers deliver per vector).

        Linear layers are factorized once per run and reused for every chunk.
        """
        label = f"layer {index}"
        if circuit.cell.is_linear:
            if index not in maps:
                start = time.perf_counter()
                maps[index] = linear_layer(layer, label, power)
                info[index] = {"method": "affine", "factorize_s": time.perf_counter() - start}
            weights, const, drivers = maps[index]
            out = layer.neuron.activate(rows_v @ weights + const)
            return (out, drivers.power(layer.row_voltages(rows_v), layer.neuron.offset_v)) if power else out
        if layer.tiling is not None:
            out, info[index], driver_a = cell_outputs(circuit.cell, layer, rows_v, self.settings, label, power)
        else:
            sol, info[index] = solve_layer(circuit.cell, layer, rows_v, power=power, settings=self.settings,
                                           label=label)
            out, driver_a = neuron_outputs(layer, sol)[0], sol.driver_a
        return (out, np.sum(layer.row_voltages(rows_v) * driver_a, axis=1)) if power else out


def refuse_node_reports(circuit: Circuit, engine: str) -> None:
    """Node voltages are reported for plain chains of untiled layers small enough for the dense sweep."""
    if not is_plain(circuit):
        raise ValueError(f"the {engine} engine reports node voltages for plain chains of untiled dense layers only; "
                         "this circuit has tiles or convolution/pooling/residual stages: ask for power "
                         "(return_power=True) and outputs without return_nodes")
    for index, layer in enumerate(circuit.layers):
        # resistive word lines keep a C x C inverse per row (ideal ones leave O(R C) to factorize)
        doubles = layer.n_rows * layer.n_columns ** 2 if layer.r_word_ohm > 0 else 0
        if doubles > NODES_MAX_DOUBLES:
            raise ValueError(f"node voltages of layer {index} ({layer.n_rows} x {layer.n_columns}) need the dense "
                             f"sweep's rows x columns^2 = {doubles * 8 / 2**30:.1f} GiB of factors (limit "
                             f"{NODES_MAX_DOUBLES * 8 / 2**30:.0f} GiB): ask for power without return_nodes (large "
                             "arrays report it by nested dissection), or read node voltages of a tiled or smaller "
                             "copy of the layer")


def linear_layer_map(layer: Layer, label: str = "layer") -> tuple[np.ndarray, np.ndarray]:
    """Exact affine map of a layer of linear cells: difference-stage outputs ``x @ W + c``.

    ``W`` is ``[n_inputs, n_outputs]`` and ``c`` ``[n_outputs]`` (the bias row, the offsets, every
    wire and every tile folded in); the activation clamp is applied after it. An untiled layer is
    its own single tile.
    """
    return linear_layer(layer, label)[:2]


def linear_layer(layer: Layer, label: str = "layer",
                 power: bool = False) -> tuple[np.ndarray, np.ndarray, Optional[DriverMap]]:
    """``linear_layer_map``'s ``W`` and ``c``, and with ``power`` the layer's ``DriverMap`` from the same factorizations."""
    g_word, g_bit, neuron_g, inject = _periphery(layer, label)
    responses = [_tile_response(tile, layer.conductance[tile.rows, tile.columns], g_word, g_bit, power)
                 for tile in layer.tiles]
    neuron = layer.neuron
    offset = neuron.offset_v
    combine = "shared" if layer.tiling is None else layer.tiling.combine
    # TIA outputs per volt on each (offset-referenced) row driver, and for all drivers at V_os
    per_volt, at_offset = tia_map(responses, layer.n_rows, layer.n_columns, combine, neuron_g,
                                  None if inject is None else inject[0], offset, neuron.feedback_resistance_ohm, label)
    # rows are driven at [x, V_bias] - V_os
    const = at_offset + (layer.bias_voltage_v - offset) * per_volt[-1] - offset * per_volt[:-1].sum(axis=0)
    gain = neuron.closed_loop_difference_gain
    weights = gain * (per_volt[:-1, layer.minus_columns] - per_volt[:-1, layer.plus_columns])
    drivers = None
    if power:
        drivers = driver_map(responses, layer.n_rows, combine, neuron_g, None if inject is None else inject[0], label)
    return weights, gain * (const[layer.minus_columns] - const[layer.plus_columns]), drivers


def _tile_response(tile: Any, conductance: np.ndarray, g_word: float, g_bit: float, drivers: bool) -> TileResponse:
    """A tile's Norton equivalent (and its drivers' admittance), by nested dissection where that beats the dense sweep."""
    if dissection_pays(*conductance.shape, g_word, g_bit):
        short, admittance, driver = port_response(conductance, g_word, g_bit)
        return TileResponse(tile, short, admittance, driver if drivers else None)
    return tile_response(tile, conductance, g_word, g_bit, drivers)


def cell_outputs(cell: Any, layer: Layer, inputs_v: Any, settings: NewtonSettings = NewtonSettings(),
                 label: str = "layer", drivers: bool = False) -> tuple[Any, dict, Optional[np.ndarray]]:
    """Activated outputs of a layer of nonlinear cells (tiled or not), group of tiles by group, and a dict of how.

    Row tiles that share finite-gain neuron inputs are solved together, coupled inside every chord
    step (``_nodal/chord.py``); otherwise (``summing``, ideal op-amps) every tile is solved alone.

    ``inputs_v`` is a NumPy array, or a torch tensor on the device the groups are solved on
    (``_nodal/device_chord.py``); the outputs are of the same kind. With ``drivers`` (NumPy only)
    the third item is the current ``[B, n_rows]`` each layer row's drivers deliver, summed over
    its column tiles (else ``None``).
    """
    g_word, g_bit, neuron_g, inject = _periphery(layer, label)
    neuron = layer.neuron
    on_device = not isinstance(inputs_v, np.ndarray)
    if on_device:
        import torch

        bias = torch.full((len(inputs_v), 1), layer.bias_voltage_v, dtype=inputs_v.dtype, device=inputs_v.device)
        drive = torch.cat([inputs_v, bias], dim=1) - neuron.offset_v
        tia = torch.zeros((len(drive), layer.n_columns), dtype=drive.dtype, device=drive.device)
        solve_group = device_group_cells
    else:
        drive = layer.row_voltages(inputs_v) - neuron.offset_v
        tia = np.zeros((len(drive), layer.n_columns))
        solve_group = group_cells
    row_currents = np.zeros((len(drive), layer.n_rows)) if drivers else None
    tiles = layer.tiles
    info = {"method": settings.method, "iterations": 0, "full_newton_vectors": 0, "sweeps": 1, "tiles": len(tiles)}
    coupled = neuron_g is not None and (layer.tiling is None or layer.tiling.combine == "shared")
    groups: dict[tuple, list] = {}
    for tile in tiles:
        groups.setdefault((tile.grid[1],) if coupled else tile.grid, []).append(tile)
    for key, members in groups.items():
        cols = members[0].columns
        args = (cell, [layer.conductance[t.rows, cols] for t in members], [drive[:, t.rows] for t in members], g_word,
                g_bit, None if neuron_g is None else neuron_g[cols], None if inject is None else inject[:, cols],
                settings, f"{label} tiles {key}")
        if drivers:
            neuron_v, collected, group_info, tile_drivers = solve_group(*args, drivers=True)
            for t, current in zip(members, tile_drivers):
                row_currents[:, t.rows] += current
        else:
            neuron_v, collected, group_info = solve_group(*args)
        tia[:, cols] += neuron.offset_v + neuron_v - neuron.feedback_resistance_ohm * collected
        info["iterations"] = max(info["iterations"], group_info["iterations"])
        info["full_newton_vectors"] += group_info["full_newton_vectors"]
        info["sweeps"] = max(info["sweeps"], group_info["sweeps"])
        if group_info["method"] != settings.method:
            info["method"] = group_info["method"]
    minus, plus = layer.minus_columns, layer.plus_columns
    if on_device:
        minus, plus = (torch.tensor(np.asarray(c), device=tia.device) for c in (minus, plus))
    diff = neuron.closed_loop_difference_gain * (tia[:, minus] - tia[:, plus])
    if on_device:
        activated = diff if neuron.saturation_v is None else torch_activate(diff, neuron.activation, neuron.saturation_v)
        return activated, info, None
    return neuron.activate(diff), info, row_currents


def solve_layer(cell: Any, layer: Layer, inputs_v: np.ndarray, *, nodes: bool = False, power: bool = False,
                settings: NewtonSettings = NewtonSettings(), label: str = "layer") -> tuple[ArraySolution, dict]:
    """One array with its neuron inputs, voltages measured from the neuron offset ``V_os``.

    Returns the collected currents and neuron inputs (every node and driver current when
    ``nodes`` / ``power`` is asked for) and a small dict describing how it was solved.
    """
    if layer.tiling is not None:
        raise ValueError(f"{label} is tiled: solve_layer solves one array; use linear_layer_map or cell_outputs")
    drive = layer.row_voltages(inputs_v) - layer.neuron.offset_v
    if not cell.is_linear:
        g_word, g_bit, neuron_g, inject = _periphery(layer, label)
        return solve_cells(cell, layer.conductance, g_word, g_bit, neuron_g, drive, inject, settings, label,
                           nodes=nodes, drivers=power)
    fact, inject = _factorize_linear(layer, label)
    batch, rows = drive.shape
    if nodes or power or batch <= rows + 1:
        # driver currents come from the node voltages; a whole run's power uses linear_layer's DriverMap
        sol = solve(fact, drive, inject_neuron=inject, nodes=nodes or power)
        return sol, {"method": "direct"}
    # affine map: response to 1 V on each row alone, plus the response to the offset alone
    unit = unit_drives(fact, inject)
    sol = ArraySolution(drive @ unit.collected_a[:rows] + unit.collected_a[rows],
                        drive @ unit.neuron_v[:rows] + unit.neuron_v[rows])
    return sol, {"method": "affine"}


def _periphery(layer: Layer, label: str) -> tuple[float, float, Optional[np.ndarray], Optional[np.ndarray]]:
    """Wire conductances, and how the neuron inputs enter the array solve."""
    neuron = layer.neuron
    g_word = wire_conductance(f"{label} r_word_ohm", layer.r_word_ohm)
    g_bit = wire_conductance(f"{label} r_bit_ohm", layer.r_bit_ohm)
    if math.isinf(neuron.open_loop_gain):
        return g_word, g_bit, None, None  # ideal virtual ground at V_os
    # t = A (V_os - n) fed back through R_f: n - V_os sees (1 + A) / R_f to the reference, and the
    # offset itself pushes -V_os / R_f into the node
    n_cols = layer.n_columns
    neuron_g = np.full(n_cols, (1.0 + neuron.open_loop_gain) / neuron.feedback_resistance_ohm)
    inject = np.full((1, n_cols), -neuron.offset_v / neuron.feedback_resistance_ohm)
    return g_word, g_bit, neuron_g, inject


def _factorize_linear(layer: Layer, label: str):
    g_word, g_bit, neuron_g, inject = _periphery(layer, label)
    return factorize(ArrayNetwork(layer.conductance[None], g_word, g_bit, neuron_g)), inject


def neuron_outputs(layer: Layer, sol: ArraySolution, nodes: bool = False) -> tuple[np.ndarray, Optional[dict]]:
    """Activation outputs ``[B, n_outputs]`` of a solved layer, and (if ``nodes``) its node voltages."""
    neuron = layer.neuron
    offset = neuron.offset_v
    # Kirchhoff at the neuron input: I_col + (t - n) / R_f = 0; exact for any gain, and free of the
    # rounding that t = -A (n - V_os) would multiply by A
    tia = offset + sol.neuron_v - neuron.feedback_resistance_ohm * sol.collected_a
    diff = neuron.closed_loop_difference_gain * (tia[:, layer.minus_columns] - tia[:, layer.plus_columns])
    out = neuron.activate(diff)
    if not nodes:
        return out, None
    return out, {"word": _batch_first(sol.word_v) + offset, "bit": _batch_first(sol.bit_v) + offset,
                 "neuron_in": sol.neuron_v + offset, "tia_out": tia, "difference_out": diff}


def _batch_first(rows_first: np.ndarray) -> np.ndarray:
    return np.swapaxes(rows_first, 0, 1)
