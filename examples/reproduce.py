"""Regenerate every published table of docs/ from the scripts that make it (long: several hours on 2 cores).

    .venv/bin/python examples/reproduce.py            # every script, one after the other
    .venv/bin/python examples/reproduce.py --list     # what would run
    .venv/bin/python examples/reproduce.py --only yield_curves

Each script publishes its tables into the marked blocks of docs/*.md with a stored copy in
docs/results/ (``examples/_docblocks.py``); at the end ``check()`` lists any block that no script
refreshed or that differs from its stored copy. ``make reproduce`` runs this file.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from _docblocks import ROOT, check

#: name -> the commands that publish its tables (run from the repository root)
SCRIPTS: dict[str, list[list[str]]] = {
    "mitigation_comparison": [["examples/mitigation_comparison.py", "--out", "results/mitigation", "--write-docs"]],
    "restatements": [["examples/restatements.py", "--write-docs"]],
    "correction_study": [["examples/correction_study.py", "--write-docs"],
                         ["examples/correction_study.py", "--kind", "off", "--write-docs"],
                         ["examples/correction_study.py", "--mode", "severity", "--write-docs"]],
    "bench_correction": [["bench/correction.py", "--write-docs"]],
    "correction_iterations": [["examples/correction_iterations.py", "--write-docs"]],
    "population_corrector": [["examples/population_corrector.py", "--mode", "labels", "--no-cross", "--write-docs"],
                             ["examples/population_corrector.py", "--mode", "labels+reference", "--no-cross",
                              "--write-docs"]],
    "yield_curves": [["examples/yield_curves.py", "--write-docs"]],
    "cnn_mitigation": [["examples/cnn_mitigation.py", "--seeds", "0", "1", "2", "--write-docs"]],
    # docs/defects.md and docs/imperfections.md
    "density_resolution": [["examples/density_resolution.py", "--write-docs"]],
    "imperfections_baselines": [["examples/imperfections_baselines.py", "--write-docs"]],
    "read_noise_bench": [["bench/read_noise.py", "--write-docs"]],
    "stuck_at_study": [["examples/stuck_at_study.py", "--write-docs"],
                       ["examples/stuck_at_study.py", "--engine", "nodal", "--densities", "0.1", "--instances", "10",
                        "--write-docs"],
                       ["examples/stuck_at_study.py", "--layout", "split", "--densities", "0.1", "--write-docs"],
                       ["examples/stuck_at_study.py", "--densities", "0.1", "--instances", "10", "--pair-encoding",
                        "balanced", "--write-docs"]],
    # docs/periphery.md, docs/energy.md and docs/studies.md
    "characterization_table": [["examples/characterization_table.py", "--write-docs"]],
    "corner_temperature": [["examples/corner_temperature.py", "--transistor-images", "30",
                            "--transistor-corners", "NOM:25,SS:100,FF:100", "--jobs", "2", "--write-docs"]],
    "fit_agreement": [["bench/fit_agreement.py", "--reference-commit", "5a3f401", "--study", "demo", "--tasks", "2",
                       "--write-docs"]],
    "fit_kernel": [["bench/fit_kernel.py", "--write-docs"]],
    "periphery_loads": [["examples/periphery_loads.py", "--write-docs"]],
    "study_bench_tables": [["examples/study_bench_tables.py", "--compare-torch-fits", "--write-docs"]],
    "study_tables": [["-m", "neurodtco", "demo", "--out", "results/demo", "--force"],
                     ["examples/study_tables.py", "--results", "results/demo", "--write-docs"]],
    "reviewed_study": [["-m", "neurodtco", "demo", "--study", "reviewed", "--out", "results/reviewed"],
                       ["examples/study_tables.py", "--results", "results/reviewed", "--prefix", "reviewed-",
                        "--write-docs"]],
    "fashion_cnn_study": [["-m", "neurodtco", "demo", "--study", "fashion-cnn", "--out", "results/fashion-cnn"],
                          ["examples/study_tables.py", "--results", "results/fashion-cnn", "--prefix", "cnn-",
                           "--page", "tiling.md", "--write-docs"]],
    "system_energy": [["examples/system_energy.py", "--ratios", "16", "8", "4", "--jobs", "2", "--write-docs"]],
    # docs/engines.md, tiling.md, networks.md, data.md
    "bench_crossbar": [["bench/crossbar.py", "--both-methods", "--write-docs"]],
    "bench_engine": [["bench/engine.py", "--write-docs"]],
    "bench_power": [["bench/power.py", "--large", "--write-docs"]],
    "bench_tiles": [["bench/tiles.py", "--model", "cnn", "--write-docs"]],
    "dataset_parts": [["examples/dataset_parts.py", "--write-docs"]],
    "tiling_study": [["examples/tiling_study.py", "--write-docs"]],
    "train_presets": [["examples/train_presets.py", "--write-docs"]],
    "verify_engines": [["examples/verify_engines.py", "--write-docs"]],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(SCRIPTS), help="run only these scripts")
    parser.add_argument("--list", action="store_true", help="print the commands and stop")
    args = parser.parse_args()
    for name in args.only or SCRIPTS:
        for command in SCRIPTS[name]:
            line = [sys.executable, *command]
            print("$ " + " ".join(command), flush=True)
            if args.list:
                continue
            start = time.perf_counter()
            subprocess.run(line, cwd=ROOT, check=True)
            print(f"  {time.perf_counter() - start:.0f} s", flush=True)
    problems = [] if args.list else check()
    for problem in problems:
        print("docs:", problem)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
