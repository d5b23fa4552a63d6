"""How closely ``density=`` is reached: every pattern on each array shape of the default network.

A pattern's size is discrete (whole cells, whole lines, a circle's groups of equidistant cells, a
checkerboard's periods), so ``density=`` resolves to the closest size the pattern has. This sweeps
the target density over a grid, applies each pattern alone to one array at a time (default centre,
phase 0, seed 0) and reports the largest gap between the target and the achieved density, and the
targets a pattern cannot reach (a ring cannot cover the whole array). Run from the repository root:

    .venv/bin/python examples/density_resolution.py                 # targets 0.005, 0.010, ..., 0.995
    .venv/bin/python examples/density_resolution.py --step 0.05     # a coarse grid
    .venv/bin/python examples/density_resolution.py --write-docs    # publish into docs/defects.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docblocks import command_line, publish  # noqa: E402

from neurodtco.circuit import Circuit  # noqa: E402
from neurodtco.data import load_digits  # noqa: E402
from neurodtco.defects import PATTERNS, Defect, apply_defects  # noqa: E402
from neurodtco.mapping import map_network  # noqa: E402
from neurodtco.network import default_network  # noqa: E402


def one_array_per_shape(circuit: Circuit) -> dict[str, int]:
    """The first layer of each distinct array shape, by its ``RxC`` name."""
    shapes: dict[str, int] = {}
    for index, g in enumerate(circuit.conductances):
        shapes.setdefault(f"{g.shape[0]}x{g.shape[1]}", index)
    return shapes


def sweep(circuit: Circuit, layer: int, pattern: str, targets: Sequence[float]) -> dict[str, Any]:
    """Achieved density of ``pattern`` at every target on one array; refused targets are counted apart."""
    achieved, reached, refused = [], [], []
    for target in targets:
        try:
            _, record = apply_defects(circuit, [Defect(pattern=pattern, layers=layer, density=float(target))], seed=0)
        except ValueError:
            refused.append(float(target))
            continue
        reached.append(float(target))
        achieved.append(float(record.density[layer]))
    errors = np.abs(np.asarray(achieved) - np.asarray(reached))
    worst = int(np.argmax(errors))
    return {"pattern": pattern, "layer": layer, "targets": len(targets), "refused": refused,
            "worst_error": float(errors[worst]), "worst_target": reached[worst], "max_achieved": max(achieved)}


def run(targets: Sequence[float]) -> list[dict[str, Any]]:
    """The sweep of every pattern on one array of each shape of the default network."""
    circuit = map_network(default_network(load_digits(seed=0)))
    return [{"shape": shape, **sweep(circuit, layer, pattern, targets)}
            for pattern in PATTERNS for shape, layer in one_array_per_shape(circuit).items()]


def markdown(rows: Sequence[dict[str, Any]], step: float) -> str:
    """One line per pattern: per array shape, the worst gap (at which target) and what is refused."""
    shapes = list(dict.fromkeys(r["shape"] for r in rows))
    n = rows[0]["targets"]
    lines = [f"Targets {step:g}, {2 * step:g}, ..., {n * step:g} ({n} per pattern and array); one array of each "
             "shape of the default network, default centre, phase 0, seed 0. Each cell: the largest |achieved - "
             "target| (at the target where it occurs); targets refused as out of reach, if any.", "",
             "| pattern | " + " | ".join(shapes) + " |", "|---|" + "---|" * len(shapes)]
    for pattern in dict.fromkeys(r["pattern"] for r in rows):
        cells = []
        for shape in shapes:
            r = next(x for x in rows if x["pattern"] == pattern and x["shape"] == shape)
            cell = f"{r['worst_error']:.3f} (at {r['worst_target']:g})"
            if r["refused"]:
                cell += f"; above {r['max_achieved']:.2f} refused ({len(r['refused'])} targets)"
            cells.append(cell)
        lines.append(f"| `{pattern}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Sweep, print the table (and publish it with --write-docs)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", type=float, default=0.005, help="grid step of the target densities (default 0.005)")
    parser.add_argument("--write-docs", action="store_true", help="publish the table into docs/defects.md")
    args = parser.parse_args(argv)
    if not 0.0 < args.step < 0.5:
        parser.error(f"--step {args.step:g} is not in (0, 0.5): give a grid step such as 0.005")
    targets = np.round(np.arange(args.step, 1.0, args.step), 6)
    body = markdown(run(targets), args.step)
    print(body)
    if args.write_docs:
        publish("defects.md", "density-resolution", body,
                command_line(__file__, argv))


if __name__ == "__main__":
    main()
