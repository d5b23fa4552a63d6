"""Correctors and the correction protocol: counts, exact batching, held-out gains, honest index sets."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from neurodtco.correction import (AffineCalibration, BatchedLogisticCorrector, BatchedMLPCorrector, LastLayerRetrain,
                                  LogisticCorrector, MLPCorrector, NotFittedError, calibration_indices,
                                  correct_circuit, correct_circuits, make_corrector, measure_chip)
from neurodtco.correction.protocol import CorrectionResult
from neurodtco.correction.studies import cross_defect_matrix, make_defective, severity_search, unseen_chip_matrix
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

def test_severity_search_lands_in_the_band(default_circuit, digits):
    """Bisection finds a density whose median accuracy lies in 40-60 %, and accuracy falls with density."""
    point = severity_search(default_circuit, digits, "random", 3, engine="ideal", instances=range(3))
    assert point.in_range and 0.4 <= point.median_accuracy <= 0.6
    assert len(point.chips) == 3
    medians = [m for _, m in point.steps]
    assert medians[0] >= medians[-1]  # lowest density tried is the most accurate


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


def test_result_to_dict_is_json_ready():
    """The summary has the keys the CLI promises and serialises."""
    result = CorrectionResult(0.5, 0.8, 0.9, 178, "mlp", "outputs", np.arange(3), np.arange(3, 5), "nodal")
    payload = result.to_dict()
    assert payload["recovered_fraction"] == pytest.approx(0.75)
    json.dumps(payload)


# ----- command line ----------------------------------------------------------------------------------

def test_cli_correct_json(tmp_path):
    """`neurodtco correct --defect ... --json` ends with one JSON object with the promised keys."""
    from typer.testing import CliRunner

    from neurodtco.cli import app

    out = CliRunner().invoke(app, ["correct", "--defect", "column:layer=2,density=0.3,kind=on", "--defect-seed", "1",
                                   "--corrector", "logistic", "--max-iter", "150", "--json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("accuracy_before", "accuracy_after", "n_parameters", "accuracy_healthy", "recovered_fraction"):
        assert key in payload
    assert payload["n_parameters"] == 110
    assert payload["accuracy_after"] > payload["accuracy_before"]
    bad = CliRunner().invoke(app, ["correct", "--corrector", "affine", "--with-hidden"])
    assert bad.exit_code == 2
