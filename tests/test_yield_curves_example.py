"""examples/yield_curves.py: views of the data, the corrector choice, the curves and their tables."""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from neurodtco.wafer import Mitigation, Wafer, d0_at_yield

_EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(_EXAMPLES))
import yield_curves as yc  # noqa: E402


def test_crossings_follow_d0_at_yield_and_render_off_grid_ends() -> None:
    rows = [{"mitigation": name, "d0_per_cell": d0, "n_pass": k, "n_dies": 100}
            for name, passes in (("none", (95, 80, 40)), ("spares1x1", (100, 100, 99)))
            for d0, k in zip((1e-4, 1e-3, 1e-2), passes)]
    none, spares = yc.crossings(rows, ["none", "spares1x1"])
    assert (none["d0"], none["low"], none["high"]) == d0_at_yield([1e-4, 1e-3, 1e-2], [95, 80, 40], [100] * 3)
    assert 1e-4 < none["d0"] < 1e-3 and math.isinf(spares["d0"])
    assert yc._d0_text(spares["d0"], 1e-4, 1e-2) == "> 0.01"
    assert yc._d0_text(0.0, 1e-4, 1e-2) == "< 0.0001"


def test_a_small_digits_run_chooses_on_validation_and_tabulates_every_option() -> None:
    healthy, test, validation, section = yc.digits_setup(quick=True)
    # The views judge disjoint images and keep the labelled pool.
    assert test.x_val is None and validation.x_val is None
    np.testing.assert_array_equal(test.y_train, validation.y_train)
    assert not np.array_equal(test.x_test, validation.x_test)
    section = dataclasses.replace(section, d0s=(1e-3, 1e-2), n_dies=8, n_choice_dies=8, n_retrain=0,
                                  wafer=Wafer(diameter_mm=60.0, edge_exclusion_mm=0.0))
    best, choice = yc.choose_corrector(healthy, validation, section, (20,))
    assert len(choice) == len(yc.HIDDEN) * 2
    winner = max(choice, key=lambda c: c["mean_val_accuracy"])
    assert best[20] == winner["mitigation"]
    ms = [Mitigation(), Mitigation(spare_rows=1, spare_cols=1), best[20]]
    rows = yc.curves(healthy, test, section, ms)
    assert len(rows) == len(section.d0s) * len(ms) and all(r["n_dies"] == 8 for r in rows)
    # The same seed draws the same uniforms at every D0: a denser field sticks a superset of the cells.
    plain = [r for r in rows if r["mitigation"] == "none"]
    assert plain[0]["mean_stuck_cells"] < plain[1]["mean_stuck_cells"]
    for c in choice:
        c["n_dies"] = 8
    text = yc.markdown(section, rows, yc.crossings(rows, [m.name for m in ms]), choice, healthy.n_cells, test,
                       validation)
    for m in ms:
        assert f"| {m.name} |" in text
    assert text.count("\n| 0.001 |") == 1 and text.count("\n| 0.01 |") == 1
    assert f"healthy test accuracy {rows[0]['healthy_accuracy']:.4f} on {len(test.y_test)} test images" in text


def test_a_view_without_a_validation_part_is_refused() -> None:
    healthy, test, validation, section = yc.digits_setup(quick=True)
    with pytest.raises(ValueError, match="no validation part"):
        yc._view(test, "validation")
