"""examples/train_presets.py: the training table of docs/networks.md."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from neurodtco.data import Dataset
from neurodtco.stats import wilson_interval

_spec = importlib.util.spec_from_file_location(
    "train_presets", Path(__file__).resolve().parents[1] / "examples" / "train_presets.py")
train_presets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train_presets)


def test_parse_run_reads_arch_and_epochs_and_refuses_the_rest():
    assert train_presets.parse_run("resnet-mini:5") == ("resnet-mini", 5)
    for bad in ("cnn", "cnn:0", ":3", "cnn:x"):
        with pytest.raises(ValueError, match="ARCH:EPOCHS"):
            train_presets.parse_run(bad)


def test_a_tiny_cnn_run_fills_one_row_with_counts_and_intervals():
    rng = np.random.default_rng(0)
    images = lambda n: rng.uniform(0, 1, (n, 784))  # noqa: E731
    labels = lambda n: np.arange(n) % 10  # noqa: E731
    data = Dataset(images(40), labels(40), images(30), labels(30), name="tiny", image_shape=(28, 28),
                   x_val=images(20), y_val=labels(20))
    run = train_presets.train_run(data, "cnn", 2)
    assert run["n"] == {"train": 40, "validation": 20, "test": 30}
    assert len(run["val_per_epoch"]) == 2 and run["train_s"] > 0
    # Accuracies are counts over the parts: a multiple of 1/n.
    for part, n in run["n"].items():
        assert run["accuracy"][part] * n == pytest.approx(round(run["accuracy"][part] * n), abs=1e-9)
    text = train_presets.table([run])
    row = text.splitlines()[-1]
    assert row.startswith("| `cnn` | 2 epochs, AdamW 0.002, batch 128, 2 threads |")
    test = re.search(r"\*\*([\d.]+) % \[([\d.]+), ([\d.]+)\]\*\*", row)
    estimate, low, high = (float(g) for g in test.groups())
    assert low <= estimate <= high
    expected = wilson_interval(round(run["accuracy"]["test"] * 30), 30)
    assert (low, high) == pytest.approx((100 * expected[0], 100 * expected[1]), abs=0.006)
