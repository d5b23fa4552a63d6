"""Stuck-at defects in spatial patterns on the default network: the first finding of the stuck-at study.

Question 1: do stuck-on (G_max) and stuck-off (G_min) defects of the same pattern and density degrade
accuracy by similar amounts? Question 2: do defects that vary across columns (whole bit lines hit,
``column``) hurt more than ones that vary across rows (whole word lines hit, ``row``)?

Every pattern is applied to all four arrays at the same target density, for several instances
(seeds; for the discs and rings also a random centre, for the checkerboard a shifted phase), and
the test accuracy is averaged. Run from the repository root:

    .venv/bin/python examples/stuck_at_study.py               # 3 densities x 20 instances, ~1 min
    .venv/bin/python examples/stuck_at_study.py --quick       # 1 density x 5 instances, seconds
    .venv/bin/python examples/stuck_at_study.py --engine nodal --densities 0.1 --instances 5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np

from neurodtco.data import load_digits, to_voltages
from neurodtco.defects import PATTERNS, Defect, apply_defects
from neurodtco.engines import simulate
from neurodtco.mapping import MappingConfig, map_network
from neurodtco.network import default_network

GEOMETRIC = ("circular", "circular_complement", "ring")


def instance_defect(pattern: str, kind: str, density: float, instance: int) -> Defect:
    """One instance of a pattern: deterministic shapes get a random centre or a shifted phase."""
    params: dict[str, Any] = {}
    if pattern in GEOMETRIC:
        rng = np.random.default_rng([instance, 7])
        params["center"] = tuple(float(c) for c in rng.uniform(0.25, 0.75, size=2))
    if pattern == "checkerboard":
        params["phase"] = instance
    return Defect(pattern=pattern, layers="all", kind=kind, density=density, params=params)


def run(densities: list[float], instances: int, engine: str, patterns: tuple[str, ...], layout: str,
        quiet: bool = False, pair_encoding: str = "low") -> dict[str, Any]:
    """Accuracy of every (pattern, kind, density), averaged over instances."""
    dataset = load_digits(seed=0)
    config = MappingConfig(layout=layout, pair_encoding=pair_encoding)
    circuit = map_network(default_network(dataset), config)
    x, y = to_voltages(dataset.x_test, config.v_read_v), dataset.y_test
    healthy = simulate(circuit, x, engine=engine).accuracy(y)
    # Where the programmed cells sit in the window explains the on/off asymmetry (see docs/defects.md).
    g = np.concatenate([c.ravel() for c in circuit.conductances])
    position = (g - circuit.cell.g_min) / (circuit.cell.g_max - circuit.cell.g_min)
    rows = []
    start = time.perf_counter()
    for density in densities:
        for pattern in patterns:
            for kind in ("on", "off"):
                accs, achieved = [], []
                for instance in range(instances):
                    chip, record = apply_defects(circuit, [instance_defect(pattern, kind, density, instance)],
                                                 seed=instance)
                    accs.append(simulate(chip, x, engine=engine).accuracy(y))
                    achieved.append(record.total_density)
                rows.append({"density": density, "pattern": pattern, "kind": kind,
                             "accuracy_mean": float(np.mean(accs)), "accuracy_std": float(np.std(accs)),
                             "achieved_density": float(np.mean(achieved)), "instances": instances})
                if not quiet:
                    print(f"  density {density:<5g} {pattern:<20s} {kind:<3s} accuracy "
                          f"{np.mean(accs):6.1%} +- {np.std(accs):5.1%}", file=sys.stderr)
    return {"healthy_accuracy": healthy, "engine": engine, "layout": layout, "rows": rows,
            "cells_at_g_min": float(np.mean(position == 0.0)), "cells_below_10pct": float(np.mean(position < 0.1)),
            "elapsed_s": time.perf_counter() - start}


def findings(result: dict[str, Any]) -> dict[str, Any]:
    """Accuracy drops for on vs off per pattern, and column vs row, at every density."""
    healthy = result["healthy_accuracy"]
    acc = {(r["density"], r["pattern"], r["kind"]): r["accuracy_mean"] for r in result["rows"]}
    achieved = {(r["density"], r["pattern"]): r["achieved_density"] for r in result["rows"]}
    out: dict[str, Any] = {"on_vs_off": [], "column_vs_row": []}
    for density in sorted({r["density"] for r in result["rows"]}):
        for pattern in sorted({r["pattern"] for r in result["rows"]}, key=PATTERNS.index):
            on, off = healthy - acc[(density, pattern, "on")], healthy - acc[(density, pattern, "off")]
            out["on_vs_off"].append({"density": density, "pattern": pattern, "drop_on": on, "drop_off": off,
                                     "achieved_density": achieved[(density, pattern)]})
        if (density, "row", "on") in acc and (density, "column", "on") in acc:
            for kind in ("on", "off"):
                out["column_vs_row"].append({
                    "density": density, "kind": kind,
                    "drop_column": healthy - acc[(density, "column", kind)],
                    "drop_row": healthy - acc[(density, "row", kind)],
                    "achieved_column": achieved[(density, "column")], "achieved_row": achieved[(density, "row")],
                })
    return out


def print_report(result: dict[str, Any], found: dict[str, Any]) -> None:
    """Markdown tables of the drops, ready for docs."""
    print(f"healthy accuracy ({result['engine']} engine, {result['layout']} layout): {result['healthy_accuracy']:.1%}; "
          f"{result['cells_at_g_min']:.0%} of the cells sit at G_min, {result['cells_below_10pct']:.0%} in the "
          f"lowest tenth of the window; {result['rows'][0]['instances']} instances per point")
    print()
    print("| target density | pattern | achieved | drop, stuck-on | drop, stuck-off |")
    print("|---|---|---|---|---|")
    for r in found["on_vs_off"]:
        print(f"| {r['density']:g} | {r['pattern']} | {r['achieved_density']:.3f} | {r['drop_on'] * 100:.1f} pts "
              f"| {r['drop_off'] * 100:.1f} pts |")
    print()
    print("| target density | kind | drop, column (achieved) | drop, row (achieved) |")
    print("|---|---|---|---|")
    for r in found["column_vs_row"]:
        print(f"| {r['density']:g} | {r['kind']} | {r['drop_column'] * 100:.1f} pts ({r['achieved_column']:.3f}) "
              f"| {r['drop_row'] * 100:.1f} pts ({r['achieved_row']:.3f}) |")


def main() -> None:
    """Parse the options, run the sweep, print the tables (and one JSON line with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--densities", default="0.05,0.1,0.2", help="Target densities, comma separated.")
    parser.add_argument("--instances", type=int, default=20, help="Instances (seeds) per point.")
    parser.add_argument("--engine", default="ideal", help="ideal (default) or nodal, ngspice when available.")
    parser.add_argument("--layout", default="interleaved", help="Differential pair columns: interleaved or split.")
    parser.add_argument("--pair-encoding", default="low",
                        help="low (pairs on G_min, default) or balanced (both cells around mid-window).")
    parser.add_argument("--patterns", default=",".join(PATTERNS), help="Patterns, comma separated.")
    parser.add_argument("--quick", action="store_true", help="Density 0.1 and 5 instances only.")
    parser.add_argument("--json", action="store_true", help="Print the whole result as one JSON line at the end.")
    args = parser.parse_args()
    densities = [0.1] if args.quick else [float(d) for d in args.densities.split(",")]
    instances = 5 if args.quick else args.instances
    patterns = tuple(p.strip() for p in args.patterns.split(",") if p.strip())
    result = run(densities, instances, args.engine, patterns, args.layout, quiet=args.json, pair_encoding=args.pair_encoding)
    found = findings(result)
    print_report(result, found)
    if args.json:
        print(json.dumps({**result, "findings": found}))


if __name__ == "__main__":
    main()
