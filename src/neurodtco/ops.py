"""The vocabulary a network is lowered to before it becomes hardware, shared by ``network`` and ``circuit``.

A trained network (an MLP, a CNN, a small ResNet) is described as a flat sequence of operations
on activations that are always stored flattened, channel-major, ``[batch, C * H * W]`` (PyTorch's
``flatten`` order), so that ``Flatten`` moves no data:

* ``Dense``: ``z = W x + b`` then the activation;
* ``Conv``: a 2-D convolution, unrolled into rows (im2col): every output position reads its
  ``C_in * kh * kw`` inputs through the same weight matrix ``[C_out, C_in * kh * kw]``;
* ``Pool``: ``max`` or ``avg`` pooling over windows;
* ``Save`` / ``Add``: a residual connection: ``Save(slot)`` remembers the current activations,
  ``Add(slot)`` adds them back elementwise and applies its activation (an analog summing stage).

Activations are ``hardtanh`` (clamp to [-1, 1]), ``relu`` (clamp to [0, 1]: a ReLU saturating at the
rail) or ``None`` (linear: the logits, or a branch that an ``Add`` activates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Optional, Union

import numpy as np

if TYPE_CHECKING:
    import torch

Activation = Optional[Literal["hardtanh", "relu"]]
ACTIVATIONS = ("hardtanh", "relu", None)


def check_activation(name: str, value: object) -> None:
    """Refuse an activation outside the vocabulary, naming the accepted ones."""
    if value not in ACTIVATIONS:
        raise ValueError(f"{name}={value!r} is not accepted: choose 'hardtanh', 'relu' (clamped at 1) or None (linear)")


def activate(z: np.ndarray, activation: Activation, rail: float = 1.0) -> np.ndarray:
    """Apply a saturating activation with rails at ``+-rail`` (``[0, rail]`` for relu)."""
    if activation is None:
        return z
    if activation == "hardtanh":
        return np.clip(z, -rail, rail)
    return np.clip(z, 0.0, rail)


def torch_activate(z: "torch.Tensor", activation: Activation, rail: float = 1.0) -> "torch.Tensor":
    """``activate`` for torch tensors on any device."""
    if activation is None:
        return z
    return z.clamp(-rail if activation == "hardtanh" else 0.0, rail)


@dataclass(frozen=True)
class ConvGeometry:
    """Where a convolution reads: input ``(C, H, W)``, kernel, stride and zero padding."""

    in_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        for name, value, low in (("in_shape", self.in_shape, 1), ("kernel", self.kernel, 1),
                                 ("stride", self.stride, 1), ("padding", self.padding, 0)):
            if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low for v in value):
                raise ValueError(f"{name}={value!r} is not accepted: expected integers >= {low}")
        if self.out_hw[0] < 1 or self.out_hw[1] < 1:
            raise ValueError(f"kernel {self.kernel} with padding {self.padding} does not fit an input of "
                             f"{self.in_shape[1:]}")

    @property
    def out_hw(self) -> tuple[int, int]:
        """Output height and width."""
        (_, h, w), (kh, kw), (sh, sw), (ph, pw) = self.in_shape, self.kernel, self.stride, self.padding
        return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1

    @property
    def n_positions(self) -> int:
        """Output positions: how many times the crossbar is read per image."""
        return self.out_hw[0] * self.out_hw[1]

    @property
    def patch_size(self) -> int:
        """Inputs of one patch, ``C * kh * kw``: the crossbar's input rows."""
        return self.in_shape[0] * self.kernel[0] * self.kernel[1]

    def patches(self, x: np.ndarray) -> np.ndarray:
        """im2col: ``[B, C*H*W]`` -> ``[B * positions, C*kh*kw]`` (patch order: channel, then kernel row, column)."""
        c, h, w = self.in_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        img = x.reshape(len(x), c, h, w)
        if ph or pw:
            img = np.pad(img, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        oh, ow = self.out_hw
        windows = np.lib.stride_tricks.sliding_window_view(img, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
        # [B, C, oh, ow, kh, kw] -> [B, oh, ow, C, kh, kw]
        return np.ascontiguousarray(windows[:, :, :oh, :ow].transpose(0, 2, 3, 1, 4, 5)).reshape(len(x) * oh * ow, -1)

    def fold(self, y: np.ndarray, batch: int) -> np.ndarray:
        """Crossbar outputs ``[B * positions, C_out]`` back to flattened maps ``[B, C_out*oh*ow]``."""
        oh, ow = self.out_hw
        return np.ascontiguousarray(y.reshape(batch, oh, ow, -1).transpose(0, 3, 1, 2)).reshape(batch, -1)

    def torch_patches(self, x: "torch.Tensor") -> "torch.Tensor":
        """``patches`` for torch tensors on any device (the same patch order)."""
        import torch.nn.functional as F

        c, h, w = self.in_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        img = x.reshape(len(x), c, h, w)
        if ph or pw:
            img = F.pad(img, (pw, pw, ph, ph))
        oh, ow = self.out_hw
        windows = img.unfold(2, kh, sh).unfold(3, kw, sw)  # [B, C, oh, ow, kh, kw]
        return windows.permute(0, 2, 3, 1, 4, 5).reshape(len(x) * oh * ow, -1)

    def torch_fold(self, y: "torch.Tensor", batch: int) -> "torch.Tensor":
        """``fold`` for torch tensors on any device."""
        oh, ow = self.out_hw
        return y.reshape(batch, oh, ow, -1).permute(0, 3, 1, 2).reshape(batch, -1)


@dataclass(frozen=True)
class PoolGeometry:
    """A pooling window over flattened ``(C, H, W)`` maps (no padding)."""

    kind: Literal["max", "avg"]
    in_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]

    def __post_init__(self) -> None:
        if self.kind not in ("max", "avg"):
            raise ValueError(f"pool kind={self.kind!r} is not accepted: choose 'max' or 'avg'")
        ConvGeometry(self.in_shape, self.kernel, self.stride)  # the same window arithmetic and checks

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """Output ``(C, H', W')``."""
        oh, ow = ConvGeometry(self.in_shape, self.kernel, self.stride).out_hw
        return self.in_shape[0], oh, ow

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Pool ``[B, C*H*W]`` -> ``[B, C*H'*W']``: an ideal analog max (winner-take-all) or average."""
        c, h, w = self.in_shape
        (kh, kw), (sh, sw) = self.kernel, self.stride
        _, oh, ow = self.out_shape
        img = x.reshape(len(x), c, h, w)
        windows = np.lib.stride_tricks.sliding_window_view(img, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :oh, :ow]
        out = windows.max(axis=(4, 5)) if self.kind == "max" else windows.mean(axis=(4, 5))
        return out.reshape(len(x), -1)

    def torch_apply(self, x: "torch.Tensor") -> "torch.Tensor":
        """``apply`` for torch tensors on any device."""
        c, h, w = self.in_shape
        (kh, kw), (sh, sw) = self.kernel, self.stride
        windows = x.reshape(len(x), c, h, w).unfold(2, kh, sh).unfold(3, kw, sw)  # [B, C, H', W', kh, kw]
        out = windows.amax(dim=(4, 5)) if self.kind == "max" else windows.mean(dim=(4, 5))
        return out.reshape(len(x), -1)


@dataclass(frozen=True, eq=False)
class Dense:
    """``z = W x + b`` (``W`` ``[out, in]``), then ``activation``."""

    weight: np.ndarray
    bias: np.ndarray
    activation: Activation = "hardtanh"


@dataclass(frozen=True, eq=False)
class Conv:
    """A convolution (``weight`` ``[C_out, C_in, kh, kw]``) read as im2col rows, then ``activation``."""

    weight: np.ndarray
    bias: np.ndarray
    geometry: ConvGeometry
    activation: Activation = "hardtanh"

    @property
    def matrix(self) -> np.ndarray:
        """The crossbar's weight matrix ``[C_out, C_in*kh*kw]`` in the patch order of ``ConvGeometry.patches``."""
        return np.asarray(self.weight, dtype=np.float64).reshape(self.weight.shape[0], -1)


@dataclass(frozen=True)
class Pool:
    """Max or average pooling."""

    geometry: PoolGeometry


@dataclass(frozen=True)
class Save:
    """Remember the current activations under ``slot`` (the start of a residual branch)."""

    slot: str


@dataclass(frozen=True)
class Add:
    """Add the activations saved under ``slot``, then ``activation`` (an analog summing stage)."""

    slot: str
    activation: Activation = "hardtanh"


Op = Union[Dense, Conv, Pool, Save, Add]

__all__ = ["ACTIVATIONS", "Activation", "Add", "Conv", "ConvGeometry", "Dense", "Op", "Pool", "PoolGeometry", "Save",
           "activate", "check_activation", "torch_activate"]
