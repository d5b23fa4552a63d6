"""Energy per inference of the whole system: op-amps, arrays and drivers from measured settling times."""

from __future__ import annotations

import numpy as np
import pytest

from neurodtco.engines import simulate
from neurodtco.imperfections import energy_per_inference_j
from neurodtco.imperfections.system_energy import (ArrayParasitics, driver_energy_j, ideal_wire_power_w,
                                                   opamps_per_layer, reads_per_layer, system_energy,
                                                   word_line_capacitance_f)
from neurodtco.mapping import MappingConfig, map_ops, map_weights
from neurodtco.ops import Conv, ConvGeometry, Dense


def small_circuit(**config):
    rng = np.random.default_rng(2)
    w = [rng.normal(size=(3, 4)), rng.normal(size=(2, 3))]
    b = [rng.normal(size=3), rng.normal(size=2)]
    return map_weights(w, b, MappingConfig(r_word_ohm=1.0, r_bit_ohm=1.0, **config))


@pytest.fixture(scope="module")
def solved():
    circuit = small_circuit()
    x = np.random.default_rng(0).uniform(0, 0.2, size=(5, 4))
    return circuit, x, simulate(circuit, x, engine="nodal", return_power=True)


def test_parts_sum_to_the_total_and_arrays_match_the_arrays_energy_at_the_latency(solved):
    circuit, x, result = solved
    settling = [3e-7, 1e-7]
    energy = system_energy(circuit, result.power_w, x, settling, opamp_power_w=6e-4)
    assert energy.latency_s == pytest.approx(4e-7)
    assert energy.total_j == pytest.approx(energy.opamps_j + energy.arrays_j + energy.drivers_j, rel=1e-15)
    assert energy.arrays_j == pytest.approx(float(np.mean(energy_per_inference_j(result, 4e-7))), rel=1e-15)
    # every op-amp (three per neuron: 3 + 2 neurons) biased for the whole latency
    assert energy.layer_opamps == (9, 6)
    assert energy.opamps_j == pytest.approx(15 * 6e-4 * 4e-7, rel=1e-15)
    assert energy.opamp_share == pytest.approx(energy.opamps_j / energy.total_j)
    payload = energy.to_dict()
    assert payload["n_opamps"] == 15 and payload["total_j"] == pytest.approx(energy.total_j)


def test_energy_scales_linearly_with_the_settling_time(solved):
    circuit, x, result = solved
    base = system_energy(circuit, result.power_w, x, [3e-7, 1e-7], opamp_power_w=6e-4)
    for factor in (0.5, 2.0, 7.0):
        scaled = system_energy(circuit, result.power_w, x, [3e-7 * factor, 1e-7 * factor], opamp_power_w=6e-4)
        assert scaled.opamps_j == pytest.approx(factor * base.opamps_j, rel=1e-12)
        assert scaled.arrays_j == pytest.approx(factor * base.arrays_j, rel=1e-12)
        assert scaled.drivers_j == base.drivers_j  # charging the word lines does not depend on time
        assert scaled.total_j - scaled.drivers_j == pytest.approx(factor * (base.total_j - base.drivers_j), rel=1e-12)


def test_per_layer_bias_counts_each_layer_for_its_own_settling_only(solved):
    circuit, x, result = solved
    gated = system_energy(circuit, result.power_w, x, [3e-7, 1e-7], opamp_power_w=6e-4, schedule="per_layer")
    assert gated.opamps_j == pytest.approx(6e-4 * (9 * 3e-7 + 6 * 1e-7), rel=1e-15)
    with pytest.raises(ValueError, match="schedule='sometimes'"):
        system_energy(circuit, result.power_w, x, [3e-7, 1e-7], opamp_power_w=6e-4, schedule="sometimes")


def test_drivers_charge_the_first_word_lines_as_c_v_squared(solved):
    circuit, x, _ = solved
    par = ArrayParasitics(cell_capacitance_f=2e-15, wire_capacitance_f_per_m=0.5e-9, cell_pitch_m=0.4e-6)
    columns = circuit.layers[0].n_columns
    c_row = columns * (2e-15 + 0.5e-9 * 0.4e-6)
    np.testing.assert_allclose(word_line_capacitance_f(circuit.layers[0], par), c_row, rtol=1e-15)
    np.testing.assert_allclose(driver_energy_j(circuit, x, par), c_row * (x ** 2).sum(axis=1), rtol=1e-14)


def test_bad_settling_times_and_powers_are_refused_by_name(solved):
    circuit, x, result = solved
    with pytest.raises(ValueError, match="expected 2 positive settling times"):
        system_energy(circuit, result.power_w, x, [1e-7], opamp_power_w=6e-4)
    with pytest.raises(ValueError, match="expected 2 positive settling times"):
        system_energy(circuit, result.power_w, x, [1e-7, 0.0], opamp_power_w=6e-4)
    with pytest.raises(ValueError, match="opamp_power_w=-1"):
        system_energy(circuit, result.power_w, x, [1e-7, 1e-7], opamp_power_w=-1.0)
    with pytest.raises(ValueError, match="cell_pitch_m=0"):
        ArrayParasitics(cell_pitch_m=0.0)


def test_summing_tiles_add_a_transimpedance_stage_per_row_tile():
    rng = np.random.default_rng(4)
    w, b = [rng.normal(size=(2, 6))], [rng.normal(size=2)]
    shared = map_weights(w, b, MappingConfig(tile_rows=4, tile_cols=4))
    summing = map_weights(w, b, MappingConfig(tile_rows=4, tile_cols=4, tile_combine="summing"))
    assert summing.layers[0].tiling.grid_shape[0] == 2
    assert opamps_per_layer(shared) == [6]
    assert opamps_per_layer(summing) == [2 * (2 * 2 + 2 + 1)]
    assert reads_per_layer(shared) == [1]


def test_ideal_wire_power_is_the_engines_power_with_ideal_wires_and_ignores_tiling():
    rng = np.random.default_rng(6)
    w = [rng.normal(size=(3, 6)), rng.normal(size=(2, 3))]
    b = [rng.normal(size=3), rng.normal(size=2)]
    x = rng.uniform(0, 0.2, size=(4, 6))
    plain = map_weights(w, b, MappingConfig(r_word_ohm=0.0, r_bit_ohm=0.0))
    nodal = simulate(plain, x, engine="nodal", return_power=True, return_hidden=True)
    np.testing.assert_allclose(ideal_wire_power_w(plain, x, nodal.hidden_v), nodal.power_w, rtol=1e-12)
    tiled = map_weights(w, b, MappingConfig(r_word_ohm=0.0, r_bit_ohm=0.0, tile_rows=4, tile_cols=4))
    tiled_run = simulate(tiled, x, engine="nodal", return_power=True, return_hidden=True)
    np.testing.assert_allclose(ideal_wire_power_w(tiled, x, tiled_run.hidden_v), nodal.power_w, rtol=1e-12)
    np.testing.assert_allclose(tiled_run.power_w, nodal.power_w, rtol=1e-12)
    with pytest.raises(ValueError, match="hidden_v needs the outputs of the 1 hidden layers"):
        ideal_wire_power_w(plain, x, [])


def test_tiled_arrays_use_the_engines_power_with_their_wire_losses():
    """With resistive wires the tiles' power (each tile's drivers, its own segments) is the engine's,
    not the ideal-wire estimate, and the arrays' energy is that power over the latency."""
    circuit = small_circuit(tile_rows=3, tile_cols=2)
    assert all(layer.tiling is not None for layer in circuit.layers)
    x = np.random.default_rng(0).uniform(0, 0.2, size=(5, 4))
    result = simulate(circuit, x, engine="nodal", return_power=True, return_hidden=True)
    estimate = ideal_wire_power_w(circuit, x, result.hidden_v)
    assert np.all(np.abs(result.power_w - estimate) > 1e-9 * estimate)
    parts = system_energy(circuit, result.power_w, x, [2e-9, 3e-9], 6e-4)
    assert parts.arrays_j == pytest.approx(np.mean(result.power_w) * 5e-9, rel=1e-12)


def test_a_convolution_draws_its_mean_read_power_over_the_latency():
    """A layer read at 9 output positions: its reads' powers add in ``layer_power_w``, and over the
    latency it draws their mean; a total power alone cannot say so and is refused."""
    rng = np.random.default_rng(3)
    geometry = ConvGeometry((1, 5, 5), (3, 3), (2, 2), (1, 1))
    circuit = map_ops([Conv(rng.normal(size=(2, 1, 3, 3)), rng.normal(size=2) * 0.1, geometry, "relu"),
                       Dense(rng.normal(size=(3, 18)) * 0.3, rng.normal(size=3) * 0.1, None)],
                      MappingConfig(r_word_ohm=1.0, r_bit_ohm=1.0, tile_rows=6, tile_cols=4))
    x = rng.uniform(0, 0.2, size=(3, 25))
    result = simulate(circuit, x, engine="nodal", return_power=True)
    assert reads_per_layer(circuit) == [9, 1]
    np.testing.assert_allclose(result.layer_power_w.sum(axis=1), result.power_w, rtol=1e-14)
    settling = [2e-9, 3e-9]
    latency = 9 * 2e-9 + 3e-9
    parts = system_energy(circuit, result.layer_power_w, x, settling, 6e-4)
    mean_read = result.layer_power_w[:, 0] / 9 + result.layer_power_w[:, 1]
    assert parts.arrays_j == pytest.approx(np.mean(mean_read) * latency, rel=1e-12)
    # the input drivers charge the word lines with every patch: at 0.1 V everywhere, 3 x 3 positions of a
    # 3 x 3 kernel (stride 2, padding 1) on 5 x 5 read 7 x 7 = 49 pixels that are not padding
    c_row = word_line_capacitance_f(circuit.layers[0], ArrayParasitics())[0]
    np.testing.assert_allclose(driver_energy_j(circuit, np.full((2, 25), 0.1), ArrayParasitics()), 49 * 0.01 * c_row,
                               rtol=1e-12)
    with pytest.raises(ValueError, match=r"reads its layers \[9, 1\] times.*layer_power_w"):
        system_energy(circuit, result.power_w, x, settling, 6e-4)
    with pytest.raises(ValueError, match=r"shape \(3, 3\) is not accepted"):
        system_energy(circuit, np.ones((3, 3)), x, settling, 6e-4)
