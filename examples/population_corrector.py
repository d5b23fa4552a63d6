"""A corrector that serves chips it never saw: trained on a population of simulated chips, adapted per chip.

Leave one pattern out: for each of the seven defect patterns, a population corrector is trained on
simulated chips of the six others (every array, densities log-uniform in 2-50 %, many instances),
its prior chosen on validation chips of those six, and judged on test chips of the held-out pattern
with k labelled images each (k = 0 reads only the chip's outputs on 200 unlabelled images). Two
adaptations are compared: the k labels alone, and the k labels plus the defect-free design's
decisions on the unlabelled images (computed in software: no label needed). Then the 7x7
cross-defect matrix rebuilt with population correctors (row A: trained on chips of pattern A only;
last row: the leave-one-pattern-out corrector), at k = 20.

Run from the repository root (Markdown to stdout, results_<mode>.json and the heatmaps to --out):

    .venv/bin/python examples/population_corrector.py          # 12 training / 4 test chips per pattern
    .venv/bin/python examples/population_corrector.py --full   # 40 training / 12 test chips per pattern
    .venv/bin/python examples/population_corrector.py --mode labels --no-cross --write-docs   # publish one curve
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docblocks import publish  # noqa: E402
from neurodtco.correction import measure_chip
from neurodtco.correction.cross import plot_cross_defect
from neurodtco.correction.population import PopulationCorrector
from neurodtco.correction.population_study import (PopulationResult, draw_chips, leave_one_pattern_out,
                                                   population_cross_matrix)
from neurodtco.correction.studies import STUDY_PATTERNS
from neurodtco.data import load_digits
from neurodtco.mapping import MappingConfig, map_network
from neurodtco.network import default_network
from neurodtco.stats import bootstrap_ci

CROSS_K = 20


def log(message: str) -> None:
    """Progress on stderr, so stdout stays the report."""
    print(message, file=sys.stderr, flush=True)


def _mean_ci(values: np.ndarray) -> str:
    low, high = bootstrap_ci(values)
    return f"{100 * values.mean():.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def curve_table(lopo: PopulationResult) -> str:
    """The calibration curve: accuracy and share of the oracle's recovery per budget, with intervals over the chips."""
    lines = lopo.to_markdown().splitlines()[:-2]
    lines.append(f"| (no correction) | {_mean_ci(lopo.before)} | 0 |")
    lines.append(f"| (per-chip oracle, MLP h=8, all images) | {_mean_ci(lopo.oracle)} | 100 |")
    return "\n".join(lines)


def pattern_table(lopo: PopulationResult, ks: tuple[int, ...] = (0, CROSS_K)) -> str:
    """Per held-out pattern: mean test accuracy of its test chips with a bootstrap interval over them."""
    lines = ["| held out | chips | no correction | " + " | ".join(f"k={k}" for k in ks) + " | oracle |",
             "|---" * (4 + len(ks)) + "|"]
    for p in lopo.patterns:
        sel = np.array([s.pattern == p for s in lopo.specs])
        lines.append(f"| {p} | {int(sel.sum())} | {_mean_ci(lopo.before[sel])} | "
                     + " | ".join(_mean_ci(lopo.accuracy[lopo.budgets.index(k), sel]) for k in ks)
                     + f" | {_mean_ci(lopo.oracle[sel])} |")
    return "\n".join(lines)


def main() -> None:
    """Run the study and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="the larger run (40 training, 12 test chips per pattern)")
    parser.add_argument("--out", type=Path, default=Path("out/population"), help="folder for results.json and figures")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", choices=("both", "labels", "labels+reference"), default="both",
                        help="adaptation(s) to run: the k labels alone, and/or with the design's decisions")
    parser.add_argument("--no-cross", action="store_true",
                        help="skip the 7x7 matrix of population correctors (the longest part)")
    parser.add_argument("--write-docs", action="store_true",
                        help="publish each adaptation's curve and per-pattern table into docs/correction.md")
    args = parser.parse_args()
    if args.write_docs and (args.mode == "both" or not args.no_cross):
        parser.error("--write-docs publishes one adaptation without the matrix: add --mode labels (or "
                     "labels+reference) and --no-cross")
    n_train, n_val, n_test, hidden, iters = (40, 4, 12, 64, 300) if args.full else (12, 1, 4, 32, 150)
    t0 = time.perf_counter()
    dataset = load_digits(seed=0)
    circuit = map_network(default_network(dataset), MappingConfig())
    healthy = measure_chip(circuit, dataset)
    patterns = list(STUDY_PATTERNS)
    # Disjoint instance ranges: no test chip is ever a training or validation chip.
    train = draw_chips(circuit, dataset, patterns, n_train, first_instance=10_000, seed=args.seed)
    val = draw_chips(circuit, dataset, patterns, n_val, first_instance=20_000, seed=args.seed + 1)
    test = draw_chips(circuit, dataset, patterns, n_test, first_instance=0, seed=args.seed + 2)
    log(f"{len(train.specs)} training, {len(val.specs)} validation, {len(test.specs)} test chips "
        f"({time.perf_counter() - t0:.0f} s)")
    make = partial(PopulationCorrector, hidden, max_iter=iters, seed=args.seed)
    out: dict = {"n_chips": {"train": len(train.specs), "validation": len(val.specs), "test": len(test.specs)}}
    args.out.mkdir(parents=True, exist_ok=True)
    for mode, reference in (("labels", None), ("labels+reference", healthy)):
        if args.mode not in ("both", mode):
            continue
        start = time.perf_counter()
        lopo = leave_one_pattern_out(train, val, test, dataset, make, reference=reference, seed=args.seed)
        log(f"leave one pattern out, {mode}: {time.perf_counter() - start:.0f} s")
        print(f"\n## Leave one pattern out: calibration curve ({mode})\n")
        elapsed = time.perf_counter() - start
        header = (f"{len(train.specs)} training, {len(val.specs)} validation and {len(lopo.specs)} test chips "
                  f"({n_test} per held-out pattern), seed {args.seed}; population MLP with {hidden} hidden neurons, "
                  f"{iters} L-BFGS iterations; prior per fold chosen on validation chips: {lopo.priors.tolist()}. "
                  f"Accuracy: mean test accuracy (180 images per chip) with a 95 % bootstrap interval over the test "
                  f"chips; share of the oracle's recovery: (acc - uncorrected) / (oracle - uncorrected) on chip means. "
                  f"{elapsed / 60:.0f} minutes for the seven folds.")
        curve, per_pattern = curve_table(lopo), pattern_table(lopo)
        print(f"{header}\n\n{curve}\n\nPer held-out pattern (mean test accuracy %, k labelled images):\n")
        print(per_pattern)
        if args.write_docs:
            name = "population-" + ("labels" if reference is None else "reference")
            command = f"python examples/population_corrector.py --mode {mode} --no-cross --write-docs" + (
                " --full" if args.full else "")
            publish("correction.md", name, f"{header}\n\n{curve}", command)
            publish("correction.md", f"{name}-patterns", per_pattern, command)
        out[mode] = {"curve": lopo.table(), "priors": lopo.priors.tolist(), "before": lopo.before.tolist(),
                     "oracle": lopo.oracle.tolist(), "accuracy": lopo.accuracy.tolist(),
                     "chips": [s.chip_id for s in lopo.specs]}
        if args.no_cross:
            continue
        start = time.perf_counter()
        matrix = population_cross_matrix(train, val, test, dataset, lopo, CROSS_K, make, reference=reference,
                                         seed=args.seed)
        log(f"cross matrix, {mode}: {time.perf_counter() - start:.0f} s")
        print(f"\n## Cross-defect matrix of population correctors, k = {CROSS_K} ({mode})\n")
        print(matrix.to_markdown())
        off = ~np.eye(len(patterns), dtype=bool)
        below = int((matrix.accuracy[:len(patterns)][off] < np.broadcast_to(matrix.before, off.shape)[off]).sum())
        print(f"\noff-diagonal cells below the uncorrected accuracy: {below} of {int(off.sum())}; population row "
              f"below it in {int((matrix.accuracy[-1] < matrix.before).sum())} of {len(patterns)} columns")
        plot_cross_defect(matrix, args.out / f"cross_{mode.replace('+', '_')}.png",
                          title=f"population correctors, k = {CROSS_K} ({mode}): test accuracy (%)")
        out[mode]["cross"] = matrix.to_dict()
    (args.out / f"results_{args.mode.replace('+', '_')}.json").write_text(json.dumps(out, indent=1, default=str))
    log(f"done in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
