"""Read noise: the noise budget by hand, sampling statistics, per-inference independence, seeding.

Read noise is a simulation option (``neurodtco.simulate(..., read_noise=...)``): the circuit never holds it.
"""

from __future__ import annotations

import numpy as np
import pytest

from neurodtco.engines import get_engine, simulate
from neurodtco.imperfections import ReadNoiseModel, apply_imperfections, evaluate, parse_imperfections
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
    result = simulate(circuit, np.tile(x, (n, 1)), read_noise=model, seed=3)
    # d_j = r R_f sum_i V_i (G+_ij - G-_ij): a sum of independent cell noises.
    rows = layer.row_voltages(x[None])[0]
    sigma = 0.05 * layer.conductance
    var = (layer.neuron.difference_gain * layer.neuron.feedback_resistance_ohm) ** 2 * (
        (rows[:, None] ** 2 * (sigma[:, layer.plus_columns] ** 2 + sigma[:, layer.minus_columns] ** 2)).sum(axis=0))
    np.testing.assert_allclose(result.outputs_v.var(axis=0), var, rtol=0.08)
    # The mean over many reads is the noise-free output, within 4 standard errors of the analytic sigma.
    np.testing.assert_allclose(result.outputs_v.mean(axis=0), simulate(circuit, x[None]).outputs_v[0],
                               atol=4 * np.sqrt(var.max() / n))
    # Per-inference samples are independent: successive outputs are uncorrelated.
    d = result.outputs_v[:, 0] - result.outputs_v[:, 0].mean()
    assert abs(np.corrcoef(d[:-1], d[1:])[0, 1]) < 4 / np.sqrt(n)


def test_group_size_sets_how_many_inferences_share_a_sample():
    circuit = one_layer_circuit()
    x = np.tile([0.2, 0.1, 0.05, 0.15], (6, 1))
    per_inference = simulate(circuit, x, read_noise=ReadNoiseModel(relative_sigma=0.05), seed=0).outputs_v
    assert len(np.unique(per_inference[:, 0])) == 6
    shared = simulate(circuit, x, read_noise=ReadNoiseModel(relative_sigma=0.05, group_size=3), seed=0)
    assert len(np.unique(shared.outputs_v[:, 0])) == 2 and shared.info["noise_samples"] == 2


def test_each_group_reads_its_own_sample_drawn_in_order_from_the_seed():
    # The reference: one noisy copy of every cell per group, drawn one after the other from default_rng(seed).
    circuit = one_layer_circuit()
    x = np.random.default_rng(4).uniform(0, 0.2, size=(7, 4))
    model = ReadNoiseModel(relative_sigma=0.03, group_size=3)
    rng = np.random.default_rng(11)
    expected = []
    for start in range(0, 7, 3):
        g = [model.sample(c, rng, circuit.cell.v_read_v, 25.0) for c in circuit.conductances]
        expected.append(get_engine("nodal").run(circuit.with_conductances(g), x[start:start + 3]).outputs_v)
    result = simulate(circuit, x, engine="nodal", read_noise=model, seed=11)
    np.testing.assert_array_equal(result.outputs_v, np.concatenate(expected))
    assert result.info["noise_samples"] == 3 and result.info["group_size"] == 3


def test_one_group_for_the_whole_batch_is_one_frozen_sample():
    circuit = one_layer_circuit()
    x = np.random.default_rng(6).uniform(0, 0.2, size=(5, 4))
    model = ReadNoiseModel(relative_sigma=0.05, group_size=5)
    g = [model.sample(c, np.random.default_rng(2), circuit.cell.v_read_v) for c in circuit.conductances]
    np.testing.assert_array_equal(simulate(circuit, x, read_noise=model, seed=2).outputs_v,
                                  simulate(circuit.with_conductances(g), x).outputs_v)


def test_noise_free_model_reproduces_the_engine_and_seeds_reproduce_samples():
    circuit = one_layer_circuit()
    x = np.random.default_rng(0).uniform(0, 0.2, size=(5, 4))
    silent = ReadNoiseModel(relative_sigma=0.0, thermal_shot=False)
    np.testing.assert_allclose(simulate(circuit, x, read_noise=silent, seed=1, return_power=True).outputs_v,
                               simulate(circuit, x).outputs_v, rtol=1e-12, atol=1e-15)
    model = ReadNoiseModel(relative_sigma=0.02)
    a = simulate(circuit, x, read_noise=model, seed=7).outputs_v
    np.testing.assert_array_equal(a, simulate(circuit, x, read_noise=model, seed=7).outputs_v)
    assert not np.array_equal(a, simulate(circuit, x, read_noise=model, seed=8).outputs_v)


def test_the_noise_is_read_at_the_temperature_of_the_circuit():
    circuit = one_layer_circuit()
    hot, _ = apply_imperfections(circuit, {"kind": "temperature", "temperature_c": 125, "wire_tcr_per_k": 0.0})
    x = np.random.default_rng(1).uniform(0, 0.2, size=(3, 4))
    model = ReadNoiseModel(relative_sigma=0.0, read_time_s=1e-10)  # thermal and shot noise only
    rng = np.random.default_rng(5)
    g = [model.sample(c, rng, hot.cell.v_read_v, 125.0) for c in hot.conductances]
    np.testing.assert_array_equal(simulate(hot, x, read_noise=model, seed=5, engine="ideal").outputs_v[:1],
                                  simulate(hot.with_conductances(g), x[:1]).outputs_v)


def test_a_read_noise_item_leaves_the_circuit_and_hands_its_model_to_the_simulation():
    circuit = one_layer_circuit()
    spec = {"kind": "read_noise", "relative_sigma": 0.05}
    same, record = apply_imperfections(circuit, spec, seed=2)
    assert record["kind"] == "read_noise" and record["relative_sigma_min"] >= 0.05
    np.testing.assert_array_equal(same.layers[0].conductance, circuit.layers[0].conductance)
    assert "read_noise" not in same.metadata
    model = parse_imperfections(spec).read_noise
    assert model == ReadNoiseModel(relative_sigma=0.05)
    x = np.tile([0.2, 0.1, 0.05, 0.15], (4, 1))
    assert len(np.unique(simulate(same, x, read_noise=model, seed=0).outputs_v[:, 0])) == 4
    assert len(np.unique(simulate(same, x).outputs_v[:, 0])) == 1
    labels = np.zeros(4, dtype=int)
    noisy = evaluate(same, x, labels, read_noise=model, seed=0, return_hidden=False)
    assert noisy["n_inferences"] == 4 and noisy["energy_per_inference_j"] > 0


def test_read_noise_is_recorded_after_the_other_imperfections_of_a_list():
    circuit = one_layer_circuit()
    spec = [{"kind": "read_noise", "relative_sigma": 0.01}, {"kind": "temperature", "temperature_c": 85}]
    hot_noisy, record = apply_imperfections(circuit, spec, seed=4)
    hot, _ = apply_imperfections(circuit, spec[1:])
    np.testing.assert_array_equal(hot_noisy.layers[0].conductance, hot.layers[0].conductance)
    assert [r["kind"] for r in record["items"]] == ["read_noise", "temperature"]
    assert record["items"][0]["temperature_c"] == 85.0
    with pytest.raises(ValueError, match="more than one read_noise"):
        parse_imperfections([spec[0], spec[0]])


@pytest.mark.parametrize("params, message", [
    ({"relative_sigma": -0.1}, "relative_sigma"),
    ({"read_time_s": 0}, "read_time_s"),
    ({"group_size": 0}, "group_size"),
    ({"sigma": 0.1}, "unknown parameter"),
])
def test_bad_noise_specs_are_refused(params, message):
    with pytest.raises(ValueError, match=message):
        apply_imperfections(one_layer_circuit(), {"kind": "read_noise", **params})
