"""What every command shares: the JSON line, one-line errors, plain flags, the model and the images."""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from ..data import DATASETS, Dataset, load_dataset
from ..network import NetworkConfig, TrainedNetwork, check_split, default_network, load_network
from ..ngspice_run import SpiceError
from .progress import progress

err = Console(stderr=True)

ModelOpt = typer.Option(None, "--model", help="Model file from `neurodtco train`; default: the cached default network.")
DatasetOpt = typer.Option("digits", "--dataset", help=f"{', '.join(DATASETS)}, or PATH: a folder of MNIST-style IDX files or a .npz (docs/data.md).")
SeedOpt = typer.Option(0, "--seed", help="Seed of the data split (and of training for `train`).")
FoldOpt = typer.Option(None, "--fold", help="Make the i-th of --folds stratified folds the test part (digits; 0-based), "
                       "so that the folds' results together cover every image; default: the standard split.")
FoldsOpt = typer.Option(10, "--folds", help="Number of folds --fold counts in.")
JsonOpt = typer.Option(False, "--json", help="Print one JSON object on the last line of stdout.")
EngineHelp = "ideal, nodal or ngspice."


class _PlainFlags:
    """Boolean flags take no value, so their help shows no ``<bool>`` type."""

    def get_params(self, ctx: Any) -> list:
        """The parameters, with flags given an empty metavar."""
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params


class Command(_PlainFlags, TyperCommand):
    """A command whose boolean flags read as plain flags in its help."""


class Group(_PlainFlags, TyperGroup):
    """A command group whose boolean flags read as plain flags in its help."""


def emit_json(payload: dict[str, Any]) -> None:
    """Print the machine-readable result as one JSON object on the last line of stdout."""
    sys.stdout.write(json.dumps(payload, default=json_default) + "\n")
    sys.stdout.flush()


def json_default(value: Any) -> Any:
    """JSON for NumPy values and paths."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def fail(message: str) -> None:
    """Stop with a clear message and exit code 2."""
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(code=2)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the API's validation errors and ngspice's failures into one-line CLI errors."""
    try:
        yield
    except (ValueError, FileNotFoundError, SpiceError) as exc:
        fail(str(exc))


# The datasets the default network is trained for; any other needs --model until its architecture exists.
DEFAULT_NETWORK_DATASETS = ("digits",)


def load_data(dataset_name: str, seed: int, fold: Optional[int] = None, n_folds: int = 10) -> Dataset:
    """The dataset a command names, split by ``--seed`` and, when given, ``--fold``/``--folds``."""
    options = {} if fold is None else {"fold": fold, "n_folds": n_folds}
    try:
        return load_dataset(dataset_name, seed=seed, **options)
    except ValueError as exc:  # name the flags, not the keyword arguments
        raise ValueError(str(exc).replace("n_folds=", "--folds ").replace("fold=", "--fold ")) from None


def load_or_train(model: Optional[Path], seed: int, quiet: bool, dataset_name: str = "digits",
                  fold: Optional[int] = None, n_folds: int = 10) -> tuple[Dataset, TrainedNetwork, float]:
    """The dataset and the network (a model file, or the cached default); returns the time spent.

    With ``fold`` the default network is the one trained on that fold's training part (cached per fold).
    """
    start = time.perf_counter()
    dataset = load_data(dataset_name, seed, fold, n_folds)  # first, so that a mistyped name is named as such
    if model is None and dataset_name not in DEFAULT_NETWORK_DATASETS:
        raise ValueError(f"--dataset {dataset_name} has no default network yet: give --model FILE "
                         f"(train one with `neurodtco train --dataset {dataset_name} --out FILE`)")
    if model is not None:
        net = load_network(model)
        if net.n_inputs != dataset.n_features:
            raise ValueError(f"model {str(model)!r} expects {net.n_inputs} inputs; "
                             f"the {dataset.name} images have {dataset.n_features}")
        check_split(net, dataset, f"model {str(model)!r}")
    else:
        config = NetworkConfig()
        with progress("training the default network", config.epochs, "epochs", quiet=quiet) as update:
            net = default_network(dataset, config, data_seed=seed, progress=update)
    return dataset, net, time.perf_counter() - start


def first_test_images(dataset: Dataset, n_images: Optional[int]) -> tuple[Any, Any]:
    """Pixels and labels of the first ``n_images`` test images (all of them for None)."""
    n_test = len(dataset.y_test)
    if n_images is None:
        n_images = n_test
    if not 1 <= n_images <= n_test:
        raise ValueError(f"--n-images {n_images} is not accepted: expected 1..{n_test} (test images)")
    return dataset.x_test[:n_images], dataset.y_test[:n_images]
