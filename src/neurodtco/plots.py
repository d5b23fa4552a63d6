"""Shared plotting helpers: a headless matplotlib (Agg) and figure saving."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend (works without a display)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Union[str, Path], dpi: int = 150) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix, parent folders created) and close it."""
    path = Path(path)
    if not path.suffix:
        raise ValueError(f"figure path {str(path)!r} has no suffix: name the format, e.g. {path}.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    finally:
        pyplot().close(fig)
    return path
