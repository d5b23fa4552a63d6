"""bench/read_noise.py: the timing rows and their table (timings themselves are not asserted)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import read_noise as rn  # noqa: E402


def test_one_sample_per_group_and_ratios_to_the_noise_free_read() -> None:
    rows = rn.run(images=5, repeats=1, groups=(1, 2, 5))
    assert [r["samples"] for r in rows] == [0, 5, 3, 1]  # ceil(5 / group)
    assert rows[0]["ratio"] == 1.0
    for r in rows:
        assert r["seconds"] > 0 and r["ratio"] == pytest.approx(r["seconds"] / rows[0]["seconds"])
    text = rn.markdown(rows, 5, 1, (1.0, 2.0))
    assert "5 test images per run, best of 1" in text and "load average 1.0 before, 2.0 after" in text
    assert text.count("\n| group_size ") == 3 and "| no noise (reference) | 0 |" in text
