"""Study commands: run a study, write its report, and the demo that does both."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any, Optional

import typer

from .common import JsonOpt, emit_json, fail, user_errors
from .progress import progress

WorkersOpt = typer.Option(None, "--workers", help="Local worker processes (default: one per core); 0 runs the tasks "
                                                   "in this process, without workers.")
DeviceOpt = typer.Option(None, "--device", help="Torch device of the corrector fits, e.g. cuda (default: the study's "
                                                "device key, cpu unless it says otherwise).")


def run(
    study: Path = typer.Argument(..., help="Study file (YAML or TOML), or a built-in study name (see `neurodtco demo --help`)."),
    out: Path = typer.Option(..., "--out", help="Results folder (created; a rerun resumes it)."),
    workers: Optional[int] = WorkersOpt,
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Address of a running Dask scheduler, e.g. tcp://host:8786."),
    dask_workers: Optional[int] = typer.Option(None, "--dask-workers", help="Start a local Dask cluster with N worker processes."),
    force: bool = typer.Option(False, "--force", help="Accept a changed study file: rerun the tasks it changes."),
    report: bool = typer.Option(False, "--report", help="Write DIR/report.html when the run finishes."),
    device: Optional[str] = DeviceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Run a study: expand its grid into tasks, run the unfinished ones, store each result atomically."""
    run_and_report(str(study), out, workers, scheduler, dask_workers, force, as_json, report_after=report,
                   device=device)


def report(
    results: Path = typer.Argument(..., help="Results folder written by `neurodtco run`."),
    out: Optional[Path] = typer.Option(None, "--out", help="HTML file to write; default DIR/report.html."),
    as_json: bool = JsonOpt,
) -> None:
    """Write the self-contained HTML report (figures embedded) of a study's results."""
    from ..report import write_report  # pandas and matplotlib: only when a report is written

    with user_errors():
        start = time.perf_counter()
        path = write_report(results, out)
    if as_json:
        emit_json({"report": str(path), "elapsed_s": time.perf_counter() - start})
    else:
        typer.echo(f"report written to {path}")


def demo(
    quick: bool = typer.Option(False, "--quick", help="The small built-in study (under a minute) instead of the full one."),
    study: Optional[str] = typer.Option(None, "--study", help="Another built-in study instead: fashion-cnn (the "
                                        "stuck-at study on a tiled CNN on Fashion-MNIST), reviewed (5 networks x 5 "
                                        "defect instances), yield (wafers of dies, yield against D0 with mitigations)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Results folder; default results/NAME (demo, quick, ...)."),
    workers: Optional[int] = WorkersOpt,
    force: bool = typer.Option(False, "--force", help="Rerun what changed if the folder holds an older study."),
    device: Optional[str] = DeviceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """The main job: run the built-in stuck-at study on the exact engine, then write its HTML report."""
    from ..study.schema import BUILTIN_STUDIES  # the study machinery loads only when a study runs

    with user_errors():
        if study is not None and quick:
            raise ValueError("give --quick or --study NAME, not both")
        if study is not None and study not in BUILTIN_STUDIES:
            raise ValueError(f"--study {study!r} is not a built-in study: choose one of {', '.join(BUILTIN_STUDIES)}")
    name = study or ("quick" if quick else "demo")
    run_and_report(name, out or Path("results") / name, workers, None, None, force, as_json, report_after=True,
                   device=device)


def run_and_report(study: str, out: Path, workers: Optional[int], scheduler: Optional[str],
                   dask_workers: Optional[int], force: bool, as_json: bool, report_after: bool,
                   device: Optional[str] = None) -> None:
    """Run a study with a progress display, optionally write its report, and print the summary."""
    # pandas, pyarrow and dask: imported only by the commands that run a study.
    from ..correction.base import check_device
    from ..study import StudyRunError, executor_factory, load_study, run_study

    with user_errors():
        spec = load_study(study)
        if device is not None:
            # Refused here, before any work, rather than in every task on every worker.
            spec = spec.model_copy(update={"device": check_device(device)})
        target: Any = study if device is None else spec
        # Built by the run once it holds the folder and has work: a busy folder starts no cluster.
        executor = executor_factory(workers=workers, scheduler=scheduler, dask_workers=dask_workers)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # a terminated run stops its workers too (finished tasks stay stored)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        with progress(f"study {spec.name}", 0, "tasks", quiet=as_json) as update:
            def show(p: Any) -> None:
                rate = p.inferences / max(p.elapsed_s, 1e-9) if p.inferences else 0.0
                detail = p.stage if p.stage != "running" else (f"{rate:,.0f} inferences/s" if rate else "")
                update(p.done, p.total, done_before=p.done_before, detail=detail)

            try:
                summary = run_study(target, out, executor=executor, force=force, progress=show)
            except (StudyRunError, ValueError, FileNotFoundError) as exc:
                fail(str(exc))
    finally:
        signal.signal(signal.SIGTERM, previous)
    payload = summary.to_dict()
    if report_after:
        from ..report import write_report

        with user_errors():
            start = time.perf_counter()
            payload["report"] = str(write_report(out))
            payload["report_s"] = time.perf_counter() - start
    payload["total_s"] = summary.wall_s + payload.get("report_s", 0.0)
    if as_json:
        emit_json(payload)
        return
    if summary.n_run == 0:
        typer.echo(f"study {spec.name}: all {summary.n_tasks} tasks already finished in {out}")
    else:
        typer.echo(f"study {spec.name}: ran {summary.n_run} of {summary.n_tasks} tasks ({summary.n_skipped} were already "
                   f"done), {summary.n_circuits} circuits, {summary.n_inferences:,} circuit-inferences in "
                   f"{summary.wall_s:.1f} s ({summary.throughput:,.0f} inferences/s) with "
                   f"{summary.executor.get('executor')} workers: {summary.executor.get('workers')}")
    if report_after:
        typer.echo(f"report: {payload['report']} ({payload['report_s']:.1f} s); total {payload['total_s']:.1f} s")
