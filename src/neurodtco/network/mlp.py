"""The MLP: fully connected layers with hard-tanh between them, and the recipe that trains it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from .layers import Saturate


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture and training recipe of the MLP (widths include input and output sizes)."""

    widths: tuple[int, ...] = (64, 8, 8, 8, 10)
    epochs: int = 300
    batch_size: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if len(self.widths) < 2:
            raise ValueError(f"widths={self.widths} needs at least an input and an output size, e.g. (64, 8, 8, 8, 10)")
        for i, w in enumerate(self.widths):
            if w < 1:
                raise ValueError(f"widths[{i}]={w} is not accepted: every layer width must be >= 1 (got {self.widths})")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate={self.learning_rate} must be > 0")

    @property
    def name(self) -> str:
        """The ``--arch`` string of this MLP, e.g. ``mlp:64-8-8-8-10``."""
        return "mlp:" + "-".join(map(str, self.widths))

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The flat input the MLP reads."""
        return (self.widths[0],)

    def to_dict(self) -> dict:
        """Plain values, as stored in a model file."""
        return asdict(self)


class MLP(nn.Module):
    """Fully connected layers with hard-tanh (clamp to [-1, 1]) between them, linear output."""

    def __init__(self, widths: tuple[int, ...]):
        super().__init__()
        self.widths = tuple(widths)
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))

    def forward(self, x: torch.Tensor, return_hidden: bool = False):  # type: ignore[override]
        """Logits (and the post-activation hidden vectors when asked)."""
        hidden = []
        for i, linear in enumerate(self.linears):
            x = linear(x)
            if i < len(self.linears) - 1:
                x = torch.clamp(x, -1.0, 1.0)
                hidden.append(x)
        return (x, hidden) if return_hidden else x

    def sequential(self) -> nn.Sequential:
        """The same layers (shared parameters) as an ``nn.Sequential``, the form every network is lowered from."""
        layers: list[nn.Module] = []
        for i, linear in enumerate(self.linears):
            layers.append(linear)
            if i < len(self.linears) - 1:
                layers.append(Saturate("hardtanh"))
        return nn.Sequential(*layers)


def forward_float64(weights: list[np.ndarray], biases: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    """The network's forward pass in float64 NumPy (the reference the circuit is compared to)."""
    for i, (w, b) in enumerate(zip(weights, biases)):
        x = x @ w.T + b
        if i < len(weights) - 1:
            x = np.clip(x, -1.0, 1.0)
    return x
