"""Stuck-at defects in spatial patterns on the default network: the first finding of the stuck-at study.

Question 1: do stuck-on (G_max) and stuck-off (G_min) defects of the same pattern and density degrade
accuracy by similar amounts? Question 2: do defects that vary across columns (whole bit lines hit,
``column``) hurt more than ones that vary across rows (whole word lines hit, ``row``)?

Every pattern is applied to all four arrays at the same target density, for several instances
(seeds; for the discs and rings also a random centre, for the checkerboard a shifted phase), and
the test accuracy is averaged. Drops carry a 95 % bootstrap interval over the instances (the
180 test images are the same for every instance), the healthy accuracy its Wilson interval.
Run from the repository root:

    .venv/bin/python examples/stuck_at_study.py               # 3 densities x 20 instances, ~1 min
    .venv/bin/python examples/stuck_at_study.py --quick       # 1 density x 5 instances, seconds
    .venv/bin/python examples/stuck_at_study.py --engine nodal --densities 0.1 --instances 5

``--write-docs`` publishes the tables into docs/defects.md, in the block named after the engine,
layout and pair encoding (``stuck-at``, ``stuck-at-nodal``, ``stuck-at-split``, ``stuck-at-balanced``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docblocks import publish  # noqa: E402

from neurodtco.data import load_digits, to_voltages  # noqa: E402
from neurodtco.defects import PATTERNS, Defect, apply_defects  # noqa: E402
from neurodtco.engines import simulate  # noqa: E402
from neurodtco.mapping import MappingConfig, map_network  # noqa: E402
from neurodtco.network import default_network  # noqa: E402
from neurodtco.stats import bootstrap_ci, format_accuracy, wilson_interval  # noqa: E402

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
                rows.append({"density": density, "pattern": pattern, "kind": kind, "accuracies": accs,
                             "accuracy_mean": float(np.mean(accs)), "accuracy_std": float(np.std(accs)),
                             "achieved_density": float(np.mean(achieved)), "instances": instances})
                if not quiet:
                    print(f"  density {density:<5g} {pattern:<20s} {kind:<3s} accuracy "
                          f"{np.mean(accs):6.1%} +- {np.std(accs):5.1%}", file=sys.stderr)
    return {"healthy_accuracy": healthy, "n_test": len(y), "engine": engine, "layout": layout,
            "pair_encoding": pair_encoding, "rows": rows,
            "cells_at_g_min": float(np.mean(position == 0.0)), "cells_below_10pct": float(np.mean(position < 0.1)),
            "elapsed_s": time.perf_counter() - start}


def drop(healthy: float, accuracies: Sequence[float]) -> tuple[float, tuple[float, float]]:
    """Mean accuracy drop from healthy over the instances, with its bootstrap interval over them."""
    drops = healthy - np.asarray(accuracies, dtype=np.float64)
    return float(drops.mean()), bootstrap_ci(drops)


def findings(result: dict[str, Any]) -> dict[str, Any]:
    """Accuracy drops (with intervals) for on vs off per pattern, and column vs row, at every density."""
    healthy = result["healthy_accuracy"]
    dropped = {(r["density"], r["pattern"], r["kind"]): drop(healthy, r["accuracies"]) for r in result["rows"]}
    achieved = {(r["density"], r["pattern"]): r["achieved_density"] for r in result["rows"]}
    out: dict[str, Any] = {"on_vs_off": [], "column_vs_row": []}
    for density in sorted({r["density"] for r in result["rows"]}):
        for pattern in sorted({r["pattern"] for r in result["rows"]}, key=PATTERNS.index):
            (on, on_ci), (off, off_ci) = dropped[(density, pattern, "on")], dropped[(density, pattern, "off")]
            out["on_vs_off"].append({"density": density, "pattern": pattern, "drop_on": on, "drop_on_ci": on_ci,
                                     "drop_off": off, "drop_off_ci": off_ci,
                                     "achieved_density": achieved[(density, pattern)]})
        if (density, "row", "on") in dropped and (density, "column", "on") in dropped:
            for kind in ("on", "off"):
                (col, col_ci), (row, row_ci) = dropped[(density, "column", kind)], dropped[(density, "row", kind)]
                out["column_vs_row"].append({
                    "density": density, "kind": kind, "drop_column": col, "drop_column_ci": col_ci,
                    "drop_row": row, "drop_row_ci": row_ci,
                    "achieved_column": achieved[(density, "column")], "achieved_row": achieved[(density, "row")],
                })
    return out


def points(value: float, interval: Sequence[float]) -> str:
    """A drop (fraction) in percentage points with its interval."""
    return f"{100 * value:.1f} [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"


def markdown(result: dict[str, Any], found: dict[str, Any]) -> str:
    """The run's setting and its two tables (on vs off per pattern; column vs row), as docs/defects.md shows them."""
    n, instances = result["n_test"], result["rows"][0]["instances"]
    healthy = result["healthy_accuracy"]
    lines = [f"{result['engine']} engine, {result['layout']} layout, `{result['pair_encoding']}` pair encoding, "
             f"all four arrays; healthy accuracy {format_accuracy(healthy, wilson_interval(healthy * n, n), n)}; "
             f"{100 * result['cells_at_g_min']:.0f} % of the cells sit at G_min, {100 * result['cells_below_10pct']:.0f} % "
             f"in the lowest tenth of the window. Accuracy drop in points, mean of {instances} instances x {n} test images "
             "[95 % bootstrap interval over the instances]; achieved density: mean over the instances.", "",
             "| target density | pattern | achieved | drop, stuck-on | drop, stuck-off |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['density']:g} | {r['pattern']} | {r['achieved_density']:.3f} | {points(r['drop_on'], r['drop_on_ci'])} "
              f"| {points(r['drop_off'], r['drop_off_ci'])} |" for r in found["on_vs_off"]]
    if found["column_vs_row"]:
        lines += ["", "| target density | kind | drop, column (achieved density) | drop, row (achieved density) |",
                  "|---|---|---|---|"]
        lines += [f"| {r['density']:g} | {r['kind']} | {points(r['drop_column'], r['drop_column_ci'])} "
                  f"({r['achieved_column']:.3f}) | {points(r['drop_row'], r['drop_row_ci'])} ({r['achieved_row']:.3f}) |"
                  for r in found["column_vs_row"]]
    return "\n".join(lines)


def block_name(engine: str, layout: str, pair_encoding: str) -> str:
    """The docs/defects.md block of a configuration: ``stuck-at`` plus every setting that is not the default."""
    extra = [v for v, default in ((engine, "ideal"), (layout, "interleaved"), (pair_encoding, "low")) if v != default]
    return "-".join(["stuck-at", *extra])


def main(argv: Optional[Sequence[str]] = None) -> None:
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
    parser.add_argument("--write-docs", action="store_true",
                        help="Publish the tables into their block of docs/defects.md (named after engine, layout, encoding).")
    args = parser.parse_args(argv)
    densities = [0.1] if args.quick else [float(d) for d in args.densities.split(",")]
    instances = 5 if args.quick else args.instances
    patterns = tuple(p.strip() for p in args.patterns.split(",") if p.strip())
    result = run(densities, instances, args.engine, patterns, args.layout, quiet=args.json, pair_encoding=args.pair_encoding)
    found = findings(result)
    body = markdown(result, found)
    print(body)
    if args.write_docs:
        line = sys.argv[1:] if argv is None else list(argv)
        publish("defects.md", block_name(args.engine, args.layout, args.pair_encoding), body,
                shlex.join(["python", "examples/stuck_at_study.py", *line]))
    if args.json:
        print(json.dumps({**result, "findings": found}))


if __name__ == "__main__":
    main()
