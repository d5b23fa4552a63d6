"""The results store: atomic files, finished-task bookkeeping, the study hash guard, one-call loading."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from neurodtco.store import (ResultStore, StudyChangedError, atomic_write, environment, load_results,
                             load_task_info)


def _frame(task: str, n: int, offset: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({"task_id": [task] * n, "row": np.arange(n), "accuracy": np.arange(n) / 10 + offset,
                         "pattern": ["ring"] * n})


@pytest.fixture()
def store(tmp_path):
    s = ResultStore(tmp_path / "run")
    s.claim("a" * 64, {"name": "x"}, "name: x\n")
    return s


def test_atomic_write_leaves_nothing_when_the_writer_fails(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    def broken(fh):
        fh.write(b"half of the new")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert target.read_bytes() == b"old"  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]  # and no temporary file is left


def test_tasks_round_trip_and_load_in_a_fixed_order(store):
    # Written in one order, loaded in task-id order: a run's completion order never shows in the table.
    for task in ("t-c", "t-a", "t-b"):
        store.write_task(task, "circuits", _frame(task, 3), arrays={"outputs_v": np.ones((2, 3), np.float32)},
                         info={"n_inferences": 6, "elapsed_s": 0.5})
    df = load_results(store.root)
    assert list(df["task_id"]) == ["t-a"] * 3 + ["t-b"] * 3 + ["t-c"] * 3
    assert list(df["row"]) == [0, 1, 2] * 3
    assert store.finished() == {"t-a", "t-b", "t-c"}
    np.testing.assert_array_equal(store.read_arrays("t-b")["outputs_v"], np.ones((2, 3), np.float32))
    info = load_task_info(store.root)
    assert set(info["task_id"]) == {"t-a", "t-b", "t-c"} and (info["n_inferences"] == 6).all()


def test_temporary_files_of_a_killed_writer_are_never_read_and_are_cleaned(store):
    store.write_task("t-a", "circuits", _frame("t-a", 2))
    folder = store.root / "results" / "circuits"
    # What a runner killed inside atomic_write leaves: a torn temporary file next to the real ones.
    (folder / ".t-b.parquet.tmp-999-deadbeef").write_bytes(b"PAR1 torn")
    (store.root / "arrays" / ".t-b.npz.tmp-999-deadbeef").write_bytes(b"PK torn")
    assert store.finished() == {"t-a"}
    assert len(load_results(store.root)) == 2
    assert store.remove_temporary() == 2
    assert sorted(p.name for p in folder.iterdir()) == ["t-a.parquet"]


def test_arrays_without_a_table_do_not_count_as_finished(store):
    # The arrays are written first; a kill between the two writes leaves an unfinished task.
    atomic_write(store.arrays_path("t-x"), lambda fh: np.savez(fh, outputs_v=np.zeros(3)))
    assert "t-x" not in store.finished()
    assert store.array_task_ids() == []


def test_a_different_study_is_refused_unless_forced(store):
    store.write_task("t-a", "circuits", _frame("t-a", 1))
    with pytest.raises(StudyChangedError, match="different study.*--force"):
        store.claim("b" * 64, {"name": "y"}, "name: y\n")
    assert store.stored_hash() == "a" * 64
    assert store.claim("b" * 64, {"name": "y"}, "name: y\n", force=True) is True
    assert store.stored_hash() == "b" * 64
    assert (store.root / "study.yaml").read_text() == "name: y\n"
    # After a forced change, results of tasks the new study no longer has move aside, others stay.
    store.write_task("t-b", "circuits", _frame("t-b", 1))
    assert store.retire(keep={"t-b"}) == ["t-a"]
    assert store.finished() == {"t-b"}
    assert list((store.root / "superseded").rglob("t-a.parquet"))


def test_the_same_study_claims_again_without_force(store):
    assert store.claim("a" * 64, {"name": "x"}, "name: x\n") is False


def test_run_log_skips_a_torn_last_line(store):
    store.log_run({"wall_s": 1.0})
    with open(store.root / "runs.jsonl", "a") as fh:
        fh.write('{"wall_s": 2.')  # a runner killed while appending
    assert store.runs() == [{"wall_s": 1.0}]


def test_environment_records_versions_and_git(store):
    env = store.write_environment({"seeds": {"defects": 3}})
    saved = json.loads((store.root / "environment.json").read_text())
    assert saved["seeds"] == {"defects": 3}
    assert saved["packages"]["numpy"] == np.__version__
    assert "commit" in saved["git"]
    assert env["python"].count(".") == 2


def test_loading_a_folder_that_is_not_a_store_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a study results folder"):
        load_results(tmp_path)
    with pytest.raises(ValueError, match="unknown table 'nope'"):
        ResultStore(tmp_path).table_path("nope", "t")


def test_environment_function_is_plain_data():
    json.dumps(environment())
    assert os.cpu_count() == environment()["cpu_count"]
