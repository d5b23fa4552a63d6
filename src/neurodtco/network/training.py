"""Training, seeded and reproducible on CPU: the MLP's loop (unchanged) and the loop for any architecture."""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

import numpy as np
import torch
from torch import nn

from ..data import Dataset, load_digits
from .arch import ArchConfig, mlp_widths, parse_arch
from .mlp import MLP, NetworkConfig
from .trained import TrainedNetwork, load_network, split_record

Progress = Optional[Callable[[int, int], None]]


@contextmanager
def _threads(n: int) -> Iterator[None]:
    """Run torch on ``n`` threads (a fixed count keeps results reproducible), then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train(
    dataset: Dataset,
    config: NetworkConfig = NetworkConfig(),
    progress: Progress = None,
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
    with _threads(1):  # a tiny MLP: one thread is faster and bit-reproducible
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
    model.eval()
    net = TrainedNetwork(config, model, {"loss": losses})
    net.history["train_accuracy"] = net.accuracy(dataset.x_train, dataset.y_train)
    net.history["test_accuracy"] = net.accuracy(dataset.x_test, dataset.y_test)
    net.history.update(split_record(dataset))
    return net


def train_architecture(
    dataset: Dataset,
    config: ArchConfig,
    progress: Progress = None,
    validation: Optional[tuple[np.ndarray, np.ndarray]] = None,
) -> TrainedNetwork:
    """Train any architecture on ``dataset`` (AdamW, cosine schedule, cross-entropy), seeded, on ``config.threads`` threads.

    ``validation`` (images, labels), default the dataset's validation part when it has one, is
    scored after every epoch (``history["val_accuracy"]``): choose epochs and learning rate there.
    """
    arch = config.arch
    if arch.n_inputs != dataset.n_features:
        raise ValueError(f"{arch.name} reads {arch.n_inputs} inputs {arch.input_shape}, but the dataset's images have "
                         f"{dataset.n_features} features")
    out = arch.output_shape()
    if len(out) != 1 or out[0] < dataset.n_classes:
        raise ValueError(f"{arch.name} ends in outputs of shape {out}; it needs a vector of at least "
                         f"{dataset.n_classes} (the classes): end with Flatten() and Linear({dataset.n_classes})")
    if validation is None and getattr(dataset, "x_val", None) is not None:
        validation = (dataset.x_val, dataset.y_val)  # type: ignore[attr-defined]
    history: dict = {"loss": [], "threads": config.threads}
    with _threads(config.threads):
        torch.manual_seed(config.seed)
        generator = torch.Generator().manual_seed(config.seed)
        model = arch.build()
        x = torch.tensor(dataset.x_train, dtype=torch.float32)
        y = torch.tensor(dataset.y_train, dtype=torch.int64)
        opt = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)
        loss_fn = nn.CrossEntropyLoss()
        for epoch in range(config.epochs):
            model.train()
            perm = torch.randperm(len(x), generator=generator)
            total = 0.0
            for start in range(0, len(x), config.batch_size):
                idx = perm[start:start + config.batch_size]
                if len(idx) < 2 and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
                    continue  # BatchNorm cannot normalise a batch of one image
                opt.zero_grad()
                loss = loss_fn(model(x[idx]), y[idx])
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            sched.step()
            history["loss"].append(total / len(x))
            if validation is not None:
                history.setdefault("val_accuracy", []).append(_accuracy(model, *validation))
            if progress is not None:
                progress(epoch + 1, config.epochs)
        model.eval()
    net = TrainedNetwork(config, model, history)
    history["train_accuracy"] = net.accuracy(dataset.x_train, dataset.y_train)
    history["test_accuracy"] = net.accuracy(dataset.x_test, dataset.y_test)
    if validation is not None:
        history["validation_accuracy"] = net.accuracy(*validation)
    history.update(split_record(dataset))
    return net


def _accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, batch: int = 4096) -> float:
    """Accuracy of the torch model (eval mode, float32) during training."""
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(torch.tensor(x[i:i + batch], dtype=torch.float32)).argmax(1)
                          for i in range(0, len(x), batch)])
    return float((pred.numpy() == np.asarray(y)).mean())


def image_shape(dataset: Dataset) -> tuple[int, ...]:
    """The input shape ``(C, H, W)`` of the dataset's images (``(features,)`` when they are not images)."""
    h, w = dataset.image_shape
    channels, rest = divmod(dataset.n_features, h * w)
    return (channels, h, w) if h > 1 and w > 1 and not rest else (dataset.n_features,)


def make_config(arch: str, dataset: Dataset, epochs: Optional[int] = None,
                seed: int = 0) -> Union[NetworkConfig, ArchConfig]:
    """The recipe an ``--arch`` string names for ``dataset`` (``mlp:...`` is the MLP, trained as ``train`` does)."""
    spec = parse_arch(arch, image_shape(dataset), dataset.n_classes)
    recipe = {"seed": seed, **({} if epochs is None else {"epochs": epochs})}
    if spec.name.startswith("mlp:"):
        return NetworkConfig(widths=mlp_widths(spec.name), **recipe)
    return ArchConfig(spec, **recipe)


def fit(dataset: Dataset, config: Union[NetworkConfig, ArchConfig], progress: Progress = None) -> TrainedNetwork:
    """Train the network ``config`` describes: the MLP loop for a ``NetworkConfig``, else ``train_architecture``."""
    if isinstance(config, NetworkConfig):
        return train(dataset, config, progress=progress)
    return train_architecture(dataset, config, progress=progress)


def cache_dir() -> Path:
    """Where trained default networks are cached (``$NEURODTCO_CACHE`` or ``~/.cache/neurodtco``)."""
    return Path(os.environ.get("NEURODTCO_CACHE", Path.home() / ".cache" / "neurodtco"))


def default_network(dataset: Optional[Dataset] = None, config: NetworkConfig = NetworkConfig(),
                    data_seed: int = 0, progress: Progress = None) -> TrainedNetwork:
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


def cached_fit(dataset: Dataset, config: Union[NetworkConfig, ArchConfig], data_seed: int = 0,
               progress: Progress = None) -> TrainedNetwork:
    """``fit`` once per recipe and data split, then reuse the model file from ``cache_dir()``."""
    if isinstance(config, NetworkConfig):
        return default_network(dataset, config, data_seed=data_seed, progress=progress)
    # The recipe, the data it saw and the split identify the network; a hash keeps the file name short.
    recipe = json.dumps({"config": config.to_dict(), "dataset": dataset.name, "data_seed": data_seed,
                         "n_train": len(dataset.y_train), "n_test": len(dataset.y_test)}, sort_keys=True)
    path = cache_dir() / f"{config.name.replace(':', '-')}_{hashlib.sha256(recipe.encode()).hexdigest()[:16]}.pt"
    if path.is_file():
        try:
            return load_network(path)
        except ValueError:
            pass  # a corrupt cache entry is retrained below
    net = fit(dataset, config, progress=progress)
    net.save(path)
    return net
