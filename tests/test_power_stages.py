"""Array power of circuits with convolution, pooling and residual stages, tiled, in the nodal engine.

Independent truth: the circuit walked here stage by stage, every crossbar stage simulated as a
circuit of that one layer on its unrolled inputs (one read per output position), the reads'
powers added per image; and the linearity of power in the number of reads."""

from __future__ import annotations

import numpy as np
import pytest

from neurodtco import simulate
from neurodtco.circuit import Circuit, Crossbar, Sum
from neurodtco.engines import forward as forward_module
from neurodtco.mapping import MappingConfig, map_ops
from neurodtco.ops import Add, Conv, ConvGeometry, Dense, Pool, PoolGeometry, Save


def small_cnn(rng: np.random.Generator) -> list:
    """conv 1->2 (3x3, pad 1) on 5x5, residual conv 2->2, max pool 2 (floor: 2x2), dense 8->4, dense 4->3."""
    c1 = ConvGeometry((1, 5, 5), (3, 3), (1, 1), (1, 1))
    c2 = ConvGeometry((2, 5, 5), (3, 3), (1, 1), (1, 1))
    return [
        Conv(rng.normal(size=(2, 1, 3, 3)), rng.normal(size=2) * 0.1, c1, "relu"),
        Save("r"),
        Conv(rng.normal(size=(2, 2, 3, 3)) * 0.3, rng.normal(size=2) * 0.1, c2, None),
        Add("r", "relu"),
        Pool(PoolGeometry("max", (2, 5, 5), (2, 2), (2, 2))),
        Dense(rng.normal(size=(4, 8)) * 0.4, rng.normal(size=4) * 0.1, "hardtanh"),
        Dense(rng.normal(size=(3, 4)), rng.normal(size=3) * 0.1, None),
    ]


def walked_here(circuit: Circuit, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Outputs and power ``[B]`` with every crossbar stage a one-layer circuit of its own, and each stage's reads per image."""
    power = np.zeros(len(x))
    saved, reads = {}, []
    for stage in circuit.stage_list():
        if isinstance(stage, Crossbar):
            layer = circuit.layers[stage.layer]
            rows = x if stage.conv is None else stage.conv.patches(x)
            one = simulate(Circuit(layers=(layer,), cell=circuit.cell), rows, engine="nodal", return_power=True)
            per_image = len(rows) // len(x)
            reads.append(per_image)
            power += one.power_w.reshape(len(x), per_image).sum(axis=1)
            x = one.outputs_v if stage.conv is None else stage.conv.fold(one.outputs_v, len(x))
        elif isinstance(stage, Pool):
            x = stage.geometry.apply(x)
        elif isinstance(stage, Save):
            saved[stage.slot] = x
        elif isinstance(stage, Sum):
            x = stage.apply(x, saved[stage.slot])
    return x, power, reads


@pytest.mark.parametrize("cell", ["linear", "gap"])
@pytest.mark.parametrize("tile", [None, (7, 4)])
def test_power_of_a_cnn_is_the_sum_over_every_read_of_every_stage(cell, tile, monkeypatch):
    rng = np.random.default_rng(0)
    config = MappingConfig(cell=cell, r_word_ohm=1.5, r_bit_ohm=2.5, open_loop_gain=1e4, offset_v=1e-3,
                           tile_rows=tile and tile[0], tile_cols=tile and tile[1])
    circuit = map_ops(small_cnn(rng), config)
    x = rng.uniform(0.0, 0.2, (4, 25))
    expected_out, expected_power, reads = walked_here(circuit, x)
    assert reads == [25, 25, 1, 1]
    if tile is not None:
        assert all(layer.tiling is not None for layer in circuit.layers)
    # images in chunks of one: every chunk's power lands on its own images
    monkeypatch.setattr(forward_module, "CHUNK_DOUBLES", 1)
    got = simulate(circuit, x, engine="nodal", return_power=True)
    np.testing.assert_allclose(got.outputs_v, expected_out, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.power_w, expected_power, rtol=1e-9 if cell == "gap" else 1e-12)
    # a conv layer read at every position draws far more than one dense read: it is counted
    assert np.all(got.power_w > 0)


def test_a_blank_image_draws_the_bias_rows_power_once_per_output_position():
    """Zero inputs, ideal wires and op-amps: every read of a tiled conv layer draws ``V_bias^2 sum G_bias``
    from its bias row's drivers (one per column tile), so an image draws that times the positions."""
    rng = np.random.default_rng(1)
    geometry = ConvGeometry((1, 5, 5), (3, 3), (2, 2), (1, 1))
    circuit = map_ops([Conv(rng.normal(size=(4, 1, 3, 3)), rng.normal(size=4) * 0.1, geometry, None)],
                      MappingConfig(r_word_ohm=0.0, r_bit_ohm=0.0, tile_rows=4, tile_cols=4))
    layer = circuit.layers[0]
    assert layer.tiling.grid_shape == (3, 2) and geometry.n_positions == 9
    power = simulate(circuit, np.zeros((3, 25)), engine="nodal", return_power=True).power_w
    expected = geometry.n_positions * layer.bias_voltage_v ** 2 * layer.conductance[-1].sum()
    np.testing.assert_allclose(power, expected, rtol=1e-13)
