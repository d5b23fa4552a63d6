"""The software network: a PyTorch MLP with the saturating activation the circuit implements."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from .data import Dataset, load_digits

FORMAT = "neurodtco-mlp/1"


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


@dataclass
class TrainedNetwork:
    """A trained MLP with the configuration that produced it."""

    config: NetworkConfig
    model: MLP
    history: dict = field(default_factory=dict)

    @property
    def weights(self) -> list[np.ndarray]:
        """Weight matrices ``[out, in]`` as float64 arrays."""
        return [lin.weight.detach().double().numpy().copy() for lin in self.model.linears]

    @property
    def biases(self) -> list[np.ndarray]:
        """Bias vectors as float64 arrays."""
        return [lin.bias.detach().double().numpy().copy() for lin in self.model.linears]

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Software logits in float64 for inputs in [0, 1]."""
        return forward_float64(self.weights, self.biases, np.asarray(x, dtype=np.float64))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted classes."""
        return self.logits(x).argmax(axis=1)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """Fraction of correct predictions."""
        return float(np.mean(self.predict(x) == np.asarray(y)))

    def save(self, path: str | Path) -> None:
        """Write the weights with the configuration (atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        torch.save({"format": FORMAT, "config": asdict(self.config), "state_dict": self.model.state_dict(),
                    "history": self.history}, tmp)
        os.replace(tmp, path)


def forward_float64(weights: list[np.ndarray], biases: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    """The network's forward pass in float64 NumPy (the reference the circuit is compared to)."""
    for i, (w, b) in enumerate(zip(weights, biases)):
        x = x @ w.T + b
        if i < len(weights) - 1:
            x = np.clip(x, -1.0, 1.0)
    return x


def train(
    dataset: Dataset,
    config: NetworkConfig = NetworkConfig(),
    progress: Optional[Callable[[int, int], None]] = None,
    forward: Optional[Callable[[MLP, torch.Tensor], torch.Tensor]] = None,
) -> TrainedNetwork:
    """Train the MLP on ``dataset`` deterministically on CPU (AdamW, cross-entropy).

    ``forward(model, x) -> logits``, when given, replaces ``model(x)`` in the training loss (a hook
    for hardware-aware training: noise injected in the forward pass); evaluation stays clean.
    """
    if config.widths[0] != dataset.n_features:
        raise ValueError(f"network input width {config.widths[0]} differs from the dataset's {dataset.n_features} features")
    if config.widths[-1] < dataset.n_classes:
        raise ValueError(f"network output width {config.widths[-1]} is smaller than the {dataset.n_classes} classes")
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = MLP(config.widths)
    x = torch.tensor(dataset.x_train, dtype=torch.float32)
    y = torch.tensor(dataset.y_train, dtype=torch.int64)
    opt = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny MLP: one thread is faster and bit-reproducible
    try:
        for epoch in range(config.epochs):
            perm = torch.randperm(len(x), generator=generator)
            total = 0.0
            for start in range(0, len(x), config.batch_size):
                idx = perm[start:start + config.batch_size]
                opt.zero_grad()
                logits = model(x[idx]) if forward is None else forward(model, x[idx])
                loss = loss_fn(logits, y[idx])
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            sched.step()
            losses.append(total / len(x))
            if progress is not None:
                progress(epoch + 1, config.epochs)
    finally:
        torch.set_num_threads(threads)
    model.eval()
    net = TrainedNetwork(config, model, {"loss": losses})
    net.history["train_accuracy"] = net.accuracy(dataset.x_train, dataset.y_train)
    net.history["test_accuracy"] = net.accuracy(dataset.x_test, dataset.y_test)
    return net


def load_network(path: str | Path, expected_widths: Optional[tuple[int, ...]] = None) -> TrainedNetwork:
    """Load a saved network; refuse files of another format or architecture."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {str(path)!r} does not exist; train one with `neurodtco train --out FILE`")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a non-model file; its text is pages of torch advice
        raise ValueError(f"{str(path)!r} is not a neurodtco model file: it cannot be read as one "
                         "(write one with `neurodtco train --out FILE`)") from exc
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a neurodtco model file (expected format {FORMAT!r})")
    config = NetworkConfig(**{**blob["config"], "widths": tuple(blob["config"]["widths"])})
    if expected_widths is not None and tuple(expected_widths) != config.widths:
        raise ValueError(
            f"{str(path)!r} holds a {'-'.join(map(str, config.widths))} network, but "
            f"{'-'.join(map(str, expected_widths))} was asked for"
        )
    model = MLP(config.widths)
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"{str(path)!r}: weights do not match the stored architecture {config.widths}: {exc}") from exc
    model.eval()
    return TrainedNetwork(config, model, blob.get("history", {}))


def cache_dir() -> Path:
    """Where trained default networks are cached (``$NEURODTCO_CACHE`` or ``~/.cache/neurodtco``)."""
    return Path(os.environ.get("NEURODTCO_CACHE", Path.home() / ".cache" / "neurodtco"))


def default_network(dataset: Optional[Dataset] = None, config: NetworkConfig = NetworkConfig(),
                    data_seed: int = 0, progress: Optional[Callable[[int, int], None]] = None) -> TrainedNetwork:
    """The default network trained on the digits, reused from the cache when present."""
    dataset = dataset if dataset is not None else load_digits(seed=data_seed)
    key = "-".join(map(str, config.widths)) + f"_e{config.epochs}_b{config.batch_size}_lr{config.learning_rate:g}" \
        f"_wd{config.weight_decay:g}_s{config.seed}_{dataset.name}{data_seed}_n{len(dataset.y_test)}.pt"
    path = cache_dir() / key
    if path.is_file():
        try:
            return load_network(path, config.widths)
        except ValueError:
            pass  # a corrupt cache entry is retrained below
    net = train(dataset, config, progress=progress)
    net.save(path)
    return net
