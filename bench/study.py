"""Study throughput: the built-in demo against its floor, and the Dask parallel efficiency of N workers over 1.

Run on demand (not in CI)::

    .venv/bin/python bench/study.py                    # full demo on 2 local workers, then the Dask scaling
    .venv/bin/python bench/study.py --study quick      # the small study (about a minute)
    .venv/bin/python bench/study.py --skip-demo --dask-workers 4   # only the Dask scaling, 1 and 4 workers
    .venv/bin/python bench/study.py --device cuda      # the corrector fits on a GPU
    .venv/bin/python bench/study.py --torch-fits       # the fits in torch instead of compiled C (the comparison)

A circuit-inference is one image through one whole (defective) circuit on the exact engine; the
throughput counts the whole study (simulation, every corrector fit, the cross-defect matrix),
divided by its wall time. The floor (``neurodtco.study.floor``) is the flops of every corrector
fit at the evaluations it ran, at the GEMM rate of the fits' shape measured in this run, plus the
simulations' engine seconds, spread over the workers; ``ratio`` is the run's wall time over it.
The scaling runs the same sub-grid (the demo restricted to its first ``--scaling-patterns``
patterns, no cross matrix, ``--scaling-max-circuits`` circuits per task) on a local Dask cluster
of 1 and then N worker processes, timing ``run_study`` after the cluster is up; the parallel
efficiency is ``T1 / (N * TN)`` from wall times, and ``task CPU / (N * TN)`` says how busy the N
workers were (and ``task CPU at N / task CPU at 1`` whether parallel tasks cost more). The load
average is printed because other processes on a shared machine slow every number down; the
floor's GEMM rate is measured in CPU seconds, which load disturbs less.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from neurodtco.correction.base import check_device
from neurodtco.store import load_task_info
from neurodtco.study import DaskExecutor, LocalExecutor, Study, load_study, run_study
from neurodtco.study.compute import fits_backend
from neurodtco.study.floor import gemm_rate, study_floor


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _study(study_name: str, device: str) -> Study:
    """The study with its corrector fits on ``device``."""
    return load_study(study_name).model_copy(update={"device": device})


def _rate(study: Study, infos: pd.DataFrame) -> float:
    """GEMM flops/s of the fits' largest product, [images, outputs] x [outputs, widest h], in their dtype."""
    n_images = int(max(infos["n_images"].max(), 1))
    n_features = study.network.widths[-1]
    hidden = max([*study.correctors.hidden, study.cross_defect.hidden])
    return gemm_rate(n_images, n_features, hidden, study.correctors.options.get("dtype", "float64"))


def bench_demo(study_name: str, workers: int, root: Path, device: str) -> dict:
    """Run the whole study on local worker processes; throughput, where the time went, and the floor."""
    from neurodtco.report import write_report

    study = _study(study_name, device)
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
    rate = _rate(study, info)
    floor = study_floor(info.to_dict("records"), rate, workers)
    # How the workers fitted the correctors, as every task recorded it (compiled C, torch, or both).
    fits = fits_backend(list(info["fits"].dropna())) if "fits" in info else "unrecorded"
    return {"study": study.name, "workers": workers, "device": device, "fits": fits,
            "wall_s": run_s, "floor_s": floor["floor_s"], "ratio": run_s / floor["floor_s"],
            "cpu_ratio": float(info["cpu_s"].sum()) / (floor["floor_s"] * workers), "floor": floor, "circuits": summary.n_circuits, "inferences": summary.n_inferences,
            "run_s": run_s, "report_s": report_s, "total_s": run_s + report_s,
            "throughput_inferences_per_s": summary.n_inferences / run_s,
            "simulate_s": float(info["simulate_s"].sum()), "fit_s": float(info["fit_s"].sum()),
            "task_cpu_s": float(info["cpu_s"].sum()), "tasks": len(info),
            "stages_s": summary.to_dict()["stages_s"],
            # What the run would take with the workers alone on the machine: their CPU time spread over
            # the workers, plus the runner's own serial part (network, setup).
            "ideal_run_s": float(info["cpu_s"].sum()) / workers + summary.setup_s}


def bench_scaling(study_name: str, n_patterns: int, max_circuits: int, root: Path, workers: int, device: str) -> dict:
    """The same sub-grid on a local Dask cluster with 1, then ``workers`` workers; parallel efficiency."""
    base = _study(study_name, device)
    grid = base.defects.model_copy(update={"patterns": base.defects.patterns[:n_patterns]})
    # Smaller tasks than the demo's, so that two workers have enough of them to share evenly.
    study = base.model_copy(update={"defects": grid, "cross_defect": base.cross_defect.model_copy(update={"enabled": False}),
                                    "tasks": base.tasks.model_copy(update={"max_circuits": max_circuits}),
                                    "name": f"{base.name}-scaling"})
    times, cpu = {}, {}
    inferences = 0
    for n in (1, workers):
        executor = DaskExecutor(workers=n)
        try:
            start = time.perf_counter()
            summary = run_study(study, root / f"scaling-dask{n}", executor=executor)
            times[n] = time.perf_counter() - start
            inferences = summary.n_inferences
        finally:
            executor.close()
        cpu[n] = float(load_task_info(root / f"scaling-dask{n}")["cpu_s"].sum())
    t1, tn = times[1], times[workers]
    return {"patterns": list(grid.patterns), "circuits": study.n_circuits + 1, "inferences": inferences,
            "tasks": len(list((root / f"scaling-dask{workers}" / "results" / "circuits").glob("*.parquet"))),
            "workers": workers, "dask1_s": t1, "daskN_s": tn, "speedup": t1 / tn,
            "efficiency": t1 / (workers * tn),
            # How much of the N workers' wall time went into the tasks' own CPU work (1.0: no idling, no waiting),
            # and how much more CPU work the same tasks took on N workers than on one (1.0: none).
            "cpu_efficiency": cpu[workers] / (workers * tn), "cpu_inflation": cpu[workers] / cpu[1],
            "task_cpu_1_s": cpu[1], "task_cpu_N_s": cpu[workers],
            "dask1_inferences_per_s": inferences / t1, "daskN_inferences_per_s": inferences / tn}


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmarks, print a table and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="demo", help="built-in study name or study file (default: demo)")
    parser.add_argument("--workers", type=int, default=2, help="local worker processes for the demo run")
    parser.add_argument("--scaling-patterns", type=int, default=1, help="patterns of the sub-grid for the Dask scaling")
    parser.add_argument("--scaling-max-circuits", type=int, default=8, help="circuits per task in the scaling runs")
    parser.add_argument("--skip-demo", action="store_true", help="only measure the Dask scaling")
    parser.add_argument("--skip-scaling", action="store_true", help="only measure the demo throughput")
    parser.add_argument("--dask-workers", type=int, default=2, help="Dask workers of the scaling run against 1 (N >= 2)")
    parser.add_argument("--device", default="cpu", help="torch device of the corrector fits, e.g. cuda")
    parser.add_argument("--torch-fits", action="store_true",
                        help="fit the correctors in torch (NEURODTCO_NATIVE=0) instead of the compiled C fits")
    parser.add_argument("--keep", type=Path, default=None, help="keep the results folders here")
    args = parser.parse_args(argv)
    if args.dask_workers < 2:
        parser.error(f"--dask-workers {args.dask_workers}: the scaling compares N >= 2 workers against 1")
    try:
        check_device(args.device)
    except ValueError as exc:
        parser.error(f"--device: {exc}")
    os.environ.setdefault("NEURODTCO_CACHE", str(Path(__file__).resolve().parents[1] / ".neurodtco-cache"))
    if args.torch_fits:
        os.environ["NEURODTCO_NATIVE"] = "0"  # the workers inherit it
    result: dict = {"cpu_count": os.cpu_count(), "load_before": _load(), "device": args.device}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        if not args.skip_demo:
            d = bench_demo(args.study, args.workers, root, args.device)
            result["demo"] = d
            result.update(wall_s=d["wall_s"], floor_s=d["floor_s"], ratio=d["ratio"])
            print(f"{d['study']} ({d['fits']} corrector fits): {d['circuits']} circuits, {d['inferences']:,} circuit-inferences in {d['run_s']:.1f} s "
                  f"on {d['workers']} local workers = {d['throughput_inferences_per_s']:,.0f} inferences/s; report "
                  f"{d['report_s']:.1f} s; total {d['total_s']:.1f} s. Task CPU time {d['task_cpu_s']:.0f} s "
                  f"(simulation {d['simulate_s']:.0f} s, corrector fits {d['fit_s']:.0f} s of task wall time): "
                  f"{d['ideal_run_s']:.0f} s on {d['workers']} otherwise idle cores", file=sys.stderr)
            spent = sum(d["stages_s"].values()) or 1.0
            for stage, seconds in sorted(d["stages_s"].items(), key=lambda kv: -kv[1]):
                print(f"  {stage:<22} {seconds:9.2f} s  {100 * seconds / spent:5.1f} %", file=sys.stderr)
            f = d["floor"]
            print(f"floor: {f['fit_flops'] / 1e9:,.0f} GFLOP of corrector fits at {f['gemm_flops_per_s'] / 1e9:.1f} "
                  f"GFLOP/s ({f['fit_floor_s']:.1f} s) + {f['simulate_s']:.1f} s of simulation, over {d['workers']} "
                  f"workers = {d['floor_s']:.1f} s; wall {d['wall_s']:.1f} s is {d['ratio']:.2f}x the floor "
                  f"(task CPU {d['task_cpu_s']:.0f} s is {d['cpu_ratio']:.2f}x)", file=sys.stderr)
        if not args.skip_scaling:
            s = bench_scaling(args.study, args.scaling_patterns, args.scaling_max_circuits, root, args.dask_workers,
                              args.device)
            result["scaling"] = s
            print(f"Dask scaling on {s['circuits']} circuits in {s['tasks']} tasks ({', '.join(s['patterns'])}): "
                  f"1 worker {s['dask1_s']:.1f} s ({s['dask1_inferences_per_s']:,.0f}/s), {s['workers']} workers "
                  f"{s['daskN_s']:.1f} s ({s['daskN_inferences_per_s']:,.0f}/s): speed-up {s['speedup']:.2f}x, "
                  f"efficiency T1/(N TN) {s['efficiency']:.2f}; task CPU {s['task_cpu_N_s']:.1f} s over "
                  f"{s['workers']} x {s['daskN_s']:.1f} s = {s['cpu_efficiency']:.2f} busy; task CPU on {s['workers']} "
                  f"workers / on 1 = {s['cpu_inflation']:.2f}", file=sys.stderr)
    result["load_after"] = _load()
    print(f"load average before/after (1/5/15 min): {result['load_before']} / {result['load_after']} "
          f"on {result['cpu_count']} cores", file=sys.stderr)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
