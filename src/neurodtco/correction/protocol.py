"""The correction protocol: measure a chip on labelled images, fit a corrector, judge it on others.

A chip is calibrated on the training images (or a class-balanced subset of them: on-chip
labelled data is expensive) and judged on the held-out test images of the same chip. Any choice
(a severity, a corrector's size or iterations) is made on the validation images
(``ChipVoltages.accuracy(labels, split="validation")``); the test images are only reported, each
accuracy with its Wilson interval and the before/after gain as a paired comparison on the same
images. The index sets are recorded in every result, in the numbering of ``dataset.x_all``
(training images first, then test images), so that anyone can check that no image is used for both.
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
from ..stats import accuracy_interval, paired_accuracy_comparison, with_ci
from .models import FEATURE_SETS, BatchedCorrector

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class ChipVoltages:
    """One chip's measured voltages on the training, the test and (when the dataset has one) the validation images."""

    outputs_train: np.ndarray
    outputs_test: np.ndarray
    hidden_train: tuple[np.ndarray, ...]
    hidden_test: tuple[np.ndarray, ...]
    outputs_val: Optional[np.ndarray] = None
    hidden_val: tuple[np.ndarray, ...] = ()

    def _part(self, split: str) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """Outputs and hidden voltages of one split."""
        if split not in SPLITS:
            raise ValueError(f"split={split!r} is not accepted: choose one of {', '.join(SPLITS)}")
        if split == "train":
            return self.outputs_train, self.hidden_train
        if split == "test":
            return self.outputs_test, self.hidden_test
        if self.outputs_val is None:
            raise ValueError("this chip was measured without validation images: measure it on a dataset that has a "
                             "validation part (split_validation(dataset, n_validation, seed), or load_digits(n_validation=...))")
        return self.outputs_val, self.hidden_val

    def features(self, which: str, split: str) -> np.ndarray:
        """The corrector inputs ``[N, F]``: ``outputs``, ``outputs+hidden`` or ``last_hidden``."""
        outputs, hidden = self._part(split)
        if which == "outputs":
            return outputs
        if which == "outputs+hidden":
            return np.concatenate([outputs, *hidden], axis=1)
        if which == "last_hidden":
            if not hidden:
                raise ValueError("features='last_hidden' needs a circuit with at least two layers")
            return hidden[-1]
        raise ValueError(f"features={which!r} is not accepted: choose one of {FEATURE_SETS}")

    def correct(self, labels: np.ndarray, split: str = "test") -> np.ndarray:
        """Whether the chip's own decision (argmax of its output voltages) is right, per image of one split."""
        return self._part(split)[0].argmax(axis=1) == np.asarray(labels)

    def accuracy(self, labels: np.ndarray, split: str = "test") -> float:
        """The chip's own accuracy on one split (choose on ``validation``, report ``test``)."""
        return float(np.mean(self.correct(labels, split)))


def measure_chip(circuit: Circuit, dataset: Dataset, engine: Union[str, Engine] = "nodal") -> ChipVoltages:
    """Simulate a chip on all of a dataset's images (one batch) and keep outputs and hidden voltages."""
    eng = get_engine(engine) if isinstance(engine, str) else engine
    parts = [dataset.x_train, dataset.x_test] + ([dataset.x_val] if dataset.x_val is not None else [])
    result = eng.run(circuit, to_voltages(np.concatenate(parts), circuit.input_scale_v), return_hidden=True)
    cut = np.cumsum([len(p) for p in parts])[:-1]
    outputs = np.split(np.asarray(result.outputs_v, dtype=np.float64), cut)
    hidden = [np.split(np.asarray(h, dtype=np.float64), cut) for h in (result.hidden_v or [])]
    validation = {"outputs_val": outputs[2], "hidden_val": tuple(h[2] for h in hidden)} if len(parts) == 3 else {}
    return ChipVoltages(outputs[0], outputs[1], tuple(h[0] for h in hidden), tuple(h[1] for h in hidden), **validation)


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
    """What correcting one chip achieved, judged on held-out test images of that chip.

    ``correct_before`` and ``correct_after`` say per test image whether the chip alone and the
    chip with its corrector were right: the accuracies, their intervals and the paired comparison
    all come from them.
    """

    correct_before: np.ndarray
    correct_after: np.ndarray
    healthy_accuracy: float
    n_parameters: int
    corrector_name: str
    features: str
    train_index: np.ndarray
    test_index: np.ndarray
    engine: str
    corrector: Any = None
    info: dict = field(default_factory=dict)
    healthy_correct: Optional[np.ndarray] = None

    @property
    def accuracy_before(self) -> float:
        """The chip's own accuracy on the test images."""
        return float(np.mean(self.correct_before))

    @property
    def accuracy_after(self) -> float:
        """The corrected chip's accuracy on the test images."""
        return float(np.mean(self.correct_after))

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

    def comparison(self) -> dict[str, Any]:
        """After versus before on the same test images: ``difference``, its ``difference_ci`` and McNemar's ``mcnemar_p``."""
        paired = paired_accuracy_comparison(self.correct_after, self.correct_before)
        return {key: paired[key] for key in ("difference", "difference_ci", "mcnemar_p")}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (no arrays, no fitted model): every accuracy with its ``_ci`` and ``n_test``."""
        out = with_ci("accuracy_before", *accuracy_interval(self.correct_before))
        with_ci("accuracy_after", *accuracy_interval(self.correct_after), out=out)
        if self.healthy_correct is not None:
            with_ci("healthy_accuracy", *accuracy_interval(self.healthy_correct), out=out)
        else:
            out["healthy_accuracy"] = self.healthy_accuracy
        return {**out, **self.comparison(), "recovered_fraction": self.recovered_fraction,
                "n_parameters": self.n_parameters, "corrector": self.corrector_name, "features": self.features,
                "n_calibration": self.n_calibration, "n_test": int(len(self.test_index)), "engine": self.engine,
                **self.info}


def _engine_name(engine: Union[str, Engine]) -> str:
    return engine if isinstance(engine, str) else getattr(engine, "name", type(engine).__name__)


def _healthy_reference(healthy: Union[Circuit, float, None], dataset: Dataset,
                       engine: Union[str, Engine]) -> tuple[float, Optional[np.ndarray]]:
    """The healthy chip's test accuracy and, when it is simulated here, its per-image correctness."""
    if healthy is None:
        return math.nan, None
    if isinstance(healthy, Circuit):
        correct = measure_chip(healthy, dataset, engine).correct(dataset.y_test)
        return float(correct.mean()), correct
    value = float(healthy)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"healthy={healthy!r} is not accepted: give the healthy circuit, or its accuracy in [0, 1]")
    return value, None


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
    reference, healthy_correct = _healthy_reference(healthy, dataset, engine)
    n_train = len(dataset.y_train)
    fit_rows = calibration_indices(dataset.y_train, n_calibration, seed)
    start = time.perf_counter()
    corrector.fit(chip.features(corrector.features, "train")[fit_rows], dataset.y_train[fit_rows],
                  n_classes=dataset.n_classes)
    t_fit = time.perf_counter() - start
    after = corrector.predict(chip.features(corrector.features, "test")) == dataset.y_test
    return CorrectionResult(
        correct_before=chip.correct(dataset.y_test), correct_after=after, healthy_accuracy=reference,
        n_parameters=corrector.n_parameters, corrector_name=corrector.name, features=corrector.features,
        train_index=fit_rows, test_index=n_train + np.arange(len(dataset.y_test)), engine=_engine_name(engine),
        corrector=corrector, healthy_correct=healthy_correct,
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
    reference, healthy_correct = _healthy_reference(healthy, dataset, engine)
    n_train = len(dataset.y_train)
    rows = [calibration_indices(dataset.y_train, n_calibration, seed + k) for k in range(len(chips))]
    x_fit = np.stack([chip.features(batched.features, "train")[r] for chip, r in zip(chips, rows)])
    y_fit = np.stack([dataset.y_train[r] for r in rows])
    start = time.perf_counter()
    batched.fit(x_fit, y_fit, n_classes=dataset.n_classes)
    t_fit = time.perf_counter() - start
    x_test = np.stack([chip.features(batched.features, "test") for chip in chips])
    after = batched.predict(x_test) == dataset.y_test[None]
    test_index = n_train + np.arange(len(dataset.y_test))
    return [CorrectionResult(
        correct_before=chip.correct(dataset.y_test), correct_after=after[k], healthy_accuracy=reference,
        n_parameters=batched.n_parameters, corrector_name=batched.name, features=batched.features,
        train_index=rows[k], test_index=test_index, engine=_engine_name(engine), corrector=batched,
        healthy_correct=healthy_correct,
        info={"model_index": k, "timings": {"fit_s": t_fit / len(chips)}, "final_loss": float(batched.final_loss_[k])})
        for k, chip in enumerate(chips)]
