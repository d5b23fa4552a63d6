"""Intervals and paired tests against independent computations (SciPy's binomial test, textbook values, sampling theory)."""

import numpy as np
import pytest
from scipy import stats as sps

from neurodtco.stats import (accuracy_interval, bootstrap_ci, mcnemar_exact, paired_accuracy_comparison,
                             paired_bootstrap_ci, wilson_interval, with_ci)


@pytest.mark.parametrize("k,n", [(0, 10), (10, 10), (81, 263), (170, 180), (9092, 10000)])
def test_wilson_matches_scipy(k, n):
    expected = sps.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(expected.low, abs=1e-12)
    assert high == pytest.approx(expected.high, abs=1e-12)


def test_wilson_textbook_zero_of_ten():
    # 0 of 10 at 95 %: [0, z^2 / (n + z^2)] = [0, 0.2775]
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.27753, abs=1e-5)


def test_wilson_narrows_with_more_images():
    w180 = np.diff(wilson_interval(162, 180))[0]
    w10k = np.diff(wilson_interval(9000, 10000))[0]
    assert w10k < w180 / 5  # width ~ 1/sqrt(n): sqrt(10000/180) = 7.5


@pytest.mark.parametrize("bad", [dict(successes=3, n=0), dict(successes=11, n=10), dict(successes=1, n=10, level=1.5)])
def test_wilson_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        wilson_interval(**bad)


def test_accuracy_interval_counts_correct_images():
    acc, (low, high) = accuracy_interval([True] * 9 + [False])
    assert acc == 0.9 and (low, high) == wilson_interval(9, 10)


def test_bootstrap_mean_matches_sampling_theory():
    x = np.random.default_rng(1).normal(size=400)
    low, high = bootstrap_ci(x, seed=3)
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    assert (high - low) / 2 == pytest.approx(half, rel=0.1)
    assert low < x.mean() < high


def test_bootstrap_coverage_is_near_nominal():
    rng = np.random.default_rng(7)
    hits = 0
    for i in range(200):
        low, high = bootstrap_ci(rng.exponential(size=60), n_resamples=1000, seed=i)
        hits += low <= 1.0 <= high
    assert 0.88 <= hits / 200 <= 0.99  # percentile bootstrap of a skewed mean, n = 60: close to 95 %


def test_bootstrap_median_and_single_unit():
    assert bootstrap_ci([0.7]) == (0.7, 0.7)
    low, high = bootstrap_ci([0.1, 0.2, 0.3, 0.4, 0.5], statistic=np.median)
    assert 0.1 <= low <= 0.3 <= high <= 0.5
    with pytest.raises(ValueError):
        bootstrap_ci([])
    with pytest.raises(ValueError):
        bootstrap_ci([0.1, np.nan])


def test_pairing_removes_shared_variation():
    rng = np.random.default_rng(2)
    chip = rng.normal(0.8, 0.1, size=50)  # chip-to-chip spread shared by both methods
    a, b = chip + 0.02 + rng.normal(0, 0.005, 50), chip + rng.normal(0, 0.005, 50)
    diff, (low, high) = paired_bootstrap_ci(a, b)
    assert diff == pytest.approx(np.mean(a - b))
    assert 0 < low < 0.02 < high and high - low < 0.01
    assert high - low < np.diff(bootstrap_ci(a))[0] / 4  # one mean alone carries the chips' spread
    with pytest.raises(ValueError):
        paired_bootstrap_ci([1, 2], [1])


def test_mcnemar_matches_binomial_on_discordant_pairs():
    a = np.array([True] * 10 + [False] * 2 + [True] * 50 + [False] * 8)
    b = np.array([False] * 10 + [True] * 2 + [True] * 50 + [False] * 8)
    assert mcnemar_exact(a, b) == pytest.approx(sps.binomtest(10, 12, 0.5).pvalue)
    assert mcnemar_exact(a, b) == pytest.approx(0.03857, abs=1e-5)
    assert mcnemar_exact(a, a) == 1.0


def test_paired_comparison_and_json_convention():
    a = np.array([True, True, True, False] * 25)
    b = np.array([True, False, True, False] * 25)
    out = paired_accuracy_comparison(a, b)
    assert out["accuracy_a"] == 0.75 and out["accuracy_b"] == 0.5 and out["n_images"] == 100
    assert out["difference"] == pytest.approx(0.25)
    assert out["difference_ci"][0] > 0 and out["mcnemar_p"] < 1e-6
    assert with_ci("accuracy", 0.9, (0.85, 0.93)) == {"accuracy": 0.9, "accuracy_ci": [0.85, 0.93]}


def test_with_wilson_adds_the_interval_of_each_accuracy_over_the_test_images():
    from neurodtco.stats import format_accuracy, with_wilson

    out = with_wilson({"accuracy": 162 / 180, "software_accuracy": 1.0, "engine": "ideal"},
                      ["accuracy", "software_accuracy"], 180)
    assert out["accuracy_ci"] == list(wilson_interval(162, 180))
    assert out["software_accuracy_ci"] == list(wilson_interval(180, 180)) and out["engine"] == "ideal"
    # A mean over draws on the same images is a fractional count: its interval lies between the neighbours'.
    low, high = wilson_interval(161.5, 180)
    assert wilson_interval(161, 180)[0] < low < wilson_interval(162, 180)[0]
    assert wilson_interval(161, 180)[1] < high < wilson_interval(162, 180)[1]
    assert format_accuracy(0.9092, (0.9035, 0.9148), 10000) == "90.9 % [90.3, 91.5], 10,000 images"


def test_first_crossing_is_log_linear_and_says_which_side_of_the_grid():
    from neurodtco.stats import first_crossing

    # halfway between 1e-3 and 1e-2 in value is the geometric mean in level
    assert first_crossing([1e-3, 1e-2], [1.0, 0.0], 0.5) == pytest.approx(np.sqrt(1e-5))
    assert np.isnan(first_crossing([1e-3, 1e-2], [0.1, 0.0], 0.5))   # below the grid
    assert first_crossing([1e-3, 1e-2], [1.0, 0.9], 0.5) == np.inf    # above it
    assert first_crossing([0.0, 1.0], [1.0, 0.0], 0.5) == pytest.approx(0.5)  # a zero level: linear
    with pytest.raises(ValueError, match="ascending"):
        first_crossing([1e-2, 1e-3], [1.0, 0.0], 0.5)
