"""Training is deterministic; saved models load back and refuse other architectures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodtco.data import split_arrays
from neurodtco.network import MLP, NetworkConfig, forward_float64, load_network, train


@pytest.fixture(scope="module")
def tiny_data():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    x = np.clip(rng.normal(0.2, 0.05, (120, 6)), 0, 1)
    x[np.arange(120), y] += 0.6  # class k lights input k
    return split_arrays(np.clip(x, 0, 1), y, n_test=30, seed=0)


def test_training_is_deterministic_and_learns(tiny_data):
    config = NetworkConfig(widths=(6, 4, 3), epochs=40, seed=5)
    a, b = train(tiny_data, config), train(tiny_data, config)
    for wa, wb in zip(a.weights, b.weights):
        assert np.array_equal(wa, wb)
    assert a.history["test_accuracy"] > 0.9


def test_float64_forward_matches_torch(tiny_data):
    net = train(tiny_data, NetworkConfig(widths=(6, 5, 4, 3), epochs=5, seed=0))
    x = tiny_data.x_test
    torch_logits = net.model(torch.tensor(x, dtype=torch.float32)).detach().numpy()
    assert np.allclose(net.logits(x), torch_logits, atol=1e-5)
    assert np.allclose(forward_float64(net.weights, net.biases, x), net.logits(x))


def test_save_load_round_trip_and_architecture_check(tmp_path, tiny_data):
    net = train(tiny_data, NetworkConfig(widths=(6, 4, 3), epochs=3, seed=0))
    path = tmp_path / "m.pt"
    net.save(path)
    back = load_network(path)
    assert back.config == net.config
    assert np.array_equal(back.logits(tiny_data.x_test), net.logits(tiny_data.x_test))
    with pytest.raises(ValueError, match="6-4-3 network"):
        load_network(path, expected_widths=(64, 8, 8, 8, 10))


def test_foreign_files_are_refused(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_text("hello")
    with pytest.raises(ValueError, match="not a neurodtco model file"):
        load_network(junk)
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, other)
    with pytest.raises(ValueError, match="not a neurodtco model file"):
        load_network(other)
    with pytest.raises(FileNotFoundError):
        load_network(tmp_path / "nope.pt")


def test_hard_tanh_between_layers_only():
    model = MLP((2, 2, 2))
    with torch.no_grad():
        for lin in model.linears:
            lin.weight.copy_(torch.eye(2) * 10)
            lin.bias.zero_()
    out = model(torch.tensor([[1.0, -1.0]]))
    assert torch.allclose(out, torch.tensor([[10.0, -10.0]]))  # hidden clamped to +-1, output not


@pytest.mark.parametrize("widths", [(64, 0, 10), (64,), (64, -3, 10)])
def test_bad_widths_are_refused(widths):
    with pytest.raises(ValueError, match="widths"):
        NetworkConfig(widths=widths)
