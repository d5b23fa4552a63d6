"""Yield: the share of dies that pass a test, with its Wilson interval, under optional mitigation.

A die passes the ``accuracy`` criterion when its test accuracy reaches ``bound`` (absolute) or
lies within ``within`` percentage points of the healthy chip's; it passes ``any-defect`` when it
has no stuck cell left (after any repair). Mitigations, applied in the order a fab would:
spare rows and columns remap the worst lines at test (``redundancy.repair``); defect-aware
retraining reprograms the healthy cells around the stuck ones (``mitigation.retrain_defect_aware_batch``);
a per-die corrector is fitted on ``correct`` labelled training images of that die
(``correction.correct_circuits``, batched over the dies of a wafer).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..circuit import Circuit
from ..correction import BatchedMLPCorrector, ChipVoltages, correct_circuits, measure_chip
from ..data import Dataset
from ..engines import Engine
from ..stats import bootstrap_ci, first_crossing, wilson_interval, with_ci
from .diemap import DieMap, die_circuit
from .field import DefectField, draw_wafer
from .geometry import DieKey, Wafer, wafers_needed
from .redundancy import repair
from .stapper import field_stapper_yield

CRITERIA: tuple[str, ...] = ("accuracy", "any-defect")


@dataclass(frozen=True)
class Mitigation:
    """What is done to each die before it is judged: spare lines, defect-aware retraining, a corrector.

    ``correct``: labelled images per die for a ``hidden``-neuron MLP corrector (None: no corrector),
    fitted in ``corrector_dtype``: float32 takes about half float64's time, and on 300 dies at
    D0 = 1e-3 the same dies pass (36 accuracies move, by at most 4 of 180 test images).
    ``correct_clean=False`` leaves dies without stuck cells (known from the test) uncorrected: a
    corrector fitted on few images can read a healthy chip worse than its own decisions.
    """

    spare_rows: int = 0
    spare_cols: int = 0
    retrain: bool = False
    correct: Optional[int] = None
    hidden: int = 8
    corrector_dtype: str = "float32"
    correct_clean: bool = True

    def __post_init__(self) -> None:
        for name in ("spare_rows", "spare_cols"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name}={value!r} is not accepted: expected an integer >= 0 (spare lines per array)")
        if self.correct is not None and (isinstance(self.correct, bool) or not isinstance(self.correct, (int, np.integer))
                                         or self.correct < 1):
            raise ValueError(f"correct={self.correct!r} is not accepted: expected labelled images per die >= 1, "
                             "or None for no corrector")

    @property
    def name(self) -> str:
        """A short label: ``none``, or the levers joined by ``+``."""
        parts = []
        if self.spare_rows or self.spare_cols:
            parts.append(f"spares{self.spare_rows}x{self.spare_cols}")
        if self.retrain:
            parts.append("retrain")
        if self.correct is not None:
            parts.append(f"correct{self.correct}" + ("" if self.correct_clean else "-defective"))
        return "+".join(parts) or "none"

    @property
    def simulates(self) -> bool:
        """Whether the mitigation needs the dies simulated (retraining or correction)."""
        return self.retrain or self.correct is not None


@dataclass
class YieldResult:
    """The dies judged: who passed, their accuracies and stuck cells, the yield and its interval."""

    criterion: str
    keys: list[DieKey]
    passed: np.ndarray
    n_stuck: np.ndarray
    accuracies: Optional[np.ndarray]
    threshold: Optional[float]
    healthy_accuracy: Optional[float]
    mitigation: Mitigation
    timings: dict[str, float] = field(default_factory=dict)
    stapper_yield: Optional[float] = None
    n_test: Optional[int] = None
    #: validation accuracy of each die, where the mitigation judges the die as read (no corrector)
    accuracies_validation: Optional[np.ndarray] = None

    @property
    def n_dies(self) -> int:
        """Dies judged."""
        return int(self.passed.size)

    @property
    def n_pass(self) -> int:
        """Dies that passed."""
        return int(self.passed.sum())

    @property
    def yield_(self) -> float:
        """Share of dies that passed."""
        return self.n_pass / self.n_dies

    @property
    def yield_ci(self) -> tuple[float, float]:
        """95 % Wilson interval of the yield (the dies taken as independent)."""
        return wilson_interval(self.n_pass, self.n_dies)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (no per-die arrays)."""
        out: dict[str, Any] = with_ci("yield", self.yield_, self.yield_ci)
        out.update({"n_dies": self.n_dies, "n_pass": self.n_pass, "criterion": self.criterion,
                    "mitigation": self.mitigation.name, "threshold": self.threshold, "n_test": self.n_test,
                    "mean_stuck_cells": float(self.n_stuck.mean()), "timings": dict(self.timings)})
        if self.healthy_accuracy is not None:
            n = int(self.n_test)  # type: ignore[arg-type]
            with_ci("healthy_accuracy", self.healthy_accuracy, wilson_interval(round(self.healthy_accuracy * n), n), out)
        if self.accuracies is not None:
            # An aggregate over dies: its interval is a bootstrap over the dies.
            with_ci("mean_accuracy", float(self.accuracies.mean()), bootstrap_ci(self.accuracies), out)
        if self.stapper_yield is not None:
            out["stapper_yield"] = self.stapper_yield
        return out


def _threshold(criterion: str, bound: Optional[float], within: Optional[float], healthy: Optional[float]) -> Optional[float]:
    if criterion not in CRITERIA:
        raise ValueError(f"criterion={criterion!r} is not accepted: choose one of {CRITERIA}")
    if criterion == "any-defect":
        if bound is not None or within is not None:
            raise ValueError("criterion='any-defect' takes no accuracy bound: drop bound/within, or use 'accuracy'")
        return None
    if (bound is None) == (within is None):
        raise ValueError("criterion='accuracy' needs exactly one of bound (an accuracy in [0, 1]) or within "
                         "(percentage points below the healthy chip)")
    if bound is not None:
        if not 0 <= bound <= 1:
            raise ValueError(f"bound={bound!r} is not accepted: expected an accuracy in [0, 1] (e.g. 0.9)")
        return float(bound)
    if not within >= 0:  # type: ignore[operator]
        raise ValueError(f"within={within!r} is not accepted: expected percentage points >= 0 (e.g. 2)")
    return float(healthy) - float(within) / 100.0  # type: ignore[arg-type]


def evaluate_dies(healthy: Circuit, dies: Sequence[DieMap], dataset: Optional[Dataset] = None, *,
                  criterion: str = "accuracy", bound: Optional[float] = None, within: Optional[float] = None,
                  mitigation: Mitigation = Mitigation(), engine: Union[str, Engine] = "nodal", seed: int = 0,
                  healthy_chip: Optional[ChipVoltages] = None) -> YieldResult:
    """Judge the given dies (drawn, or read from a defect-map file) against one criterion.

    ``healthy_chip`` (``measure_chip`` of ``healthy``) saves measuring the healthy circuit again
    when many batches of dies are judged.
    """
    return evaluate_mitigations(healthy, dies, dataset, [mitigation], criterion=criterion, bound=bound, within=within,
                                engine=engine, seed=seed, healthy_chip=healthy_chip)[0]


def evaluate_mitigations(healthy: Circuit, dies: Sequence[DieMap], dataset: Optional[Dataset],
                         mitigations: Sequence[Mitigation], *, criterion: str = "accuracy",
                         bound: Optional[float] = None, within: Optional[float] = None,
                         engine: Union[str, Engine] = "nodal", seed: int = 0,
                         healthy_chip: Optional[ChipVoltages] = None) -> list[YieldResult]:
    """Judge the same dies under each mitigation; mitigations that differ only in their corrector share one simulation.

    Each result's ``repair_s``, ``simulate_s`` and ``retrain_s`` are those of the simulation it shares.
    """
    if not mitigations:
        raise ValueError("mitigations is empty: give at least one Mitigation (Mitigation() for none)")
    simulates = criterion != "any-defect" or any(m.simulates for m in mitigations)
    if simulates and dataset is None:
        raise ValueError(f"criterion={criterion!r} with mitigations {[m.name for m in mitigations]} simulates the "
                         "dies: pass the dataset")
    if simulates and healthy_chip is None:
        healthy_chip = measure_chip(healthy, dataset, engine)  # type: ignore[arg-type]
    healthy_acc = healthy_chip.accuracy(dataset.y_test) if healthy_chip is not None else None  # type: ignore[union-attr]
    threshold = _threshold(criterion, bound, within, healthy_acc)
    shared: dict[tuple[int, int, bool], tuple[list[DieMap], np.ndarray, Optional[list[Any]], dict[str, float]]] = {}
    results = []
    for mitigation in mitigations:
        group = (mitigation.spare_rows, mitigation.spare_cols, mitigation.retrain)
        if group not in shared:
            timings = {"repair_s": 0.0, "simulate_s": 0.0, "retrain_s": 0.0}
            start = time.perf_counter()
            repaired = [repair(d, healthy, mitigation.spare_rows, mitigation.spare_cols) for d in dies]
            timings["repair_s"] = time.perf_counter() - start
            n_stuck = np.array([d.n_stuck for d in repaired], dtype=np.int64)
            needs_chips = criterion != "any-defect" or any(
                m.simulates and (m.spare_rows, m.spare_cols, m.retrain) == group for m in mitigations)
            simulated = _simulate(healthy, repaired, n_stuck, dataset, mitigation.retrain, engine, seed,  # type: ignore[arg-type]
                                  healthy_chip, timings) if needs_chips else None  # type: ignore[arg-type]
            shared[group] = (repaired, n_stuck, simulated, timings)
        repaired, n_stuck, simulated, timings = shared[group]
        own = {**timings, "correct_s": 0.0}
        accuracies = validation = None
        if criterion == "any-defect" and not mitigation.simulates:
            passed = n_stuck == 0
        else:
            accuracies = _accuracies(simulated, dataset, mitigation, engine, seed, own)  # type: ignore[arg-type]
            if mitigation.correct is None and dataset.y_val is not None:  # type: ignore[union-attr]
                validation = np.array([c.accuracy(dataset.y_val, "validation") for c in simulated[1]])  # type: ignore[index,union-attr]
            # Accuracies are counts over the test images: the tolerance keeps k/n == bound from failing by rounding.
            passed = n_stuck == 0 if criterion == "any-defect" else accuracies >= threshold - 1e-9  # type: ignore[operator]
        results.append(YieldResult(criterion=criterion, keys=[d.key for d in repaired],
                                   passed=np.asarray(passed, dtype=bool), n_stuck=n_stuck, accuracies=accuracies,
                                   threshold=threshold, healthy_accuracy=healthy_acc, mitigation=mitigation,
                                   timings=own, n_test=None if dataset is None else len(dataset.y_test),
                                   accuracies_validation=validation))
    return results


def _simulate(healthy: Circuit, dies: Sequence[DieMap], n_stuck: np.ndarray, dataset: Dataset, retrain: bool,
              engine: Union[str, Engine], seed: int, healthy_chip: ChipVoltages,
              timings: dict[str, float]) -> list[Any]:
    """Each die's circuit (retrained when asked), its measured voltages and stuck cells: ``[circuits, chips, n_stuck]``."""
    start = time.perf_counter()
    circuits = [healthy if n == 0 else die_circuit(healthy, d)[0] for d, n in zip(dies, n_stuck)]
    timings["simulate_s"] += time.perf_counter() - start
    defective = [k for k, n in enumerate(n_stuck) if n]
    if retrain and defective:
        from ..mitigation import RetrainConfig, retrain_defect_aware_batch

        start = time.perf_counter()
        retrained = retrain_defect_aware_batch([circuits[k] for k in defective], [dies[k].masks for k in defective],
                                               dataset, RetrainConfig(seed=seed))
        for k, c in zip(defective, retrained):
            circuits[k] = c
        timings["retrain_s"] += time.perf_counter() - start
    start = time.perf_counter()
    # A die without stuck cells is the healthy chip: its voltages are measured once.
    chips = [healthy_chip if n == 0 else measure_chip(c, dataset, engine) for c, n in zip(circuits, n_stuck)]
    timings["simulate_s"] += time.perf_counter() - start
    return [circuits, chips, n_stuck]


def _accuracies(simulated: list[Any], dataset: Dataset, mitigation: Mitigation, engine: Union[str, Engine],
                seed: int, timings: dict[str, float]) -> np.ndarray:
    """Each simulated die's test accuracy, after its corrector when the mitigation has one."""
    circuits, chips, n_stuck = simulated
    accuracies = np.array([chip.accuracy(dataset.y_test) for chip in chips])
    if mitigation.correct is None:
        return accuracies
    start = time.perf_counter()
    corrector = BatchedMLPCorrector(hidden=mitigation.hidden, seed=seed, dtype=mitigation.corrector_dtype)
    results = correct_circuits(circuits, dataset, corrector, engine, n_calibration=mitigation.correct, seed=seed,
                               chips=chips)
    timings["correct_s"] += time.perf_counter() - start
    corrected = np.array([r.accuracy_after for r in results])
    return corrected if mitigation.correct_clean else np.where(n_stuck > 0, corrected, accuracies)


def wafer_yield(healthy: Circuit, defect_field: DefectField, wafer: Wafer, n_dies: int,
                dataset: Optional[Dataset] = None, *, criterion: str = "accuracy", bound: Optional[float] = None,
                within: Optional[float] = None, mitigation: Mitigation = Mitigation(),
                engine: Union[str, Engine] = "nodal", seed: int = 0) -> YieldResult:
    """Draw ``n_dies`` dies from ``defect_field`` (wafer by wafer) and judge them; one wafer is one batch."""
    n_wafers = wafers_needed(wafer, n_dies)
    healthy_chip = measure_chip(healthy, dataset, engine) if dataset is not None else None
    parts: list[YieldResult] = []
    draw_s = 0.0
    left = n_dies
    for index in range(n_wafers):
        start = time.perf_counter()
        dies = draw_wafer(defect_field, wafer, healthy, index, seed)[:left]
        draw_s += time.perf_counter() - start
        left -= len(dies)
        parts.append(evaluate_dies(healthy, dies, dataset, criterion=criterion, bound=bound, within=within,
                                   mitigation=mitigation, engine=engine, seed=seed, healthy_chip=healthy_chip))
    first = parts[0]
    timings = {"draw_s": draw_s, **{k: sum(p.timings[k] for p in parts) for k in first.timings}}
    return YieldResult(
        criterion=criterion, keys=[k for p in parts for k in p.keys],
        passed=np.concatenate([p.passed for p in parts]), n_stuck=np.concatenate([p.n_stuck for p in parts]),
        accuracies=None if first.accuracies is None else np.concatenate([p.accuracies for p in parts]),  # type: ignore[misc]
        threshold=first.threshold, healthy_accuracy=first.healthy_accuracy, mitigation=mitigation, timings=timings,
        stapper_yield=field_stapper_yield(defect_field, healthy, wafer) if criterion == "any-defect" else None,
        n_test=first.n_test)


def yield_table(healthy: Circuit, wafer: Wafer, d0s: Sequence[float], alphas: Sequence[float], n_dies: int,
                dataset: Optional[Dataset] = None, *, mitigations: Sequence[Mitigation] = (Mitigation(),),
                criterion: str = "accuracy", bound: Optional[float] = None, within: Optional[float] = None,
                cluster_radius_mm: Optional[float] = None, edge_gradient: float = 0.0,
                engine: Union[str, Engine] = "nodal", seed: int = 0) -> Any:
    """Yield for every (D0, alpha, mitigation): a pandas table, one row each, with intervals and Stapper's value."""
    import pandas as pd

    rows = []
    for d0 in d0s:
        for alpha in alphas:
            f = DefectField(d0_per_cell=d0, alpha=alpha, cluster_radius_mm=cluster_radius_mm,
                            edge_gradient=edge_gradient)
            for m in mitigations:
                r = wafer_yield(healthy, f, wafer, n_dies, dataset, criterion=criterion, bound=bound, within=within,
                                mitigation=m, engine=engine, seed=seed)
                low, high = r.yield_ci
                rows.append({"d0_per_cell": d0, "d0_per_cm2": f.d0_per_cm2, "alpha": alpha, "mitigation": m.name,
                             "criterion": criterion, "yield": r.yield_, "yield_low": low, "yield_high": high,
                             "n_dies": r.n_dies, "stapper_yield": field_stapper_yield(f, healthy, wafer),
                             "mean_stuck_cells": float(r.n_stuck.mean())})
    return pd.DataFrame(rows)


def plot_yield(table: Any, x: str = "d0_per_cell") -> Any:
    """Yield against ``x`` (a column of ``yield_table``), one line per (alpha, mitigation), with its interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if x not in table.columns:
        raise ValueError(f"x={x!r} is not a column of the table: choose one of {list(table.columns)}")
    fig, ax = plt.subplots(figsize=(6, 4))
    for (alpha, name), group in table.groupby(["alpha", "mitigation"], sort=False):
        group = group.sort_values(x)
        label = f"alpha={alpha:g}, {name}"
        line, = ax.plot(group[x], group["yield"], marker="o", label=label)
        ax.fill_between(group[x], group["yield_low"], group["yield_high"], color=line.get_color(), alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel({"d0_per_cell": "D0 (defects per cell)", "d0_per_cm2": "D0 (defects per cm$^2$)"}.get(x, x))
    ax.set_ylabel("yield")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def d0_at_yield(d0s: Sequence[float], n_pass: Sequence[int], n_dies: Sequence[int],
                level: float = 0.9) -> tuple[float, float, float]:
    """The D0 where the yield first falls below ``level``, with the D0s where its 95 % Wilson band does.

    Between grid points the yield is interpolated linearly against log D0. The estimate comes
    from the yields, the low end from the band's lower edge and the high end from its upper edge
    (pointwise Wilson intervals, so the range is approximate). A crossing before the first grid
    point is 0.0, one after the last is inf: extend the grid.
    """
    d0 = np.asarray(d0s, dtype=np.float64)
    if d0.ndim != 1 or d0.size < 2 or not np.all(d0 > 0) or not np.all(np.diff(d0) > 0):
        raise ValueError(f"d0s={list(d0s)!r} is not accepted: expected at least two increasing densities > 0")
    if len(n_pass) != d0.size or len(n_dies) != d0.size:
        raise ValueError(f"got {len(n_pass)} pass counts and {len(n_dies)} die counts for {d0.size} densities: "
                         "give one of each per D0")
    if not 0 < level < 1:
        raise ValueError(f"level={level!r} is not accepted: expected a yield in (0, 1), e.g. 0.9")
    bands = np.array([wilson_interval(k, n) for k, n in zip(n_pass, n_dies)])
    crossings = (first_crossing(d0, y, level)
                 for y in (np.asarray(n_pass) / np.asarray(n_dies), bands[:, 0], bands[:, 1]))
    return tuple(0.0 if math.isnan(c) else c for c in crossings)  # type: ignore[return-value]


def mean_defects(defect_field: DefectField, circuit: Circuit) -> float:
    """Expected stuck-cell intensity per die, ``A D0`` in Stapper's formula (no radial gradient)."""
    return defect_field.d0_per_cell * circuit.n_cells


__all__ = ["CRITERIA", "Mitigation", "YieldResult", "d0_at_yield", "evaluate_dies", "evaluate_mitigations", "mean_defects", "plot_yield", "wafer_yield",
           "yield_table"]
