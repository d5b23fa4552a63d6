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
  With ideal op-amps and wires, ``d = r * R_f * (I_plus - I_minus)``. A ``relu`` neuron clamps to
  ``[0, saturation_v]`` instead.
* Tiles (``Layer.tiling``): the layer's conductance matrix is cut into blocks of rows and of
  columns, each block a separate physical array with its own word-line and bit-line segments,
  its rows driven by their own drivers at the same voltages. A differential pair never straddles
  two column blocks. With ``combine="shared"`` the bit lines of every row tile of a column end on
  the same neuron input node: their currents add there (through each tile's own last bit
  segment), and with a finite op-amp gain the tiles couple through that node.
* Stages (``Circuit.stages``): the order in which arrays are read and what happens between them.
  ``Crossbar(layer, conv)`` reads a layer (once per output position for a convolution, whose
  inputs are unrolled into rows: time-multiplexed, with ideal sample-and-hold between stages);
  ``ops.Pool`` is an ideal analog max (winner-take-all) or averaging stage; ``ops.Save`` and
  ``Sum`` form a residual connection (an ideal analog summing stage, then the activation).
  ``None`` means the plain chain: every layer once, in order, on dense inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Optional, Sequence, Union

import numpy as np

from ._validate import check_finite_array, check_non_negative, check_positive
from .devices import CellModel
from .ops import ConvGeometry, Pool, Save, activate


@dataclass(frozen=True)
class NeuronModel:
    """Op-amp neuron: transimpedance stages, a difference stage and a saturating activation."""

    feedback_resistance_ohm: float
    difference_gain: float = 1.0
    open_loop_gain: float = math.inf
    offset_v: float = 0.0
    saturation_v: Optional[float] = None
    activation: Literal["hardtanh", "relu"] = "hardtanh"

    def __post_init__(self) -> None:
        if self.activation not in ("hardtanh", "relu"):
            raise ValueError(f"activation={self.activation!r} is not accepted: choose 'hardtanh' (clamp to "
                             "+-saturation_v) or 'relu' (clamp to [0, saturation_v])")
        if self.activation == "relu" and self.saturation_v is None:
            raise ValueError("a relu neuron saturates at its rail: give saturation_v (volts)")
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
        return activate(d, self.activation, self.saturation_v)


def _frozen_array(values: Any, dtype: Any) -> np.ndarray:
    array = np.array(values, dtype=dtype, copy=True)
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class Tile:
    """One physical array of a layer: which rows and columns of the layer's matrix it holds, and where it sits."""

    index: int
    grid: tuple[int, int]      # (row block, column block)
    rows: slice
    columns: slice
    origin: tuple[int, int]    # top-left cell on the die, in cell pitches (row, column)


@dataclass(frozen=True)
class Tiling:
    """How a layer's matrix is cut into physical tiles of at most ``tile_shape`` cells.

    ``row_starts``/``column_starts`` are the first row/column of each block (both start at 0).
    Tiles sit on the die in a grid of pitch ``tile_shape`` from ``origin`` (cell units), so that
    spatial defect fields can span them. ``combine``: ``shared`` (the row tiles of a column feed
    one neuron input node) or ``summing`` (each tile has its own transimpedance stage, an ideal
    summing amplifier adds them).
    """

    row_starts: tuple[int, ...]
    column_starts: tuple[int, ...]
    tile_shape: tuple[int, int]
    combine: Literal["shared", "summing"] = "shared"
    origin: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "row_starts", tuple(int(v) for v in self.row_starts))
        object.__setattr__(self, "column_starts", tuple(int(v) for v in self.column_starts))
        object.__setattr__(self, "tile_shape", tuple(int(v) for v in self.tile_shape))
        object.__setattr__(self, "origin", tuple(int(v) for v in self.origin))
        for name, starts in (("row_starts", self.row_starts), ("column_starts", self.column_starts)):
            if not starts or starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:])):
                raise ValueError(f"{name}={starts!r} is not accepted: expected increasing block starts beginning at 0")
        if len(self.tile_shape) != 2 or min(self.tile_shape) < 1:
            raise ValueError(f"tile_shape={self.tile_shape!r} is not accepted: expected (rows, columns) >= 1")
        if self.combine not in ("shared", "summing"):
            raise ValueError(f"combine={self.combine!r} is not accepted: choose 'shared' (row tiles feed one neuron "
                             "input) or 'summing' (a transimpedance stage per tile and a summing amplifier)")

    @property
    def grid_shape(self) -> tuple[int, int]:
        """Row blocks x column blocks."""
        return len(self.row_starts), len(self.column_starts)

    @property
    def n_tiles(self) -> int:
        """Physical arrays."""
        return len(self.row_starts) * len(self.column_starts)

    def tiles(self, n_rows: int, n_columns: int) -> list["Tile"]:
        """Every tile of a ``n_rows x n_columns`` matrix, row block major."""
        rows = list(self.row_starts) + [n_rows]
        cols = list(self.column_starts) + [n_columns]
        out = []
        for a in range(len(self.row_starts)):
            for b in range(len(self.column_starts)):
                out.append(Tile(len(out), (a, b), slice(rows[a], rows[a + 1]), slice(cols[b], cols[b + 1]),
                                (self.origin[0] + a * self.tile_shape[0], self.origin[1] + b * self.tile_shape[1])))
        return out

    def check(self, n_rows: int, n_columns: int, plus: np.ndarray, minus: np.ndarray) -> None:
        """Refuse a tiling that does not fit the matrix, exceeds the tile size or splits a pair."""
        if self.row_starts[-1] >= n_rows or self.column_starts[-1] >= n_columns:
            raise ValueError(f"tiling starts {self.row_starts}/{self.column_starts} exceed the {n_rows} x {n_columns} matrix")
        for tile in self.tiles(n_rows, n_columns):
            size = (tile.rows.stop - tile.rows.start, tile.columns.stop - tile.columns.start)
            if size[0] > self.tile_shape[0] or size[1] > self.tile_shape[1]:
                raise ValueError(f"tile {tile.grid} is {size[0]} x {size[1]} cells, larger than {self.tile_shape}")
        block = np.searchsorted(np.asarray(self.column_starts), np.arange(n_columns), side="right") - 1
        split = np.flatnonzero(block[plus] != block[minus])
        if split.size:
            j = int(split[0])
            raise ValueError(f"neuron {j}'s pair (columns {int(plus[j])}, {int(minus[j])}) straddles two column tiles; "
                             "a differential pair must sit in one tile")


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
    tiling: Optional[Tiling] = None

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
        if self.tiling is not None:
            self.tiling.check(g.shape[0], n_cols, self.plus_columns, self.minus_columns)

    @property
    def tiles(self) -> list[Tile]:
        """The layer's physical arrays (one spanning the whole matrix when it is not tiled)."""
        if self.tiling is None:
            return [Tile(0, (0, 0), slice(0, self.n_rows), slice(0, self.n_columns), (0, 0))]
        return self.tiling.tiles(self.n_rows, self.n_columns)

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


@dataclass(frozen=True)
class Crossbar:
    """Read layer ``layer``: on dense inputs, or once per output position of a convolution (``conv``)."""

    layer: int
    conv: Optional[ConvGeometry] = None


@dataclass(frozen=True)
class Sum:
    """Residual add: the activations saved under ``slot`` plus the current ones, then the activation (volts)."""

    slot: str
    activation: Optional[Literal["hardtanh", "relu"]] = "hardtanh"
    rail_v: float = 0.2

    def apply(self, x: np.ndarray, saved: np.ndarray) -> np.ndarray:
        """An ideal analog summing stage followed by the saturating activation."""
        return activate(x + saved, self.activation, self.rail_v)


Stage = Union[Crossbar, Pool, Save, Sum]


@dataclass(frozen=True, eq=False)
class Circuit:
    """A whole chip: arrays in order, the cell model they are built from, and the I/O scaling."""

    layers: tuple[Layer, ...]
    cell: CellModel
    input_scale_v: float = 0.2
    output_scale_v: float = 0.05
    metadata: dict = field(default_factory=dict)
    stages: Optional[tuple[Stage, ...]] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise ValueError("a circuit needs at least one layer")
        if self.stages is not None:
            object.__setattr__(self, "stages", tuple(self.stages))
        self._walk_shapes()
        check_positive("input_scale_v", self.input_scale_v, "volts for a pixel value of 1")
        check_positive("output_scale_v", self.output_scale_v, "volts per unit of the software logits")

    def stage_list(self) -> tuple[Stage, ...]:
        """The stages in order (the plain chain of every layer when ``stages`` is None)."""
        if self.stages is None:
            return tuple(Crossbar(i) for i in range(len(self.layers)))
        return self.stages

    def _walk_shapes(self) -> tuple[int, int]:
        """Check that every stage fits the activations it receives; returns (inputs, outputs)."""
        size: Optional[int] = None
        first: Optional[int] = None
        saved: dict[str, int] = {}
        used: list[int] = []

        def expect(n: int, what: str) -> None:
            nonlocal size, first
            if size is None:
                size = first = n
            elif size != n:
                raise ValueError(f"{what} expects {n} inputs but receives {size}")

        for k, stage in enumerate(self.stage_list()):
            if isinstance(stage, Crossbar):
                self.check_layer_index(stage.layer)
                layer = self.layers[stage.layer]
                used.append(stage.layer)
                if stage.conv is None:
                    expect(layer.n_inputs, f"stage {k} (layer {stage.layer})")
                    size = layer.n_outputs
                else:
                    if layer.n_inputs != stage.conv.patch_size:
                        raise ValueError(f"stage {k}: layer {stage.layer} has {layer.n_inputs} input rows but its "
                                         f"convolution reads patches of {stage.conv.patch_size}")
                    expect(int(np.prod(stage.conv.in_shape)), f"stage {k} (convolution on layer {stage.layer})")
                    size = layer.n_outputs * stage.conv.n_positions
            elif isinstance(stage, Pool):
                expect(int(np.prod(stage.geometry.in_shape)), f"stage {k} ({stage.geometry.kind} pooling)")
                size = int(np.prod(stage.geometry.out_shape))
            elif isinstance(stage, Save):
                if size is None:
                    raise ValueError(f"stage {k}: a residual branch cannot start before the first layer")
                saved[stage.slot] = size
            elif isinstance(stage, Sum):
                if stage.slot not in saved:
                    raise ValueError(f"stage {k}: nothing was saved under {stage.slot!r} before this residual add")
                expect(saved[stage.slot], f"stage {k} (residual add of {stage.slot!r})")
            else:
                raise ValueError(f"stage {k}: {type(stage).__name__} is not a circuit stage")
        if sorted(used) != list(range(len(self.layers))):
            raise ValueError(f"every layer must be read by exactly one stage; the stages read layers {used}")
        return int(first), int(size)

    @property
    def n_layers(self) -> int:
        """Number of synaptic arrays."""
        return len(self.layers)

    @property
    def n_inputs(self) -> int:
        """Input voltages per image (pixels; for a convolution first, the whole image)."""
        return self._walk_shapes()[0]

    @property
    def n_outputs(self) -> int:
        """Output voltages per image."""
        return self._walk_shapes()[1]

    @property
    def n_arrays(self) -> int:
        """Physical arrays (tiles) over all layers."""
        return sum(len(layer.tiles) for layer in self.layers)

    @property
    def n_cells(self) -> int:
        """Memory cells over all layers."""
        return sum(layer.conductance.size for layer in self.layers)

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
