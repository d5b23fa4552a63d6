"""The studies behind the correction results: severity search, cross-defect matrix, calibration budget.

* ``severity_search``: for one pattern on one array, the defect density whose median test accuracy
  over several instances lands in a target band (40-60 % by default), by bisection.
* ``cross_defect_matrix``: one corrector per defect type, trained on chips with that type and judged on
  *other* chips (held-out instances) of every type, plus one trained on a mixture of all types.
* ``calibration_budget``: accuracy after correction against the number of labelled images per chip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..circuit import Circuit
from ..data import Dataset
from ..engines import Engine, get_engine
from .models import BatchedCorrector
from .protocol import ChipVoltages, calibration_indices, correct_circuits, measure_chip

#: The seven pattern types of the published study (``clustered`` is ours, not in the matrix).
STUDY_PATTERNS = ("random", "circular", "circular_complement", "ring", "row", "column", "checkerboard")
_GEOMETRIC = ("circular", "circular_complement", "ring")


def defect_instance(pattern: str, layer: int, density: float, instance: int, kind: str = "on") -> Any:
    """One instance of a pattern on one array: discs and rings get a seeded random centre in the
    middle half of the array, the checkerboard a shifted phase; the rest is random through the seed."""
    from ..defects import Defect

    params: dict[str, Any] = {}
    if pattern in _GEOMETRIC:
        rng = np.random.default_rng([instance, 7])
        params["center"] = tuple(float(c) for c in rng.uniform(0.25, 0.75, size=2))
    if pattern == "checkerboard":
        params["phase"] = int(instance)
    return Defect(pattern=pattern, layers=(int(layer),), kind=kind, density=float(density), params=params)


def make_defective(circuit: Circuit, pattern: str, layer: int, density: float, instance: int,
                   kind: str = "on") -> tuple[Circuit, Any]:
    """The chip of one defect instance and its record (seed = ``instance``)."""
    from ..defects import apply_defects

    return apply_defects(circuit, [defect_instance(pattern, layer, density, instance, kind)], seed=int(instance))


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
                    target: tuple[float, float] = (0.4, 0.6), max_steps: int = 12) -> SeverityPoint:
    """Bisect the defect density until the instances' median test accuracy lies in ``target``.

    Assumes accuracy falls as density grows (true on average; an instance may not follow). When no
    density lands in the band (patterns that hit whole lines move in steps), the density whose median
    is closest to the band's centre is kept and ``in_range`` is False. The chips (all images
    simulated) at the chosen density come back for the correction runs.
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
            chip_circuit, record = make_defective(circuit, pattern, layer, density, instance, kind)
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


@dataclass
class CrossDefectResult:
    """Accuracy of correctors trained on one defect type (rows) on chips of another (columns)."""

    train_types: list[str]
    test_types: list[str]
    accuracy: np.ndarray
    before: np.ndarray
    n_parameters: int
    n_train_chips: int
    n_test_chips: int

    def to_markdown(self, digits: int = 1) -> str:
        """The matrix as a Markdown table (percent), with the uncorrected accuracy as the last row."""
        head = "| trained on \\ tested on | " + " | ".join(self.test_types) + " |"
        lines = [head, "|" + "---|" * (len(self.test_types) + 1)]
        for name, row in zip(self.train_types, self.accuracy):
            lines.append(f"| {name} | " + " | ".join(f"{100 * v:.{digits}f}" for v in row) + " |")
        lines.append("| (no correction) | " + " | ".join(f"{100 * v:.{digits}f}" for v in self.before) + " |")
        return "\n".join(lines)

    @staticmethod
    def average(results: Sequence["CrossDefectResult"]) -> "CrossDefectResult":
        """Entry-wise mean of matrices over the same defect types (e.g. one matrix per array)."""
        if not results:
            raise ValueError("nothing to average: give at least one CrossDefectResult")
        first = results[0]
        for r in results[1:]:
            if r.train_types != first.train_types or r.test_types != first.test_types:
                raise ValueError("matrices to average must have the same rows and columns")
        return CrossDefectResult(first.train_types, first.test_types,
                                 np.mean([r.accuracy for r in results], axis=0),
                                 np.mean([r.before for r in results], axis=0), first.n_parameters,
                                 first.n_train_chips, sum(r.n_test_chips for r in results))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CrossDefectResult":
        """Inverse of ``to_dict``."""
        return cls(list(data["train_types"]), list(data["test_types"]), np.asarray(data["accuracy"]),
                   np.asarray(data["before"]), int(data["n_parameters"]), int(data["n_train_chips"]),
                   int(data["n_test_chips"]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"train_types": self.train_types, "test_types": self.test_types,
                "accuracy": self.accuracy.tolist(), "before": self.before.tolist(),
                "n_parameters": self.n_parameters, "n_train_chips": self.n_train_chips,
                "n_test_chips": self.n_test_chips}


def cross_defect_matrix(chips: dict[str, Sequence[ChipVoltages]], dataset: Dataset, corrector: BatchedCorrector,
                        *, mixture: bool = True) -> CrossDefectResult:
    """Train a corrector on one chip of defect type A, judge it on a chip of type B (the published 7x7).

    ``chips[type]`` lists chips aligned by position (e.g. instance ``i`` of every type on the same
    array): the corrector fitted on ``chips[A][i]``'s training images is judged on ``chips[B][i]``'s
    test images, and entry (A, B) is the mean over ``i``. The diagonal is the per-chip protocol (same
    chip, held-out images). The mixture corrector ``i`` is fitted on the training images of
    ``chips[*][i]`` of every type together, and judged on each.
    """
    types = list(chips)
    counts = {len(v) for v in chips.values()}
    if not types or len(counts) != 1 or 0 in counts:
        raise ValueError(f"every defect type needs the same number (>= 1) of chips; got "
                         f"{ {t: len(v) for t, v in chips.items()} }")
    n = counts.pop()
    batched = corrector.batched()
    feats = batched.features
    x_fit = np.stack([chips[t][i].features(feats, "train") for t in types for i in range(n)])
    batched.fit(x_fit, dataset.y_train, n_classes=dataset.n_classes)
    m = len(dataset.y_test)
    accuracy = np.zeros((len(types) + int(mixture), len(types)))
    for j, target in enumerate(types):
        # Model (A, i) reads chip (B, i): the batch is rebuilt so that model k sees its partner chip.
        x_test = np.stack([chips[target][i].features(feats, "test") for _ in types for i in range(n)])
        scores = batched.score(x_test, dataset.y_test).reshape(len(types), n)
        accuracy[:len(types), j] = scores.mean(axis=1)
    if mixture:
        mix = corrector.batched()
        x_mix = np.stack([np.concatenate([chips[t][i].features(feats, "train") for t in types]) for i in range(n)])
        mix.fit(x_mix, np.tile(dataset.y_train, len(types)), n_classes=dataset.n_classes)
        for j, target in enumerate(types):
            x_test = np.stack([chips[target][i].features(feats, "test") for i in range(n)])
            accuracy[-1, j] = mix.score(x_test, dataset.y_test).mean()
    before = np.array([np.mean([c.accuracy(dataset.y_test) for c in chips[t]]) for t in types])
    names = types + (["mixture"] if mixture else [])
    return CrossDefectResult(train_types=names, test_types=types, accuracy=accuracy, before=before,
                             n_parameters=batched.n_parameters, n_train_chips=1, n_test_chips=n)


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
    for name in types:
        if not train[name] or not test[name]:
            raise ValueError(f"defect type {name!r} has no training or no test chips")
        ids = {id(c) for c in train[name]} & {id(c) for c in test[name]}
        if ids:
            raise ValueError(f"defect type {name!r}: a chip is both in training and in test; use other instances")
    batched = corrector.batched()
    feats = batched.features
    pooled = {name: np.concatenate([c.features(feats, "train") for c in train[name]]) for name in types}
    labels = {name: np.tile(dataset.y_train, len(train[name])) for name in types}
    n_rows = min(len(v) for v in pooled.values())
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for name in types:  # equal rows per model: subsample types with more chips
        rows = np.sort(rng.choice(len(pooled[name]), n_rows, replace=False)) if len(pooled[name]) > n_rows \
            else np.arange(n_rows)
        xs.append(pooled[name][rows])
        ys.append(labels[name][rows])
    names = list(types)
    if mixture:
        all_x = np.concatenate([pooled[n] for n in types])
        all_y = np.concatenate([labels[n] for n in types])
        rows = np.sort(rng.choice(len(all_x), n_rows, replace=False))
        xs.append(all_x[rows])
        ys.append(all_y[rows])
        names.append("mixture")
    batched.fit(np.stack(xs), np.stack(ys), n_classes=dataset.n_classes)
    test_x = np.concatenate([c.features(feats, "test") for name in types for c in test[name]])
    pred = batched.predict(np.broadcast_to(test_x, (len(names), *test_x.shape)))
    m = len(dataset.y_test)
    accuracy = np.zeros((len(names), len(types)))
    before = np.zeros(len(types))
    start = 0
    for j, name in enumerate(types):
        count = len(test[name]) * m
        truth = np.tile(dataset.y_test, len(test[name]))
        accuracy[:, j] = (pred[:, start:start + count] == truth).mean(axis=1)
        before[j] = np.mean([c.accuracy(dataset.y_test) for c in test[name]])
        start += count
    return CrossDefectResult(train_types=names, test_types=types, accuracy=accuracy, before=before,
                             n_parameters=batched.n_parameters,
                             n_train_chips=int(np.mean([len(train[n]) for n in types])),
                             n_test_chips=int(np.mean([len(test[n]) for n in types])))


def plot_cross_defect(result: CrossDefectResult, path: Union[str, Path], title: Optional[str] = None) -> Path:
    """Heatmap of the cross-defect matrix (accuracy in percent), written with matplotlib's Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [*result.train_types, "no correction"]
    data = 100 * np.vstack([result.accuracy, result.before[None]])
    fig, ax = plt.subplots(figsize=(1.0 * len(result.test_types) + 3, 0.55 * len(rows) + 2))
    image = ax.imshow(data, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(result.test_types)), result.test_types, rotation=35, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.axhline(len(result.train_types) - 0.5, color="white", lw=2)
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            ax.text(j, i, f"{data[i, j]:.0f}", ha="center", va="center",
                    color="black" if data[i, j] > 60 else "white", fontsize=8)
    ax.set_xlabel("defect type of the test chips")
    ax.set_ylabel("corrector trained on")
    ax.set_title(title or f"test accuracy (%) after a {result.n_parameters}-parameter corrector")
    fig.colorbar(image, ax=ax, label="accuracy (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


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


__all__ = ["STUDY_PATTERNS", "CrossDefectResult", "SeverityPoint", "calibration_budget", "calibration_indices",
           "cross_defect_matrix", "defect_instance", "unseen_chip_matrix", "make_defective", "plot_cross_defect", "severity_search",
           "summarize"]
