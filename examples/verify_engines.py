"""nodal against ngspice on the default network: the agreement table of docs/engines.md.

Runs ``neurodtco verify --n-images N --cell C --json`` (the default 64-8-8-8-10 digits network,
1 ohm word and bit segments, op-amp gain 1e4, the first N test images) for linear and gap-model
cells on 20 and 180 images, and tabulates the largest output and hidden-layer differences, how
many images get the same class from both engines, and each engine's time per image.

    .venv/bin/python examples/verify_engines.py [--images 20 180] [--write-docs]

``--write-docs`` publishes the table into docs/engines.md (block ``verify``, ``examples/_docblocks.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

CELLS = ("linear", "gap")
IMAGES = (20, 180)


def verify(cell: str, n_images: int) -> dict[str, Any]:
    """The JSON that ``neurodtco verify --n-images N --cell C --json`` prints (exit 1, a disagreement, included)."""
    command = [sys.executable, "-m", "neurodtco", "verify", "--n-images", str(n_images), "--cell", cell, "--json"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(command[1:])} failed with exit code {done.returncode}: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def table(results: Sequence[dict[str, Any]]) -> str:
    """One row per run: differences, same-class count, and both engines' time per image."""
    lines = ["| cells | images | largest output difference | largest hidden difference | same class "
             "| nodal per image | ngspice per image |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        n, t = r["n_images"], r["timings"]
        lines.append(f"| {r['cell']} | {n} | {r['max_abs_difference_v']:.1e} V | {r['max_abs_hidden_difference_v']:.1e} V "
                     f"| {n - r['n_prediction_mismatches']}/{n} | {1e3 * t['nodal_per_image_s']:.3g} ms "
                     f"| {1e3 * t['ngspice_per_image_s']:.3g} ms |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=list(IMAGES), help="image counts to compare on")
    parser.add_argument("--write-docs", action="store_true", help="publish the table into docs/engines.md")
    args = parser.parse_args()
    results = [verify(cell, n) for cell in CELLS for n in args.images]
    body = (f"{table(results)}\n\nTimes per image include each engine's start-up (ngspice reads and orders the "
            f"netlist once per run of up to 250 images); 1-minute load average {os.getloadavg()[0]:.1f} at the end "
            f"on {os.cpu_count()} CPUs shared with other jobs.")
    print(body)
    if args.write_docs:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _docblocks import command_line, publish

        publish("engines.md", "verify", body, command_line(__file__))


if __name__ == "__main__":
    main()
