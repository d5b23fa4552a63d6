"""Intervals for the report's numbers: one chip's test set, means over chips and seeds, paired differences.

* One chip (one circuit on one test set): Wilson interval of its correct count (``stats.wilson_interval``).
* A mean over chips: a percentile bootstrap. When the chips come from several trained networks
  (``network_seed``), the bootstrap is two-level: resample the networks, then the chips within each
  one, so that the interval carries the network-to-network spread and not only the chip-to-chip one.
* "A vs B" on the same chips (stuck-on vs stuck-off on the same cells, corrected vs uncorrected on
  the same circuit): the same bootstrap of the per-chip differences (``paired_difference``).

Every function takes a frame of the study's rows and returns plain floats, with the counts (images,
chips, networks) the report prints beside each number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from ..stats import DEFAULT_LEVEL, bootstrap_ci, wilson_interval

N_RESAMPLES = 2000
#: Chips in one grid point of one network: the columns that name a chip across kinds and correctors.
CHIP_KEYS = ["network_seed", "pattern", "array", "severity", "instance"]


@dataclass(frozen=True)
class Estimate:
    """A value (accuracy, or a difference of accuracies) with its interval and what it rests on."""

    value: float
    low: float
    high: float
    n_chips: int
    n_networks: int
    n_images: int  # test images per chip

    def text(self, points: bool = False) -> str:
        """``91.2% [88.0, 93.9]`` (``+3.1 [1.0, 5.2] points`` for a difference)."""
        if points:
            return f"{self.value * 100:+.1f} [{self.low * 100:+.1f}, {self.high * 100:+.1f}] points"
        return f"{self.value:.1%} [{self.low * 100:.1f}, {self.high * 100:.1f}]"

    def basis(self) -> str:
        """``40 chips x 5 networks, 180 test images each``: what the interval is over."""
        chips = f"{self.n_chips} chip" + ("" if self.n_chips == 1 else "s")
        nets = f"{self.n_networks} network" + ("" if self.n_networks == 1 else "s")
        return f"{chips} over {nets}, {self.n_images:,} test images each"


def cluster_bootstrap_ci(values: Sequence[float], clusters: Optional[Sequence] = None,
                         level: float = DEFAULT_LEVEL, n_resamples: int = N_RESAMPLES,
                         seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the mean of ``values``, resampling ``clusters`` and then units within them.

    With one cluster (or none given) this is the plain bootstrap over units (``stats.bootstrap_ci``).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if clusters is None:
        return bootstrap_ci(v, level=level, n_resamples=n_resamples, seed=seed)
    labels = pd.factorize(pd.Series(list(clusters)))[0]
    if len(labels) != v.size:
        raise ValueError(f"clusters has {len(labels)} entries for {v.size} values; give one cluster per value")
    groups = [v[labels == g] for g in range(labels.max() + 1)]
    if len(groups) == 1:
        return bootstrap_ci(v, level=level, n_resamples=n_resamples, seed=seed)
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for r in range(n_resamples):
        picked = rng.integers(0, len(groups), size=len(groups))
        sample = [groups[g][rng.integers(0, groups[g].size, size=groups[g].size)] for g in picked]
        means[r] = np.concatenate(sample).mean()
    alpha = (1.0 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def _images(rows: pd.DataFrame) -> int:
    return int(rows["n_test"].iloc[0]) if "n_test" in rows and len(rows) else 0


def _networks(rows: pd.DataFrame) -> Optional[pd.Series]:
    return rows["network_seed"] if "network_seed" in rows else None


def mean_accuracy(rows: pd.DataFrame, column: str = "accuracy") -> Estimate:
    """Mean test accuracy over the chips of ``rows`` (one row per chip): Wilson for one chip, bootstrap otherwise."""
    if rows.empty:
        raise ValueError("mean_accuracy got no rows: select at least one chip")
    values = rows[column].to_numpy(dtype=float)
    nets = _networks(rows)
    n_nets = int(nets.nunique()) if nets is not None else 1
    if len(rows) == 1 and column == "accuracy" and "n_correct" in rows:
        low, high = wilson_interval(int(rows["n_correct"].iloc[0]), int(rows["n_test"].iloc[0]))
    else:
        low, high = cluster_bootstrap_ci(values, nets)
    return Estimate(float(values.mean()), low, high, len(rows), n_nets, _images(rows))


def paired_difference(a: pd.Series, b: pd.Series, networks: Optional[pd.Series] = None) -> Estimate:
    """Mean of ``a - b`` over the chips both hold (aligned on their index) and its bootstrap interval."""
    pair = pd.concat({"a": a, "b": b}, axis=1).dropna()
    if pair.empty:
        raise ValueError("paired_difference: the two sides share no chip; pair results of the same chips")
    d = (pair["a"] - pair["b"]).to_numpy(dtype=float)
    nets = networks.reindex(pair.index) if networks is not None else None
    low, high = cluster_bootstrap_ci(d, nets)
    return Estimate(float(d.mean()), low, high, len(pair), int(nets.nunique()) if nets is not None else 1, 0)


def wilson_band(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per row (one chip each), the Wilson interval of its test accuracy as two arrays (low, high)."""
    bounds = [wilson_interval(int(k), int(n)) for k, n in zip(rows["n_correct"], rows["n_test"])]
    return np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])


def grouped_means(rows: pd.DataFrame, by: list[str], column: str = "accuracy") -> pd.DataFrame:
    """Per group of ``by``: the mean of ``column`` over its chips, its interval (``low``, ``high``) and counts."""
    out = []
    for key, g in rows.groupby(by, sort=True):
        e = mean_accuracy(g, column)
        out.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "mean": e.value, "low": e.low,
                    "high": e.high, "n_chips": e.n_chips, "n_networks": e.n_networks})
    return pd.DataFrame(out)


__all__ = ["CHIP_KEYS", "Estimate", "cluster_bootstrap_ci", "grouped_means", "mean_accuracy", "paired_difference",
           "wilson_band"]
