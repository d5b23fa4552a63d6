"""The coupled chord solve of tile groups (``_nodal/chord.py``) against the tile-by-tile solvers it
replaces (Newton per tile, Gauss-Seidel over tiles sharing neuron inputs), with defects, and its
column-end response against a solve with the column ends pinned by a stiff source."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurodtco import MappingConfig, simulate
from neurodtco.circuit import Layer, NeuronModel, Tiling
from neurodtco.defects import apply_defects
from neurodtco.devices import GapReRAMCell
from neurodtco.engines._nodal import ArrayNetwork, factorize, solve
from neurodtco.engines._nodal import chord
from neurodtco.engines._nodal.newton import NewtonSettings, solve_cells
from neurodtco.engines._nodal.tiles import coupled_cells
from neurodtco.engines.nodal import NodalEngine, _periphery
from neurodtco.mapping import map_weights


def gap_layer(rng: np.random.Generator, gain: float, r_word: float, r_bit: float, combine: str) -> Layer:
    """9 x 8 cells in 3 x 3 uneven tiles, a few cells stuck on and off."""
    cell = GapReRAMCell()
    g = rng.uniform(cell.g_min, cell.g_max, (9, 8))
    g[rng.random(g.shape) < 0.1] = cell.g_max
    g[rng.random(g.shape) < 0.1] = cell.g_min
    neuron = NeuronModel(feedback_resistance_ohm=2e3, difference_gain=1.5, open_loop_gain=gain, offset_v=3e-3)
    return Layer(conductance=g, plus_columns=np.arange(4) * 2, minus_columns=np.arange(4) * 2 + 1, neuron=neuron,
                 bias_voltage_v=0.2, r_word_ohm=r_word, r_bit_ohm=r_bit,
                 tiling=Tiling((0, 4, 7), (0, 2, 6), (4, 4), combine))


@pytest.mark.parametrize("gain", [1e4, 30.0])
@pytest.mark.parametrize("r_word, r_bit", [(1.0, 1.0), (0.0, 1.0), (1.0, 0.0)])
def test_a_shared_group_equals_gauss_seidel_over_its_tiles(gain, r_word, r_bit):
    rng = np.random.default_rng(3)
    layer = gap_layer(rng, gain, r_word, r_bit, "shared")
    cell = GapReRAMCell()
    g_word, g_bit, neuron_g, inject = _periphery(layer, "layer")
    drive = layer.row_voltages(rng.uniform(0.0, 0.2, (40, 8))) - layer.neuron.offset_v
    settings = NewtonSettings()
    for cols in (slice(0, 2), slice(2, 6), slice(6, 8)):
        tiles = [t for t in layer.tiles if t.columns == cols]
        blocks = [layer.conductance[t.rows, cols] for t in tiles]
        drives = [drive[:, t.rows] for t in tiles]
        n, total, info = chord.group_cells(cell, blocks, drives, g_word, g_bit, neuron_g[cols], inject[:, cols],
                                           settings, "group")
        n_ref, total_ref, ref_info = coupled_cells(cell, blocks, drives, g_word, g_bit, neuron_g[cols],
                                                   inject[:, cols], settings, "group")
        assert info["sweeps"] == 1 and info["method"] == "chord" and ref_info["sweeps"] > 1
        np.testing.assert_allclose(n, n_ref, rtol=0, atol=1e-12)
        # the transimpedance output n - R_f I, in volts
        np.testing.assert_allclose(n - 2e3 * total, n_ref - 2e3 * total_ref, rtol=0, atol=1e-9)


@pytest.mark.parametrize("ideal_op_amp", [False, True])
def test_a_tile_alone_equals_newton_on_that_tile(ideal_op_amp):
    rng = np.random.default_rng(4)
    cell = GapReRAMCell()
    g = rng.uniform(cell.g_min, cell.g_max, (7, 5))
    drive = rng.uniform(-0.2, 0.2, (30, 7))
    neuron_g = None if ideal_op_amp else np.full(5, 1e4 / 2e3)
    inject = None if ideal_op_amp else np.full((1, 5), -1e-6)
    n, total, _ = chord.group_cells(cell, [g], [drive], 1.0, 2.0, neuron_g, inject, NewtonSettings(), "tile")
    sol, _ = solve_cells(cell, g, 1.0, 2.0, neuron_g, drive, inject, NewtonSettings(), "tile")
    np.testing.assert_allclose(n, sol.neuron_v, rtol=0, atol=1e-13)
    np.testing.assert_allclose(total, sol.collected_a, rtol=1e-11, atol=1e-18)


@pytest.mark.parametrize("combine", ["shared", "summing"])
def test_a_tiled_network_with_defects_equals_the_true_newton_reference(combine):
    """``newton="full"`` runs the tile-by-tile solvers with true Newton: a different path to the same
    fixed point, on a two-layer tiled network whose tiles have stuck cells."""
    rng = np.random.default_rng(5)
    sizes = [20, 12, 6]
    weights = [rng.normal(0, 1, (o, i)) / math.sqrt(i) for i, o in zip(sizes, sizes[1:])]
    biases = [rng.normal(0, 0.2, o) for o in sizes[1:]]
    config = MappingConfig(cell="gap", r_word_ohm=1.0, r_bit_ohm=1.0, open_loop_gain=1e3, tile_rows=8,
                           tile_cols=6, tile_combine=combine)
    circuit, record = apply_defects(map_weights(weights, biases, config),
                                    ["random:p=0.05,kind=stuck_on", "random:p=0.05,kind=stuck_off"], seed=1)
    assert record.total_density > 0
    x = rng.uniform(0.0, 0.2, (25, 20))
    fast = simulate(circuit, x, engine=NodalEngine(), return_hidden=True)
    ref = simulate(circuit, x, engine=NodalEngine(newton="full"), return_hidden=True)
    assert fast.info["layers"][0]["method"] == "chord" and fast.info["layers"][0]["sweeps"] == 1
    np.testing.assert_allclose(fast.hidden_v[0], ref.hidden_v[0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(fast.outputs_v, ref.outputs_v, rtol=0, atol=1e-9)


def test_chunks_whose_chord_steps_stall_go_to_true_newton(monkeypatch):
    rng = np.random.default_rng(6)
    layer = gap_layer(rng, 1e4, 1.0, 1.0, "shared")
    cell = GapReRAMCell()
    g_word, g_bit, neuron_g, inject = _periphery(layer, "layer")
    drive = layer.row_voltages(rng.uniform(0.0, 0.2, (10, 8))) - layer.neuron.offset_v
    tiles = [t for t in layer.tiles if t.columns == slice(2, 6)]
    args = (cell, [layer.conductance[t.rows, 2:6] for t in tiles], [drive[:, t.rows] for t in tiles], g_word, g_bit,
            neuron_g[2:6], inject[:, 2:6], NewtonSettings(), "group")
    n_fast, _, _ = chord.group_cells(*args)

    def stall(*_):
        raise chord._Stalled

    monkeypatch.setattr(chord, "_iterate", stall)
    n, _, info = chord.group_cells(*args)
    assert info["sweeps"] > 1  # the Gauss-Seidel reference ran
    np.testing.assert_allclose(n, n_fast, rtol=0, atol=1e-12)


@pytest.mark.parametrize("r_word, r_bit", [(1.0, 1.0), (0.0, 1.0), (1.0, 0.0)])
def test_column_response_is_the_array_with_its_column_ends_pinned(r_word, r_bit):
    """Column ends at ``n`` = a neuron conductance ``H`` to the reference fed ``H n``, for ``H`` >> the array."""
    rng = np.random.default_rng(7)
    g = rng.uniform(1e-6, 1e-4, (6, 4))
    g_word, g_bit = (math.inf if r == 0 else 1 / r for r in (r_word, r_bit))
    held = factorize(ArrayNetwork(g[None], g_word, g_bit))
    response = chord.column_response(held).reshape(4, 6, 4)
    stiff = 1e9
    pinned = factorize(ArrayNetwork(g[None], g_word, g_bit, np.full(4, stiff)))
    sol = solve(pinned, np.zeros((4, 6)), inject_neuron=stiff * np.eye(4), nodes=True, drivers=False)
    cells = np.swapaxes(sol.word_v - sol.bit_v, 0, 1)  # [column end, row, column]
    np.testing.assert_allclose(response, cells, rtol=0, atol=1e-6)
    assert np.abs(response).max() > 0.5


def test_a_shared_group_needs_finite_gain():
    cell = GapReRAMCell()
    with pytest.raises(ValueError, match="finite-gain"):
        chord.group_cells(cell, [np.full((2, 2), 1e-5)] * 2, [np.zeros((1, 2))] * 2, 1.0, 1.0, None, None,
                          NewtonSettings(), "group")


def test_identical_drive_vectors_are_solved_once(monkeypatch):
    rng = np.random.default_rng(8)
    cell = GapReRAMCell()
    blocks = [rng.uniform(cell.g_min, cell.g_max, (5, 4)) for _ in range(2)]
    distinct = [rng.uniform(0.0, 0.2, (3, 5)) for _ in blocks]
    pick = np.array([2, 0, 2, 1, 0, 2])
    args = (cell, blocks, [d[pick] for d in distinct], 1.0, 1.0, np.full(4, 5.0), np.full((1, 4), -1e-6),
            NewtonSettings(), "group")
    solved = []
    iterate = chord._iterate
    monkeypatch.setattr(chord, "_iterate", lambda *a: solved.append(len(a[3][0])) or iterate(*a))
    n, total, _ = chord.group_cells(*args)
    assert solved == [3]
    n_alone, total_alone, _ = chord.group_cells(cell, blocks, distinct, *args[3:])
    np.testing.assert_allclose(n, n_alone[pick], rtol=0, atol=1e-14)
    np.testing.assert_allclose(total, total_alone[pick], rtol=1e-12, atol=0)
