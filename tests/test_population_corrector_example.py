"""examples/population_corrector.py: the population corrector's tables in docs/correction.md, with intervals."""

import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import population_corrector as pc  # noqa: E402
from neurodtco.correction.population_study import ChipSpec, PopulationResult  # noqa: E402

_CI = re.compile(r"(-?\d+\.\d) \[(-?\d+\.\d), (-?\d+\.\d)\]")


def _result(seed=0):
    rng = np.random.default_rng(seed)
    patterns = ["random", "ring", "row"]
    specs = [ChipSpec(p, layer=i % 4, density=0.1, instance=i) for p in patterns for i in range(4)]
    before = rng.uniform(0.3, 0.6, len(specs))
    oracle = np.clip(before + 0.3, 0, 1)
    budgets = [0, 20, None]
    accuracy = np.stack([before + f * (oracle - before) + rng.normal(0, 0.02, len(specs)) for f in (0.2, 0.5, 0.9)])
    return PopulationResult(budgets, specs, accuracy, before, oracle, patterns, np.ones(3))


def test_curve_and_pattern_tables():
    lopo = _result()
    curve = pc.curve_table(lopo)
    rows = [line for line in curve.splitlines()[2:]]
    assert [r.split(" | ")[0] for r in rows] == ["| 0", "| 20", "| all", "| (no correction)",
                                                  "| (per-chip oracle, MLP h=8, all images)"]
    for value, low, high in _CI.findall(curve):
        assert float(low) <= float(value) <= float(high)
    assert f"{100 * lopo.before.mean():.1f} [" in rows[3]

    table = pc.pattern_table(lopo)
    lines = table.splitlines()
    assert lines[0] == "| held out | chips | no correction | k=0 | k=20 | oracle |"
    assert len(lines) == 2 + 3  # one row per held-out pattern
    ring = [c.strip() for c in lines[3].strip("|").split("|")]
    assert ring[0] == "ring" and ring[1] == "4"
    assert float(ring[4].split()[0]) == pytest.approx(100 * lopo.accuracy[1, 4:8].mean(), abs=0.05)
    assert len(_CI.findall(table)) == 3 * 4
