"""The immutable description of an analog inference chip; it knows nothing of simulation.

Conventions (shared with every engine and netlist writer; see DESIGN.md):

* An array is indexed ``[row, column]``. Rows are word lines (inputs), driven at their left end
  (column 0 side) through one word-line segment ``r_word_ohm``; between neighbouring cells of a
  row there is one more segment. Columns are bit lines (outputs), collected at their bottom end
  (last row side) through one bit-line segment ``r_bit_ohm`` into the neuron input; between
  neighbouring cells of a column there is one more segment. So a ``R x C`` array has ``R*C``
  word-line segments and ``R*C`` bit-line segments.
* Rows ``0..n_inputs-1`` carry the layer's inputs; the last row is the bias row, driven at
  ``bias_voltage_v``.
* Neuron ``j`` reads the column pair ``(plus_columns[j], minus_columns[j])``. Each column ends in
  a transimpedance op-amp: feedback resistor ``R_f`` from its output to its inverting input (the
  column's collection node ``n``), non-inverting input at ``offset_v``; with open-loop gain
  ``A`` its output is ``t = A * (offset_v - n)``, and Kirchhoff at ``n`` closes the loop
  (``A = inf`` makes ``n`` a virtual ground at ``offset_v``). A difference stage of resistor ratio
  ``r = difference_gain`` built on an op-amp of the same ``A`` gives
  ``d = r / (1 + (1 + r) / A) * (t_minus - t_plus)``; the activation clamps ``d`` to
  ``[-saturation_v, +saturation_v]`` (the stage's rails; ``None`` means no clamp).
  With ideal op-amps and wires, ``d = r * R_f * (I_plus - I_minus)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Optional, Sequence

import numpy as np

from ._validate import check_finite_array, check_non_negative, check_positive
from .devices import CellModel


@dataclass(frozen=True)
class NeuronModel:
    """Op-amp neuron: transimpedance stages, a difference stage and a saturating activation."""

    feedback_resistance_ohm: float
    difference_gain: float = 1.0
    open_loop_gain: float = math.inf
    offset_v: float = 0.0
    saturation_v: Optional[float] = None

    def __post_init__(self) -> None:
        check_positive("feedback_resistance_ohm", self.feedback_resistance_ohm, "ohms")
        check_positive("difference_gain", self.difference_gain, "a resistor ratio, e.g. 1.0")
        if not (isinstance(self.open_loop_gain, (int, float)) and self.open_loop_gain > 1):
            raise ValueError(
                f"open_loop_gain={self.open_loop_gain!r} is not accepted: expected a number > 1 "
                "(V/V, e.g. 1e4) or inf for an ideal op-amp"
            )
        if not math.isfinite(self.offset_v) or abs(self.offset_v) > 1.0:
            raise ValueError(f"offset_v={self.offset_v!r} is not accepted: expected |offset| <= 1 V (typical: a few mV)")
        if self.saturation_v is not None:
            check_positive("saturation_v", self.saturation_v, "volts, or None for an unclamped output")

    @property
    def closed_loop_difference_gain(self) -> float:
        """Gain of the difference stage including the op-amp's finite open-loop gain."""
        r = self.difference_gain
        if math.isinf(self.open_loop_gain):
            return r
        return r / (1.0 + (1.0 + r) / self.open_loop_gain)

    def activate(self, d: np.ndarray) -> np.ndarray:
        """Apply the saturating activation (clamp at the rails) to difference-stage outputs."""
        if self.saturation_v is None:
            return d
        return np.clip(d, -self.saturation_v, self.saturation_v)


def _frozen_array(values: Any, dtype: Any) -> np.ndarray:
    array = np.array(values, dtype=dtype, copy=True)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class Layer:
    """One synaptic array with its wires and its neurons."""

    conductance: np.ndarray
    plus_columns: np.ndarray
    minus_columns: np.ndarray
    neuron: NeuronModel
    bias_voltage_v: float
    r_word_ohm: float = 0.0
    r_bit_ohm: float = 0.0
    input_scale_v: float = 0.2
    weight_scale_s: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "conductance", _frozen_array(self.conductance, np.float64))
        object.__setattr__(self, "plus_columns", _frozen_array(self.plus_columns, np.int64))
        object.__setattr__(self, "minus_columns", _frozen_array(self.minus_columns, np.int64))
        g = self.conductance
        if g.ndim != 2 or g.shape[0] < 2 or g.shape[1] < 1:
            raise ValueError(f"conductance must be a [rows, columns] array with at least 2 rows (inputs + bias); got shape {g.shape}")
        check_finite_array("conductance", g)
        if np.any(g < 0):
            where = tuple(int(i) for i in np.argwhere(g < 0)[0])
            raise ValueError(f"conductance[{where}]={g[where]:g} S is negative; conductances must be >= 0 S")
        n_cols = g.shape[1]
        for name, cols in (("plus_columns", self.plus_columns), ("minus_columns", self.minus_columns)):
            if cols.ndim != 1 or cols.size == 0 or cols.min() < 0 or cols.max() >= n_cols:
                raise ValueError(f"{name} must list column indices in [0, {n_cols - 1}]; got {cols.tolist()}")
        if self.plus_columns.shape != self.minus_columns.shape:
            raise ValueError("plus_columns and minus_columns must have one entry per neuron")
        check_non_negative("r_word_ohm", self.r_word_ohm, "ohms per word-line segment; 0 means ideal wires")
        check_non_negative("r_bit_ohm", self.r_bit_ohm, "ohms per bit-line segment; 0 means ideal wires")
        check_positive("input_scale_v", self.input_scale_v, "volts for an activation of 1")
        check_positive("weight_scale_s", self.weight_scale_s, "siemens per unit weight")
        if not math.isfinite(self.bias_voltage_v):
            raise ValueError(f"bias_voltage_v={self.bias_voltage_v!r} must be a finite voltage")

    @property
    def n_rows(self) -> int:
        """Physical rows, bias row included."""
        return int(self.conductance.shape[0])

    @property
    def n_columns(self) -> int:
        """Physical columns (two per neuron for differential pairs)."""
        return int(self.conductance.shape[1])

    @property
    def n_inputs(self) -> int:
        """Input rows (the bias row excluded)."""
        return self.n_rows - 1

    @property
    def n_outputs(self) -> int:
        """Neurons."""
        return int(self.plus_columns.size)

    def effective_weights(self) -> np.ndarray:
        """Signed weights ``[n_outputs, n_inputs + 1]`` the conductances encode (bias last)."""
        diff = self.conductance[:, self.plus_columns] - self.conductance[:, self.minus_columns]
        w = diff.T / self.weight_scale_s
        w[:, -1] *= self.bias_voltage_v / self.input_scale_v
        return w

    def row_voltages(self, inputs_v: np.ndarray) -> np.ndarray:
        """Word-line drive voltages ``[batch, rows]``: the inputs plus the bias row."""
        bias = np.full((inputs_v.shape[0], 1), self.bias_voltage_v)
        return np.concatenate([inputs_v, bias], axis=1)

    def replace(self, **changes: Any) -> "Layer":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


@dataclass(frozen=True, eq=False)
class Circuit:
    """A whole chip: arrays in order, the cell model they are built from, and the I/O scaling."""

    layers: tuple[Layer, ...]
    cell: CellModel
    input_scale_v: float = 0.2
    output_scale_v: float = 0.05
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise ValueError("a circuit needs at least one layer")
        for i, (a, b) in enumerate(zip(self.layers, self.layers[1:])):
            if a.n_outputs != b.n_inputs:
                raise ValueError(f"layer {i} has {a.n_outputs} outputs but layer {i + 1} has {b.n_inputs} inputs")
        check_positive("input_scale_v", self.input_scale_v, "volts for a pixel value of 1")
        check_positive("output_scale_v", self.output_scale_v, "volts per unit of the software logits")

    @property
    def n_layers(self) -> int:
        """Number of synaptic arrays."""
        return len(self.layers)

    @property
    def n_inputs(self) -> int:
        """Inputs of the first array."""
        return self.layers[0].n_inputs

    @property
    def n_outputs(self) -> int:
        """Neurons of the last array."""
        return self.layers[-1].n_outputs

    @property
    def conductances(self) -> list[np.ndarray]:
        """The programmed conductance array of every layer."""
        return [layer.conductance for layer in self.layers]

    def with_conductances(self, conductances: Sequence[np.ndarray]) -> "Circuit":
        """A copy whose layers hold new conductance arrays of the same shapes."""
        if len(conductances) != self.n_layers:
            raise ValueError(f"expected {self.n_layers} conductance arrays, got {len(conductances)}")
        layers = []
        for i, (layer, g) in enumerate(zip(self.layers, conductances)):
            if np.shape(g) != layer.conductance.shape:
                raise ValueError(f"layer {i}: conductance shape {np.shape(g)} differs from {layer.conductance.shape}")
            layers.append(layer.replace(conductance=g))
        return replace(self, layers=tuple(layers))

    def replace_layer(self, index: int, **changes: Any) -> "Circuit":
        """A copy with one layer's fields changed."""
        self.check_layer_index(index)
        layers = list(self.layers)
        layers[index] = layers[index].replace(**changes)
        return replace(self, layers=tuple(layers))

    def replace(self, **changes: Any) -> "Circuit":
        """A copy with some circuit-level fields changed."""
        return replace(self, **changes)

    def map_layers(self, fn: Any) -> "Circuit":
        """A copy with ``fn(index, layer) -> layer`` applied to every layer."""
        return replace(self, layers=tuple(fn(i, layer) for i, layer in enumerate(self.layers)))

    def check_layer_index(self, index: int) -> None:
        """Refuse a layer index that does not exist, naming the valid range."""
        if not isinstance(index, (int, np.integer)) or not 0 <= index < self.n_layers:
            raise ValueError(f"layer {index!r} does not exist: this circuit has layers 0..{self.n_layers - 1}")

    def check_inputs(self, inputs_v: Any) -> np.ndarray:
        """Validate and return a float64 ``[batch, n_inputs]`` input-voltage array."""
        x = np.asarray(inputs_v, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            raise ValueError(f"inputs must have shape [batch, {self.n_inputs}] (volts); got {np.shape(inputs_v)}")
        check_finite_array("inputs", x)
        return x
