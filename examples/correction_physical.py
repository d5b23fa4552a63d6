"""The correction study per array at physical defect densities (0.1, 1, 3, 10 % of an array's cells).

For every network seed, array, density and defect instance: simulate the chip (nodal engine), fit
every candidate corrector of at most 200 parameters on the chip's training images, keep per chip
the one with the best *validation* accuracy (size and iterations are candidates), and report only
its test accuracy. The 31-parameter MLP (h = 1) is fitted too and compared with the uncorrected chip
on the same test images (paired: per-chip difference and McNemar's p). Intervals are 95 % bootstrap
intervals over the chips (instances x network seeds) of one array and density.

Called by ``examples/correction_study.py`` (its default mode); ``run``, ``report`` and ``plot`` are
the pieces.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from neurodtco.correction import (BatchedAffineCalibration, BatchedLogisticCorrector, BatchedMLPCorrector,
                                  measure_chip)
from neurodtco.correction.studies import make_defective, select_on_validation, summarize
from neurodtco.data import load_digits
from neurodtco.mapping import MappingConfig, map_network
from neurodtco.network import default_network
from neurodtco.network.training import NetworkConfig
from neurodtco.stats import mcnemar_exact

DENSITIES = (0.001, 0.01, 0.03, 0.1)


def log(message: str) -> None:
    """Progress on stderr, so stdout stays the report."""
    print(message, file=sys.stderr, flush=True)


def candidates(dtype: str) -> dict[str, Any]:
    """The correctors of at most 200 parameters that the validation images choose among, per chip."""
    return {"mlp h=8": BatchedMLPCorrector(hidden=8, dtype=dtype),
            "mlp h=8, 100 it": BatchedMLPCorrector(hidden=8, max_iter=100, dtype=dtype),
            "mlp h=4": BatchedMLPCorrector(hidden=4, dtype=dtype),
            "mlp h=2": BatchedMLPCorrector(hidden=2, dtype=dtype),
            "logistic": BatchedLogisticCorrector(dtype=dtype),
            "affine": BatchedAffineCalibration(dtype=dtype)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Simulate every chip, fit and choose the correctors; returns per-chip results (JSON-ready)."""
    t0 = time.perf_counter()
    dataset = load_digits(seed=0, n_validation=180)
    chips, meta, healthy = [], [], {}
    for seed in args.seeds:
        circuit = map_network(default_network(dataset, NetworkConfig(seed=seed)), MappingConfig())
        healthy[seed] = measure_chip(circuit, dataset, args.engine).accuracy(dataset.y_test)
        log(f"network seed {seed}: healthy chip {healthy[seed]:.1%} on {len(dataset.y_test)} test images")
        for pattern in args.patterns:
            for layer in range(circuit.n_layers):
                for density in args.densities:
                    for instance in range(args.instances):
                        chip_circuit, record = make_defective(circuit, pattern, layer, density, instance, args.kind,
                                                              seed)
                        chips.append(measure_chip(chip_circuit, dataset, args.engine))
                        meta.append({"seed": seed, "pattern": pattern, "array": layer, "density": density,
                                     "instance": instance, "achieved": float(record.density[layer])})
    t_sim = time.perf_counter() - t0
    log(f"{len(chips)} chips simulated [{t_sim:.0f} s]")
    start = time.perf_counter()
    chosen = select_on_validation(chips, dataset, candidates(args.dtype))
    t_sel = time.perf_counter() - start
    log(f"candidates fitted and chosen on validation [{t_sel:.0f} s]")
    start = time.perf_counter()
    tiny = select_on_validation(chips, dataset, {"mlp h=1": BatchedMLPCorrector(hidden=1, dtype=args.dtype)})
    t_tiny = time.perf_counter() - start
    log(f"h=1 fitted [{t_tiny:.0f} s]")
    for k, m in enumerate(meta):
        m.update(before=float(chosen.accuracy_before[k]), after=float(chosen.accuracy_after[k]),
                 choice=chosen.names[chosen.chosen[k]], after_h1=float(tiny.accuracy_after[k]),
                 p_h1=mcnemar_exact(tiny.correct_after[k], tiny.correct_before[k]),
                 healthy=healthy[m["seed"]])
    return {"engine": args.engine, "kind": args.kind, "dtype": args.dtype, "instances": args.instances,
            "seeds": list(args.seeds), "patterns": list(args.patterns), "densities": list(args.densities),
            "n_test": len(dataset.y_test), "n_validation": len(dataset.y_val), "n_train": len(dataset.y_train),
            "healthy": {str(s): v for s, v in healthy.items()},
            "candidates": {n: int(p) for n, p in zip(chosen.names, chosen.n_parameters)}, "chips": meta,
            "timings": {"simulate_s": t_sim, "select_s": t_sel, "h1_s": t_tiny,
                        "total_s": time.perf_counter() - t0}}


def _ci(values: np.ndarray) -> str:
    """Mean with its 95 % bootstrap interval over the chips, in percentage points."""
    s = summarize(values)
    return f"{100 * s['mean']:.1f} [{100 * s['mean_ci'][0]:.1f}, {100 * s['mean_ci'][1]:.1f}]"


def _signed(values: np.ndarray) -> str:
    """A mean gain with its bootstrap interval, signed, in points."""
    s = summarize(values)
    return f"{100 * s['mean']:+.1f} [{100 * s['mean_ci'][0]:+.1f}, {100 * s['mean_ci'][1]:+.1f}]"


def groups(res: dict[str, Any]) -> list[tuple[str, int, float, list[dict]]]:
    """The chips of each (pattern, array, density), in order."""
    out = []
    for pattern in res["patterns"]:
        for array in sorted({c["array"] for c in res["chips"]}):
            for density in res["densities"]:
                sel = [c for c in res["chips"] if (c["pattern"], c["array"], c["density"]) == (pattern, array, density)]
                out.append((pattern, array, density, sel))
    return out


def tables(res: dict[str, Any]) -> dict[str, str]:
    """The Markdown tables, by docs block name: ``physical`` (recovery) and ``physical-h1`` (does h = 1 harm),
    with ``-off`` appended for stuck-off cells."""
    n_chips = len(res["seeds"]) * res["instances"]
    head = (f"Default 64-8-8-8-10 network, {len(res['seeds'])} network seeds x {res['instances']} defect instances "
            f"= {n_chips} chips per row, stuck-{res['kind']} cells, {res['engine']} engine; correctors fitted on "
            f"{res['n_train']} training images per chip, chosen per chip on {res['n_validation']} validation images, "
            f"judged on {res['n_test']} test images. Healthy chips: "
            + ", ".join(f"{100 * v:.1f} %" for v in res["healthy"].values())
            + " (test, per seed). Accuracies and gains are means over the chips with 95 % bootstrap intervals "
              "over the chips; 'recovered' is the mean gain over the mean loss (healthy - before).")
    lines = [head, "", "| pattern | array | density | cells hit (achieved) | before (%) | after, <= 200 param. (%) | "
             "gain (pts) | recovered | chosen |", "|---|---|---|---|---|---|---|---|---|"]
    h1 = ["| pattern | array | density | before (%) | MLP h=1, 31 param. (%) | h=1 - before (pts) | "
          "chips harmed / helped (McNemar p < 0.05) |", "|---|---|---|---|---|---|---|"]
    for pattern, array, density, sel in groups(res):
        before = np.array([c["before"] for c in sel])
        after = np.array([c["after"] for c in sel])
        after1 = np.array([c["after_h1"] for c in sel])
        loss = np.mean([c["healthy"] - c["before"] for c in sel])
        rec = f"{np.mean(after - before) / loss:.2f}" if loss > 0.02 else "(lost < 2 pts)"
        counts: dict[str, int] = {}
        for c in sel:
            counts[c["choice"]] = counts.get(c["choice"], 0) + 1
        choice = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
        achieved = np.mean([c["achieved"] for c in sel])
        lines.append(f"| {pattern} | {array} | {100 * density:g} % | {100 * achieved:.2f} % | {_ci(before)} | "
                     f"{_ci(after)} | {_signed(after - before)} | {rec} | {choice} |")
        harmed = sum(1 for c in sel if c["p_h1"] < 0.05 and c["after_h1"] < c["before"])
        helped = sum(1 for c in sel if c["p_h1"] < 0.05 and c["after_h1"] > c["before"])
        h1.append(f"| {pattern} | {array} | {100 * density:g} % | {_ci(before)} | {_ci(after1)} | "
                  f"{_signed(after1 - before)} | {harmed} / {helped} of {len(sel)} |")
    chips = res["chips"]
    low = [c for c in chips if c["before"] <= 0.55]
    hits = [c for c in low if c["after"] >= 0.85]
    by_array = ", ".join(f"array {a}: {sum(1 for c in hits if c['array'] == a)} of "
                         f"{sum(1 for c in low if c['array'] == a)}" for a in sorted({c['array'] for c in chips}))
    lines += ["", f"Chips from <= 55 % to >= 85 % after correction: {len(hits)} of the {len(low)} chips that start at "
              f"<= 55 % ({by_array}); {len(chips)} chips in all."]
    harmed = sum(1 for c in chips if c["p_h1"] < 0.05 and c["after_h1"] < c["before"])
    helped = sum(1 for c in chips if c["p_h1"] < 0.05 and c["after_h1"] > c["before"])
    h1 += ["", f"All chips: h=1 - before {_signed(np.array([c['after_h1'] - c['before'] for c in chips]))} points; "
           f"significantly harmed {harmed}, helped {helped}, of {len(chips)}."]
    t = res["timings"]
    lines += ["", "Time: " + ", ".join(f"{k[:-2]} {v:.0f} s" for k, v in t.items())]
    suffix = "" if res["kind"] == "on" else f"-{res['kind']}"
    return {f"physical{suffix}": "\n".join(lines), f"physical-h1{suffix}": "\n".join(h1)}


def plot(res: dict[str, Any], path: Path) -> Path:
    """Accuracy before and after correction per array against density, means with bootstrap intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arrays = sorted({c["array"] for c in res["chips"]})
    patterns = res["patterns"]
    fig, axes = plt.subplots(len(patterns), len(arrays), figsize=(3.0 * len(arrays), 2.9 * len(patterns)),
                             sharey=True, squeeze=False)
    healthy = 100 * np.mean(list(res["healthy"].values()))
    series = (("before", "uncorrected", "C3", "o"), ("after", "chosen on validation (<= 200 param.)", "C0", "s"),
              ("after_h1", "MLP h=1 (31 param.)", "C2", "^"))
    for r, pattern in enumerate(patterns):
        for col, array in enumerate(arrays):
            ax = axes[r, col]
            dens = res["densities"]
            for j, (key, label, color, marker) in enumerate(series):
                mean, low, high = [], [], []
                for d in dens:
                    v = [c[key] for c in res["chips"]
                         if (c["pattern"], c["array"], c["density"]) == (pattern, array, d)]
                    s = summarize(v)
                    mean.append(100 * s["mean"])
                    low.append(100 * (s["mean"] - s["mean_ci"][0]))
                    high.append(100 * (s["mean_ci"][1] - s["mean"]))
                x = 100 * np.array(dens) * (1.0 + 0.08 * (j - 1))  # side by side, so that bars do not hide each other
                ax.errorbar(x, mean, yerr=[low, high], color=color, marker=marker, ms=4, capsize=2, label=label)
            ax.axhline(healthy, color="black", ls=":", lw=1, label="healthy (mean of seeds)")
            ax.set_xscale("log")
            ax.set_xticks(100 * np.array(dens), [f"{100 * d:g}" for d in dens])
            ax.minorticks_off()
            ax.set_ylim(0, 100)
            ax.set_title(f"{pattern}, array {array}", fontsize=9)
            if r == len(patterns) - 1:
                ax.set_xlabel("stuck cells (% of the array)")
            if col == 0:
                ax.set_ylabel("test accuracy (%)")
    axes[0, 0].legend(fontsize=6, loc="lower left")
    n = len(res["seeds"]) * res["instances"]
    fig.suptitle(f"stuck-{res['kind']} cells, per array: mean over {n} chips ({res['n_test']} test images each), "
                 "95 % bootstrap interval over the chips",
                 fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
