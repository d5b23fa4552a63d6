"""examples/characterization_table.py: the characterization table of docs/periphery.md from the data file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from neurodtco.periphery import load_characterization

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import characterization_table as example  # noqa: E402


def test_one_row_per_point_in_corner_then_temperature_order():
    char = load_characterization()
    lines = example.characterization_table(char).splitlines()
    assert len(lines) == 2 + len(char.points)
    n_columns = lines[0].count(" | ") + 1
    assert all(line.replace("\\|", "").count("|") == n_columns + 1 for line in lines)
    keys = [tuple(cell.strip() for cell in line.split("|")[1:3]) for line in lines[2:]]
    assert keys == [(c, f"{t:.0f}") for c in char.corners for t in char.temperatures(c)]


def test_the_clamp_model_is_the_mean_of_the_swings_and_the_open_gain_exceeds_the_loaded_one():
    for point in load_characterization().points:
        act = point.details["activation"]
        cells = [c.strip() for c in example.row(point).split("|")[1:-1]]
        # the behavioural clamp is symmetric at the mean of the two measured swings (at the nominal load,
        # and within a millivolt at the difference stage's own load)
        plus, minus = (abs(float(v)) for v in cells[5].split(" / "))
        assert (plus + minus) / 2 == pytest.approx(point.saturation_v, abs=1e-3)
        assert float(cells[6]) == pytest.approx((act["swing_positive_v"] + act["swing_negative_v"]) / 2, abs=1e-3)
        assert float(cells[3]) > float(cells[2])  # a lighter load leaves the op-amp more gain
