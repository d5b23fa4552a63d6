"""The runner: expand a study, skip what the store already holds, run the rest, write each result.

Only the runner writes to the store (workers return their results), so a worker killed mid-task
loses that task and nothing else; rerunning the same command runs exactly the missing tasks.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import yaml

from ..store import ResultStore
from .compute import Setup, execute_task, prepare_setup
from .executors import LocalExecutor
from .schema import BUILTIN_STUDIES, Study, builtin_study_path, load_study
from .timing import add_stages, task_stages
from .tasks import Task, expand_tasks


@dataclass(frozen=True)
class RunProgress:
    """A snapshot for progress displays."""

    done: int
    total: int
    done_before: int
    inferences: int
    circuits: int
    elapsed_s: float
    stage: str = "running"


@dataclass
class RunSummary:
    """What a run did; ``throughput`` is circuit-inferences per second of this run's wall time."""

    out: Path
    study_hash: str
    n_tasks: int
    n_skipped: int
    n_run: int
    failures: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0
    setup_s: float = 0.0
    n_inferences: int = 0
    n_circuits: int = 0
    executor: dict[str, Any] = field(default_factory=dict)
    stages_s: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every task of the study is finished."""
        return not self.failures

    @property
    def throughput(self) -> float:
        """Circuit-inferences per second over the run (setup included)."""
        return self.n_inferences / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {"out": str(self.out), "study_hash": self.study_hash, "n_tasks": self.n_tasks,
                "n_skipped": self.n_skipped, "n_run": self.n_run, "n_failed": len(self.failures),
                "failures": self.failures, "wall_s": self.wall_s, "setup_s": self.setup_s,
                "n_inferences": self.n_inferences, "n_circuits": self.n_circuits,
                "throughput_inferences_per_s": self.throughput, "executor": self.executor,
                "stages_s": {"setup": self.setup_s, **self.stages_s}}


class StudyRunError(RuntimeError):
    """Some tasks failed; the finished ones are stored, and a rerun retries the rest."""

    def __init__(self, summary: RunSummary):
        self.summary = summary
        first = "; ".join(f"{k}: {v}" for k, v in list(summary.failures.items())[:3])
        more = f" (and {len(summary.failures) - 3} more)" if len(summary.failures) > 3 else ""
        super().__init__(f"{len(summary.failures)} of {summary.n_tasks} tasks failed: {first}{more}. "
                         f"Finished tasks are stored in {str(summary.out)!r}; rerun the same command to retry the rest.")


def _resolve_study(study: Union[Study, str, Path]) -> tuple[Study, str]:
    """The validated study and the text to keep as DIR/study.yaml (the file itself, comments included)."""
    if isinstance(study, Study):
        return study, yaml.safe_dump(study.canonical(), sort_keys=False)
    path = Path(study)
    if not path.exists() and str(study) in BUILTIN_STUDIES:
        path = builtin_study_path(str(study))
    return load_study(path), path.read_text()


def run_study(study: Union[Study, str, Path], out: Union[str, Path], *, executor: Any = None,
              workers: Optional[int] = None, force: bool = False,
              progress: Optional[Callable[[RunProgress], None]] = None) -> RunSummary:
    """Run every unfinished task of ``study`` and store the results in ``out``; see ``RunSummary``.

    ``executor``: a ``LocalExecutor``, ``DaskExecutor`` or ``SerialExecutor`` (closed by the
    caller); or a zero-argument callable that builds one (``executor_factory``), called only once
    the run holds the store and has tasks to run, and closed by the run; by default a
    ``LocalExecutor(workers)`` that the run closes. A store that holds
    another study's results is refused (``StudyChangedError``) unless ``force``; a store that
    another run is writing is refused at once (``StoreBusyError``, naming that run).
    """
    start = time.perf_counter()
    study, text = _resolve_study(study)
    store = ResultStore(out)
    with store.lock():  # before the setup (which may train a network): a second run stops at once
        return _run_locked(study, text, store, start, executor, workers, force, progress)


def _run_locked(study: Study, text: str, store: ResultStore, start: float, executor: Any, workers: Optional[int],
                force: bool, progress: Optional[Callable[[RunProgress], None]]) -> RunSummary:
    """``run_study`` once this process holds the store."""
    study_hash = study.hash()
    store.claim(study_hash, study.canonical(), text, force=force)
    store.remove_temporary()
    def training(epoch: int, epochs: int) -> None:
        # Training the study's network (the first time only; then it is cached) can take minutes: say so.
        if progress is not None:
            progress(RunProgress(done=0, total=0, done_before=0, inferences=0, circuits=0,
                                 elapsed_s=time.perf_counter() - start,
                                 stage=f"training the network, epoch {epoch} of {epochs}"))

    setup = prepare_setup(study, progress=training)
    tasks = expand_tasks(study, setup.fingerprint)
    if force:
        store.retire(t.id for t in tasks)
    own = executor is None or not hasattr(executor, "submit")  # none, or a factory: the run owns what it builds
    summary = RunSummary(out=store.root, study_hash=study_hash, n_tasks=len(tasks), n_skipped=0, n_run=0)
    done = store.finished() & {t.id for t in tasks}
    summary.n_skipped = len(done)
    pending = [t for t in tasks if t.id not in done]
    summary.setup_s = time.perf_counter() - start
    if not pending:
        summary.wall_s = time.perf_counter() - start
        return summary
    if own:
        executor = LocalExecutor(workers) if executor is None else executor()
    summary.executor = executor.describe()
    store.write_environment({"study_hash": study_hash, "seeds": study.canonical()["seeds"],
                             "network_fingerprint": setup.fingerprint, "executor": summary.executor})
    try:
        _drive(store, tasks, pending, done, setup, executor, summary, start, progress)
    except BaseException:
        if own:
            executor.close(cancel=True)
        raise
    if own:
        executor.close()
    summary.wall_s = time.perf_counter() - start
    store.log_run({**summary.to_dict(), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    if summary.failures:
        raise StudyRunError(summary)
    return summary


def _cross_inputs(store: ResultStore, task: Task) -> dict[str, Any]:
    """The stored output voltages of the circuits a cross task compares."""
    wanted = {p.circuit_id for p in task.circuits}
    inputs = {}
    for dep in task.depends_on:
        arrays = store.read_arrays(dep)
        for k, cid in enumerate(arrays["circuit_ids"].tolist()):
            if cid in wanted:
                inputs[cid] = arrays["outputs_v"][k]
    missing = wanted - set(inputs)
    if missing:
        raise ValueError(f"cross task {task.id}: stored voltages missing for {sorted(missing)[:3]}")
    return inputs


def _drive(store: ResultStore, tasks: list[Task], pending: list[Task], done: set[str], setup: Setup, executor: Any,
           summary: RunSummary, start: float, progress: Optional[Callable[[RunProgress], None]]) -> None:
    """Submit ready tasks (a bounded number in flight, cross tasks first) and store each result."""
    shared = executor.share(setup)
    queue = list(pending)
    inflight: dict[Any, Task] = {}
    total, before = len(tasks), len(done)

    def report(stage: str = "running") -> None:
        if progress is not None:
            progress(RunProgress(done=len(done), total=total, done_before=before, inferences=summary.n_inferences,
                                 circuits=summary.n_circuits, elapsed_s=time.perf_counter() - start, stage=stage))

    report()
    while queue or inflight:
        # A bounded window keeps newly ready cross tasks from waiting behind the whole grid.
        limit = max(2, 2 * int(executor.workers or 1))
        for task in sorted(queue, key=lambda t: t.stage != "cross"):
            if len(inflight) >= limit:
                break
            if any(d in summary.failures for d in task.depends_on):
                summary.failures[task.id] = "a task it depends on failed"
                queue.remove(task)
                continue
            if not all(d in done for d in task.depends_on):
                continue
            start_io = time.perf_counter()
            inputs = _cross_inputs(store, task) if task.stage == "cross" else None
            add_stages(summary.stages_s, {"io": time.perf_counter() - start_io})
            try:
                future = executor.submit(execute_task, task, shared, inputs)
            except cf.process.BrokenProcessPool as exc:
                for t in queue:
                    summary.failures.setdefault(t.id, f"worker pool broken: {exc}")
                for t in inflight.values():
                    summary.failures.setdefault(t.id, f"worker pool broken: {exc}")
                return
            inflight[future] = task
            queue.remove(task)
        if not inflight:
            for t in queue:  # unreachable dependencies (should not happen: the grid is closed)
                summary.failures[t.id] = "dependencies never finished"
            return
        finished, _ = executor.wait_any(list(inflight))
        for future in finished:
            task = inflight.pop(future)
            try:
                out = future.result()
            except Exception as exc:  # a failed task is reported, the others go on
                summary.failures[task.id] = f"{type(exc).__name__}: {exc}"
                continue
            start_io = time.perf_counter()
            store.write_task(task.id, task.stage, out.table, out.arrays, out.info)
            add_stages(summary.stages_s, {**task_stages(out.info), "io": time.perf_counter() - start_io})
            done.add(task.id)
            summary.n_run += 1
            summary.n_inferences += int(out.info.get("n_inferences", 0))
            summary.n_circuits += int(out.info.get("n_circuits", 0))
            report()
