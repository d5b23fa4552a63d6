"""The ideal circuit must reproduce the software network exactly (up to one known scale)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neurodtco import MappingConfig, map_network, map_weights, simulate, to_voltages
from neurodtco.circuit import Circuit


def test_ideal_circuit_equals_scaled_software_logits(default_net, default_circuit, digits):
    logits = default_net.logits(digits.x_test)
    result = simulate(default_circuit, to_voltages(digits.x_test, 0.2), engine="ideal", return_hidden=True)
    expected = default_circuit.output_scale_v * logits
    rel = np.max(np.abs(result.outputs_v - expected)) / np.max(np.abs(expected))
    assert rel < 1e-9
    assert np.array_equal(result.predictions(), logits.argmax(axis=1))
    assert len(digits.y_test) == 180


def test_hidden_voltages_are_rail_times_software_activations(default_net, default_circuit, digits):
    _, hidden = default_net.model(torch.tensor(digits.x_test, dtype=torch.float64).float(), return_hidden=True)
    result = simulate(default_circuit, to_voltages(digits.x_test, 0.2), engine="ideal", return_hidden=True)
    for h_sw, h_v in zip(hidden, result.hidden_v):
        # float32 software pass vs float64 circuit: agree to float32 precision, scaled by the rail
        assert np.allclose(h_v, 0.2 * h_sw.detach().numpy(), atol=1e-6)
        assert np.max(np.abs(h_v)) <= 0.2 + 1e-15


def test_default_network_accuracy(default_net, digits):
    assert default_net.accuracy(digits.x_test, digits.y_test) >= 0.92


@pytest.mark.parametrize("layout", ["interleaved", "split"])
def test_conductances_stay_in_window_and_encode_weights(default_net, layout):
    config = MappingConfig(layout=layout)
    circuit = map_network(default_net, config)
    for layer, w, b in zip(circuit.layers, default_net.weights, default_net.biases):
        g = layer.conductance
        assert g.min() >= 1 / config.r_off_ohm * (1 - 1e-12)
        assert g.max() <= 1 / config.r_on_ohm * (1 + 1e-12)
        # every pair has one cell at G_min: the weight is encoded by the other cell alone
        pair_min = np.minimum(g[:, layer.plus_columns], g[:, layer.minus_columns])
        assert np.allclose(pair_min, 1 / config.r_off_ohm, rtol=1e-12)
        assert np.allclose(layer.effective_weights(), np.concatenate([w, b[:, None]], axis=1), rtol=1e-10, atol=1e-12)


def test_balanced_pairs_centre_on_mid_window_and_compute_the_same(default_net, digits):
    config = MappingConfig(pair_encoding="balanced")
    circuit = map_network(default_net, config)
    g_mid = 0.5 * (1e-4 + 1e-6)
    for layer in circuit.layers:
        pair_sum = layer.conductance[:, layer.plus_columns] + layer.conductance[:, layer.minus_columns]
        assert np.allclose(pair_sum, 2 * g_mid, rtol=1e-12)
        assert layer.conductance.min() >= 1e-6 * (1 - 1e-12) and layer.conductance.max() <= 1e-4 * (1 + 1e-12)
    x = to_voltages(digits.x_test, 0.2)
    assert np.allclose(simulate(circuit, x).outputs_v, simulate(map_network(default_net), x).outputs_v,
                       rtol=1e-11, atol=1e-14)


def test_layouts_give_identical_outputs(default_net, digits):
    x = to_voltages(digits.x_test[:20], 0.2)
    a = simulate(map_network(default_net, MappingConfig(layout="interleaved")), x).outputs_v
    b = simulate(map_network(default_net, MappingConfig(layout="split")), x).outputs_v
    assert np.allclose(a, b, rtol=1e-13, atol=0)


def test_bias_voltage_choice_does_not_change_outputs(default_net, digits):
    x = to_voltages(digits.x_test[:20], 0.2)
    a = simulate(map_network(default_net), x).outputs_v
    b = simulate(map_network(default_net, MappingConfig(bias_voltage_v=0.1)), x).outputs_v
    assert np.allclose(a, b, rtol=1e-12, atol=1e-15)


def test_hand_built_one_layer_circuit():
    # one neuron, one input: w=0.5, b=-0.25 with the default window; output = 0.05 V * (0.5 x - 0.25)
    circuit = map_weights([np.array([[0.5]])], [np.array([-0.25])])
    x = np.array([[0.0], [1.0], [0.4]])
    out = simulate(circuit, 0.2 * x).outputs_v[:, 0]
    assert np.allclose(out, 0.05 * (0.5 * x[:, 0] - 0.25), rtol=1e-12)
    layer = circuit.layers[0]
    k = (1e-4 - 1e-6) / 0.5
    assert math.isclose(layer.weight_scale_s, k)
    # ideal TIA + difference: d = R_f (I+ - I-) = R_f k V_in z -> R_f = 0.05 / (k 0.2)
    assert math.isclose(layer.neuron.feedback_resistance_ohm, 0.05 / (k * 0.2))


def test_torch_inputs_give_torch_outputs(default_circuit, digits):
    x = torch.tensor(to_voltages(digits.x_test[:5], 0.2))
    out = simulate(default_circuit, x).outputs_v
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64


def test_circuit_is_immutable(default_circuit):
    with pytest.raises(ValueError):
        default_circuit.layers[0].conductance[0, 0] = 1.0
    with pytest.raises(Exception):
        default_circuit.input_scale_v = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"r_on_ohm": -5.0}, "r_on_ohm"),
        ({"r_on_ohm": 1e6, "r_off_ohm": 1e4}, "must be below r_off_ohm"),
        ({"v_read_v": 0.0}, "v_read_v"),
        ({"v_read_v": -0.2}, "v_read_v"),
        ({"r_word_ohm": -1.0}, "r_word_ohm"),
        ({"layout": "diagonal"}, "layout"),
        ({"cell": "pcm"}, "unknown cell model"),
    ],
)
def test_bad_physical_parameters_are_refused(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        MappingConfig(**kwargs)


def test_bad_inputs_are_refused(default_circuit):
    with pytest.raises(ValueError, match=r"shape \[batch, 64\]"):
        simulate(default_circuit, np.zeros((3, 10)))
    x = np.zeros((2, 64))
    x[1, 5] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        simulate(default_circuit, x)


def test_mismatched_layers_are_refused(default_circuit):
    with pytest.raises(ValueError, match=r"layer 1\) expects 64 inputs but receives 8"):
        Circuit(layers=(default_circuit.layers[0], default_circuit.layers[0]), cell=default_circuit.cell)
