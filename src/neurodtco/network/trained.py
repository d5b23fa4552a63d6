"""A trained network: its recipe, its torch module, the operations it lowers to, and its model file."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
from torch import nn

from ..ops import Dense, Op
from .arch import ArchConfig
from .lower import lower_sequential, run_ops
from .mlp import MLP, NetworkConfig

FORMAT = "neurodtco-mlp/1"  # an MLP: its NetworkConfig holds the widths
ARCH_FORMAT = "neurodtco-net/1"  # any architecture: the file holds it as plain dicts


@dataclass
class TrainedNetwork:
    """A trained network with the recipe that produced it (``NetworkConfig`` for an MLP, else ``ArchConfig``)."""

    config: Union[NetworkConfig, ArchConfig]
    model: nn.Module
    history: dict = field(default_factory=dict)

    @property
    def arch(self) -> str:
        """The architecture's name, as ``--arch`` writes it (``mlp:64-8-8-8-10``, ``cnn``, ...)."""
        return self.config.name

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input: ``(features,)`` or ``(channels, height, width)``."""
        return self.config.input_shape

    @property
    def n_inputs(self) -> int:
        """Inputs per image (the flattened input shape)."""
        return int(np.prod(self.input_shape))

    def sequential(self) -> nn.Sequential:
        """The network as an ``nn.Sequential`` sharing this network's parameters."""
        return self.model.sequential() if isinstance(self.model, MLP) else self.model  # type: ignore[return-value]

    def ops(self) -> list[Op]:
        """The network lowered to the hardware's operations (BatchNorm folded, float64)."""
        return lower_sequential(self.sequential(), self.input_shape)

    def _dense(self) -> list[Dense]:
        ops = self.ops()
        if not all(isinstance(op, Dense) for op in ops):
            raise ValueError(f"the {self.arch} network has convolutions, pooling or residual connections: "
                             "it has no plain list of weight matrices; use .ops()")
        return ops  # type: ignore[return-value]

    @property
    def weights(self) -> list[np.ndarray]:
        """Weight matrices ``[out, in]`` as float64 arrays (dense networks only; BatchNorm folded)."""
        return [op.weight for op in self._dense()]

    @property
    def biases(self) -> list[np.ndarray]:
        """Bias vectors as float64 arrays (dense networks only; BatchNorm folded)."""
        return [op.bias for op in self._dense()]

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Software logits in float64 for inputs in [0, 1]: the lowered operations, run exactly."""
        return run_ops(self.ops(), np.asarray(x, dtype=np.float64))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted classes."""
        return self.logits(x).argmax(axis=1)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """Fraction of correct predictions."""
        return float(np.mean(self.predict(x) == np.asarray(y)))

    def save(self, path: str | Path) -> None:
        """Write the weights with the recipe and architecture (atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        fmt = FORMAT if isinstance(self.config, NetworkConfig) else ARCH_FORMAT
        torch.save({"format": fmt, "config": self.config.to_dict(), "state_dict": self.model.state_dict(),
                    "history": self.history}, tmp)
        os.replace(tmp, path)


def split_record(dataset: Any) -> dict[str, str]:
    """What a model file keeps of the split it was trained on: the dataset's name and a hash of its test part."""
    digest = hashlib.sha256(np.ascontiguousarray(dataset.x_test, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(dataset.y_test, dtype=np.int64).tobytes())
    return {"dataset": str(dataset.name), "test_sha256": digest.hexdigest()[:16]}


def check_split(net: TrainedNetwork, dataset: Any, source: str = "the model") -> None:
    """Refuse to judge ``net`` on a test part other than the one held out when it was trained.

    Another split's test images may be among the images the network was trained on, which would
    make its accuracy a training accuracy. Model files written before the record existed pass.
    """
    if "test_sha256" not in net.history:
        return
    here = split_record(dataset)
    if here["test_sha256"] != net.history["test_sha256"]:
        raise ValueError(
            f"{source} was trained on {net.history.get('dataset')!r} with another test part than {dataset.name!r} here "
            "(a different --seed, --fold or dataset): its training images may include these test images. "
            "Use the split it was trained on, or train a model on this one (`neurodtco train` with the same "
            "--dataset/--seed/--fold)")


def load_network(path: str | Path, expected_widths: Optional[tuple[int, ...]] = None) -> TrainedNetwork:
    """Load a saved network of any architecture; with ``expected_widths``, refuse anything but that MLP."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {str(path)!r} does not exist; train one with `neurodtco train --out FILE`")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a non-model file; its text is pages of torch advice
        raise ValueError(f"{str(path)!r} is not a neurodtco model file: it cannot be read as one "
                         "(write one with `neurodtco train --out FILE`)") from exc
    fmt = blob.get("format") if isinstance(blob, dict) else None
    if fmt not in (FORMAT, ARCH_FORMAT):
        raise ValueError(f"{str(path)!r} is not a neurodtco model file (expected format {FORMAT!r} or {ARCH_FORMAT!r})")
    config: Union[NetworkConfig, ArchConfig]
    if fmt == FORMAT:
        config = NetworkConfig(**{**blob["config"], "widths": tuple(blob["config"]["widths"])})
        model: nn.Module = MLP(config.widths)
    else:
        config = ArchConfig.from_dict(blob["config"])
        model = config.arch.build()
    if expected_widths is not None and getattr(config, "widths", None) != tuple(expected_widths):
        raise ValueError(f"{str(path)!r} holds a {config.name.removeprefix('mlp:')} network, but "
                         f"{'-'.join(map(str, expected_widths))} was asked for")
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"{str(path)!r}: weights do not match the stored architecture {config.name}: {exc}") from exc
    model.eval()
    return TrainedNetwork(config, model, blob.get("history", {}))
