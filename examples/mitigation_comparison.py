"""Measure every mitigation lever on the default network and print the tables of docs/mitigation.md.

    .venv/bin/python examples/mitigation_comparison.py --out mitigation-results
    .venv/bin/python examples/mitigation_comparison.py --only tolerance --out mitigation-results
    .venv/bin/python examples/mitigation_comparison.py --only compare --write-docs

Sections: ``tolerance`` (defect tolerance with and without defect-aware retraining), ``states``
(memory-state choice: energy vs worst accuracy over 25-100 C), ``circuit`` (differential vs
shared reference, wires, op-amp gain, read voltage), ``tuning`` (basic vs ordered/adaptive
write-verify; 64x64 passive arrays), ``compare`` (the side-by-side table). Every accuracy is a
circuit simulated by the exact ``nodal`` engine on the 180 held-out test images, printed with its 95 %
interval (Wilson over the images for one chip, bootstrap over instances for a mean) and its count;
a row compared with another carries the paired difference on the same images with its bootstrap
interval, from per-image correctness (``per_image=True`` of the library functions). Results go to
``--out`` as CSV (``mitigation.csv`` is the comparison that ``mitigation_table`` reads);
``--write-docs`` publishes the tables into the marked blocks of docs/mitigation.md, with a stored copy in
docs/results/ that the tests compare against (``examples/_docblocks.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from neurodtco.data import load_digits
from neurodtco.mapping import map_network
from neurodtco.network import NetworkConfig, default_network
from neurodtco.stats import format_accuracy, paired_bootstrap_ci, wilson_interval

SECTIONS = ("tolerance", "states", "circuit", "tuning", "compare")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "mitigation.md"


def md(df: pd.DataFrame, floatfmt: dict | None = None) -> str:
    """A DataFrame as a Markdown table with per-column formats."""
    floatfmt = floatfmt or {}
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            fmt = floatfmt.get(c)
            if fmt and isinstance(v, (float, np.floating)) and math.isfinite(v):
                cells.append(format(v, fmt))
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def interval_cell(value: float, low: float, high: float) -> str:
    """An accuracy and its interval as a table cell: ``93.9% [89.4, 96.6]``."""
    return f"{value:.1%} [{100 * low:.1f}, {100 * high:.1f}]"


def rate_cell(correct) -> str:
    """Accuracy of per-image correctness (booleans, or fractions of reads) with its Wilson interval over the images."""
    c = np.asarray(correct, dtype=np.float64).ravel()
    return interval_cell(float(c.mean()), *wilson_interval(float(c.sum()), c.size))


def points_cell(value: float, low: float, high: float) -> str:
    """A difference of accuracies in points with its interval: ``+3.9 [-0.6, +8.3]`` (never ``-0.0``)."""
    v, lo, hi = (f"{round(100 * x, 1) + 0.0:+.1f}" for x in (value, low, high))  # + 0.0 turns -0.0 into 0.0
    return f"{v} [{lo}, {hi}]"


def paired_cell(a, b) -> str:
    """``a - b`` in points over the same images with its paired bootstrap interval: ``+3.9 [-0.6, +8.3]``."""
    d, (low, high) = paired_bootstrap_ci(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    return points_cell(d, low, high)


def density_cell(value: float, low: float, high: float, grid) -> str:
    """A tolerance density with its interval; a bound outside the grid reads as ``< min`` or ``> max``."""
    def one(x: float) -> str:
        if x == 0 or math.isnan(x):
            return f"< {min(grid):g}"
        return f"> {max(grid):g}" if math.isinf(x) else f"{x:.2g}"
    return f"{one(value)} [{one(low)}, {one(high)}]"


def ratio_cell(value: float, low: float, high: float, floor: float) -> str:
    """A ratio of tolerances with its interval; ``floor`` is the least ratio when the retrained one lies above its grid."""
    head = f"{value:.0f}x" if math.isfinite(value) else f"> {floor:.0f}x"
    return f"{head} [{low:.0f}, {high:.0f}]"


def section_tolerance(net, data, out: Path) -> str:
    from neurodtco.mitigation import RetrainConfig
    from neurodtco.mitigation.tolerance import (defect_tolerance, single_fault_tolerance, tolerance_ratio_ci,
                                                tolerance_thresholds)

    circuit = map_network(net)
    t0 = time.perf_counter()
    single = single_fault_tolerance(circuit, data, engine="nodal")
    log(f"single-fault scan {time.perf_counter() - t0:.0f} s")
    plain_grid = [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2]
    plain = defect_tolerance(circuit, data, plain_grid, instances=100, engine="nodal")
    log(f"no-retrain sweep done {time.perf_counter() - t0:.0f} s")
    retrain = RetrainConfig(epochs=100, batch_size=256, learning_rate=2e-2)
    fixed_grid = [0.01, 0.02, 0.03, 0.05, 0.07, 0.1]
    fixed = defect_tolerance(circuit, data, fixed_grid, instances=6, retrain=retrain, engine="nodal")
    log(f"retrain sweep done {time.perf_counter() - t0:.0f} s")
    pd.concat([plain.table, fixed.table]).to_csv(out / "tolerance.csv", index=False)
    healthy, n = plain.healthy_accuracy, len(data.y_test)
    rows = []
    for result, label in ((plain, "no"), (fixed, "yes")):
        for density, r in result.mean_accuracy_ci().iterrows():
            # The healthy circuit is one fixed chip on the same images, so the drop's interval is the mean's, shifted.
            rows.append({"p (per cell)": f"{density:g}", "retrained": label,
                         "mean accuracy [95% CI]": interval_cell(r["mean"], r["low"], r["high"]),
                         "vs healthy (pts) [95% CI]": points_cell(r["mean"] - healthy, r["low"] - healthy,
                                                                  r["high"] - healthy),
                         "instances x images": f"{int(r['instances'])} x {n}"})
    table = md(pd.DataFrame(rows))
    drops = (0.01, 0.02, 0.05)
    t_plain, t_fixed = tolerance_thresholds(plain, drops), tolerance_thresholds(fixed, drops)
    ratios = tolerance_ratio_ci(t_fixed, t_plain)
    lines = []
    for drop in t_plain.index:
        a, b, r = t_plain.loc[drop], t_fixed.loc[drop], ratios.loc[drop]
        lines.append(f"| {drop:g} | {density_cell(a['density'], a['low'], a['high'], plain_grid)} | "
                     f"{density_cell(b['density'], b['low'], b['high'], fixed_grid)} | "
                     f"{ratio_cell(r['ratio'], r['low'], r['high'], max(fixed_grid) / a['density'])} |")
    crossings = ("| drop (pts) | p without retraining [95% CI] | p with retraining [95% CI] | ratio [95% CI] |\n"
                 "|---|---|---|---|\n" + "\n".join(lines))
    k = int(round(healthy * n))
    summary = (f"Healthy circuit (nodal): {format_accuracy(healthy, wilson_interval(k, n), n)}. Tolerance: the "
               f"density where the mean accuracy over instances first falls a given drop below it, with a bootstrap "
               f"interval over instances (100 per density without retraining, 6 with; a bound outside the grid "
               f"reads < or >):\n\n{crossings}\n\nSingle-fault first order (exact for rare faults, no sampling): "
               f"{single.tolerance_density:.2g} at a 1-point drop.")
    per_kind = (f"Single-fault scan (per array, averaged over the arrays): one stuck-on cell costs "
                f"{np.mean([d.mean() for d in single.drop_on]) * 100:.2g} points, one stuck-off cell "
                f"{np.mean([d.mean() for d in single.drop_off]) * 100:.2g}; "
                f"first-order tolerance for stuck-on only {0.01 / sum(d.sum() for d in single.drop_on):.2g}, "
                f"stuck-off only {0.01 / max(sum(d.sum() for d in single.drop_off), 1e-12):.2g}.")
    json.dump({"healthy": healthy, "tolerance_plain_mc": plain.tolerance_density,
               "tolerance_plain_single_fault": single.tolerance_density,
               "tolerance_retrained": fixed.tolerance_density,
               "thresholds_plain": t_plain.drop(columns="draws").reset_index().to_dict("records"),
               "thresholds_retrained": t_fixed.drop(columns="draws").reset_index().to_dict("records"),
               "ratios": ratios.reset_index().to_dict("records")}, open(out / "tolerance.json", "w"))
    patterns = section_patterns(circuit, data, retrain)
    return table + "\n\n" + summary + "\n\n" + per_kind + "\n\n" + patterns


def section_patterns(circuit, data, retrain) -> str:
    """Other spatial patterns at one density: accuracy before and after retraining, paired on the same chips."""
    from neurodtco.defects import Defect, apply_defects
    from neurodtco.mitigation import circuit_accuracy, retrain_defect_aware_batch

    rows, chips, records = [], [], []
    for pattern in ("random", "column", "row", "ring", "checkerboard", "clustered"):
        params = {"correlation_cells": 3} if pattern == "clustered" else {}
        d = Defect(pattern=pattern, layers="all", kind="mix", density=0.05, params=params)
        for seed in range(2):
            chip, record = apply_defects(circuit, [d], seed=seed)
            chips.append(chip)
            records.append(record)
            rows.append({"pattern": pattern, "density": record.total_density,
                         "before": circuit_accuracy(chip, data, "nodal", per_image=True)})
    fixed = retrain_defect_aware_batch(chips, records, data, retrain)
    for row, chip in zip(rows, fixed):
        row["after"] = circuit_accuracy(chip, data, "nodal", per_image=True)
    out = []
    for pattern, g in pd.DataFrame(rows).groupby("pattern", sort=False):
        # Per image, the fraction of the chips that classify it correctly: the images are the sampling unit.
        before, after = np.mean(list(g["before"]), axis=0), np.mean(list(g["after"]), axis=0)
        out.append({"pattern": pattern, "density": f"{g['density'].mean():.1%}", "before": rate_cell(before),
                    "after retraining": rate_cell(after), "after - before (pts)": paired_cell(after, before),
                    "chips x images": f"{len(g)} x {len(before)}"})
    return ("Other patterns (all arrays, 5% target density, half on / half off, mean of 2 instances; "
            "intervals over the images, the difference paired on the same chips and images):\n\n"
            + md(pd.DataFrame(out)))


def section_states(net, data, out: Path) -> str:
    from neurodtco.mitigation.states import choose_memory_states, evaluate_candidates, window_grid

    cands = window_grid(r_on_ohm=(10e3, 25e3, 100e3, 1e6, 1e7), feedbacks=("fixed", "tracking"))
    cands += window_grid(r_on_ohm=(10e3, 25e3), pair_encodings=("balanced",))
    cands += window_grid(r_on_ohm=(10e3, 100e3, 1e6), technology="eflash", threshold_factors=(1.0, 10.0),
                         feedbacks=("fixed", "tracking"))
    noise = {"kind": "read_noise", "relative_sigma": 0.01, "group_size": 20}
    seeds = (0, 1)
    table = evaluate_candidates(net, data, cands, read_noise=noise, seeds=seeds, per_image=True)
    table.drop(columns="correct").to_csv(out / "states.csv", index=False)
    choice = choose_memory_states(table, cands[0].label)
    choice.to_csv(out / "states_choice.csv", index=False)
    t_ref = table["temperature_c"].min()

    def reads(candidate: str, worst: bool):
        """Per-image correctness (fraction of the reads) at 25 C or at the candidate's worst test temperature."""
        g = table[table["candidate"] == candidate]
        return (g.loc[g["accuracy"].idxmin()] if worst else g[g["temperature_c"] == t_ref].iloc[0])["correct"]

    reference = reads(cands[0].label, worst=True)
    rows = []
    for _, r in choice.iterrows():
        worst = reads(r["candidate"], worst=True)
        rows.append({"candidate": r["candidate"], "pJ/inference": f"{r['energy_j'] * 1e12:.3g}",
                     "saving (x)": f"{r['energy_saving']:.3g}", "acc. 25 C [95% CI]": rate_cell(reads(r["candidate"], False)),
                     "worst 25-100 C [95% CI]": rate_cell(worst),
                     "cost (pts) [95% CI]": paired_cell(reference, worst), "meets_bound": r["meets_bound"],
                     "reads x images": f"{len(seeds)} x {len(worst)}"})
    return md(pd.DataFrame(rows))


def section_circuit(net, data, out: Path) -> str:
    from neurodtco.mitigation.circuit_levers import ARRANGEMENTS, sweep_circuit
    from neurodtco.mapping import MappingConfig

    parts = []
    a = sweep_circuit(net, data, arrangements=ARRANGEMENTS, wire_ohm=(1.0, 5.0, 10.0), temperatures_c=(25.0, 100.0),
                      per_image=True)
    b = sweep_circuit(net, data, arrangements=("differential", "shared-row"), open_loop_gain=(1e2, 1e3, 1e4, math.inf),
                      per_image=True)
    c = sweep_circuit(net, data, arrangements=("differential", "shared-row"), v_read_v=(0.05, 0.1, 0.2, 0.4),
                      base=MappingConfig(cell="gap"), wire_ohm=(1.0,), temperatures_c=(25.0, 100.0), per_image=True)
    pd.concat([a.assign(sweep="wires"), b.assign(sweep="gain"), c.assign(sweep="v_read gap")]).drop(
        columns="correct").to_csv(out / "circuit.csv", index=False)
    for title, df, keys in (("Wires and temperature (linear cells)", a, ["arrangement", "wire_ohm", "temperature_c"]),
                            ("Op-amp open-loop gain (1 ohm wires, 25 C)", b, ["arrangement", "open_loop_gain"]),
                            ("Read voltage with the nonlinear gap cell", c, ["arrangement", "v_read_v", "temperature_c"])):
        # A shared reference is compared with the differential pair at the same settings, on the same images.
        setting = keys[1:]
        pairs = {tuple(r[setting]): r["correct"] for _, r in df[df["arrangement"] == "differential"].iterrows()}
        rows = []
        for _, r in df.iterrows():
            row = {k: r[k] for k in keys}
            row["accuracy [95% CI]"] = rate_cell(r["correct"])
            row["vs differential (pts) [95% CI]"] = ("" if r["arrangement"] == "differential"
                                                     else paired_cell(r["correct"], pairs[tuple(r[setting])]))
            row["images"] = len(r["correct"])
            row["pJ/inference"] = r["energy_j"] * 1e12
            row["columns"] = r["columns"]
            rows.append(row)
        parts.append(f"{title}:\n\n" + md(pd.DataFrame(rows), {"pJ/inference": ".3g"}))
    return "\n\n".join(parts)


def section_tuning(net, data, out: Path) -> str:
    from neurodtco.imperfections import (SwitchingDevice, WriteVerifyConfig, apply_passive_programming,
                                         apply_write_verify, program_passive)
    from neurodtco.mitigation import circuit_accuracy
    from neurodtco.mitigation.tuning import (apply_ordered_programming, program_circuit_1t1r,
                                             program_passive_ordered, program_with_retraining)

    rows = []
    circuit = map_network(net)
    ideal = {"default": circuit_accuracy(circuit, data, "nodal", per_image=True)}
    for tol in (0.02, 0.1):
        for tv in (0.1, 0.25):
            dev, cfg = SwitchingDevice(threshold_variation=tv), WriteVerifyConfig(tolerance=tol)
            for name, fn in (("basic", lambda: apply_write_verify(circuit, dev, cfg, np.random.default_rng(0))),
                             ("adaptive", lambda: program_circuit_1t1r(circuit, dev, cfg, np.random.default_rng(0)))):
                prog, rec = fn()
                rows.append({"cells": "1T1R (default net)", "tolerance": tol, "sigma/mu": tv, "algorithm": name,
                             "net": "default", "correct": circuit_accuracy(prog, data, "nodal", per_image=True),
                             "pulses/cell": rec["pulses_mean"], "off target": rec["out_of_tolerance"],
                             "rms error": rec["relative_error_rms"]})
            log(f"1t1r tol {tol} sigma {tv} done")
    targets = np.random.default_rng(0).uniform(1e-6, 1e-4, (64, 64))
    for tv in (0.1, 0.25):
        dev, cfg = SwitchingDevice(threshold_variation=tv), WriteVerifyConfig()
        for name, fn in (("basic", program_passive), ("ordered", program_passive_ordered)):
            r = fn(targets, 1e-6, 1e-4, dev, cfg, np.random.default_rng(1))
            s = r.summary()
            rows.append({"cells": "64x64 passive V/2, random targets", "tolerance": 0.02, "sigma/mu": tv,
                         "algorithm": name, "net": None, "correct": None, "pulses/cell": s["pulses_mean"],
                         "off target": s["out_of_tolerance"], "rms error": s["relative_error_rms"]})
        log(f"64x64 sigma {tv} done")
    wide = default_network(data, NetworkConfig(widths=(64, 32, 10)))
    for key, label, network in (("default", "default net, passive V/2", net),
                                ("wide", "64-32-10 (65x64 array), passive V/2", wide)):
        c = map_network(network)
        dev, cfg = SwitchingDevice(threshold_variation=0.25), WriteVerifyConfig()
        ideal[key] = circuit_accuracy(c, data, "nodal", per_image=True)
        rows.append({"cells": label, "tolerance": 0.02, "sigma/mu": 0.0, "algorithm": "ideal programming", "net": key,
                     "correct": ideal[key], "pulses/cell": math.nan, "off target": 0, "rms error": 0.0})
        for name, fn in (
                ("basic", lambda: apply_passive_programming(c, dev, cfg, np.random.default_rng(0), scheme="v/2")),
                ("ordered", lambda: apply_ordered_programming(c, dev, cfg, np.random.default_rng(0), scheme="v/2")),
                ("ordered + retraining (2 touch-ups)",
                 lambda: program_with_retraining(c, data, dev, cfg, np.random.default_rng(0), scheme="v/2",
                                                 iterations=2))):
            prog, rec = fn()
            rows.append({"cells": label, "tolerance": 0.02, "sigma/mu": 0.25, "algorithm": name, "net": key,
                         "correct": circuit_accuracy(prog, data, "nodal", per_image=True),
                         "pulses/cell": rec["pulses_mean"], "off target": rec["out_of_tolerance"],
                         "rms error": rec.get("relative_error_rms", math.nan)})
            log(f"{label} {name} done")
    basic = {(r["cells"], r["tolerance"], r["sigma/mu"]): r["correct"] for r in rows if r["algorithm"] == "basic"}
    for r in rows:
        correct = r.pop("correct")
        net_key = r.pop("net")
        given = correct is not None
        r["accuracy"] = float(np.mean(correct)) if given else math.nan
        r["accuracy [95% CI]"] = rate_cell(correct) if given else ""
        ref = basic.get((r["cells"], r["tolerance"], r["sigma/mu"]))
        r["vs basic (pts) [95% CI]"] = (paired_cell(correct, ref) if given and ref is not None
                                        and r["algorithm"] not in ("basic", "ideal programming") else "")
        r["vs ideal (pts) [95% CI]"] = (paired_cell(correct, ideal[net_key])
                                        if given and r["algorithm"] != "ideal programming" else "")
        r["images"] = len(correct) if given else ""
    df = pd.DataFrame(rows)
    df.to_csv(out / "tuning.csv", index=False)
    show = df[["cells", "tolerance", "sigma/mu", "algorithm", "accuracy [95% CI]", "vs basic (pts) [95% CI]",
               "vs ideal (pts) [95% CI]", "images", "pulses/cell", "off target", "rms error"]]
    return md(show, {"pulses/cell": ".1f", "rms error": ".2%", "tolerance": ".0%", "sigma/mu": ".0%"})


def section_compare(net, data, out: Path, quick: bool) -> str:
    from neurodtco.mitigation.compare import ComparisonConfig, run_comparison, to_markdown

    table = run_comparison(net, data, config=ComparisonConfig(quick=quick),
                           progress=lambda s, lever: log(f"compare: {s} / {lever}"))
    table.to_csv(out / "mitigation.csv", index=False)
    return to_markdown(table)


def write_docs(blocks: dict[str, str]) -> None:
    """Publish each section's table into its marked block of docs/mitigation.md (and docs/results/)."""
    from _docblocks import publish

    for name, body in blocks.items():
        publish(DOCS.name, name, body, f"python examples/mitigation_comparison.py --only {name} --write-docs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=SECTIONS, action="append")
    parser.add_argument("--out", type=Path, default=Path("mitigation-results"))
    parser.add_argument("--quick", action="store_true", help="smoke run of the comparison (not for numbers)")
    parser.add_argument("--write-docs", action="store_true", help="update the tables in docs/mitigation.md")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = load_digits(seed=0)
    net = default_network(data)
    blocks = {}
    runners = {"tolerance": lambda: section_tolerance(net, data, args.out),
               "states": lambda: section_states(net, data, args.out),
               "circuit": lambda: section_circuit(net, data, args.out),
               "tuning": lambda: section_tuning(net, data, args.out),
               "compare": lambda: section_compare(net, data, args.out, args.quick)}
    for name in args.only or SECTIONS:
        start = time.perf_counter()
        blocks[name] = runners[name]()
        print(f"## {name} ({time.perf_counter() - start:.0f} s)\n\n{blocks[name]}\n", flush=True)
        (args.out / f"{name}.md").write_text(blocks[name] + "\n")
    if args.write_docs:
        write_docs(blocks)


if __name__ == "__main__":
    main()
