"""The torch modules a crossbar network is built from beyond torch's own: a saturating activation and a residual block."""

from __future__ import annotations

import torch
from torch import nn

RAILS = {"hardtanh": (-1.0, 1.0), "relu": (0.0, 1.0)}


class Saturate(nn.Module):
    """A neuron saturating at its rails: ``hardtanh`` clamps to [-1, 1], ``relu`` to [0, 1]."""

    def __init__(self, kind: str):
        super().__init__()
        if kind not in RAILS:
            raise ValueError(f"activation={kind!r} is not accepted: choose 'hardtanh' (clamp to [-1, 1]) or 'relu' "
                             "(clamp to [0, 1])")
        self.kind = kind
        self.low, self.high = RAILS[kind]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Clamp to the rails."""
        return torch.clamp(x, self.low, self.high)

    def extra_repr(self) -> str:
        """Shown by ``print(model)``."""
        return f"{self.kind!r}, [{self.low:g}, {self.high:g}]"


class ResidualBlock(nn.Module):
    """``act(x + bn2(conv2(act(bn1(conv1(x))))))``: two same-size convolutions, activated after the add."""

    def __init__(self, channels: int, kernel: int = 3, batchnorm: bool = True, activation: str = "relu"):
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"residual kernel={kernel} is not accepted: an odd size (e.g. 3) keeps the map's size")
        norm = (lambda: nn.BatchNorm2d(channels)) if batchnorm else nn.Identity
        self.channels = channels
        self.branch = nn.Sequential(
            nn.Conv2d(channels, channels, kernel, padding=kernel // 2), norm(), Saturate(activation),
            nn.Conv2d(channels, channels, kernel, padding=kernel // 2), norm(),
        )
        self.activation = Saturate(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """The sum of the input and the branch, saturated."""
        return self.activation(x + self.branch(x))
