"""Architectures as data: parsing, sizes, plain-dict files, seeded training of a CNN, and `train --arch`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from neurodtco.cli import app
from neurodtco.data import split_arrays
from neurodtco.network import (Activation, ArchConfig, Architecture, BatchNorm, Conv2d, Flatten, Linear, NetworkConfig,
                               Pool, Residual, TrainedNetwork, load_network, make_config, parse_arch,
                               train_architecture)


@pytest.fixture(scope="module")
def stripes():
    """6x6 images: class 0 has a bright row, class 1 a bright column, class 2 a bright diagonal, plus noise."""
    rng = np.random.default_rng(0)
    n = 60
    y = np.tile(np.arange(3), n // 3)
    x = rng.random((n, 6, 6)) * 0.3
    pos = rng.integers(0, 6, n)
    for i in range(n):
        if y[i] == 0:
            x[i, pos[i], :] = 1.0
        elif y[i] == 1:
            x[i, :, pos[i]] = 1.0
        else:
            x[i][np.eye(6, dtype=bool)] = 1.0
    return split_arrays(x, y, n_test=15, seed=0)


SMALL = Architecture("small", (1, 6, 6), (Conv2d(4, 3, padding=1), BatchNorm(), Activation("relu"), Pool("max", 2),
                                          Residual(3), Flatten(), Linear(8), BatchNorm(), Activation("hardtanh"),
                                          Linear(3)))


def test_sizes_are_inferred_and_misfits_named():
    arch = parse_arch("cnn", (1, 28, 28), 10)
    model = arch.build()
    assert model[1].in_channels == 1 and model[4].in_channels == 8  # after Unflatten: conv, act, pool, conv
    assert [m.in_features for m in model if isinstance(m, torch.nn.Linear)] == [16 * 5 * 5, 64]
    assert arch.output_shape() == (10,)
    with pytest.raises(ValueError, match=r"layers\[3\] Conv2d.*does not fit its input of shape \(8, 2, 2\)"):
        parse_arch("cnn", (1, 4, 4), 10)
    with pytest.raises(ValueError, match="put a Flatten"):
        Architecture("x", (1, 4, 4), (Linear(3),))


def test_parse_arch_errors_name_the_accepted_forms():
    with pytest.raises(ValueError, match="'lenet' is not accepted: choose mlp:.*cnn or resnet-mini"):
        parse_arch("lenet", (1, 28, 28), 10)
    with pytest.raises(ValueError, match="reads 64 inputs, but the images have 784"):
        parse_arch("mlp:64-8-10", (1, 28, 28), 10)
    with pytest.raises(ValueError, match="e.g. mlp:784-256-128-10"):
        parse_arch("mlp:784-x-10", (784,), 10)
    with pytest.raises(ValueError, match="Activation.kind='relu6'"):
        Activation("relu6")


def test_architecture_round_trips_through_plain_json():
    for arch in (SMALL, parse_arch("resnet-mini", (1, 28, 28), 10), parse_arch("mlp:784-20-10", (784,), 10)):
        data = json.loads(json.dumps(arch.to_dict()))
        assert Architecture.from_dict(data) == arch
    bad = SMALL.to_dict()
    bad["layers"][0]["type"] = "conv3d"
    with pytest.raises(ValueError, match="type='conv3d' is not accepted"):
        Architecture.from_dict(bad)


def test_mlp_arch_is_the_default_network_recipe():
    from neurodtco.data import load_digits

    assert make_config("mlp:64-8-8-8-10", load_digits()) == NetworkConfig()


def test_cnn_training_is_seeded_learns_and_reports_progress(stripes):
    config = ArchConfig(SMALL, epochs=15, batch_size=8, learning_rate=1e-2, seed=3, threads=1)
    seen = []
    a = train_architecture(stripes, config, progress=lambda d, n: seen.append((d, n)),
                           validation=(stripes.x_test, stripes.y_test))
    b = train_architecture(stripes, config)
    assert seen == [(e, 15) for e in range(1, 16)]
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert a.history["test_accuracy"] >= 0.9
    assert len(a.history["val_accuracy"]) == 15 and a.history["validation_accuracy"] == a.history["test_accuracy"]
    # the float64 logits (lowered ops) agree with the torch model in eval mode
    with torch.no_grad():
        expected = a.model(torch.tensor(stripes.x_test, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(a.logits(stripes.x_test), expected, atol=1e-4)
    with pytest.raises(ValueError, match="has convolutions.*use .ops\\(\\)"):
        a.weights


def test_training_refuses_a_mismatched_dataset(stripes):
    with pytest.raises(ValueError, match="reads 784 inputs"):
        train_architecture(stripes, ArchConfig(parse_arch("cnn", (1, 28, 28), 10), epochs=1))


def test_saved_architecture_rebuilds_from_the_file_alone(tmp_path, stripes):
    net = train_architecture(stripes, ArchConfig(SMALL, epochs=2, batch_size=16))
    path = tmp_path / "small.pt"
    net.save(path)
    blob = torch.load(path, weights_only=True)  # plain values only
    assert blob["format"] == "neurodtco-net/1" and blob["config"]["arch"]["layers"][4] == {
        "type": "residual", "kernel": 3, "batchnorm": True, "activation": "relu"}
    back = load_network(path)
    assert isinstance(back, TrainedNetwork) and back.config == net.config and back.arch == "small"
    assert np.array_equal(back.logits(stripes.x_test), net.logits(stripes.x_test))
    assert not back.model.training
    with pytest.raises(ValueError, match="holds a small network, but 36-8-3 was asked for"):
        load_network(path, expected_widths=(36, 8, 3))


def test_train_command_with_arch(tmp_path):
    runner = CliRunner()
    out = tmp_path / "r.pt"
    result = runner.invoke(app, ["train", "--arch", "resnet-mini", "--epochs", "1", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["arch"] == "resnet-mini" and payload["n_test"] == 180 and "widths" not in payload
    assert payload["software_accuracy"] == pytest.approx(load_network(out).history["test_accuracy"])
    result = runner.invoke(app, ["train", "--arch", "mlp:64-5-10", "--epochs", "1", "--out", str(out), "--json"])
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["arch"] == "mlp:64-5-10" and payload["widths"] == [64, 5, 10]
    result = runner.invoke(app, ["train", "--arch", "cnn", "--out", str(out)])
    assert result.exit_code == 2 and "does not fit its input" in result.output


def test_saturate_clamps_at_the_rails():
    from neurodtco.network import Saturate

    x = torch.tensor([-3.0, -0.5, 0.25, 2.0])
    assert Saturate("relu")(x).tolist() == [0.0, 0.0, 0.25, 1.0]
    assert Saturate("hardtanh")(x).tolist() == [-1.0, -0.5, 0.25, 1.0]
    with pytest.raises(ValueError, match="'relu' \\(clamp to \\[0, 1\\]\\)"):
        Saturate("sigmoid")


def test_an_architecture_without_class_outputs_is_refused(stripes):
    arch = Architecture("maps", (1, 6, 6), (Conv2d(3, 3),))
    with pytest.raises(ValueError, match="end with Flatten\\(\\) and Linear\\(3\\)"):
        train_architecture(stripes, ArchConfig(arch, epochs=1))
