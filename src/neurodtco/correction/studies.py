"""The studies behind the correction results: severity search, cross-defect matrix, calibration budget.

* ``severity_search``: for one pattern on one array, the defect density whose median *validation*
  accuracy over several instances lands in a target band (40-60 % by default), by bisection (a
  choice: the test images play no part in it).
* ``cross_defect_matrix`` / ``unseen_chip_matrix``: one corrector per defect type, trained on chips with
  that type and judged on chips of every type, plus one trained on a mixture of all types (both are
  ``cross.cross_defect`` on the chips' stacked voltages).
* ``calibration_budget``: accuracy after correction against the number of labelled images per chip,
  summarized per array.
* ``select_on_validation``: several candidate correctors fitted on every chip's training images,
  one chosen per chip by its *validation* accuracy, the chosen one's test answers reported.
* ``summarize`` / ``summarize_per_array``: median and mean over chips with bootstrap intervals over
  the chips, one summary per array (easy and hard arrays are never pooled into one number).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..circuit import Circuit
from ..data import Dataset, to_voltages
from ..defects import DefectRecord, apply_defects, defect_instance
from ..engines import Engine, get_engine
from .cross import CrossDefectResult, cross_defect
from .models import BatchedCorrector
from ..stats import bootstrap_ci
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
    """The severity found for one (pattern, array): its density, the instances' validation accuracies and chips at it."""

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
        """Median validation accuracy of the instances at the chosen density (what the search chose on)."""
        return float(np.median(self.accuracies))

    def test_accuracies(self, dataset: Dataset) -> np.ndarray:
        """Each instance's own test accuracy at the chosen density: for reporting, after the choice."""
        return np.array([chip.accuracy(dataset.y_test) for chip in self.chips])


def severity_search(circuit: Circuit, dataset: Dataset, pattern: str, layer: int, *, kind: str = "on",
                    engine: Union[str, Engine] = "nodal", instances: Sequence[int] = range(5),
                    target: tuple[float, float] = (0.4, 0.6), max_steps: int = 12, seed: int = 0) -> SeverityPoint:
    """Bisect the defect density until the instances' median validation accuracy lies in ``target``.

    The search reads only the dataset's validation images (``dataset.validation()``; a dataset
    without a validation part is refused), so the density it picks is no choice made on test data.
    Assumes accuracy falls as density grows (true on average; an instance may not follow). When no
    density lands in the band (patterns that hit whole lines move in steps), the density whose median
    is closest to the band's centre is kept and ``in_range`` is False. The chips at the chosen density
    are then simulated on all images and come back for the correction runs. ``seed`` places the instances
    (``defects.defect_instance``: the study runner's circuits of the same seed are the same chips).
    """
    low_t, high_t = target
    if not 0.0 <= low_t < high_t <= 1.0:
        raise ValueError(f"target={target!r} is not accepted: expected (low, high) with 0 <= low < high <= 1")
    x_val, y_val = dataset.validation()
    eng = get_engine(engine) if isinstance(engine, str) else engine
    instances = tuple(int(i) for i in instances)
    if not instances:
        raise ValueError("instances must name at least one instance (seed)")
    seen: dict[float, tuple[float, np.ndarray, np.ndarray]] = {}

    def evaluate(density: float) -> float:
        accs, achieved = [], []
        for instance in instances:
            chip_circuit, record = make_defective(circuit, pattern, layer, density, instance, kind, seed)
            outputs = eng.run(chip_circuit, to_voltages(x_val, chip_circuit.input_scale_v)).outputs_v
            accs.append(float(np.mean(np.asarray(outputs).argmax(axis=1) == y_val)))
            achieved.append(record.density[layer])
        median = float(np.median(accs))
        seen[density] = (median, np.array(accs), np.array(achieved))
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
        note = f"even density {hi:g} leaves median validation accuracy {seen[hi][0]:.1%}, above the band"
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
    median, accs, achieved = seen[best]
    in_range = low_t <= median <= high_t
    if not in_range and not note:
        note = f"accuracy jumps across the band; closest median {median:.1%} at density {best:.3g}"
    steps = sorted((d, v[0]) for d, v in seen.items())
    chips = [measure_chip(make_defective(circuit, pattern, layer, best, instance, kind, seed)[0], dataset, eng)
             for instance in instances]
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
                       budgets: Sequence[Optional[int]] = (10, 20, 50, 100, 200, 500, None), *,
                       arrays: Sequence[int], seed: int = 0) -> dict[str, Any]:
    """Test accuracy of each chip after correction with ``n`` labelled images (class-balanced) per chip.

    ``arrays`` names the array each chip's defects sit on. Returns ``{"budget": [B], "accuracy":
    [B, chips], "array": [chips], "summary": [...]}``, the summary one ``summarize`` row per budget
    and array; a budget of None means every training image.
    """
    arrays = np.asarray(arrays)
    if arrays.shape != (len(chips),):
        raise ValueError(f"arrays names {arrays.size} arrays for {len(chips)} chips: give the array of every chip")
    sizes, accs = [], []
    for budget in budgets:
        results = correct_circuits([None] * len(chips), dataset, corrector, chips=list(chips),  # type: ignore[list-item]
                                   n_calibration=budget, seed=seed)
        sizes.append(len(dataset.y_train) if budget is None else min(int(budget), len(dataset.y_train)))
        accs.append([r.accuracy_after for r in results])
    summary = [{"budget": size, **row} for size, acc in zip(sizes, accs) for row in summarize_per_array(acc, arrays)]
    return {"budget": np.array(sizes), "accuracy": np.array(accs), "array": arrays, "summary": summary}


@dataclass
class Selection:
    """Per chip: each candidate's validation accuracy, the candidate chosen on it, and that one's test answers."""

    names: list[str]
    n_parameters: np.ndarray
    validation_accuracy: np.ndarray
    chosen: np.ndarray
    correct_after: np.ndarray
    correct_before: np.ndarray

    @property
    def accuracy_after(self) -> np.ndarray:
        """Each chip's test accuracy with its chosen corrector."""
        return self.correct_after.mean(axis=1)

    @property
    def accuracy_before(self) -> np.ndarray:
        """Each chip's own test accuracy."""
        return self.correct_before.mean(axis=1)


def select_on_validation(chips: Sequence[ChipVoltages], dataset: Dataset,
                         candidates: dict[str, BatchedCorrector]) -> Selection:
    """Fit every candidate on every chip's training images; per chip keep the best on validation, report it on test.

    Ties on validation go to the candidate with fewer parameters, then to the earlier one. The
    test images play no part in the choice: only the chosen candidate's test answers are kept.
    """
    if not chips or not candidates:
        raise ValueError(f"got {len(chips)} chips and {len(candidates)} candidates: give at least one of each")
    dataset.validation()  # refuses a dataset without a validation part, naming how to make one
    names = list(candidates)
    val_acc, test_correct, sizes = [], [], []
    for name in names:
        batched = candidates[name].batched()
        x_fit = np.stack([chip.features(batched.features, "train") for chip in chips])
        batched.fit(x_fit, dataset.y_train, n_classes=dataset.n_classes)
        x_val = np.stack([chip.features(batched.features, "validation") for chip in chips])
        x_test = np.stack([chip.features(batched.features, "test") for chip in chips])
        val_acc.append((batched.predict(x_val) == dataset.y_val[None]).mean(axis=1))
        test_correct.append(batched.predict(x_test) == dataset.y_test[None])
        sizes.append(batched.n_parameters)
    val = np.array(val_acc).T  # [chips, candidates]
    sizes_arr = np.array(sizes)
    # lexicographic: highest validation accuracy, then fewest parameters, then candidate order
    rank = np.broadcast_to(np.arange(len(names)), val.shape)
    order = np.lexsort((rank, np.broadcast_to(sizes_arr, val.shape), -val), axis=1)
    chosen = order[:, 0]
    tests = np.array(test_correct)  # [candidates, chips, images]
    after = tests[chosen, np.arange(len(chips))]
    before = np.array([chip.correct(dataset.y_test) for chip in chips])
    return Selection(names=names, n_parameters=sizes_arr, validation_accuracy=val, chosen=chosen,
                     correct_after=after, correct_before=before)


def summarize(values: Sequence[float], seed: int = 0) -> dict[str, float]:
    """Median and mean over chips (or instances) with 95 % bootstrap intervals over them, quartiles, range, count.

    NaNs (chips without a result) are dropped; ``n_chips`` counts the rest.
    """
    v = np.asarray(values, dtype=float).ravel()
    v = v[~np.isnan(v)]
    if v.size == 0:
        nan2 = [math.nan, math.nan]
        return {"median": math.nan, "median_ci": nan2, "mean": math.nan, "mean_ci": nan2, "q25": math.nan,
                "q75": math.nan, "min": math.nan, "max": math.nan, "n_chips": 0}
    return {"median": float(np.median(v)), "median_ci": list(bootstrap_ci(v, np.median, seed=seed)),
            "mean": float(v.mean()), "mean_ci": list(bootstrap_ci(v, np.mean, seed=seed)),
            "q25": float(np.quantile(v, 0.25)), "q75": float(np.quantile(v, 0.75)),
            "min": float(v.min()), "max": float(v.max()), "n_chips": int(v.size)}


def summarize_per_array(values: Sequence[float], arrays: Sequence[int], seed: int = 0) -> list[dict[str, Any]]:
    """One ``summarize`` row per array (``{"array": a, ...}``), in array order: hard and easy arrays apart."""
    v, a = np.asarray(values, dtype=float).ravel(), np.asarray(arrays).ravel()
    if v.shape != a.shape:
        raise ValueError(f"got {v.size} values for {a.size} array labels: give the array of every chip")
    return [{"array": int(layer), **summarize(v[a == layer], seed)} for layer in np.unique(a)]


__all__ = ["STUDY_PATTERNS", "Selection", "SeverityPoint", "calibration_budget", "calibration_indices",
           "cross_defect_matrix", "make_defective", "select_on_validation", "severity_search", "summarize",
           "summarize_per_array", "unseen_chip_matrix"]
