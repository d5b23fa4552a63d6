"""The population corrector: synthetic chips with known distortions, leave-one-pattern-out bookkeeping, checks."""

from __future__ import annotations

import numpy as np
import pytest

from neurodtco.correction import BatchedLogisticCorrector
from neurodtco.correction.cross import POPULATION, CrossDefectResult, cross_defect_figure
from neurodtco.correction.population import PopulationCorrector
from neurodtco.correction.population_study import (ChipSet, ChipSpec, evaluate_population, leave_one_pattern_out,
                                                   population_cross_matrix)
from neurodtco.correction.protocol import ChipVoltages
from neurodtco.data import Dataset

C = 10


def healthy_outputs(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Outputs of a healthy chip: the true class's output high, noise on all (about 97 % correct)."""
    return 1.0 * np.eye(C)[labels] + 0.25 * rng.standard_normal((len(labels), C))


def distort(h: np.ndarray, rng: np.random.Generator, mixing: float) -> np.ndarray:
    """A known affine distortion per chip: per-output gain and offset, plus mixing of the outputs."""
    gain = np.exp(rng.uniform(-1.0, 1.0, C))
    offset = rng.uniform(-1.5, 1.5, C)
    mix = np.eye(C) + mixing * rng.standard_normal((C, C))
    return (h @ mix.T) * gain + offset


def synthetic_chips(n_chips: int, n: int, m: int, seed: int, mixing: float) -> tuple[np.ndarray, ...]:
    """Voltages ``[K, n, C]`` / ``[K, m, C]`` of chips with their own distortions, and the labels."""
    rng = np.random.default_rng(seed)
    y_train, y_test = rng.integers(0, C, n), rng.integers(0, C, m)
    x_train, x_test = [], []
    for _ in range(n_chips):
        chip_rng = np.random.default_rng(rng.integers(1 << 31))
        state = chip_rng.bit_generator.state
        x_train.append(distort(healthy_outputs(y_train, rng), chip_rng, mixing))
        chip_rng.bit_generator.state = state  # the same distortion on the test images
        x_test.append(distort(healthy_outputs(y_test, rng), chip_rng, mixing))
    return np.stack(x_train), y_train, np.stack(x_test), y_test


def small_model(**kwargs) -> PopulationCorrector:
    return PopulationCorrector(hidden=16, signature_images=100, draws=2, rows_per_chip=200, max_iter=150, **kwargs)


def test_known_affine_distortions_recover_near_the_oracle_with_few_labels():
    x_pop, y_pop, _, _ = synthetic_chips(30, 400, 10, seed=1, mixing=0.15)
    x_tr, y_tr, x_te, y_te = synthetic_chips(12, 400, 400, seed=2, mixing=0.15)
    model = small_model().fit(x_pop, y_pop, n_classes=C)
    before = (x_te.argmax(axis=2) == y_te).mean()
    oracle = BatchedLogisticCorrector().fit(x_tr, y_tr, n_classes=C).score(x_te, y_te).mean()
    assert before < 0.6 and oracle > 0.9  # a real loss, and a real recovery to match
    share = {}
    for k in (20, 50):
        adapted = model.adapt(x_tr[:, 200:], x_tr[:, :k], y_tr[:k], prior=0.3)
        share[k] = (adapted.score(x_te, y_te).mean() - before) / (oracle - before)
    assert share[20] >= 0.75 and share[50] >= 0.85 and share[50] > share[20]
    assert adapted.n_parameters == 2 * C + C * C + C


def test_k0_adapts_from_unlabelled_voltages_alone():
    # Gains and offsets only: the chip's own output statistics undo them, no label needed.
    x_pop, y_pop, _, _ = synthetic_chips(30, 400, 10, seed=3, mixing=0.0)
    x_tr, _, x_te, y_te = synthetic_chips(10, 400, 400, seed=4, mixing=0.0)
    model = small_model().fit(x_pop, y_pop, n_classes=C)
    adapted = model.adapt(x_tr[:, :100])
    before = (x_te.argmax(axis=2) == y_te).mean()
    after = adapted.score(x_te, y_te).mean()
    assert before < 0.6
    assert after > 0.9
    assert adapted.n_parameters == 2 * C  # the signature only


def test_reference_outputs_fit_a_head_without_labels():
    x_pop, y_pop, _, _ = synthetic_chips(30, 400, 10, seed=1, mixing=0.3)
    rng = np.random.default_rng(9)
    y_tr = rng.integers(0, C, 400)
    healthy = healthy_outputs(y_tr, rng)
    chip_rng = np.random.default_rng(5)
    x_tr = distort(healthy, chip_rng, 0.3)[None]
    model = small_model().fit(x_pop, y_pop, n_classes=C)
    plain = model.adapt(x_tr[:, :200]).score(x_tr[:, 200:], y_tr[200:])[0]
    ref = model.adapt(x_tr[:, :200], reference=healthy[:200], prior=2.0).score(x_tr[:, 200:], y_tr[200:])[0]
    assert ref > plain + 0.05 and ref > 0.8


def chip_set(patterns: list[str], per: int, first: int, y_train: np.ndarray, y_test: np.ndarray,
             seed: int) -> ChipSet:
    rng = np.random.default_rng(seed)
    specs, chips = [], []
    for pattern in patterns:
        for i in range(per):
            chip_rng = np.random.default_rng(rng.integers(1 << 31))
            state = chip_rng.bit_generator.state
            tr = distort(healthy_outputs(y_train, rng), chip_rng, 0.2)
            chip_rng.bit_generator.state = state
            te = distort(healthy_outputs(y_test, rng), chip_rng, 0.2)
            specs.append(ChipSpec(pattern, 0, 0.1, first + i))
            chips.append(ChipVoltages(tr, te, (), ()))
    return ChipSet(specs, chips)


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(0)
    y_train, y_test = np.tile(np.arange(C), 30), rng.integers(0, C, 60)
    dataset = Dataset(np.zeros((len(y_train), 2)), y_train, np.zeros((len(y_test), 2)), y_test)
    patterns = ["a", "b", "c"]
    return (dataset, chip_set(patterns, 4, 100, y_train, y_test, 1), chip_set(patterns, 2, 200, y_train, y_test, 2),
            chip_set(patterns, 3, 0, y_train, y_test, 3))


def test_leave_one_pattern_out_never_trains_on_the_held_out_pattern(toy):
    dataset, train, val, test = toy
    seen: list[np.ndarray] = []

    class Spy(PopulationCorrector):
        def fit(self, X, y, n_classes=None):
            seen.append(np.asarray(X))
            return super().fit(X, y, n_classes)

    def make() -> PopulationCorrector:
        return Spy(hidden=4, signature_images=50, draws=1, rows_per_chip=50, max_iter=5)

    result = leave_one_pattern_out(train, val, test, dataset, make, budgets=(0, 10), priors=(1.0,))
    assert result.patterns == ["a", "b", "c"]
    outputs = train.outputs("train")
    for held, x in zip(result.patterns, seen):
        assert not any(cid.startswith(held + "/") for cid in result.train_ids[held])
        others = [i for i, s in enumerate(train.specs) if s.pattern != held]
        assert result.train_ids[held] == [train.specs[i].chip_id for i in others]
        np.testing.assert_array_equal(x, outputs[others])  # the rows fitted are those chips' voltages
    assert [s.pattern for s in result.specs] == ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    assert result.accuracy.shape == (2, 9)
    rows = result.table()
    assert rows[0]["accuracy_ci"][0] <= rows[0]["accuracy"] <= rows[0]["accuracy_ci"][1]

    matrix = population_cross_matrix(train, val, test, dataset, result, 10, make, priors=(1.0,))
    assert matrix.train_types == ["a", "b", "c", POPULATION]
    np.testing.assert_allclose(matrix.accuracy[-1], result.accuracy[1].reshape(3, 3).mean(axis=1))
    np.testing.assert_allclose(matrix.before, result.before.reshape(3, 3).mean(axis=1))
    back = CrossDefectResult.from_table(matrix.to_table())  # the study store's long table keeps the row
    assert back.train_types == matrix.train_types
    np.testing.assert_allclose(back.accuracy, matrix.accuracy)
    assert cross_defect_figure(matrix).axes[0].get_yticklabels()[3].get_text() == POPULATION


def test_test_chips_may_not_be_training_chips(toy):
    dataset, train, val, _ = toy
    with pytest.raises(ValueError, match="both in training"):
        leave_one_pattern_out(train, val, train, dataset, budgets=(0,))


@pytest.mark.parametrize("k", [-1, 301, 2.5])
def test_bad_budget_is_refused_with_the_accepted_range(toy, k):
    dataset, train, val, test = toy
    model = PopulationCorrector(hidden=4, signature_images=50, draws=1, rows_per_chip=50, max_iter=3)
    model.fit(train.outputs("train"), dataset.y_train)
    with pytest.raises(ValueError, match=r"budget k=.* \[0, 300\]"):
        evaluate_population(model, val, test, dataset, [k])


def test_adapt_checks_its_inputs(toy):
    dataset, train, _, _ = toy
    x = train.outputs("train")
    model = PopulationCorrector(hidden=4, signature_images=50, draws=1, rows_per_chip=50, max_iter=3)
    with pytest.raises(RuntimeError, match="not fitted"):
        model.adapt(x[:, :50])
    model.fit(x, dataset.y_train)
    with pytest.raises(ValueError, match="together"):
        model.adapt(x[:, :50], labels=dataset.y_train[:10])
    with pytest.raises(ValueError, match="5 outputs per image but the corrector was fitted on 10"):
        model.adapt(x[:, :50, :5])
    with pytest.raises(ValueError, match="signature_images=500 exceeds"):
        PopulationCorrector(signature_images=500).fit(x, dataset.y_train)
    with pytest.raises(ValueError, match="hidden=0"):
        PopulationCorrector(hidden=0)
