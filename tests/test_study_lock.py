"""One run writes a results folder at a time: a second one stops at once and says who holds it."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from neurodtco.store import LOCK_NAME, ResultStore, StoreBusyError, load_results, load_task_info
from neurodtco.study import SerialExecutor, parse_study, run_study

#: The smallest real study: the healthy circuit and one defective one, two tasks.
TINY = {"name": "tiny", "engine": "ideal",
        "defects": {"patterns": ["random"], "kinds": ["on"], "arrays": [3], "severities": [0.3]},
        "correctors": {"hidden": [2], "options": {"max_iter": 5}}}

#: A second process that takes the folder's lock, says so, and holds it until its stdin closes.
HOLDER = ("import sys\nfrom neurodtco.store import ResultStore\n"
          "with ResultStore(sys.argv[1]).lock():\n    print('held', flush=True)\n    sys.stdin.read()\n")


@pytest.fixture()
def holder(tmp_path):
    """Start a process holding ``tmp_path / 'out'``; yields it (killed at the end if still alive)."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)


def test_the_lock_records_its_holder_and_refuses_a_second_holder(tmp_path):
    store = ResultStore(tmp_path / "out")
    with store.lock() as me:
        assert me["pid"] == os.getpid() and me["host"] == socket.gethostname()
        assert json.loads((store.root / LOCK_NAME).read_text()) == me
        # A second open of the lock file conflicts even inside one process (flock is per open file).
        who = f"is in use by another run (pid {os.getpid()} on {socket.gethostname()}, started {me['started']})"
        with pytest.raises(StoreBusyError, match=re.escape(who)):
            with ResultStore(tmp_path / "out").lock():
                pass
    assert (store.root / LOCK_NAME).read_text() == ""  # released: nobody is named any more
    with ResultStore(tmp_path / "out").lock():  # and the folder can be taken again
        pass


def test_a_second_run_on_a_held_folder_fails_fast_and_runs_once_the_holder_is_gone(tmp_path, holder):
    out = tmp_path / "out"
    start = time.perf_counter()
    with pytest.raises(StoreBusyError) as info:
        run_study(parse_study(TINY), out, executor=SerialExecutor())
    elapsed = time.perf_counter() - start
    message = str(info.value)
    assert f"pid {holder.pid} on {socket.gethostname()}" in message
    assert "wait for that run to finish" in message and "another --out folder" in message
    assert "\n" not in message
    assert elapsed < 5.0, f"the refusal took {elapsed:.1f} s: it must come before any work"
    assert not (out / "results").exists(), "the refused run wrote nothing"

    holder.send_signal(signal.SIGKILL)  # a killed holder leaves no stale lock behind
    holder.wait(timeout=30)
    summary = run_study(parse_study(TINY), out, executor=SerialExecutor())
    assert summary.ok and summary.n_run == 2
    assert (out / LOCK_NAME).read_text() == ""


def test_a_held_folder_can_still_be_read(tmp_path):
    out = tmp_path / "out"
    run_study(parse_study(TINY), out, executor=SerialExecutor())
    with ResultStore(out).lock():
        assert len(load_results(out)) == 2 * 2  # two circuits, each raw and with the h=2 corrector
        assert set(load_task_info(out)["task_id"]) == ResultStore(out).finished()


def test_the_cli_says_in_one_line_who_holds_the_folder(tmp_path, holder):
    study = tmp_path / "tiny.yaml"
    study.write_text(json.dumps(TINY))
    result = subprocess.run([sys.executable, "-m", "neurodtco", "run", str(study), "--out", str(tmp_path / "out"),
                             "--workers", "0"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert f"pid {holder.pid}" in lines[0] and "another --out folder" in lines[0]


def test_an_executor_factory_is_built_only_by_a_run_that_holds_the_folder_and_has_work(tmp_path, holder):
    built = []

    def factory():
        built.append(SerialExecutor())
        return built[-1]

    out = tmp_path / "out"
    with pytest.raises(StoreBusyError):
        run_study(parse_study(TINY), out, executor=factory)
    assert built == [], "a refused run must start no workers (a Dask cluster, say)"
    holder.kill()
    holder.wait(timeout=30)
    assert run_study(parse_study(TINY), out, executor=factory).n_run == 2
    assert len(built) == 1
    assert run_study(parse_study(TINY), out, executor=factory).n_run == 0
    assert len(built) == 1, "a run with nothing left to do builds no executor"
