"""The interval cells of examples/mitigation_comparison.py and the per-image correctness they are built from."""

import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import mitigation_comparison as mc  # noqa: E402

_CELL = re.compile(r"^([+-]?[\d.]+)%? \[([+-]?[\d.]+), ([+-]?[\d.]+)\]$")


def _parse(cell: str) -> tuple[float, float, float]:
    m = _CELL.match(cell)
    assert m, cell
    return float(m.group(1)), float(m.group(2)), float(m.group(3))


@pytest.mark.parametrize("correct", [[True, True, False, True], [False] * 5, [True] * 7, [0.5, 1.0, 0.0, 1.0]])
def test_rate_cell_interval_contains_its_estimate(correct):
    value, low, high = _parse(mc.rate_cell(correct))
    assert value == pytest.approx(100 * np.mean(correct), abs=0.05)
    assert 0 <= low <= value <= high <= 100


def test_rate_cell_is_the_wilson_interval():
    # 9 of 10: Wilson 95 % interval [59.6, 98.2] (z = 1.96), computed by hand from the score formula.
    z, p, n = 1.959964, 0.9, 10
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert _parse(mc.rate_cell([True] * 9 + [False])) == pytest.approx(
        (90.0, round(100 * (centre - half), 1), round(100 * (centre + half), 1)))


def test_paired_cell_is_the_difference_of_the_accuracies():
    a = np.array([1, 1, 0, 1, 1, 0, 1, 1], dtype=bool)
    b = np.array([1, 0, 0, 0, 1, 0, 1, 0], dtype=bool)
    diff, low, high = _parse(mc.paired_cell(a, b))
    assert diff == pytest.approx(100 * (a.mean() - b.mean()), abs=0.05)
    assert low <= diff <= high
    assert _parse(mc.paired_cell(a, a)) == (0.0, 0.0, 0.0)  # the same chip: no difference on any resample


def test_density_and_ratio_cells_name_bounds_outside_the_grid():
    grid = [0.01, 0.1]
    assert mc.density_cell(0.05, 0.0, math.inf, grid) == "0.05 [< 0.01, > 0.1]"
    assert mc.ratio_cell(math.nan, 54.2, math.inf, 68.4) == "> 68x [54, inf]"
    assert mc.ratio_cell(278.3, 85.0, 428.0, 1.0) == "278x [85, 428]"


def test_per_image_correctness_averages_to_the_reported_accuracy(digits, default_net, default_circuit):
    from neurodtco.mitigation import circuit_accuracy
    from neurodtco.mitigation.circuit_levers import sweep_circuit
    from neurodtco.mitigation.states import StateCandidate, evaluate_candidates

    correct = circuit_accuracy(default_circuit, digits, "ideal", per_image=True)
    assert correct.dtype == bool and correct.shape == digits.y_test.shape
    assert correct.mean() == circuit_accuracy(default_circuit, digits, "ideal")
    sweep = sweep_circuit(default_net, digits, arrangements=("differential", "shared-row"), engine="ideal",
                          temperatures_c=(25.0, 100.0), per_image=True)
    assert np.allclose([c.mean() for c in sweep["correct"]], sweep["accuracy"])
    assert "correct" not in sweep_circuit(default_net, digits, engine="ideal").columns  # the default is unchanged
    noise = {"kind": "read_noise", "relative_sigma": 0.05, "group_size": 20}
    table = evaluate_candidates(default_net, digits, [StateCandidate(r_on_ohm=10e3, r_off_ohm=1e6)], engine="ideal",
                                temperatures_c=(25.0, 100.0), read_noise=noise, seeds=(0, 1), per_image=True)
    for _, row in table.iterrows():
        # Per image, the fraction of the two reads that got it right: 0, 1/2 or 1.
        assert set(np.unique(row["correct"])) <= {0.0, 0.5, 1.0}
        assert row["correct"].mean() == pytest.approx(row["accuracy"])


def test_points_cell_never_prints_a_negative_zero():
    assert mc.points_cell(-0.0003, -0.008, 0.0004) == "+0.0 [-0.8, +0.0]"
