"""The physical-density correction study (examples/correction_physical.py): its counts and its protocol."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

_path = Path(__file__).resolve().parents[1] / "examples" / "correction_physical.py"
_spec = importlib.util.spec_from_file_location("correction_physical", _path)
study = importlib.util.module_from_spec(_spec)
sys.modules["correction_physical"] = study
_spec.loader.exec_module(study)


def _chip(array: int, before: float, after: float, after_h1: float, p_h1: float, seed: int = 0) -> dict:
    return {"seed": seed, "pattern": "random", "array": array, "density": 0.1, "instance": 0, "achieved": 0.1,
            "before": before, "after": after, "choice": "logistic", "after_h1": after_h1, "p_h1": p_h1,
            "healthy": 0.9}


def _result(chips: list[dict]) -> dict:
    return {"engine": "nodal", "kind": "on", "dtype": "float32", "instances": 1, "seeds": [0, 1],
            "patterns": ["random"], "densities": [0.1], "n_test": 180, "n_validation": 180, "n_train": 1437,
            "healthy": {"0": 0.9, "1": 0.9}, "candidates": {"logistic": 110}, "chips": chips,
            "timings": {"total_s": 1.0}}


def test_tables_count_harm_only_when_significant_and_headline_per_array():
    chips = [_chip(0, 0.50, 0.70, 0.40, 0.01), _chip(0, 0.50, 0.90, 0.45, 0.20, seed=1),  # harmed once (p < 0.05)
             _chip(1, 0.40, 0.86, 0.60, 0.001), _chip(1, 0.80, 0.88, 0.80, 1.0, seed=1)]  # helped once
    tables = study.tables(_result(chips))
    h1 = tables["physical-h1"]
    assert "| random | 0 | 10 % | 50.0 [50.0, 50.0] | 42.5 [40.0, 45.0] | -7.5 [-10.0, -5.0] | 1 / 0 of 2 |" in h1
    assert "| 1 / 1 of 2 |" not in h1 and "| 0 / 1 of 2 |" in h1
    assert "significantly harmed 1, helped 1, of 4." in h1
    main = tables["physical"]
    # from <= 55 % to >= 85 %: chip 2 of array 0 (0.50 -> 0.90) and chip 1 of array 1 (0.40 -> 0.86)
    assert "2 of the 3 chips that start at <= 55 % (array 0: 1 of 2, array 1: 1 of 1)" in main
    # recovered = mean gain / mean loss: array 0 gains 0.3 of 0.4 lost
    assert "| +30.0 [+20.0, +40.0] | 0.75 |" in main
    assert set(study.tables({**_result(chips), "kind": "off"})) == {"physical-off", "physical-h1-off"}


def test_run_reports_the_chips_own_accuracy_and_the_choice_made_on_validation(tmp_path):
    from neurodtco.correction import measure_chip
    from neurodtco.correction.studies import make_defective
    from neurodtco.data import load_digits
    from neurodtco.mapping import MappingConfig, map_network
    from neurodtco.network import default_network
    from neurodtco.network.training import NetworkConfig

    args = argparse.Namespace(engine="ideal", kind="on", dtype="float32", instances=1, seeds=(0,),
                              patterns=("random",), densities=(0.05,))
    res = study.run(args)
    assert len(res["chips"]) == 4 and {c["array"] for c in res["chips"]} == {0, 1, 2, 3}
    dataset = load_digits(seed=0, n_validation=180)
    circuit = map_network(default_network(dataset, NetworkConfig(seed=0)), MappingConfig())
    for c in res["chips"]:
        chip = measure_chip(make_defective(circuit, "random", c["array"], 0.05, 0, "on", 0)[0], dataset, "ideal")
        assert c["before"] == pytest.approx(chip.accuracy(dataset.y_test))
        assert c["choice"] in res["candidates"] and max(res["candidates"].values()) <= 200
        assert 0.0 <= c["p_h1"] <= 1.0
    assert res["n_validation"] == 180 and res["n_test"] == 180
    path = study.plot(res, tmp_path / "fig.png")
    assert path.stat().st_size > 10_000
    assert np.isfinite([c["after"] for c in res["chips"]]).all()
