"""Measured defect tolerance at several accuracy drops, with bootstrap intervals over instances."""

import math

import pandas as pd
import pytest

from neurodtco.mitigation.tolerance import ToleranceResult, tolerance_ratio_ci, tolerance_thresholds

HEALTHY = 0.95
GRID = [1e-4, 1e-3, 1e-2, 1e-1]


def synthetic(shift: float = 1.0, spread: tuple[float, ...] = (0.0,)) -> ToleranceResult:
    """Mean accuracy 0.955 - 1 point per decade of p / shift, instances spread symmetrically around it."""
    rows = []
    for p in GRID:
        mean = 0.955 - 0.01 * math.log10(p / (1e-4 * shift))
        for i, e in enumerate(sorted(set(spread) | {-s for s in spread})):
            rows.append({"density": p, "instance": i, "accuracy": mean + e})
    return ToleranceResult(table=pd.DataFrame(rows), healthy_accuracy=HEALTHY, tolerance_density=math.nan,
                           drop=0.01, retrained=False)


def test_crossings_of_a_log_linear_curve_are_exact():
    # 1 point below healthy = 0.94 is reached 1.5 decades above 1e-4, 2 points 2.5 decades; 5 points lies above the grid.
    t = tolerance_thresholds(synthetic(), drops=(0.01, 0.02, 0.05))
    assert t.loc[1.0, "density"] == pytest.approx(1e-4 * 10 ** 1.5, rel=1e-9)
    assert t.loc[2.0, "density"] == pytest.approx(1e-4 * 10 ** 2.5, rel=1e-9)
    assert t.loc[5.0, "density"] == math.inf and t.loc[5.0, "low"] == math.inf
    # Without instance noise every bootstrap draw is the same curve: the interval is the point.
    assert t.loc[1.0, "low"] == pytest.approx(t.loc[1.0, "density"]) == pytest.approx(t.loc[1.0, "high"])


def test_interval_brackets_the_crossing_and_widens_with_instance_spread():
    narrow = tolerance_thresholds(synthetic(spread=(0.001, 0.002)), drops=(0.01,)).loc[1.0]
    wide = tolerance_thresholds(synthetic(spread=(0.004, 0.008)), drops=(0.01,)).loc[1.0]
    truth = 1e-4 * 10 ** 1.5
    for row in (narrow, wide):
        assert row["low"] < truth < row["high"]
        assert row["density"] == pytest.approx(truth, rel=1e-9)  # symmetric spread: the mean curve is unchanged
    assert wide["high"] / wide["low"] > narrow["high"] / narrow["low"]


def test_crossing_below_the_grid_counts_as_zero():
    t = tolerance_thresholds(synthetic(shift=1e-3), drops=(0.01,))
    assert math.isnan(t.loc[1.0, "density"]) and t.loc[1.0, "high"] == 0.0


def test_ratio_of_two_curves_shifted_by_a_decade():
    base = tolerance_thresholds(synthetic(spread=(0.002,)), drops=(0.01, 0.02))
    shifted = tolerance_thresholds(synthetic(shift=10.0, spread=(0.002,)), drops=(0.01, 0.02), seed=1)
    r = tolerance_ratio_ci(shifted, base)
    assert r.loc[1.0, "ratio"] == pytest.approx(10.0, rel=1e-9)
    assert r.loc[1.0, "low"] < 10.0 < r.loc[1.0, "high"]
    assert math.isnan(r.loc[2.0, "ratio"])  # the shifted curve's 2-point crossing lies above the grid


@pytest.mark.parametrize("kwargs, match", [({"drops": (0.0,)}, "drops"), ({"drops": ()}, "drops"),
                                           ({"level": 1.0}, "level"), ({"n_resamples": 0}, "n_resamples")])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tolerance_thresholds(synthetic(), **kwargs)
