"""select_on_validation: candidates fitted per chip, one chosen on validation images, reported on test images."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neurodtco.correction import BatchedAffineCalibration, BatchedLogisticCorrector, LogisticCorrector
from neurodtco.correction.protocol import ChipVoltages
from neurodtco.correction.studies import select_on_validation
from neurodtco.data import Dataset

N_CLASSES = 10


def _dataset(seed: int = 0, n: tuple[int, int, int] = (400, 150, 150)) -> Dataset:
    rng = np.random.default_rng(seed)
    ys = [np.arange(k) % N_CLASSES for k in n]
    xs = [rng.random((k, 4)) for k in n]
    return Dataset(xs[0], rng.permutation(ys[0]), xs[1], rng.permutation(ys[1]), x_val=xs[2],
                   y_val=rng.permutation(ys[2]))


def _chip(dataset: Dataset, mixing: np.ndarray, seed: int, noise: float = 0.15) -> ChipVoltages:
    """Output voltages = one-hot(label) x mixing + noise: a defect that mixes the ten outputs linearly."""
    rng = np.random.default_rng(seed)

    def volts(y: np.ndarray) -> np.ndarray:
        return np.eye(N_CLASSES)[y] @ mixing + noise * rng.standard_normal((len(y), N_CLASSES))

    return ChipVoltages(volts(dataset.y_train), volts(dataset.y_test), (), (), outputs_val=volts(dataset.y_val))


def _candidates() -> dict:
    return {"logistic": BatchedLogisticCorrector(dtype="float64"), "affine": BatchedAffineCalibration(dtype="float64")}


@pytest.fixture(scope="module")
def setting():
    dataset = _dataset()
    rng = np.random.default_rng(1)
    # Chips 0-1: outputs permuted (a per-output gain cannot undo that, a full linear map can);
    # chips 2-3: healthy outputs (both candidates are perfect, so the smaller one must win).
    mixed = [_chip(dataset, np.eye(N_CLASSES)[rng.permutation(N_CLASSES)], seed=s) for s in (10, 11)]
    clean = [_chip(dataset, np.eye(N_CLASSES), seed=s, noise=0.05) for s in (12, 13)]
    return dataset, mixed + clean


def test_chooses_the_best_on_validation_and_reports_its_test_answers(setting):
    dataset, chips = setting
    sel = select_on_validation(chips, dataset, _candidates())
    assert sel.names == ["logistic", "affine"] and list(sel.n_parameters) == [110, 20]
    # chosen = highest validation accuracy per chip
    best = sel.validation_accuracy.max(axis=1)
    np.testing.assert_array_equal(sel.validation_accuracy[np.arange(4), sel.chosen], best)
    assert list(sel.chosen[:2]) == [0, 0]  # permuted outputs: logistic
    assert sel.validation_accuracy[0, 0] > 0.95 > 0.5 > sel.validation_accuracy[0, 1]
    # the reported answers are an independently fitted logistic corrector's on the test images
    single = LogisticCorrector(dtype="float64").fit(chips[0].outputs_train, dataset.y_train, n_classes=N_CLASSES)
    np.testing.assert_array_equal(sel.correct_after[0], single.predict(chips[0].outputs_test) == dataset.y_test)
    np.testing.assert_array_equal(sel.correct_before[0], chips[0].correct(dataset.y_test))
    assert sel.accuracy_after[0] > 0.95 and sel.accuracy_before[0] < 0.3


def test_ties_go_to_the_smaller_corrector(setting):
    dataset, chips = setting
    sel = select_on_validation(chips, dataset, _candidates())
    assert np.all(sel.validation_accuracy[2:] == 1.0)
    assert list(sel.chosen[2:]) == [1, 1]  # affine (20) over logistic (110), although listed second


def test_the_choice_never_reads_the_test_images(setting):
    dataset, chips = setting
    rng = np.random.default_rng(5)
    noisy = [dataclasses.replace(c, outputs_test=rng.standard_normal(c.outputs_test.shape)) for c in chips]
    a = select_on_validation(chips, dataset, _candidates())
    b = select_on_validation(noisy, dataset, _candidates())
    np.testing.assert_array_equal(a.chosen, b.chosen)
    np.testing.assert_array_equal(a.validation_accuracy, b.validation_accuracy)
    assert not np.array_equal(a.correct_after, b.correct_after)


def test_refuses_missing_validation_and_empty_inputs(setting):
    dataset, chips = setting
    no_val = dataclasses.replace(dataset, x_val=None, y_val=None)
    with pytest.raises(ValueError, match="validation"):
        select_on_validation(chips, no_val, _candidates())
    with pytest.raises(ValueError, match="0 candidates"):
        select_on_validation(chips, dataset, {})
    with pytest.raises(ValueError, match="0 chips"):
        select_on_validation([], dataset, _candidates())
