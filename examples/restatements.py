"""The mitigation claims of docs/mitigation.md restated under the evaluation protocol.

    .venv/bin/python examples/restatements.py [--only SECTION ...] [--quick] [--out DIR] [--write-docs]

Every claim is measured on the default digits network(s) trained on 1,437 images, with 180
validation images held out of training (every choice: the worst temperature, the chosen lever)
and 180 test images (every reported number). Accuracies carry Wilson intervals; drops and gains
are paired on the same images (pooled over network or programming seeds, bootstrap interval);
tolerances carry a bootstrap interval over defect instances. Sections:

* ``temperature``: temperature-aware training, drop against the same network's own 25 C accuracy,
  and a thermal-model mismatch test (trained with one set of activation energies, tested with another);
* ``tracking``: tracking feedback with states that do not share one activation energy;
* ``tuning``: passive V/2 (and V/3) tuning, every programming seed from this script;
* ``energy``: the memory-state lever as system energy (op-amps included, at the measured latency);
* ``tolerance``: defect tolerance at 1, 2 and 5 point drops with measured denominators;
* ``readme``: what the commands quoted by README.md print today.

``--write-docs`` publishes each section's block into docs/restatements.md and rebuilds the
before/after table there from every section's claims (kept in docs/results/restatements.claims.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import pandas as pd

from neurodtco.circuit import Circuit
from neurodtco.data import Dataset, load_digits, to_voltages
from neurodtco.engines import simulate
from neurodtco.imperfections import ReadNoiseModel, ReRAMThermalModel
from neurodtco.imperfections._common import BOLTZMANN_EV_PER_K, kelvin
from neurodtco.imperfections.temperature import WireThermalModel, apply_temperature
from neurodtco.mapping import MappingConfig, map_network
from neurodtco.network import NetworkConfig, TrainedNetwork, cache_dir, default_network, load_network
from neurodtco.stats import mcnemar_exact, paired_bootstrap_ci, wilson_interval

SECTIONS = ("temperature", "tracking", "tuning", "energy", "tolerance", "readme")
ROOT = Path(__file__).resolve().parents[1]
PAGE = "restatements.md"
CLAIMS = ROOT / "docs" / "results" / "restatements.claims.json"
TEMPERATURES_C = (25.0, 50.0, 75.0, 100.0)
NOISE = ReadNoiseModel(relative_sigma=0.01, group_size=20)
NOMINAL = ReRAMThermalModel()
#: The mismatch: 1.5x the activation energy, and more conductive states less activated (-0.03 eV per decade).
PERTURBED = ReRAMThermalModel(activation_energy_ev=0.15, activation_energy_slope_ev_per_decade=-0.03)
SLOPED = ReRAMThermalModel(activation_energy_slope_ev_per_decade=-0.03)
LOW_WINDOW = (1e6, 1e8)  # 0.01-1 uS: the window of the "99x" claim
MID_WINDOW = (1e5, 1e7)  # 0.1-10 uS


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Run:
    """What a section needs: the protocol's dataset, the seeds and the quick switch."""

    data: Dataset
    seeds: tuple[int, ...]
    quick: bool
    out: Path

    def network(self, seed: int, widths: tuple[int, ...] = (64, 8, 8, 8, 10)) -> TrainedNetwork:
        return default_network(self.data, NetworkConfig(widths=widths, seed=seed, epochs=5 if self.quick else 300))


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def pts(value: float, ci: Sequence[float]) -> str:
    return f"{value:+.1f} [{ci[0]:+.1f}, {ci[1]:+.1f}] pts"


def md(df: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def verdict(value: float, ci: Sequence[float], bound: float, below: bool = True) -> str:
    """``yes`` when the whole interval meets the bound, ``estimate only`` when only the point does, else ``no``."""
    ok = (lambda v: v <= bound) if below else (lambda v: v >= bound)
    if ok(value) and ok(ci[1] if below else ci[0]):
        return "yes"
    return "estimate only" if ok(value) else "no"


# ------------------------------------------------------------------ reading a circuit


def read(run: Run, circuit: Circuit, noise: Optional[ReadNoiseModel] = NOISE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-image correctness on the validation and the test images (the same read-noise draw for both)."""
    x_val, y_val = run.data.validation()
    x = to_voltages(np.concatenate([x_val, run.data.x_test]), circuit.input_scale_v)
    pred = np.argmax(simulate(circuit, x, engine="nodal", read_noise=noise, seed=seed).outputs_v, axis=1)
    return pred[:len(y_val)] == y_val, pred[len(y_val):] == run.data.y_test


def spread_temperature(circuit: Circuit, temperature_c: float, sigma: float, seed: int) -> Circuit:
    """The circuit at ``temperature_c`` with every cell its own activation energy (``Ea (1 + sigma N(0,1))``)."""
    hot, _ = apply_temperature(circuit, temperature_c, NOMINAL, WireThermalModel())  # wires
    rng = np.random.default_rng(seed)
    t, t_ref = kelvin(temperature_c), kelvin(NOMINAL.t_ref_c)
    metal = 1.0 + NOMINAL.metallic_tcr_per_k * (t - t_ref)

    def heat(index: int, layer: Any) -> Any:
        g = circuit.layers[index].conductance
        ea = np.maximum(NOMINAL.activation_energy(g) * (1 + sigma * rng.standard_normal(g.shape)), 0.0)
        m = NOMINAL.metallic_fraction(g)
        factor = m / metal + (1 - m) * np.exp(-ea / BOLTZMANN_EV_PER_K * (1 / t - 1 / t_ref))
        return layer.replace(conductance=g * factor)

    return hot.map_layers(heat)


def temperature_curve(run: Run, circuit: Circuit, model: Any = NOMINAL, tracking: bool = False,
                      temperatures: Sequence[float] = TEMPERATURES_C) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Correctness (validation, test) at each temperature; ``model`` a ReRAM model or ``("spread", sigma)``."""
    from neurodtco.mitigation.circuit_levers import track_temperature

    out = {}
    for t in temperatures:
        if isinstance(model, tuple):
            hot = spread_temperature(circuit, t, model[1], seed=17)
            params = asdict(NOMINAL)  # the feedback cell is built to the nominal model
        else:
            hot, _ = apply_temperature(circuit, t, model, WireThermalModel())
            params = asdict(model)
        if tracking:
            hot = track_temperature(circuit, hot, t, **params)
        out[t] = read(run, hot)
    return out


def worst_on_validation(curve: dict[float, tuple[np.ndarray, np.ndarray]]) -> float:
    """The temperature whose validation accuracy is lowest (ties: the hotter); the test images play no part."""
    return min(curve, key=lambda t: (curve[t][0].mean(), -t))


def pooled_drop(curves: Sequence[dict]) -> dict[str, Any]:
    """Drop from each curve's own 25 C accuracy to its validation-chosen worst temperature, pooled over curves.

    Paired per (curve, test image); ``drops`` lists each curve's own drop in points.
    """
    c25, cw, each = [], [], []
    for curve in curves:
        t = worst_on_validation(curve)
        a, b = curve[min(curve)][1], curve[t][1]
        c25.append(a)
        cw.append(b)
        each.append((t, 100 * (a.mean() - b.mean()), float(b.mean())))
    a, b = np.concatenate(c25), np.concatenate(cw)
    drop, ci = paired_bootstrap_ci(a, b)
    # The old reading: the largest drop over the temperatures on the test images themselves (the minimum of
    # several noisy accuracies, so biased toward a larger drop); kept beside the protocol's for comparison.
    test_max = [100 * (curve[min(curve)][1].mean() - min(v[1].mean() for v in curve.values())) for curve in curves]
    return {"drop": 100 * drop, "ci": [100 * ci[0], 100 * ci[1]], "p": mcnemar_exact(a, b), "n": a.size,
            "per_curve": each, "correct_25": a, "correct_worst": b, "test_max": test_max}


def drop_text(d: dict) -> str:
    per = ", ".join(f"{x:+.1f}" for _, x, _ in d["per_curve"])
    return f"{pts(d['drop'], d['ci'])} (per seed {per})"


# ------------------------------------------------------------------ temperature


def hat_network(run: Run, seed: int) -> TrainedNetwork:
    """The temperature-aware network of one seed (trained with the nominal model over 25-100 C; cached)."""
    from neurodtco.mitigation.training import HardwareNoise, train_hardware_aware

    epochs = 5 if run.quick else 300
    path = cache_dir() / f"restate_hat_t1_e{epochs}_seed{seed}_{run.data.name}0_64-8-8-8-10.pt"
    if path.is_file():
        return load_network(path)
    net = train_hardware_aware(run.data, HardwareNoise(temperature_factor=NOMINAL.factor,
                                                       temperature_range_c=(25.0, 100.0), seed=seed),
                               NetworkConfig(seed=seed, epochs=epochs))
    net.save(path)
    return net


def section_temperature(run: Run) -> tuple[list[dict], str]:
    rows, results = [], {}
    for net_kind in ("plain", "temperature-aware"):
        for model_name, model in (("nominal", NOMINAL), ("perturbed", PERTURBED)):
            curves = []
            for s in run.seeds:
                net = run.network(s) if net_kind == "plain" else hat_network(run, s)
                curves.append(temperature_curve(run, map_network(net), model))
            d = pooled_drop(curves)
            results[net_kind, model_name] = d
            worst = d["correct_worst"]
            rows.append({"network": net_kind, "thermal model at test": model_name,
                         "25 C (own)": pct(d["correct_25"].mean()),
                         "worst (chosen on validation)": f"{pct(worst.mean())} [{', '.join(f'{100 * v:.1f}' for v in wilson_interval(worst.sum(), worst.size))}]",
                         "drop from own 25 C": drop_text(d), "worst T per seed": ", ".join(f"{t:g}" for t, _, _ in d["per_curve"]),
                         "largest drop on test, per seed": ", ".join(f"{x:+.1f}" for x in d["test_max"])})
            log(f"temperature: {net_kind} / {model_name}: {drop_text(d)}")
    hat, plain = results["temperature-aware", "nominal"], results["plain", "nominal"]
    gain, gci = paired_bootstrap_ci(hat["correct_worst"], plain["correct_worst"])
    mis = results["temperature-aware", "perturbed"]
    mis_gain, mis_gci = paired_bootstrap_ci(mis["correct_worst"], results["plain", "perturbed"]["correct_worst"])
    n = f"{len(run.seeds)} network seeds x 180 test images"
    claims = [
        {"claim": "temperature-aware training: drop over 25-100 C", "old": "0.0 points (worst 93.9 % vs 93.9 % at 25 C)",
         "new": f"{drop_text(hat)} from its own 25 C; plain network {pts(plain['drop'], plain['ci'])}",
         "n": n, "stands": "sub-percent: " + verdict(hat["drop"], hat["ci"], 1.0) + "; largest drop on test per seed "
         + ", ".join(f"{x:+.1f}" for x in hat["test_max"])},
        {"claim": "temperature-aware training vs plain, worst temperature", "old": "+1.1 points (93.9 % vs 92.8 %)",
         "new": f"{pts(100 * gain, [100 * gci[0], 100 * gci[1]])} (paired, same images and seeds)",
         "n": n, "stands": "yes" if 100 * gci[0] > 0 else "not resolved"},
        {"claim": "temperature-aware training under a mismatched thermal model (Ea x 1.5, -0.03 eV/decade)",
         "old": "not tested (trained and tested with one model)",
         "new": f"{drop_text(mis)}; vs plain network under the same model {pts(100 * mis_gain, [100 * mis_gci[0], 100 * mis_gci[1]])}",
         "n": n, "stands": "sub-percent: " + verdict(mis["drop"], mis["ci"], 1.0)},
    ]
    pd.DataFrame(rows).to_csv(run.out / "temperature.csv", index=False)
    body = (f"Read noise 1 % per inference; nodal engine; {n}. The worst temperature of each network is the one "
            "with the lowest validation accuracy; the last column is the old reading (the lowest test accuracy over "
            "the four temperatures, a minimum of noisy numbers). Perturbed model: activation energy 0.15 eV "
            "(nominal 0.1) and -0.03 eV per decade of conductance above 1 uS (nominal: one energy for every state).\n\n"
            + md(pd.DataFrame(rows)))
    return claims, body


# ------------------------------------------------------------------ tracking feedback


def section_tracking(run: Run) -> tuple[list[dict], str]:
    rows, claims = [], []
    cases = [("0.01-1 uS", LOW_WINDOW, "one Ea (nominal)", NOMINAL),
             ("0.01-1 uS", LOW_WINDOW, "-0.03 eV/decade", SLOPED),
             ("0.01-1 uS", LOW_WINDOW, "Ea spread 20 % per cell", ("spread", 0.2)),
             ("0.1-10 uS", MID_WINDOW, "one Ea (nominal)", NOMINAL),
             ("0.1-10 uS", MID_WINDOW, "-0.03 eV/decade", SLOPED),
             ("0.1-10 uS", MID_WINDOW, "Ea spread 20 % per cell", ("spread", 0.2))]
    nets = [run.network(s) for s in run.seeds]
    found = {}
    for window_name, window, model_name, model in cases:
        config = replace(MappingConfig(), r_on_ohm=window[0], r_off_ohm=window[1])
        circuits = [map_network(net, config) for net in nets]
        for feedback in ("fixed", "tracking"):
            d = pooled_drop([temperature_curve(run, c, model, tracking=feedback == "tracking") for c in circuits])
            found[window_name, model_name, feedback] = d
            rows.append({"window": window_name, "thermal model": model_name, "feedback": feedback,
                         "25 C": pct(d["correct_25"].mean()), "worst (chosen on validation)": pct(d["correct_worst"].mean()),
                         "drop from own 25 C": drop_text(d)})
            log(f"tracking: {window_name} {model_name} {feedback}: {drop_text(d)}")
    n = f"{len(run.seeds)} network seeds x 180 test images"
    one, spread = found["0.01-1 uS", "one Ea (nominal)", "tracking"], found["0.01-1 uS", "Ea spread 20 % per cell", "tracking"]
    sloped = found["0.1-10 uS", "-0.03 eV/decade", "tracking"]
    claims.append({"claim": "tracking feedback cancels temperature (low windows)",
                   "old": "exact: 93.3 % at every temperature (one activation energy shared by all states)",
                   "new": f"0.01-1 uS: one Ea {pts(one['drop'], one['ci'])}, Ea spread 20 % {pts(spread['drop'], spread['ci'])}; "
                          f"0.1-10 uS with -0.03 eV/decade {pts(sloped['drop'], sloped['ci'])}",
                   "n": n, "stands": "shared Ea: " + verdict(one["drop"], one["ci"], 1.0) + "; spread: "
                   + verdict(spread["drop"], spread["ci"], 1.0) + "; slope: " + verdict(sloped["drop"], sloped["ci"], 1.0)})
    pd.DataFrame(rows).to_csv(run.out / "tracking.csv", index=False)
    body = (f"Read noise 1 % per inference; nodal engine; {n}. The slope acts on states above 1 uS only "
            "(below, every state is fully activated with the base energy), so in the 0.01-1 uS window it changes "
            "nothing; the per-cell spread (a fixed draw, seed 17) is what makes those states differ. The feedback "
            "cell follows the nominal energy.\n\n" + md(pd.DataFrame(rows)))
    return claims, body


# ------------------------------------------------------------------ passive tuning


def section_tuning(run: Run) -> tuple[list[dict], str]:
    from neurodtco.imperfections import SwitchingDevice, WriteVerifyConfig, apply_passive_programming
    from neurodtco.mitigation import RetrainConfig
    from neurodtco.mitigation.tuning import apply_ordered_programming, program_with_retraining

    program_seeds = (0,) if run.quick else (0, 1, 2)
    dev, cfg = SwitchingDevice(threshold_variation=0.25), WriteVerifyConfig()
    rows, pooled, correct_of = [], {}, {}
    labels = (("64-32-10", (64, 32, 10)), ("default 64-8-8-8-10", (64, 8, 8, 8, 10)))
    for label, widths in labels:
        circuit = map_network(run.network(0, widths))
        _, ideal = read(run, circuit, None)
        methods: dict[str, Callable[[np.random.Generator], tuple[Circuit, dict]]] = {
            "basic V/2": lambda rng: apply_passive_programming(circuit, dev, cfg, rng, scheme="v/2"),
            "ordered V/2": lambda rng: apply_ordered_programming(circuit, dev, cfg, rng, scheme="v/2"),
            "ordered V/2 + retraining (2 touch-ups)": lambda rng: program_with_retraining(
                circuit, run.data, dev, cfg, rng, scheme="v/2", iterations=1 if run.quick else 2,
                retrain=RetrainConfig(epochs=3 if run.quick else 40, batch_size=256, learning_rate=5e-3,
                                      change_weight=0.3, seed=0)),
        }
        if widths == (64, 32, 10):
            methods["basic V/3"] = lambda rng: apply_passive_programming(circuit, dev, cfg, rng, scheme="v/3")
            methods["ordered V/3"] = lambda rng: apply_ordered_programming(circuit, dev, cfg, rng, scheme="v/3")
        for name, fn in methods.items():
            accs, a, b = [], [], []
            for ps in program_seeds:
                t0 = time.perf_counter()
                prog, rec = fn(np.random.default_rng(ps))
                _, correct = read(run, prog, None)
                accs.append(correct.mean())
                a.append(ideal)
                b.append(correct)
                log(f"tuning: {label} {name} seed {ps}: {correct.mean():.1%} ({time.perf_counter() - t0:.0f} s)")
            drop, ci = paired_bootstrap_ci(np.concatenate(a), np.concatenate(b))
            pooled[label, name] = (100 * drop, [100 * ci[0], 100 * ci[1]])
            correct_of[label, name] = np.concatenate(b)
            rows.append({"network": label, "programming": name, "ideal": pct(ideal.mean()),
                         "accuracy per programming seed": ", ".join(pct(x) for x in accs),
                         "drop from ideal": pts(100 * drop, [100 * ci[0], 100 * ci[1]])})
    n = f"network seed 0, programming seeds {', '.join(map(str, program_seeds))} x 180 test images"
    wide = pooled["64-32-10", "ordered V/2 + retraining (2 touch-ups)"]
    small = pooled["default 64-8-8-8-10", "ordered V/2 + retraining (2 touch-ups)"]
    v3b, v3o = pooled["64-32-10", "basic V/3"], pooled["64-32-10", "ordered V/3"]
    v3_gain, v3_ci = paired_bootstrap_ci(correct_of["64-32-10", "ordered V/3"], correct_of["64-32-10", "basic V/3"])
    v3_gain, v3_ci = 100 * v3_gain, [100 * v3_ci[0], 100 * v3_ci[1]]
    claims = [
        {"claim": "25 % threshold variation, 64x64 passive (64-32-10): ordered + program-measure-retrain",
         "old": "no drop: 96.1, 97.2, 96.7 % vs 96.1 % ideal (seeds 1 and 2 from no script)",
         "new": f"drop {pts(*wide)}; default network {pts(*small)}", "n": n,
         "stands": "sub-percent: " + verdict(wide[0], wide[1], 1.0)},
        {"claim": "V/3, ordered alone on the 64x64 variant", "old": "77 % vs 57 % basic (from no script)",
         "new": f"ordered - basic {pts(v3_gain, v3_ci)} (paired); drop from ideal: ordered {pts(*v3o)}, basic {pts(*v3b)}",
         "n": n, "stands": "ordered beats basic: " + ("yes" if v3_ci[0] > 0 else "not resolved") + "; 77 % vs 57 %: replaced"},
    ]
    pd.DataFrame(rows).to_csv(run.out / "tuning.csv", index=False)
    body = f"Passive crossbars, 25 % switching-threshold variation, nodal engine, no read noise; {n}.\n\n" + md(pd.DataFrame(rows))
    return claims, body


# ------------------------------------------------------------------ system energy


def cli_json(args: Sequence[str]) -> dict:
    """Run ``python -m neurodtco ARGS --json`` and return its JSON line."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run([sys.executable, "-m", "neurodtco", *args, "--json"], capture_output=True, text=True, env=env,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def section_energy(run: Run) -> tuple[list[dict], str]:
    windows = {"1-100 uS (default)": (10e3, 1e6), "0.01-1 uS": LOW_WINDOW}
    measured = {}
    for name, (r_on, r_off) in windows.items():
        t0 = time.perf_counter()
        measured[name] = cli_json(["energy", "--r-on", f"{r_on:g}", "--r-off", f"{r_off:g}", "--jobs", "2"]
                                  + (["--n-images", "20"] if run.quick else []))
        log(f"energy: {name} {measured[name]['total_j'] * 1e9:.3g} nJ ({time.perf_counter() - t0:.0f} s)")
    ref, low = measured["1-100 uS (default)"], measured["0.01-1 uS"]
    # Accuracy: the reference (default window, fixed feedback) and the lever (low window + tracking),
    # each at its own validation-chosen worst temperature, on the same test images and seeds.
    nets = [run.network(s) for s in run.seeds]
    low_cfg = replace(MappingConfig(), r_on_ohm=LOW_WINDOW[0], r_off_ohm=LOW_WINDOW[1])
    d_ref = pooled_drop([temperature_curve(run, map_network(n)) for n in nets])
    d_low = pooled_drop([temperature_curve(run, map_network(n, low_cfg), tracking=True) for n in nets])
    cost, cci = paired_bootstrap_ci(d_ref["correct_25"], d_low["correct_worst"])
    rows = [{"window": k, "latency": f"{v['latency_s'] * 1e6:.2f} us", "op-amps": f"{v['opamps_j'] * 1e9:.3g} nJ",
             "arrays": f"{v['arrays_j'] * 1e9:.3g} nJ",
             "arrays at 100 ns": f"{v['arrays_j_at_default_read_time'] * 1e12:.3g} pJ",
             "total": f"{v['total_j'] * 1e9:.3g} nJ", "op-amp share": pct(v["opamp_share"])} for k, v in measured.items()]
    system = ref["total_j"] / low["total_j"]
    array_100ns = ref["arrays_j_at_default_read_time"] / low["arrays_j_at_default_read_time"]
    n = f"energy: `neurodtco energy` (default network, NOM 25 C); accuracy: {len(run.seeds)} network seeds x 180 test images"
    claims = [{"claim": "memory states: >= 2.5x energy at <= 1 point (0.01-1 uS + tracking feedback)",
               "old": "99x array energy at -0.8 points (vs the reference's worst temperature)",
               "new": f"system energy {system:.2f}x (op-amps {100 * low['opamp_share']:.2f} % of the low window's total; "
                      f"arrays alone {array_100ns:.0f}x); accuracy cost vs the reference at 25 C "
                      f"{pts(100 * cost, [100 * cci[0], 100 * cci[1]])}",
               "n": n, "stands": "no (system energy)" if system < 2.5 else "yes"}]
    pd.DataFrame(rows).to_csv(run.out / "energy.csv", index=False)
    body = (f"{n}. Settling measured in ngspice for each window (every R_f 100x larger in the low window); the "
            f"arrays' energy over the measured latency. Accuracy: reference 25 C {pct(d_ref['correct_25'].mean())}, "
            f"reference worst {pct(d_ref['correct_worst'].mean())}, low window + tracking worst "
            f"{pct(d_low['correct_worst'].mean())} (worst temperatures chosen on validation).\n\n" + md(pd.DataFrame(rows)))
    return claims, body


# ------------------------------------------------------------------ defect tolerance


def section_tolerance(run: Run) -> tuple[list[dict], str]:
    from neurodtco.mitigation import RetrainConfig
    from neurodtco.mitigation.tolerance import defect_tolerance, tolerance_ratio_ci, tolerance_thresholds

    circuit = map_network(run.network(0))
    drops = (0.01, 0.02, 0.05)
    t0 = time.perf_counter()
    plain = defect_tolerance(circuit, run.data, [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2],
                             instances=10 if run.quick else 100, engine="nodal")
    log(f"tolerance: no retraining {time.perf_counter() - t0:.0f} s")
    retrain = RetrainConfig(epochs=3 if run.quick else 100, batch_size=256, learning_rate=2e-2)
    fixed = defect_tolerance(circuit, run.data, [0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2],
                             instances=2 if run.quick else 8, retrain=retrain, engine="nodal")
    log(f"tolerance: retrained {time.perf_counter() - t0:.0f} s")
    pd.concat([plain.table, fixed.table]).to_csv(run.out / "tolerance.csv", index=False)
    tp, tf = tolerance_thresholds(plain, drops), tolerance_thresholds(fixed, drops)
    ratio = tolerance_ratio_ci(tf, tp)

    def dens(row: pd.Series) -> str:
        return f"{row['density']:.2g} [{row['low']:.2g}, {row['high']:.2g}]"

    rows = [{"drop (points)": f"{d:g}", "without retraining": dens(tp.loc[d]), "with defect-aware retraining": dens(tf.loc[d]),
             "ratio": f"{ratio.loc[d, 'ratio']:.0f}x [{ratio.loc[d, 'low']:.0f}, {ratio.loc[d, 'high']:.0f}]"}
            for d in tp.index]
    curves = []
    for label, res in (("no", plain), ("yes", fixed)):
        for density, r in res.mean_accuracy_ci().iterrows():
            curves.append({"p (per cell)": f"{density:g}", "retrained": label,
                           "mean accuracy [95 % CI]": f"{pct(r['mean'])} [{100 * r['low']:.1f}, {100 * r['high']:.1f}]",
                           "instances": int(r["instances"])})
    n = (f"network seed 0; {int(plain.table.groupby('density').size().min())} (plain) and "
         f"{int(fixed.table.groupby('density').size().min())} (retrained) defect instances per density x 180 test images")
    claims = [{"claim": "defect tolerance with defect-aware retraining (>= 10x; published > 100x)",
               "old": "176x (1-point drop, vs the first-order single-fault estimate; 276x vs Monte Carlo)",
               "new": "; ".join(f"{d:g} pt: {ratio.loc[d, 'ratio']:.0f}x [{ratio.loc[d, 'low']:.0f}, {ratio.loc[d, 'high']:.0f}]"
                                for d in ratio.index),
               "n": n, "stands": "; ".join(f"{goal}: " + ", ".join(
                   f"{d:g} pt " + ("yes" if ratio.loc[d, "low"] >= bound else
                                   "estimate only" if ratio.loc[d, "ratio"] >= bound else "no") for d in ratio.index)
                   for goal, bound in ((">= 10x", 10), ("> 100x", 100)))}]
    body = (f"Random stuck cells (half on, half off), nodal engine; healthy {pct(plain.healthy_accuracy)}; {n}. "
            "Tolerance: the density where the measured mean accuracy first falls the given drop below healthy "
            "(log-linear between grid points); intervals: bootstrap over instances (`tolerance_thresholds`).\n\n"
            + md(pd.DataFrame(rows)) + "\n\n" + md(pd.DataFrame(curves)))
    return claims, body


# ------------------------------------------------------------------ README numbers


def section_readme(run: Run) -> tuple[list[dict], str]:
    commands = [
        ("corrector, column defect in array 3", "38.3 % -> 88.3 %",
         ["correct", "--defect", "column:layer=2,density=0.3,kind=on", "--defect-seed", "1", "--hidden", "8"],
         lambda j: f"{pct(j['accuracy_before'])} -> {pct(j['accuracy_after'])}"),
        ("healthy, nodal, gain 1e4", "93.9 %", ["simulate", "--engine", "nodal", "--gain", "1e4"],
         lambda j: pct(j["accuracy"])),
        ("healthy, nodal, balanced", "94.4 %", ["simulate", "--engine", "nodal", "--encoding", "balanced"],
         lambda j: pct(j["accuracy"])),
        ("healthy, nodal, default", "93.9 %", ["simulate", "--engine", "nodal"], lambda j: pct(j["accuracy"])),
    ]
    rows, claims = [], []
    for what, old, args, fmt in commands:
        try:
            new = fmt(cli_json(args))
        except (subprocess.CalledProcessError, KeyError) as err:
            new = f"failed: {type(err).__name__}"
        rows.append({"README number": what, "README says": old, "command prints": new,
                     "command": "`neurodtco " + " ".join(args) + " --json`"})
        log(f"readme: {what}: {new}")
    equal = all(r["README says"] == r["command prints"] for r in rows)
    # The README's circuits come from the network trained on all 1,617 non-test images; the protocol's
    # networks leave the 180 validation images out of training.
    protocol = []
    for s in run.seeds:
        for encoding in ("low", "balanced"):
            _, correct = read(run, map_network(run.network(s), replace(MappingConfig(), pair_encoding=encoding)), None)
            low, high = wilson_interval(correct.sum(), correct.size)
            protocol.append({"network seed": s, "encoding": encoding,
                             "healthy nodal accuracy [95 % CI]": f"{pct(correct.mean())} [{100 * low:.1f}, {100 * high:.1f}]"})
    table = pd.DataFrame(protocol)
    claims.append({"claim": "README numbers", "old": "; ".join(f"{r['README number']}: {r['README says']}" for r in rows),
                   "new": "; ".join(f"{r['README number']}: {r['command prints']}" for r in rows)
                   + "; healthy (low encoding) of the protocol's networks: "
                   + ", ".join(table[table["encoding"] == "low"]["healthy nodal accuracy [95 % CI]"]),
                   "n": f"180 test images; protocol networks: seeds {', '.join(map(str, run.seeds))}",
                   "stands": "yes: the commands print the README's numbers" if equal else "no: see the table"})
    body = (md(pd.DataFrame(rows)) + "\n\nThe same circuits from the protocol's networks (trained without the 180 "
            "validation images), ideal op-amps, 1 ohm wires:\n\n" + md(table))
    return claims, body


RUNNERS = {"temperature": section_temperature, "tracking": section_tracking, "tuning": section_tuning,
           "energy": section_energy, "tolerance": section_tolerance, "readme": section_readme}


def summary(claims: dict[str, list[dict]]) -> str:
    rows = [c for s in SECTIONS for c in claims.get(s, [])]
    return md(pd.DataFrame(rows, columns=["claim", "old", "new", "n", "stands"]).rename(columns={
        "old": "old (as the docs said)", "new": "under the protocol [95 % CI]", "n": "n"}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--quick", action="store_true", help="smoke run: few epochs, instances and seeds; not for docs")
    parser.add_argument("--seeds", type=int, default=3, help="network seeds for the method claims (default 3)")
    parser.add_argument("--out", type=Path, default=Path("restatement-results"))
    parser.add_argument("--write-docs", action="store_true", help="publish into docs/restatements.md")
    args = parser.parse_args()
    if args.quick and args.write_docs:
        parser.error("--quick numbers are a smoke test; run without --quick to publish")
    args.out.mkdir(parents=True, exist_ok=True)
    run = Run(data=load_digits(seed=0, n_validation=180), seeds=tuple(range(1 if args.quick else args.seeds)),
              quick=args.quick, out=args.out)
    claims: dict[str, list[dict]] = {}
    for name in args.only:
        t0 = time.perf_counter()
        found, body = RUNNERS[name](run)
        load = os.getloadavg()[0]
        log(f"section {name}: {time.perf_counter() - t0:.0f} s (load average {load:.1f})")
        claims[name] = found
        print(f"\n## {name}\n\n{body}\n")
        if args.write_docs:
            sys.path.insert(0, str(Path(__file__).parent))
            from _docblocks import publish

            publish(PAGE, name, body, f"python examples/restatements.py --only {name} --write-docs")
    print("\n## before / after (sections of this run)\n\n" + summary(claims))
    if args.write_docs:
        from _docblocks import publish

        # Read just before writing: the sections may run as separate processes.
        claims = {**(json.loads(CLAIMS.read_text()) if CLAIMS.is_file() else {}), **claims}
        CLAIMS.write_text(json.dumps(claims, indent=1) + "\n")
        publish(PAGE, "claims", summary(claims), "python examples/restatements.py --write-docs (each section's claims)")


if __name__ == "__main__":
    main()
