"""Studies choose on validation images and report on test ones; several network seeds; physical densities."""

from __future__ import annotations

import numpy as np
import pytest

from neurodtco.store import load_results
from neurodtco.study import SerialExecutor, StudyFileError, circuit_points, expand_tasks, load_study, parse_study, run_study


def tiny(**changes) -> dict:
    data = {"name": "tiny", "engine": "ideal", "network": {"widths": [64, 6, 10], "epochs": 15},
            "defects": {"patterns": ["random"], "kinds": ["on", "off"], "arrays": [0], "severities": [0.3],
                        "instances": 2},
            "correctors": {"hidden": [3], "options": {"max_iter": 20}}}
    data.update(changes)
    return data


def test_digits_hold_a_stratified_validation_part_out_of_training_before_the_network_trains():
    spec = parse_study(tiny()).dataset
    data = spec.load()
    x_val, y_val = data.validation()
    assert len(y_val) == 180 and len(data.y_test) == 180 and len(data.y_train) == 1797 - 360
    assert np.bincount(y_val).min() >= 17  # stratified: every digit about a tenth of the part
    rows = {tuple(r) for r in data.x_train}
    assert not any(tuple(r) in rows for r in x_val[:60])  # no validation image is a training image
    # The network cache is keyed by the dataset's name: a network trained on all training images
    # (before the validation part existed) is never taken for this one.
    assert data.name == "digits-val180"
    assert parse_study(tiny(dataset={"n_validation": 90})).dataset.load().name == "digits-val90"
    with pytest.raises(StudyFileError, match="n_validation"):
        parse_study(tiny(dataset={"n_validation": 3}))


def test_default_and_builtin_grids_span_the_physical_densities():
    assert parse_study({"name": "d"}).defects.severities == [0.001, 0.01, 0.1]
    for name in ("demo", "quick", "fashion-cnn", "reviewed"):
        sev = load_study(name).defects.severities
        assert min(sev) >= 0.001 and max(sev) <= 0.1, (name, sev)
    assert load_study("demo").n_circuits <= 672  # the demo keeps its size (and its few minutes on 2 cores)


def test_the_reviewed_study_carries_five_networks_by_five_instances():
    study = load_study("reviewed")
    assert len(study.network.network_seeds) >= 5 and study.defects.instances >= 5
    assert study.dataset.name == "digits" and study.dataset.validation_size > 0


def test_network_seeds_repeat_the_grid_per_network_on_the_same_chips():
    one = parse_study(tiny())
    many = parse_study(tiny(network={"widths": [64, 6, 10], "epochs": 15, "seeds": [3, 5]}))
    assert many.n_circuits == 2 * one.n_circuits
    points = circuit_points(many)
    assert [p.circuit_id for p in points if p.is_healthy] == ["n3-healthy-i0", "n5-healthy-i0"]
    by_seed = {s: [(p.pattern, p.kind, p.instance, p.defect_seed) for p in points if p.network_seed == s
                   and not p.is_healthy] for s in (3, 5)}
    assert by_seed[3] == by_seed[5]  # the same chips on every network: network comparisons are paired
    assert [p.defect_seed for p in circuit_points(one) if not p.is_healthy] == [d for *_, d in by_seed[3]]
    ids = [t.id for t in expand_tasks(many, "fp")]
    assert len(ids) == len(set(ids)) and any(i.startswith("c-n5-random") for i in ids)
    with pytest.raises(StudyFileError, match="lists a seed twice"):
        parse_study(tiny(network={"seeds": [1, 1]}))
    with pytest.raises(StudyFileError, match="a model file is one trained network"):
        parse_study(tiny(network={"model": "m.pt", "seeds": [1, 2]}))


def test_a_study_with_two_network_seeds_keys_its_rows_by_seed(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURODTCO_CACHE", str(tmp_path / "cache"))
    study = parse_study(tiny(network={"widths": [64, 6, 10], "epochs": 15, "seeds": [0, 1]}))
    assert run_study(study, tmp_path / "out", executor=SerialExecutor()).ok
    df = load_results(tmp_path / "out")
    raw = df[df["corrector"] == "none"]
    assert sorted(raw["network_seed"].unique()) == [0, 1]
    per_seed = raw.groupby("network_seed")
    assert (per_seed.size() == 1 + one_network_circuits(study)).all()
    soft = per_seed["software_accuracy"].nunique()
    assert (soft == 1).all()
    assert raw.groupby("network_seed")["software_accuracy"].first().nunique() == 2  # two different networks
    # Every row says how many test images its accuracy counts, and the count gives the accuracy.
    assert (df["n_correct"] / df["n_test"]).to_numpy() == pytest.approx(df["accuracy"].to_numpy())


def one_network_circuits(study) -> int:
    return study.n_circuits // len(study.network.network_seeds)
