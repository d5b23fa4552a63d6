"""Turn a trained network into a ``Circuit``: weights to conductance pairs, scales to resistors.

Layer ``l`` computes ``z = W x + b`` in software, with ``x`` in activation units. In the circuit
its inputs are voltages ``v = V_in x`` (``V_in`` = ``v_read`` for the first array, the activation
rail ``v_act`` for the others) and its bias row is driven at ``V_bias``. The signed matrix
``[W, b V_in / V_bias]`` is scaled by ``k = (G_max - G_min) / max|.|`` into the difference of a
conductance pair: by default (``pair_encoding="low"``) the pair sits on ``G_min`` and only one cell
carries the weight (least read power); ``"balanced"`` centres both cells on mid-window,
``G+- = G_mid +- k w / 2``, so that a cell stuck on or stuck off moves a weight by similar amounts. The neuron's feedback resistor is chosen so that the
difference stage outputs ``S z`` volts, with ``S = v_act`` for hidden layers (so the activation
clamp at ``+-v_act`` is exactly the software hard-tanh) and ``S = output_scale_v`` for the last.
With ideal wires and op-amps the circuit's outputs are therefore ``output_scale_v`` times the
software logits.

Any network lowered to ``ops`` maps the same way (``map_ops``): each ``Dense`` or ``Conv`` becomes
one layer (a convolution's kernel unrolled into rows, read once per output position), ``Pool``,
``Save`` and ``Add`` become stages. ``tile_rows``/``tile_cols`` cut every layer's matrix (bias row
and pairs included) into tiles of at most that size: rows in blocks from the top, neurons in
groups of ``tile_cols // 2`` pairs, each group laid out (``interleaved`` or ``split``) inside its
own tile, so a pair never straddles two tiles. Layers sit side by side on the die.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal, Optional

import numpy as np

from ._validate import check_non_negative, check_positive
from .circuit import Circuit, Crossbar, Layer, NeuronModel, Stage, Sum, Tiling
from .devices import make_cell
from .network import TrainedNetwork
from .ops import Add, Conv, Dense, Op, Pool, Save


@dataclass(frozen=True)
class MappingConfig:
    """Physical choices for turning weights into hardware (SI units)."""

    cell: Literal["linear", "gap"] = "linear"
    r_on_ohm: float = 10e3
    r_off_ohm: float = 1e6
    v_read_v: float = 0.2
    r_word_ohm: float = 1.0
    r_bit_ohm: float = 1.0
    layout: Literal["interleaved", "split"] = "interleaved"
    activation_v: Optional[float] = None
    output_scale_v: float = 0.05
    output_swing_v: Optional[float] = None
    difference_gain: float = 1.0
    open_loop_gain: float = math.inf
    offset_v: float = 0.0
    bias_voltage_v: Optional[float] = None
    pair_encoding: Literal["low", "balanced"] = "low"
    tile_rows: Optional[int] = None
    tile_cols: Optional[int] = None
    tile_combine: Literal["shared", "summing"] = "shared"

    def __post_init__(self) -> None:
        for name, value, low in (("tile_rows", self.tile_rows, 2), ("tile_cols", self.tile_cols, 2)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low):
                raise ValueError(f"{name}={value!r} is not accepted: expected an integer >= {low} (cells per tile "
                                 "side; a pair needs two columns), or None for one array per layer")
        if self.tile_combine not in ("shared", "summing"):
            raise ValueError(f"tile_combine={self.tile_combine!r} is not accepted: choose 'shared' or 'summing'")
        if self.layout not in ("interleaved", "split"):
            raise ValueError(f"layout={self.layout!r} is not accepted: choose 'interleaved' or 'split'")
        if self.pair_encoding not in ("low", "balanced"):
            raise ValueError(f"pair_encoding={self.pair_encoding!r} is not accepted: choose 'low' (one cell of "
                             "each pair at G_min, least read power) or 'balanced' (both cells around mid-window)")
        check_non_negative("r_word_ohm", self.r_word_ohm, "ohms per word-line segment")
        check_non_negative("r_bit_ohm", self.r_bit_ohm, "ohms per bit-line segment")
        check_positive("output_scale_v", self.output_scale_v, "volts per logit unit, e.g. 0.05")
        if self.activation_v is not None:
            check_positive("activation_v", self.activation_v, "volts; the hidden neurons' rails")
        if self.bias_voltage_v is not None:
            check_positive("bias_voltage_v", self.bias_voltage_v, "volts on the bias row")
        self.make_cell()  # validates the window and the cell parameters

    @property
    def hidden_rail_v(self) -> float:
        """Saturation voltage of hidden neurons (defaults to the read voltage)."""
        return self.activation_v if self.activation_v is not None else self.v_read_v

    def make_cell(self):
        """The cell model these settings describe."""
        return make_cell(self.cell, r_on_ohm=self.r_on_ohm, r_off_ohm=self.r_off_ohm, v_read_v=self.v_read_v)


def column_pairs(n_outputs: int, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """Physical (plus, minus) column of each neuron for an ``interleaved`` or ``split`` layout."""
    j = np.arange(n_outputs)
    if layout == "interleaved":
        return 2 * j, 2 * j + 1
    if layout == "split":
        return j, n_outputs + j
    raise ValueError(f"layout={layout!r} is not accepted: choose 'interleaved' or 'split'")


def signed_matrix(weight: np.ndarray, bias: np.ndarray, v_in: float, config: MappingConfig,
                  label: str = "layer") -> tuple[np.ndarray, float]:
    """The signed matrix ``[out, in + 1]`` a layer must encode (bias column last), and its bias-row voltage."""
    w = np.asarray(weight, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64)
    if w.ndim != 2 or b.shape != (w.shape[0],):
        raise ValueError(f"{label}: weights must be [out, in] and bias [out]; got {w.shape} and {b.shape}")
    v_bias = config.bias_voltage_v if config.bias_voltage_v is not None else v_in
    return np.concatenate([w, (b * v_in / v_bias)[:, None]], axis=1), v_bias


def signed_layers(weights: list[np.ndarray], biases: list[np.ndarray], config: MappingConfig):
    """Per layer ``(index, last, signed [out, in+1], v_in, v_bias)``: the matrix a mapping must encode."""
    if len(weights) != len(biases) or not weights:
        raise ValueError("need one bias vector per weight matrix, and at least one layer")
    v_in = config.v_read_v
    for index, (w, b) in enumerate(zip(weights, biases)):
        signed, v_bias = signed_matrix(w, b, v_in, config, f"layer {index}")
        yield index, index == len(weights) - 1, signed, v_in, v_bias
        v_in = config.hidden_rail_v


def layer_neuron(config: MappingConfig, weight_scale_s: float, v_in: float, last: bool,
                 activation: Optional[str] = "hardtanh") -> NeuronModel:
    """The neuron whose difference stage outputs ``S z`` for a layer of weight scale ``k``.

    The last layer gives the logits (scale ``output_scale_v``, clamped at ``output_swing_v``); the
    others ``activation`` at the hidden rail (``None``: unclamped, e.g. a branch a residual add activates).
    """
    scale = config.output_scale_v if last else config.hidden_rail_v
    if last:
        saturation, activation = config.output_swing_v, "hardtanh"
    else:
        saturation = None if activation is None else config.hidden_rail_v
    return NeuronModel(
        feedback_resistance_ohm=scale / (config.difference_gain * weight_scale_s * v_in),
        difference_gain=config.difference_gain,
        open_loop_gain=config.open_loop_gain,
        offset_v=config.offset_v,
        saturation_v=saturation,
        activation=activation or "hardtanh",
    )


def tile_plan(n_rows: int, n_outputs: int, config: MappingConfig) -> tuple[tuple[int, ...], list[int]]:
    """Row block starts, and the number of neurons in each column tile, for a layer of this size."""
    if config.tile_rows is None and config.tile_cols is None:
        return (0,), [n_outputs]
    tile_rows = config.tile_rows or n_rows
    per_tile = (config.tile_cols // 2) if config.tile_cols is not None else n_outputs
    groups = [min(per_tile, n_outputs - start) for start in range(0, n_outputs, per_tile)]
    return tuple(range(0, n_rows, tile_rows)), groups


def place_columns(groups: list[int], layout: str) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Plus and minus column of every neuron, each group of neurons laid out inside its own tile."""
    plus, minus, starts, offset = [], [], [], 0
    for n in groups:
        p, m = column_pairs(n, layout)
        plus.append(p + offset)
        minus.append(m + offset)
        starts.append(offset)
        offset += 2 * n
    return np.concatenate(plus), np.concatenate(minus), tuple(starts)


def build_layer(signed: np.ndarray, v_in: float, v_bias: float, neuron_for: Callable[[float], NeuronModel], config: MappingConfig,
                g_min: float, g_max: float, origin: tuple[int, int], label: str) -> Layer:
    """One layer for a signed matrix ``[out, in + 1]`` (bias column last): conductances, columns, tiles."""
    peak = float(np.max(np.abs(signed)))
    if peak == 0:
        raise ValueError(f"{label} has all-zero weights and bias; nothing to map")
    k = (g_max - g_min) / peak
    if config.pair_encoding == "low":
        g_plus = g_min + k * np.maximum(signed, 0.0).T
        g_minus = g_min + k * np.maximum(-signed, 0.0).T
    else:
        g_mid = 0.5 * (g_max + g_min)
        g_plus = g_mid + 0.5 * k * signed.T
        g_minus = g_mid - 0.5 * k * signed.T
    n_out, n_rows = signed.shape
    row_starts, groups = tile_plan(n_rows, n_out, config)
    plus, minus, col_starts = place_columns(groups, config.layout)
    g = np.empty((n_rows, 2 * n_out))
    g[:, plus] = g_plus
    g[:, minus] = g_minus
    tiling = None
    if config.tile_rows is not None or config.tile_cols is not None:
        shape = (config.tile_rows or n_rows, config.tile_cols or 2 * n_out)
        tiling = Tiling(row_starts, col_starts, shape, config.tile_combine, origin)
    return Layer(conductance=g, plus_columns=plus, minus_columns=minus, neuron=neuron_for(k), bias_voltage_v=v_bias,
                 r_word_ohm=config.r_word_ohm, r_bit_ohm=config.r_bit_ohm, input_scale_v=v_in, weight_scale_s=k,
                 tiling=tiling)


def map_ops(ops: list[Op], config: MappingConfig = MappingConfig()) -> Circuit:
    """Build the circuit of a network lowered to ``neurodtco.ops`` (dense, convolutions, pooling, residuals)."""
    ops = list(ops)
    weighted = [i for i, op in enumerate(ops) if isinstance(op, (Dense, Conv))]
    if not weighted:
        raise ValueError("the network has no Dense or Conv operation: nothing to put on a crossbar")
    cell = config.make_cell()
    rail = config.hidden_rail_v
    v_in = config.v_read_v
    layers: list[Layer] = []
    stages: list[Stage] = []
    origin_col = 0
    for i, op in enumerate(ops):
        if isinstance(op, (Dense, Conv)):
            matrix = op.matrix if isinstance(op, Conv) else op.weight
            signed, v_bias = signed_matrix(matrix, op.bias, v_in, config, f"operation {i}")
            last = i == weighted[-1]
            layer = build_layer(signed, v_in, v_bias, lambda k: layer_neuron(config, k, v_in, last, op.activation),
                                config, cell.g_min, cell.g_max, (0, origin_col), f"layer {len(layers)}")
            if layer.tiling is not None:
                origin_col += layer.tiling.grid_shape[1] * layer.tiling.tile_shape[1]
            stages.append(Crossbar(len(layers), op.geometry if isinstance(op, Conv) else None))
            layers.append(layer)
            v_in = rail
        elif isinstance(op, Pool):
            stages.append(op)
        elif isinstance(op, Save):
            if not layers and config.v_read_v != rail:
                raise ValueError("a residual branch saved on the raw inputs needs the hidden rail equal to the read "
                                 "voltage (leave activation_v unset)")
            stages.append(op)
        elif isinstance(op, Add):
            stages.append(Sum(op.slot, op.activation, rail))
        else:
            raise ValueError(f"operation {i}: {type(op).__name__} cannot be mapped; expected Dense, Conv, Pool, Save or Add")
    plain = all(isinstance(s, Crossbar) and s.conv is None for s in stages)
    return Circuit(layers=tuple(layers), cell=cell, input_scale_v=config.v_read_v, output_scale_v=config.output_scale_v,
                   metadata={"mapping": config.__dict__.copy()}, stages=None if plain else tuple(stages))


def map_weights(
    weights: list[np.ndarray], biases: list[np.ndarray], config: MappingConfig = MappingConfig()
) -> Circuit:
    """Build the circuit for an MLP: weight matrices ``[out, in]`` and bias vectors, hard-tanh between them."""
    if len(weights) != len(biases) or not weights:
        raise ValueError("need one bias vector per weight matrix, and at least one layer")
    ops = [Dense(w, b, "hardtanh" if i < len(weights) - 1 else None) for i, (w, b) in enumerate(zip(weights, biases))]
    return map_ops(ops, config)


def map_network(network: TrainedNetwork, config: MappingConfig = MappingConfig()) -> Circuit:
    """Build the circuit that implements a trained network."""
    circuit = map_ops(network.ops(), config)
    widths = getattr(network.config, "widths", None)
    return circuit.replace(metadata={**circuit.metadata, "arch": network.arch,
                                     **({"widths": list(widths)} if widths is not None else {})})
