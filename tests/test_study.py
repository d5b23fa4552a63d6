"""Studies: validation errors that name the key, task expansion, resume after a kill, executors agree."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from neurodtco.correction import CrossDefectResult, MLPCorrector
from neurodtco.correction.studies import make_defective
from neurodtco.store import ResultStore, load_results
from neurodtco.study import (DaskExecutor, LocalExecutor, SerialExecutor, StudyFileError, circuit_points,
                             expand_tasks, load_study, parse_study, run_study)
from neurodtco.study.compute import build_circuit
from neurodtco.seeds import stable_seed

ROOT = Path(__file__).resolve().parents[1]


def small_study(**changes) -> dict:
    """A study small enough for tests: 16 circuits in 8 tasks, plus the healthy one and 4 cross tasks."""
    data = {
        "name": "small", "engine": "ideal",
        "defects": {"patterns": ["random", "column"], "kinds": ["on", "off"], "arrays": [0, 3],
                    "severities": [0.3], "instances": 2},
        "correctors": {"hidden": [4], "baselines": ["affine"], "options": {"max_iter": 40}},
        "cross_defect": {"enabled": True, "hidden": 4},
        "tasks": {"max_circuits": 2},
    }
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and isinstance(data.get(key), dict) else value
    return data


def write_study(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


# ----------------------------------------------------------------------------- validation

@pytest.mark.parametrize("change, message", [
    ({"defects": {"patterns": ["random", "donut"]}}, r"defects\.patterns: unknown pattern 'donut'; choose from random, circular"),
    ({"defects": {"kinds": ["on", "sideways"]}}, r"defects\.kinds\.1: 'sideways': Input should be 'on', 'off', 'at' or 'mix'"),
    ({"defects": {"severities": [0.1, 1.5]}}, r"defects\.severities: severity 1\.5 is not accepted: expected a defect density in \(0, 1\]"),
    ({"defects": {"arrays": [0, 7]}}, r"layer 7 does not exist; the network has arrays 0\.\.3"),
    ({"engine": "spectre"}, r"engine: unknown engine 'spectre'; choose one of ideal, nodal, ngspice"),
    ({"circuit": {"r_word_ohm": -1.0}}, r"circuit: r_word_ohm=-1\.0 is not accepted: expected a finite number >= 0"),
    ({"circuit": {"r_wire": 1.0}}, r"circuit\.r_wire: unknown key 'r_wire'; accepted keys: .*r_bit_ohm.*r_word_ohm"),
    ({"correctors": {"hidden": [0, 4]}}, r"correctors\.hidden: hidden size 0 is not accepted: expected integers >= 1"),
    ({"correctors": {"baselines": ["svm"]}}, r"correctors\.baselines\.0: 'svm': Input should be 'affine', 'logistic' or 'lastlayer'"),
    ({"defect": {}}, r"defect: unknown key 'defect'; accepted keys: circuit, correctors, cross_defect, dataset, defects"),
])
def test_bad_study_files_name_the_key_and_the_accepted_values(change, message):
    with pytest.raises(StudyFileError, match=message):
        parse_study(small_study(**change), source="bad.yaml")


def test_cross_defect_needs_the_saved_voltages():
    with pytest.raises(StudyFileError, match="cross_defect.enabled needs outputs.save_voltages"):
        parse_study(small_study(outputs={"save_voltages": False}))


def test_yaml_and_toml_study_files_are_the_same_study(tmp_path):
    data = small_study()
    a = load_study(write_study(tmp_path / "s.yaml", data))
    toml = "\n".join([
        'name = "small"', 'engine = "ideal"',
        "[defects]", 'patterns = ["random", "column"]', 'kinds = ["on", "off"]', "arrays = [0, 3]",
        "severities = [0.3]", "instances = 2",
        "[correctors]", "hidden = [4]", 'baselines = ["affine"]', "[correctors.options]", "max_iter = 40",
        "[cross_defect]", "enabled = true", "hidden = 4", "[tasks]", "max_circuits = 2"])
    (tmp_path / "s.toml").write_text(toml)
    b = load_study(tmp_path / "s.toml")
    assert a.hash() == b.hash()
    with pytest.raises(FileNotFoundError, match="built-in studies: demo, quick"):
        load_study(tmp_path / "missing.yaml")


def test_the_demo_study_is_at_least_the_published_grid():
    demo = load_study("demo")
    d = demo.defects
    assert len(d.patterns) >= 7 and len(demo.arrays) >= 4 and {"on", "off"} <= set(d.kinds)
    assert len(d.severities) >= 4 and d.instances >= 3
    assert demo.n_circuits >= 672
    assert demo.engine == "nodal" and demo.circuit.r_word_ohm == 1.0 and demo.circuit.r_bit_ohm == 1.0
    assert set(demo.correctors.hidden) >= {1, 2, 4, 8, 16, 32}
    assert demo.cross_defect.enabled


# ----------------------------------------------------------------------------- tasks

def test_expansion_covers_the_grid_once_with_paired_seeds():
    study = parse_study(small_study())
    tasks = expand_tasks(study, "fp")
    circuits = [p for t in tasks if t.stage == "circuits" for p in t.circuits]
    ids = [p.circuit_id for p in circuits]
    assert len(ids) == len(set(ids)) == 1 + study.n_circuits  # healthy + grid, each exactly once
    assert len({t.id for t in tasks}) == len(tasks) == 1 + 8 + 4
    assert all(len(t.circuits) <= 2 for t in tasks if t.stage == "circuits")
    by_id = {p.circuit_id: p for p in circuits}
    # Stuck-on and stuck-off versions of one instance hit the same cells; instances differ.
    assert by_id["column-on-a0-s0.3-i1"].defect_seed == by_id["column-off-a0-s0.3-i1"].defect_seed
    assert by_id["column-on-a0-s0.3-i0"].defect_seed != by_id["column-on-a0-s0.3-i1"].defect_seed
    # Each cross task reads exactly the circuits of its array and kind, from every pattern.
    for t in (t for t in tasks if t.stage == "cross"):
        group = dict(t.group)
        assert {(p.array, p.kind) for p in t.circuits} == {(group["array"], group["kind"])}
        assert len(t.circuits) == 2 * 2  # patterns x instances
        assert set(t.depends_on) <= {x.id for x in tasks if x.stage == "circuits"}


def test_task_ids_follow_every_setting_that_changes_a_result():
    base = {t.id for t in expand_tasks(parse_study(small_study()), "fp")}
    assert base == {t.id for t in expand_tasks(parse_study(small_study()), "fp")}  # stable
    assert base == {t.id for t in expand_tasks(parse_study(small_study(description="words only")), "fp")}
    changed_wire = {t.id for t in expand_tasks(parse_study(small_study(circuit={"r_word_ohm": 2.0})), "fp")}
    assert not base & changed_wire
    assert not base & {t.id for t in expand_tasks(parse_study(small_study()), "other weights")}
    # A new corrector size changes the circuits tasks, but the cross tasks only through them.
    more = {t.id for t in expand_tasks(parse_study(small_study(correctors={"hidden": [4, 8]})), "fp")}
    assert not base & more


def test_centred_patterns_move_between_instances_only():
    study = parse_study(small_study(defects={"patterns": ["ring", "random"], "instances": 3}))
    points = {p.circuit_id: dict(p.params) for p in circuit_points(study)}
    assert "center" not in points["ring-on-a0-s0.3-i0"]
    assert points["ring-on-a0-s0.3-i1"]["center"] != points["ring-on-a0-s0.3-i2"]["center"]
    assert points["ring-on-a0-s0.3-i1"] == points["ring-off-a0-s0.3-i1"]
    assert "center" not in points["random-on-a0-s0.3-i1"]


def test_study_circuits_and_correction_instances_are_the_same_chips(default_circuit):
    """Instance i is placed by defects.instances for the study grid and the correction studies alike:
    the same pattern, array, instance and seed give the same defect mask."""
    study = parse_study(small_study(defects={"patterns": ["ring", "checkerboard", "random"], "arrays": [1],
                                             "kinds": ["on"], "severities": [0.2], "instances": 3},
                                    seeds={"defects": 5}))
    masks = {}
    for p in circuit_points(study):
        if p.is_healthy:
            continue
        assert p.defect_seed == stable_seed(5, p.pattern, p.array, p.instance)  # stored studies keep their seeds
        _, mask, _, _ = build_circuit(default_circuit, study, p)
        _, record = make_defective(default_circuit, p.pattern, p.array, p.severity, p.instance, p.kind, seed=5)
        np.testing.assert_array_equal(mask, record.masks[p.array])
        masks[(p.pattern, p.instance)] = mask
    for pattern in ("ring", "checkerboard", "random"):  # and instances are different chips
        assert not np.array_equal(masks[(pattern, 0)], masks[(pattern, 1)])


# ----------------------------------------------------------------------------- running

@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The small study run uninterrupted, in this process."""
    out = tmp_path_factory.mktemp("reference")
    summary = run_study(parse_study(small_study()), out, executor=SerialExecutor())
    assert summary.ok and summary.n_run == 13
    return out


def test_the_table_is_tidy_and_complete(reference):
    df = load_results(reference)
    study = parse_study(small_study())
    assert len(df) == (1 + study.n_circuits) * 3  # none, mlp h=4, affine per circuit
    assert not df.duplicated(["circuit_id", "corrector", "hidden"]).any()
    raw = df[df["corrector"] == "none"]
    healthy = raw[raw["pattern"] == "none"]["accuracy"].item()
    assert healthy == pytest.approx(raw["software_accuracy"].iloc[0], abs=0.02)  # ideal engine = software
    # A study's own accuracy column is the circuit's: recompute one circuit from its stored voltages.
    store = ResultStore(reference)
    healthy_arrays = store.read_arrays(next(t for t in store.array_task_ids() if t.startswith("c-healthy")))
    n_train, n_val = int(healthy_arrays["n_train"]), int(healthy_arrays["n_validation"])
    labels = healthy_arrays["labels"]
    test = slice(n_train + n_val, None)
    assert len(labels[test]) == 180 and n_val == 180  # the digits' defaults: 180 test, 180 validation images
    task = next(t for t in store.array_task_ids() if t.startswith("c-column-a0"))
    arrays = store.read_arrays(task)
    for k, cid in enumerate(arrays["circuit_ids"]):
        pred = arrays["outputs_v"][k].argmax(axis=1)
        row = raw[raw["circuit_id"] == cid]
        assert row["n_correct"].item() == np.sum(pred[test] == labels[test])
        assert row["accuracy"].item() == pytest.approx(np.mean(pred[test] == labels[test]))
        assert row["n_test"].item() == 180 and row["n_validation"].item() == 180
        assert row["accuracy_validation"].item() == pytest.approx(
            np.mean(pred[n_train:n_train + n_val] == labels[n_train:n_train + n_val]))
        assert row["density"].item() == pytest.approx(arrays["masks"][k].mean())
    # A corrector's row splits its held-out images the same way: count and accuracy agree.
    fitted = df[df["corrector"] != "none"]
    assert (fitted["n_correct"] / fitted["n_test"]).to_numpy() == pytest.approx(fitted["accuracy"].to_numpy())
    assert fitted["accuracy_validation"].between(0, 1).all()
    cross = load_results(reference, "cross")
    assert set(cross["train_pattern"]) == {"random", "column", "mixture"}
    assert len(cross) == 2 * 2 * (2 + 1) * 2 * 2  # arrays x kinds x train rows x test patterns x instances


def test_cross_rows_are_single_chip_fits_on_the_stored_voltages(reference):
    """A cross row is the corrector fitted on one stored chip alone and judged on its partner chip; the
    matrix the report rebuilds from the rows is the mean over grid points of the stored entries."""
    store = ResultStore(reference)
    healthy = store.read_arrays(next(t for t in store.array_task_ids() if t.startswith("c-healthy")))
    n, labels = int(healthy["n_train"]), healthy["labels"]
    t = n + int(healthy["n_validation"])  # the test images follow the validation part
    volts = {}
    for task in store.array_task_ids():
        arrays = store.read_arrays(task)
        volts.update({cid: arrays["outputs_v"][k].astype(np.float64) for k, cid in enumerate(arrays["circuit_ids"])})
    cross = load_results(reference, "cross")
    rows = cross[(cross["array"] == 3) & (cross["kind"] == "off")]

    def fit(x, y, name):
        return MLPCorrector(hidden=4, seed=stable_seed(0, name, 4), max_iter=40).fit(x, y)

    def stored(train, test, instance):
        return rows[(rows["train_pattern"] == train) & (rows["test_pattern"] == test)
                    & (rows["instance"] == instance)]["accuracy"].item()

    for instance in (0, 1):
        v = {p: volts[f"{p}-off-a3-s0.3-i{instance}"] for p in ("random", "column")}
        mix = fit(np.concatenate([v["random"][:n], v["column"][:n]]), np.tile(labels[:n], 2), "cross-mixture")
        for a in v:
            model = fit(v[a][:n], labels[:n], "cross")
            for b in v:
                assert stored(a, b, instance) == pytest.approx(model.score(v[b][t:], labels[t:]), abs=1e-12)
        for b in v:
            assert stored("mixture", b, instance) == pytest.approx(mix.score(v[b][t:], labels[t:]), abs=1e-12)
    result = CrossDefectResult.from_table(cross, types=["random", "column"])
    pivot = cross.pivot_table(index="train_pattern", columns="test_pattern", values="accuracy", aggfunc="mean")
    np.testing.assert_allclose(result.accuracy, pivot.loc[result.train_types, result.test_types].to_numpy())
    assert result.n_test_chips == 2 * 2 * 2  # arrays x kinds x instances


def test_a_rerun_skips_everything_and_a_changed_study_is_refused(reference, tmp_path):
    summary = run_study(parse_study(small_study()), reference, executor=SerialExecutor())
    assert summary.n_run == 0 and summary.n_skipped == 13
    study_file = write_study(tmp_path / "changed.yaml", small_study(circuit={"r_word_ohm": 2.0}))
    result = subprocess.run([sys.executable, "-m", "neurodtco", "run", str(study_file), "--out", str(reference),
                             "--workers", "0"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "holds results of a different study" in result.stderr and "--force" in result.stderr


@pytest.fixture(scope="module")
def local_run(reference, tmp_path_factory):
    """The small study run uninterrupted in two local worker processes."""
    out = tmp_path_factory.mktemp("local")
    executor = LocalExecutor(2)
    try:
        run_study(parse_study(small_study()), out, executor=executor)
    finally:
        executor.close()
    for table in ("circuits", "cross"):  # the worker processes compute exactly what this process does
        pd.testing.assert_frame_equal(load_results(out, table), load_results(reference, table))
    return out


def _parquet_count(out: Path) -> int:
    return len(list((out / "results").rglob("*.parquet"))) if (out / "results").is_dir() else 0


@pytest.mark.slow
def test_a_killed_run_resumes_to_exactly_the_uninterrupted_table(local_run, tmp_path):
    import psutil

    study_file = write_study(tmp_path / "small.yaml", small_study())
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "neurodtco", "run", str(study_file), "--out", str(out), "--workers", "2", "--json"]
    log = open(tmp_path / "run.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    while _parquet_count(out) < 2:
        assert proc.poll() is None, f"the run ended before it could be killed: {(tmp_path / 'run.log').read_text()}"
        assert time.time() < deadline, "no task finished in time"
        time.sleep(0.01)
    workers = psutil.Process(proc.pid).children(recursive=True)
    assert workers, "the runner has no worker processes"
    for w in workers:  # first the workers, mid-task ...
        w.send_signal(signal.SIGKILL)
    proc.send_signal(signal.SIGKILL)  # ... then the runner
    proc.wait(timeout=30)
    psutil.wait_procs(workers, timeout=30)
    done_at_kill = _parquet_count(out)
    assert 2 <= done_at_kill < 13, "the kill must land halfway through the study"

    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["n_skipped"] == done_at_kill and summary["n_run"] == 13 - done_at_kill
    assert not list(out.rglob(".*.tmp-*")), "temporary files of the killed run are cleaned up"
    for table in ("circuits", "cross"):
        pd.testing.assert_frame_equal(load_results(out, table), load_results(local_run, table))
    assert not load_results(out).duplicated(["circuit_id", "corrector", "hidden"]).any()


@pytest.mark.slow
def test_local_processes_and_a_local_dask_cluster_give_identical_tables(local_run, tmp_path):
    dask = DaskExecutor(workers=2)
    try:
        summary = run_study(parse_study(small_study()), tmp_path / "dask", executor=dask)
        assert summary.executor["executor"] == "dask" and summary.executor["workers"] == 2
    finally:
        dask.close()
    for table in ("circuits", "cross"):
        pd.testing.assert_frame_equal(load_results(tmp_path / "dask", table), load_results(local_run, table))


@pytest.mark.slow
def test_a_terminated_run_stops_its_workers_and_keeps_what_finished(tmp_path):
    import psutil

    study_file = write_study(tmp_path / "small.yaml", small_study())
    out = tmp_path / "terminated"
    proc = subprocess.Popen([sys.executable, "-m", "neurodtco", "run", str(study_file), "--out", str(out),
                             "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while _parquet_count(out) < 1:
        assert proc.poll() is None and time.time() < deadline, "the run ended before it could be stopped"
        time.sleep(0.01)
    workers = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, "worker processes outlived their runner"
    assert proc.returncode != 0
    done = _parquet_count(out)
    assert 1 <= done < 13 and not list(out.rglob(".*.tmp-*"))
    assert len(load_results(out)) > 0  # what finished before the stop is stored and readable


def test_a_bad_imperfection_spec_is_refused_with_the_study_file():
    with pytest.raises(StudyFileError, match=r"imperfections: imperfection 0: unknown imperfection kind 'no_such'"):
        parse_study(small_study(imperfections=[{"kind": "no_such"}]))


def test_real_imperfections_change_the_voltages_reproducibly(tmp_path):
    # Temperature shifts every conductance; read noise is resampled per group of inferences, seeded.
    imperfect = [{"kind": "temperature", "temperature_c": 85.0},
                 {"kind": "read_noise", "relative_sigma": 0.05, "group_size": 600}]
    grid = {"patterns": ["random"], "arrays": [3], "kinds": ["on"], "instances": 1}
    runs = {}
    for name, spec in (("clean", []), ("hot", imperfect), ("hot again", imperfect)):
        data = small_study(imperfections=spec, defects=grid, cross_defect={"enabled": False},
                           correctors={"hidden": [], "baselines": []})
        run_study(parse_study(data), tmp_path / name, executor=SerialExecutor())
        store = ResultStore(tmp_path / name)
        runs[name] = {t: store.read_arrays(t)["outputs_v"] for t in store.array_task_ids()}
        table = load_results(tmp_path / name)
        assert (table["imperfections"] != "").all() == bool(spec)
    for (a, v_clean), (b, v_hot), (c, v_again) in zip(*(sorted(r.items()) for r in runs.values())):
        assert not np.allclose(v_clean, v_hot)
        np.testing.assert_array_equal(v_hot, v_again)


def test_imperfections_are_parsed_once_and_applied_per_circuit(monkeypatch, tmp_path):
    from neurodtco.imperfections import Imperfections, ReadNoiseModel, Temperature, parse_imperfections
    from neurodtco.study import compute

    spec = [{"kind": "temperature", "temperature_c": 60.0, "technology": "reram"},
            {"kind": "read_noise", "relative_sigma": 0.02, "group_size": 100}]
    grid = {"patterns": ["random"], "arrays": [3], "kinds": ["on"]}
    study = parse_study(small_study(imperfections=spec, defects=grid, cross_defect={"enabled": False}))
    assert isinstance(study.imperfection_items, Imperfections) and isinstance(study.imperfection_items[0], Temperature)
    assert study.imperfection_items.read_noise == ReadNoiseModel(relative_sigma=0.02, group_size=100)
    # The canonical form (hence the hash and every task id) keeps the dicts as written, defaults not filled in.
    assert study.canonical()["imperfections"] == spec
    assert parse_study(small_study(imperfections=[spec[0]])).hash() != parse_study(
        small_study(imperfections=[{**spec[0], "technology": "eflash"}])).hash()

    calls, real = [], compute.apply_imperfections

    def spy(circuit, items, seed):
        calls.append((items, seed))
        return real(circuit, items, seed)

    monkeypatch.setattr(compute, "apply_imperfections", spy)
    run_study(study, tmp_path / "imp", executor=SerialExecutor())
    # One up-front check in the runner (so that a bad spec fails once, early), then one call per circuit
    # (the healthy one and the two instances), each with its own seed, all with the typed items.
    assert len(calls) == 1 + 1 + 2
    assert all(items == parse_imperfections(spec) for items, _ in calls)
    assert len({seed for _, seed in calls[1:]}) == 3
    records = [json.loads(r) for r in load_results(tmp_path / "imp")["imperfections"]]
    assert all([item["kind"] for item in r["items"]] == ["temperature", "read_noise"] for r in records)


def test_cli_run_names_the_bad_key_and_creates_nothing(tmp_path):
    from typer.testing import CliRunner

    from neurodtco.cli import app

    bad = write_study(tmp_path / "bad.yaml", small_study(defects={"patterns": ["donut"]}))
    result = CliRunner().invoke(app, ["run", str(bad), "--out", str(tmp_path / "out"), "--workers", "0"])
    assert result.exit_code == 2
    assert "defects.patterns: unknown pattern 'donut'" in result.output
    assert not (tmp_path / "out").exists()
    good = write_study(tmp_path / "good.yaml", small_study())
    result = CliRunner().invoke(app, ["run", str(good), "--out", str(tmp_path / "out"), "--workers", "1",
                                      "--dask-workers", "2"])
    assert result.exit_code == 2
    assert "choose one of --workers, --scheduler and --dask-workers" in result.output
