"""The results store: a folder that a killed run can resume, and that loads as one table.

Layout of a store ``DIR``::

    DIR/study.yaml               the study file as given (or as resolved, when built in Python)
    DIR/study.resolved.json      every setting with its default filled in, and the study's hash
    DIR/environment.json         package versions, git commit, platform, seeds of the latest run
    DIR/runs.jsonl               one line per run: executor, workers, tasks run, wall time
    DIR/.lock                    held (flock) by the run writing the folder: pid, host, start time
    DIR/results/<table>/<task>.parquet   one file per finished task (tables: circuits, cross, dies)
    DIR/arrays/<task>.npz        float32 output voltages, defect masks (beside a circuits task)

Every file is written to a temporary name in the same folder, flushed to disk and renamed over
its final name (``os.replace`` is atomic on POSIX), so a reader sees a whole file or none. A
task's arrays are written before its table, and a task counts as finished exactly when its
table file exists: a run killed at any instant leaves finished tasks and stray temporary files,
never a half-written result.

One run writes a folder at a time: it holds an exclusive ``flock`` on ``DIR/.lock`` (the kernel
drops it when the process ends, however it ends, so a killed run never leaves a stale lock), and a
second run on the same folder stops at once with ``StoreBusyError``. Readers take no lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Union

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

TABLES = ("circuits", "cross", "dies")
_META_KEY = b"neurodtco.task"
_TMP_MARK = ".tmp-"
LOCK_NAME = ".lock"


class StudyChangedError(ValueError):
    """The store holds results of a different study; rerun with ``force`` to replace them."""


class StoreBusyError(ValueError):
    """Another run holds the store's lock (the message says which process, and what to do)."""


def atomic_write(path: Path, write: Callable[[Any], None], binary: bool = True) -> None:
    """Write a file through ``write(file_object)`` to a temporary name, fsync it and rename it into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}{_TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb" if binary else "w") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Atomically replace a text file."""
    atomic_write(path, lambda fh: fh.write(text), binary=False)


class ResultStore:
    """A study's results folder (see the module docstring for its layout)."""

    def __init__(self, root: Union[str, Path]):
        self.root = Path(root)

    # -- paths
    def table_path(self, table: str, task_id: str) -> Path:
        """Where a finished task's table file lives."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; choose one of {', '.join(TABLES)}")
        return self.root / "results" / table / f"{task_id}.parquet"

    def arrays_path(self, task_id: str) -> Path:
        """Where a task's arrays (voltages, masks) live."""
        return self.root / "arrays" / f"{task_id}.npz"

    # -- one writer at a time
    @contextmanager
    def lock(self) -> Iterator[dict[str, Any]]:
        """Hold the folder for one run (creating it); ``StoreBusyError`` at once if another run holds it."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreBusyError(_busy_message(self.root, _read_holder(fd))) from None
            holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now()}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
            try:
                yield holder
            finally:
                os.ftruncate(fd, 0)  # while still locked: an empty file means no run holds it
        finally:
            os.close(fd)  # closing the only descriptor releases the flock

    # -- the study and its hash
    def stored_hash(self) -> Optional[str]:
        """Hash of the study whose results this store holds (None for a new store)."""
        path = self.root / "study.resolved.json"
        if not path.is_file():
            return None
        return json.loads(path.read_text())["hash"]

    def stored_study(self) -> dict[str, Any]:
        """The resolved study this store holds."""
        path = self.root / "study.resolved.json"
        if not path.is_file():
            raise FileNotFoundError(f"{str(self.root)!r} is not a study results folder (no study.resolved.json); "
                                    "create one with `neurodtco run STUDY.yaml --out DIR`")
        return json.loads(path.read_text())["study"]

    def claim(self, study_hash: str, resolved: dict[str, Any], source_text: str, force: bool = False) -> bool:
        """Bind the store to a study: refuse a different one unless ``force``; True when the study changed."""
        old = self.stored_hash()
        if old is not None and old != study_hash and not force:
            raise StudyChangedError(
                f"{str(self.root)!r} holds results of a different study (hash {old[:12]}, the study file now gives "
                f"{study_hash[:12]}); use another --out folder, or --force to rerun what changed "
                "(results of tasks that no longer exist are moved to superseded/)")
        for sub in (*(f"results/{t}" for t in TABLES), "arrays"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        if old != study_hash:
            atomic_write_text(self.root / "study.yaml", source_text)
            atomic_write_text(self.root / "study.resolved.json",
                              json.dumps({"hash": study_hash, "study": resolved}, indent=2, sort_keys=True) + "\n")
        return old is not None and old != study_hash

    # -- tasks
    def finished(self) -> set[str]:
        """Ids of the tasks whose table file exists (and therefore is complete)."""
        done = set()
        for table in TABLES:
            folder = self.root / "results" / table
            if folder.is_dir():
                done.update(p.stem for p in folder.glob("*.parquet") if not p.name.startswith("."))
        return done

    def write_task(self, task_id: str, table: str, frame: pd.DataFrame, arrays: Optional[dict[str, np.ndarray]] = None,
                   info: Optional[dict[str, Any]] = None) -> None:
        """Store one finished task: its arrays first, then its table (whose presence marks it finished)."""
        if arrays is not None:
            atomic_write(self.arrays_path(task_id), lambda fh: np.savez(fh, **arrays))
        tab = pa.Table.from_pandas(frame, preserve_index=False)
        tab = tab.replace_schema_metadata({_META_KEY: json.dumps(info or {}, default=_json_default).encode()})
        atomic_write(self.table_path(table, task_id), lambda fh: pq.write_table(tab, fh))

    def read_arrays(self, task_id: str) -> dict[str, np.ndarray]:
        """The arrays a task stored (output voltages, masks, ...)."""
        path = self.arrays_path(task_id)
        if not path.is_file():
            raise FileNotFoundError(f"task {task_id!r} stored no arrays in {str(self.root)!r}")
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def array_task_ids(self) -> list[str]:
        """Ids of the finished tasks that stored arrays."""
        done = self.finished()
        return sorted(p.stem for p in (self.root / "arrays").glob("*.npz") if p.stem in done)

    def remove_temporary(self) -> int:
        """Delete temporary files left by a killed run; returns how many."""
        count = 0
        for path in self.root.rglob(f".*{_TMP_MARK}*"):
            path.unlink(missing_ok=True)
            count += 1
        return count

    def retire(self, keep: Iterable[str]) -> list[str]:
        """Move finished tasks not in ``keep`` to ``superseded/<time>/`` (after a --force rerun)."""
        keep = set(keep)
        stale = sorted(self.finished() - keep)
        if not stale:
            return []
        dest = self.root / "superseded" / time.strftime("%Y%m%d-%H%M%S")
        for task_id in stale:
            for table in TABLES:
                src = self.table_path(table, task_id)
                if src.exists():
                    (dest / "results" / table).mkdir(parents=True, exist_ok=True)
                    shutil.move(str(src), dest / "results" / table / src.name)
            arr = self.arrays_path(task_id)
            if arr.exists():
                (dest / "arrays").mkdir(parents=True, exist_ok=True)
                shutil.move(str(arr), dest / "arrays" / arr.name)
        return stale

    # -- bookkeeping
    def write_environment(self, extra: dict[str, Any]) -> dict[str, Any]:
        """Record package versions, the git commit and the platform (plus ``extra``) in environment.json."""
        env = {**environment(), **extra}
        atomic_write_text(self.root / "environment.json", json.dumps(env, indent=2, sort_keys=True, default=_json_default) + "\n")
        return env

    def log_run(self, record: dict[str, Any]) -> None:
        """Append one line describing a run to runs.jsonl."""
        with open(self.root / "runs.jsonl", "a") as fh:
            fh.write(json.dumps(record, sort_keys=True, default=_json_default) + "\n")

    def runs(self) -> list[dict[str, Any]]:
        """Every run recorded in runs.jsonl (a torn last line of a killed run is skipped)."""
        path = self.root / "runs.jsonl"
        if not path.is_file():
            return []
        out = []
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out


def _read_holder(fd: int) -> dict[str, Any]:
    """What the lock's holder recorded (empty while it has not written it yet)."""
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (ValueError, UnicodeDecodeError):
        return {}


def _busy_message(root: Path, holder: dict[str, Any]) -> str:
    who = (f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}" if holder
           else "a process that is just starting")
    return (f"{str(root)!r} is in use by another run ({who}); wait for that run to finish (rerunning the same "
            "command then resumes or skips its tasks), or write to another --out folder")


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def _check_store(root: Union[str, Path]) -> Path:
    root = Path(root)
    if not (root / "results").is_dir():
        raise FileNotFoundError(f"{str(root)!r} is not a study results folder (no results/ inside); "
                                "create one with `neurodtco run STUDY.yaml --out DIR`")
    return root


def load_results(root: Union[str, Path], table: str = "circuits") -> pd.DataFrame:
    """Every finished task's rows as one tidy DataFrame, in a fixed order (by task id, then row).

    ``table="circuits"``: one row per circuit and corrector (``corrector == "none"`` is the circuit
    itself). ``table="cross"``: one row per (training pattern, test pattern, grid point).
    ``table="dies"``: one row per die of the wafer section and mitigation.
    """
    root = _check_store(root)
    store = ResultStore(root)
    store.table_path(table, "x")  # validates the table name
    files = sorted((root / "results" / table).glob("*.parquet"))
    files = [f for f in files if not f.name.startswith(".")]
    if not files:
        return pd.DataFrame()
    tables = [pq.read_table(f).replace_schema_metadata(None) for f in files]
    return pa.concat_tables(tables, promote_options="default").to_pandas().reset_index(drop=True)


def load_task_info(root: Union[str, Path]) -> pd.DataFrame:
    """Per finished task: its timing and size (elapsed, simulate and fit seconds, circuit-inferences)."""
    root = _check_store(root)
    rows = []
    for table in TABLES:
        for f in sorted((root / "results" / table).glob("*.parquet")):
            if f.name.startswith("."):
                continue
            meta = pq.read_schema(f).metadata or {}
            info = json.loads(meta.get(_META_KEY, b"{}"))
            rows.append({"task_id": f.stem, "table": table, **info})
    return pd.DataFrame(rows)


def environment() -> dict[str, Any]:
    """Python, platform, versions of the packages results depend on, and the git commit of the code."""
    versions = {}
    for pkg in ("neurodtco", "numpy", "scipy", "torch", "scikit-learn", "pandas", "pyarrow", "pydantic", "dask",
                "distributed", "matplotlib"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"python": sys.version.split()[0], "platform": platform.platform(), "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "packages": versions, "git": git_state(), "recorded_at": _now()}


def git_state() -> dict[str, Any]:
    """Commit and dirty flag of the source tree the package was imported from (None outside git)."""
    src = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
