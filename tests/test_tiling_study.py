"""The tiling study's statistics: Wilson interval, paired flips and the exact McNemar test."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location(
    "tiling_study", Path(__file__).resolve().parents[1] / "examples" / "tiling_study.py")
study = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(study)


def test_wilson_interval_matches_newcombe_textbook_example():
    # Newcombe (1998), Stat. Med. 17:857, example 81/263: Wilson score interval 0.2553 to 0.3662.
    low, high = study.wilson_interval(81, 263)
    assert low == pytest.approx(0.2553, abs=5e-5)
    assert high == pytest.approx(0.3662, abs=5e-5)


def test_wilson_interval_edges_stay_inside_unit_interval():
    # At 0 successes the Wilson upper bound is z^2 / (n + z^2) (it does not collapse to 0 like the Wald one).
    z2 = 1.959963984540054 ** 2
    low, high = study.wilson_interval(0, 10)
    assert low == pytest.approx(0.0, abs=1e-15) and high == pytest.approx(z2 / (10 + z2), rel=1e-12)
    low, high = study.wilson_interval(10, 10)
    assert high == pytest.approx(1.0, abs=1e-15) and low == pytest.approx(10 / (10 + z2), rel=1e-12)


@pytest.mark.parametrize("successes, n", [(-1, 10), (11, 10), (0, 0)])
def test_wilson_interval_refuses_impossible_counts(successes, n):
    with pytest.raises(ValueError, match="successes|at least one trial"):
        study.wilson_interval(successes, n)


def test_paired_flips_count_each_direction_on_a_hand_made_case():
    labels = np.array([0, 1, 2, 3, 4, 5])
    software = np.array([0, 1, 2, 9, 9, 5])    # right on 0, 1, 2, 5
    circuit = np.array([0, 7, 2, 3, 8, 6])     # right on 0, 2, 3
    # lost: 1 and 5 (software right, circuit wrong); gained: 3; image 4 wrong in both but a different class.
    assert study.paired_flips(software, circuit, labels) == {"lost": 2, "gained": 1, "class_changed": 4}


def test_mcnemar_p_is_the_exact_two_sided_binomial_tail():
    # 10 discordant images split 9 / 1: p = 2 * (C(10,0) + C(10,1)) / 2^10 = 22 / 1024.
    assert study.mcnemar_p(9, 1) == pytest.approx(22 / 1024, rel=1e-12)
    assert study.mcnemar_p(1, 9) == pytest.approx(22 / 1024, rel=1e-12)
    assert study.mcnemar_p(0, 0) == 1.0
    assert study.mcnemar_p(5, 5) == 1.0


def test_accuracy_entry_marks_only_a_significant_loss_as_distinguishable():
    labels = np.zeros(1000, dtype=int)
    software = labels.copy()
    few = software.copy()
    few[:3] = 1                                # 3 lost, 0 gained: p = 0.25
    many = software.copy()
    many[:30] = 1                              # 30 lost, 0 gained: p = 2^-29
    assert not study.accuracy_entry(few, software, labels)["distinguishable"]
    entry = study.accuracy_entry(many, software, labels)
    assert entry["distinguishable"] and entry["accuracy"] == 0.97 and entry["lost"] == 30
    assert entry["mcnemar_p"] == pytest.approx(2.0 ** -29, rel=1e-9)
    low, high = entry["ci95"]
    assert low < 0.97 < high


def test_layout_counts_the_tiles_a_ceil_division_gives():
    import math

    from neurodtco.network import MLP, NetworkConfig, TrainedNetwork

    config = NetworkConfig(widths=(100, 40, 10))
    net = TrainedNetwork(config, MLP(config.widths))
    # Physical matrices 101 x 80 and 41 x 20 (bias row, one pair of columns per neuron); a column tile holds
    # tile // 2 neurons, so at tile 32 the layers are 4 x 3 and 2 x 1 arrays.
    rows = study.layout(net, (32, 128))
    assert [r["layer_shapes"] for r in rows] == [[[101, 80], [41, 20]]] * 2
    for row, tile in zip(rows, (32, 128)):
        expected = [math.ceil(r / tile) * math.ceil(n / (tile // 2)) for r, n in ((101, 40), (41, 10))]
        assert row["arrays_per_layer"] == expected and row["n_arrays"] == sum(expected)
        assert row["n_cells"] == 101 * 80 + 41 * 20
    assert rows[0]["largest_array"] == [32, 32] and rows[1]["largest_array"] == [101, 80]


def test_markdown_table_places_each_entry_and_marks_the_distinguishable_one(tmp_path):
    labels = np.zeros(100, dtype=int)
    rows = []
    for tile, wire, wrong in ((32, 1.0, 0), (32, 5.0, 1), (64, 1.0, 2), (64, 5.0, 40)):
        predictions = labels.copy()
        predictions[:wrong] = 1
        rows.append({"tile": tile, "wire_ohm": wire, "n_arrays": 99 // tile,
                     **study.accuracy_entry(predictions, labels, labels)})
    results = {"software": {"accuracy": 1.0, "ci95": [0.96, 1.0]}, "n_test": 100, "model": "m.pt", "gain": 1e4,
               "exactness": {"tile": 64, "n_arrays": 1, "n_cells": 10, "class_differs": 0,
                             "max_relative_error": 1e-15, "max_abs_error_v": 1e-16}, "dtco": rows,
               "layout": [{"tile": 32, "arrays_per_layer": [2, 1], "n_arrays": 3, "n_cells": 1234,
                           "layer_shapes": [[40, 16], [9, 4]], "largest_array": [32, 16]}],
               "wall_s": 12.0, "load_average_1min": {"start": 1.0, "end": 2.0, "cpus": 2}}
    tables = study.sections(results)
    assert list(tables) == ["layout", "exactness", "dtco", "flips"]
    assert "| 32 x 32 | 2, 1 | 3 | 32 x 16 |" in tables["layout"] and "40 x 16 and 9 x 4, 1,234 cells" in tables["layout"]
    assert "| 0 of 100 | 1.0e-15 | 1.0e-16 V |" in tables["exactness"]
    text = "\n".join(tables.values())
    assert "| 32 x 32 | 3 | 100.00 [96.30, 100.00] | 99.00 [94.55, 99.82] |" in text
    assert "| 64 x 64 | 1 | 98.00 [93.00, 99.45] | 60.00 [50.20, 69.06] * |" in text
    assert text.count("] *") == 1
    assert "| 64 x 64 | -2 / +0, p = 0.5 | -40 / +0, p = 1.8e-12 |" in text
    png = study.heatmap(rows, 1.0, tmp_path / "map.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
