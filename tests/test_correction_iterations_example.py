"""examples/correction_iterations.py: the iteration-budget table of docs/correction.md."""

import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import correction_iterations as ci  # noqa: E402


def _sample(n_chips=3, n_train=60, n_val=20, n_test=20, seed=0):
    # Output voltages that carry the label (one output raised per class) plus chip-specific noise.
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(10), (n_train + n_val + n_test) // 10 + 1)[:n_train + n_val + n_test]
    volts = rng.normal(0.0, 0.3, size=(n_chips, labels.size, 10))
    volts[:, np.arange(labels.size), labels] += 1.0
    return ci.ChipSample(volts, labels, n_train, n_val, tuple(f"chip{k}" for k in range(n_chips)))


def test_grid_and_table_on_a_tiny_sample():
    sample = _sample()
    grid = ci.fit_grid(sample, hidden=(1, 4), iterations=(5, 20, 60))
    assert sorted(grid) == [(1, 5), (1, 20), (1, 60), (4, 5), (4, 20), (4, 60)]
    for (h, budget), cell in grid.items():
        assert cell["validation"].shape == (3, 20) and cell["test"].shape == (3, 20)
        assert np.all(cell["n_iter"] <= budget)
    for h in (1, 4):
        # A larger budget continues the same L-BFGS path, whose every step lowers the loss.
        assert np.all(grid[h, 20]["loss"] <= grid[h, 5]["loss"] + 1e-12)
        assert np.all(grid[h, 60]["loss"] <= grid[h, 20]["loss"] + 1e-12)

    text = ci.table(grid, reference=20)
    rows = [line for line in text.splitlines()[2:] if line.startswith("|")]
    assert len(rows) == 6  # one row per (h, budget)
    cells = [[x.strip() for x in row.strip().strip("|").split("|")] for row in rows]
    assert [c[7] for c in cells if c[1] == "20"] == ["(reference)", "(reference)"]
    for c in cells:
        # Every interval contains its estimate.
        for column in (3, 4, 5) + ((6, 7) if c[1] != "20" else ()):
            value, low, high = map(float, re.match(r"([-+\d.]+) \[([-+\d.]+), ([-+\d.]+)\]", c[column]).groups())
            assert low - 1e-9 <= value <= high + 1e-9
    # The test accuracy column is the mean of the per-image correctness.
    h1 = next(c for c in cells if c[0] == "1" and c[1] == "60")
    assert float(h1[5].split()[0]) == pytest.approx(100 * grid[1, 60]["test"].mean(), abs=0.05)


def test_sample_refuses_more_chips_than_the_study_has():
    with pytest.raises(ValueError, match="outside 1..672"):
        ci.sample_chips(10_000)
