"""The wafer section of a study: validation, dies tasks, resume, the yield it stores, and its report pages."""

from __future__ import annotations

import base64
import math
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from neurodtco.mapping import map_ops
from neurodtco.report import build_report, write_report
from neurodtco.report.yield_report import crossing, d0_at_target, yield_frame
from neurodtco.stats import wilson_interval
from neurodtco.store import ResultStore, load_results
from neurodtco.study import DaskExecutor, SerialExecutor, StudyFileError, expand_tasks, load_study, parse_study, run_study
from neurodtco.study.compute import prepare_setup
from neurodtco.wafer import Mitigation, wafer_yield


def wafer_study(**wafer) -> dict:
    """A small wafer study: 50 mm wafers of 10 mm dies (12 dies each), two densities, the ideal engine."""
    section = {"diameter_mm": 50, "die_width_mm": 10, "die_height_mm": 10, "edge_exclusion_mm": 1,
               "d0": [0.003, 0.03], "alpha": [2], "n_wafers": 1, "criterion": {"kind": "accuracy", "within": 3},
               "mitigations": {"none": True, "spares": [1], "correct": [20, 60]}, "seed": 3}
    section.update(wafer)
    return {"name": "wafers", "engine": "ideal", "defects": None, "wafer": section}


# ----------------------------------------------------------------------------- validation

@pytest.mark.parametrize("change, message", [
    ({"d0": [-1e-3]}, r"wafer\.d0: .*-0\.001 is not accepted: expected defects per cell >= 0"),
    ({"alpha": [0]}, r"wafer\.alpha: .*0 is not accepted: expected Stapper's alpha > 0, or 'inf'"),
    ({"criterion": {"kind": "accuracy"}}, r"wafer\.criterion: kind accuracy needs exactly one of bound"),
    ({"criterion": {"kind": "accuracy", "bound": 0.9, "within": 2}}, r"wafer\.criterion: kind accuracy needs exactly"),
    ({"criterion": {"kind": "any-defect", "bound": 0.9}}, r"wafer\.criterion: kind any-defect takes no accuracy bound"),
    ({"n_dies": 10}, r"wafer: give exactly one of n_wafers .* or n_dies"),
    ({"mitigations": {"correct": [0]}}, r"wafer\.mitigations\.correct: 0 is not accepted: expected integers >= 1"),
    ({"mitigations": {"spares": [1, 1]}}, r"wafer\.mitigations\.spares: \[1, 1\] lists a value twice"),
    ({"mitigations": {"none": False}}, r"wafer\.mitigations: none is false and no other mitigation is listed"),
    ({"die_width_mm": 50}, r"wafer: no 50 x 10 mm die fits inside the usable circle"),
    ({"d0s": [1e-3]}, r"wafer\.d0s: unknown key 'd0s'; accepted keys: alpha, cell_area_um2, cluster_radius_mm, criterion, d0,"),
])
def test_wafer_section_errors_name_the_key(change, message):
    with pytest.raises(StudyFileError, match=message):
        parse_study(wafer_study(**change), source="bad.yaml")


def test_study_level_checks():
    with pytest.raises(StudyFileError, match=r"defects: null leaves nothing to study"):
        parse_study({"name": "x", "defects": None})
    with pytest.raises(StudyFileError, match=r"wafer: the dies are drawn on the programmed circuit; imperfections"):
        parse_study({**wafer_study(), "imperfections": [{"kind": "read_noise", "relative_sigma": 0.01}]})
    with pytest.raises(StudyFileError, match=r"wafer: the dies are drawn for one network; network.seeds"):
        parse_study({**wafer_study(), "network": {"seeds": [0, 1]}})


def test_a_study_without_wafers_keeps_its_hash_and_alpha_inf_round_trips():
    plain = parse_study({"name": "x"})
    assert "wafer" not in plain.canonical()
    study = parse_study(wafer_study(alpha=[float("inf"), 0.5, "inf"][:2]))
    assert study.wafer.alpha == ["inf", 0.5] and study.wafer.alphas == [math.inf, 0.5]
    # Workers rebuild the study from its canonical JSON: it must validate to the same study.
    again = type(study).model_validate(study.canonical())
    assert again.hash() == study.hash()
    # The wafer section sits beside a grid too.
    both = parse_study({**wafer_study(), "defects": {"patterns": ["random"], "severities": [0.1]}})
    stages = [t.stage for t in expand_tasks(both, "fp")]
    assert stages.count("dies") == 2 and stages.count("circuits") >= 2


# ----------------------------------------------------------------------------- tasks

def test_task_expansion_covers_every_die_once():
    study = parse_study(wafer_study(n_wafers=None, n_dies=19, dies_per_task=5, alpha=[2, "inf"]))
    tasks = expand_tasks(study, "fp")
    assert {t.stage for t in tasks} == {"dies"} and len({t.id for t in tasks}) == len(tasks)
    per_field: dict = {}
    for t in tasks:
        g = dict(t.group)
        per_field.setdefault((g["d0"], g["alpha"]), []).extend((g["wafer"], i) for i in range(g["start"], g["stop"]))
    # 19 dies = wafer 0 (12) + 7 of wafer 1, for each of the 2 x 2 fields
    assert len(per_field) == 4
    for dies in per_field.values():
        assert sorted(dies) == [(0, i) for i in range(12)] + [(1, i) for i in range(7)]
    assert sum(t.n_circuits for t in tasks) == 4 * 19
    # A changed field seed or network gives new ids; a changed description does not.
    ids = {t.id for t in tasks}
    assert ids == {t.id for t in expand_tasks(parse_study({**wafer_study(n_wafers=None, n_dies=19, dies_per_task=5,
                                                                         alpha=[2, "inf"]), "description": "x"}), "fp")}
    assert not ids & {t.id for t in expand_tasks(parse_study(wafer_study(n_wafers=None, n_dies=19, dies_per_task=5,
                                                                         alpha=[2, "inf"], seed=4)), "fp")}
    assert not ids & {t.id for t in expand_tasks(study, "other weights")}


# ----------------------------------------------------------------------------- running

@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The small wafer study run uninterrupted."""
    out = tmp_path_factory.mktemp("wafers") / "results"
    summary = run_study(parse_study(wafer_study()), out, executor=SerialExecutor())
    return out, summary


def test_dies_table_holds_every_die_and_mitigation(finished):
    out, summary = finished
    assert summary.ok and summary.n_run == 2 and summary.n_circuits == 24
    dies = load_results(out, "dies")
    assert len(dies) == 2 * 12 * 4  # densities x dies x mitigations
    assert list(dict.fromkeys(dies["mitigation"])) == ["none", "spares1x1", "correct20", "correct60"]
    for column in ("wafer", "die_x", "die_y", "d0", "alpha", "n_stuck", "accuracy", "accuracy_validation", "passed"):
        assert column in dies
    none = dies[dies["mitigation"] == "none"]
    # The uncorrected die's validation accuracy is measured; a per-die corrector is judged on test alone.
    assert none["accuracy_validation"].notna().all()
    assert dies[dies["mitigation"] == "correct20"]["accuracy_validation"].isna().all()
    # Spares only ever remove stuck cells; the pass flag follows the stored threshold.
    spares = dies[dies["mitigation"] == "spares1x1"]
    assert (spares["n_stuck_left"].to_numpy() <= spares["n_stuck"].to_numpy()).all()
    assert (dies["passed"] == (dies["accuracy"] >= dies["threshold"] - 1e-9)).all()
    assert (dies["threshold"] == dies["healthy_accuracy"] - 0.03).all()
    # More defects, more stuck cells on the same die positions.
    by_d0 = none.groupby("d0")["n_stuck"].sum()
    assert by_d0[0.03] > by_d0[0.003]


def test_study_yield_equals_wafer_yield(finished):
    out, _ = finished
    study = parse_study(wafer_study())
    setup = prepare_setup(study)
    healthy = map_ops(list(setup.networks[None]), study.circuit.to_config())
    dataset = study.dataset.for_correctors(study.dataset.load())
    dies = load_results(out, "dies")
    for mitigation in (Mitigation(), Mitigation(spare_rows=1, spare_cols=1), Mitigation(correct=20)):
        ref = wafer_yield(healthy, study.wafer.field(0.03, 2.0), study.wafer.to_wafer(), 12, dataset, within=3,
                          mitigation=mitigation, engine="ideal", seed=3)
        rows = dies[(dies["mitigation"] == mitigation.name) & (dies["d0"] == 0.03)]
        assert rows["passed"].tolist() == ref.passed.tolist()
        assert np.array_equal(rows["accuracy"].to_numpy(), ref.accuracies)
        assert rows["passed"].mean() == ref.yield_


def test_killed_run_resumes_to_the_same_results(finished, tmp_path):
    out, _ = finished
    partial = tmp_path / "partial"
    shutil.copytree(out, partial)
    store = ResultStore(partial)
    # A run killed mid-way: one task finished, the other left only a temporary file behind.
    lost = sorted(store.finished())[1]
    store.table_path("dies", lost).rename(store.table_path("dies", lost).with_name(f".{lost}.parquet.tmp-1-x"))
    summary = run_study(parse_study(wafer_study()), partial, executor=SerialExecutor())
    assert summary.n_skipped == 1 and summary.n_run == 1
    assert not list(partial.rglob(".*.tmp-*"))
    pd.testing.assert_frame_equal(load_results(partial, "dies"), load_results(out, "dies"))


@pytest.mark.slow
def test_dies_tasks_on_a_local_dask_cluster_give_the_same_table(finished, tmp_path):
    dask = DaskExecutor(workers=2)
    try:
        summary = run_study(parse_study(wafer_study()), tmp_path / "dask", executor=dask)
        assert summary.executor["executor"] == "dask" and summary.n_run == 2
    finally:
        dask.close()
    pd.testing.assert_frame_equal(load_results(tmp_path / "dask", "dies"), load_results(finished[0], "dies"))


# ----------------------------------------------------------------------------- report

def test_crossing_and_its_bounds():
    d0 = np.array([1e-3, 1e-2, 1e-1])
    assert crossing(d0, np.array([1.0, 0.95, 0.85])) == pytest.approx(10 ** -1.5)
    assert crossing(d0, np.array([0.8, 0.5, 0.1])) == -math.inf
    assert crossing(d0, np.array([1.0, 0.99, 0.95])) == math.inf
    # Many dies: the bootstrap interval is narrow and holds the point estimate.
    table = pd.DataFrame({"mitigation": "none", "alpha": 2.0, "d0": d0, "n_dies": 10000,
                          "n_pass": [10000, 9500, 8500]})
    row = d0_at_target(table).iloc[0]
    assert row["low"] <= row["d0"] <= row["high"] and row["high"] / row["low"] < 1.5


def test_yield_frame_uses_wilson_intervals(finished):
    out, _ = finished
    dies = load_results(out, "dies")
    table = yield_frame(dies)
    row = table[(table["mitigation"] == "none") & (table["d0"] == 0.03)].iloc[0]
    k = int(dies[(dies["mitigation"] == "none") & (dies["d0"] == 0.03)]["passed"].sum())
    assert (row["n_dies"], row["n_pass"]) == (12, k)
    assert (row["yield_low"], row["yield_high"]) == pytest.approx(wilson_interval(k, 12))


def test_report_renders_the_wafer_figures(finished, tmp_path):
    out, _ = finished
    page = build_report(out)
    for sid in ("yield", "yieldcurves", "wafermaps", "calibration"):
        assert f'<section id="{sid}">' in page
    for alt in ("yield vs D0", "wafer maps", "calibration curve"):
        uri = re.search(rf'<img src="data:image/png;base64,([^"]+)" alt="{alt}"', page)
        assert uri, alt
        assert base64.b64decode(uri.group(1))[:8] == b"\x89PNG\r\n\x1a\n"
    assert "24 dies in all" in page and "D0 where yield falls below 90 %" in page
    assert '<section id="gallery">' not in page  # no defect grid in this study
    path = write_report(out, tmp_path / "report.html")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (make system-tools installs it)")
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000",
                          "--dump-dom", path.resolve().as_uri()], capture_output=True, text=True, timeout=180).stdout
    body = re.search(r'<body data-images-total="(\d+)" data-images-loaded="(\d+)"', dom)
    assert body and int(body.group(1)) == 3 and body.group(1) == body.group(2)


def test_builtin_yield_study_validates():
    study = load_study("yield")
    assert study.defects is None and study.wafer is not None
    tasks = expand_tasks(study, "fp")
    assert len(tasks) == len(study.wafer.d0) * len(study.wafer.alpha) * study.wafer.n_wafers


def test_a_study_with_grid_and_wafers_reports_both(tmp_path):
    data = {**wafer_study(d0=[0.01], mitigations={"none": True}),
            "defects": {"patterns": ["random"], "kinds": ["on"], "arrays": [3], "severities": [0.1]},
            "correctors": {"hidden": [4], "options": {"max_iter": 20}}}
    summary = run_study(parse_study(data), tmp_path / "both", executor=SerialExecutor())
    assert summary.ok and len(load_results(tmp_path / "both", "dies")) == 12
    assert not load_results(tmp_path / "both", "circuits").empty
    page = build_report(tmp_path / "both")
    for sid in ("headline", "severity", "yieldcurves", "wafermaps", "study"):
        assert f'<section id="{sid}">' in page, sid
    assert '<section id="calibration">' not in page  # no per-die corrector, no calibration curve


def test_any_defect_criterion_counts_stuck_cells_and_reports(tmp_path):
    data = wafer_study(d0=[0.0003, 0.001], criterion={"kind": "any-defect"}, mitigations={"spares": [1]})
    study = parse_study(data)
    run_study(study, tmp_path / "any", executor=SerialExecutor())
    dies = load_results(tmp_path / "any", "dies")
    assert (dies["passed"] == (dies["n_stuck_left"] == 0)).all() and dies["accuracy"].isna().all()
    healthy = map_ops(list(prepare_setup(study).networks[None]), study.circuit.to_config())
    ref = wafer_yield(healthy, study.wafer.field(0.001, 2.0), study.wafer.to_wafer(), 12, criterion="any-defect",
                      seed=3)
    assert dies[(dies["mitigation"] == "none") & (dies["d0"] == 0.001)]["passed"].tolist() == ref.passed.tolist()
    assert '<img src="data:image/png;base64,' in build_report(tmp_path / "any")
