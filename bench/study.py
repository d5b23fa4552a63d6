"""Study throughput: the built-in demo's circuit-inferences per second, and the Dask speed-up of 2 workers over 1.

Run on demand (not in CI)::

    .venv/bin/python bench/study.py                 # full demo on 2 local workers, then the Dask scaling
    .venv/bin/python bench/study.py --study quick   # the small study (about a minute)
    .venv/bin/python bench/study.py --skip-demo     # only the Dask scaling

A circuit-inference is one image through one whole (defective) circuit on the exact engine; the
throughput counts the whole study (simulation, every corrector fit, the cross-defect matrix),
divided by its wall time. The scaling runs the same sub-grid (the demo restricted to its first
``--scaling-patterns`` patterns, no cross matrix, ``--scaling-max-circuits`` circuits per task) on
a local Dask cluster of 1 and then 2 worker processes, timing ``run_study`` after the cluster is up. The load average is printed because
other processes on a shared machine slow every number down.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from neurodtco.store import load_task_info
from neurodtco.study import DaskExecutor, LocalExecutor, load_study, run_study


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def bench_demo(study_name: str, workers: int, root: Path) -> dict:
    """Run the whole study on local worker processes; throughput and where the time went."""
    from neurodtco.report import write_report

    study = load_study(study_name)
    out = root / f"{study.name}-local{workers}"
    executor = LocalExecutor(workers)
    start = time.perf_counter()
    try:
        summary = run_study(study, out, executor=executor)
    finally:
        executor.close()
    run_s = time.perf_counter() - start
    t0 = time.perf_counter()
    write_report(out)
    report_s = time.perf_counter() - t0
    info = load_task_info(out)
    return {"study": study.name, "workers": workers, "circuits": summary.n_circuits, "inferences": summary.n_inferences,
            "run_s": run_s, "report_s": report_s, "total_s": run_s + report_s,
            "throughput_inferences_per_s": summary.n_inferences / run_s,
            "simulate_s": float(info["simulate_s"].sum()), "fit_s": float(info["fit_s"].sum()),
            "task_cpu_s": float(info["cpu_s"].sum()), "tasks": len(info),
            "stages_s": summary.to_dict()["stages_s"],
            # What the run would take with the workers alone on the machine: their CPU time spread over
            # the workers, plus the runner's own serial part (network, setup).
            "ideal_run_s": float(info["cpu_s"].sum()) / workers + summary.setup_s}


def bench_scaling(study_name: str, n_patterns: int, max_circuits: int, root: Path) -> dict:
    """The same sub-grid on a local Dask cluster with 1, then 2 workers."""
    base = load_study(study_name)
    grid = base.defects.model_copy(update={"patterns": base.defects.patterns[:n_patterns]})
    # Smaller tasks than the demo's, so that two workers have enough of them to share evenly.
    study = base.model_copy(update={"defects": grid, "cross_defect": base.cross_defect.model_copy(update={"enabled": False}),
                                    "tasks": base.tasks.model_copy(update={"max_circuits": max_circuits}),
                                    "name": f"{base.name}-scaling"})
    times = {}
    inferences = 0
    for n in (1, 2):
        executor = DaskExecutor(workers=n)
        try:
            start = time.perf_counter()
            summary = run_study(study, root / f"scaling-dask{n}", executor=executor)
            times[n] = time.perf_counter() - start
            inferences = summary.n_inferences
        finally:
            executor.close()
    return {"patterns": list(grid.patterns), "circuits": study.n_circuits + 1, "inferences": inferences,
            "tasks": len(list((root / "scaling-dask2" / "results" / "circuits").glob("*.parquet"))),
            "dask1_s": times[1], "dask2_s": times[2], "speedup": times[1] / times[2],
            "dask1_inferences_per_s": inferences / times[1], "dask2_inferences_per_s": inferences / times[2]}


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmarks, print a table and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="demo", help="built-in study name or study file (default: demo)")
    parser.add_argument("--workers", type=int, default=2, help="local worker processes for the demo run")
    parser.add_argument("--scaling-patterns", type=int, default=1, help="patterns of the sub-grid for the Dask scaling")
    parser.add_argument("--scaling-max-circuits", type=int, default=8, help="circuits per task in the scaling runs")
    parser.add_argument("--skip-demo", action="store_true", help="only measure the Dask scaling")
    parser.add_argument("--skip-scaling", action="store_true", help="only measure the demo throughput")
    parser.add_argument("--keep", type=Path, default=None, help="keep the results folders here")
    args = parser.parse_args(argv)
    os.environ.setdefault("NEURODTCO_CACHE", str(Path(__file__).resolve().parents[1] / ".neurodtco-cache"))
    result: dict = {"cpu_count": os.cpu_count(), "load_before": _load()}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        if not args.skip_demo:
            d = bench_demo(args.study, args.workers, root)
            result["demo"] = d
            print(f"{d['study']}: {d['circuits']} circuits, {d['inferences']:,} circuit-inferences in {d['run_s']:.1f} s "
                  f"on {d['workers']} local workers = {d['throughput_inferences_per_s']:,.0f} inferences/s; report "
                  f"{d['report_s']:.1f} s; total {d['total_s']:.1f} s. Task CPU time {d['task_cpu_s']:.0f} s "
                  f"(simulation {d['simulate_s']:.0f} s, corrector fits {d['fit_s']:.0f} s of task wall time): "
                  f"{d['ideal_run_s']:.0f} s on {d['workers']} otherwise idle cores", file=sys.stderr)
            spent = sum(d["stages_s"].values()) or 1.0
            for stage, seconds in sorted(d["stages_s"].items(), key=lambda kv: -kv[1]):
                print(f"  {stage:<22} {seconds:9.2f} s  {100 * seconds / spent:5.1f} %", file=sys.stderr)
        if not args.skip_scaling:
            s = bench_scaling(args.study, args.scaling_patterns, args.scaling_max_circuits, root)
            result["scaling"] = s
            print(f"Dask scaling on {s['circuits']} circuits in {s['tasks']} tasks ({', '.join(s['patterns'])}): "
                  f"1 worker {s['dask1_s']:.1f} s "
                  f"({s['dask1_inferences_per_s']:,.0f}/s), 2 workers {s['dask2_s']:.1f} s "
                  f"({s['dask2_inferences_per_s']:,.0f}/s): speed-up {s['speedup']:.2f}x", file=sys.stderr)
    result["load_after"] = _load()
    print(f"load average before/after (1/5/15 min): {result['load_before']} / {result['load_after']} "
          f"on {result['cpu_count']} cores", file=sys.stderr)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
