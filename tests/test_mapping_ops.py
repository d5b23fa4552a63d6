"""Networks lowered to ops map onto circuits whose ideal simulation is the software network, tiled or not."""

from __future__ import annotations

import numpy as np
import pytest

from neurodtco import simulate
from neurodtco.circuit import Crossbar, Tiling
from neurodtco.mapping import MappingConfig, map_ops
from neurodtco.ops import Add, Conv, ConvGeometry, Dense, Pool, PoolGeometry, Save, activate


def reference(ops, x):
    """The software network, evaluated directly from the ops (activations in units, not volts)."""
    saved = {}
    for op in ops:
        if isinstance(op, Dense):
            x = activate(x @ op.weight.T + op.bias, op.activation)
        elif isinstance(op, Conv):
            g = op.geometry
            x = activate(g.fold(g.patches(x) @ op.matrix.T + op.bias, len(x)), op.activation)
        elif isinstance(op, Pool):
            x = op.geometry.apply(x)
        elif isinstance(op, Save):
            saved[op.slot] = x
        elif isinstance(op, Add):
            x = activate(x + saved[op.slot], op.activation)
    return x


def small_cnn(rng, activation="relu"):
    """conv 1->3 (3x3, pad 1) on 6x6, residual conv 3->3, max pool 2, dense 27->5, dense 5->4."""
    c1 = ConvGeometry((1, 6, 6), (3, 3), (1, 1), (1, 1))
    c2 = ConvGeometry((3, 6, 6), (3, 3), (1, 1), (1, 1))
    return [
        Conv(rng.normal(size=(3, 1, 3, 3)), rng.normal(size=3) * 0.1, c1, activation),
        Save("r"),
        Conv(rng.normal(size=(3, 3, 3, 3)) * 0.3, rng.normal(size=3) * 0.1, c2, None),
        Add("r", activation),
        Pool(PoolGeometry("max", (3, 6, 6), (2, 2), (2, 2))),
        Dense(rng.normal(size=(5, 27)) * 0.4, rng.normal(size=5) * 0.1, "hardtanh"),
        Dense(rng.normal(size=(4, 5)), rng.normal(size=4) * 0.1, None),
    ]


@pytest.mark.parametrize("tile", [None, (8, 4), (5, 6)])
@pytest.mark.parametrize("encoding", ["low", "balanced"])
def test_ideal_circuit_of_a_cnn_is_the_software_network_times_the_output_scale(tile, encoding):
    rng = np.random.default_rng(0)
    ops = small_cnn(rng)
    x = rng.uniform(0, 1, size=(7, 36))
    config = MappingConfig(pair_encoding=encoding, tile_rows=tile and tile[0], tile_cols=tile and tile[1])
    circuit = map_ops(ops, config)
    out = simulate(circuit, x * config.v_read_v, engine="ideal").outputs_v
    np.testing.assert_allclose(out, config.output_scale_v * reference(ops, x), rtol=1e-12, atol=1e-15)
    assert [type(s).__name__ for s in circuit.stage_list()] == ["Crossbar", "Save", "Crossbar", "Sum", "Pool",
                                                               "Crossbar", "Crossbar"]
    assert circuit.n_inputs == 36 and circuit.n_outputs == 4


def test_tiles_hold_at_most_the_tile_size_and_never_split_a_pair():
    rng = np.random.default_rng(1)
    for layout in ("interleaved", "split"):
        config = MappingConfig(tile_rows=16, tile_cols=6, layout=layout)
        circuit = map_ops([Dense(rng.normal(size=(7, 40)), rng.normal(size=7), None)], config)
        layer = circuit.layers[0]
        tiles = layer.tiles
        assert layer.tiling.grid_shape == (3, 3)  # 41 rows (bias included) in 16s, 7 pairs in 3s
        assert circuit.n_arrays == 9 and circuit.n_cells == 41 * 14
        covered = np.zeros(layer.conductance.shape, dtype=int)
        for tile in tiles:
            covered[tile.rows, tile.columns] += 1
            assert tile.rows.stop - tile.rows.start <= 16 and tile.columns.stop - tile.columns.start <= 6
        assert np.all(covered == 1)  # the tiles partition the matrix
        for p, m in zip(layer.plus_columns, layer.minus_columns):
            assert [t.grid[1] for t in tiles if t.columns.start <= p < t.columns.stop][0] == \
                   [t.grid[1] for t in tiles if t.columns.start <= m < t.columns.stop][0]
        # tiles sit on the die grid at the tile pitch
        assert {t.origin for t in tiles} == {(16 * a, 6 * b) for a in range(3) for b in range(3)}


def test_a_tiling_that_splits_a_pair_is_refused():
    rng = np.random.default_rng(2)
    layer = map_ops([Dense(rng.normal(size=(3, 4)), rng.normal(size=3), None)], MappingConfig()).layers[0]
    with pytest.raises(ValueError, match="straddles two column tiles"):
        layer.replace(tiling=Tiling((0,), (0, 3), (5, 3)))
    with pytest.raises(ValueError, match="larger than"):
        layer.replace(tiling=Tiling((0,), (0, 2), (2, 4)))


def test_mlp_mapping_through_ops_keeps_the_plain_chain():
    rng = np.random.default_rng(3)
    circuit = map_ops([Dense(rng.normal(size=(4, 6)), rng.normal(size=4)), Dense(rng.normal(size=(2, 4)),
                                                                                   rng.normal(size=2), None)])
    assert circuit.stages is None and circuit.stage_list() == (Crossbar(0), Crossbar(1))


def test_bad_tile_sizes_are_refused_naming_the_field():
    with pytest.raises(ValueError, match="tile_cols=1"):
        MappingConfig(tile_cols=1)
    with pytest.raises(ValueError, match="tile_combine"):
        MappingConfig(tile_combine="parallel")
