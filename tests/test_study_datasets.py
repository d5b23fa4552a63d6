"""Studies on Fashion-MNIST: the dataset key, the correctors' training images, and a network that must fit."""

from __future__ import annotations

import pytest

from neurodtco.data import load_fashion_mnist
from neurodtco.store import load_results
from neurodtco.study import SerialExecutor, parse_study, run_study

SMALL = {"name": "fashion-small", "engine": "ideal",
         "dataset": {"name": "fashion-mnist", "n_train": 300},
         "network": {"widths": [784, 6, 10], "epochs": 1},
         "defects": {"patterns": ["random"], "kinds": ["on"], "arrays": [1], "severities": [0.2]},
         "correctors": {"hidden": [4], "options": {"max_iter": 20}}}


def test_a_fashion_study_judges_on_the_official_test_images_and_fits_on_n_train(tmp_path):
    study = parse_study(SMALL)
    whole = study.dataset.load()
    data = study.dataset.for_correctors(whole)
    official = load_fashion_mnist(seed=0)
    assert len(whole.y_train) == 55_000  # the network trains on the whole training part
    assert len(data.y_train) == 300 and (data.x_train == whole.x_train[:300]).all()
    assert (data.x_test == official.x_test).all()
    summary = run_study(study, tmp_path / "out", executor=SerialExecutor())
    assert summary.ok
    table = load_results(tmp_path / "out")
    assert set(table["pattern"]) == {"none", "random"}
    info_images = summary.n_inferences // summary.n_circuits
    assert info_images == 300 + 10_000  # every circuit reads the correctors' training images and the test set


def test_a_network_that_does_not_fit_the_dataset_is_refused_by_name(tmp_path):
    bad = {**SMALL, "network": {"widths": [64, 8, 10], "epochs": 1}}
    with pytest.raises(ValueError, match=r"network.widths \[64, 8, 10\] do not fit the fashion-mnist images"):
        run_study(parse_study(bad), tmp_path / "out", executor=SerialExecutor())


def test_a_cnn_study_maps_the_lowered_network_with_tiles_and_caches_its_training(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURODTCO_CACHE", str(tmp_path / "cache"))
    spec = {**SMALL, "name": "fashion-cnn-small", "network": {"arch": "cnn", "epochs": 1},
            "circuit": {"tile_rows": 64, "tile_cols": 32},
            "defects": {"patterns": ["ring"], "kinds": ["on"], "arrays": [2], "severities": [0.1]}}
    study = parse_study(spec)
    first = run_study(study, tmp_path / "a", executor=SerialExecutor())
    assert first.ok
    cached = list((tmp_path / "cache").glob("cnn_*.pt"))
    assert len(cached) == 1  # trained once, then reused
    table = load_results(tmp_path / "a")
    healthy = table[(table["pattern"] == "none") & (table["corrector"] == "none")]
    # the ideal circuit of the CNN decides as the software network does, on every official test image
    assert float(healthy["accuracy"].iloc[0]) == pytest.approx(float(healthy["software_accuracy"].iloc[0]), abs=1e-12)
    second = run_study(study, tmp_path / "b", executor=SerialExecutor())
    assert second.ok and list((tmp_path / "cache").glob("cnn_*.pt")) == cached


def test_a_run_reports_the_training_of_its_network_epoch_by_epoch(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURODTCO_CACHE", str(tmp_path / "cache"))
    spec = {"name": "train-progress", "engine": "ideal", "network": {"widths": [64, 4, 10], "epochs": 3},
            "defects": {"patterns": ["random"], "kinds": ["on"], "arrays": [1], "severities": [0.2]},
            "correctors": {"hidden": [2], "options": {"max_iter": 5}}}
    stages = []
    run_study(parse_study(spec), tmp_path / "out", executor=SerialExecutor(), progress=lambda p: stages.append(p.stage))
    assert [s for s in stages if s.startswith("training")] == [f"training the network, epoch {e} of 3" for e in (1, 2, 3)]
    assert stages[-1] == "running"
