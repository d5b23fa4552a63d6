"""Baselines without mitigation: accuracy vs temperature, tuning tolerance, threshold variation; energy vs window.

Run from the repository root:

    .venv/bin/python examples/imperfections_baselines.py                  # all tables (a few minutes)
    .venv/bin/python examples/imperfections_baselines.py --only passive --seeds 5
    .venv/bin/python examples/imperfections_baselines.py --json baselines.json
    .venv/bin/python examples/imperfections_baselines.py --write-docs     # publish into docs/imperfections.md

Prints Markdown tables (the ones in docs/imperfections.md). The passive-crossbar table uses two
networks: the default 64-8-8-8-10 (arrays 65x16, 9x16, 9x16, 9x20) and a 64-32-10 variant whose
first array is 65x64, i.e. a 64x64 passive crossbar plus the bias row, as the 64x64 requirement
asks; its second array is 33x20.

Every accuracy carries its 95 % interval: Wilson over the test images for one circuit, Wilson over
the pooled (seed, image) pairs for a mean over imperfection seeds (beside each seed's own value),
and a paired bootstrap over the images for a change from the 25 C accuracy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docblocks import command_line, publish  # noqa: E402

from neurodtco.data import load_digits, to_voltages  # noqa: E402
from neurodtco.engines import simulate  # noqa: E402
from neurodtco.imperfections import ReadNoiseModel, apply_imperfections  # noqa: E402
from neurodtco.imperfections.energy import energy_per_inference_j  # noqa: E402
from neurodtco.mapping import MappingConfig, map_network  # noqa: E402
from neurodtco.network import NetworkConfig, default_network  # noqa: E402
from neurodtco.stats import mcnemar_exact, paired_bootstrap_ci, wilson_interval  # noqa: E402

PAGE = "imperfections.md"
TABLES = ("temperature", "tolerance", "passive", "passive-v3", "window", "noise")
READ_TIME_S = 1e-7


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def pct(x: float) -> str:
    """A fraction as a percentage with one decimal."""
    return f"{100 * x:.1f}%"


def judge(circuit: Any, x: np.ndarray, y: np.ndarray, engine: str, seed: int = 0,
          read_noise: Optional[ReadNoiseModel] = None) -> dict[str, Any]:
    """Which test images the circuit gets right, and the arrays' mean energy and power per inference."""
    result = simulate(circuit, x, engine=engine, read_noise=read_noise, seed=seed, return_power=True)
    return {"correct": result.predictions() == np.asarray(y),
            "energy_per_inference_j": float(energy_per_inference_j(result, READ_TIME_S).mean()),
            "power_mean_w": float(np.mean(result.power_w))}


def rate(value: float, n: int) -> str:
    """An accuracy judged on ``n`` trials with its Wilson interval, in percent."""
    low, high = wilson_interval(value * n, n)
    return f"{100 * value:.1f} % [{100 * low:.1f}, {100 * high:.1f}]"


def accuracy(correct: Sequence[np.ndarray]) -> str:
    """Mean accuracy of one or more draws on the same images, Wilson over the pooled (draw, image) pairs."""
    c = np.asarray(correct, dtype=bool)
    return rate(float(c.mean()), c.size)


def per_seed(correct: Sequence[np.ndarray]) -> str:
    """Each draw's accuracy, in percent."""
    return ", ".join(f"{100 * np.mean(c):.1f}" for c in correct)


def change(correct: np.ndarray, reference: np.ndarray) -> str:
    """Accuracy change from the reference on the same images, in points, with its paired bootstrap interval."""
    diff, (low, high) = paired_bootstrap_ci(correct, reference)
    return f"{100 * diff:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"


def temperature_rows(circuit, x, y, engine):
    """Accuracy and energy of both technologies from 25 to 100 C, and how far their decisions differ."""
    rows, data, reference, factors = [], [], {}, {}
    for t in (25, 40, 55, 70, 85, 100):
        row, correct = [f"{t}"], {}
        for tech in ("reram", "eflash"):
            hot, rec = apply_imperfections(circuit, {"kind": "temperature", "temperature_c": t, "technology": tech})
            r = judge(hot, x, y, engine)
            correct[tech] = r["correct"]
            reference.setdefault(tech, r["correct"])
            factors[tech] = (rec["conductance_factor_min"], rec["conductance_factor_max"])
            row += [accuracy([r["correct"]]), change(r["correct"], reference[tech]),
                    f"{r['energy_per_inference_j'] * 1e12:.1f}"]
            data.append({"temperature_c": t, "technology": tech, "accuracy": float(r["correct"].mean()),
                         "energy_per_inference_j": r["energy_per_inference_j"], "factor_min": factors[tech][0],
                         "factor_max": factors[tech][1]})
        differ = int(np.sum(correct["reram"] != correct["eflash"]))
        rows.append(row + [f"{differ} (p = {mcnemar_exact(correct['reram'], correct['eflash']):.2f})"])
    header = ["T (C)", "ReRAM acc. [95 % CI]", "Δ from 25 C (pts)", "ReRAM pJ/inf.", "eFlash acc. [95 % CI]",
              "Δ from 25 C (pts)", "eFlash pJ/inf.", "images judged differently (McNemar p)"]
    note = ("Cells' conductance at 100 C over their 25 C value: ReRAM "
            f"{factors['reram'][0]:.2f}x to {factors['reram'][1]:.2f}x, eFlash {factors['eflash'][0]:.2f}x to "
            f"{factors['eflash'][1]:.2f}x. Δ: paired bootstrap over the images.")
    return table(header, rows) + "\n\n" + note, data


def tolerance_rows(circuit, x, y, engine, seeds):
    """Accuracy, pulses and failures of 1T1R write-verify vs its tolerance."""
    rows, data = [], []
    for tol in (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3):
        correct, pulses, failed, rms = [], [], [], []
        for s in range(seeds):
            prog, rec = apply_imperfections(circuit, {"kind": "write_verify", "tolerance": tol,
                                                      "threshold_variation": 0.1}, seed=s)
            correct.append(judge(prog, x, y, engine)["correct"])
            pulses.append(rec["pulses_mean"])
            failed.append(rec["failed_fraction"])
            rms.append(rec["relative_error_rms"])
        rows.append([pct(tol), accuracy(correct), per_seed(correct), f"{np.mean(pulses):.1f}",
                     f"{100 * np.mean(failed):.2f}%", f"{100 * np.mean(rms):.2f}%"])
        data.append({"tolerance": tol, "accuracy": [float(c.mean()) for c in correct],
                     "pulses_mean": float(np.mean(pulses)), "failed_fraction": float(np.mean(failed)),
                     "relative_error_rms": float(np.mean(rms))})
    header = ["tolerance", "accuracy [95 % CI]", "per seed", "pulses/cell", "failed cells", "rms error"]
    return table(header, rows), data


def passive_rows(circuits, x, y, engine, seeds, scheme, sigmas):
    """Accuracy and disturbance of passive programming vs the normalized threshold variation."""
    rows, data = [], []
    for sigma in sigmas:
        row = [pct(sigma)]
        for name, circuit in circuits.items():
            correct, disturbed, out, failed, pulses = [], [], [], [], []
            for s in range(seeds):
                prog, rec = apply_imperfections(circuit, {"kind": "passive_programming", "scheme": scheme,
                                                          "threshold_variation": sigma}, seed=s)
                correct.append(judge(prog, x, y, engine)["correct"])
                disturbed.append(rec["disturbed_fraction"])
                out.append(rec["out_of_tolerance"] / rec["cells"])
                failed.append(rec["failed_fraction"])
                pulses.append(rec["pulses_mean"])
            row += [accuracy(correct), per_seed(correct), f"{100 * np.mean(disturbed):.1f}%", f"{100 * np.mean(out):.1f}%"]
            data.append({"network": name, "scheme": scheme, "threshold_variation": sigma,
                         "accuracy": [float(c.mean()) for c in correct],
                         "disturbed_fraction": float(np.mean(disturbed)), "out_of_tolerance_fraction": float(np.mean(out)),
                         "failed_fraction": float(np.mean(failed)), "pulses_mean": float(np.mean(pulses))})
        rows.append(row)
    header = ["σ/μ"]
    for name in circuits:
        header += [f"{name} acc. [95 % CI]", "per seed", "disturbed", "out of tol."]
    return table(header, rows), data


def window_rows(net, x_pixels, y, engine):
    """Accuracy and arrays' energy per inference for several conductance windows."""
    rows, data = [], []
    for r_on, r_off in ((1e3, 1e5), (10e3, 1e6), (100e3, 1e7), (1e6, 1e8), (10e3, 1e5), (10e3, 1e7)):
        circuit = map_network(net, MappingConfig(r_on_ohm=r_on, r_off_ohm=r_off))
        r = judge(circuit, to_voltages(x_pixels, 0.2), y, engine)
        rows.append([f"{r_on / 1e3:g} k", f"{r_off / 1e3:g} k", f"{1e6 / r_off:g}-{1e6 / r_on:g}", accuracy([r["correct"]]),
                     f"{r['energy_per_inference_j'] * 1e12:.3g}", f"{r['power_mean_w'] * 1e6:.3g}"])
        data.append({"r_on_ohm": r_on, "r_off_ohm": r_off, "accuracy": float(r["correct"].mean()),
                     "energy_per_inference_j": r["energy_per_inference_j"], "power_mean_w": r["power_mean_w"]})
    header = ["R_on", "R_off", "G window (µS)", "accuracy [95 % CI]", "pJ / inference", "µW"]
    return table(header, rows), data


def noise_rows(circuit, x, y, engine, seeds):
    """Accuracy vs the relative read noise, sampled per inference."""
    rows, data = [], []
    for sigma in (0.0, 0.02, 0.05, 0.1, 0.2, 0.3):
        noise = ReadNoiseModel(relative_sigma=sigma, read_time_s=READ_TIME_S)  # a simulation option: drawn per inference
        correct = [judge(circuit, x, y, engine, seed=s, read_noise=noise)["correct"] for s in range(seeds)]
        rows.append([pct(sigma), accuracy(correct), per_seed(correct)])
        data.append({"relative_sigma": sigma, "accuracy": [float(c.mean()) for c in correct]})
    floor = ReadNoiseModel(relative_sigma=0.0, read_time_s=READ_TIME_S)
    g = np.array([1e-6, 1e-8])
    thermal_shot = floor.sigma(g, 0.2) / g
    note = (f"Thermal and shot noise alone (`relative_sigma` 0) at 0.2 V, 25 C, {READ_TIME_S * 1e9:g} ns: "
            f"{100 * thermal_shot[0]:.2f} % of G at 1 µS, {100 * thermal_shot[1]:.1f} % at 10 nS.")
    return table(["σ_G / G", "accuracy [95 % CI]", "per seed"], rows) + "\n\n" + note, data


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the chosen tables, print them as Markdown (and publish them with --write-docs)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", default="nodal", help="ideal or nodal (default nodal: wires and IR drop)")
    parser.add_argument("--seeds", type=int, default=3, help="imperfection draws per point")
    parser.add_argument("--only", choices=TABLES, action="append", help="run only these tables (repeatable)")
    parser.add_argument("--json", help="also write every number to this JSON file")
    parser.add_argument("--write-docs", action="store_true",
                        help=f"publish each table into its block of docs/{PAGE} (baselines-TABLE)")
    args = parser.parse_args(argv)
    wanted = set(args.only or TABLES)
    command = command_line(__file__, argv)

    dataset = load_digits(seed=0)
    net = default_network(dataset)
    circuit = map_network(net)
    x, y = to_voltages(dataset.x_test, 0.2), dataset.y_test
    results = {"engine": args.engine, "seeds": args.seeds, "read_time_s": READ_TIME_S,
               "software_accuracy": net.accuracy(dataset.x_test, y)}
    setting = (f"Default network 64-8-8-8-10 (software accuracy {rate(results['software_accuracy'], len(y))}), default mapping, "
               f"{args.engine} engine, {len(y)} test images")
    print(f"{setting}, {args.seeds} seeds per point\n")

    def section(name: str, title: str, lead: str, run: Callable[[], tuple[str, Any]]) -> None:
        start = time.perf_counter()
        text, data = run()
        results[name] = data
        print(f"## {title}\n\n{lead}\n\n{text}\n\n({time.perf_counter() - start:.0f} s)\n", flush=True)
        if args.write_docs:
            publish(PAGE, f"baselines-{name}", f"{lead}\n\n{text}", command)

    seeded = f"{setting}; {args.seeds} seeds per point x {len(y)} images (interval: Wilson over the pooled pairs)."
    if "temperature" in wanted:
        section("temperature", "Accuracy vs temperature (programmed at 25 C)",
                f"{setting}; one circuit per point, programmed at 25 C; cells, wires (Cu TCR) and IR drop follow.",
                lambda: temperature_rows(circuit, x, y, args.engine))
    if "tolerance" in wanted:
        section("tolerance", "Accuracy vs write-verify tolerance (1T1R, 10% threshold variation)",
                f"{seeded} 1T1R write-verify, 10 % threshold variation, no verify noise.",
                lambda: tolerance_rows(circuit, x, y, args.engine, args.seeds))
    if wanted & {"passive", "passive-v3"}:
        wide = default_network(dataset, NetworkConfig(widths=(64, 32, 10)))
        circuits = {"64x64 (64-32-10)": map_network(wide), "default": circuit}
        wide_line = f"64-32-10 variant: software accuracy {rate(wide.accuracy(dataset.x_test, y), len(y))}"
        sigmas = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
        if "passive" in wanted:
            section("passive", "Accuracy vs normalized threshold variation, passive crossbars, V/2",
                    f"{seeded} {wide_line}. V/2 scheme, tolerance 2 %.",
                    lambda: passive_rows(circuits, x, y, args.engine, args.seeds, "v/2", sigmas))
        if "passive-v3" in wanted:
            section("passive-v3", "Accuracy vs normalized threshold variation, passive crossbars, V/3",
                    f"{seeded} {wide_line}. V/3 scheme, tolerance 2 %.",
                    lambda: passive_rows({"64x64 (64-32-10)": circuits["64x64 (64-32-10)"]}, x, y, args.engine,
                                         args.seeds, "v/3", (0.0, 0.1, 0.2, 0.25, 0.3)))
    if "window" in wanted:
        section("window", f"Arrays' energy per inference vs conductance window (read time {READ_TIME_S:g} s)",
                f"{setting}; one circuit per window; read time {READ_TIME_S * 1e9:g} ns.",
                lambda: window_rows(net, dataset.x_test, y, args.engine))
    if "noise" in wanted:
        section("noise", "Accuracy vs read noise (sampled per inference)",
                f"{seeded} `relative_sigma` plus thermal and shot noise at {READ_TIME_S * 1e9:g} ns, a fresh sample "
                "per inference, one noise seed per draw.",
                lambda: noise_rows(circuit, x, y, args.engine, args.seeds))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))


if __name__ == "__main__":
    main()
