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
    data = study.dataset.load()
    official = load_fashion_mnist(seed=0)
    assert len(data.y_train) == 300 and (data.x_test == official.x_test).all()
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
