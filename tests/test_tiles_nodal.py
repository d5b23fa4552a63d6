"""Tiled layers in the nodal engine against independent truth: a dense nodal solve of every node of
every tile (written here with SciPy), the untiled layer and the ideal engine in the limit of ideal
wires and op-amps, and each tile solved alone where the tiles do not couple."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import scipy.linalg

from neurodtco import MappingConfig, simulate
from neurodtco.circuit import Circuit, Layer, NeuronModel, Tiling
from neurodtco.devices import GapReRAMCell, LinearCell
from neurodtco.engines._nodal import ArrayNetwork, factorize, solve
from neurodtco.engines._nodal.tiles import driver_admittance
from neurodtco.engines.nodal import NodalEngine
from neurodtco.mapping import map_weights

# 9 rows (8 inputs + bias) x 8 columns (4 interleaved pairs) cut into 3 uneven row tiles and 3
# uneven column tiles; every tile differs in shape from its neighbours.
ROW_STARTS, COLUMN_STARTS, TILE_SHAPE = (0, 4, 7), (0, 2, 6), (4, 4)


def tiled_layer(rng: np.random.Generator, neuron: NeuronModel, r_word: float, r_bit: float,
                combine: str = "shared") -> Layer:
    """A layer of random conductances in the default window, neurons on columns (0, 1), (2, 3), ..."""
    g = rng.uniform(1e-6, 1e-4, (9, 8))
    return Layer(conductance=g, plus_columns=np.arange(4) * 2, minus_columns=np.arange(4) * 2 + 1, neuron=neuron,
                 bias_voltage_v=0.2, r_word_ohm=r_word, r_bit_ohm=r_bit,
                 tiling=Tiling(ROW_STARTS, COLUMN_STARTS, TILE_SHAPE, combine))


def reference_tia(layer: Layer, inputs_v: np.ndarray, cell=None) -> np.ndarray:
    """TIA outputs ``[B, C]`` (summed over a column's stages when summing) from one dense nodal matrix."""
    return reference_solve(layer, inputs_v, cell)[0]


def reference_power(layer: Layer, inputs_v: np.ndarray, cell=None) -> np.ndarray:
    """Power ``[B]`` by conservation from ``reference_solve``'s node voltages: heat in every cell
    (``I v``) and wire segment (``g dv^2``), plus what enters each op-amp's input node (``n (n - t) / R_f``)."""
    _, volts, wires, cells = reference_solve(layer, inputs_v, cell)
    cell = cell or LinearCell()
    total = 0.0
    for p, q, g in wires:
        if q[0] == "t":  # the feedback resistor: what flows in it is what enters the op-amp input n = p
            total = total + volts(p) * (volts(p) - volts(q)) * g
        else:
            total = total + g * (volts(p) - volts(q)) ** 2
    for p, q, g in cells:
        v = volts(p) - volts(q)
        total = total + cell.current(np.asarray(g), v) * v
    return total


def with_finite_gain(layer: Layer, gain: float = 1e10) -> Layer:
    """The reference writes ``t = A (V_os - n)`` as a row of its matrix: an ideal op-amp becomes ``A = gain``."""
    if math.isfinite(layer.neuron.open_loop_gain):
        return layer
    return layer.replace(neuron=dataclasses.replace(layer.neuron, open_loop_gain=gain))


def reference_solve(layer: Layer, inputs_v: np.ndarray, cell=None):
    """TIA outputs ``[B, C]`` from one dense nodal matrix, and the solution: ``volts(node)`` ``[B]``, the
    wire and feedback branches and the cells (``(node, node, conductance)``).

    Unknowns: every word and bit node of every tile, the neuron input of each column (one per
    row tile when summing) and each op-amp output. A 0 ohm segment joins its two nodes into one
    (the word nodes of a row into its driver, the bit nodes of a column into its neuron input).
    Rows: Kirchhoff at each node, and ``t = A (V_os - n)`` for each op-amp. With a nonlinear
    ``cell`` the cells are current laws and each vector is solved by plain Newton on the whole matrix.
    """
    nm = layer.neuron
    summing = layer.tiling.combine == "summing"
    drive = layer.row_voltages(inputs_v)
    index: dict[tuple, int] = {}

    def neuron_node(tile, j: int) -> tuple:
        return ("n", j, tile.grid[0] if summing else None)

    def word(tile, i: int, j: int) -> tuple:
        return ("drive", i) if layer.r_word_ohm == 0 else ("w", i, j)

    def bit(tile, i: int, j: int) -> tuple:
        return neuron_node(tile, j) if layer.r_bit_ohm == 0 else ("b", i, j)

    wires, cells = [], []  # (node, node, conductance)
    for tile in layer.tiles:
        for i in range(tile.rows.start, tile.rows.stop):
            for j in range(tile.columns.start, tile.columns.stop):
                cells.append((word(tile, i, j), bit(tile, i, j), layer.conductance[i, j]))
                if layer.r_word_ohm:
                    left = ("drive", i) if j == tile.columns.start else word(tile, i, j - 1)
                    wires.append((left, word(tile, i, j), 1.0 / layer.r_word_ohm))
                if layer.r_bit_ohm:
                    below = neuron_node(tile, j) if i == tile.rows.stop - 1 else bit(tile, i + 1, j)
                    wires.append((bit(tile, i, j), below, 1.0 / layer.r_bit_ohm))
    amps = sorted({neuron_node(tile, j) for tile in layer.tiles for j in range(tile.columns.start, tile.columns.stop)},
                  key=repr)
    for n in amps:
        wires.append((n, ("t",) + n[1:], 1.0 / nm.feedback_resistance_ohm))
    for p, q, _ in wires + cells:
        for node in (p, q):
            if node[0] != "drive":
                index.setdefault(node, len(index))
    size = len(index)

    def stamp(mat, rhs, drive_v, branches, slopes, sources):
        """Kirchhoff rows of branches ``I = slope * v + source`` into ``mat x = rhs`` (``drive_v`` ``[B, rows]``)."""
        for (p, q, _), slope, source in zip(branches, slopes, sources):
            for a, b, sign in ((p, q, 1.0), (q, p, -1.0)):
                if a[0] in ("drive", "t"):
                    continue  # drivers are known; an op-amp output's row is its own equation
                mat[index[a], index[a]] += slope
                rhs[index[a]] -= sign * source
                if b[0] == "drive":
                    rhs[index[a]] += slope * drive_v[:, b[1]]
                else:
                    mat[index[a], index[b]] -= slope

    mat = np.zeros((size, size))
    rhs = np.zeros((size, len(drive)))
    stamp(mat, rhs, drive, wires, [g for *_, g in wires], np.zeros((len(wires), len(drive))))
    for n in amps:
        t = index[("t",) + n[1:]]
        mat[t, t] = 1.0
        mat[t, index[n]] = nm.open_loop_gain
        rhs[t] = nm.open_loop_gain * nm.offset_v
    conductances = np.array([g for *_, g in cells])
    if cell is None:
        stamp(mat, rhs, drive, cells, conductances, np.zeros((len(cells), len(drive))))
        x = scipy.linalg.solve(mat, rhs)
    else:
        x = np.zeros((size, len(drive)))
        for k in range(len(drive)):
            drive_k = drive[k:k + 1]

            def volts(node, x_k):
                return drive_k[0, node[1]] if node[0] == "drive" else x_k[index[node]]

            x_k = np.zeros(size)
            for _ in range(100):
                v = np.array([volts(p, x_k) - volts(q, x_k) for p, q, _ in cells])
                slopes = cell.differential_conductance(conductances, v)
                step_mat, step_rhs = mat.copy(), rhs[:, k:k + 1].copy()
                stamp(step_mat, step_rhs, drive_k, cells, slopes, (cell.current(conductances, v) - slopes * v)[:, None])
                new = scipy.linalg.solve(step_mat, step_rhs)[:, 0]
                done = np.max(np.abs(new - x_k)) <= 1e-15 * np.max(np.abs(new))
                x_k = new
                if done:
                    break
            x[:, k] = x_k
    tia = np.zeros((len(drive), layer.n_columns))
    for n in amps:
        tia[:, n[1]] += x[index[("t",) + n[1:]]]

    def volts(node) -> np.ndarray:
        return drive[:, node[1]] if node[0] == "drive" else x[index[node]]

    return tia, volts, wires, cells


def one_layer_outputs(layer: Layer, x: np.ndarray, cell=None) -> np.ndarray:
    """The nodal engine's outputs for a circuit of this single layer."""
    circuit = Circuit(layers=(layer,), cell=cell or LinearCell())
    return simulate(circuit, x, engine="nodal").outputs_v


def difference(layer: Layer, tia: np.ndarray) -> np.ndarray:
    nm = layer.neuron
    return nm.closed_loop_difference_gain * (tia[:, layer.minus_columns] - tia[:, layer.plus_columns])


@pytest.mark.parametrize("combine", ["shared", "summing"])
@pytest.mark.parametrize("r_word, r_bit", [(1.0, 1.0), (0.0, 1.0), (1.0, 0.0), (0.0, 0.0)])
def test_tiled_layer_matches_a_dense_nodal_solve_of_every_tile(combine, r_word, r_bit):
    rng = np.random.default_rng(7)
    neuron = NeuronModel(feedback_resistance_ohm=2e3, difference_gain=1.5, open_loop_gain=1e4, offset_v=3e-3)
    layer = tiled_layer(rng, neuron, r_word, r_bit, combine)
    assert layer.tiling.grid_shape == (3, 3)
    x = rng.uniform(0.0, 0.2, (20, 8))  # more vectors than rows: the layer's affine map
    got = one_layer_outputs(layer, x)
    expected = difference(layer, reference_tia(layer, x))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    few = one_layer_outputs(layer, x[:3])  # fewer vectors than rows: the same map
    np.testing.assert_allclose(few, expected[:3], rtol=0, atol=1e-12 * np.abs(expected).max())


def test_the_tiles_couple_through_a_shared_finite_gain_neuron_input():
    """With finite gain the shared node is not a virtual ground: tiles that only add their
    currents (each on its own held node) are measurably off, and the exact answer is the coupled one."""
    rng = np.random.default_rng(3)
    neuron = NeuronModel(feedback_resistance_ohm=2e3, open_loop_gain=50.0)
    layer = tiled_layer(rng, neuron, 1.0, 1.0)
    x = rng.uniform(0.0, 0.2, (12, 8))
    exact = difference(layer, reference_tia(layer, x))
    summing = one_layer_outputs(layer.replace(tiling=Tiling(ROW_STARTS, COLUMN_STARTS, TILE_SHAPE, "summing")), x)
    np.testing.assert_allclose(one_layer_outputs(layer, x), exact, rtol=0, atol=1e-12 * np.abs(exact).max())
    assert np.abs(summing - exact).max() > 1e-4 * np.abs(exact).max()


def test_shared_and_summing_agree_with_ideal_op_amps():
    """Virtual grounds decouple the tiles: each stage's offset cancels in the difference stage."""
    rng = np.random.default_rng(4)
    neuron = NeuronModel(feedback_resistance_ohm=2e3, offset_v=5e-3)
    shared = tiled_layer(rng, neuron, 1.0, 1.0)
    summing = shared.replace(tiling=Tiling(ROW_STARTS, COLUMN_STARTS, TILE_SHAPE, "summing"))
    x = rng.uniform(0.0, 0.2, (15, 8))
    a, b = one_layer_outputs(shared, x), one_layer_outputs(summing, x)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)
    # with 1 ohm wires the tiles are not the dense matrix product: the check is not vacuous
    ideal = simulate(Circuit(layers=(shared,), cell=LinearCell()), x, engine="ideal").outputs_v
    assert np.abs(a - ideal).max() > 1e-7


def mlp(rng: np.random.Generator, config: MappingConfig) -> Circuit:
    sizes = [20, 12, 6]
    weights = [rng.normal(0, 1, (o, i)) / math.sqrt(i) for i, o in zip(sizes, sizes[1:])]
    biases = [rng.normal(0, 0.2, o) for o in sizes[1:]]
    return map_weights(weights, biases, config)


@pytest.mark.parametrize("combine", ["shared", "summing"])
@pytest.mark.parametrize("offset", [0.0, 2e-3])
def test_ideal_wires_and_op_amps_equal_the_untiled_layer_and_the_ideal_engine(combine, offset):
    """The ideal engine knows no offset (its cells see the row voltage across them), so it is the
    reference at 0 V; the untiled layer is the reference at any offset."""
    plain = MappingConfig(r_word_ohm=0.0, r_bit_ohm=0.0, offset_v=offset)
    tiled = MappingConfig(r_word_ohm=0.0, r_bit_ohm=0.0, offset_v=offset, tile_rows=8, tile_cols=6,
                          tile_combine=combine)
    untiled_circuit, tiled_circuit = mlp(np.random.default_rng(1), plain), mlp(np.random.default_rng(1), tiled)
    assert [layer.tiling.grid_shape for layer in tiled_circuit.layers] == [(3, 4), (2, 2)]
    x = np.random.default_rng(5).uniform(0.0, 0.2, (40, 20))
    got = simulate(tiled_circuit, x, engine="nodal", return_hidden=True)
    references = [simulate(untiled_circuit, x, engine="nodal", return_hidden=True)]
    if offset == 0.0:
        references.append(simulate(tiled_circuit, x, engine="ideal", return_hidden=True))
    for reference in references:
        np.testing.assert_allclose(got.outputs_v, reference.outputs_v, rtol=0, atol=1e-12)
        np.testing.assert_allclose(got.hidden_v[0], reference.hidden_v[0], rtol=0, atol=1e-12)


def test_near_ideal_wires_and_gain_approach_the_ideal_engine():
    """The exact limits (0 ohm, A = inf) are taken continuously: 1 nohm wires and A = 1e12 land next to them."""
    x = np.random.default_rng(6).uniform(0.0, 0.2, (30, 20))
    near = mlp(np.random.default_rng(1), MappingConfig(r_word_ohm=1e-9, r_bit_ohm=1e-9, open_loop_gain=1e12,
                                                        tile_rows=8, tile_cols=6))
    ideal = simulate(near, x, engine="ideal").outputs_v
    got = simulate(near, x, engine="nodal").outputs_v
    assert 0 < np.abs(got - ideal).max() < 1e-9


def test_gap_cells_in_summing_tiles_are_each_tile_solved_alone():
    """Summing tiles do not couple: each tile is a plain array with its own TIA (the untiled solver's
    job), and the layer's TIA output is their sum."""
    rng = np.random.default_rng(8)
    neuron = NeuronModel(feedback_resistance_ohm=2e3, difference_gain=1.5, open_loop_gain=1e4, offset_v=3e-3)
    layer = tiled_layer(rng, neuron, 1.0, 1.0, "summing")
    cell = GapReRAMCell()
    x = rng.uniform(0.0, 0.2, (6, 8))
    drive = layer.row_voltages(x)
    tia = np.zeros((len(x), layer.n_columns))
    for tile in layer.tiles:
        # the tile as an untiled layer of its own: its last row plays the bias row, driven at that
        # row's voltage, one vector at a time
        g = layer.conductance[tile.rows, tile.columns]
        n = g.shape[1] // 2
        for k in range(len(x)):
            alone = Layer(conductance=g, plus_columns=np.arange(n) * 2, minus_columns=np.arange(n) * 2 + 1,
                          neuron=neuron, bias_voltage_v=drive[k, tile.rows.stop - 1], r_word_ohm=1.0, r_bit_ohm=1.0)
            nodes = simulate(Circuit(layers=(alone,), cell=cell), drive[k:k + 1, tile.rows.start:tile.rows.stop - 1],
                             engine="nodal", return_nodes=True).nodes[0]
            tia[k, tile.columns] += nodes["tia_out"][0]
    np.testing.assert_allclose(one_layer_outputs(layer, x, cell), difference(layer, tia), rtol=0, atol=1e-13)


def test_gap_cells_behind_ideal_wires_and_op_amps_equal_the_ideal_engine():
    rng = np.random.default_rng(9)
    layer = tiled_layer(rng, NeuronModel(feedback_resistance_ohm=2e3), 0.0, 0.0)
    circuit = Circuit(layers=(layer,), cell=GapReRAMCell())
    x = rng.uniform(0.0, 0.2, (10, 8))
    np.testing.assert_allclose(simulate(circuit, x, engine="nodal").outputs_v,
                               simulate(circuit, x, engine="ideal").outputs_v, rtol=0, atol=1e-13)


@pytest.mark.parametrize("combine", ["shared", "summing"])
@pytest.mark.parametrize("gain", [1e4, 30.0])
def test_gap_cells_in_tiles_match_a_dense_newton_solve_of_every_tile(combine, gain):
    """Shared finite-gain inputs couple the tiles' nonlinear cells (Gauss-Seidel over the tiles, Newton
    inside each); a low gain makes that coupling strong."""
    rng = np.random.default_rng(10)
    neuron = NeuronModel(feedback_resistance_ohm=2e3, difference_gain=1.5, open_loop_gain=gain, offset_v=3e-3)
    layer = tiled_layer(rng, neuron, 1.0, 1.0, combine)
    cell = GapReRAMCell()
    x = rng.uniform(0.0, 0.2, (5, 8))
    expected = difference(layer, reference_tia(layer, x, cell))
    np.testing.assert_allclose(one_layer_outputs(layer, x, cell), expected, rtol=0,
                               atol=1e-11 * np.abs(expected).max())


def test_node_reports_of_tiled_layers_are_refused_and_power_is_offered():
    circuit = Circuit(layers=(tiled_layer(np.random.default_rng(0), NeuronModel(feedback_resistance_ohm=2e3), 1.0, 1.0),),
                      cell=LinearCell())
    with pytest.raises(ValueError, match="untiled.*return_power=True"):
        simulate(circuit, np.full((2, 8), 0.1), engine="nodal", return_nodes=True)


@pytest.mark.parametrize("combine", ["shared", "summing"])
@pytest.mark.parametrize("r_word, r_bit", [(1.0, 2.0), (0.0, 2.0), (1.0, 0.0), (0.0, 0.0)])
@pytest.mark.parametrize("gain, offset", [(math.inf, 0.0), (50.0, 3e-3)])
def test_tiled_power_is_heat_in_cells_and_wires_plus_what_enters_the_op_amps(combine, r_word, r_bit, gain, offset):
    """Energy conservation over every node of every tile; with ideal op-amps at 0 V it is the heat alone."""
    rng = np.random.default_rng(11)
    neuron = NeuronModel(feedback_resistance_ohm=2e3, difference_gain=1.5, open_loop_gain=gain, offset_v=offset)
    layer = tiled_layer(rng, neuron, r_word, r_bit, combine)
    x = rng.uniform(0.0, 0.2, (20, 8))  # more vectors than rows, then fewer: the same affine driver map
    expected, rtol = reference_power(with_finite_gain(layer), x), 1e-11 if math.isfinite(gain) else 1e-8
    for part in (x, x[:3]):
        got = simulate(Circuit(layers=(layer,), cell=LinearCell()), part, engine="nodal", return_power=True).power_w
        np.testing.assert_allclose(got, expected[:len(part)], rtol=rtol)
    # the power is not blind to wires and tiles: the ideal-wire sum G V^2 differs when they matter
    ideal = (layer.row_voltages(x) ** 2) @ layer.conductance.sum(axis=1)
    assert (np.abs(expected - ideal).max() > 1e-6 * ideal.max()) == bool(r_word or r_bit or offset)


@pytest.mark.parametrize("combine", ["shared", "summing"])
@pytest.mark.parametrize("gain", [math.inf, 30.0])
def test_tiled_gap_cell_power_is_heat_in_cells_and_wires_plus_what_enters_the_op_amps(combine, gain):
    rng = np.random.default_rng(12)
    neuron = NeuronModel(feedback_resistance_ohm=2e3, open_loop_gain=gain, offset_v=0.0 if math.isinf(gain) else 3e-3)
    layer = tiled_layer(rng, neuron, 1.0, 2.0, combine)
    cell = GapReRAMCell()
    x = rng.uniform(0.0, 0.2, (5, 8))
    expected = reference_power(with_finite_gain(layer), x, cell)
    for newton in ("chord", "full"):
        got = NodalEngine(newton=newton).run(Circuit(layers=(layer,), cell=cell), x, return_power=True).power_w
        np.testing.assert_allclose(got, expected, rtol=1e-8)


@pytest.mark.parametrize("cell", [LinearCell(), GapReRAMCell()])
@pytest.mark.parametrize("gain", [math.inf, 1e3])
def test_one_tile_as_large_as_the_layer_reports_the_untiled_power(cell, gain):
    rng = np.random.default_rng(13)
    neuron = NeuronModel(feedback_resistance_ohm=2e3, open_loop_gain=gain, offset_v=2e-3)
    untiled = tiled_layer(rng, neuron, 1.0, 2.0).replace(tiling=None)
    whole = untiled.replace(tiling=Tiling((0,), (0,), (9, 8)))
    x = rng.uniform(0.0, 0.2, (12, 8))
    reference = simulate(Circuit(layers=(untiled,), cell=cell), x, engine="nodal", return_power=True,
                         return_nodes=True).power_w  # the node-voltage path
    for layer in (untiled, whole):
        got = simulate(Circuit(layers=(layer,), cell=cell), x, engine="nodal", return_power=True).power_w
        np.testing.assert_allclose(got, reference, rtol=1e-10)


@pytest.mark.parametrize("r_word, r_bit", [(1.0, 2.0), (0.0, 2.0), (1.0, 0.0), (0.0, 0.0), (0.02, 50.0)])
def test_driver_admittance_equals_the_driver_currents_of_a_node_solve(r_word, r_bit):
    """Every bit side (sweep, chain, lumped): ``S`` from the feed and the bit side alone equals the
    driver currents a full node solve gives through the word voltages, one driver at a time."""
    g = np.random.default_rng(14).uniform(1e-6, 1e-4, (7, 5))
    g[2, 3] = 0.0
    g_word = math.inf if r_word == 0 else 1.0 / r_word
    g_bit = math.inf if r_bit == 0 else 1.0 / r_bit
    fact = factorize(ArrayNetwork(g[None], g_word, g_bit))
    expected = solve(fact, np.eye(7), nodes=True).driver_a
    np.testing.assert_allclose(driver_admittance(fact), expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    if r_word == 0 and r_bit == 0:
        np.testing.assert_allclose(expected, np.diag(g.sum(axis=1)), rtol=1e-14)


@pytest.mark.parametrize("tiled", [False, True])
def test_linear_power_takes_no_node_solve_per_vector(monkeypatch, tiled):
    """Driver currents of linear cells are an affine map of the drives, from the tiles' factorizations:
    the per-vector solvers are never called."""
    from neurodtco.engines import nodal

    rng = np.random.default_rng(15)
    layer = tiled_layer(rng, NeuronModel(feedback_resistance_ohm=2e3, open_loop_gain=1e3), 1.0, 2.0)
    if not tiled:
        layer = layer.replace(tiling=None)
    circuit = Circuit(layers=(layer,), cell=LinearCell())
    x = rng.uniform(0.0, 0.2, (500, 8))
    expected = simulate(circuit, x[:5], engine="nodal", return_power=True, return_nodes=True).power_w \
        if not tiled else reference_power(layer, x[:5])

    def refuse(*args, **kwargs):
        raise AssertionError("a per-vector node solve was called")

    monkeypatch.setattr(nodal, "solve", refuse)
    monkeypatch.setattr(nodal, "solve_cells", refuse)
    got = simulate(circuit, x, engine="nodal", return_power=True).power_w
    np.testing.assert_allclose(got[:5], expected, rtol=1e-11)
