"""Do small correctors need more L-BFGS iterations? Loss and accuracy at 200, 300, 1000 and 3000 iterations.

A one- or two-neuron MLP corrector (10 -> h -> 10) has long plateaus, so its default is 1000
L-BFGS iterations instead of 300. This script checks that choice: on a seeded sample of the
built-in demo study's defective chips (simulated as the study simulates them), every chip gets
its own corrector with h = 1 and 2 (and 4, 8 for contrast) fitted on its training images at each
iteration budget; the table gives the mean final loss, the validation and test accuracies (means
over the chips with 95 % bootstrap intervals over the chips) and the paired differences against
1000 iterations on the same chips and images.

    .venv/bin/python examples/correction_iterations.py                  # 64 chips, h in {1, 2, 4, 8}
    .venv/bin/python examples/correction_iterations.py --write-docs     # ... and publish into docs/correction.md
    .venv/bin/python examples/correction_iterations.py --chips 6 --hidden 1 8 --iterations 200 1000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docblocks import publish  # noqa: E402
from neurodtco.correction import BatchedMLPCorrector  # noqa: E402
from neurodtco.stats import bootstrap_ci, paired_bootstrap_ci  # noqa: E402

HIDDEN = (1, 2, 4, 8)
ITERATIONS = (200, 300, 1000, 3000)
REFERENCE = 1000


@dataclass(frozen=True)
class ChipSample:
    """Output voltages of sampled chips on training, validation and test images, in that order."""

    voltages: np.ndarray  # [chips, images, 10]
    labels: np.ndarray  # [images]
    n_train: int
    n_validation: int
    names: tuple[str, ...]


def sample_chips(n_chips: int, seed: int = 0, study_name: str = "demo") -> ChipSample:
    """``n_chips`` defective chips of the study drawn without replacement (seeded), simulated as the study does."""
    from neurodtco.engines import simulate
    from neurodtco.study import expand_tasks, load_study, prepare_setup
    from neurodtco.study.compute import _context, build_circuit

    study = load_study(study_name)
    points = [p for t in expand_tasks(study) if t.stage == "circuits" for p in t.circuits if not p.is_healthy]
    if not 1 <= n_chips <= len(points):
        raise ValueError(f"n_chips={n_chips} is outside 1..{len(points)}, the defective chips of study {study_name!r}")
    chosen = sorted(np.random.default_rng(seed).choice(len(points), size=n_chips, replace=False))
    ctx = _context(prepare_setup(study))
    volts = [simulate(build_circuit(ctx.circuits[points[i].network_seed], study, points[i])[0], ctx.x_all_v,
                      engine=ctx.engine, seed=points[i].imperfection_seed).outputs_v for i in chosen]
    return ChipSample(np.stack(volts), ctx.y_all, ctx.n_train, ctx.n_validation,
                      tuple(points[i].circuit_id for i in chosen))


def fit_grid(sample: ChipSample, hidden: tuple[int, ...] = HIDDEN,
             iterations: tuple[int, ...] = ITERATIONS) -> dict[tuple[int, int], dict[str, np.ndarray]]:
    """Per (h, iterations): each chip's final loss, iterations run and per-image correctness on validation and test."""
    a = sample.n_train
    grid = {}
    for h in hidden:
        for n_iter in iterations:
            tic = time.process_time()
            model = BatchedMLPCorrector(hidden=h, max_iter=n_iter).fit(sample.voltages[:, :a], sample.labels[:a])
            pred = model.predict(sample.voltages[:, a:])
            correct = pred == sample.labels[None, a:]
            grid[h, n_iter] = {"loss": np.asarray(model.final_loss_, dtype=float),
                               "n_iter": np.asarray(model.n_iter_, dtype=float),
                               "validation": correct[:, :sample.n_validation],
                               "test": correct[:, sample.n_validation:],
                               "cpu_s": time.process_time() - tic}
            print(f"  h={h} {n_iter} it: loss {grid[h, n_iter]['loss'].mean():.4f}, "
                  f"test {grid[h, n_iter]['test'].mean():.1%} [{grid[h, n_iter]['cpu_s']:.0f} s CPU]",
                  file=sys.stderr, flush=True)
    return grid


def _mean_ci(values: np.ndarray, scale: float = 100.0, digits: int = 1) -> str:
    low, high = bootstrap_ci(values)
    return f"{scale * values.mean():.{digits}f} [{scale * low:.{digits}f}, {scale * high:.{digits}f}]"


def _paired(a: np.ndarray, b: np.ndarray, scale: float, digits: int) -> str:
    diff, (low, high) = paired_bootstrap_ci(a, b)
    return f"{scale * diff:+.{digits}f} [{scale * low:+.{digits}f}, {scale * high:+.{digits}f}]"


def table(grid: dict[tuple[int, int], dict[str, np.ndarray]], reference: int = REFERENCE) -> str:
    """Markdown table per h and budget: loss and accuracies with intervals, paired differences against ``reference``."""
    lines = ["| hidden h | L-BFGS iterations (budget) | iterations run (mean) | final loss | validation accuracy (%) | "
             f"test accuracy (%) | loss - {reference} it. | test - {reference} it. (pts) |",
             "|---|---|---|---|---|---|---|---|"]
    for (h, n_iter), cell in grid.items():
        ref = grid.get((h, reference))
        per_chip = {split: cell[split].mean(axis=1) for split in ("validation", "test")}
        if ref is None or n_iter == reference:
            loss_diff = test_diff = "(reference)" if n_iter == reference else ""
        else:
            loss_diff = _paired(cell["loss"], ref["loss"], 1.0, 4)
            test_diff = _paired(per_chip["test"], ref["test"].mean(axis=1), 100.0, 1)
        lines.append(f"| {h} | {n_iter} | {cell['n_iter'].mean():.0f} | {_mean_ci(cell['loss'], 1.0, 4)} | "
                     f"{_mean_ci(per_chip['validation'])} | {_mean_ci(per_chip['test'])} | {loss_diff} | {test_diff} |")
    return "\n".join(lines)


def main() -> None:
    """Sample the chips, fit every (h, iterations), print the table and publish it on request."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chips", type=int, default=64, help="defective chips drawn from the demo study (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw")
    parser.add_argument("--hidden", type=int, nargs="+", default=list(HIDDEN))
    parser.add_argument("--iterations", type=int, nargs="+", default=list(ITERATIONS))
    parser.add_argument("--write-docs", action="store_true", help="publish the table into docs/correction.md")
    args = parser.parse_args()
    if args.write_docs and (tuple(args.hidden) != HIDDEN or tuple(args.iterations) != ITERATIONS):
        parser.error("--write-docs publishes the default grid only: drop --hidden and --iterations")
    os.environ.setdefault("NEURODTCO_CACHE", str(Path(__file__).resolve().parents[1] / ".neurodtco-cache"))
    load = os.getloadavg()
    start = time.perf_counter()
    sample = sample_chips(args.chips, args.seed)
    grid = fit_grid(sample, tuple(args.hidden), tuple(sorted(args.iterations)))
    n_val, n_test = sample.n_validation, sample.voltages.shape[1] - sample.n_train - sample.n_validation
    cpu = sum(cell["cpu_s"] for cell in grid.values())
    body = (f"{len(sample.names)} defective chips drawn (seed {args.seed}) from the 672 of the built-in demo study "
            f"(stuck-on and stuck-off, seven patterns, four arrays, 0.1-10 %; balanced encoding, nodal engine); "
            f"per chip one MLP 10-h-10 corrector (float64, seed 0, tol 1e-5) fitted on its {sample.n_train} training "
            f"images, judged on {n_val} validation and {n_test} test images. Means over the chips with 95 % bootstrap "
            f"intervals over the chips; differences are paired (same chips, same images) against {REFERENCE} "
            f"iterations. A fit stops before its budget when its largest gradient entry falls below the tolerance.\n\n"
            f"{table(grid)}\n\n"
            f"Fits: {cpu:.0f} s CPU in all; load average {load[0]:.1f} at the start.")
    print(body)
    if args.write_docs:
        command = f"python examples/correction_iterations.py --chips {args.chips} --write-docs"
        publish("correction.md", "iterations", body, command)
    print(f"total {time.perf_counter() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
