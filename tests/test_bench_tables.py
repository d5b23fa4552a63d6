"""The tables bench/crossbar.py and bench/tiles.py publish into docs/engines.md and docs/tiling.md."""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))  # bench scripts import their sibling ``timing``


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_duration_picks_the_unit_with_three_significant_digits():
    from timing import duration

    assert [duration(v) for v in (23.44, 0.0087, 4.9e-6, 0.116)] == ["23.4 s", "8.7 ms", "4.9 us", "116 ms"]


def test_crossbar_table_ratios_are_the_reference_time_over_ours():
    crossbar = _load("crossbar")
    rows = [{"size": 64, "method": "dense", "neurodtco_s": 0.02, "neurodtco_reference_s": 0.01, "badcrossbar_s": 0.2,
             "badcrossbar_difference": 1e-13, "splu_factor_s": 0.03, "splu_solve_s": 0.05, "splu_difference": 2e-13},
            {"size": 1024, "method": "dissection", "neurodtco_s": 6.0, "neurodtco_reference_s": 5.5}]
    args = argparse.Namespace(blas_threads=1, vectors=1000, reference_vectors=100, both_methods=False,
                              badcrossbar_max=256, splu_max=512)
    lines = crossbar.markdown(rows, args, load=3.5).splitlines()
    assert "load average 3.5" in lines[0]
    assert lines[4] == "| 64 | 0.020 s (dense) | 0.010 s | 0.200 s | 20.0x | 0.03 + 0.05 s | 8.0x | 2.0e-13 |"
    assert lines[5] == "| 1024 | 6 s (dissection) | 5.5 s | not run |  | not run |  |  |"


def test_tiles_model_table_marks_goals_and_gives_intervals_that_hold_the_estimate():
    tiles = _load("tiles")
    row = {"arch": "cnn", "tile": 64, "n_arrays": 21, "images": 10_000, "torch_float32_s": 1.0,
           "torch_accuracy": 0.9092, "torch_accuracy_ci": [0.9034, 0.9147], "peak_memory_gib": 1.8,
           "linear": {"images": 10_000, "nodal_s": 4.0, "per_image_s": 4e-4, "ratio_to_torch_per_image": 4.0,
                      "accuracy": 0.9088, "accuracy_ci": [0.9030, 0.9143], "same_class_as_torch": 0.99},
           "gap": {"images": 100, "nodal_s": 50.0, "per_image_s": 0.5, "ratio_to_torch_per_image": 5000.0,
                   "accuracy": 0.88, "accuracy_ci": [0.80, 0.93], "same_class_as_torch": 0.98}}
    lines = tiles.model_table(row).splitlines()
    assert "within 5x: met" in lines[5] and "within 100x: **not met**" in lines[6]
    assert "| first 100 |" in lines[6] and "98 of 100 same class as PyTorch" in lines[6]
    assert "| 4.0x |" in lines[5] and "| 5,000x |" in lines[6]
    for line in lines[4:7]:
        value, low, high = (float(g) for g in re.search(r"([\d.]+) % \[([\d.]+), ([\d.]+)\]", line).groups())
        assert low <= value <= high
    assert "1.80 GiB (goal < 4 GiB: met)" in lines[-1]
    mlp = tiles.mlp_table({"float32": 0.08}, [{"tile": 64, "n_arrays": 127, "nodal_s": 1.76, "nodal_factorize_s": 1.56,
                                               "ratio_to_torch_float32": 22.0, "class_agreement_with_software": 1.0}],
                          10_000).splitlines()
    assert mlp[-1] == "| 64 x 64 | 127 | 1.76 s | 1.56 s | 80 ms | 22x | 100.00 % |"
    assert mlp[-1].count("|") == mlp[2].count("|")
