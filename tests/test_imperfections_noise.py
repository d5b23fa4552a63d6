"""Read noise: the noise budget by hand, sampling statistics, per-inference independence, seeding."""

from __future__ import annotations

import numpy as np
import pytest

from neurodtco.engines import simulate as engine_simulate
from neurodtco.imperfections import (ReadNoiseModel, apply_imperfections, clean_circuit, simulate,
                                     simulate_with_read_noise)
from neurodtco.mapping import MappingConfig, map_weights


def one_layer_circuit():
    """A single 4-input, 3-neuron linear layer with no clamp (outputs are linear in the cells)."""
    rng = np.random.default_rng(5)
    w, b = rng.normal(size=(3, 4)), rng.normal(size=3)
    return map_weights([w], [b], MappingConfig(r_word_ohm=0.0, r_bit_ohm=0.0))


def test_noise_budget_matches_the_hand_formula():
    g, v, t_read = np.array([1e-6, 1e-5, 1e-4]), 0.2, 1e-9
    k, q, temp = 1.380649e-23, 1.602176634e-19, 358.15
    thermal_shot = (4 * k * temp * g + 2 * q * g * v) * (0.5 / t_read) / v**2
    model = ReadNoiseModel(relative_sigma=0.03, read_time_s=t_read)
    np.testing.assert_allclose(model.sigma(g, v, temperature_c=85.0), np.sqrt((0.03 * g) ** 2 + thermal_shot), rtol=1e-12)
    relative = model.sigma(g, v, 85.0) / g
    assert relative[0] > relative[1] > relative[2]  # low-conductance states are relatively noisier
    only_prop = ReadNoiseModel(relative_sigma=0.02, thermal_shot=False)
    np.testing.assert_allclose(only_prop.sigma(g, v), 0.02 * g, rtol=1e-12)


def test_samples_have_the_model_mean_and_spread():
    model = ReadNoiseModel(relative_sigma=0.05, thermal_shot=False)
    g = np.full(200_000, 2e-5)
    sample = model.sample(g, np.random.default_rng(1), v_read_v=0.2)
    assert sample.mean() == pytest.approx(2e-5, rel=1e-3)
    assert sample.std() == pytest.approx(0.05 * 2e-5, rel=1e-2)


def test_output_variance_per_inference_matches_the_linear_propagation():
    circuit = one_layer_circuit()
    layer = circuit.layers[0]
    model = ReadNoiseModel(relative_sigma=0.05, thermal_shot=False)
    x = np.array([0.2, 0.1, 0.05, 0.15])
    n = 4000
    result = simulate_with_read_noise(circuit, np.tile(x, (n, 1)), model, seed=3)
    # d_j = r R_f sum_i V_i (G+_ij - G-_ij): a sum of independent cell noises.
    rows = layer.row_voltages(x[None])[0]
    sigma = 0.05 * layer.conductance
    var = (layer.neuron.difference_gain * layer.neuron.feedback_resistance_ohm) ** 2 * (
        (rows[:, None] ** 2 * (sigma[:, layer.plus_columns] ** 2 + sigma[:, layer.minus_columns] ** 2)).sum(axis=0))
    np.testing.assert_allclose(result.outputs_v.var(axis=0), var, rtol=0.08)
    np.testing.assert_allclose(result.outputs_v.mean(axis=0), engine_simulate(circuit, x[None]).outputs_v[0],
                               atol=4 * np.sqrt(var.max() / n))


def test_group_size_sets_how_many_inferences_share_a_sample():
    circuit = one_layer_circuit()
    x = np.tile([0.2, 0.1, 0.05, 0.15], (6, 1))
    model = ReadNoiseModel(relative_sigma=0.05)
    per_inference = simulate_with_read_noise(circuit, x, model, seed=0, group_size=1).outputs_v
    assert len(np.unique(per_inference[:, 0])) == 6
    shared = simulate_with_read_noise(circuit, x, model, seed=0, group_size=3)
    assert len(np.unique(shared.outputs_v[:, 0])) == 2 and shared.info["noise_samples"] == 2


def test_noise_free_model_reproduces_the_engine_and_seeds_reproduce_samples():
    circuit = one_layer_circuit()
    x = np.random.default_rng(0).uniform(0, 0.2, size=(5, 4))
    silent = ReadNoiseModel(relative_sigma=0.0, thermal_shot=False)
    np.testing.assert_allclose(simulate_with_read_noise(circuit, x, silent, seed=1, return_power=True).outputs_v,
                               engine_simulate(circuit, x).outputs_v, rtol=1e-12, atol=1e-15)
    model = ReadNoiseModel(relative_sigma=0.02)
    a = simulate_with_read_noise(circuit, x, model, seed=7).outputs_v
    np.testing.assert_array_equal(a, simulate_with_read_noise(circuit, x, model, seed=7).outputs_v)
    assert not np.array_equal(a, simulate_with_read_noise(circuit, x, model, seed=8).outputs_v)


def test_spec_freezes_one_sample_and_simulate_resamples_around_the_clean_state():
    circuit = one_layer_circuit()
    noisy, record = apply_imperfections(circuit, {"kind": "read_noise", "relative_sigma": 0.05}, seed=2)
    assert record["kind"] == "read_noise" and record["relative_sigma_min"] >= 0.05
    assert not np.array_equal(noisy.layers[0].conductance, circuit.layers[0].conductance)
    restored, model = clean_circuit(noisy)
    np.testing.assert_array_equal(restored.layers[0].conductance, circuit.layers[0].conductance)
    assert model.relative_sigma == 0.05
    # A cell changed after the sample (a stuck-at defect, say) keeps its new value.
    g = np.array(noisy.layers[0].conductance)
    g[0, 0] = 1e-4
    restored, _ = clean_circuit(noisy.with_conductances([g]))
    assert restored.layers[0].conductance[0, 0] == 1e-4
    np.testing.assert_array_equal(restored.layers[0].conductance[1:], circuit.layers[0].conductance[1:])
    x = np.tile([0.2, 0.1, 0.05, 0.15], (4, 1))
    assert len(np.unique(simulate(noisy, x, seed=0).outputs_v[:, 0])) == 4
    assert len(np.unique(engine_simulate(noisy, x).outputs_v[:, 0])) == 1


def test_read_noise_is_applied_after_the_other_imperfections_of_a_list():
    circuit = one_layer_circuit()
    spec = [{"kind": "read_noise", "relative_sigma": 0.01}, {"kind": "temperature", "temperature_c": 85}]
    noisy, record = apply_imperfections(circuit, spec, seed=4)
    hot, _ = apply_imperfections(circuit, spec[1:])
    restored, _ = clean_circuit(noisy)
    np.testing.assert_allclose(restored.layers[0].conductance, hot.layers[0].conductance, rtol=1e-12)
    assert [r["kind"] for r in record["items"]] == ["read_noise", "temperature"]
    assert record["items"][0]["temperature_c"] == 85.0


@pytest.mark.parametrize("params, message", [
    ({"relative_sigma": -0.1}, "relative_sigma"),
    ({"read_time_s": 0}, "read_time_s"),
    ({"group_size": 0}, "group_size"),
    ({"sigma": 0.1}, "unknown parameter"),
])
def test_bad_noise_specs_are_refused(params, message):
    with pytest.raises(ValueError, match=message):
        apply_imperfections(one_layer_circuit(), {"kind": "read_noise", **params})
