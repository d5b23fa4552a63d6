"""Lowering a torch ``nn.Sequential`` to the hardware's operations (``neurodtco.ops``), and running those in float64.

BatchNorm is folded into the convolution or dense layer before it with its eval-mode statistics,
``W' = W * s``, ``b' = (b - mean) * s + beta`` with ``s = gamma / sqrt(var + eps)``; Flatten,
Unflatten, Dropout and Identity move no data and vanish; an activation becomes the ``activation``
of the operation it follows, so every ``Dense``/``Conv`` carries its own (``None`` for the logits
and for the second convolution of a residual block, whose activation belongs to the ``Add``).
"""

from __future__ import annotations

from dataclasses import replace
from math import prod
from typing import Sequence

import numpy as np
from torch import nn

from ..ops import Add, Conv, ConvGeometry, Dense, Op, Pool, PoolGeometry, Save, activate
from .layers import ResidualBlock, Saturate

SUPPORTED = ("Linear, Conv2d (groups 1, no dilation, zero padding), BatchNorm1d/BatchNorm2d right after a Linear or "
             "Conv2d, MaxPool2d/AvgPool2d (no padding), Flatten, Unflatten, saturating activations (neurodtco's "
             "Saturate, nn.Hardtanh(-1, 1) or nn.Hardtanh(0, 1)), neurodtco's ResidualBlock, Dropout, Identity")
_CLAMP_HINT = "the hardware's neurons saturate at a rail: use Saturate('relu') (clamp to [0, 1]) " \
              "or Saturate('hardtanh') (clamp to [-1, 1]) from neurodtco.network, or nn.Hardtanh(0, 1)/nn.Hardtanh(-1, 1)"
_UNBOUNDED = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Softplus,
              nn.Hardsigmoid, nn.Hardswish, nn.Mish, nn.Softmax, nn.LogSoftmax)


def lower_sequential(model: nn.Sequential, input_shape: int | Sequence[int]) -> list[Op]:
    """The operations (float64) computing ``model.eval()`` on inputs of ``input_shape``: ``(C, H, W)`` or ``(features,)``."""
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"expected a torch.nn.Sequential, got {type(model).__name__}: "
                         "wrap the layers in nn.Sequential(...)")
    shape = (int(input_shape),) if isinstance(input_shape, (int, np.integer)) else tuple(int(s) for s in input_shape)
    if len(shape) not in (1, 3) or min(shape) < 1:
        raise ValueError(f"input_shape={input_shape!r} is not accepted: give (features,) or (channels, height, width)")
    return _lower(list(model), shape, [0], "")[0]


def _lower(layers: list[nn.Module], shape: tuple[int, ...], slots: list[int], prefix: str) -> tuple[list[Op], tuple]:
    """Lower ``layers`` from ``shape``; ``slots`` counts residual slots across nesting."""
    ops: list[Op] = []
    open_ = False  # the last op is a Dense/Conv/Add that may still take a BatchNorm or an activation
    for index, layer in enumerate(layers):
        where = f"layer {prefix}{index} ({layer!r})"
        if isinstance(layer, (nn.Dropout, nn.Identity)):
            continue
        if isinstance(layer, nn.Flatten):
            if layer.start_dim != 1 or layer.end_dim != -1:
                raise ValueError(f"{where}: only Flatten(1, -1) keeps the batch apart from the features")
            shape = (prod(shape),)
        elif isinstance(layer, nn.Unflatten):
            size = tuple(int(s) for s in layer.unflattened_size)
            # the input shape may already name the image a model unflattens its flat input into
            if layer.dim not in (1, -1) or not (shape == size or (len(shape) == 1 and prod(size) == shape[0])):
                raise ValueError(f"{where}: it must unflatten dimension 1 of a {prod(size)}-vector; its input has "
                                 f"shape {shape}")
            shape = size
        elif isinstance(layer, nn.Linear):
            if len(shape) != 1 or shape[0] != layer.in_features:
                raise ValueError(f"{where}: it reads {layer.in_features} features, but its input has shape {shape}"
                                 + (" (put nn.Flatten() before it)" if len(shape) == 3 else ""))
            ops.append(Dense(_array(layer.weight), _bias(layer.bias, layer.out_features), None))
            shape, open_ = (layer.out_features,), True
        elif isinstance(layer, nn.Conv2d):
            geometry = _conv_geometry(layer, shape, where)
            ops.append(Conv(_array(layer.weight), _bias(layer.bias, layer.out_channels), geometry, None))
            shape, open_ = (layer.out_channels, *geometry.out_hw), True
        elif isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
            last = ops[-1] if ops else None
            if not (open_ and isinstance(last, (Dense, Conv)) and last.activation is None):
                raise ValueError(f"{where}: a BatchNorm is folded into the Linear or Conv2d right before it; "
                                 "move it there (before the activation)")
            if layer.running_mean is None or layer.num_features != shape[0]:
                raise ValueError(f"{where}: it needs running statistics (track_running_stats=True) for "
                                 f"{shape[0]} channels")
            ops[-1] = _fold(last, layer)
        elif isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
            geometry = _pool_geometry(layer, shape, where)
            ops.append(Pool(geometry))
            shape, open_ = geometry.out_shape, False
        elif isinstance(layer, ResidualBlock):
            if len(shape) != 3 or shape[0] != layer.channels:
                raise ValueError(f"{where}: it reads {layer.channels}-channel maps, but its input has shape {shape}")
            slot = f"res{slots[0]}"
            slots[0] += 1
            branch, out = _lower(list(layer.branch), shape, slots, f"{prefix}{index}.branch.")
            if out != shape or branch[-1].activation is not None:  # type: ignore[union-attr]
                raise ValueError(f"{where}: the branch must keep the shape {shape} and end without an activation")
            ops += [Save(slot), *branch, Add(slot, layer.activation.kind)]
            shape, open_ = out, False
        else:
            kind = _activation_kind(layer, where)
            last = ops[-1] if ops else None
            if not (open_ and isinstance(last, (Dense, Conv, Add)) and last.activation is None):
                raise ValueError(f"{where}: an activation must follow a Linear, a Conv2d (or its BatchNorm) or a "
                                 "ResidualBlock directly: the hardware applies it in that layer's neurons")
            ops[-1] = replace(last, activation=kind)
            open_ = False
    return ops, shape


def _activation_kind(layer: nn.Module, where: str) -> str:
    """``hardtanh`` or ``relu`` for a saturating activation; a clear error for anything else."""
    if isinstance(layer, Saturate):
        return layer.kind
    if isinstance(layer, nn.Hardtanh) and (layer.min_val, layer.max_val) in ((-1.0, 1.0), (0.0, 1.0)):
        return "hardtanh" if layer.min_val == -1.0 else "relu"
    if isinstance(layer, (nn.Hardtanh, *_UNBOUNDED)):
        raise ValueError(f"{where} is not an activation the hardware can build: {_CLAMP_HINT}")
    raise ValueError(f"{where} is not supported; supported layers: {SUPPORTED}")


def _array(tensor) -> np.ndarray:
    return tensor.detach().cpu().double().numpy().copy()


def _bias(bias, size: int) -> np.ndarray:
    return np.zeros(size) if bias is None else _array(bias)


def _fold(op: Dense | Conv, norm: nn.BatchNorm1d | nn.BatchNorm2d) -> Dense | Conv:
    """``op`` followed by ``norm`` (eval mode) as one operation."""
    mean, var = _array(norm.running_mean), _array(norm.running_var)
    gamma = _array(norm.weight) if norm.affine else np.ones_like(mean)
    beta = _array(norm.bias) if norm.affine else np.zeros_like(mean)
    scale = gamma / np.sqrt(var + norm.eps)
    weight = op.weight * scale.reshape(-1, *([1] * (op.weight.ndim - 1)))
    return replace(op, weight=weight, bias=(op.bias - mean) * scale + beta)


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)  # type: ignore[return-value]


def _conv_geometry(layer: nn.Conv2d, shape: tuple[int, ...], where: str) -> ConvGeometry:
    if len(shape) != 3 or shape[0] != layer.in_channels:
        raise ValueError(f"{where}: it reads {layer.in_channels}-channel maps, but its input has shape {shape}"
                         + (" (put nn.Unflatten(1, (C, H, W)) before it)" if len(shape) == 1 else ""))
    if layer.groups != 1 or _pair(layer.dilation) != (1, 1) or layer.padding_mode != "zeros" \
            or isinstance(layer.padding, str):
        raise ValueError(f"{where}: only groups=1, dilation=1 and numeric zero padding are supported "
                         "(write padding as numbers, e.g. padding=2)")
    return ConvGeometry(shape, _pair(layer.kernel_size), _pair(layer.stride), _pair(layer.padding))  # type: ignore[arg-type]


def _pool_geometry(layer: nn.MaxPool2d | nn.AvgPool2d, shape: tuple[int, ...], where: str) -> PoolGeometry:
    if len(shape) != 3:
        raise ValueError(f"{where}: it pools (channels, height, width) maps, but its input has shape {shape}")
    plain = _pair(layer.padding) == (0, 0) and not layer.ceil_mode and (
        _pair(layer.dilation) == (1, 1) if isinstance(layer, nn.MaxPool2d) else layer.divisor_override is None)
    if not plain:
        raise ValueError(f"{where}: only pooling without padding, dilation, ceil_mode or divisor_override is supported")
    kind = "max" if isinstance(layer, nn.MaxPool2d) else "avg"
    stride = layer.stride if layer.stride is not None else layer.kernel_size
    return PoolGeometry(kind, shape, _pair(layer.kernel_size), _pair(stride))  # type: ignore[arg-type]


def run_ops(ops: Sequence[Op], x: np.ndarray, max_floats: int = 2 ** 24) -> np.ndarray:
    """The outputs of ``ops`` on flattened inputs ``[B, features]`` in float64 (batches of <= ``max_floats`` patch values)."""
    x = np.asarray(x, dtype=np.float64)
    per_image = max([op.geometry.n_positions * op.geometry.patch_size for op in ops if isinstance(op, Conv)]
                    + [x.shape[1]])
    batch = max(1, max_floats // per_image)
    return np.concatenate([_run(ops, x[i:i + batch]) for i in range(0, len(x), batch)]) if len(x) else _run(ops, x)


def _run(ops: Sequence[Op], x: np.ndarray) -> np.ndarray:
    saved: dict[str, np.ndarray] = {}
    for op in ops:
        if isinstance(op, Dense):
            x = activate(x @ op.weight.T + op.bias, op.activation)
        elif isinstance(op, Conv):
            y = op.geometry.patches(x) @ op.matrix.T + op.bias
            x = activate(op.geometry.fold(y, len(x)), op.activation)
        elif isinstance(op, Pool):
            x = op.geometry.apply(x)
        elif isinstance(op, Save):
            saved[op.slot] = x
        else:
            x = activate(x + saved.pop(op.slot), op.activation)
    return x

