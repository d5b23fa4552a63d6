"""The report chooses on validation and reports on test, with intervals and paired comparisons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neurodtco.report.data import (ReportData, choose_corrector, correction_by_array, headline_numbers)
from neurodtco.report.uncertainty import N_RESAMPLES, cluster_bootstrap_ci, mean_accuracy, paired_difference
from neurodtco.stats import bootstrap_ci, wilson_interval
from neurodtco.store import ResultStore

N_TEST = 200


def _row(cid, seed, pattern, kind, array, instance, corrector, hidden, params, acc, val, before, before_val=None):
    return {"circuit_id": cid, "network_seed": seed, "pattern": pattern, "kind": kind, "array": array,
            "severity": 0.1 if pattern != "none" else 0.0, "instance": instance, "corrector": corrector,
            "hidden": hidden, "n_parameters": params, "accuracy": acc, "n_correct": int(round(acc * N_TEST)),
            "n_test": N_TEST, "accuracy_validation": val, "n_validation": 100, "accuracy_before": before,
            "software_accuracy": 0.95}


def synthetic() -> pd.DataFrame:
    """Two networks, one array, two instances, on and off; two correctors: 'big' wins on test, 'small' on validation."""
    rows = []
    for seed in (0, 1):
        rows.append(_row(f"n{seed}-healthy-i0", seed, "none", "none", -1, 0, "none", 0, 0, 0.95, 0.95, 0.95))
        for kind, base in (("on", 0.50), ("off", 0.60)):
            for inst in (0, 1):
                before = base + 0.02 * inst + 0.01 * seed
                cid = f"n{seed}-random-{kind}-a0-s0.1-i{inst}"
                rows.append(_row(cid, seed, "random", kind, 0, inst, "none", 0, 0, before, before, before))
                rows.append(_row(cid, seed, "random", kind, 0, inst, "mlp", 4, 94, before + 0.30, before + 0.20, before))
                rows.append(_row(cid, seed, "random", kind, 0, inst, "mlp", 2, 52, before + 0.20, before + 0.25, before))
    return pd.DataFrame(rows)


def report_data(tmp_path, circuits: pd.DataFrame) -> ReportData:
    study = {"name": "s", "engine": "ideal", "circuit": {"r_word_ohm": 1.0}, "dataset": {"name": "digits"},
             "defects": {"patterns": ["random"], "kinds": ["on", "off"]}, "cross_defect": {"hidden": 4},
             "correctors": {"hidden": [2, 4], "options": {}}}
    return ReportData(tmp_path, study, circuits, pd.DataFrame(), pd.DataFrame(), ResultStore(tmp_path))


def test_the_best_corrector_is_chosen_on_validation_not_on_test(tmp_path):
    d = report_data(tmp_path, synthetic())
    c = d.circuits[(d.circuits["pattern"] != "none") & (d.circuits["corrector"] != "none")]
    assert choose_corrector(c) == ("mlp", 2, 52)  # h=4 is better on test, h=2 on validation
    rows = dict((k, (v, n)) for k, v, n in headline_numbers(d))
    best = next(k for k in rows if k.startswith("Best corrector"))
    assert "MLP h=2" in best and "chosen on the validation images" in rows[best][1]
    # ... and it is then reported on test: the mean test accuracy of h=2 (before + 0.20), with its interval.
    h2 = c[c["hidden"] == 2]
    assert f"{h2['accuracy'].mean():.1%}" in rows[best][0]
    per_array = correction_by_array(d)
    assert list(per_array["corrector"]) == ["MLP h=2"]
    assert per_array["gain_value"].item() == pytest.approx(0.20)
    assert per_array["gain_low"].item() == pytest.approx(0.20) == per_array["gain_high"].item()  # a constant gain


def test_the_largest_recovery_is_picked_by_its_validation_gain(tmp_path):
    df = synthetic()
    # One circuit gains most on test but little on validation: it must not be the one shown.
    trap = (df["circuit_id"] == "n0-random-on-a0-s0.1-i0") & (df["hidden"] == 2)
    df.loc[trap, ["accuracy", "n_correct", "accuracy_validation"]] = [0.99, int(0.99 * N_TEST), 0.51]
    rows = {k: (v, n) for k, v, n in headline_numbers(report_data(tmp_path, df))}
    value, note = rows["Largest recovery of a circuit at <= 55% (chosen on validation)"]
    assert not note.startswith("n0-random-on-a0-s0.1-i0,")
    assert note.startswith("n1-random-on-a0-s0.1-i0,") or note.startswith("n0-random-on-a0-s0.1-i1,")


def test_stuck_on_vs_off_is_a_paired_difference_over_both_networks(tmp_path):
    rows = {k: (v, n) for k, v, n in headline_numbers(report_data(tmp_path, synthetic()))}
    value, note = rows["Stuck-on minus stuck-off, mean test accuracy"]
    assert value == "-10.0 [-10.0, -10.0] points"  # on is exactly 10 points below off on every chip pair
    assert "4 chip pairs over 2 networks" in note


def test_one_chip_gets_the_wilson_interval_of_its_count():
    one = pd.DataFrame({"accuracy": [0.9], "n_correct": [180], "n_test": [200], "network_seed": [0]})
    e = mean_accuracy(one)
    assert (e.low, e.high) == pytest.approx(wilson_interval(180, 200))
    assert e.basis() == "1 chip over 1 network, 200 test images each"


def test_the_bootstrap_over_networks_carries_the_spread_between_networks():
    rng = np.random.default_rng(0)
    values = np.concatenate([0.6 + 0.01 * rng.standard_normal(20), 0.8 + 0.01 * rng.standard_normal(20)])
    clusters = [0] * 20 + [1] * 20
    flat = bootstrap_ci(values)
    two_level = cluster_bootstrap_ci(values, clusters)
    assert two_level[1] - two_level[0] > 3 * (flat[1] - flat[0])  # two networks far apart: wide interval
    assert cluster_bootstrap_ci(values[:20], clusters[:20]) == bootstrap_ci(values[:20], n_resamples=N_RESAMPLES)
    with pytest.raises(ValueError, match="one cluster per value"):
        cluster_bootstrap_ci(values, clusters[:5])


def test_a_paired_difference_needs_shared_chips():
    a = pd.Series([0.5, 0.6], index=["x", "y"])
    with pytest.raises(ValueError, match="share no chip"):
        paired_difference(a, pd.Series([0.5], index=["z"]))
    e = paired_difference(a, pd.Series([0.4, 0.5, 0.9], index=["x", "y", "z"]))
    assert e.value == pytest.approx(0.1) and e.n_chips == 2


def test_the_cross_defect_gap_is_paired_per_test_chip(tmp_path):
    rows = []
    for instance in range(3):
        for train in ("random", "column"):
            for test in ("random", "column"):
                acc = 0.9 if train == test else 0.5 + 0.1 * instance  # the gap shrinks from chip to chip
                rows.append({"task_id": "x", "network_seed": 0, "array": 0, "kind": "on", "severity": 0.1,
                             "instance": instance, "train_pattern": train, "test_pattern": test, "hidden": 4,
                             "n_parameters": 94, "accuracy": acc, "accuracy_before": 0.6})
    d = report_data(tmp_path, synthetic())
    d.study["defects"]["patterns"] = ["random", "column"]
    d.cross = pd.DataFrame(rows)
    note = dict((k, n) for k, _, n in headline_numbers(d))["Cross-defect: same pattern vs other patterns"]
    gaps = [0.4, 0.3, 0.2]  # per chip, the same for both test patterns
    low, high = bootstrap_ci(np.tile(gaps, 2))  # units in the order test pattern, then chip
    assert f"paired difference +30.0 [{low * 100:+.1f}, {high * 100:+.1f}] points" in note
