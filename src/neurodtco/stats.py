"""Uncertainty of reported accuracies: intervals for one test set, for aggregates, and for paired comparisons.

* One chip on one test set: the number of correct images is binomial, so its accuracy gets a
  Wilson score interval (well behaved at 0 % and 100 %, where the normal approximation is not).
* A mean or median over chips, instances or seeds: a percentile bootstrap over those units.
* "A beats B" on the same images (or the same chips): a paired comparison. Per image, an exact
  McNemar test on the discordant pairs; per chip, a paired bootstrap of the mean difference.

Every function takes plain arrays and a ``level`` (default 95 %) and returns floats, so a JSON
line can carry ``accuracy`` beside ``accuracy_ci: [low, high]`` (see ``with_ci``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import numpy as np
from scipy import stats as _sps

DEFAULT_LEVEL = 0.95
DEFAULT_RESAMPLES = 4000


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level!r} is not a probability in (0, 1); use e.g. 0.95 for a 95 % interval")


def wilson_interval(successes: float, n: int, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``successes / n``.

    ``successes`` may be fractional (a mean over draws judged on the same ``n`` images): the
    interval is then the one of that rate on ``n`` images.
    """
    _check_level(level)
    if n <= 0:
        raise ValueError(f"n={n!r}: a proportion needs at least one trial (e.g. one test image)")
    if not 0 <= successes <= n:
        raise ValueError(f"successes={successes!r} must lie in [0, n={n}]")
    z = float(_sps.norm.ppf(0.5 + level / 2))
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_interval(correct: Any, level: float = DEFAULT_LEVEL) -> tuple[float, tuple[float, float]]:
    """Accuracy of a boolean per-image array and its Wilson interval."""
    c = np.asarray(correct, dtype=bool).ravel()
    k, n = int(c.sum()), int(c.size)
    return k / n if n else float("nan"), wilson_interval(k, n, level)


def _resample_index(n: int, n_resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def bootstrap_ci(values: Any, statistic: Callable[..., Any] = np.mean, level: float = DEFAULT_LEVEL,
                 n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over the units (chips, instances, seeds) of ``values``.

    ``statistic`` is called as ``statistic(sample, axis=1)`` on a ``[n_resamples, n]`` array, as
    NumPy reductions (``np.mean``, ``np.median``) accept. With a single unit the interval is that
    unit's value: there is nothing to resample, and the caller should say so beside the number.
    """
    _check_level(level)
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("bootstrap_ci got no values: pass one number per chip, instance or seed")
    if not np.all(np.isfinite(v)):
        raise ValueError("bootstrap_ci got NaN or infinite values; drop the units that have no result first")
    if v.size == 1:
        return float(v[0]), float(v[0])
    boot = np.asarray(statistic(v[_resample_index(v.size, n_resamples, seed)], axis=1), dtype=np.float64)
    alpha = (1.0 - level) / 2
    return float(np.quantile(boot, alpha)), float(np.quantile(boot, 1 - alpha))


def paired_bootstrap_ci(a: Any, b: Any, statistic: Callable[..., Any] = np.mean, level: float = DEFAULT_LEVEL,
                        n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> tuple[float, tuple[float, float]]:
    """``statistic(a - b)`` over paired units (same images or same chips) and its bootstrap interval.

    Resampling the pairs, not ``a`` and ``b`` separately, is what removes the variation the two
    share (the same hard images, the same bad chips) from the comparison.
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired values differ in length ({x.size} vs {y.size}): each unit needs both results")
    d = x - y
    return float(statistic(d)), bootstrap_ci(d, statistic, level, n_resamples, seed)


def mcnemar_counts(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (right only for A, right only for B)."""
    if only_a < 0 or only_b < 0:
        raise ValueError(f"discordant counts must be >= 0, got {only_a} and {only_b}")
    if only_a + only_b == 0:
        return 1.0
    return float(_sps.binomtest(int(only_a), int(only_a + only_b), 0.5).pvalue)


def mcnemar_exact(correct_a: Any, correct_b: Any) -> float:
    """Two-sided exact McNemar p-value for two classifiers judged on the same images."""
    a = np.asarray(correct_a, dtype=bool).ravel()
    b = np.asarray(correct_b, dtype=bool).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired predictions differ in length ({a.size} vs {b.size}): judge both on the same images")
    return mcnemar_counts(int(np.sum(a & ~b)), int(np.sum(~a & b)))


def paired_accuracy_comparison(correct_a: Any, correct_b: Any, level: float = DEFAULT_LEVEL,
                               seed: int = 0) -> dict[str, Any]:
    """A paired per-image comparison of two classifiers: accuracies, their difference with an interval, McNemar's p."""
    a = np.asarray(correct_a, dtype=bool).ravel()
    b = np.asarray(correct_b, dtype=bool).ravel()
    diff, ci = paired_bootstrap_ci(a, b, level=level, seed=seed)
    return {"accuracy_a": float(a.mean()), "accuracy_b": float(b.mean()), "difference": diff,
            "difference_ci": list(ci), "mcnemar_p": mcnemar_exact(a, b), "n_images": int(a.size)}


def first_crossing(levels: Sequence[float], values: Sequence[float], threshold: float) -> float:
    """The level at which ``values`` first falls below ``threshold`` (log-linear interpolation).

    ``levels`` ascend (a defect density, a D0). Returns ``nan`` when even the first level is already
    below (the crossing lies below the grid) and ``inf`` when no level falls below (above the grid).
    """
    levels = np.asarray(levels, dtype=float)
    values = np.asarray(values, dtype=float)
    if levels.ndim != 1 or levels.shape != values.shape or np.any(np.diff(levels) <= 0):
        raise ValueError("levels must be a strictly ascending 1-D grid with one value each")
    below = np.flatnonzero(values < threshold)
    if below.size == 0:
        return math.inf
    i = int(below[0])
    if i == 0:
        return math.nan
    a, b = levels[i - 1], levels[i]
    va, vb = values[i - 1], values[i]
    t = (va - threshold) / (va - vb)
    if a > 0:
        return float(math.exp(math.log(a) + t * (math.log(b) - math.log(a))))
    return float(a + t * (b - a))


def with_ci(name: str, value: float, interval: Sequence[float], out: Optional[dict] = None) -> dict[str, Any]:
    """``{name: value, name_ci: [low, high]}`` (added to ``out`` when given), the JSON convention."""
    out = {} if out is None else out
    out[name] = float(value)
    out[f"{name}_ci"] = [float(interval[0]), float(interval[1])]
    return out


def with_wilson(out: dict, names: Sequence[str], n: int, level: float = DEFAULT_LEVEL) -> dict[str, Any]:
    """Add ``name_ci`` (Wilson over the ``n`` images it was judged on) beside each accuracy ``out[name]``."""
    for name in names:
        value = float(out[name])
        with_ci(name, value, wilson_interval(value * n, n, level), out)
    return out


def format_accuracy(value: float, interval: Sequence[float], n: int) -> str:
    """``90.9 % [90.3, 91.5], 10,000 images``: an accuracy as a person reads it."""
    return f"{100 * value:.1f} % [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}], {n:,} images"


__all__ = ["DEFAULT_LEVEL", "accuracy_interval", "bootstrap_ci", "first_crossing", "format_accuracy", "mcnemar_counts", "mcnemar_exact",
           "paired_accuracy_comparison", "paired_bootstrap_ci", "wilson_interval", "with_ci", "with_wilson"]
