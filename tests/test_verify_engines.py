"""examples/verify_engines.py: the nodal-against-ngspice table of docs/engines.md."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "verify_engines", Path(__file__).resolve().parents[1] / "examples" / "verify_engines.py")
verify_engines = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(verify_engines)


def test_table_has_one_row_per_run_with_the_same_class_count():
    run = {"cell": "gap", "n_images": 20, "max_abs_difference_v": 4.3e-11, "max_abs_hidden_difference_v": 3.8e-11,
           "n_prediction_mismatches": 1, "timings": {"nodal_per_image_s": 2e-3, "ngspice_per_image_s": 0.25}}
    lines = verify_engines.table([run, {**run, "cell": "linear", "n_images": 180}]).splitlines()
    assert len(lines) == 4 and lines[0].count("|") == lines[2].count("|") == 8
    assert lines[2] == "| gap | 20 | 4.3e-11 V | 3.8e-11 V | 19/20 | 2 ms | 250 ms |"
    assert "| 179/180 |" in lines[3]


@pytest.mark.skipif(shutil.which("ngspice") is None, reason="needs ngspice")
def test_verify_runs_the_cli_and_both_engines_agree_on_two_images():
    result = verify_engines.verify("linear", 2)
    assert result["n_images"] == 2 and result["cell"] == "linear"
    # The engines solve the same circuit: far below the CLI's 1 uV tolerance, and the same classes.
    assert result["max_abs_difference_v"] < 1e-9 and result["agree"]
    assert result["n_prediction_mismatches"] == 0
    assert "| linear | 2 |" in verify_engines.table([result])
