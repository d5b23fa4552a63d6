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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np

from ._validate import check_non_negative, check_positive
from .circuit import Circuit, Layer, NeuronModel
from .devices import make_cell
from .network import TrainedNetwork


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

    def __post_init__(self) -> None:
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


def signed_layers(weights: list[np.ndarray], biases: list[np.ndarray], config: MappingConfig):
    """Per layer ``(index, last, signed [out, in+1], v_in, v_bias)``: the matrix a mapping must encode."""
    if len(weights) != len(biases) or not weights:
        raise ValueError("need one bias vector per weight matrix, and at least one layer")
    v_in = config.v_read_v
    for index, (w, b) in enumerate(zip(weights, biases)):
        w = np.asarray(w, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if w.ndim != 2 or b.shape != (w.shape[0],):
            raise ValueError(f"layer {index}: weights must be [out, in] and bias [out]; got {w.shape} and {b.shape}")
        v_bias = config.bias_voltage_v if config.bias_voltage_v is not None else v_in
        signed = np.concatenate([w, (b * v_in / v_bias)[:, None]], axis=1)
        yield index, index == len(weights) - 1, signed, v_in, v_bias
        v_in = config.hidden_rail_v


def layer_neuron(config: MappingConfig, weight_scale_s: float, v_in: float, last: bool) -> NeuronModel:
    """The neuron whose difference stage outputs ``S z`` for a layer of weight scale ``k``."""
    scale = config.output_scale_v if last else config.hidden_rail_v
    return NeuronModel(
        feedback_resistance_ohm=scale / (config.difference_gain * weight_scale_s * v_in),
        difference_gain=config.difference_gain,
        open_loop_gain=config.open_loop_gain,
        offset_v=config.offset_v,
        saturation_v=config.output_swing_v if last else config.hidden_rail_v,
    )


def map_weights(
    weights: list[np.ndarray], biases: list[np.ndarray], config: MappingConfig = MappingConfig()
) -> Circuit:
    """Build the circuit for weight matrices ``[out, in]`` and bias vectors."""
    cell = config.make_cell()
    g_min, g_max = cell.g_min, cell.g_max
    layers = []
    for index, last, signed, v_in, v_bias in signed_layers(weights, biases, config):
        peak = float(np.max(np.abs(signed)))
        if peak == 0:
            raise ValueError(f"layer {index} has all-zero weights and bias; nothing to map")
        k = (g_max - g_min) / peak
        if config.pair_encoding == "low":
            g_plus = g_min + k * np.maximum(signed, 0.0).T
            g_minus = g_min + k * np.maximum(-signed, 0.0).T
        else:
            g_mid = 0.5 * (g_max + g_min)
            g_plus = g_mid + 0.5 * k * signed.T
            g_minus = g_mid - 0.5 * k * signed.T
        n_out = signed.shape[0]
        plus, minus = column_pairs(n_out, config.layout)
        g = np.empty((signed.shape[1], 2 * n_out))
        g[:, plus] = g_plus
        g[:, minus] = g_minus
        layers.append(Layer(conductance=g, plus_columns=plus, minus_columns=minus,
                            neuron=layer_neuron(config, k, v_in, last), bias_voltage_v=v_bias,
                            r_word_ohm=config.r_word_ohm, r_bit_ohm=config.r_bit_ohm,
                            input_scale_v=v_in, weight_scale_s=k))
    return Circuit(layers=tuple(layers), cell=cell, input_scale_v=config.v_read_v,
                   output_scale_v=config.output_scale_v, metadata={"mapping": config.__dict__.copy()})


def map_network(network: TrainedNetwork, config: MappingConfig = MappingConfig()) -> Circuit:
    """Build the circuit that implements a trained network."""
    circuit = map_weights(network.weights, network.biases, config)
    return circuit.replace(metadata={**circuit.metadata, "widths": list(network.config.widths)})
