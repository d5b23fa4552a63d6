"""Defect tolerance: the stuck-at density at which accuracy falls by one point, with and without retraining.

For each density of a grid, ``instances`` defect maps are drawn (seeded), applied to the healthy
circuit and simulated by the engine; optionally every defective chip is first retrained around
its measured stuck cells (``training.retrain_defect_aware_batch``, all chips of the grid in one
batched graph). The tolerance is where the *mean* accuracy over instances first falls
``drop`` below the healthy circuit's accuracy, interpolated log-linearly between grid points.
``tolerance_thresholds`` reads that measured crossing at several drops with a bootstrap interval
over instances, and ``tolerance_ratio_ci`` the ratio of two such results (retrained over not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from ..circuit import Circuit
from ..data import Dataset
from ..defects import Defect, apply_defects
from ..stats import bootstrap_ci, wilson_interval
from .common import check_seed, circuit_accuracy, drop_crossing, resolve_engine
from .training import RetrainConfig, retrain_defect_aware_batch


@dataclass(frozen=True, eq=False)
class ToleranceResult:
    """Accuracy per (density, instance), the healthy accuracy and the tolerance density.

    ``tolerance_density`` is ``inf`` when the accuracy never fell ``drop`` below healthy on the
    grid (the tolerance lies above its largest density) and ``nan`` when it already had at the
    smallest density (below the grid).
    """

    table: pd.DataFrame
    healthy_accuracy: float
    tolerance_density: float
    drop: float
    retrained: bool

    def mean_accuracy(self) -> pd.Series:
        """Mean accuracy over instances, indexed by requested density."""
        return self.table.groupby("density")["accuracy"].mean()

    def mean_accuracy_ci(self, level: float = 0.95) -> pd.DataFrame:
        """Per density: the mean test accuracy over instances and its bootstrap interval (``low``, ``high``).

        With one instance the interval is that chip's Wilson interval over its ``n_test`` images.
        """
        out = []
        for density, g in self.table.groupby("density"):
            acc = g["accuracy"].to_numpy()
            if len(acc) == 1:
                n = int(g["n_test"].iloc[0])
                low, high = wilson_interval(int(round(acc[0] * n)), n, level)
            else:
                low, high = bootstrap_ci(acc, level=level)
            out.append({"density": density, "mean": float(acc.mean()), "low": low, "high": high,
                        "instances": len(acc)})
        return pd.DataFrame(out).set_index("density")


def defect_tolerance(circuit: Circuit, dataset: Dataset, densities: Sequence[float], *, pattern: str = "random",
                     kind: str = "mix", layers: Any = "all", instances: int = 5,
                     retrain: Optional[RetrainConfig] = None, engine: Any = "ideal", drop: float = 0.01,
                     seed: int = 0) -> ToleranceResult:
    """Accuracy vs stuck-at density and the density where it falls ``drop`` below the healthy circuit."""

    densities = sorted(float(d) for d in densities)
    if not densities or densities[0] <= 0 or densities[-1] > 1:
        raise ValueError(f"densities={densities!r} must be a non-empty list of values in (0, 1]")
    if isinstance(instances, bool) or not isinstance(instances, (int, np.integer)) or instances < 1:
        raise ValueError(f"instances={instances!r} is not accepted: expected an integer >= 1")
    if not 0 < drop < 1:
        raise ValueError(f"drop={drop!r} is not accepted: expected an accuracy drop in (0, 1), e.g. 0.01 for 1 point")
    seed = check_seed(seed)
    eng = resolve_engine(engine)
    healthy = circuit_accuracy(circuit, dataset, eng)
    rows, chips, records = [], [], []
    for i, density in enumerate(densities):
        # Random defects are drawn cell by cell with probability p (Bernoulli), so that the mean over
        # instances is smooth in p; a fixed count per array would round to zero on the small arrays.
        defect = (Defect(pattern="random", layers=layers, kind=kind, params={"p": density}) if pattern == "random"
                  else Defect(pattern=pattern, layers=layers, kind=kind, density=density))
        for n in range(instances):
            # One seed per (density, instance): the same instance index at two densities is independent.
            chip, record = apply_defects(circuit, [defect], seed=seed * 1_000_003 + i * 1009 + n)
            chips.append(chip)
            records.append(record)
            rows.append({"density": density, "instance": n, "achieved_density": record.total_density})
    if retrain is not None:
        chips = retrain_defect_aware_batch(chips, records, dataset, retrain)
    for row, chip in zip(rows, chips):
        row["accuracy"] = circuit_accuracy(chip, dataset, eng)
    table = pd.DataFrame(rows)
    table["pattern"], table["kind"], table["retrained"] = pattern, kind, retrain is not None
    table["n_test"] = len(dataset.y_test)
    means = table.groupby("density")["accuracy"].mean()
    tolerance = drop_crossing(means.index.to_numpy(), means.to_numpy(), healthy - drop)
    return ToleranceResult(table=table, healthy_accuracy=healthy, tolerance_density=tolerance, drop=drop,
                           retrained=retrain is not None)


def tolerance_thresholds(result: ToleranceResult, drops: Sequence[float] = (0.01, 0.02, 0.05), level: float = 0.95,
                         n_resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per accuracy drop: the measured tolerance density and its bootstrap interval over instances.

    The density is where the measured mean accuracy over instances first falls ``drop`` below the
    healthy circuit's (``drop_crossing``); the interval resamples the instances of every density
    (with replacement, independently per density) and takes percentiles of the crossings, the
    healthy accuracy held fixed (it is the same circuit on the same images). A crossing below the
    grid counts as 0 and one above it as ``inf``, so the bounds say when the grid does not bracket it.
    Also returns ``draws`` (``[n_resamples]`` crossings per drop) for ratios of two results.
    """
    if not 0 < level < 1:
        raise ValueError(f"level={level!r} is not accepted: expected a probability in (0, 1), e.g. 0.95")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ValueError(f"n_resamples={n_resamples!r} is not accepted: expected an integer >= 1")
    drops = [float(d) for d in drops]
    if not drops or not all(0 < d < 1 for d in drops):
        raise ValueError(f"drops={drops!r} is not accepted: expected accuracy drops in (0, 1), e.g. 0.01 for 1 point")
    rng = np.random.default_rng(seed)
    groups = [g["accuracy"].to_numpy() for _, g in result.table.groupby("density")]
    densities = np.array(sorted(result.table["density"].unique()), dtype=float)
    means = np.array([a.mean() for a in groups])
    # One resampled mean curve per draw: [n_resamples, n_densities].
    curves = np.stack([a[rng.integers(0, len(a), size=(n_resamples, len(a)))].mean(axis=1) for a in groups], axis=1)
    alpha = (1 - level) / 2
    rows = []
    for drop in drops:
        threshold = result.healthy_accuracy - drop
        draws = np.array([drop_crossing(densities, c, threshold) for c in curves])
        draws = np.where(np.isnan(draws), 0.0, draws)
        # Percentiles without interpolation, so that an infinite draw is not averaged with a finite one.
        low, high = (float(np.quantile(draws, q, method="inverted_cdf")) for q in (alpha, 1 - alpha))
        rows.append({"drop_points": 100 * drop, "density": drop_crossing(densities, means, threshold),
                     "low": low, "high": high, "instances": int(min(len(a) for a in groups)), "draws": draws})
    return pd.DataFrame(rows).set_index("drop_points")


def tolerance_ratio_ci(with_retraining: pd.DataFrame, without: pd.DataFrame,
                       level: float = 0.95) -> pd.DataFrame:
    """Per drop: the ratio of two ``tolerance_thresholds`` results and its interval from their draws.

    The draws of the two results are independent (different chips), so the ratio of the i-th draws
    is a draw of the ratio. ``nan`` where a measured tolerance is not a finite positive density.
    """
    common = [d for d in with_retraining.index if d in without.index]
    if not common:
        raise ValueError("the two tolerance tables share no drop: compute both with the same drops")
    alpha, rows = (1 - level) / 2, []
    for drop in common:
        a, b = with_retraining.loc[drop], without.loc[drop]
        ok = math.isfinite(a["density"]) and math.isfinite(b["density"]) and b["density"] > 0
        ratio = a["density"] / b["density"] if ok else math.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            draws = np.asarray(a["draws"]) / np.asarray(b["draws"])
        draws = np.where(np.isnan(draws), np.inf, draws)  # 0/0 only when both are below the grid
        low, high = (float(np.quantile(draws, q, method="inverted_cdf")) for q in (alpha, 1 - alpha))
        rows.append({"drop_points": drop, "ratio": ratio, "low": low, "high": high})
    return pd.DataFrame(rows).set_index("drop_points")


def tolerance_ratio(with_retraining: ToleranceResult, without: ToleranceResult) -> float:
    """How many times more stuck cells the retrained chips tolerate (``nan`` when undetermined)."""
    a, b = with_retraining.tolerance_density, without.tolerance_density
    if not (math.isfinite(a) and math.isfinite(b)) or b <= 0:
        return math.nan
    return a / b


@dataclass(frozen=True, eq=False)
class SingleFaultResult:
    """Accuracy drop caused by each cell stuck alone, and the first-order tolerance it implies.

    ``drop_on[l]`` / ``drop_off[l]``: ``[rows, cols]`` accuracy loss (healthy minus faulty, may be
    negative) with that one cell of layer ``l`` stuck at ``G_max`` / ``G_min``. With cells failing
    independently with probability ``p``, the expected loss is ``p * total_drop + O(p^2)``, so a
    ``drop`` of accuracy is reached at ``p = drop / total_drop``: exact in the limit of rare faults,
    and free of the Monte-Carlo noise that dominates a sweep at a fraction of a fault per chip.
    """

    drop_on: list[np.ndarray]
    drop_off: list[np.ndarray]
    healthy_accuracy: float
    on_fraction: float
    drop: float

    @property
    def total_drop(self) -> float:
        """Sum over cells of the expected accuracy loss of a single fault of the mixed kind."""
        q = self.on_fraction
        return float(sum((q * a + (1 - q) * b).sum() for a, b in zip(self.drop_on, self.drop_off)))

    @property
    def tolerance_density(self) -> float:
        """Fault probability per cell at which the expected loss reaches ``drop`` (first order)."""
        total = self.total_drop
        return self.drop / total if total > 0 else math.inf


def single_fault_tolerance(circuit: Circuit, dataset: Dataset, *, on_fraction: float = 0.5, engine: Any = "ideal",
                           drop: float = 0.01) -> SingleFaultResult:
    """Stick every cell alone, on and off, and measure the accuracy each single fault costs."""
    if not 0 <= on_fraction <= 1:
        raise ValueError(f"on_fraction={on_fraction!r} is not accepted: expected a probability in [0, 1]")
    eng = resolve_engine(engine)
    healthy = circuit_accuracy(circuit, dataset, eng)
    cell = circuit.cell
    drops: dict[str, list[np.ndarray]] = {"on": [], "off": []}
    for index, layer in enumerate(circuit.layers):
        for kind, value in (("on", cell.g_max), ("off", cell.g_min)):
            out = np.zeros(layer.conductance.shape)
            for r, c in np.ndindex(*layer.conductance.shape):
                if layer.conductance[r, c] == value:
                    continue  # already at the stuck value: the fault changes nothing
                g = np.array(layer.conductance)
                g[r, c] = value
                out[r, c] = healthy - circuit_accuracy(circuit.replace_layer(index, conductance=g), dataset, eng)
            drops[kind].append(out)
    return SingleFaultResult(drop_on=drops["on"], drop_off=drops["off"], healthy_accuracy=healthy,
                             on_fraction=on_fraction, drop=drop)
