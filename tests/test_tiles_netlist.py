"""Tiled layers in the SPICE and Spectre netlists: each tile its own drivers and wire segments, the
row tiles of a column on one neuron input (or each on its own stage and a summing source), and
ngspice on such a circuit agreeing with the nodal engine."""

from __future__ import annotations

import math
import re
import shutil

import numpy as np
import pytest

from neurodtco import MappingConfig, simulate
from neurodtco import netlist as nl
from neurodtco.circuit import Circuit
from neurodtco.engines.ngspice import NgspiceEngine
from neurodtco.mapping import map_ops, map_weights
from neurodtco.ops import Conv, ConvGeometry, Dense

needs_ngspice = pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice is not installed")


def tiled_mlp(combine: str, cell: str = "linear", gain: float = 1e4) -> Circuit:
    """12-8-4 with 5-row, 6-column tiles: 3 x 3 tiles, then 2 x 2 (1 ohm wires, an offset, clamps)."""
    rng = np.random.default_rng(2)
    weights = [rng.normal(0, 1, (8, 12)) / math.sqrt(12), rng.normal(0, 1, (4, 8)) / math.sqrt(8)]
    biases = [rng.normal(0, 0.2, 8), rng.normal(0, 0.2, 4)]
    config = MappingConfig(cell=cell, r_word_ohm=1.0, r_bit_ohm=1.0, open_loop_gain=gain, offset_v=3e-3,
                           output_swing_v=0.15, tile_rows=5, tile_cols=6, tile_combine=combine)
    return map_weights(weights, biases, config)


def inputs(n: int) -> np.ndarray:
    return np.random.default_rng(4).uniform(0.0, 0.2, (n, 12))


def components(elements: list[nl.Element]) -> dict[str, str]:
    """Nodes joined by wire segments (resistors and 0 V sources named after a segment), by union-find."""
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            node = parent[node]
        return node

    for e in elements:
        if e.name[:2] in ("rw", "rb", "vw", "vb"):
            parent[root(e.nodes[0])] = root(e.nodes[1])
    return {node: root(node) for node in list(parent)}


@pytest.mark.parametrize("combine", ["shared", "summing"])
def test_each_tile_has_its_own_drivers_and_wires_ending_on_its_neuron_inputs(combine):
    circuit = tiled_mlp(combine)
    elements = nl.circuit_elements(circuit)
    by_name = {e.name: e for e in elements}
    assert len(by_name) == len(elements)  # names are unique
    comp = components(elements)
    for l, layer in enumerate(circuit.layers):
        tiles = layer.tiles
        row_tiles, col_tiles = layer.tiling.grid_shape
        assert (row_tiles, col_tiles) == [(3, 3), (2, 2)][l]
        cells = layer.n_rows * layer.n_columns
        for prefix in ("rw", "rb"):
            assert sum(1 for e in elements if e.name.startswith(f"{prefix}{l}_")) == cells
        # a driver (and its meter) for every row of every column block
        meters = [e for e in elements if e.name.startswith(f"vs{l}_")]
        assert len(meters) == layer.n_rows * col_tiles
        driver = {e.nodes[1]: e.nodes[0] for e in meters}
        for tile in tiles:
            a, b = tile.grid
            for i in range(tile.rows.start, tile.rows.stop):
                start = nl.row_start_node(l, i, b)
                source = "bias" if i == layer.n_rows - 1 else ("x" if l == 0 else f"a{l - 1}_")
                assert driver[start].startswith(source)
                # the word line of row i in this tile is exactly the tile's cells of that row
                line = {n for n, r in comp.items() if r == comp[start]} - {start}
                assert line == {nl.word_node(l, i, j) for j in range(tile.columns.start, tile.columns.stop)}
            for j in range(tile.columns.start, tile.columns.stop):
                n = nl.neuron_in_node(l, j, a if combine == "summing" else None)
                bits = {node for node, r in comp.items() if r == comp[n] and node.startswith("b")}
                own = {nl.bit_node(l, i, j) for i in range(tile.rows.start, tile.rows.stop)}
                # shared: every row tile of the column ends on n; summing: only this tile does
                expected = {nl.bit_node(l, i, j) for i in range(layer.n_rows)} if combine == "shared" else own
                assert bits == expected
        stages = [e for e in elements if e.name.startswith((f"et{l}_", f"rf{l}_"))]
        assert len(stages) == 2 * layer.n_columns * (row_tiles if combine == "summing" else 1)
        sums = [e for e in elements if e.name.startswith(f"bs{l}_")]
        if combine == "summing":
            assert len(sums) == layer.n_columns
            assert by_name[f"bs{l}_0"].terms == tuple(nl.tia_out_node(l, 0, r) for r in range(row_tiles))
            assert by_name[f"bs{l}_0"].nodes == (nl.tia_out_node(l, 0), "0")
        else:
            assert not sums


@pytest.mark.parametrize("combine", ["shared", "summing"])
def test_spice_and_spectre_netlists_of_a_tiled_circuit_hold_the_same_elements(combine):
    circuit = tiled_mlp(combine)
    x = inputs(2)
    spice = nl.write_spice(circuit, x).splitlines()
    spectre = nl.write_spectre(circuit, x).splitlines()
    elements = nl.circuit_elements(circuit)
    spice_heads = {line.split()[0]: line for line in spice if line and not line.startswith(("*", ".", "+"))}
    spectre_heads = {line.split()[0]: line for line in spectre if re.match(r"\w+ \(", line)}
    assert set(spice_heads) - {nl.INDEX_SOURCE, "set", "run", "write", "quit"} == {e.name for e in elements}
    assert set(spectre_heads) == {e.name for e in elements}
    for e in elements:
        assert spice_heads[e.name].startswith(f"{e.name} {' '.join(e.nodes)} ")
        assert spectre_heads[e.name].startswith(f"{e.name} ({' '.join(e.nodes)}) ")
    if combine == "summing":
        assert spice_heads["bs0_3"] == "bs0_3 t0_3 0 v=v(t0_3_0)+v(t0_3_1)+v(t0_3_2)"
        assert spectre_heads["bs0_3"] == "bs0_3 (t0_3 0) bsource v=v(t0_3_0)+v(t0_3_1)+v(t0_3_2)"


def test_untiled_names_are_unchanged():
    circuit = tiled_mlp("shared").map_layers(lambda i, layer: layer.replace(tiling=None))
    names = {e.name for e in nl.circuit_elements(circuit)}
    assert {"vs0_0", "rw0_0_0", "et0_0", "rf0_0"} <= names
    assert not any(n.startswith("bs") for n in names)
    assert nl.row_start_node(0, 3) == "s0_3" and nl.row_start_node(0, 3, 1) == "s0_3_1"


@needs_ngspice
@pytest.mark.parametrize("combine, cell, gain", [("shared", "linear", 1e4), ("summing", "linear", 1e4),
                                                ("summing", "gap", 1e4), ("shared", "gap", 1e4),
                                                ("shared", "gap", math.inf)])
def test_ngspice_on_a_tiled_circuit_agrees_with_nodal(combine, cell, gain):
    """Measured: 2e-14 V (linear) and 4e-12 V (gap) at most; the check is the 1 uV goal."""
    circuit = tiled_mlp(combine, cell, gain)
    x = inputs(6)
    spice = NgspiceEngine().run(circuit, x, return_hidden=True)
    nodal = simulate(circuit, x, engine="nodal", return_hidden=True)
    assert np.abs(spice.outputs_v - nodal.outputs_v).max() < 1e-6
    assert np.abs(spice.hidden_v[0] - nodal.hidden_v[0]).max() < 1e-6
    # the tiles matter at this precision: the untiled circuit is a different one
    untiled = simulate(circuit.map_layers(lambda i, layer: layer.replace(tiling=None)), x, engine="nodal")
    assert np.abs(untiled.outputs_v - spice.outputs_v).max() > 1e-5


def conv_circuit() -> Circuit:
    rng = np.random.default_rng(0)
    geometry = ConvGeometry((1, 4, 4), (3, 3))
    ops = [Conv(rng.normal(size=(2, 1, 3, 3)), rng.normal(size=2) * 0.1, geometry, "relu"),
           Dense(rng.normal(size=(3, 8)), rng.normal(size=3) * 0.1, None)]
    return map_ops(ops, MappingConfig())


def test_time_multiplexed_stages_are_refused_naming_the_nodal_engine():
    circuit = conv_circuit()
    x = np.full((1, 16), 0.1)
    for call in (lambda: nl.write_spice(circuit, x), lambda: nl.write_spectre(circuit, x),
                 lambda: NgspiceEngine(executable="no-such-ngspice").run(circuit, x)):
        with pytest.raises(ValueError, match="convolution/pooling/residual stages.*nodal engine"):
            call()


def test_ngspice_refuses_node_reports_of_tiled_layers_like_the_other_engines():
    with pytest.raises(ValueError, match="untiled"):
        NgspiceEngine(executable="no-such-ngspice").run(tiled_mlp("shared"), inputs(1), return_power=True)
