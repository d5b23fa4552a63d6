"""bench/fit_agreement.py: the reference taken from a commit, and the table it publishes into docs/studies.md."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("fit_agreement", ROOT / "bench" / "fit_agreement.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_the_reference_src_comes_from_a_commit(tmp_path):
    src = bench.export_src("HEAD", tmp_path)
    assert (src / "neurodtco" / "__init__.py").is_file()
    with pytest.raises(SystemExit, match="name a commit of this repository"):
        bench.export_src("no-such-commit", tmp_path / "bad")


def test_table_has_a_row_per_corrector_and_intervals_that_contain_their_accuracy():
    row = {"agreement": 0.995, "reference_self_agreement": 0.993, "accuracy": 0.8149, "accuracy_reference": 0.815,
           "accuracy_ci": [0.798, 0.831], "loss": 0.3126, "loss_reference": 0.3126, "cpu_s": 2.5, "cpu_reference_s": 2.8}
    result = {"correctors": {"mlp-h8": row, "affine": {**row, "agreement": 1.0}}, "cpu_s": 5.0, "cpu_reference_s": 5.6,
              "load_before": 9.0, "load_after": 9.4}
    lines = bench.markdown_table(result, labels_per_chip=360, n_chips=48).splitlines()
    assert "48 chips x 360 images" in lines[0]
    assert lines[2].startswith("| h = 8 | 99.5% | 99.3% |") and lines[3].startswith("| affine | 100.0% |")
    for value, low, high in re.findall(r"(\d+\.\d)% \[(\d+\.\d), (\d+\.\d)\]", "\n".join(lines)):
        assert float(low) <= float(value) <= float(high)
    assert "(1.12x)" in lines[-1] and "load average 9.0 before and 9.4 after" in lines[-1]
