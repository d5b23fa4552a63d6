"""Correcting defect-induced errors with small networks: per array at physical densities, and the published figures.

Default mode (``--mode physical``, ``examples/correction_physical.py``): the chip with 0.1, 1, 3 or
10 % of one array's cells stuck, per array, over network seeds and defect instances; per chip the
corrector (at most 200 parameters) chosen on validation images, judged on test images, with
bootstrap intervals over the chips; and whether the 31-parameter MLP harms (paired, same images).

``--mode severity`` reproduces the published figures: for each of the seven defect patterns on each of
the four arrays of the default 64-8-8-8-10 chip:

1. severity search: the defect density whose median validation accuracy over the instances is 40-60 %;
2. correction: per chip, fit a corrector on the chip's voltages for the 1617 training images, judge it
   on the chip's 180 test images: MLP 10-8-10 (178 parameters) and the baselines (affine 20,
   logistic 110, last-layer retrain 90, MLP with the hidden voltages too);
3. the parameter sweep h in {1, 2, 4, 8, 16, 32} of the MLP;
4. the 7x7 cross-defect matrix (+ a mixture-trained corrector), judged on held-out instances;
5. the calibration budget: labelled images per chip in {10, 20, 50, 100, 200, 500, all}.

Run from the repository root (writes Markdown tables to stdout, figures and results.json to --out):

    .venv/bin/python examples/correction_study.py                  # physical densities, 3 seeds x 5 instances
    .venv/bin/python examples/correction_study.py --write-docs     # ... and publish the tables into docs/correction.md
    .venv/bin/python examples/correction_study.py --quick          # 1 seed x 2 instances
    .venv/bin/python examples/correction_study.py --mode severity  # the published figures (~11 min on 2 busy cores)
    .venv/bin/python examples/correction_study.py --mode severity --write-docs   # ... and publish their tables
    .venv/bin/python examples/correction_study.py --mode severity --quick   # 2 instances, fewer sweeps (~3 min)
    .venv/bin/python examples/correction_study.py --from-results out/correction/physical.json  # redraw only
    .venv/bin/python examples/correction_study.py --mode severity --from-results out/correction/results.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules below, run from anywhere
import correction_physical  # noqa: E402
import correction_severity_tables  # noqa: E402
from _docblocks import publish  # noqa: E402
from neurodtco.correction import (BatchedAffineCalibration, BatchedLastLayerRetrain, BatchedLogisticCorrector,
                                  BatchedMLPCorrector, correct_circuits, measure_chip)
from neurodtco.correction.cross import CrossDefectResult, plot_cross_defect
from neurodtco.correction.studies import (STUDY_PATTERNS, calibration_budget, cross_defect_matrix, make_defective,
                                          severity_search, unseen_chip_matrix)
from neurodtco.data import load_digits
from neurodtco.mapping import MappingConfig, map_network
from neurodtco.network import default_network

HIDDEN_SWEEP = (1, 2, 4, 8, 16, 32)
BUDGETS = (10, 20, 50, 100, 200, 500, None)


def log(message: str) -> None:
    """Progress on stderr, so stdout stays the report."""
    print(message, file=sys.stderr, flush=True)


def fit_all(chips: list, dataset: Any, corrector: Any) -> tuple[np.ndarray, int]:
    """Test accuracy after correction of every chip (one batched fit), and the corrector's size."""
    results = correct_circuits([None] * len(chips), dataset, corrector, chips=chips)
    return np.array([r.accuracy_after for r in results]), results[0].n_parameters


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole study; returns everything measured."""
    t0 = time.perf_counter()
    dataset = load_digits(seed=0, n_validation=180)  # the severity search chooses on these, never on the test images
    circuit = map_network(default_network(dataset), MappingConfig())
    healthy = measure_chip(circuit, dataset, args.engine).accuracy(dataset.y_test)
    log(f"healthy chip ({args.engine} engine): {healthy:.1%} on {len(dataset.y_test)} test images")
    instances = range(args.instances)
    layers = range(circuit.n_layers)
    timings: dict[str, float] = {}

    # 1. Severity per pattern x array.
    start = time.perf_counter()
    points = []
    for pattern in args.patterns:
        for layer in layers:
            point = severity_search(circuit, dataset, pattern, layer, kind=args.kind, engine=args.engine,
                                    instances=instances)
            points.append(point)
            log(f"  {pattern:<20s} array {layer}: density {point.density:.3f} -> median {point.median_accuracy:.1%}"
                f"{'' if point.in_range else '  (' + point.note + ')'}")
    timings["severity_s"] = time.perf_counter() - start
    chips = [chip for p in points for chip in p.chips]
    case_of = np.repeat(np.arange(len(points)), [len(p.chips) for p in points])
    before = np.array([c.accuracy(dataset.y_test) for c in chips])

    # 2. Correctors on every chip, each fitted on that chip alone (batched).
    start = time.perf_counter()
    correctors = {
        "mlp8": BatchedMLPCorrector(hidden=8, dtype=args.dtype),
        "logistic": BatchedLogisticCorrector(dtype=args.dtype),
        "affine": BatchedAffineCalibration(dtype=args.dtype),
        "lastlayer": BatchedLastLayerRetrain(dtype=args.dtype),
        "mlp8_hidden": BatchedMLPCorrector(hidden=8, features="outputs+hidden", dtype=args.dtype),
    }
    after: dict[str, np.ndarray] = {}
    n_params: dict[str, int] = {}
    for name, corrector in correctors.items():
        tic = time.perf_counter()
        after[name], n_params[name] = fit_all(chips, dataset, corrector)
        log(f"  {name:<12s} ({n_params[name]} parameters) on {len(chips)} chips: median after "
            f"{np.median(after[name]):.1%} [{time.perf_counter() - tic:.0f} s]")
    timings["correctors_s"] = time.perf_counter() - start

    # 3. Hidden-size sweep.
    start = time.perf_counter()
    sweep = {}
    for h in (HIDDEN_SWEEP if not args.quick else (1, 2, 8, 32)):
        tic = time.perf_counter()
        acc = after["mlp8"] if h == 8 else fit_all(chips, dataset, BatchedMLPCorrector(hidden=h, dtype=args.dtype))[0]
        sweep[h] = acc
        log(f"  h={h:<3d} ({21 * h + 10} parameters): median after {np.median(acc):.1%} "
            f"[{time.perf_counter() - tic:.0f} s]")
    timings["sweep_s"] = time.perf_counter() - start

    # 4. Cross-defect matrix, per array: the corrector of chip (A, instance i) judged on chip (B, i);
    #    then averaged over the arrays. And the harder question: chips never seen in training.
    start = time.perf_counter()
    per_array = []
    for layer in layers:
        paired = {p.pattern: p.chips for p in points if p.layer == layer}
        per_array.append(cross_defect_matrix(paired, dataset, BatchedMLPCorrector(hidden=8, dtype=args.dtype)))
    cross = CrossDefectResult.average(per_array)
    train_chips: dict[str, list] = {}
    test_chips: dict[str, list] = {}
    for point in points:
        test_chips.setdefault(point.pattern, []).extend(point.chips)
        for instance in range(1000, 1000 + args.train_instances):
            chip_circuit, _ = make_defective(circuit, point.pattern, point.layer, point.density, instance, args.kind)
            train_chips.setdefault(point.pattern, []).append(measure_chip(chip_circuit, dataset, args.engine))
    unseen = unseen_chip_matrix(train_chips, test_chips, dataset, BatchedMLPCorrector(hidden=8, dtype=args.dtype))
    timings["cross_s"] = time.perf_counter() - start
    log(f"  cross-defect matrices [{timings['cross_s']:.0f} s]")

    # 5. Calibration budget.
    start = time.perf_counter()
    budgets = BUDGETS if not args.quick else (10, 50, 200, None)
    budget_correctors = (("mlp8", BatchedMLPCorrector(hidden=8, dtype=args.dtype)),
                         ("logistic", BatchedLogisticCorrector(dtype=args.dtype)),
                         ("affine", BatchedAffineCalibration(dtype=args.dtype)))
    arrays = [p.layer for p in points for _ in p.chips]
    budget = {name: calibration_budget(chips, dataset, corrector, budgets, arrays=arrays)
              for name, corrector in budget_correctors}
    timings["budget_s"] = time.perf_counter() - start
    log(f"  calibration budget [{timings['budget_s']:.0f} s]")
    timings["total_s"] = time.perf_counter() - t0

    return {
        "engine": args.engine, "kind": args.kind, "dtype": args.dtype, "instances": args.instances,
        "train_instances": args.train_instances, "n_train": len(dataset.y_train), "n_test": len(dataset.y_test),
        "healthy_accuracy": healthy,
        "cases": [{"pattern": p.pattern, "layer": p.layer, "density": p.density,
                   "achieved_density": float(np.mean(p.achieved_density)), "in_range": p.in_range, "note": p.note,
                   "steps": p.steps} for p in points],
        "case_of_chip": case_of.tolist(), "before": before.tolist(),
        "after": {k: v.tolist() for k, v in after.items()}, "n_parameters": n_params,
        "sweep": {str(h): v.tolist() for h, v in sweep.items()},
        "cross": cross.to_dict(), "cross_markdown": cross.to_markdown(),
        "cross_per_array": [m.to_dict() for m in per_array],
        "unseen": unseen.to_dict(), "unseen_markdown": unseen.to_markdown(),
        "budget": {name: {"budget": b["budget"].tolist(), "accuracy": b["accuracy"].tolist()}
                   for name, b in budget.items()},
        "timings": timings,
    }


def plots(res: dict[str, Any], out: Path) -> list[Path]:
    """The figures: cases before/after, recovered accuracy vs parameters, cross-defect heatmap, budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    healthy = res["healthy_accuracy"]
    before = np.array(res["before"])
    case_of = np.array(res["case_of_chip"])
    patterns = list(dict.fromkeys(c["pattern"] for c in res["cases"]))
    layers = sorted({c["layer"] for c in res["cases"]})
    paths = []

    # Before / after per pattern x array.
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), sharey=True)
    for ax, (title, values) in zip(axes, (("before correction", before),
                                           ("after MLP 10-8-10 (178 parameters)", np.array(res["after"]["mlp8"])))):
        grid = np.full((len(patterns), len(layers)), np.nan)
        for i, case in enumerate(res["cases"]):
            grid[patterns.index(case["pattern"]), layers.index(case["layer"])] = 100 * np.median(values[case_of == i])
        im = ax.imshow(grid, cmap="viridis", vmin=0, vmax=100, aspect="auto")
        for (r, c), v in np.ndenumerate(grid):
            ax.text(c, r, f"{v:.0f}", ha="center", va="center", color="black" if v > 60 else "white", fontsize=8)
        ax.set_xticks(range(len(layers)), [f"array {layer}" for layer in layers])
        ax.set_yticks(range(len(patterns)), patterns)
        ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=axes, label="median test accuracy (%)")
    paths.append(out / "correction_cases.png")
    fig.savefig(paths[-1], dpi=130, bbox_inches="tight")
    plt.close(fig)

    # Recovered accuracy vs parameter count.
    fig, ax = plt.subplots(figsize=(6, 4))
    hs = [int(h) for h in res["sweep"]]
    params = [21 * h + 10 for h in hs]
    med = [100 * np.median(res["sweep"][str(h)]) for h in hs]
    q1 = [100 * np.quantile(res["sweep"][str(h)], 0.25) for h in hs]
    q3 = [100 * np.quantile(res["sweep"][str(h)], 0.75) for h in hs]
    ax.fill_between(params, q1, q3, alpha=0.2, color="C0")
    ax.plot(params, med, "o-", color="C0", label="MLP 10-h-10 (median, quartiles)")
    for h, x, y in zip(hs, params, med):
        ax.annotate(f"h={h}", (x, y), textcoords="offset points", xytext=(4, -12), fontsize=8)
    markers = {"affine": "s", "logistic": "^", "lastlayer": "D", "mlp8_hidden": "v"}
    for name, marker in markers.items():
        ax.plot(res["n_parameters"][name], 100 * np.median(res["after"][name]), marker, label=name)
    ax.axhline(100 * np.median(before), color="gray", ls="--", label="before correction")
    ax.axhline(100 * healthy, color="black", ls=":", label="healthy chip")
    ax.set_xscale("log")
    ticks = sorted({*params, res["n_parameters"]["affine"]})  # the others sit too close to label
    ax.set_xticks(ticks, [str(t) for t in ticks], fontsize=7)
    ax.minorticks_off()
    ax.set_xlabel("corrector parameters")
    ax.set_ylabel("median test accuracy (%)")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("accuracy after correction vs corrector size", fontsize=10)
    paths.append(out / "correction_parameters.png")
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=130)
    plt.close(fig)

    # Cross-defect heatmaps.
    paths.append(plot_cross_defect(CrossDefectResult.from_dict(res["cross"]), out / "correction_cross_defect.png",
                                   title="trained on one chip of type A, judged on a chip of type B (%)"))
    paths.append(plot_cross_defect(CrossDefectResult.from_dict(res["unseen"]), out / "correction_unseen_chips.png",
                                   title="trained on other chips of type A, judged on unseen chips of type B (%)"))

    # Calibration budget.
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, b in res["budget"].items():
        acc = np.array(b["accuracy"])
        ax.plot(b["budget"], 100 * np.median(acc, axis=1), "o-", label=name)
    ax.axhline(100 * np.median(before), color="gray", ls="--", label="before correction")
    ax.axhline(100 * healthy, color="black", ls=":", label="healthy chip")
    ax.set_xscale("log")
    sizes = res["budget"][next(iter(res["budget"]))]["budget"]
    ax.set_xticks(sizes, [str(v) for v in sizes])
    ax.minorticks_off()
    ax.set_xlabel("labelled images per chip (class-balanced)")
    ax.set_ylabel("median test accuracy (%)")
    ax.legend(fontsize=8)
    ax.set_title("calibration budget", fontsize=10)
    paths.append(out / "correction_budget.png")
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=130)
    plt.close(fig)
    return paths


def report_severity(result: dict[str, Any], args: argparse.Namespace) -> None:
    """The severity study's figures and tables; with ``--write-docs`` published into docs/correction.md."""
    for path in plots(result, args.out):
        log(f"wrote {path}")
    blocks = correction_severity_tables.tables(result)
    print("\n\n".join(blocks.values()))
    if args.write_docs:
        docs = Path(__file__).resolve().parents[1] / "docs"
        plots(result, docs / "img")
        command = "python examples/correction_study.py --mode severity --write-docs" + (
            "" if result["kind"] == "on" else f" --kind {result['kind']}")
        for block, body in blocks.items():
            publish("correction.md", block, body, command)


def run_physical(args: argparse.Namespace) -> None:
    """The physical-density study: run (or reload), print its tables, draw its figure, publish on request."""
    if args.from_results is not None:
        result = json.loads(args.from_results.read_text())
    else:
        args.seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
        args.densities = tuple(float(d) for d in args.densities.split(",") if d.strip())
        if args.quick:
            args.seeds, args.instances = args.seeds[:1], min(args.instances, 2)
        result = correction_physical.run(args)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "physical.json").write_text(json.dumps(result))
    name = "correction_physical.png" if result["kind"] == "on" else f"correction_physical_{result['kind']}.png"
    figure = correction_physical.plot(result, args.out / name)
    log(f"wrote {figure}")
    blocks = correction_physical.tables(result)
    print("\n\n".join(blocks.values()))
    if args.write_docs:
        docs = Path(__file__).resolve().parents[1] / "docs"
        correction_physical.plot(result, docs / "img" / name)
        command = "python examples/correction_study.py --write-docs" + ("" if result["kind"] == "on" else
                                                                        f" --kind {result['kind']}")
        for block, body in blocks.items():
            publish("correction.md", block, body, command)
    if args.json:
        print(json.dumps(result))


def main() -> None:
    """Parse the options, run the study, print the report, write figures and results.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="physical", choices=("physical", "severity"),
                        help="physical (default): per array at 0.1-10 %% stuck cells; severity: the published figures.")
    parser.add_argument("--seeds", default="0,1,2", help="physical mode: network seeds, comma separated.")
    parser.add_argument("--densities", default=",".join(map(str, correction_physical.DENSITIES)),
                        help="physical mode: stuck-cell densities per array, comma separated.")
    parser.add_argument("--write-docs", action="store_true",
                        help="publish the tables into docs/correction.md and the figures into docs/img/ (either mode).")
    parser.add_argument("--engine", default="nodal", help="nodal (default, exact) or ideal.")
    parser.add_argument("--instances", type=int, default=5, help="Defect instances per pattern x array (>= 5 for the table).")
    parser.add_argument("--train-instances", type=int, default=2,
                        help="Extra instances per pattern x array to train the cross-defect correctors on.")
    parser.add_argument("--kind", default="on", help="Stuck state of the hit cells: on or off.")
    parser.add_argument("--patterns", default=None,
                        help="Patterns, comma separated (default: random in physical mode, all seven in severity).")
    parser.add_argument("--out", type=Path, default=Path("out/correction"), help="Folder for figures and results.json.")
    parser.add_argument("--dtype", default="float32",
                        help="Corrector arithmetic: float32 (default, as the published tables) or float64 (the "
                             "library default: batched fits then match one-by-one fits; bench/correction.py times both).")
    parser.add_argument("--quick", action="store_true",
                        help="physical: 1 seed x 2 instances; severity: 2 instances, h in {1,2,8,32}, 4 budgets.")
    parser.add_argument("--json", action="store_true", help="Print the whole result as one JSON line at the end.")
    parser.add_argument("--from-results", type=Path, default=None,
                        help="Skip the study: redraw the figures and the report from a results.json.")
    args = parser.parse_args()
    if args.write_docs and args.quick:
        parser.error("--write-docs publishes full runs only: drop --quick")
    if args.mode == "physical" and args.from_results is not None:
        run_physical(args)
        return
    if args.from_results is not None:
        report_severity(json.loads(args.from_results.read_text()), args)
        return
    default_patterns = "random" if args.mode == "physical" else ",".join(STUDY_PATTERNS)
    args.patterns = tuple(p.strip() for p in (args.patterns or default_patterns).split(",") if p.strip())
    if args.mode == "physical":
        run_physical(args)
        return
    if args.quick:
        args.instances = min(args.instances, 2)
        args.train_instances = 1
    result = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result))
    report_severity(result, args)
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
