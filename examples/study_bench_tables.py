"""The throughput tables of docs/studies.md (a study against its floor; the Dask scaling), from bench/study.py.

    .venv/bin/python examples/study_bench_tables.py [BENCH OPTIONS] [--write-docs]
    .venv/bin/python examples/study_bench_tables.py --study quick --skip-scaling --write-docs
    .venv/bin/python examples/study_bench_tables.py --compare-torch-fits --write-docs

Runs ``bench/study.py`` with the given options (the full demo and the scaling by default: tens of
minutes on 2 cores), reads its JSON line and formats what it measured: the block ``floor`` (wall
time, the tasks' CPU seconds, the fits' flops at the GEMM rate measured in the same run, the floor
and the two ratios) and, when the scaling ran, the block ``scaling`` (the same sub-grid on 1 and N
Dask workers). Both carry the load average of the run. ``--compare-torch-fits`` first runs the demo
with the corrector fits in torch (``bench/study.py --torch-fits --skip-scaling``), then as asked,
and puts the two side by side in the block ``floor``. ``--write-docs`` publishes them into
docs/studies.md with the command that made them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docblocks import ROOT, command_line, publish  # noqa: E402

PAGE = "studies.md"


def _load(result: dict) -> str:
    return (f"load average (1/5/15 min) {result['load_before']} before, {result['load_after']} after, "
            f"on {result['cpu_count']} cores")


def floor_table(results: list[dict]) -> str:
    """Studies' wall times and task CPU seconds against their floors, as bench/study.py measured them, side by side."""
    head = [f"{r['demo'].get('fits', 'torch')} corrector fits" for r in results]
    rows = [("study; local workers", lambda r, d, f: f"{d['study']}; {d['workers']}"),
            ("circuits; circuit-inferences", lambda r, d, f: f"{d['circuits']:,}; {d['inferences']:,}"),
            ("wall time: run + report", lambda r, d, f: f"{d['run_s']:.0f} s + {d['report_s']:.0f} s "
             f"({d['throughput_inferences_per_s']:,.0f} circuit-inferences/s)"),
            ("task CPU seconds; estimate on the workers' idle cores",
             lambda r, d, f: f"{d['task_cpu_s']:.0f} s; {d['ideal_run_s']:.0f} s"),
            ("fit flops; GEMM rate measured in this run",
             lambda r, d, f: f"{f['fit_flops'] / 1e9:,.1f} GFLOP; {f['gemm_flops_per_s'] / 1e9:.1f} GFLOP/s"),
            ("floor: fit products + simulation, over the workers",
             lambda r, d, f: f"{f['fit_floor_s']:.1f} s + {f['simulate_s']:.1f} s -> {d['floor_s']:.1f} s"),
            ("`ratio` (wall / floor); `cpu_ratio` (task CPU / floor CPU)",
             lambda r, d, f: f"{d['ratio']:.1f}; {d['cpu_ratio']:.2f}"),
            ("machine", lambda r, d, f: _load(r))]
    lines = ["| measure | " + " | ".join(head) + " |", "|---|" + "---|" * len(results)]
    for label, cell in rows:
        lines.append(f"| {label} | " + " | ".join(cell(r, r["demo"], r["demo"]["floor"]) for r in results) + " |")
    return "\n".join(lines)


def scaling_table(result: dict) -> str:
    """The same sub-grid on a local Dask cluster of 1 and N workers: wall and CPU speed-ups."""
    s = result["scaling"]
    n = s["workers"]
    return "\n".join([
        "| measure | value |", "|---|---|",
        f"| sub-grid | {', '.join(s['patterns'])}: {s['circuits']} circuits in {s['tasks']} tasks |",
        f"| 1 Dask worker: wall (task CPU) | {s['dask1_s']:.0f} s ({s['task_cpu_1_s']:.0f} s), "
        f"{s['dask1_inferences_per_s']:,.0f} circuit-inferences/s |",
        f"| {n} Dask workers: wall (task CPU) | {s['daskN_s']:.0f} s ({s['task_cpu_N_s']:.0f} s), "
        f"{s['daskN_inferences_per_s']:,.0f} circuit-inferences/s |",
        f"| speed-up of {n} workers over 1, wall time; efficiency T1 / (N TN) | {s['speedup']:.2f}x; "
        f"{s['efficiency']:.2f} |",
        f"| speed-up from the task CPU times ({s['task_cpu_1_s']:.0f} s on one worker vs {s['task_cpu_N_s']:.0f} s / {n} "
        f"on {n}) | {s['task_cpu_1_s'] / (s['task_cpu_N_s'] / n):.2f}x |",
        f"| busy share of the {n} workers (task CPU / (N TN)); task CPU on {n} / on 1 | {s['cpu_efficiency']:.2f}; "
        f"{s['cpu_inflation']:.2f} |",
        f"| machine | {_load(result)} |"])


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the bench, print its tables and publish them on request."""
    args = list(sys.argv[1:] if argv is None else argv)
    write = "--write-docs" in args
    compare = "--compare-torch-fits" in args
    bench_args = [a for a in args if a not in ("--write-docs", "--compare-torch-fits")]

    def bench(*extra: str) -> dict:
        run = subprocess.run([sys.executable, str(ROOT / "bench" / "study.py"), *bench_args, *extra],
                             stdout=subprocess.PIPE, text=True, check=True)
        return json.loads(run.stdout.strip().splitlines()[-1])

    before = [bench("--torch-fits", "--skip-scaling")] if compare else []
    result = bench()
    tables = {}
    if "demo" in result:
        tables["floor"] = floor_table(before + [result])
    if "scaling" in result:
        tables["scaling"] = scaling_table(result)
    for name, body in tables.items():
        print(f"\n{name}:\n{body}")
    if write:
        for name, body in tables.items():
            publish(PAGE, name, body, command_line(__file__, args))


if __name__ == "__main__":
    main()
