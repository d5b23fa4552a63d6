"""The result tables of a built-in study in docs/studies.md, read from its finished results folder.

    .venv/bin/python examples/study_tables.py --results results/demo [--write-docs]

Reads only the folder that ``neurodtco run`` / ``neurodtco demo`` wrote (as ``neurodtco report``
does) and prints three tables:

* ``findings``: the report's headline numbers (``report.data.headline_numbers``), every accuracy
  with its 95 % interval and what it rests on (chips, networks, test images), every choice made on
  the validation images;
* ``by_array``: per array, the corrector chosen on that array's validation images and its test
  result, paired with the uncorrected chips (``report.data.correction_by_array``);
* ``throughput``: circuit-inferences, the runs' wall time and the tasks' CPU seconds, and where
  they went (``study.timing.stage_breakdown``).

``--write-docs`` publishes the three blocks into docs/studies.md (or ``--page``, e.g. tiling.md), with
the command and the study's name; rerunning a study and then this script refreshes them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from neurodtco.report.data import ReportData, correction_by_array, headline_numbers, load_report_data, time_breakdown

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docblocks import command_line, publish  # noqa: E402

PAGE = "studies.md"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|")


def findings_table(d: ReportData) -> str:
    """The headline numbers: quantity, value with its interval, and its basis."""
    lines = ["| quantity | value | basis |", "|---|---|---|"]
    lines += [f"| {_cell(q)} | {_cell(v)} | {_cell(n)} |" for q, v, n in headline_numbers(d)]
    return "\n".join(lines)


def by_array_table(d: ReportData) -> str:
    """Per array: the corrector chosen on validation, uncorrected and corrected test accuracy, the paired gain."""
    frame = correction_by_array(d)
    lines = ["| array | corrector (chosen on validation) | parameters | uncorrected | corrected | paired gain | basis |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r.array} | {r.corrector} | {r.parameters} | {r.uncorrected} | {r.corrected} | {r.gain} | {r.basis} |"
              for r in frame.itertuples()]
    return "\n".join(lines)


def throughput_table(d: ReportData) -> str:
    """What the runs simulated, their wall time, the tasks' CPU seconds, and the largest stages."""
    runs = d.store.runs()
    inferences = sum(int(r.get("n_inferences", 0)) for r in runs)
    wall = sum(float(r.get("wall_s", 0.0)) for r in runs)
    cpu = float(d.info["cpu_s"].sum()) if "cpu_s" in d.info else float("nan")
    circuits = int(d.raw["circuit_id"].nunique()) if not d.raw.empty else 0
    workers = ", ".join(sorted({f"{r.get('executor', {}).get('workers')} {r.get('executor', {}).get('executor')}"
                                for r in runs}))
    simulated = float(d.info["simulate_s"].sum()) if "simulate_s" in d.info else 0.0
    per_circuit_ms = 1e3 * simulated / circuits if circuits else float("nan")
    images = int(d.info["n_images"].max()) if "n_images" in d.info else 0
    stages = time_breakdown(d)
    top = "; ".join(f"{name} {seconds:.1f} s" for name, seconds in stages[:5])
    lines = ["| measure | value |", "|---|---|",
             f"| circuits; circuit-inferences | {circuits:,}; {inferences:,} |",
             f"| wall time of the run(s) | {wall:.0f} s over {len(runs)} run(s), {workers} workers |",
             f"| throughput at that wall time | {inferences / wall if wall else 0:,.0f} circuit-inferences/s |",
             f"| CPU time of all tasks | {cpu:.0f} s over {len(d.info)} tasks |",
             f"| throughput per task CPU-second | {inferences / cpu if cpu else 0:,.0f} circuit-inferences/s |",
             f"| simulation ({d.study['engine']} engine) | {simulated:.1f} s: {per_circuit_ms:.0f} ms per circuit on all "
             f"{images:,} images |",
             f"| largest stages (seconds inside the workers) | {top} |"]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Print the tables of the study in ``--results`` and publish them on request."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, required=True, help="a finished study's results folder")
    parser.add_argument("--write-docs", action="store_true", help="publish the tables into docs/PAGE")
    parser.add_argument("--page", default=PAGE, help=f"the docs page the blocks go into (default {PAGE})")
    parser.add_argument("--prefix", default="", help="prefix of the block names, so that several studies are shown "
                                                      "(e.g. reviewed- publishes reviewed-findings ...)")
    args = parser.parse_args(argv)
    if not (args.results / "study.resolved.json").is_file():
        parser.error(f"--results {args.results} holds no study; run one first, e.g. "
                     f"`neurodtco demo --out {args.results}`")
    d = load_report_data(args.results)
    runs = d.store.runs()
    if not runs or runs[-1].get("n_failed", 0) or runs[-1].get("n_run", 0) + runs[-1].get("n_skipped", 0) < runs[-1].get("n_tasks", 1):
        parser.error(f"--results {args.results} holds no finished run (runs.jsonl); rerun the study into it first")
    name = d.study.get("name", "?")
    tables = {"findings": findings_table(d), "by_array": by_array_table(d), "throughput": throughput_table(d)}
    for block, body in tables.items():
        print(f"\n{block} ({name}):\n{body}")
    if args.write_docs:
        command = command_line(__file__, argv)
        for block, body in tables.items():
            publish(args.page, args.prefix + block, f"Study `{name}` ({args.results}).\n\n{body}", command)
        print(f"published {', '.join(args.prefix + t for t in tables)} into docs/{args.page}")


if __name__ == "__main__":
    main()
