"""examples/density_resolution.py: the achieved-density sweep and its table."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from neurodtco.data import load_digits
from neurodtco.mapping import map_network
from neurodtco.network import default_network

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import density_resolution as dr  # noqa: E402


@pytest.fixture(scope="module")
def circuit():
    return map_network(default_network(load_digits(seed=0)))


def test_one_array_per_shape_of_the_default_network(circuit) -> None:
    assert dr.one_array_per_shape(circuit) == {"65x16": 0, "9x16": 1, "9x20": 3}


def test_counted_patterns_stay_within_half_a_cell_and_lines_within_half_a_line(circuit) -> None:
    random = dr.sweep(circuit, 0, "random", [0.1, 0.33, 0.5])
    assert random["refused"] == [] and random["worst_error"] <= 1 / (2 * 65 * 16)
    # 4.5 of 9 rows rounds to 5: the error is exactly half a line, 1/18
    rows = dr.sweep(circuit, 1, "row", [0.5])
    assert rows["worst_error"] == pytest.approx(1 / 18) and rows["max_achieved"] == pytest.approx(5 / 9)


def test_a_ring_refuses_what_it_cannot_cover(circuit) -> None:
    ring = dr.sweep(circuit, 0, "ring", [0.2, 0.9, 0.95])
    assert ring["refused"] == [0.9, 0.95] and ring["targets"] == 3
    assert ring["max_achieved"] == pytest.approx(0.2, abs=0.01)


def test_the_table_has_one_line_per_pattern_and_a_column_per_shape(circuit) -> None:
    rows = [{"shape": shape, **dr.sweep(circuit, layer, pattern, [0.25, 0.5])}
            for pattern in ("row", "ring") for shape, layer in dr.one_array_per_shape(circuit).items()]
    text = dr.markdown(rows, 0.25)
    assert "| pattern | 65x16 | 9x16 | 9x20 |" in text and "(2 per pattern and array)" in text
    assert text.count("\n| `row` |") == 1 and text.count("\n| `ring` |") == 1
