"""examples/periphery_loads.py: what the default network asks of its neurons, per layer."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from neurodtco.engines import simulate
from neurodtco.mapping import MappingConfig, map_weights
from neurodtco.periphery import load_characterization

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import periphery_loads as example  # noqa: E402


def small_circuit():
    rng = np.random.default_rng(5)
    w = [0.3 * rng.normal(size=(3, 4)), 0.3 * rng.normal(size=(2, 3))]
    b = [0.1 * rng.normal(size=3), 0.1 * rng.normal(size=2)]
    return map_weights(w, b, MappingConfig(r_word_ohm=0.0, r_bit_ohm=0.0, difference_gain=4.0))


def test_voltage_gain_is_the_output_change_of_the_worst_input_perturbation():
    circuit = small_circuit()
    layer = circuit.layers[0]
    g = layer.conductance[:-1]
    diff = g[:, layer.plus_columns] - g[:, layer.minus_columns]
    j = int(np.argmax(np.abs(diff).sum(axis=0)))
    x = np.full((1, 4), 0.1)
    step = 1e-3 * np.sign(diff[:, j])  # every row moved the way that adds up at neuron j
    base, moved = (simulate(circuit, v, engine="ideal", return_hidden=True).hidden_v[0] for v in (x, x + step))
    assert np.all(np.abs(moved) < circuit.layers[0].neuron.saturation_v)  # still linear: the bound is reached
    assert abs(moved[0, j] - base[0, j]) == pytest.approx(example.voltage_gain(layer) * 1e-3, rel=1e-9)


def test_table_has_a_row_per_layer_and_the_read_out_has_no_next_array():
    circuit = small_circuit()
    x = np.random.default_rng(0).uniform(0, 0.2, size=(6, 4))
    lines = example.loads_table(circuit, load_characterization(), x).splitlines()
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| layer")]
    assert len(rows) == circuit.n_layers and all(r.count("|") == 9 for r in rows)
    assert "(read-out)" in rows[-1] and "(read-out)" not in rows[0]
    assert "6 test images" in lines[-1]
