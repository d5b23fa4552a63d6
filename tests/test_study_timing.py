"""Where a study's time goes: per-stage seconds that add up, agree between the run and the store."""

from __future__ import annotations

import json

import pytest

from neurodtco.correction import native
from neurodtco.report.html import fits_text
from neurodtco.store import load_task_info
from neurodtco.study import SerialExecutor, parse_study, run_study
from neurodtco.study.timing import stage_breakdown, task_stages

TINY = {"name": "timing", "engine": "nodal",
        "defects": {"patterns": ["random", "row"], "kinds": ["on"], "arrays": [3], "severities": [0.3]},
        "correctors": {"hidden": [2, 4], "baselines": ["affine"], "options": {"max_iter": 5}},
        "cross_defect": {"enabled": True, "hidden": 2}}


def test_a_run_records_seconds_per_stage_that_its_store_reproduces(tmp_path):
    summary = run_study(parse_study(TINY), tmp_path / "out", executor=SerialExecutor())
    stages = summary.to_dict()["stages_s"]
    assert {"setup", "io", "build circuits", "factorize", "simulate", "fit: mlp-h2", "fit: mlp-h4", "fit: affine",
            "fit: cross-defect"} <= set(stages)
    assert all(v >= 0 for v in stages.values())
    assert stages["factorize"] > 0  # the nodal engine factorizes every defective layer once
    info = load_task_info(tmp_path / "out")
    # Inside a task, the stages cannot take longer than the task itself.
    for row in info.to_dict("records"):
        assert sum(task_stages(row).values()) <= row["elapsed_s"] + 1e-9
    # The store holds the same seconds the run added up (setup and I/O happen outside the tasks).
    from_store = stage_breakdown(info.to_dict("records"))
    for key, value in from_store.items():
        assert stages[key] == pytest.approx(value, rel=1e-12, abs=1e-12)
    # Every task reports the flops of its corrector fits, the floor's input (counted exactly in test_study_floor),
    # and how they ran: compiled where a C compiler built the fits, else in torch.
    assert (info["fit_flops"] > 0).all()
    assert set(info["fits"]) == {"compiled" if native.available() else "torch"}
    assert fits_text(info) == f"{'compiled C' if native.available() else 'torch'} on {len(info)} tasks"
    logged = json.loads((tmp_path / "out" / "runs.jsonl").read_text().splitlines()[-1])
    assert logged["stages_s"] == pytest.approx(stages)


def test_a_task_without_a_corrector_kind_adds_nothing_for_it():
    info = {"stage": "circuits", "build_s": 0.5, "factorize_s": 1.0, "simulate_s": 3.0, "fit_s:mlp-h8": 2.0,
            "fit_s:affine": float("nan")}
    assert task_stages(info) == {"build circuits": 0.5, "factorize": 1.0, "simulate": 2.0, "fit: mlp-h8": 2.0}
    assert task_stages({"stage": "cross", "fit_s": 4.0}) == {"fit: cross-defect": 4.0}


def test_the_report_says_how_the_fits_ran_and_stays_quiet_where_it_was_not_recorded():
    import pandas as pd

    info = pd.DataFrame({"fits": ["compiled", "compiled", "torch", None]})
    assert fits_text(info) == "compiled C on 2 tasks; torch on 1 task"
    assert fits_text(pd.DataFrame({"fit_flops": [1.0]})) == ""
