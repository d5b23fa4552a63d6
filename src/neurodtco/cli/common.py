"""What every command shares: the JSON line, one-line errors, plain flags and the test images."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Optional

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from ..ngspice_run import SpiceError

if TYPE_CHECKING:
    from ..data import Dataset

err = Console(stderr=True)

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
def user_errors(options: Optional[Mapping[str, str]] = None) -> Iterator[None]:
    """Turn the API's validation errors and ngspice's failures into one-line CLI errors.

    ``options`` maps API parameter names to the command's options (``{"d0_per_cell": "--d0"}``): an
    API message about a parameter (``d0_per_cell=-1.0 is not accepted ...``) then names the option
    the user typed first.
    """
    try:
        yield
    except (ValueError, FileNotFoundError, SpiceError) as exc:
        message = str(exc)
        for name, option in (options or {}).items():
            if message.startswith(f"{name}="):
                message = f"{option}: {message}"
                break
        fail(message)


def first_test_images(dataset: Dataset, n_images: Optional[int]) -> tuple[Any, Any]:
    """Pixels and labels of the first ``n_images`` test images (all of them for None)."""
    n_test = len(dataset.y_test)
    if n_images is None:
        n_images = n_test
    if not 1 <= n_images <= n_test:
        raise ValueError(f"--n-images {n_images} is not accepted: expected 1..{n_test} (test images)")
    return dataset.x_test[:n_images], dataset.y_test[:n_images]
