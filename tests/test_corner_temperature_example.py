"""examples/corner_temperature.py: the corner, margin and agreement tables of docs/periphery.md."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from neurodtco.periphery.study import CornerRow, SensitivityRow

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import corner_temperature as example  # noqa: E402

INTERVAL = re.compile(r"(\d+\.\d) % \[(\d+\.\d), (\d+\.\d)\]")


def _intervals_contain_their_estimates(text: str) -> int:
    found = INTERVAL.findall(text)
    for value, low, high in found:
        assert float(low) <= float(value) <= float(high)
    return len(found)


def test_with_interval_is_the_wilson_interval():
    # 90 of 100: Wilson's 95 % interval is [82.6, 94.5] (Agresti & Coull's table)
    assert example.with_interval(0.9, 100) == "90.0 % [82.6, 94.5]"
    assert example.with_interval(1.0, 30).startswith("100.0 % [88.6, 100.0]")


def test_corner_table_has_one_line_per_corner_and_temperature_and_one_column_per_case():
    rows = [CornerRow(c, t, case, acc, 3000.0, 0.48, -2e-5) for c in ("NOM", "SS") for t in (25.0, 100.0)
            for case, acc in (("healthy", 168 / 180), ("ring:layers=1", 156 / 180))]
    text = example.corners_block(rows, 180, 168 / 180)
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 4 and all(line.count("|") == 7 for line in table)
    assert "defect `ring:layers=1`" in table[0] and table[2].startswith("| NOM | 25 | 3000 | 0.480 | 93.3 %")
    assert _intervals_contain_their_estimates(text) == 4 * 2 + 1


def test_margins_count_the_changed_images_against_the_characterized_circuit():
    margins = [SensitivityRow("reference", float("nan"), 168 / 180), SensitivityRow("open_loop_gain", 30.0, 158 / 180),
               SensitivityRow("offset_v", 5e-3, 170 / 180)]
    lines = example.margins_block(margins, 180).splitlines()
    assert len(lines) == 2 + 3
    assert lines[3].startswith("| open-loop gain | 30 | 87.8 %") and lines[3].endswith("| -10 |")
    assert lines[4].startswith("| input offset (mV) | 5 |") and lines[4].endswith("| +2 |")


def test_agreement_lists_every_hidden_layer_end_to_end_and_every_layer_locally():
    check = {"corner": "FF", "temp_c": 100.0, "n_images": 30, "same_class": 30, "outputs_max_v": 0.0127,
             "outputs_rms_v": 0.0037, "end_to_end_max_v": [0.021, 0.029, 0.051, 0.0127],
             "local_max_v": [0.021, 0.017, 0.025, 0.0003], "transistor_accuracy": 0.9, "behavioural_accuracy": 0.9,
             "gmin_fallbacks": 9, "per_image_s": 4.8}
    text = example.agreement_block([check], jobs=2, load=3.0)
    row = text.splitlines()[2].split("|")
    assert row[6].strip() == "21.00, 29.00, 51.00"  # the hidden layers only: the outputs have their own columns
    assert row[7].strip().count(",") == 3 and row[10].strip() == "9 of 120 solves"
    assert _intervals_contain_their_estimates(text) == 2
    assert "load average up to 3.0" in text
