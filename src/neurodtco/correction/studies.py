"""The studies behind the correction results: severity search, cross-defect matrix, calibration budget.

* ``severity_search``: for one pattern on one array, the defect density whose median test accuracy
  over several instances lands in a target band (40-60 % by default), by bisection.
* ``cross_defect_matrix`` / ``unseen_chip_matrix``: one corrector per defect type, trained on chips with
  that type and judged on chips of every type, plus one trained on a mixture of all types (both are
  ``cross.cross_defect`` on the chips' stacked voltages).
* ``calibration_budget``: accuracy after correction against the number of labelled images per chip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np

from ..circuit import Circuit
from ..data import Dataset
from ..defects import DefectRecord, apply_defects, defect_instance
from ..engines import Engine, get_engine
from .cross import CrossDefectResult, cross_defect
from .models import BatchedCorrector
from .protocol import ChipVoltages, calibration_indices, correct_circuits, measure_chip

#: The seven pattern types of the published study (``clustered`` is ours, not in the matrix).
STUDY_PATTERNS = ("random", "circular", "circular_complement", "ring", "row", "column", "checkerboard")


def make_defective(circuit: Circuit, pattern: str, layer: int, density: float, instance: int,
                   kind: str = "on", seed: int = 0) -> tuple[Circuit, DefectRecord]:
    """The chip of one defect instance (placed by ``defects.defect_instance``) and its record."""
    defect, own_seed = defect_instance(pattern, layer, instance, density, kind, seed)
    return apply_defects(circuit, [defect], seed=own_seed)


@dataclass
class SeverityPoint:
    """The severity found for one (pattern, array): its density and the instances' chips at it."""

    pattern: str
    layer: int
    kind: str
    density: float
    accuracies: np.ndarray
    achieved_density: np.ndarray
    instances: tuple[int, ...]
    in_range: bool
    steps: list[tuple[float, float]] = field(default_factory=list)
    chips: list[ChipVoltages] = field(default_factory=list, repr=False)
    note: str = ""

    @property
    def median_accuracy(self) -> float:
        """Median test accuracy of the instances at the chosen density."""
        return float(np.median(self.accuracies))


def severity_search(circuit: Circuit, dataset: Dataset, pattern: str, layer: int, *, kind: str = "on",
                    engine: Union[str, Engine] = "nodal", instances: Sequence[int] = range(5),
                    target: tuple[float, float] = (0.4, 0.6), max_steps: int = 12, seed: int = 0) -> SeverityPoint:
    """Bisect the defect density until the instances' median test accuracy lies in ``target``.

    Assumes accuracy falls as density grows (true on average; an instance may not follow). When no
    density lands in the band (patterns that hit whole lines move in steps), the density whose median
    is closest to the band's centre is kept and ``in_range`` is False. The chips (all images
    simulated) at the chosen density come back for the correction runs. ``seed`` places the instances
    (``defects.defect_instance``: the study runner's circuits of the same seed are the same chips).
    """
    low_t, high_t = target
    if not 0.0 <= low_t < high_t <= 1.0:
        raise ValueError(f"target={target!r} is not accepted: expected (low, high) with 0 <= low < high <= 1")
    eng = get_engine(engine) if isinstance(engine, str) else engine
    instances = tuple(int(i) for i in instances)
    if not instances:
        raise ValueError("instances must name at least one instance (seed)")
    seen: dict[float, tuple[float, list[ChipVoltages], np.ndarray, np.ndarray]] = {}

    def evaluate(density: float) -> float:
        chips, accs, achieved = [], [], []
        for instance in instances:
            chip_circuit, record = make_defective(circuit, pattern, layer, density, instance, kind, seed)
            chip = measure_chip(chip_circuit, dataset, eng)
            chips.append(chip)
            accs.append(chip.accuracy(dataset.y_test))
            achieved.append(record.density[layer])
        median = float(np.median(accs))
        seen[density] = (median, chips, np.array(accs), np.array(achieved))
        return median

    # Some patterns cannot cover a whole array (a ring keeps its hole): find the largest density accepted.
    hi = None
    for candidate in (1.0, 0.9, 0.8, 0.65, 0.5, 0.35, 0.25):
        try:
            evaluate(candidate)
        except ValueError:
            continue
        hi = candidate
        break
    if hi is None:
        raise ValueError(f"pattern {pattern!r} on layer {layer}: no density up to 0.25 can be placed")
    lo = 0.0
    centre = 0.5 * (low_t + high_t)
    note = ""
    if seen[hi][0] > high_t:
        note = f"even density {hi:g} leaves median accuracy {seen[hi][0]:.1%}, above the band"
    else:
        for _ in range(max_steps):
            mid = 0.5 * (lo + hi)
            median = evaluate(mid)
            if low_t <= median <= high_t:
                break
            if median > high_t:
                lo = mid
            else:
                hi = mid
    best = min(seen, key=lambda d: (not (low_t <= seen[d][0] <= high_t), abs(seen[d][0] - centre)))
    median, chips, accs, achieved = seen[best]
    in_range = low_t <= median <= high_t
    if not in_range and not note:
        note = f"accuracy jumps across the band; closest median {median:.1%} at density {best:.3g}"
    steps = sorted((d, v[0]) for d, v in seen.items())
    return SeverityPoint(pattern=pattern, layer=int(layer), kind=kind, density=float(best), accuracies=accs,
                         achieved_density=achieved, instances=instances, in_range=in_range, steps=steps,
                         chips=chips, note=note)


def _stack(chips: dict[str, Sequence[ChipVoltages]], features: str, split: str) -> np.ndarray:
    """The corrector inputs of every chip, ``[types, chips, images, features]``."""
    counts = {name: len(group) for name, group in chips.items()}
    if not chips or len(set(counts.values())) != 1 or 0 in counts.values():
        raise ValueError(f"every defect type needs the same number (>= 1) of chips; got {counts}")
    return np.stack([np.stack([c.features(features, split) for c in group]) for group in chips.values()])


def _before(chips: dict[str, Sequence[ChipVoltages]], dataset: Dataset) -> np.ndarray:
    """Each chip's own test accuracy, ``[types, chips]``."""
    return np.array([[c.accuracy(dataset.y_test) for c in group] for group in chips.values()])


def cross_defect_matrix(chips: dict[str, Sequence[ChipVoltages]], dataset: Dataset, corrector: BatchedCorrector,
                        *, mixture: bool = True) -> CrossDefectResult:
    """Train a corrector on one chip of defect type A, judge it on a chip of type B (the published 7x7).

    ``chips[type]`` lists chips aligned by position (e.g. instance ``i`` of every type on the same
    array): the corrector fitted on ``chips[A][i]``'s training images is judged on ``chips[B][i]``'s
    test images, and entry (A, B) is the mean over ``i``. The diagonal is the per-chip protocol (same
    chip, held-out images). The mixture corrector ``i`` is fitted on the training images of
    ``chips[*][i]`` of every type together, and judged on each.
    """
    return cross_defect(_stack(chips, corrector.features, "train"), dataset.y_train,
                        _stack(chips, corrector.features, "test"), dataset.y_test, lambda role: corrector.batched(),
                        types=list(chips), before=_before(chips, dataset), mixture=mixture,
                        n_classes=dataset.n_classes)


def unseen_chip_matrix(train: dict[str, Sequence[ChipVoltages]], test: dict[str, Sequence[ChipVoltages]],
                       dataset: Dataset, corrector: BatchedCorrector, *, mixture: bool = True,
                       seed: int = 0) -> CrossDefectResult:
    """Train one corrector per defect type on the pooled training images of several chips of that type,
    and judge it on the test images of *other* chips (unseen instances) of every type.

    The mixture corrector sees as many training rows as each single-type one, drawn (seeded) from
    all types' chips, so that it is not favoured by more data.
    """
    types = list(train)
    if not types or set(types) != set(test):
        raise ValueError(f"train and test must name the same defect types; got {sorted(train)} and {sorted(test)}")
    test = {name: test[name] for name in types}
    for name in types:
        if {id(c) for c in train[name]} & {id(c) for c in test[name]}:
            raise ValueError(f"defect type {name!r}: a chip is both in training and in test; use other instances")
    return cross_defect(_stack(train, corrector.features, "train"), dataset.y_train,
                        _stack(test, corrector.features, "test"), dataset.y_test, lambda role: corrector.batched(),
                        types=types, before=_before(test, dataset), mixture=mixture, pairing="pooled", seed=seed,
                        n_classes=dataset.n_classes)


def calibration_budget(chips: Sequence[ChipVoltages], dataset: Dataset, corrector: BatchedCorrector,
                       budgets: Sequence[Optional[int]] = (10, 20, 50, 100, 200, 500, None),
                       seed: int = 0) -> dict[str, np.ndarray]:
    """Test accuracy of each chip after correction with ``n`` labelled images (class-balanced) per chip.

    Returns ``{"budget": [B], "accuracy": [B, chips]}``; a budget of None means every training image.
    """
    sizes, accs = [], []
    for budget in budgets:
        results = correct_circuits([None] * len(chips), dataset, corrector, chips=list(chips),  # type: ignore[list-item]
                                   n_calibration=budget, seed=seed)
        sizes.append(len(dataset.y_train) if budget is None else min(int(budget), len(dataset.y_train)))
        accs.append([r.accuracy_after for r in results])
    return {"budget": np.array(sizes), "accuracy": np.array(accs)}


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Median, quartiles, min and max of a sample (NaNs dropped)."""
    v = np.asarray([x for x in values if not (isinstance(x, float) and math.isnan(x))], dtype=float)
    if v.size == 0:
        return {"median": math.nan, "q25": math.nan, "q75": math.nan, "min": math.nan, "max": math.nan}
    return {"median": float(np.median(v)), "q25": float(np.quantile(v, 0.25)), "q75": float(np.quantile(v, 0.75)),
            "min": float(v.min()), "max": float(v.max())}


__all__ = ["STUDY_PATTERNS", "SeverityPoint", "calibration_budget", "calibration_indices", "cross_defect_matrix",
           "make_defective", "severity_search", "summarize", "unseen_chip_matrix"]
