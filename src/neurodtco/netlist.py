"""Netlists of a whole ``Circuit`` (every array, every wire segment, every neuron) for ngspice and Spectre.

Both writers start from one list of ``Element`` records built by ``circuit_elements``, so the
SPICE and the Spectre netlist describe exactly the same circuit; only the spelling differs. The
circuit follows the conventions of ``circuit.py`` literally:

* layer ``l``, cell ``(i, j)`` has a word-line node ``w{l}_{i}_{j}`` and a bit-line node
  ``b{l}_{i}_{j}``; the cell sits between them (a resistor ``1/G`` for linear cells, a current
  source ``I = G sf sinh(V/V0)`` for the gap model; an open cell, ``G = 0``, is no element);
* row ``i`` is driven from node ``s{l}_{i}``, which a 0 V source ``vs{l}_{i}`` (it measures the
  drive current) ties to the row's driver: the input node ``x{i}`` for layer 0, the previous
  layer's activation node ``a{l-1}_{i}`` otherwise, and the bias node ``bias{l}`` for the last row;
* one word segment from ``s{l}_{i}`` to cell ``(i, 0)`` and one between neighbouring cells of a
  row; one bit segment between neighbouring cells of a column and one from the last row into the
  neuron input ``n{l}_{j}``. A segment of 0 ohm is a 0 V source (an exact short), never a tiny
  resistor;
* the transimpedance stage of column ``j``: with finite gain ``A`` a VCVS
  ``t = A (V(off{l}) - V(n))`` and ``R_f`` from ``t`` to ``n``; with ``A = inf`` a 0 V source
  holds ``n`` at the offset (the virtual ground) and a CCVS makes ``t = offset - R_f I_in``;
* neuron ``k``: a VCVS ``d = r / (1 + (1 + r)/A) (t_minus - t_plus)`` and the activation
  ``a = clamp(d, -sat, +sat)`` (a behavioural source; a unity VCVS when there is no clamp).

A tiled layer (``Layer.tiling``) is the same cells cut into separate arrays. Cell nodes keep their
layer-wide names (each cell belongs to one tile); each tile has its own row drivers, so the row
start node and meter of row ``i`` in column block ``c`` are ``s{l}_{i}_{c}`` and ``vs{l}_{i}_{c}``;
a tile's word line starts at its first column and its bit lines end, through their own last
segment, below its last row. With ``combine="shared"`` the row tiles of a column end on the same
neuron input ``n{l}_{j}``; with ``summing`` row tile ``r`` ends on ``n{l}_{j}_{r}`` with its own
transimpedance stage (output ``t{l}_{j}_{r}``) and an ideal summing source
``t{l}_{j} = sum_r t{l}_{j}_{r}`` feeds the difference stage.

Many input vectors go through one simulator run. In SPICE each input node is a B-source
``V = pwl(V(idx), 0, v0, 1, v1, ...)`` of an index node swept by ``.dc vidx 0 N-1 1``: ngspice
orders the matrix once for the whole sweep. In Spectre the inputs are netlist parameters swept
together by a ``paramset``. Element and node names come only from layer, row and column numbers.

The writers describe the plain chain of layers, each read once on dense inputs; convolutions
(read once per output position, time-multiplexed), pooling and residual stages are refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Sequence

import numpy as np

from .circuit import Circuit, Crossbar, Layer

#: Tolerances written into the netlists: tight enough that the simulator agrees with the exact
#: nodal solution to well under a microvolt (ngspice's defaults stop at 1e-3 relative, 1 uV).
DEFAULT_RELTOL = 1e-10
DEFAULT_VNTOL_V = 1e-12
DEFAULT_ABSTOL_A = 1e-16

INDEX_SOURCE = "vidx"
INDEX_NODE = "idx"


@dataclass(frozen=True)
class Element:
    """One circuit element, independent of netlist syntax.

    ``kind`` is one of ``resistor`` (``value`` ohm), ``vsource`` (``value`` volts, DC), ``input``
    (voltage source to ground whose value is input ``input_index`` of each vector), ``vcvs``
    (nodes ``out+ out- ctrl+ ctrl-``, ``value`` = gain), ``ccvs`` (``value`` = transresistance in
    ohm, ``control`` = name of the 0 V source whose current it senses), ``sinh`` (current
    ``value * sinh(V/v0_v)`` from the first node to the second), ``clamp`` (voltage source
    to ground equal to ``V(control)`` limited to ``[-limit_v, +limit_v]``) and ``sum`` (voltage
    source to ground equal to the sum of the voltages of the nodes in ``terms``).
    """

    kind: str
    name: str
    nodes: tuple[str, ...]
    value: float = 0.0
    control: str = ""
    v0_v: float = 0.0
    limit_v: float = 0.0
    input_index: int = -1
    terms: tuple[str, ...] = ()


# Node names: one place, so that engines can find every voltage they save.
def word_node(layer: int, row: int, col: int) -> str:
    """Word-line node of cell ``(row, col)`` of array ``layer``."""
    return f"w{layer}_{row}_{col}"


def bit_node(layer: int, row: int, col: int) -> str:
    """Bit-line node of cell ``(row, col)`` of array ``layer``."""
    return f"b{layer}_{row}_{col}"


def _suffix(part: Optional[int]) -> str:
    return "" if part is None else f"_{part}"


def row_start_node(layer: int, row: int, block: Optional[int] = None) -> str:
    """Node after the drive-current meter of a row (of column block ``block`` when tiled)."""
    return f"s{layer}_{row}{_suffix(block)}"


def neuron_in_node(layer: int, col: int, row_tile: Optional[int] = None) -> str:
    """Collection node of a column (of one row tile, when tiles sum): the op-amp's inverting input."""
    return f"n{layer}_{col}{_suffix(row_tile)}"


def tia_out_node(layer: int, col: int, row_tile: Optional[int] = None) -> str:
    """Output of a column's transimpedance stage (of one row tile, when tiles sum)."""
    return f"t{layer}_{col}{_suffix(row_tile)}"


def difference_node(layer: int, neuron: int) -> str:
    """Output of a neuron's difference stage, before the activation."""
    return f"d{layer}_{neuron}"


def activation_node(layer: int, neuron: int) -> str:
    """Output of a neuron after the activation clamp."""
    return f"a{layer}_{neuron}"


def input_node(index: int) -> str:
    """Node driven by input ``index`` of the first array."""
    return f"x{index}"


def drive_meter(layer: int, row: int, block: Optional[int] = None) -> str:
    """Name of the 0 V source that measures the current a row's driver (of column block ``block``) delivers."""
    return f"vs{layer}_{row}{_suffix(block)}"


def row_drivers(index: int, layer: Layer) -> list[tuple[int, Optional[int], str, str]]:
    """``(row, column block, start node, meter)`` of every row driver of a layer: one per row and tile column."""
    blocks = [None] if layer.tiling is None else list(range(layer.tiling.grid_shape[1]))
    return [(i, c, row_start_node(index, i, c), drive_meter(index, i, c)) for c in blocks for i in range(layer.n_rows)]


def check_chain(circuit: Circuit) -> None:
    """Refuse circuits with convolution, pooling or residual stages: the netlists describe a plain chain of layers."""
    if circuit.stage_list() != tuple(Crossbar(i) for i in range(circuit.n_layers)):
        raise ValueError("this circuit has convolution/pooling/residual stages (arrays read once per output "
                         "position, time-multiplexed), which the netlist writers and the ngspice engine do not "
                         "describe: simulate it with the nodal engine")


def circuit_elements(circuit: Circuit) -> list[Element]:
    """Every element of the circuit, in a fixed order (inputs, then layer by layer, tile by tile)."""
    check_chain(circuit)
    elements: list[Element] = []
    for i in range(circuit.n_inputs):
        elements.append(Element("input", f"bx{i}", (input_node(i), "0"), input_index=i))
    for l, layer in enumerate(circuit.layers):
        elements += _layer_elements(circuit, l, layer)
    return elements


def _layer_elements(circuit: Circuit, l: int, layer: Layer) -> list[Element]:
    rows = layer.n_rows
    neuron = layer.neuron
    bias, off = f"bias{l}", f"off{l}"
    tiled = layer.tiling is not None
    summing = tiled and layer.tiling.combine == "summing"
    elements = [Element("vsource", f"vbias{l}", (bias, "0"), float(layer.bias_voltage_v)),
                Element("vsource", f"voff{l}", (off, "0"), float(neuron.offset_v))]
    for i, block, start, meter in row_drivers(l, layer):
        if i == rows - 1:
            driver = bias
        elif l == 0:
            driver = input_node(i)
        else:
            driver = activation_node(l - 1, i)
        elements.append(Element("vsource", meter, (driver, start), 0.0))
    g = layer.conductance
    cell = circuit.cell
    for tile in layer.tiles:
        block = tile.grid[1] if tiled else None
        row_tile = tile.grid[0] if summing else None
        for i in range(tile.rows.start, tile.rows.stop):
            for j in range(tile.columns.start, tile.columns.stop):
                left = row_start_node(l, i, block) if j == tile.columns.start else word_node(l, i, j - 1)
                elements.append(_segment(f"w{l}_{i}_{j}", left, word_node(l, i, j), layer.r_word_ohm))
                below = neuron_in_node(l, j, row_tile) if i == tile.rows.stop - 1 else bit_node(l, i + 1, j)
                elements.append(_segment(f"b{l}_{i}_{j}", bit_node(l, i, j), below, layer.r_bit_ohm))
                gij = float(g[i, j])
                if gij == 0.0:
                    continue  # an open cell conducts nothing: no element, exactly as in the nodal solve
                nodes = (word_node(l, i, j), bit_node(l, i, j))
                if cell.is_linear:
                    elements.append(Element("resistor", f"rc{l}_{i}_{j}", nodes, 1.0 / gij))
                else:
                    elements.append(Element("sinh", f"bc{l}_{i}_{j}", nodes, gij * cell.shape_factor,
                                            v0_v=float(cell.v0_v)))
    row_tiles = list(range(layer.tiling.grid_shape[0])) if summing else [None]
    for j in range(layer.n_columns):
        for r in row_tiles:
            elements += _transimpedance(l, j, r, neuron.open_loop_gain, neuron.feedback_resistance_ohm, off)
        if summing:
            elements.append(Element("sum", f"bs{l}_{j}", (tia_out_node(l, j), "0"),
                                    terms=tuple(tia_out_node(l, j, r) for r in row_tiles)))
    diff_gain = float(neuron.closed_loop_difference_gain)
    for k in range(layer.n_outputs):
        plus, minus = int(layer.plus_columns[k]), int(layer.minus_columns[k])
        d, a = difference_node(l, k), activation_node(l, k)
        elements.append(Element("vcvs", f"ed{l}_{k}", (d, "0", tia_out_node(l, minus), tia_out_node(l, plus)),
                                diff_gain))
        if neuron.saturation_v is None:
            elements.append(Element("vcvs", f"ea{l}_{k}", (a, "0", d, "0"), 1.0))
        else:
            elements.append(Element("clamp", f"ba{l}_{k}", (a, "0"), control=d, limit_v=float(neuron.saturation_v)))
    return elements


def _transimpedance(l: int, j: int, r: Optional[int], gain: float, rf: float, off: str) -> list[Element]:
    """The op-amp stage of column ``j`` (of row tile ``r`` when tiles sum)."""
    n, t, tag = neuron_in_node(l, j, r), tia_out_node(l, j, r), f"{l}_{j}{_suffix(r)}"
    if math.isinf(gain):
        return [Element("vsource", f"vg{tag}", (n, off), 0.0),
                Element("ccvs", f"ht{tag}", (t, off), -float(rf), control=f"vg{tag}")]
    return [Element("vcvs", f"et{tag}", (t, "0", off, n), float(gain)),
            Element("resistor", f"rf{tag}", (t, n), float(rf))]


def _segment(name: str, a: str, b: str, r_ohm: float) -> Element:
    if r_ohm == 0.0:
        return Element("vsource", "v" + name, (a, b), 0.0)
    return Element("resistor", "r" + name, (a, b), float(r_ohm))


def _num(x: float) -> str:
    # repr is the shortest text that reads back to the same double: no digits are lost.
    return repr(float(x))


def _check_vectors(circuit: Circuit, inputs_v: np.ndarray) -> np.ndarray:
    x = circuit.check_inputs(inputs_v)
    if len(x) == 0:
        raise ValueError("inputs_v holds no input vector; a netlist needs at least one")
    return x


def node_vectors(circuit: Circuit, *, hidden: bool = True, nodes: bool = False, power: bool = False) -> list[str]:
    """SPICE vector names (``v(node)``, ``i(source)``) an engine saves for the requested outputs."""
    names: list[str] = []
    for l, layer in enumerate(circuit.layers):
        last = l == circuit.n_layers - 1
        if last or hidden or power:
            names += [f"v({activation_node(l, k)})" for k in range(layer.n_outputs)]
        if nodes:
            for i in range(layer.n_rows):
                names += [f"v({word_node(l, i, j)})" for j in range(layer.n_columns)]
                names += [f"v({bit_node(l, i, j)})" for j in range(layer.n_columns)]
            names += [f"v({neuron_in_node(l, j)})" for j in range(layer.n_columns)]
            names += [f"v({tia_out_node(l, j)})" for j in range(layer.n_columns)]
            names += [f"v({difference_node(l, k)})" for k in range(layer.n_outputs)]
        if power:
            drivers = row_drivers(l, layer)
            names += [f"v({start})" for _, _, start, _ in drivers]
            names += [f"i({meter})" for _, _, _, meter in drivers]
    return names


def _wrap(head: str, items: Sequence[str], cont: str, per_line: int = 8) -> list[str]:
    lines = [head]
    for start in range(0, len(items), per_line):
        lines.append(cont + " ".join(items[start:start + per_line]))
    return lines


def write_spice(
    circuit: Circuit,
    inputs_v: np.ndarray,
    *,
    save: Optional[Sequence[str]] = None,
    rawfile: str = "neurodtco.raw",
    reltol: float = DEFAULT_RELTOL,
    vntol_v: float = DEFAULT_VNTOL_V,
    abstol_a: float = DEFAULT_ABSTOL_A,
    title: str = "neurodtco analog inference circuit",
) -> str:
    """An ngspice netlist of the whole circuit that sweeps all ``inputs_v`` ``[batch, n_inputs]``.

    ``save``: SPICE vectors to keep (default: the last layer's outputs); ``rawfile``: the ASCII
    rawfile the ``.control`` block writes (relative to ngspice's working directory).
    """
    x = _check_vectors(circuit, inputs_v)
    for name, value in (("reltol", reltol), ("vntol_v", vntol_v), ("abstol_a", abstol_a)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name}={value!r} is not accepted: expected a positive tolerance")
    if any(c.isspace() for c in rawfile) or not rawfile:
        raise ValueError(f"rawfile={rawfile!r} must be a file name without spaces")
    n = len(x)
    # A pwl with a single point is not accepted by every reader: repeat the only vector.
    table = x if n > 1 else np.concatenate([x, x])
    lines = [f"* {_one_line(title)}",
             f"* {circuit.n_layers} arrays, {n} input vector(s) swept by {INDEX_SOURCE}; written by neurodtco",
             f"{INDEX_SOURCE} {INDEX_NODE} 0 0"]
    for e in circuit_elements(circuit):
        a = " ".join(e.nodes)
        if e.kind == "resistor":
            lines.append(f"{e.name} {a} {_num(e.value)}")
        elif e.kind == "vsource":
            lines.append(f"{e.name} {a} dc {_num(e.value)}")
        elif e.kind == "input":
            pairs = [f"{k},{_num(v)}" for k, v in enumerate(table[:, e.input_index])]
            chunks = [", ".join(pairs[start:start + 6]) for start in range(0, len(pairs), 6)]
            lines.append(f"{e.name} {a} v=pwl(v({INDEX_NODE}),")
            lines += [f"+ {c}," for c in chunks[:-1]] + [f"+ {chunks[-1]})"]
        elif e.kind == "vcvs":
            lines.append(f"{e.name} {a} {_num(e.value)}")
        elif e.kind == "ccvs":
            lines.append(f"{e.name} {a} {e.control} {_num(e.value)}")
        elif e.kind == "sinh":
            p, q = e.nodes
            lines.append(f"{e.name} {a} i={_num(e.value)}*sinh(v({p},{q})/{_num(e.v0_v)})")
        elif e.kind == "clamp":
            lim = _num(e.limit_v)
            lines.append(f"{e.name} {a} v=max(-{lim},min({lim},v({e.control})))")
        elif e.kind == "sum":
            lines.append(f"{e.name} {a} v=" + "+".join(f"v({t})" for t in e.terms))
        else:  # pragma: no cover - circuit_elements makes only the kinds above
            raise AssertionError(e.kind)
    vectors = list(save) if save is not None else node_vectors(circuit, hidden=False)
    lines.append(f".options reltol={_num(reltol)} vntol={_num(vntol_v)} abstol={_num(abstol_a)}")
    lines.append(f".dc {INDEX_SOURCE} 0 {n - 1} 1")
    lines += _wrap(".save", vectors, "+ ", per_line=10)
    lines += [".control", "set filetype=ascii", "run", f"write {rawfile}", "quit", ".endc", ".end", ""]
    return "\n".join(lines)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def write_spectre(
    circuit: Circuit,
    inputs_v: np.ndarray,
    *,
    reltol: float = DEFAULT_RELTOL,
    vabstol_v: float = DEFAULT_VNTOL_V,
    iabstol_a: float = DEFAULT_ABSTOL_A,
    title: str = "neurodtco analog inference circuit",
) -> str:
    """A Spectre netlist of the same circuit; a ``paramset`` sweep runs one DC point per input vector."""
    x = _check_vectors(circuit, inputs_v)
    params = [f"vin{i}" for i in range(circuit.n_inputs)]
    lines = [f"// {_one_line(title)}",
             f"// {circuit.n_layers} arrays, {len(x)} input vector(s) in paramset inputs; written by neurodtco",
             "simulator lang=spectre", "global 0"]
    # One statement per line: Spectre continues lines with a trailing backslash, not SPICE's '+'.
    lines += [f"parameters {p}={_num(v)}" for p, v in zip(params, x[0])]
    for e in circuit_elements(circuit):
        a = "(" + " ".join(e.nodes) + ")"
        if e.kind == "resistor":
            lines.append(f"{e.name} {a} resistor r={_num(e.value)}")
        elif e.kind == "vsource":
            lines.append(f"{e.name} {a} vsource type=dc dc={_num(e.value)}")
        elif e.kind == "input":
            lines.append(f"{e.name} {a} vsource type=dc dc={params[e.input_index]}")
        elif e.kind == "vcvs":
            lines.append(f"{e.name} {a} vcvs gain={_num(e.value)}")
        elif e.kind == "ccvs":
            lines.append(f"{e.name} {a} ccvs probe={e.control} rm={_num(e.value)}")
        elif e.kind == "sinh":
            p, q = e.nodes
            lines.append(f"{e.name} {a} bsource i={_num(e.value)}*sinh(v({p},{q})/{_num(e.v0_v)})")
        elif e.kind == "clamp":
            lim = _num(e.limit_v)
            lines.append(f"{e.name} {a} bsource v=max(-{lim},min({lim},v({e.control})))")
        elif e.kind == "sum":
            lines.append(f"{e.name} {a} bsource v=" + "+".join(f"v({t})" for t in e.terms))
        else:  # pragma: no cover
            raise AssertionError(e.kind)
    lines.append(f"simulatorOptions options reltol={_num(reltol)} vabstol={_num(vabstol_v)} iabstol={_num(iabstol_a)}")
    lines.append("inputs paramset {")
    lines.append(" ".join(params))
    lines += [" ".join(_num(v) for v in row) for row in x]
    lines.append("}")
    lines += ["sweepinputs sweep paramset=inputs {", "dcop dc", "}", ""]
    return "\n".join(lines)


NetlistFormat = Literal["spice", "spectre"]


def write_netlist(circuit: Circuit, inputs_v: np.ndarray, path: str | Path, fmt: NetlistFormat = "spice") -> Path:
    """Write the ngspice (``spice``) or Spectre (``spectre``) netlist to ``path``; returns the path."""
    path = Path(path)
    if fmt == "spice":
        text = write_spice(circuit, inputs_v, rawfile=path.with_suffix(".raw").name)
    elif fmt == "spectre":
        text = write_spectre(circuit, inputs_v)
    else:
        raise ValueError(f"format {fmt!r} is not accepted: choose 'spice' or 'spectre'")
    path.write_text(text)
    return path
