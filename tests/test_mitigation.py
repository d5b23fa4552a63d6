"""Mitigation levers checked against independent truths: the ideal engine, the software network,
plain training, analytic noise statistics and the physical window."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neurodtco.data import to_voltages
from neurodtco.engines import simulate
from neurodtco.mapping import MappingConfig, map_network
from neurodtco.network import NetworkConfig, train


# ---------------------------------------------------------------- differentiable circuit


@pytest.mark.parametrize("cell", ["linear", "gap"])
def test_torch_forward_equals_ideal_engine(default_net, digits, cell):
    from neurodtco.mitigation import differentiable as diff

    circuit = map_network(default_net, MappingConfig(cell=cell))
    x = to_voltages(digits.x_test[:50], circuit.input_scale_v)
    ours = diff.forward(circuit, diff.stack_conductances([circuit]), torch.as_tensor(x))[0].numpy()
    ref = simulate(circuit, x, engine="ideal").outputs_v
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12 * np.abs(ref).max())


# ---------------------------------------------------------------- defect-aware retraining


@pytest.fixture(scope="module")
def defective(default_circuit):
    from neurodtco.defects import Defect, apply_defects

    return [apply_defects(default_circuit, [Defect(pattern="random", layers="all", kind="mix", density=0.02)], seed=s)
            for s in range(2)]


@pytest.fixture(scope="module")
def retrained(defective, digits):
    from neurodtco.mitigation import RetrainConfig, retrain_defect_aware_batch

    config = RetrainConfig(epochs=12, batch_size=256, learning_rate=2e-2)
    return retrain_defect_aware_batch([c for c, _ in defective], [r for _, r in defective], digits, config)


def test_retraining_never_moves_a_stuck_cell_and_keeps_the_rest_in_the_window(defective, retrained):
    for (chip, record), new in zip(defective, retrained):
        g_min, g_max = chip.cell.g_min, chip.cell.g_max
        assert sum(record.n_hit) > 0
        for old_g, mask, new_g in zip(chip.conductances, record.masks, new.conductances):
            np.testing.assert_array_equal(new_g[mask], old_g[mask])
            free = new_g[~mask]
            assert free.min() >= g_min and free.max() <= g_max
        # It did reprogram the healthy cells (otherwise the test below would be vacuous).
        assert any(np.abs(a - b).max() > 1e-3 * g_max for a, b in zip(chip.conductances, new.conductances))


def test_retraining_recovers_accuracy_in_the_exact_engine(defective, retrained, default_circuit, digits):
    from neurodtco.mitigation import circuit_accuracy

    healthy = circuit_accuracy(default_circuit, digits, "nodal")
    for (chip, _), new in zip(defective, retrained):
        before = circuit_accuracy(chip, digits, "nodal")
        after = circuit_accuracy(new, digits, "nodal")
        # 2% random stuck cells wreck the unmitigated chip; retraining brings it near the healthy one.
        assert before < healthy - 0.2
        assert after > healthy - 0.05


def test_retraining_without_defects_returns_the_healthy_circuit(default_circuit, digits):
    from neurodtco.mitigation import circuit_accuracy, retrain_defect_aware

    masks = [np.zeros(g.shape, dtype=bool) for g in default_circuit.conductances]
    same = retrain_defect_aware(default_circuit, masks, digits)
    for a, b in zip(same.conductances, default_circuit.conductances):
        np.testing.assert_array_equal(a, b)
    assert circuit_accuracy(same, digits) == circuit_accuracy(default_circuit, digits)


def test_retraining_refuses_masks_of_the_wrong_shape(default_circuit, digits):
    from neurodtco.mitigation import retrain_defect_aware

    with pytest.raises(ValueError, match="one bool array per layer"):
        retrain_defect_aware(default_circuit, [np.zeros((2, 2), dtype=bool)] * 4, digits)


# ---------------------------------------------------------------- hardware-aware training


def test_hardware_aware_training_without_noise_is_plain_training(digits):
    from neurodtco.mitigation import HardwareNoise, train_hardware_aware

    config = NetworkConfig(epochs=2)
    plain = train(digits, config)
    aware = train_hardware_aware(digits, HardwareNoise(sigma=0.0), config)
    for a, b in zip(plain.weights + plain.biases, aware.weights + aware.biases):
        np.testing.assert_array_equal(a, b)


def test_injected_conductance_noise_has_the_analytic_mean_and_variance():
    """A one-layer model read with unit inputs: the noisy weight is (G+ e+ - G- e-)/k, e ~ 1 + sigma N(0,1)."""
    from neurodtco.mitigation import HardwareNoise, noisy_forward
    from neurodtco.network import MLP

    torch.manual_seed(0)
    model = MLP((3, 2))
    sigma = 0.1
    mapping = MappingConfig()
    forward = noisy_forward(HardwareNoise(sigma=sigma, mapping=mapping), torch.Generator().manual_seed(1))
    w = model.linears[0].weight.detach().double().numpy()
    b = model.linears[0].bias.detach().double().numpy()
    x = torch.cat([torch.eye(3), torch.zeros(1, 3)])  # one batch, one noise sample: unit inputs and no input

    def noisy_weights() -> np.ndarray:
        out = forward(model, x).detach().double().numpy()
        return out[:3] - out[3]  # [3 inputs, 2 outputs] = noisy W^T (the noisy bias cancels)

    draws = np.stack([noisy_weights() for _ in range(4000)])
    signed = np.concatenate([w, b[:, None]], axis=1)
    peak = np.abs(signed).max()
    cell = mapping.make_cell()
    rel_min = cell.g_min / (cell.g_max - cell.g_min)
    u_plus = rel_min + np.maximum(w, 0) / peak
    u_minus = rel_min + np.maximum(-w, 0) / peak
    var = (sigma * peak) ** 2 * (u_plus**2 + u_minus**2).T
    n = draws.shape[0]
    np.testing.assert_allclose(draws.mean(axis=0), w.T, atol=5 * np.sqrt(var.max() / n))
    np.testing.assert_allclose(draws.var(axis=0), var, rtol=0.1)


# ---------------------------------------------------------------- circuit levers


@pytest.mark.parametrize("reference", ["row", "uniform"])
def test_shared_reference_mapping_reproduces_the_software_network(default_net, digits, reference):
    from neurodtco.mitigation.circuit_levers import map_shared_reference

    circuit = map_shared_reference(default_net.weights, default_net.biases, MappingConfig(), reference=reference)
    for layer in circuit.layers:
        ref = layer.n_columns - 1
        assert layer.n_columns == layer.n_outputs + 1
        assert np.all(layer.minus_columns == ref) and np.array_equal(layer.plus_columns, np.arange(layer.n_outputs))
        assert layer.conductance.min() >= circuit.cell.g_min and layer.conductance.max() <= circuit.cell.g_max
        if reference == "uniform":
            assert np.ptp(layer.conductance[:-1, ref]) == 0  # one value on every input row
    x = to_voltages(digits.x_test, circuit.input_scale_v)
    out = simulate(circuit, x, engine="ideal").outputs_v
    expected = circuit.output_scale_v * default_net.logits(digits.x_test)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
    assert np.array_equal(out.argmax(axis=1), default_net.predict(digits.x_test))


def test_shared_reference_uses_the_window_fully(default_net):
    """The scale k is the largest that fits: some row spans exactly G_min..G_max."""
    from neurodtco.mitigation.circuit_levers import map_shared_reference

    circuit = map_shared_reference(default_net.weights, default_net.biases, MappingConfig(), reference="row")
    for layer in circuit.layers:
        spans = layer.conductance.max(axis=1) - layer.conductance.min(axis=1)
        assert math.isclose(spans.max(), circuit.cell.g_max - circuit.cell.g_min, rel_tol=1e-12)


# ---------------------------------------------------------------- helpers


def test_drop_crossing_interpolates_log_linearly():
    from neurodtco.mitigation import drop_crossing

    # Value 1.0 at 0.01 and 0.0 at 0.1: 0.5 is crossed at the geometric mean.
    assert math.isclose(drop_crossing([0.001, 0.01, 0.1], [1.0, 1.0, 0.0], 0.5), math.sqrt(0.01 * 0.1))
    assert drop_crossing([0.1, 0.2], [1.0, 1.0], 0.5) == math.inf
    assert math.isnan(drop_crossing([0.1, 0.2], [0.0, 0.0], 0.5))
