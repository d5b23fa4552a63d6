"""Measure every mitigation lever on the default network and print the tables of docs/mitigation.md.

    .venv/bin/python examples/mitigation_comparison.py --out mitigation-results
    .venv/bin/python examples/mitigation_comparison.py --only tolerance --out mitigation-results
    .venv/bin/python examples/mitigation_comparison.py --only compare --write-docs

Sections: ``tolerance`` (defect tolerance with and without defect-aware retraining), ``states``
(memory-state choice: energy vs worst accuracy over 25-100 C), ``circuit`` (differential vs
shared reference, wires, op-amp gain, read voltage), ``tuning`` (basic vs ordered/adaptive
write-verify; 64x64 passive arrays), ``compare`` (the side-by-side table). Every accuracy is a
circuit simulated by the exact ``nodal`` engine on the 180 held-out test images. Results go to
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


def section_tolerance(net, data, out: Path) -> str:
    from neurodtco.mitigation import RetrainConfig
    from neurodtco.mitigation.tolerance import defect_tolerance, single_fault_tolerance

    circuit = map_network(net)
    t0 = time.perf_counter()
    single = single_fault_tolerance(circuit, data, engine="nodal")
    log(f"single-fault scan {time.perf_counter() - t0:.0f} s")
    plain = defect_tolerance(circuit, data, [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2], instances=100, engine="nodal")
    log(f"no-retrain sweep done {time.perf_counter() - t0:.0f} s")
    retrain = RetrainConfig(epochs=100, batch_size=256, learning_rate=2e-2)
    fixed = defect_tolerance(circuit, data, [0.01, 0.02, 0.03, 0.05, 0.07, 0.1], instances=6, retrain=retrain,
                             engine="nodal")
    log(f"retrain sweep done {time.perf_counter() - t0:.0f} s")
    pd.concat([plain.table, fixed.table]).to_csv(out / "tolerance.csv", index=False)
    rows = []
    for density, acc in plain.mean_accuracy().items():
        rows.append({"p (per cell)": f"{density:g}", "retrained": "no", "mean accuracy": acc, "instances": 100})
    for density, acc in fixed.mean_accuracy().items():
        rows.append({"p (per cell)": f"{density:g}", "retrained": "yes", "mean accuracy": acc, "instances": 6})
    table = md(pd.DataFrame(rows), {"mean accuracy": ".1%"})
    ratio_mc = fixed.tolerance_density / plain.tolerance_density
    ratio_sf = fixed.tolerance_density / single.tolerance_density
    summary = (f"Healthy circuit (nodal): {plain.healthy_accuracy:.1%}. Tolerance (mean accuracy 1 point below it): "
               f"without retraining {plain.tolerance_density:.2g} (Monte Carlo) / {single.tolerance_density:.2g} "
               f"(single-fault first order, exact for rare faults); with defect-aware retraining "
               f"{fixed.tolerance_density:.2g}. Ratio: {ratio_mc:.0f}x (vs Monte Carlo), {ratio_sf:.0f}x (vs single-fault).")
    per_kind = (f"Single-fault scan (per array, averaged over the arrays): one stuck-on cell costs "
                f"{np.mean([d.mean() for d in single.drop_on]) * 100:.2g} points, one stuck-off cell "
                f"{np.mean([d.mean() for d in single.drop_off]) * 100:.2g}; "
                f"first-order tolerance for stuck-on only {0.01 / sum(d.sum() for d in single.drop_on):.2g}, "
                f"stuck-off only {0.01 / max(sum(d.sum() for d in single.drop_off), 1e-12):.2g}.")
    json.dump({"healthy": plain.healthy_accuracy, "tolerance_plain_mc": plain.tolerance_density,
               "tolerance_plain_single_fault": single.tolerance_density,
               "tolerance_retrained": fixed.tolerance_density}, open(out / "tolerance.json", "w"))
    patterns = section_patterns(circuit, data, retrain)
    return table + "\n\n" + summary + "\n\n" + per_kind + "\n\n" + patterns


def section_patterns(circuit, data, retrain) -> str:
    """Other spatial patterns at one density: accuracy before and after retraining."""
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
            rows.append({"pattern": pattern, "seed": seed, "density": record.total_density,
                         "before": circuit_accuracy(chip, data, "nodal")})
    fixed = retrain_defect_aware_batch(chips, records, data, retrain)
    for row, chip in zip(rows, fixed):
        row["after retraining"] = circuit_accuracy(chip, data, "nodal")
    df = pd.DataFrame(rows).groupby("pattern", sort=False).mean(numeric_only=True).reset_index().drop(columns="seed")
    return ("Other patterns (all arrays, 5% target density, half on / half off, mean of 2 instances):\n\n"
            + md(df, {"density": ".1%", "before": ".1%", "after retraining": ".1%"}))


def section_states(net, data, out: Path) -> str:
    from neurodtco.mitigation.states import choose_memory_states, evaluate_candidates, window_grid

    cands = window_grid(r_on_ohm=(10e3, 25e3, 100e3, 1e6, 1e7), feedbacks=("fixed", "tracking"))
    cands += window_grid(r_on_ohm=(10e3, 25e3), pair_encodings=("balanced",))
    cands += window_grid(r_on_ohm=(10e3, 100e3, 1e6), technology="eflash", threshold_factors=(1.0, 10.0),
                         feedbacks=("fixed", "tracking"))
    noise = {"kind": "read_noise", "relative_sigma": 0.01, "group_size": 20}
    table = evaluate_candidates(net, data, cands, read_noise=noise, seeds=(0, 1))
    table.to_csv(out / "states.csv", index=False)
    choice = choose_memory_states(table, cands[0].label)
    choice.to_csv(out / "states_choice.csv", index=False)
    show = choice[["candidate", "energy_j", "energy_saving", "accuracy_at_ref_t", "worst_accuracy", "accuracy_cost",
                   "meets_bound"]].copy()
    show["energy_j"] = show["energy_j"] * 1e12
    show = show.rename(columns={"energy_j": "pJ/inference", "energy_saving": "saving (x)",
                                "accuracy_at_ref_t": "acc. 25 C", "worst_accuracy": "worst 25-100 C",
                                "accuracy_cost": "cost (pts)"})
    show["cost (pts)"] = show["cost (pts)"] * 100
    return md(show, {"pJ/inference": ".3g", "saving (x)": ".3g", "acc. 25 C": ".1%", "worst 25-100 C": ".1%",
                     "cost (pts)": "+.1f"})


def section_circuit(net, data, out: Path) -> str:
    from neurodtco.mitigation.circuit_levers import ARRANGEMENTS, sweep_circuit
    from neurodtco.mapping import MappingConfig

    parts = []
    a = sweep_circuit(net, data, arrangements=ARRANGEMENTS, wire_ohm=(1.0, 5.0, 10.0), temperatures_c=(25.0, 100.0))
    b = sweep_circuit(net, data, arrangements=("differential", "shared-row"), open_loop_gain=(1e2, 1e3, 1e4, math.inf))
    c = sweep_circuit(net, data, arrangements=("differential", "shared-row"), v_read_v=(0.05, 0.1, 0.2, 0.4),
                      base=MappingConfig(cell="gap"), wire_ohm=(1.0,), temperatures_c=(25.0, 100.0))
    pd.concat([a.assign(sweep="wires"), b.assign(sweep="gain"), c.assign(sweep="v_read gap")]).to_csv(
        out / "circuit.csv", index=False)
    for title, df, keys in (("Wires and temperature (linear cells)", a, ["arrangement", "wire_ohm", "temperature_c"]),
                            ("Op-amp open-loop gain (1 ohm wires, 25 C)", b, ["arrangement", "open_loop_gain"]),
                            ("Read voltage with the nonlinear gap cell", c, ["arrangement", "v_read_v", "temperature_c"])):
        show = df[keys + ["accuracy", "energy_j", "columns"]].copy()
        show["energy_j"] = show["energy_j"] * 1e12
        parts.append(f"{title}:\n\n" + md(show.rename(columns={"energy_j": "pJ/inference"}),
                                          {"accuracy": ".1%", "pJ/inference": ".3g"}))
    return "\n\n".join(parts)


def section_tuning(net, data, out: Path) -> str:
    from neurodtco.imperfections import (SwitchingDevice, WriteVerifyConfig, apply_passive_programming,
                                         apply_write_verify, program_passive)
    from neurodtco.mitigation import circuit_accuracy
    from neurodtco.mitigation.tuning import (apply_ordered_programming, program_circuit_1t1r,
                                             program_passive_ordered, program_with_retraining)

    rows = []
    circuit = map_network(net)
    for tol in (0.02, 0.1):
        for tv in (0.1, 0.25):
            dev, cfg = SwitchingDevice(threshold_variation=tv), WriteVerifyConfig(tolerance=tol)
            for name, fn in (("basic", lambda: apply_write_verify(circuit, dev, cfg, np.random.default_rng(0))),
                             ("adaptive", lambda: program_circuit_1t1r(circuit, dev, cfg, np.random.default_rng(0)))):
                prog, rec = fn()
                rows.append({"cells": "1T1R (default net)", "tolerance": tol, "sigma/mu": tv, "algorithm": name,
                             "accuracy": circuit_accuracy(prog, data, "nodal"), "pulses/cell": rec["pulses_mean"],
                             "off target": rec["out_of_tolerance"], "rms error": rec["relative_error_rms"]})
            log(f"1t1r tol {tol} sigma {tv} done")
    targets = np.random.default_rng(0).uniform(1e-6, 1e-4, (64, 64))
    for tv in (0.1, 0.25):
        dev, cfg = SwitchingDevice(threshold_variation=tv), WriteVerifyConfig()
        for name, fn in (("basic", program_passive), ("ordered", program_passive_ordered)):
            r = fn(targets, 1e-6, 1e-4, dev, cfg, np.random.default_rng(1))
            s = r.summary()
            rows.append({"cells": "64x64 passive V/2, random targets", "tolerance": 0.02, "sigma/mu": tv,
                         "algorithm": name, "accuracy": math.nan, "pulses/cell": s["pulses_mean"],
                         "off target": s["out_of_tolerance"], "rms error": s["relative_error_rms"]})
        log(f"64x64 sigma {tv} done")
    wide = default_network(data, NetworkConfig(widths=(64, 32, 10)))
    for label, network in (("default net, passive V/2", net), ("64-32-10 (65x64 array), passive V/2", wide)):
        c = map_network(network)
        dev, cfg = SwitchingDevice(threshold_variation=0.25), WriteVerifyConfig()
        clean = circuit_accuracy(c, data, "nodal")
        rows.append({"cells": label, "tolerance": 0.02, "sigma/mu": 0.0, "algorithm": "ideal programming",
                     "accuracy": clean, "pulses/cell": math.nan, "off target": 0, "rms error": 0.0})
        for name, fn in (
                ("basic", lambda: apply_passive_programming(c, dev, cfg, np.random.default_rng(0), scheme="v/2")),
                ("ordered", lambda: apply_ordered_programming(c, dev, cfg, np.random.default_rng(0), scheme="v/2")),
                ("ordered + retraining (2 touch-ups)",
                 lambda: program_with_retraining(c, data, dev, cfg, np.random.default_rng(0), scheme="v/2",
                                                 iterations=2))):
            prog, rec = fn()
            rows.append({"cells": label, "tolerance": 0.02, "sigma/mu": 0.25, "algorithm": name,
                         "accuracy": circuit_accuracy(prog, data, "nodal"), "pulses/cell": rec["pulses_mean"],
                         "off target": rec["out_of_tolerance"], "rms error": rec.get("relative_error_rms", math.nan)})
            log(f"{label} {name} done")
    df = pd.DataFrame(rows)
    df.to_csv(out / "tuning.csv", index=False)
    return md(df, {"accuracy": ".1%", "pulses/cell": ".1f", "rms error": ".2%", "tolerance": ".0%", "sigma/mu": ".0%"})


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
