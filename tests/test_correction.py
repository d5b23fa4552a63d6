"""Correctors and the correction protocol: counts, exact batching, held-out gains, honest index sets."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from neurodtco.correction import (AffineCalibration, BatchedLogisticCorrector, BatchedMLPCorrector, LastLayerRetrain,
                                  LogisticCorrector, MLPCorrector, NotFittedError, calibration_indices,
                                  correct_circuit, correct_circuits, make_corrector, measure_chip)
from neurodtco.correction.cross import CrossDefectResult, cross_defect, cross_defect_figure, plot_cross_defect
from neurodtco.correction.protocol import ChipVoltages, CorrectionResult
from neurodtco.correction.studies import (calibration_budget, cross_defect_matrix, make_defective, severity_search,
                                          summarize, summarize_per_array, unseen_chip_matrix)
from neurodtco.defects import Defect, apply_defects

ENGINE = "nodal"


@pytest.fixture(scope="module")
def defective(default_circuit):
    """A clearly defective chip: 30 % of the bit lines of the third array stuck on (38 %)."""
    chip, record = apply_defects(default_circuit, [Defect(pattern="column", layers=(2,), kind="on", density=0.3)],
                                 seed=1)
    return chip, record


@pytest.fixture(scope="module")
def chip_voltages(defective, digits):
    """The defective chip measured on every image (exact nodal engine)."""
    return measure_chip(defective[0], digits, ENGINE)


def _blobs(k: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``k`` small 3-class problems with 4 features (each chip its own random shift)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    centres = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]])
    x = centres[y][None] + 0.4 * rng.standard_normal((k, n, 4)) + rng.standard_normal((k, 1, 4))
    return x, y


# ----- parameter counts: the published sizes ------------------------------------------------------

@pytest.mark.parametrize("hidden, expected", [(1, 31), (2, 52), (4, 94), (8, 178), (16, 346), (32, 682)])
def test_mlp_parameter_count_is_f_h_plus_h_plus_h_c_plus_c(hidden, expected):
    """10 -> h -> 10 has 10h + h + 10h + 10 numbers: 31 for h=1 and 178 for h=8, as published."""
    assert MLPCorrector(hidden=hidden).count_parameters(10, 10) == expected == 21 * hidden + 10


def test_baseline_parameter_counts(chip_voltages, digits):
    """Affine 20 (gain + offset per output), logistic 110, last layer 8 x 10 + 10 = 90."""
    assert AffineCalibration().count_parameters(10, 10) == 20
    assert LogisticCorrector().count_parameters(10, 10) == 110
    last = LastLayerRetrain(max_iter=5).fit(chip_voltages.features("last_hidden", "train"), digits.y_train)
    assert last.n_parameters == 90


# ----- exact batching and determinism -------------------------------------------------------------

def test_batched_fit_equals_independent_fits():
    """K models fitted together are the K models fitted one by one (same seed, same algorithm)."""
    x, y = _blobs(3, 120, seed=4)
    labels = np.stack([y, y[::-1], np.roll(y, 7)])
    batched = BatchedMLPCorrector(hidden=4, seed=3, max_iter=80, dtype="float64").fit(x, labels)
    for k in range(3):
        single = MLPCorrector(hidden=4, seed=3, max_iter=80, dtype="float64").fit(x[k], labels[k])
        for name, value in single.params_.items():
            np.testing.assert_allclose(batched.params_[name][k].numpy(), value[0].numpy(), rtol=0, atol=1e-10)
        np.testing.assert_array_equal(batched.predict(x)[k], single.predict(x[k]))


def test_same_seed_same_model_other_seed_other_model():
    """Fits are deterministic in the seed, and the seed matters."""
    x, y = _blobs(1, 90, seed=2)
    a = MLPCorrector(hidden=3, seed=5, max_iter=30).fit(x[0], y)
    b = MLPCorrector(hidden=3, seed=5, max_iter=30).fit(x[0], y)
    c = MLPCorrector(hidden=3, seed=6, max_iter=30).fit(x[0], y)
    np.testing.assert_array_equal(a.decision_function(x[0]), b.decision_function(x[0]))
    assert not np.allclose(a.decision_function(x[0]), c.decision_function(x[0]))


def test_adam_and_lbfgs_reach_the_same_convex_optimum():
    """Logistic regression is convex: L-BFGS reaches the optimum, Adam comes within 2 % of its loss,
    and both classify (nearly) alike."""
    x, y = _blobs(2, 150, seed=7)
    lbfgs = BatchedLogisticCorrector(max_iter=300, dtype="float64").fit(x, y)
    adam = BatchedLogisticCorrector(solver="adam", max_iter=1500, learning_rate=0.05, dtype="float64").fit(x, y)
    assert np.all(lbfgs.final_loss_ <= adam.final_loss_ + 1e-9)  # L-BFGS sits at the optimum
    np.testing.assert_allclose(adam.final_loss_, lbfgs.final_loss_, rtol=0.02)
    assert np.mean(adam.predict(x) == lbfgs.predict(x)) >= 0.98


def test_standardization_survives_a_pinned_output():
    """An output stuck at a rail (zero spread) must not turn the inputs into NaN."""
    x, y = _blobs(1, 60, seed=1)
    x[0, :, 2] = 0.2
    model = LogisticCorrector(max_iter=50).fit(x[0], y)
    assert np.all(np.isfinite(model.predict_proba(x[0])))
    np.testing.assert_allclose(model.predict_proba(x[0]).sum(axis=1), 1.0, atol=1e-9)


# ----- what the correctors can undo ----------------------------------------------------------------

def test_affine_calibration_undoes_a_per_output_gain_and_offset(default_circuit, digits):
    """Outputs distorted by a per-output gain and offset are exactly what the 20-parameter calibration
    can undo: it must bring a ruined chip back to about the healthy accuracy."""
    healthy = measure_chip(default_circuit, digits, ENGINE)
    rng = np.random.default_rng(0)
    gain, offset = rng.uniform(0.3, 3.0, 10), rng.uniform(-0.3, 0.3, 10)
    train, test = healthy.outputs_train * gain + offset, healthy.outputs_test * gain + offset
    distorted = np.mean(test.argmax(axis=1) == digits.y_test)
    fixed = AffineCalibration(max_iter=400).fit(train, digits.y_train).score(test, digits.y_test)
    ref = healthy.accuracy(digits.y_test)
    assert distorted < ref - 0.2  # the distortion really hurts
    assert fixed >= ref - 0.03


def test_last_layer_retrain_matches_the_healthy_last_layer(default_circuit, digits):
    """On a healthy chip the programmed last layer is one solution, so a retrain reaches its accuracy."""
    result = correct_circuit(default_circuit, digits, LastLayerRetrain(max_iter=300), engine=ENGINE,
                             healthy=default_circuit)
    assert result.features == "last_hidden"
    assert result.accuracy_after >= result.healthy_accuracy - 0.03


# ----- the protocol ---------------------------------------------------------------------------------

def test_corrector_fitted_on_a_chip_improves_its_held_out_accuracy(defective, digits, default_circuit):
    """The headline behaviour: a 178-parameter MLP fitted on one defective chip's training images
    raises that chip's accuracy on its own *test* images, which it never saw."""
    chip, _ = defective
    result = correct_circuit(chip, digits, MLPCorrector(hidden=8, seed=0), engine=ENGINE, healthy=default_circuit)
    assert result.accuracy_before <= 0.65  # clearly defective
    assert result.accuracy_after >= result.accuracy_before + 0.2
    assert result.n_parameters == 178
    n_train = len(digits.y_train)
    # Index sets are in x_all numbering (training images first): disjoint, and the test set is exactly
    # the held-out test images.
    assert set(result.train_index.tolist()).isdisjoint(result.test_index.tolist())
    assert result.train_index.max() < n_train <= result.test_index.min()
    np.testing.assert_array_equal(result.test_index, n_train + np.arange(len(digits.y_test)))
    # The reported accuracy is the corrector on freshly simulated test images only.
    fresh = measure_chip(chip, digits, ENGINE).outputs_test
    assert result.accuracy_after == pytest.approx(result.corrector.score(fresh, digits.y_test))
    expected = (result.accuracy_after - result.accuracy_before) / (result.healthy_accuracy - result.accuracy_before)
    assert result.recovered_fraction == pytest.approx(expected)


def test_calibration_subset_stays_inside_the_training_images(defective, digits):
    """With a calibration budget the corrector sees that many (class-balanced) training images, never a test one."""
    result = correct_circuit(defective[0], digits, LogisticCorrector(max_iter=100), engine=ENGINE, n_calibration=50,
                             seed=3)
    assert result.n_calibration == 50
    assert result.train_index.max() < len(digits.y_train)
    assert math.isnan(result.recovered_fraction)  # no healthy reference given


def test_batched_protocol_matches_single_chip_protocol(defective, chip_voltages, digits, default_circuit):
    """correct_circuits (one batched fit) gives each chip what correct_circuit gives it alone."""
    other, _ = make_defective(default_circuit, "random", 1, 0.15, instance=2)
    chips = [chip_voltages, measure_chip(other, digits, ENGINE)]
    fixer = LogisticCorrector(max_iter=150, dtype="float64")
    batch = correct_circuits([defective[0], other], digits, fixer, chips=chips, healthy=0.9)
    alone = correct_circuit(other, digits, LogisticCorrector(max_iter=150, dtype="float64"), engine=ENGINE, healthy=0.9)
    assert batch[1].accuracy_after == pytest.approx(alone.accuracy_after)
    assert batch[1].accuracy_before == pytest.approx(alone.accuracy_before)
    assert batch[0].corrector is batch[1].corrector  # one batched model set, indexed per chip
    assert [r.info["model_index"] for r in batch] == [0, 1]


def test_calibration_indices_are_class_balanced_and_seeded(digits):
    """Ten images show each digit once; the same seed gives the same subset; None means all."""
    ten = calibration_indices(digits.y_train, 10, seed=0)
    assert sorted(digits.y_train[ten].tolist()) == list(range(10))
    np.testing.assert_array_equal(ten, calibration_indices(digits.y_train, 10, seed=0))
    assert not np.array_equal(ten, calibration_indices(digits.y_train, 10, seed=1))
    counts = np.bincount(digits.y_train[calibration_indices(digits.y_train, 55, seed=2)], minlength=10)
    assert counts.sum() == 55 and counts.min() == 5 and counts.max() == 6
    assert len(calibration_indices(digits.y_train, None)) == len(digits.y_train)


# ----- studies ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_val(digits):
    """The default split with 180 validation images held out of training (for the choosing functions).

    The default network saw these images in training; the tests below check the mechanics of a
    choice, not a reported number, so that is harmless here.
    """
    from neurodtco.data import split_validation

    return split_validation(digits, 180, seed=0)


def test_severity_search_lands_in_the_band(default_circuit, digits_val):
    """Bisection finds a density whose median validation accuracy lies in 40-60 %, and accuracy falls with density."""
    point = severity_search(default_circuit, digits_val, "random", 3, engine="ideal", instances=range(3))
    assert point.in_range and 0.4 <= point.median_accuracy <= 0.6
    assert len(point.chips) == 3
    # The accuracies it chose on are the chips' validation accuracies; the test ones are reported apart.
    np.testing.assert_allclose(point.accuracies, [c.accuracy(digits_val.y_val, "validation") for c in point.chips])
    np.testing.assert_allclose(point.test_accuracies(digits_val), [c.accuracy(digits_val.y_test) for c in point.chips])
    medians = [m for _, m in point.steps]
    assert medians[0] >= medians[-1]  # lowest density tried is the most accurate


def test_severity_search_never_reads_the_test_images(default_circuit, digits_val, digits):
    """The choice is the same when the test part is replaced by noise with shuffled labels, and a
    dataset without a validation part is refused (the search must not fall back on the test images)."""
    import dataclasses
    import inspect

    rng = np.random.default_rng(0)
    scrambled = dataclasses.replace(digits_val, x_test=rng.random(digits_val.x_test.shape),
                                    y_test=rng.permutation(digits_val.y_test))
    a = severity_search(default_circuit, digits_val, "column", 2, engine="ideal", instances=range(2))
    b = severity_search(default_circuit, scrambled, "column", 2, engine="ideal", instances=range(2))
    assert a.density == b.density and a.steps == b.steps
    np.testing.assert_array_equal(a.accuracies, b.accuracies)
    with pytest.raises(ValueError, match="no validation part.*split_validation"):
        severity_search(default_circuit, digits, "column", 2, engine="ideal", instances=range(2))
    for choose in (severity_search, calibration_indices):  # choosing functions take no test data at all
        assert not [p for p in inspect.signature(choose).parameters if "test" in p], choose.__name__


def test_chip_voltages_hold_the_validation_images(default_circuit, digits_val, chip_voltages):
    """measure_chip simulates the validation part too, in one batch, and each split reads its own images."""
    from neurodtco.engines import simulate

    chip = measure_chip(default_circuit, digits_val, "ideal")
    alone = simulate(default_circuit, digits_val.x_val * default_circuit.input_scale_v, engine="ideal")
    np.testing.assert_allclose(chip.outputs_val, alone.outputs_v, atol=1e-12)
    assert chip.features("outputs+hidden", "validation").shape == (180, 10 + 24)
    assert chip.accuracy(digits_val.y_val, "validation") == pytest.approx(alone.accuracy(digits_val.y_val))
    assert chip.correct(digits_val.y_test).shape == (180,)
    with pytest.raises(ValueError, match="measured without validation images"):
        chip_voltages.accuracy(digits_val.y_val, "validation")
    with pytest.raises(ValueError, match="split='val' is not accepted: choose one of train, validation, test"):
        chip.features("outputs", "val")


def test_summaries_carry_bootstrap_intervals_over_chips_and_stay_per_array():
    from neurodtco.stats import bootstrap_ci

    values = [0.40, 0.52, 0.47, math.nan, 0.61, 0.55]
    s = summarize(values)
    finite = [v for v in values if not math.isnan(v)]
    assert s["n_chips"] == 5 and s["median"] == pytest.approx(0.52) and s["mean"] == pytest.approx(np.mean(finite))
    assert s["median_ci"] == list(bootstrap_ci(finite, np.median)) and s["mean_ci"] == list(bootstrap_ci(finite))
    assert s["median_ci"][0] <= s["median"] <= s["median_ci"][1] and s["mean_ci"][0] <= s["mean"] <= s["mean_ci"][1]
    assert summarize([math.nan])["n_chips"] == 0
    rows = summarize_per_array([0.9, 0.8, 0.3, 0.2, 0.25], [1, 1, 0, 0, 0])
    assert [r["array"] for r in rows] == [0, 1] and [r["n_chips"] for r in rows] == [3, 2]
    assert rows[0]["median"] == pytest.approx(0.25) and rows[1]["median"] == pytest.approx(0.85)
    with pytest.raises(ValueError, match="5 values for 4 array labels"):
        summarize_per_array([0.9, 0.8, 0.3, 0.2, 0.25], [1, 1, 0, 0])


def test_calibration_budget_is_summarized_per_array(chip_voltages, digits):
    fixer = LogisticCorrector(max_iter=40)
    out = calibration_budget([chip_voltages, chip_voltages, chip_voltages], digits, fixer, (10, None),
                             arrays=[2, 2, 0])
    assert out["accuracy"].shape == (2, 3) and list(out["budget"]) == [10, len(digits.y_train)]
    assert [(r["budget"], r["array"], r["n_chips"]) for r in out["summary"]] == [
        (10, 0, 1), (10, 2, 2), (len(digits.y_train), 0, 1), (len(digits.y_train), 2, 2)]
    assert out["summary"][1]["median"] == pytest.approx(np.median(out["accuracy"][0, :2]))
    with pytest.raises(ValueError, match="arrays names 2 arrays for 3 chips"):
        calibration_budget([chip_voltages] * 3, digits, fixer, (10,), arrays=[0, 1])


def test_unseen_chip_matrix_refuses_training_chips_in_test(chip_voltages, digits):
    """Unseen-chip generalization must be judged on other chips: the same chip on both sides is refused."""
    with pytest.raises(ValueError, match="both in training and in test"):
        unseen_chip_matrix({"column": [chip_voltages]}, {"column": [chip_voltages]}, digits, LogisticCorrector())


def test_cross_defect_diagonal_is_the_per_chip_protocol(default_circuit, digits):
    """Entry (A, A) trains and judges on the same chip (held-out images): it must equal what the
    per-chip protocol reports for those chips; the matrix has a mixture row and the uncorrected row."""
    def chips(pattern, layer, density):
        return [measure_chip(make_defective(default_circuit, pattern, layer, density, i)[0], digits, "ideal")
                for i in (0, 1)]
    paired = {"column": chips("column", 2, 0.3), "random": chips("random", 2, 0.1)}
    fixer = LogisticCorrector(max_iter=150, dtype="float64")
    result = cross_defect_matrix(paired, digits, fixer)
    assert result.accuracy.shape == (3, 2) and result.train_types[-1] == "mixture"
    for j, name in enumerate(("column", "random")):
        alone = correct_circuits([None, None], digits, fixer, chips=paired[name])
        assert result.accuracy[j, j] == pytest.approx(np.mean([r.accuracy_after for r in alone]))
        assert result.before[j] == pytest.approx(np.mean([r.accuracy_before for r in alone]))
    assert "| mixture |" in result.to_markdown()


def _synthetic_chips(types: int, chips: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Voltages ``[types, chips, images, 5]`` of a 4-class problem, each chip with its own offset."""
    rng = np.random.default_rng(seed)
    y_train, y_test = rng.integers(0, 4, 60), rng.integers(0, 4, 30)
    centres = rng.standard_normal((4, 5))
    shift = rng.standard_normal((types, chips, 1, 5))
    x_train = centres[y_train] + 0.9 * rng.standard_normal((types, chips, 60, 5)) + shift
    x_test = centres[y_test] + 0.9 * rng.standard_normal((types, chips, 30, 5)) + shift
    return x_train, y_train, x_test, y_test


def _fixer() -> LogisticCorrector:
    return LogisticCorrector(max_iter=60, dtype="float64")


def _single(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> float:
    """One single-chip fit judged on one chip: the old per-entry formula."""
    return _fixer().fit(x, y, n_classes=4).score(x_test, y_test)


def test_cross_defect_by_position_equals_a_per_entry_loop_of_single_chip_fits():
    """Entry (A, B) is the mean over i of the corrector fitted on chip (A, i) alone, judged on chip (B, i);
    the mixture corrector i is fitted on chip i of every type together."""
    x, y, xt, yt = _synthetic_chips(3, 2, seed=3)
    before = (xt.argmax(axis=3) == yt).mean(axis=2)
    result = cross_defect(x, y, xt, yt, lambda role: _fixer().batched(), types=["a", "b", "c"], before=before,
                          n_classes=4)
    expected = np.zeros((4, 3, 2))
    for b in range(3):
        for i in range(2):
            for a in range(3):
                expected[a, b, i] = _single(x[a, i], y, xt[b, i], yt)
            expected[3, b, i] = _single(np.concatenate(x[:, i]), np.tile(y, 3), xt[b, i], yt)
    np.testing.assert_allclose(result.chip_accuracy, expected, atol=1e-12)
    np.testing.assert_allclose(result.accuracy, expected.mean(axis=2), atol=1e-12)
    np.testing.assert_allclose(result.before, before.mean(axis=1))
    assert result.train_types == ["a", "b", "c", "mixture"] and result.n_parameters == 24
    assert (result.n_train_chips, result.n_test_chips) == (1, 2)


def test_cross_defect_pooled_equals_single_fits_on_pooled_chips_and_a_balanced_mixture():
    """Pooled: type A's corrector sees all its training chips and is judged on every test chip; the mixture
    sees as many rows as one type, drawn with the seed from every type's rows."""
    x, y, _, _ = _synthetic_chips(2, 3, seed=4)
    _, _, xt, yt = _synthetic_chips(2, 2, seed=5)
    before = (xt.argmax(axis=3) == yt).mean(axis=2)
    result = cross_defect(x, y, xt, yt, lambda role: _fixer().batched(), types=["a", "b"], before=before,
                          pairing="pooled", seed=7, n_classes=4)
    all_x = np.concatenate([x[t, i] for t in range(2) for i in range(3)])
    rows = np.sort(np.random.default_rng(7).choice(len(all_x), 3 * 60, replace=False))
    for b in range(2):
        for i in range(2):
            for a in range(2):
                assert result.chip_accuracy[a, b, i] == pytest.approx(
                    _single(np.concatenate(x[a]), np.tile(y, 3), xt[b, i], yt), abs=1e-12)
            assert result.chip_accuracy[2, b, i] == pytest.approx(
                _single(all_x[rows], np.tile(y, 6)[rows], xt[b, i], yt), abs=1e-12)
    assert (result.n_train_chips, result.n_test_chips) == (3, 2)


def test_cross_defect_matrix_and_unseen_chips_are_the_core_on_stacked_chips(digits):
    """The ChipVoltages front ends stack the chips' features and give the core's numbers."""
    x, y, xt, yt = _synthetic_chips(2, 2, seed=6)
    fake = type("D", (), {"y_train": y, "y_test": yt, "n_classes": 4})()
    chips = {t: [ChipVoltages(x[k, i], xt[k, i], (), ()) for i in range(2)] for k, t in enumerate("ab")}
    before = (xt.argmax(axis=3) == yt).mean(axis=2)
    direct = cross_defect(x, y, xt, yt, lambda role: _fixer().batched(), types=["a", "b"], before=before, n_classes=4)
    np.testing.assert_array_equal(cross_defect_matrix(chips, fake, _fixer()).chip_accuracy, direct.chip_accuracy)
    other = {t: [ChipVoltages(x[k, i] + 0.1, xt[k, i], (), ()) for i in range(2)] for k, t in enumerate("ab")}
    unseen = unseen_chip_matrix(other, chips, fake, _fixer(), seed=2)
    assert unseen.accuracy.shape == (3, 2) and unseen.n_train_chips == 2
    with pytest.raises(ValueError, match=r"same number \(>= 1\) of chips; got \{'a': 2, 'b': 1\}"):
        unseen_chip_matrix({"a": other["a"], "b": other["b"][:1]}, chips, fake, _fixer())


def test_cross_defect_refuses_unpaired_chips_and_bad_pairing():
    x, y, xt, yt = _synthetic_chips(2, 2, seed=1)
    before = np.zeros((2, 1))
    with pytest.raises(ValueError, match="2 and 1 chips per type"):
        cross_defect(x, y, xt[:, :1], yt, lambda role: _fixer().batched(), types=["a", "b"], before=before)
    with pytest.raises(ValueError, match="pairing='diagonal'"):
        cross_defect(x, y, xt, yt, lambda role: _fixer().batched(), types=["a", "b"], before=before,
                     pairing="diagonal")  # type: ignore[arg-type]


def _hand_result() -> CrossDefectResult:
    chip_accuracy = np.arange(3 * 2 * 4, dtype=float).reshape(3, 2, 4) / 24
    chip_before = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]])
    return CrossDefectResult(["x", "y", "mixture"], ["x", "y"], chip_accuracy.mean(axis=2), chip_before.mean(axis=1),
                             31, 1, 4, chip_accuracy, chip_before)


def test_cross_defect_result_goes_to_a_table_and_back_in_any_row_order():
    """The study stores the long table; the report rebuilds the matrix from it, rows shuffled or not."""
    result = _hand_result()
    chips = pd.DataFrame({"array": [0, 0, 1, 1], "instance": [0, 1, 0, 1]})
    table = result.to_table(chips)
    assert len(table) == 3 * 2 * 4
    row = table[(table["train_pattern"] == "y") & (table["test_pattern"] == "x") & (table["array"] == 1)
                & (table["instance"] == 0)]
    assert row["accuracy"].item() == result.chip_accuracy[1, 0, 2] and row["accuracy_before"].item() == 0.3
    back = CrossDefectResult.from_table(table.sample(frac=1.0, random_state=0), types=["x", "y"])
    np.testing.assert_array_equal(back.chip_accuracy, result.chip_accuracy)
    np.testing.assert_array_equal(back.chip_before, result.chip_before)
    np.testing.assert_allclose(back.accuracy, result.accuracy)
    assert back.train_types == result.train_types and back.n_parameters == 31 and back.n_test_chips == 4
    assert CrossDefectResult.from_dict(result.to_dict()).to_dict() == result.to_dict()
    both = CrossDefectResult.average([result, back])  # equal chip counts: the chips are pooled
    assert both.chip_accuracy.shape == (3, 2, 8) and both.n_test_chips == 8
    np.testing.assert_allclose(both.accuracy, both.chip_accuracy.mean(axis=2))
    with pytest.raises(ValueError, match="misses 1 entries"):
        CrossDefectResult.from_table(table.iloc[1:])


def test_the_heatmap_shows_the_matrix_and_the_uncorrected_row(tmp_path):
    result = _hand_result()
    fig = cross_defect_figure(result)
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), 100 * np.vstack([result.accuracy, result.before]))
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["x", "y", "mixture", "uncorrected"]
    path = plot_cross_defect(result, tmp_path / "sub" / "cross.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ----- bad input -------------------------------------------------------------------------------------

def test_bad_settings_and_inputs_are_refused_with_the_value():
    """Nonsense gets a ValueError naming it; use before fit is a clear error."""
    with pytest.raises(ValueError, match="hidden=0"):
        MLPCorrector(hidden=0)
    with pytest.raises(ValueError, match="features='pixels'"):
        MLPCorrector(features="pixels")
    with pytest.raises(ValueError, match="corrector 'svm'"):
        make_corrector("svm")
    with pytest.raises(NotFittedError):
        MLPCorrector().predict(np.zeros((2, 10)))
    with pytest.raises(ValueError, match=r"\[N images, F features\]"):
        MLPCorrector().fit(np.zeros((2, 3, 10)), np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="non-finite"):
        BatchedLogisticCorrector().fit(np.full((1, 4, 2), np.nan), np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="single-chip corrector"):
        correct_circuit(None, None, BatchedMLPCorrector())  # type: ignore[arg-type]


def test_result_to_dict_is_json_ready_with_intervals_and_a_paired_comparison():
    """The summary has the keys the CLI promises, each accuracy with its Wilson interval, and the
    gain as a paired comparison on the same images; it serialises."""
    from neurodtco.stats import mcnemar_exact, wilson_interval

    before = np.arange(40) % 2 == 0                      # 20 of 40 right
    after = before | (np.arange(40) % 4 == 1)            # 10 more right, none lost
    healthy = np.arange(40) < 36                         # 36 of 40
    result = CorrectionResult(before, after, 0.9, 178, "mlp", "outputs", np.arange(3), 100 + np.arange(40), "nodal",
                              healthy_correct=healthy)
    payload = result.to_dict()
    assert payload["accuracy_before"] == 0.5 and payload["accuracy_after"] == 0.75 and payload["n_test"] == 40
    assert payload["accuracy_before_ci"] == list(wilson_interval(20, 40))
    assert payload["accuracy_after_ci"] == list(wilson_interval(30, 40))
    assert payload["healthy_accuracy_ci"] == list(wilson_interval(36, 40))
    assert payload["difference"] == pytest.approx(0.25) and payload["mcnemar_p"] == mcnemar_exact(after, before)
    assert 0 < payload["difference_ci"][0] < 0.25 < payload["difference_ci"][1]
    assert payload["recovered_fraction"] == pytest.approx(0.25 / 0.4)
    json.dumps(payload)
    assert "healthy_accuracy_ci" not in CorrectionResult(before, after, 0.9, 1, "m", "outputs", np.arange(3),
                                                         np.arange(40), "nodal").to_dict()


# ----- command line ----------------------------------------------------------------------------------

def test_cli_correct_json(tmp_path):
    """`neurodtco correct --defect ... --json` ends with one JSON object with the promised keys."""
    from typer.testing import CliRunner

    from neurodtco.cli import app

    out = CliRunner().invoke(app, ["correct", "--defect", "column:layer=2,density=0.3,kind=on", "--defect-seed", "1",
                                   "--corrector", "logistic", "--max-iter", "150", "--json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("accuracy_before", "accuracy_after", "n_parameters", "accuracy_healthy", "recovered_fraction",
                "difference", "difference_ci", "mcnemar_p"):
        assert key in payload
    from neurodtco.stats import wilson_interval

    n = payload["n_test"]
    assert n == 180
    for name in ("accuracy_before", "accuracy_after", "accuracy_healthy"):
        low, high = payload[f"{name}_ci"]
        assert low <= payload[name] <= high
        assert [low, high] == pytest.approx(list(wilson_interval(round(payload[name] * n), n)))
    assert payload["difference"] == pytest.approx(payload["accuracy_after"] - payload["accuracy_before"])
    assert payload["mcnemar_p"] < 0.05  # a clear gain on 180 paired images
    assert payload["n_parameters"] == 110
    assert payload["accuracy_after"] > payload["accuracy_before"]
    bad = CliRunner().invoke(app, ["correct", "--corrector", "affine", "--with-hidden"])
    assert bad.exit_code == 2
