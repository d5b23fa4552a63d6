"""examples/correction_severity_tables.py: the severity study's tables in docs/correction.md, with intervals."""

import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import correction_severity_tables as st  # noqa: E402

_CI = re.compile(r"([-+]?\d+\.\d) \[([-+]?\d+\.\d), ([-+]?\d+\.\d)\]")


def _result(seed=0, instances=3):
    rng = np.random.default_rng(seed)
    cases = [{"pattern": p, "layer": layer, "density": 0.1 * (1 + layer), "achieved_density": 0.1 * (1 + layer),
              "in_range": (p, layer) != ("ring", 1), "note": "" if (p, layer) != ("ring", 1) else "closest density",
              "steps": []} for p in ("random", "ring") for layer in (0, 1)]
    n = len(cases) * instances
    before = rng.uniform(0.3, 0.6, n)
    after = {k: np.clip(before + rng.uniform(0.0, 0.45, n), 0, 1) for k, _ in st.CORRECTORS}
    types = ["random", "ring"]

    def matrix(n_chips):
        return {"train_types": types + ["mixture"], "test_types": types, "n_parameters": 178, "n_train_chips": 2,
                "n_test_chips": n_chips, "chip_accuracy": rng.uniform(0.2, 0.9, (3, 2, n_chips)).tolist(),
                "chip_before": rng.uniform(0.3, 0.6, (2, n_chips)).tolist()}

    return {"engine": "nodal", "kind": "on", "dtype": "float32", "instances": instances, "train_instances": 1,
            "n_train": 1437, "n_test": 180, "healthy_accuracy": 166 / 180, "cases": cases,
            "case_of_chip": np.repeat(np.arange(len(cases)), instances).tolist(), "before": before.tolist(),
            "after": {k: v.tolist() for k, v in after.items()},
            "n_parameters": {"mlp8": 178, "logistic": 110, "affine": 20, "lastlayer": 90, "mlp8_hidden": 370},
            "sweep": {"1": (before - 0.05 * (np.arange(n) < 5)).tolist(), "8": after["mlp8"].tolist()},
            "cross": matrix(2 * instances), "cross_per_array": [matrix(instances), matrix(instances)],
            "unseen": matrix(2 * instances),
            "budget": {"mlp8": {"budget": [10, 1437], "accuracy": [before.tolist(), after["mlp8"].tolist()]}},
            "timings": {"severity_s": 1.0, "total_s": 2.0}}


def _rows(text):
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|") and not line.startswith("|---")][1:]


def test_every_interval_contains_its_estimate_and_rows_match_the_grid():
    res = _result()
    blocks = st.tables(res)
    assert list(blocks) == ["severity", "severity-arrays", "severity-sizes", "severity-cross", "severity-unseen",
                            "severity-budget"]
    n_intervals = 0
    for body in blocks.values():
        for value, low, high in _CI.findall(body):
            assert float(low) - 1e-9 <= float(value) <= float(high) + 1e-9
            n_intervals += 1
    assert n_intervals > 50
    case_rows = _rows(blocks["severity"])
    assert len(case_rows) == len(res["cases"])
    assert sum(int(r[1]) for r in _rows(blocks["severity-arrays"])) == len(res["before"])  # chips per array add up
    assert len(_rows(blocks["severity-cross"])) == 4  # two types, the mixture, no correction
    assert "ring on array 1: closest density" in blocks["severity"] and case_rows[3][3].endswith("*")


def test_numbers_agree_with_an_independent_computation():
    res = _result()
    blocks = st.tables(res)
    before, mlp = np.array(res["before"]), np.array(res["after"]["mlp8"])
    first = _rows(blocks["severity"])[0]
    assert float(first[3].split()[0]) == pytest.approx(100 * np.median(before[:3]), abs=0.05)
    assert float(first[4].split()[0]) == pytest.approx(100 * np.median(mlp[:3] - before[:3]), abs=0.05)
    reach = sum(np.median(mlp[i:i + 3] - before[i:i + 3]) >= 0.25 for i in range(0, 12, 3))
    assert f"at least 25 points: MLP h=8 {reach}, " in blocks["severity"]
    cross = np.array(res["cross"]["chip_accuracy"])
    row = _rows(blocks["severity-cross"])[1]
    assert float(row[2].split()[0]) == pytest.approx(100 * cross[1, 1].mean(), abs=0.05)
    assert _rows(blocks["severity-sizes"])[0][-1] == "5 of 12"  # h=1 lowered the first five chips
    assert _rows(blocks["severity-sizes"])[1][-1] == "0 of 12"
    assert [r[0] for r in _rows(blocks["severity-budget"])] == ["10", "1437", "(no correction)"]
