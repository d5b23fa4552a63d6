"""examples/stuck_at_study.py: the sweep, its drops with intervals, and the published tables."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import stuck_at_study as sa  # noqa: E402


@pytest.fixture(scope="module")
def small() -> tuple[dict, dict]:
    result = sa.run([0.1], 3, "ideal", ("row", "column"), "interleaved", quiet=True)
    return result, sa.findings(result)


def test_one_row_per_point_and_kind_with_every_instance(small) -> None:
    result, found = small
    assert [(r["pattern"], r["kind"]) for r in result["rows"]] == [
        ("row", "on"), ("row", "off"), ("column", "on"), ("column", "off")]
    assert all(len(r["accuracies"]) == r["instances"] == 3 for r in result["rows"])
    assert len(found["on_vs_off"]) == 2 and len(found["column_vs_row"]) == 2


def test_a_stuck_word_line_zeroes_the_weight_whichever_the_kind(small) -> None:
    # On the ideal engine both cells of every pair in a stuck row take the same value: G+ - G- = 0 either way.
    _, found = small
    row = next(r for r in found["on_vs_off"] if r["pattern"] == "row")
    assert row["drop_on"] == row["drop_off"] and row["drop_on_ci"] == row["drop_off_ci"]
    assert row["drop_on"] > 0


def test_drops_are_healthy_minus_the_instances_mean_inside_their_interval(small) -> None:
    result, found = small
    for r, f in zip([r for r in result["rows"] if r["kind"] == "on"], found["on_vs_off"]):
        assert f["drop_on"] == pytest.approx(result["healthy_accuracy"] - np.mean(r["accuracies"]))
        low, high = f["drop_on_ci"]
        assert low <= f["drop_on"] <= high
    assert sa.drop(0.9, [0.5]) == (pytest.approx(0.4), (pytest.approx(0.4), pytest.approx(0.4)))


def test_the_tables_name_the_setting_and_one_line_per_point(small) -> None:
    result, found = small
    text = sa.markdown(result, found)
    assert "3 instances x 180 test images" in text and "healthy accuracy" in text and "180 images" in text
    assert text.count("\n| 0.1 | row |") == 1 and text.count("\n| 0.1 | column |") == 1
    assert text.count("\n| 0.1 | on |") == 1 and text.count("\n| 0.1 | off |") == 1


def test_block_names_follow_the_settings_that_differ_from_the_default() -> None:
    assert sa.block_name("ideal", "interleaved", "low") == "stuck-at"
    assert sa.block_name("nodal", "interleaved", "low") == "stuck-at-nodal"
    assert sa.block_name("ideal", "split", "balanced") == "stuck-at-split-balanced"


def test_write_docs_publishes_the_printed_tables_with_the_command_line(monkeypatch, capsys) -> None:
    calls = []
    monkeypatch.setattr(sa, "publish", lambda *a: calls.append(a))
    sa.main(["--quick", "--patterns", "row", "--write-docs"])
    ((page, name, body, command),) = calls
    assert (page, name) == ("defects.md", "stuck-at")
    assert command == "python examples/stuck_at_study.py --quick --patterns row --write-docs"
    assert body in capsys.readouterr().out and "5 instances" in body
