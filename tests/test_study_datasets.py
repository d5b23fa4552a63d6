"""Studies on Fashion-MNIST: the dataset key, the correctors' training images, and a network that must fit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neurodtco.data import load_fashion_mnist
from neurodtco.network import cached_fit, make_config
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
    assert info_images == 300 + 5_000 + 10_000  # every circuit reads the training, validation and test images


def test_a_network_that_does_not_fit_the_dataset_is_refused_by_name(tmp_path):
    bad = {**SMALL, "network": {"widths": [64, 8, 10], "epochs": 1}}
    with pytest.raises(ValueError, match=r"network.widths \[64, 8, 10\] do not fit the fashion-mnist images"):
        run_study(parse_study(bad), tmp_path / "out", executor=SerialExecutor())


def small_fashion(n: int = 600):
    """Fashion-MNIST with only its first ``n`` training images: enough to train a CNN for a test in seconds."""
    data = load_fashion_mnist(seed=0)
    return dataclasses.replace(data, x_train=data.x_train[:n], y_train=data.y_train[:n], x_test=data.x_test[:n],
                               y_test=data.y_test[:n], x_val=data.x_val[:n], y_val=data.y_val[:n])


def test_an_architecture_is_trained_once_per_recipe_and_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURODTCO_CACHE", str(tmp_path / "cache"))
    data = small_fashion()
    first = cached_fit(data, make_config("cnn", data, epochs=1, seed=0))
    files = list((tmp_path / "cache").glob("cnn_*.pt"))
    assert len(files) == 1
    again = cached_fit(data, make_config("cnn", data, epochs=1, seed=0))
    assert list((tmp_path / "cache").glob("cnn_*.pt")) == files
    np.testing.assert_array_equal(again.logits(data.x_test[:50]), first.logits(data.x_test[:50]))
    cached_fit(data, make_config("cnn", data, epochs=2, seed=0))  # another recipe, another network
    assert len(list((tmp_path / "cache").glob("cnn_*.pt"))) == 2


def test_a_cnn_study_maps_the_lowered_network_onto_tiles(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURODTCO_CACHE", str(tmp_path / "cache"))
    data = small_fashion()
    model = tmp_path / "cnn.pt"
    cached_fit(data, make_config("cnn", data, epochs=1, seed=0)).save(model)
    spec = {**SMALL, "name": "fashion-cnn-small", "network": {"model": str(model)},
            "circuit": {"tile_rows": 64, "tile_cols": 32},
            "defects": {"patterns": ["ring"], "kinds": ["on"], "arrays": [2], "severities": [0.1]}}
    assert run_study(parse_study(spec), tmp_path / "a", executor=SerialExecutor()).ok
    table = load_results(tmp_path / "a")
    healthy = table[(table["pattern"] == "none") & (table["corrector"] == "none")]
    # the ideal circuit of the CNN decides as the software network does, on every official test image
    assert float(healthy["accuracy"].iloc[0]) == pytest.approx(float(healthy["software_accuracy"].iloc[0]), abs=1e-12)
    defective = table[(table["pattern"] == "ring") & (table["corrector"] == "none")]
    assert float(defective["density"].iloc[0]) == pytest.approx(0.1, abs=0.02)  # the ring landed on the tiled layer


def test_a_run_reports_the_training_of_its_network_epoch_by_epoch(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURODTCO_CACHE", str(tmp_path / "cache"))
    spec = {"name": "train-progress", "engine": "ideal", "network": {"widths": [64, 4, 10], "epochs": 3},
            "defects": {"patterns": ["random"], "kinds": ["on"], "arrays": [1], "severities": [0.2]},
            "correctors": {"hidden": [2], "options": {"max_iter": 5}}}
    stages = []
    run_study(parse_study(spec), tmp_path / "out", executor=SerialExecutor(), progress=lambda p: stages.append(p.stage))
    assert [s for s in stages if s.startswith("training")] == [f"training the network, epoch {e} of 3" for e in (1, 2, 3)]
    assert stages[-1] == "running"
