"""examples/dataset_parts.py: the table of splits at the top of docs/data.md."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "dataset_parts", Path(__file__).resolve().parents[1] / "examples" / "dataset_parts.py")
dataset_parts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dataset_parts)


def test_half_width_is_the_wilson_formula_at_90_percent():
    z = 1.959963984540054
    for n in (180, 1797, 10_000):
        # Wilson's half-width: z / (1 + z^2/n) * sqrt(p (1 - p) / n + z^2 / (4 n^2)), in points.
        expected = 100 * z / (1 + z * z / n) * math.sqrt(0.09 / n + z * z / (4 * n * n))
        assert dataset_parts.half_width(n) == pytest.approx(expected, rel=1e-9)
    assert round(dataset_parts.half_width(180), 1) == 4.4 and round(dataset_parts.half_width(1797), 1) == 1.4


def test_digits_splits_keep_every_image_once_and_the_table_has_a_row_each():
    rows = [dataset_parts.describe(*split) for split in dataset_parts.SPLITS[:3]]
    for row in rows:
        assert row["train"] + row["validation"] + row["test"] == 1797
        assert row["megabytes"] == pytest.approx(1797 * 64 * 8 / 1e6)
    assert [r["validation"] for r in rows] == [0, 180, 160]
    lines = dataset_parts.table(rows).splitlines()
    assert lines[2] == ("| `load_dataset(\"digits\")` | `digits` | 1,617 | none | 180 | 8x8 | 0.9 MB | "
                        f"{rows[0]['load_s']:.2f} s | +-4.4 points |")
    assert "1,797 test images, +-1.4 points at 90 %" in lines[-1]
