"""Lowered operations compute exactly what the torch model computes (float64), BatchNorm folded; bad layers are named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from neurodtco import ops
from neurodtco.network import ResidualBlock, Saturate, lower_sequential, parse_arch


def reference(op_list: list, x: np.ndarray) -> np.ndarray:
    """An independent evaluator of the ops vocabulary, written from ``ops``' docstrings."""
    saved = {}
    for op in op_list:
        if isinstance(op, ops.Dense):
            x = ops.activate(x @ op.weight.T + op.bias, op.activation)
        elif isinstance(op, ops.Conv):
            g = op.geometry
            y = g.patches(x) @ op.weight.reshape(len(op.weight), -1).T + op.bias
            x = ops.activate(g.fold(y, len(x)), op.activation)
        elif isinstance(op, ops.Pool):
            x = op.geometry.apply(x)
        elif isinstance(op, ops.Save):
            saved[op.slot] = x.copy()
        elif isinstance(op, ops.Add):
            x = ops.activate(x + saved[op.slot], op.activation)
        else:
            raise AssertionError(f"unknown op {op!r}")
    return x


def randomise(model: nn.Module, seed: int) -> nn.Module:
    """Weights large enough to hit both rails, and BatchNorm with non-trivial running statistics and affine."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.8)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) * 3 + 0.2)
    return model.double().eval()


def torch_forward(model: nn.Module, x: np.ndarray, input_shape) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor(x).reshape(len(x), *input_shape)).reshape(len(x), -1).numpy()


def images(n: int, shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, int(np.prod(shape))))


@pytest.mark.parametrize("name, shape", [("cnn", (1, 28, 28)), ("resnet-mini", (1, 28, 28)), ("resnet-mini", (2, 12, 12)),
                                         ("mlp:784-32-16-10", (1, 28, 28))])
def test_presets_lower_exactly(name, shape):
    arch = parse_arch(name, shape, 10)
    model = randomise(arch.build(), seed=1)
    op_list = lower_sequential(model, arch.input_shape)
    x = images(6, shape)
    expected = torch_forward(model, x, (-1,))  # the built model takes flattened images
    got = reference(op_list, x)
    assert got.shape == expected.shape == (6, 10)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)
    # the test must exercise saturation: some hidden neuron sits on a rail
    assert any(op.activation is not None for op in op_list if isinstance(op, (ops.Dense, ops.Conv, ops.Add)))


def test_op_structure_of_presets():
    def kinds(name: str) -> list:
        arch = parse_arch(name, (1, 28, 28), 10)
        return [(type(op).__name__, getattr(op, "activation", "-")) for op in
                lower_sequential(arch.build(), arch.input_shape)]

    assert kinds("cnn") == [("Conv", "relu"), ("Pool", "-"), ("Conv", "relu"), ("Pool", "-"), ("Dense", "relu"),
                            ("Dense", None)]
    block = [("Save", "-"), ("Conv", "relu"), ("Conv", None), ("Add", "relu")]
    assert kinds("resnet-mini") == [("Conv", "relu"), ("Pool", "-"), *block, *block, ("Pool", "-"), ("Dense", None)]
    assert kinds("mlp:784-20-10") == [("Dense", "hardtanh"), ("Dense", None)]


def test_user_sequential_with_every_supported_layer():
    model = randomise(nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(4, affine=False), nn.Hardtanh(0, 1),
        nn.AvgPool2d(2), nn.Dropout(0.5), ResidualBlock(4, kernel=3, activation="hardtanh"),
        nn.Conv2d(4, 5, (2, 1), stride=(1, 2)), nn.BatchNorm2d(5), Saturate("hardtanh"),
        nn.MaxPool2d(2, stride=1), nn.Flatten(), nn.Linear(5, 7), nn.BatchNorm1d(7), nn.Hardtanh(),
        nn.Identity(), nn.Linear(7, 3)), seed=2)
    shape = (3, 14, 12)
    op_list = lower_sequential(model, shape)
    x = images(5, shape, seed=3)
    np.testing.assert_allclose(reference(op_list, x), torch_forward(model, x, shape), rtol=0, atol=1e-10)
    assert [type(op).__name__ for op in op_list] == ["Conv", "Pool", "Save", "Conv", "Conv", "Add", "Conv", "Pool",
                                                     "Dense", "Dense"]
    acts = [getattr(op, "activation", "-") for op in op_list]
    assert acts == ["relu", "-", "-", "hardtanh", None, "hardtanh", "hardtanh", "-", "hardtanh", None]


def test_batchnorm_folds_into_the_weights():
    lin, bn = nn.Linear(2, 2), nn.BatchNorm1d(2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        lin.bias.copy_(torch.tensor([0.5, -0.5]))
        bn.running_mean.copy_(torch.tensor([1.0, -1.0]))
        bn.running_var.copy_(torch.tensor([4.0, 0.25]) - bn.eps)  # scale 1/2 and 2 before gamma
        bn.weight.copy_(torch.tensor([2.0, 1.0]))
        bn.bias.copy_(torch.tensor([0.0, 3.0]))
    (dense,) = lower_sequential(nn.Sequential(lin, bn), 2)
    np.testing.assert_allclose(dense.weight, [[1.0, 2.0], [6.0, 8.0]], rtol=1e-6)  # gamma/sigma = 1 and 2
    np.testing.assert_allclose(dense.bias, [(0.5 - 1.0) * 1.0, (-0.5 + 1.0) * 2.0 + 3.0], rtol=1e-6)


@pytest.mark.parametrize("layers, shape, match", [
    ([nn.Linear(4, 3), nn.ReLU()], (4,), "ReLU.*saturate at a rail.*Saturate\\('relu'\\)"),
    ([nn.Linear(4, 3), nn.Hardtanh(-2, 2)], (4,), "Hardtanh.*saturate at a rail"),
    ([nn.Linear(4, 3), nn.LSTM(3, 3)], (4,), "layer 1 \\(LSTM.*not supported; supported layers: Linear, Conv2d"),
    ([nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2)], (1, 4, 4), None),
    ([nn.Conv2d(1, 2, 3), nn.Linear(2, 2)], (1, 4, 4), "layer 1 .*put nn.Flatten\\(\\) before it"),
    ([nn.Linear(4, 3), Saturate("relu"), nn.BatchNorm1d(3)], (4,), "layer 2 .*folded into the Linear or Conv2d"),
    ([nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), Saturate("relu")], (1, 6, 6), "layer 2 .*activation must follow"),
    ([nn.Conv2d(1, 2, 3, dilation=2)], (1, 6, 6), "dilation"),
    ([nn.Conv2d(1, 2, 3, padding="same")], (1, 6, 6), "numeric zero padding"),
    ([nn.MaxPool2d(2, padding=1)], (1, 6, 6), "without padding"),
    ([nn.Linear(5, 3)], (4,), "reads 5 features"),
])
def test_unsupported_layers_are_named(layers, shape, match):
    model = nn.Sequential(*layers)
    if match is None:
        assert len(lower_sequential(model, shape)) == 2
        return
    with pytest.raises(ValueError, match=match):
        lower_sequential(model, shape)


def test_not_a_sequential_is_refused():
    with pytest.raises(ValueError, match="nn.Sequential"):
        lower_sequential(nn.Linear(2, 2), 2)  # type: ignore[arg-type]


def test_run_ops_in_batches_equals_the_reference():
    from neurodtco.network import run_ops

    arch = parse_arch("resnet-mini", (1, 12, 12), 4)
    op_list = lower_sequential(randomise(arch.build(), seed=4), arch.input_shape)
    x = images(7, arch.input_shape, seed=5)
    expected = reference(op_list, x)
    np.testing.assert_array_equal(run_ops(op_list, x), expected)
    np.testing.assert_allclose(run_ops(op_list, x, max_floats=1), expected, rtol=0, atol=1e-12)  # one image a batch
