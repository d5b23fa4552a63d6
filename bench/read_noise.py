"""What per-inference read noise costs the nodal engine: one factorization per noise sample.

Run on demand (not in CI):  .venv/bin/python bench/read_noise.py [--images N] [--repeats K] [--write-docs]

The default 64-8-8-8-10 circuit (arrays 65x16, 9x16, 9x16, 9x20; 1 ohm wires) reads the test
images with the nodal engine, once without noise (one factorization for the whole batch: the
reference) and with ``ReadNoiseModel`` samples shared by groups of ``group_size`` inferences
(``group_size = 1``: every inference its own sample, so one refactorization each). Prints the
best wall time of ``--repeats`` runs, the time per noise sample and the ratio to the noise-free
run measured in the same process, with the load average (the machine may be shared).
``--write-docs`` publishes the table into docs/imperfections.md.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "examples"))
from _docblocks import command_line, publish  # noqa: E402
from timing import best_time  # noqa: E402

from neurodtco.data import load_digits, to_voltages  # noqa: E402
from neurodtco.engines import simulate  # noqa: E402
from neurodtco.imperfections import ReadNoiseModel  # noqa: E402
from neurodtco.mapping import map_network  # noqa: E402
from neurodtco.network import default_network  # noqa: E402


def run(images: int, repeats: int, groups: Sequence[int]) -> list[dict[str, Any]]:
    """Best wall time of the noise-free read and of each group size, on the first ``images`` test images."""
    dataset = load_digits(seed=0)
    circuit = map_network(default_network(dataset))
    x = to_voltages(dataset.x_test[:images], 0.2)
    reference = best_time(lambda: simulate(circuit, x, engine="nodal"), repeats)
    rows = [{"run": "no noise (reference)", "samples": 0, "seconds": reference}]
    for group in groups:
        noise = ReadNoiseModel(group_size=group)
        seconds = best_time(lambda: simulate(circuit, x, engine="nodal", read_noise=noise, seed=0), repeats)
        rows.append({"run": f"group_size {group}", "samples": math.ceil(len(x) / group), "seconds": seconds})
    for row in rows:
        row["ratio"] = row["seconds"] / reference
    return rows


def markdown(rows: Sequence[dict[str, Any]], images: int, repeats: int, load: tuple[float, float]) -> str:
    """The timings as a table, with what they were measured on."""
    lines = [f"Nodal engine, default circuit, {images} test images per run, best of {repeats}; 1-minute load "
             f"average {load[0]:.1f} before, {load[1]:.1f} after ({os.cpu_count()} CPUs).", "",
             "| run | noise samples | wall time (s) | ms per sample | ratio to no noise |", "|---|---|---|---|---|"]
    for r in rows:
        per = f"{1e3 * r['seconds'] / r['samples']:.1f}" if r["samples"] else "-"
        lines.append(f"| {r['run']} | {r['samples']} | {r['seconds']:.3f} | {per} | {r['ratio']:.1f}x |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Time, print the table (and publish it with --write-docs)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=180, help="test images per run (default 180, all of them)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per setting; the best counts (default 3)")
    parser.add_argument("--write-docs", action="store_true", help="publish the table into docs/imperfections.md")
    args = parser.parse_args(argv)
    if args.images < 1 or args.repeats < 1:
        parser.error(f"--images {args.images} and --repeats {args.repeats} must both be at least 1")
    before = os.getloadavg()[0]
    rows = run(args.images, args.repeats, (1, 10, args.images))
    body = markdown(rows, args.images, args.repeats, (before, os.getloadavg()[0]))
    print(body)
    if args.write_docs:
        publish("imperfections.md", "read-noise-bench", body,
                command_line(__file__, argv))


if __name__ == "__main__":
    main()
