"""Regenerate every published table of docs/ from the scripts that make it (long: about two hours on 2 cores).

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
from pathlib import Path

from _docblocks import ROOT, check

#: name -> the commands that publish its tables (run from the repository root)
SCRIPTS: dict[str, list[list[str]]] = {
    "mitigation_comparison": [["examples/mitigation_comparison.py", "--out", "results/mitigation", "--write-docs"]],
    "restatements": [["examples/restatements.py", "--write-docs"]],
    "correction_study": [["examples/correction_study.py", "--write-docs"],
                         ["examples/correction_study.py", "--kind", "off", "--write-docs"]],
    "yield_curves": [["examples/yield_curves.py", "--write-docs"]],
    "cnn_mitigation": [["examples/cnn_mitigation.py", "--seeds", "0", "1", "2", "--write-docs"]],
    # engines.md, tiling.md, networks.md, data.md
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
