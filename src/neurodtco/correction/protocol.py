"""The correction protocol: measure a chip on labelled images, fit a corrector, judge it on others.

A chip is calibrated on the training images (or a class-balanced subset of them: on-chip
labelled data is expensive) and judged on the held-out test images of the same chip. The index
sets are recorded in every result, in the numbering of ``dataset.x_all`` (training images first,
then test images), so that anyone can check that no image is used for both.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..circuit import Circuit
from ..data import Dataset, to_voltages
from ..engines import Engine, get_engine
from .models import FEATURE_SETS, BatchedCorrector


@dataclass(frozen=True)
class ChipVoltages:
    """One chip's measured voltages on the training and the test images of a dataset."""

    outputs_train: np.ndarray
    outputs_test: np.ndarray
    hidden_train: tuple[np.ndarray, ...]
    hidden_test: tuple[np.ndarray, ...]

    def features(self, which: str, split: str) -> np.ndarray:
        """The corrector inputs ``[N, F]``: ``outputs``, ``outputs+hidden`` or ``last_hidden``."""
        if split not in ("train", "test"):
            raise ValueError(f"split={split!r} is not accepted: choose 'train' or 'test'")
        outputs = self.outputs_train if split == "train" else self.outputs_test
        hidden = self.hidden_train if split == "train" else self.hidden_test
        if which == "outputs":
            return outputs
        if which == "outputs+hidden":
            return np.concatenate([outputs, *hidden], axis=1)
        if which == "last_hidden":
            if not hidden:
                raise ValueError("features='last_hidden' needs a circuit with at least two layers")
            return hidden[-1]
        raise ValueError(f"features={which!r} is not accepted: choose one of {FEATURE_SETS}")

    def accuracy(self, labels: np.ndarray, split: str = "test") -> float:
        """The chip's own accuracy (argmax of its output voltages) on one split."""
        outputs = self.outputs_train if split == "train" else self.outputs_test
        return float(np.mean(outputs.argmax(axis=1) == np.asarray(labels)))


def measure_chip(circuit: Circuit, dataset: Dataset, engine: Union[str, Engine] = "nodal") -> ChipVoltages:
    """Simulate a chip on all of a dataset's images (one batch) and keep outputs and hidden voltages."""
    eng = get_engine(engine) if isinstance(engine, str) else engine
    x = to_voltages(dataset.x_all, circuit.input_scale_v)
    result = eng.run(circuit, x, return_hidden=True)
    n = len(dataset.y_train)
    outputs = np.asarray(result.outputs_v, dtype=np.float64)
    hidden = [np.asarray(h, dtype=np.float64) for h in (result.hidden_v or [])]
    return ChipVoltages(outputs[:n], outputs[n:], tuple(h[:n] for h in hidden), tuple(h[n:] for h in hidden))


def calibration_indices(labels: np.ndarray, n_images: Optional[int], seed: int = 0) -> np.ndarray:
    """A class-balanced, seeded subset of ``n_images`` positions in ``labels`` (all of them for None).

    Each class gets ``n_images // n_classes`` images, and the remainder goes to randomly chosen
    classes, so that even ten images show every digit once.
    """
    labels = np.asarray(labels)
    if n_images is None or n_images >= len(labels):
        if n_images is not None and n_images < 1:
            raise ValueError(f"n_images={n_images} must be >= 1")
        return np.arange(len(labels))
    if isinstance(n_images, bool) or not isinstance(n_images, (int, np.integer)) or n_images < 1:
        raise ValueError(f"n_images={n_images!r} is not accepted: expected a positive integer or None (all)")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    pools = {c: rng.permutation(np.flatnonzero(labels == c)) for c in classes}
    take = {c: min(n_images // len(classes), len(pools[c])) for c in classes}
    for c in rng.permutation(classes):
        if sum(take.values()) >= n_images:
            break
        if take[c] < len(pools[c]):
            take[c] += 1
    chosen = np.concatenate([pools[c][:take[c]] for c in classes])
    if len(chosen) < n_images:  # tiny classes: fill from what is left
        rest = np.setdiff1d(np.arange(len(labels)), chosen)
        chosen = np.concatenate([chosen, rng.choice(rest, n_images - len(chosen), replace=False)])
    return np.sort(chosen)


@dataclass
class CorrectionResult:
    """What correcting one chip achieved, judged on held-out test images of that chip."""

    accuracy_before: float
    accuracy_after: float
    healthy_accuracy: float
    n_parameters: int
    corrector_name: str
    features: str
    train_index: np.ndarray
    test_index: np.ndarray
    engine: str
    corrector: Any = None
    info: dict = field(default_factory=dict)

    @property
    def recovered_fraction(self) -> float:
        """Share of the lost accuracy won back: (after - before) / (healthy - before); NaN if nothing was lost."""
        lost = self.healthy_accuracy - self.accuracy_before
        if not math.isfinite(lost) or lost <= 0:
            return math.nan
        return (self.accuracy_after - self.accuracy_before) / lost

    @property
    def n_calibration(self) -> int:
        """Labelled images the corrector was fitted on."""
        return int(len(self.train_index))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (no arrays, no fitted model)."""
        return {"accuracy_before": self.accuracy_before, "accuracy_after": self.accuracy_after,
                "healthy_accuracy": self.healthy_accuracy, "recovered_fraction": self.recovered_fraction,
                "n_parameters": self.n_parameters, "corrector": self.corrector_name, "features": self.features,
                "n_calibration": self.n_calibration, "n_test": int(len(self.test_index)), "engine": self.engine,
                **self.info}


def _engine_name(engine: Union[str, Engine]) -> str:
    return engine if isinstance(engine, str) else getattr(engine, "name", type(engine).__name__)


def _healthy_accuracy(healthy: Union[Circuit, float, None], dataset: Dataset, engine: Union[str, Engine]) -> float:
    if healthy is None:
        return math.nan
    if isinstance(healthy, Circuit):
        return measure_chip(healthy, dataset, engine).accuracy(dataset.y_test)
    value = float(healthy)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"healthy={healthy!r} is not accepted: give the healthy circuit, or its accuracy in [0, 1]")
    return value


def correct_circuit(circuit: Circuit, dataset: Dataset, corrector: BatchedCorrector,
                    engine: Union[str, Engine] = "nodal", *, healthy: Union[Circuit, float, None] = None,
                    n_calibration: Optional[int] = None, seed: int = 0) -> CorrectionResult:
    """The protocol for one chip: simulate it, fit ``corrector`` on training images, judge it on test images.

    ``healthy`` (the defect-free circuit, or its accuracy) sets the reference for the recovered
    fraction; without it that fraction is NaN. ``n_calibration`` limits the labelled training
    images (class-balanced, seeded by ``seed``). The corrector is fitted in place and kept in
    the result.
    """
    if not isinstance(corrector, BatchedCorrector) or not corrector.single_chip:
        raise ValueError(f"corrector={corrector!r} is not accepted: pass a single-chip corrector such as "
                         "MLPCorrector(hidden=8); use correct_circuits for batched fits")
    start = time.perf_counter()
    chip = measure_chip(circuit, dataset, engine)
    t_sim = time.perf_counter() - start
    reference = _healthy_accuracy(healthy, dataset, engine)
    n_train = len(dataset.y_train)
    fit_rows = calibration_indices(dataset.y_train, n_calibration, seed)
    start = time.perf_counter()
    corrector.fit(chip.features(corrector.features, "train")[fit_rows], dataset.y_train[fit_rows],
                  n_classes=dataset.n_classes)
    t_fit = time.perf_counter() - start
    after = corrector.score(chip.features(corrector.features, "test"), dataset.y_test)
    return CorrectionResult(
        accuracy_before=chip.accuracy(dataset.y_test), accuracy_after=float(after), healthy_accuracy=reference,
        n_parameters=corrector.n_parameters, corrector_name=corrector.name, features=corrector.features,
        train_index=fit_rows, test_index=n_train + np.arange(len(dataset.y_test)), engine=_engine_name(engine),
        corrector=corrector,
        info={"timings": {"simulate_s": t_sim, "fit_s": t_fit}, "final_loss": corrector.final_loss})


def correct_circuits(circuits: Sequence[Circuit], dataset: Dataset, corrector: BatchedCorrector,
                     engine: Union[str, Engine] = "nodal", *, healthy: Union[Circuit, float, None] = None,
                     n_calibration: Optional[int] = None, seed: int = 0,
                     chips: Optional[Sequence[ChipVoltages]] = None) -> list[CorrectionResult]:
    """The protocol for many chips at once: one batched fit, one corrector per chip.

    ``corrector`` may be single-chip or batched; its batched twin is fitted. Pass ``chips``
    (from ``measure_chip``) to reuse simulations. Each chip gets its own class-balanced
    calibration subset (seed ``seed + k``) when ``n_calibration`` is set.
    """
    if chips is None:
        chips = [measure_chip(c, dataset, engine) for c in circuits]
    if len(chips) != len(circuits):
        raise ValueError(f"got {len(chips)} measured chips for {len(circuits)} circuits")
    if not chips:
        return []
    batched = corrector.batched()
    reference = _healthy_accuracy(healthy, dataset, engine)
    n_train = len(dataset.y_train)
    rows = [calibration_indices(dataset.y_train, n_calibration, seed + k) for k in range(len(chips))]
    x_fit = np.stack([chip.features(batched.features, "train")[r] for chip, r in zip(chips, rows)])
    y_fit = np.stack([dataset.y_train[r] for r in rows])
    start = time.perf_counter()
    batched.fit(x_fit, y_fit, n_classes=dataset.n_classes)
    t_fit = time.perf_counter() - start
    x_test = np.stack([chip.features(batched.features, "test") for chip in chips])
    after = batched.score(x_test, dataset.y_test)
    test_index = n_train + np.arange(len(dataset.y_test))
    return [CorrectionResult(
        accuracy_before=chip.accuracy(dataset.y_test), accuracy_after=float(after[k]), healthy_accuracy=reference,
        n_parameters=batched.n_parameters, corrector_name=batched.name, features=batched.features,
        train_index=rows[k], test_index=test_index, engine=_engine_name(engine), corrector=batched,
        info={"model_index": k, "timings": {"fit_s": t_fit / len(chips)}, "final_loss": float(batched.final_loss_[k])})
        for k, chip in enumerate(chips)]
