"""The data options every command shares, declared once: the dataset and its split, and the model file.

With ``@with_options`` a command's ``data: DataOptions = DataOptions()`` parameter becomes ``--model``,
``--seed``, ``--dataset``, ``--fold`` and ``--folds`` (``DatasetOptions``: the same without ``--model``, for
``train``), and ``data.load()`` gives the dataset and the network, with errors that name the flags.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..data import DATASETS, Dataset, load_dataset
from ..network import NetworkConfig, TrainedNetwork, check_split, default_network, load_network
from .options import OptionGroup
from .progress import progress

# The datasets the default network is trained for; any other needs --model until its architecture exists.
DEFAULT_NETWORK_DATASETS = ("digits",)

_SPLIT_OPTIONS = (
    ("seed", int, "--seed", "Seed of the data split (and of training for `train`)."),
    ("dataset_name", str, "--dataset",
     f"{', '.join(DATASETS)}, or PATH: a folder of MNIST-style IDX files or a .npz (docs/data.md)."),
    ("fold", Optional[int], "--fold", "Make the i-th of --folds stratified folds the test part (digits; 0-based), "
     "so that the folds' results together cover every image; default: the standard split."),
    ("n_folds", int, "--folds", "Number of folds --fold counts in."),
)


@dataclass(frozen=True)
class DatasetOptions(OptionGroup):
    """The dataset a command names and how it is split (``--seed``, ``--fold`` of ``--folds``)."""

    OPTIONS = _SPLIT_OPTIONS

    seed: int = 0
    dataset_name: str = "digits"
    fold: Optional[int] = None
    n_folds: int = 10

    def dataset(self) -> Dataset:
        """The dataset, split by ``--seed`` and, when given, ``--fold``/``--folds``."""
        options = {} if self.fold is None else {"fold": self.fold, "n_folds": self.n_folds}
        try:
            return load_dataset(self.dataset_name, seed=self.seed, **options)
        except ValueError as exc:  # name the flags, not the keyword arguments
            raise ValueError(str(exc).replace("n_folds=", "--folds ").replace("fold=", "--fold ")) from None


@dataclass(frozen=True)
class DataOptions(DatasetOptions):
    """The dataset options and the network to run on it: ``--model``, or the cached default network."""

    OPTIONS = (("model", Optional[Path], "--model",
                "Model file from `neurodtco train`; default: the cached default network."), *_SPLIT_OPTIONS)

    model: Optional[Path] = None

    def load(self, quiet: bool) -> tuple[Dataset, TrainedNetwork, float]:
        """The dataset and the network (the model file, or the default trained on it); returns the time spent.

        With ``--fold`` the default network is the one trained on that fold's training part (cached per fold).
        """
        start = time.perf_counter()
        dataset = self.dataset()  # first, so that a mistyped name is named as such
        if self.model is not None:
            net = load_network(self.model)
            if net.n_inputs != dataset.n_features:
                raise ValueError(f"model {str(self.model)!r} expects {net.n_inputs} inputs; "
                                 f"the {dataset.name} images have {dataset.n_features}")
            check_split(net, dataset, f"model {str(self.model)!r}")
        elif self.dataset_name not in DEFAULT_NETWORK_DATASETS:
            raise ValueError(f"--dataset {self.dataset_name} has no default network yet: give --model FILE "
                             f"(train one with `neurodtco train --dataset {self.dataset_name} --out FILE`)")
        else:
            config = NetworkConfig()
            with progress("training the default network", config.epochs, "epochs", quiet=quiet) as update:
                net = default_network(dataset, config, data_seed=self.seed, progress=update)
        return dataset, net, time.perf_counter() - start
