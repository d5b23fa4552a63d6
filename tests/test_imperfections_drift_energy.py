"""Drift (power law) and arrays' energy per inference (energy conservation on small arrays)."""

from __future__ import annotations

import numpy as np
import pytest

from neurodtco.circuit import Circuit
from neurodtco.engines import simulate
from neurodtco.imperfections import PowerLawDrift, apply_imperfections, energy_per_inference_j, evaluate
from neurodtco.mapping import MappingConfig, map_weights


def small_circuit(r_wire: float = 0.0, window=(10e3, 1e6)) -> Circuit:
    rng = np.random.default_rng(11)
    w = [rng.normal(size=(3, 4)), rng.normal(size=(2, 3))]
    b = [rng.normal(size=3), rng.normal(size=2)]
    return map_weights(w, b, MappingConfig(r_on_ohm=window[0], r_off_ohm=window[1], r_word_ohm=r_wire, r_bit_ohm=r_wire))


def test_drift_is_the_identity_at_t0_and_a_power_law_after():
    circuit = small_circuit()
    same, _ = apply_imperfections(circuit, {"kind": "drift", "time_s": 1.0, "nu": 0.1})
    np.testing.assert_allclose(same.layers[0].conductance, circuit.layers[0].conductance, rtol=1e-15)
    g = [apply_imperfections(circuit, {"kind": "drift", "time_s": t, "nu": 0.07, "t0_s": 10.0})[0].layers[0].conductance
         for t in (10.0, 1e3, 1e5)]
    slopes = np.log(g[2] / g[1]) / np.log(1e5 / 1e3)
    np.testing.assert_allclose(slopes, -0.07, rtol=1e-12)
    np.testing.assert_allclose(g[1] / g[0], 100.0 ** -0.07, rtol=1e-12)


def test_drift_exponent_spread_is_seeded_and_has_the_requested_statistics():
    model = PowerLawDrift(time_s=100.0, nu=0.05, nu_sigma=0.01)
    nu = model.exponents((100_000,), np.random.default_rng(0))
    assert nu.mean() == pytest.approx(0.05, rel=1e-2) and nu.std() == pytest.approx(0.01, rel=2e-2)
    circuit = small_circuit()
    spec = {"kind": "drift", "time_s": 1e4, "nu": 0.05, "nu_sigma": 0.02}
    a, b = (apply_imperfections(circuit, spec, seed=s)[0].layers[0].conductance for s in (1, 1))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="time_s"):
        apply_imperfections(circuit, {"kind": "drift", "time_s": 0.5})
    with pytest.raises(ValueError, match="time_s is required"):
        apply_imperfections(circuit, {"kind": "drift"})


def test_energy_equals_the_sum_of_cell_joule_heat_with_ideal_wires():
    circuit = small_circuit()
    x = np.random.default_rng(0).uniform(0, 0.2, size=(6, 4))
    result = simulate(circuit, x, return_power=True, return_hidden=True)
    t_read = 5e-8
    expected = np.zeros(len(x))
    inputs = x
    for index, layer in enumerate(circuit.layers):
        rows = layer.row_voltages(inputs)
        # Each cell carries I = G V across it (bit lines at virtual ground): I^2 / G = G V^2.
        current = rows[:, :, None] * layer.conductance[None]
        expected += (current**2 / layer.conductance[None]).sum(axis=(1, 2)) * t_read
        inputs = result.hidden_v[index] if index < circuit.n_layers - 1 else None
    np.testing.assert_allclose(energy_per_inference_j(result, t_read), expected, rtol=1e-12)


def test_nodal_energy_is_the_joule_heat_of_cells_and_wires():
    pytest.importorskip("neurodtco.engines.nodal")
    circuit = small_circuit(r_wire=50.0)
    x = np.random.default_rng(1).uniform(0, 0.2, size=(4, 4))
    result = simulate(circuit, x, engine="nodal", return_power=True, return_nodes=True, return_hidden=True)
    heat = np.zeros(len(x))
    inputs = x
    for index, (layer, nodes) in enumerate(zip(circuit.layers, result.nodes)):
        word, bit, n_in = nodes["word"], nodes["bit"], nodes["neuron_in"]
        rows = layer.row_voltages(inputs)
        heat += ((word - bit) ** 2 * layer.conductance[None]).sum(axis=(1, 2))
        # Word lines: driver -> first cell, then cell to cell; bit lines: cell to cell, last -> neuron.
        heat += ((rows - word[:, :, 0]) ** 2).sum(axis=1) / layer.r_word_ohm
        heat += (np.diff(word, axis=2) ** 2).sum(axis=(1, 2)) / layer.r_word_ohm
        heat += (np.diff(bit, axis=1) ** 2).sum(axis=(1, 2)) / layer.r_bit_ohm
        heat += ((bit[:, -1, :] - n_in) ** 2).sum(axis=1) / layer.r_bit_ohm
        inputs = result.hidden_v[index] if index < circuit.n_layers - 1 else None
    # Ideal op-amps hold the neuron inputs at 0 V, so no power leaves the arrays there.
    np.testing.assert_allclose(result.power_w, heat, rtol=1e-9)


def test_energy_scales_with_the_conductance_window_and_read_time():
    x = np.random.default_rng(2).uniform(0, 0.2, size=(8, 4))
    labels = np.zeros(8, dtype=int)
    base = evaluate(small_circuit(), x, labels, read_time_s=1e-7)
    high_r = evaluate(small_circuit(window=(100e3, 10e6)), x, labels, read_time_s=1e-7)
    slow = evaluate(small_circuit(), x, labels, read_time_s=1e-6)
    assert high_r["energy_per_inference_j"] == pytest.approx(base["energy_per_inference_j"] / 10, rel=1e-12)
    assert high_r["accuracy"] == base["accuracy"]
    assert slow["energy_per_inference_j"] == pytest.approx(10 * base["energy_per_inference_j"], rel=1e-12)


def test_evaluate_matches_the_engine_without_noise_and_energy_needs_power():
    circuit = small_circuit()
    x = np.random.default_rng(3).uniform(0, 0.2, size=(10, 4))
    labels = np.arange(10) % 2
    report = evaluate(circuit, x, labels)
    assert report["accuracy"] == simulate(circuit, x).accuracy(labels) and report["n_inferences"] == 10
    with pytest.raises(ValueError, match="return_power"):
        energy_per_inference_j(simulate(circuit, x))
    with pytest.raises(ValueError, match="read_time_s"):
        evaluate(circuit, x, labels, read_time_s=0)

