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


def test_mlp_training_is_unchanged_bit_for_bit(tiny_data):
    """Weights, loss and logits as the MLP trainer produced them before architectures were generalised."""
    net = train(tiny_data, NetworkConfig(widths=(6, 4, 3), epochs=40, seed=5))
    assert net.model.linears[1].weight.flatten().tolist() == [
        -0.15798205137252808, -0.18926486372947693, -0.5251332521438599, -0.4271029531955719, -0.6451254487037659,
        0.18234460055828094, 0.4735967218875885, 0.4214613735675812, 0.5969687700271606, -0.5916154980659485,
        0.11033280938863754, 0.6533041000366211]
    assert float(net.model.linears[0].weight.detach().sum()) == 1.3886255025863647
    assert net.history["loss"][-1] == 0.735510958565606
    assert net.logits(tiny_data.x_test).sum() == -9.737070702036087
    # the lowered operations are the MLP's own weights, and logits are exactly forward_float64
    assert np.array_equal(net.logits(tiny_data.x_test), forward_float64(net.weights, net.biases, tiny_data.x_test))
    for w, lin in zip(net.weights, net.model.linears):
        assert np.array_equal(w, lin.weight.detach().double().numpy())
    assert net.arch == "mlp:6-4-3"


def test_a_file_written_by_the_mlp_only_code_still_loads(tmp_path, tiny_data):
    from dataclasses import asdict

    config = NetworkConfig(widths=(6, 4, 3), epochs=3)
    model = MLP(config.widths)
    path = tmp_path / "old.pt"
    torch.save({"format": "neurodtco-mlp/1", "config": asdict(config), "state_dict": model.state_dict(),
                "history": {"loss": [1.0]}}, path)
    net = load_network(path, expected_widths=(6, 4, 3))
    assert net.config == config and net.history == {"loss": [1.0]}
    expected = model(torch.tensor(tiny_data.x_test, dtype=torch.float32)).detach().numpy()
    assert np.allclose(net.logits(tiny_data.x_test), expected, atol=1e-5)
