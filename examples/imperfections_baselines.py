"""Baselines without mitigation: accuracy vs temperature, tuning tolerance, threshold variation; energy vs window.

Run from the repository root:

    .venv/bin/python examples/imperfections_baselines.py                  # all tables (a few minutes)
    .venv/bin/python examples/imperfections_baselines.py --only passive --seeds 5
    .venv/bin/python examples/imperfections_baselines.py --json baselines.json

Prints Markdown tables (the ones in docs/imperfections.md). The passive-crossbar table uses two
networks: the default 64-8-8-8-10 (arrays 65x16, 9x16, 9x16, 9x20) and a 64-32-10 variant whose
first array is 65x64, i.e. a 64x64 passive crossbar plus the bias row, as the 64x64 requirement
asks; its second array is 33x20.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from neurodtco.data import load_digits, to_voltages
from neurodtco.imperfections import ReadNoiseModel, apply_imperfections, evaluate
from neurodtco.mapping import MappingConfig, map_network
from neurodtco.network import NetworkConfig, default_network

READ_TIME_S = 1e-7


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def pct(x: float) -> str:
    """A fraction as a percentage with one decimal."""
    return f"{100 * x:.1f}%"


def mean_std(values: list[float]) -> str:
    """Mean and standard deviation of fractions, in percent."""
    return f"{100 * np.mean(values):.1f} ± {100 * np.std(values):.1f}%"


def temperature_rows(circuit, x, y, engine):
    """Accuracy and energy of both technologies from 25 to 100 C."""
    rows, data = [], []
    base = {tech: None for tech in ("reram", "eflash")}
    for t in (25, 40, 55, 70, 85, 100):
        row = [f"{t}"]
        for tech in ("reram", "eflash"):
            hot, rec = apply_imperfections(circuit, {"kind": "temperature", "temperature_c": t, "technology": tech})
            r = evaluate(hot, x, y, engine=engine, read_time_s=READ_TIME_S)
            base[tech] = base[tech] if base[tech] is not None else r["accuracy"]
            row += [pct(r["accuracy"]), f"{100 * (r['accuracy'] - base[tech]):+.1f}",
                    f"{r['energy_per_inference_j'] * 1e12:.1f}"]
            data.append({"temperature_c": t, "technology": tech, **r, "factor_min": rec["conductance_factor_min"],
                         "factor_max": rec["conductance_factor_max"]})
        rows.append(row)
    header = ["T (C)", "ReRAM acc.", "Δ (pts)", "ReRAM pJ/inf.", "eFlash acc.", "Δ (pts)", "eFlash pJ/inf."]
    return table(header, rows), data


def tolerance_rows(circuit, x, y, engine, seeds):
    """Accuracy, pulses and failures of 1T1R write-verify vs its tolerance."""
    rows, data = [], []
    for tol in (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3):
        acc, pulses, failed, rms = [], [], [], []
        for s in range(seeds):
            prog, rec = apply_imperfections(circuit, {"kind": "write_verify", "tolerance": tol,
                                                      "threshold_variation": 0.1}, seed=s)
            acc.append(evaluate(prog, x, y, engine=engine)["accuracy"])
            pulses.append(rec["pulses_mean"])
            failed.append(rec["failed_fraction"])
            rms.append(rec["relative_error_rms"])
        rows.append([pct(tol), mean_std(acc), f"{np.min(acc) * 100:.1f}%", f"{np.mean(pulses):.1f}",
                     f"{100 * np.mean(failed):.2f}%", f"{100 * np.mean(rms):.2f}%"])
        data.append({"tolerance": tol, "accuracy": acc, "pulses_mean": float(np.mean(pulses)),
                     "failed_fraction": float(np.mean(failed)), "relative_error_rms": float(np.mean(rms))})
    header = ["tolerance", "accuracy (mean ± std)", "worst", "pulses/cell", "failed cells", "rms error"]
    return table(header, rows), data


def passive_rows(circuits, x, y, engine, seeds, scheme, sigmas):
    """Accuracy and disturbance of passive programming vs the normalized threshold variation."""
    rows, data = [], []
    for sigma in sigmas:
        row = [pct(sigma)]
        for name, circuit in circuits.items():
            acc, disturbed, out, failed, pulses = [], [], [], [], []
            for s in range(seeds):
                prog, rec = apply_imperfections(circuit, {"kind": "passive_programming", "scheme": scheme,
                                                          "threshold_variation": sigma}, seed=s)
                acc.append(evaluate(prog, x, y, engine=engine)["accuracy"])
                disturbed.append(rec["disturbed_fraction"])
                out.append(rec["out_of_tolerance"] / rec["cells"])
                failed.append(rec["failed_fraction"])
                pulses.append(rec["pulses_mean"])
            row += [mean_std(acc), f"{100 * np.mean(disturbed):.1f}%", f"{100 * np.mean(out):.1f}%"]
            data.append({"network": name, "scheme": scheme, "threshold_variation": sigma, "accuracy": acc,
                         "disturbed_fraction": float(np.mean(disturbed)), "out_of_tolerance_fraction": float(np.mean(out)),
                         "failed_fraction": float(np.mean(failed)), "pulses_mean": float(np.mean(pulses))})
        rows.append(row)
    header = ["σ/μ"]
    for name in circuits:
        header += [f"{name} acc.", "disturbed", "out of tol."]
    return table(header, rows), data


def window_rows(net, x_pixels, y, engine):
    """Accuracy and arrays' energy per inference for several conductance windows."""
    rows, data = [], []
    for r_on, r_off in ((1e3, 1e5), (10e3, 1e6), (100e3, 1e7), (1e6, 1e8), (10e3, 1e5), (10e3, 1e7)):
        circuit = map_network(net, MappingConfig(r_on_ohm=r_on, r_off_ohm=r_off))
        r = evaluate(circuit, to_voltages(x_pixels, 0.2), y, engine=engine, read_time_s=READ_TIME_S)
        rows.append([f"{r_on / 1e3:g} k", f"{r_off / 1e3:g} k", f"{1e6 / r_off:g}-{1e6 / r_on:g}", pct(r["accuracy"]),
                     f"{r['energy_per_inference_j'] * 1e12:.3g}", f"{r['power_mean_w'] * 1e6:.3g}"])
        data.append({"r_on_ohm": r_on, "r_off_ohm": r_off, **r})
    header = ["R_on", "R_off", "G window (µS)", "accuracy", "pJ / inference", "µW"]
    return table(header, rows), data


def noise_rows(circuit, x, y, engine, seeds):
    """Accuracy vs the relative read noise, sampled per inference."""
    rows, data = [], []
    for sigma in (0.0, 0.02, 0.05, 0.1, 0.2, 0.3):
        acc = []
        for s in range(seeds):
            noise = ReadNoiseModel(relative_sigma=sigma)  # a simulation option: drawn per inference
            acc.append(evaluate(circuit, x, y, engine=engine, seed=s, read_noise=noise)["accuracy"])
        rows.append([pct(sigma), mean_std(acc)])
        data.append({"relative_sigma": sigma, "accuracy": acc})
    return table(["σ_G / G", "accuracy (per-inference noise)"], rows), data


def main() -> None:
    """Run the chosen tables and print them as Markdown."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", default="nodal", help="ideal or nodal (default nodal: wires and IR drop)")
    parser.add_argument("--seeds", type=int, default=3, help="imperfection draws per point")
    parser.add_argument("--only", choices=["temperature", "tolerance", "passive", "passive-v3", "window", "noise"],
                        action="append", help="run only these tables (repeatable)")
    parser.add_argument("--json", help="also write every number to this JSON file")
    args = parser.parse_args()
    wanted = set(args.only or ["temperature", "tolerance", "passive", "passive-v3", "window", "noise"])

    dataset = load_digits(seed=0)
    net = default_network(dataset)
    circuit = map_network(net)
    x, y = to_voltages(dataset.x_test, 0.2), dataset.y_test
    results = {"engine": args.engine, "seeds": args.seeds, "read_time_s": READ_TIME_S,
               "software_accuracy": net.accuracy(dataset.x_test, y)}
    print(f"default network 64-8-8-8-10, software accuracy {pct(results['software_accuracy'])}, "
          f"engine {args.engine}, {len(y)} test images, {args.seeds} seeds per point\n")

    def section(name: str, title: str, run) -> None:
        start = time.perf_counter()
        text, data = run()
        results[name] = data
        print(f"## {title}\n\n{text}\n\n({time.perf_counter() - start:.0f} s)\n", flush=True)

    if "temperature" in wanted:
        section("temperature", "Accuracy vs temperature (programmed at 25 C)",
                lambda: temperature_rows(circuit, x, y, args.engine))
    if "tolerance" in wanted:
        section("tolerance", "Accuracy vs write-verify tolerance (1T1R, 10% threshold variation)",
                lambda: tolerance_rows(circuit, x, y, args.engine, args.seeds))
    if wanted & {"passive", "passive-v3"}:
        wide = default_network(dataset, NetworkConfig(widths=(64, 32, 10)))
        print(f"64-32-10 variant: software accuracy {pct(wide.accuracy(dataset.x_test, y))}\n", file=sys.stderr)
        circuits = {"64x64 (64-32-10)": map_network(wide), "default": circuit}
        sigmas = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
        if "passive" in wanted:
            section("passive_v2", "Accuracy vs normalized threshold variation, passive crossbars, V/2",
                    lambda: passive_rows(circuits, x, y, args.engine, args.seeds, "v/2", sigmas))
        if "passive-v3" in wanted:
            section("passive_v3", "Accuracy vs normalized threshold variation, passive crossbars, V/3",
                    lambda: passive_rows({"64x64 (64-32-10)": circuits["64x64 (64-32-10)"]}, x, y, args.engine,
                                         args.seeds, "v/3", (0.0, 0.1, 0.2, 0.25, 0.3)))
    if "window" in wanted:
        section("window", f"Arrays' energy per inference vs conductance window (read time {READ_TIME_S:g} s)",
                lambda: window_rows(net, dataset.x_test, y, args.engine))
    if "noise" in wanted:
        section("noise", "Accuracy vs read noise (sampled per inference)",
                lambda: noise_rows(circuit, x, y, args.engine, args.seeds))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))


if __name__ == "__main__":
    main()
