"""Side-by-side comparison: every imperfection scenario, with no mitigation, each lever alone, the
corrective network, and the best combination; accuracy and array energy per inference.

Every number comes from a circuit simulated by the engine (``nodal`` by default); software
accuracy is never reported as circuit accuracy. Each circuit is read on validation and test images:
the ``combined`` lever chooses among its options on the validation accuracy, and every row reports
its test accuracy with a Wilson interval and the paired (same images) difference to the scenario's
``none`` row. A dataset without a validation part (the digits) has one held out of its training
images (``ComparisonConfig.n_validation``); the network passed in may have seen those images in
training, which makes validation accuracies read high but compares the options on equal terms.
Scenarios:

* ``temperature``: programmed at 25 C, read at 25, 50, 75 and 100 C (ReRAM model of
  ``imperfections.temperature``, wires included), per-inference read noise; the score is the
  *worst* accuracy over the range, and ``drop_points``, the drop from the same circuit's own 25 C
  accuracy (a lever that changes the network is measured against that network at 25 C).
* ``tuning``: 1T1R write-verify with a loose tolerance (``tuning_tolerance``, default 20%) and 10%
  threshold variation; pulses per cell are reported.
* ``threshold``: passive V/2 crossbars with 25% normalized threshold variation.
* ``stuck-random`` / ``stuck-column``: random stuck cells (probability 1% per cell, half on, half
  off) / 5% of the columns of every array stuck (half on, half off).

Levers: ``training`` (temperature- or noise-aware training, program-measure-retrain for passive
programming, defect-aware retraining for stuck cells), ``tuning`` (adaptive 1T1R write-verify at
half the tolerance; ordered passive tuning), ``states`` (the low window for temperature, the
balanced encoding for tuning error), ``circuit`` (temperature-tracking feedback for temperature,
a shared reference column elsewhere), ``corrector`` (the correction package's 10-8-10 corrective MLP, 178
parameters, calibrated on the chip's training-image outputs: at 25 C only for the temperature
scenario), and ``combined`` (the best of a few combinations; the others tried are named in
``detail``). Levers that do not apply to a scenario are skipped.
"""

from __future__ import annotations

import html
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Union

import numpy as np
import pandas as pd

from ..circuit import Circuit
from ..correction import ChipVoltages, MLPCorrector
from ..data import Dataset, split_validation, to_voltages
from ..defects import Defect, apply_defects
from ..engines import simulate
from ..imperfections import (ReadNoiseModel, ReRAMThermalModel, SwitchingDevice, WriteVerifyConfig,
                             apply_imperfections, apply_passive_programming, apply_write_verify,
                             parse_imperfections)
from ..imperfections.energy import energy_per_inference_j
from ..mapping import MappingConfig, map_network
from ..network import TrainedNetwork, cache_dir, load_network
from ..stats import mcnemar_exact, paired_bootstrap_ci, wilson_interval
from .circuit_levers import map_shared_reference, track_temperature
from .common import resolve_engine
from .training import HardwareNoise, RetrainConfig, retrain_defect_aware, train_hardware_aware
from .tuning import apply_ordered_programming, program_circuit_1t1r, program_with_retraining

SCENARIOS = ("temperature", "tuning", "threshold", "stuck-random", "stuck-column")
LEVERS = ("none", "training", "tuning", "states", "circuit", "corrector", "combined")
TEMPERATURES_C = (25.0, 50.0, 75.0, 100.0)


@dataclass(frozen=True)
class ComparisonConfig:
    """Knobs of the comparison (defaults: the documented run)."""

    engine: str = "nodal"
    seed: int = 0
    read_time_s: float = 1e-7
    temperatures_c: tuple[float, ...] = TEMPERATURES_C
    read_noise_sigma: float = 0.01
    tuning_tolerance: float = 0.2
    tuning_variation: float = 0.1
    threshold_variation: float = 0.25
    stuck_probability: float = 0.01
    column_fraction: float = 0.05
    low_window: tuple[float, float] = (1e6, 1e8)  # the memory-state choice (R_on, R_off) for temperature
    hat_epochs: int = 300
    retrain_epochs: int = 40  # program-measure-retrain (threshold scenario)
    stuck_retrain_epochs: int = 100  # defect-aware retraining (stuck-at scenarios)
    quick: bool = False  # fewer epochs everywhere: a smoke run, not for reported numbers
    n_validation: int = 180  # held out of the training images when the dataset has no validation part

    def effective(self) -> "ComparisonConfig":
        """The config with the quick-mode reductions applied."""
        if not self.quick:
            return self
        return replace(self, hat_epochs=5, retrain_epochs=3, stuck_retrain_epochs=3, temperatures_c=(25.0, 100.0))


@dataclass
class _Context:
    network: TrainedNetwork
    dataset: Dataset  # with a validation part
    config: ComparisonConfig
    engine: Any
    cache: dict = field(default_factory=dict)


class Accuracy(float):
    """A test accuracy that carries its evidence: the validation accuracy (for choosing) and the per-image
    test correctness (for intervals and paired comparisons)."""

    validation: float
    correct: np.ndarray

    def __new__(cls, correct: np.ndarray, validation: float) -> "Accuracy":
        correct = np.asarray(correct, dtype=bool)
        obj = super().__new__(cls, float(correct.mean()))
        obj.correct, obj.validation = correct, float(validation)
        return obj


def _split(ctx: _Context, predictions: np.ndarray) -> Accuracy:
    """Predictions on the validation then the test images as an ``Accuracy``."""
    x_val, y_val = ctx.dataset.validation()
    n = len(y_val)
    return Accuracy(np.asarray(predictions[n:]) == ctx.dataset.y_test, float(np.mean(predictions[:n] == y_val)))


def _evaluate(ctx: _Context, circuit: Circuit, seed: int = 0,
              read_noise: Optional[ReadNoiseModel] = None) -> tuple[Accuracy, float]:
    """Accuracy (test, with validation) and array energy per inference (J) on the test images."""
    x_val, _ = ctx.dataset.validation()
    x = to_voltages(np.concatenate([x_val, ctx.dataset.x_test]), circuit.input_scale_v)
    result = simulate(circuit, x, engine=ctx.engine, read_noise=read_noise, seed=seed, return_power=True)
    energy = energy_per_inference_j(result, ctx.config.read_time_s)[len(x_val):]
    return _split(ctx, np.argmax(result.outputs_v, axis=1)), float(energy.mean())


def _hat_network(ctx: _Context, sigma: float, temperature: bool) -> TrainedNetwork:
    """A hardware-aware network (cached on disk next to the default network)."""

    cfg = ctx.config.effective()
    key = f"hat_s{sigma:g}_t{int(temperature)}_e{cfg.hat_epochs}_seed{cfg.seed}"
    if key in ctx.cache:
        return ctx.cache[key]
    path = cache_dir() / f"{key}_{'-'.join(map(str, ctx.network.config.widths))}.pt"
    try:
        net = load_network(path, ctx.network.config.widths)
    except (FileNotFoundError, ValueError):
        noise = HardwareNoise(sigma=sigma, temperature_factor=ReRAMThermalModel().factor if temperature else None,
                              temperature_range_c=(min(cfg.temperatures_c), max(cfg.temperatures_c)), seed=cfg.seed)
        net = train_hardware_aware(ctx.dataset, noise, replace(ctx.network.config, epochs=cfg.hat_epochs))
        if not cfg.quick:
            net.save(path)
    ctx.cache[key] = net
    return net


# ------------------------------------------------------------------ temperature


def _temperature_sweep(ctx: _Context, circuit: Circuit, tracking: bool = False,
                       corrector: Optional[Any] = None) -> dict:

    cfg = ctx.config.effective()
    accs, energy = [], math.nan
    for t in cfg.temperatures_c:
        spec = parse_imperfections([{"kind": "temperature", "temperature_c": t},
                                    {"kind": "read_noise", "relative_sigma": cfg.read_noise_sigma, "group_size": 20}])
        hot, _ = apply_imperfections(circuit, spec, seed=cfg.seed)
        if tracking:
            hot = track_temperature(circuit, hot, t)
        if corrector is not None:
            acc = _corrected_accuracy(ctx, hot, corrector, spec.read_noise)
            _, e = _evaluate(ctx, hot, cfg.seed, spec.read_noise)
        else:
            acc, e = _evaluate(ctx, hot, cfg.seed, spec.read_noise)
        accs.append(acc)
        if t == cfg.temperatures_c[0]:
            energy = e
    worst = min(accs)  # the worst temperature on test is what is reported; the choice reads the worst on validation
    reported = Accuracy(worst.correct, min(a.validation for a in accs))
    return {"accuracy": reported, "accuracy_25c": float(accs[0]), "energy_j": energy,
            "drop_points": 100 * (float(accs[0]) - float(worst)),
            "detail": "worst of " + ", ".join(f"{t:g}C {a:.1%}" for t, a in zip(cfg.temperatures_c, accs))}


def _measure(ctx: _Context, circuit: Circuit, read_noise: Optional[ReadNoiseModel] = None) -> ChipVoltages:
    """A chip's voltages on the training images and, as its held-out part, the validation then the test images."""
    x_val, _ = ctx.dataset.validation()
    x = to_voltages(np.concatenate([ctx.dataset.x_train, x_val, ctx.dataset.x_test]), circuit.input_scale_v)
    result = simulate(circuit, x, engine=ctx.engine, read_noise=read_noise, seed=ctx.config.seed, return_hidden=True)
    n = len(ctx.dataset.y_train)
    hidden = result.hidden_v or []
    return ChipVoltages(result.outputs_v[:n], result.outputs_v[n:], tuple(h[:n] for h in hidden),
                        tuple(h[n:] for h in hidden))


def _corrected_accuracy(ctx: _Context, circuit: Circuit, corrector: Any,
                        read_noise: Optional[ReadNoiseModel] = None) -> Accuracy:
    chip = _measure(ctx, circuit, read_noise)
    return _split(ctx, corrector.predict(chip.features(corrector.features, "test")))


def _fit_corrector(ctx: _Context, circuit: Circuit, read_noise: Optional[ReadNoiseModel] = None) -> Any:
    corrector = MLPCorrector(hidden=8, seed=ctx.config.seed)
    chip = _measure(ctx, circuit, read_noise)
    corrector.fit(chip.features(corrector.features, "train"), ctx.dataset.y_train, n_classes=ctx.dataset.n_classes)
    return corrector


def _temperature(ctx: _Context, lever: str) -> dict:
    cfg = ctx.config.effective()
    base = map_network(ctx.network)
    low = replace(MappingConfig(), r_on_ohm=cfg.low_window[0], r_off_ohm=cfg.low_window[1])
    if lever == "none":
        return _temperature_sweep(ctx, base)
    if lever == "training":
        return _temperature_sweep(ctx, map_network(_hat_network(ctx, 0.0, True)))
    if lever == "states":
        out = _temperature_sweep(ctx, map_network(ctx.network, low))
        out["detail"] += f"; window {1e6 / cfg.low_window[1]:.3g}-{1e6 / cfg.low_window[0]:.3g} uS"
        return out
    if lever == "circuit":
        return _temperature_sweep(ctx, base, tracking=True)
    if lever == "corrector":
        noise = ReadNoiseModel(relative_sigma=cfg.read_noise_sigma, group_size=20)
        return _temperature_sweep(ctx, base, corrector=_fit_corrector(ctx, base, noise))
    if lever == "combined":
        plain = _temperature_sweep(ctx, map_network(ctx.network, low), tracking=True)
        plain["detail"] += "; low window + tracking feedback"
        hat = _temperature_sweep(ctx, map_network(_hat_network(ctx, 0.0, True), low), tracking=True)
        hat["detail"] += "; temperature-aware training + low window + tracking feedback"
        return _best([plain, hat])
    return {}


# ------------------------------------------------------------------ tuning error (1T1R)


def _tuning(ctx: _Context, lever: str) -> dict:
    cfg = ctx.config.effective()
    device = SwitchingDevice(threshold_variation=cfg.tuning_variation)
    wv = WriteVerifyConfig(tolerance=cfg.tuning_tolerance)

    def programmed(network: TrainedNetwork, config: MappingConfig = MappingConfig()) -> tuple[Circuit, dict]:
        return apply_write_verify(map_network(network, config), device, wv, np.random.default_rng(cfg.seed))

    if lever in ("none", "training", "corrector", "states", "circuit"):
        if lever == "training":
            # Errors spread uniformly inside +-tolerance: standard deviation tolerance / sqrt(3).
            net = _hat_network(ctx, cfg.tuning_tolerance / math.sqrt(3.0), False)
            circuit, rec = programmed(net)
        elif lever == "states":
            circuit, rec = programmed(ctx.network, replace(MappingConfig(), pair_encoding="balanced"))
        elif lever == "circuit":

            shared = map_shared_reference(ctx.network.weights, ctx.network.biases, MappingConfig())
            circuit, rec = apply_write_verify(shared, device, wv, np.random.default_rng(cfg.seed))
        else:
            circuit, rec = programmed(ctx.network)
        if lever == "corrector":
            acc = _corrected_accuracy(ctx, circuit, _fit_corrector(ctx, circuit))
            _, energy = _evaluate(ctx, circuit)
        else:
            acc, energy = _evaluate(ctx, circuit)
        return {"accuracy": acc, "energy_j": energy, "pulses_per_cell": rec["pulses_mean"],
                "detail": f"tolerance {cfg.tuning_tolerance:.0%}, rms error {rec['relative_error_rms']:.1%}"}
    if lever in ("tuning", "combined"):
        # The lever: the adaptive algorithm spends about the same pulses on half the tolerance.

        half = replace(wv, tolerance=cfg.tuning_tolerance / 2)

        def adaptive(network: TrainedNetwork, correct: bool, what: str) -> dict:
            circuit, rec = program_circuit_1t1r(map_network(network), device, half, np.random.default_rng(cfg.seed))
            acc, energy = _evaluate(ctx, circuit)
            if correct:
                acc = _corrected_accuracy(ctx, circuit, _fit_corrector(ctx, circuit))
            return {"accuracy": acc, "energy_j": energy, "pulses_per_cell": rec["pulses_mean"],
                    "detail": f"{what} at {half.tolerance:.0%} tolerance, rms error {rec['relative_error_rms']:.1%}"}

        if lever == "tuning":
            return adaptive(ctx.network, False, "adaptive write-verify")
        return _best([adaptive(ctx.network, True, "adaptive write-verify + corrector"),
                      adaptive(_hat_network(ctx, half.tolerance / math.sqrt(3.0), False), False,
                               "noise-aware training + adaptive write-verify")])
    return {}


# ------------------------------------------------------------------ passive threshold variation


def _threshold(ctx: _Context, lever: str) -> dict:
    cfg = ctx.config.effective()
    device = SwitchingDevice(threshold_variation=cfg.threshold_variation)
    wv = WriteVerifyConfig()
    base = map_network(ctx.network)
    rng = np.random.default_rng(cfg.seed)
    if lever in ("none", "corrector"):
        circuit, rec = apply_passive_programming(base, device, wv, rng, scheme="v/2")
        if lever == "corrector":
            acc = _corrected_accuracy(ctx, circuit, _fit_corrector(ctx, circuit))
            _, energy = _evaluate(ctx, circuit)
        else:
            acc, energy = _evaluate(ctx, circuit)
        return {"accuracy": acc, "energy_j": energy, "pulses_per_cell": rec["pulses_mean"],
                "detail": f"basic V/2, {rec['out_of_tolerance']} cells off target"}
    if lever == "tuning":

        circuit, rec = apply_ordered_programming(base, device, wv, rng, scheme="v/2")
        acc, energy = _evaluate(ctx, circuit)
        return {"accuracy": acc, "energy_j": energy, "pulses_per_cell": rec["pulses_mean"],
                "detail": f"ordered V/2, {rec['out_of_tolerance']} cells off target"}
    if lever in ("training", "combined"):

        retrain = RetrainConfig(epochs=cfg.retrain_epochs, batch_size=256, learning_rate=5e-3, change_weight=0.3,
                                seed=cfg.seed)
        circuit, rec = program_with_retraining(base, ctx.dataset, device, wv, rng, scheme="v/2", retrain=retrain,
                                               iterations=1 if lever == "training" else 2)
        acc, energy = _evaluate(ctx, circuit)
        touch = "1 touch-up" if lever == "training" else "2 touch-ups"
        plain = {"accuracy": acc, "energy_j": energy, "pulses_per_cell": rec["pulses_mean"],
                 "detail": f"ordered V/2 + retraining around missed cells, {touch}, "
                           f"{rec['out_of_tolerance']} cells off target"}
        if lever == "training":
            return plain
        corrected = dict(plain, accuracy=_corrected_accuracy(ctx, circuit, _fit_corrector(ctx, circuit)),
                         detail=plain["detail"] + " + corrector")
        return _best([plain, corrected])
    return {}


# ------------------------------------------------------------------ stuck-at


def _stuck(ctx: _Context, lever: str, pattern: str) -> dict:

    cfg = ctx.config.effective()
    if pattern == "random":
        defect = Defect(pattern="random", layers="all", kind="mix", params={"p": cfg.stuck_probability})
    else:
        defect = Defect(pattern="column", layers="all", kind="mix", params={"fraction": cfg.column_fraction})
    network = ctx.network
    base = map_network(network)
    chip, record = apply_defects(base, [defect], seed=cfg.seed)
    detail = f"{record.total_density:.2%} of cells stuck"
    if lever in ("none", "tuning", "states"):
        if lever != "none":
            return {}
        acc, energy = _evaluate(ctx, chip)
        return {"accuracy": acc, "energy_j": energy, "detail": detail}
    if lever == "circuit":

        shared = map_shared_reference(network.weights, network.biases, MappingConfig())
        chip, record = apply_defects(shared, [defect], seed=cfg.seed)
        acc, energy = _evaluate(ctx, chip)
        return {"accuracy": acc, "energy_j": energy, "detail": f"shared reference; {record.total_density:.2%} stuck"}
    if lever == "corrector":
        acc = _corrected_accuracy(ctx, chip, _fit_corrector(ctx, chip))
        _, energy = _evaluate(ctx, chip)
        return {"accuracy": acc, "energy_j": energy, "detail": detail}
    retrained = retrain_defect_aware(chip, record, ctx.dataset,
                                     RetrainConfig(epochs=cfg.stuck_retrain_epochs, batch_size=256, learning_rate=2e-2,
                                                   seed=cfg.seed))
    if lever == "training":
        acc, energy = _evaluate(ctx, retrained)
        return {"accuracy": acc, "energy_j": energy, "detail": detail + "; defect-aware retraining"}
    if lever == "combined":
        acc, energy = _evaluate(ctx, retrained)
        corrected = _corrected_accuracy(ctx, retrained, _fit_corrector(ctx, retrained))
        return _best([{"accuracy": acc, "energy_j": energy, "detail": detail + "; defect-aware retraining"},
                      {"accuracy": corrected, "energy_j": energy, "detail": detail + "; retraining + corrector"}])
    return {}


def _best(options: list[dict]) -> dict:
    """The option most accurate on the **validation** images (ties: the least energy); the others are named.

    The test accuracy plays no part in the choice; the row then reports the chosen option's test accuracy.
    """
    best = max(options, key=lambda o: (o["accuracy"].validation, -o["energy_j"]))
    others = [f"{o['detail'].split(';')[-1].strip()}: validation {o['accuracy'].validation:.1%}"
              for o in options if o is not best]
    return dict(best, detail=best["detail"] + (f" (chosen on validation, {best['accuracy'].validation:.1%}; also "
                                               "tried " + "; ".join(others) + ")" if others else ""))


_RUNNERS: dict[str, Callable[[_Context, str], dict]] = {
    "temperature": _temperature,
    "tuning": _tuning,
    "threshold": _threshold,
    "stuck-random": lambda ctx, lever: _stuck(ctx, lever, "random"),
    "stuck-column": lambda ctx, lever: _stuck(ctx, lever, "column"),
}


def run_comparison(network: TrainedNetwork, dataset: Dataset, scenarios: Iterable[str] = SCENARIOS,
                   levers: Iterable[str] = LEVERS, config: ComparisonConfig = ComparisonConfig(),
                   progress: Optional[Callable[[str, str], None]] = None) -> pd.DataFrame:
    """Run every (scenario, lever) pair; one row each (levers that do not apply to a scenario are skipped)."""
    scenarios, levers = list(scenarios), list(levers)
    for s in scenarios:
        if s not in SCENARIOS:
            raise ValueError(f"scenario {s!r} is not accepted: choose from {list(SCENARIOS)}")
    for lever in levers:
        if lever not in LEVERS:
            raise ValueError(f"lever {lever!r} is not accepted: choose from {list(LEVERS)}")
    if not dataset.has_validation:
        dataset = split_validation(dataset, config.n_validation, config.seed)
    ctx = _Context(network=network, dataset=dataset, config=config, engine=resolve_engine(config.engine))
    rows = []
    baseline: dict[str, np.ndarray] = {}
    for scenario in scenarios:
        for lever in levers:
            if progress is not None:
                progress(scenario, lever)
            start = time.perf_counter()
            out = _RUNNERS[scenario](ctx, lever)
            if not out:
                continue
            acc: Accuracy = out.pop("accuracy")
            if lever == "none":
                baseline[scenario] = acc.correct
            rows.append({"scenario": scenario, "lever": lever, **_accuracy_columns(acc, baseline.get(scenario)),
                         **out, "elapsed_s": time.perf_counter() - start})
    return pd.DataFrame(rows)


def _accuracy_columns(acc: Accuracy, baseline: Optional[np.ndarray]) -> dict[str, Any]:
    """Test accuracy, its Wilson interval and count, the validation accuracy, and the paired gain over ``none``."""
    k, n = int(acc.correct.sum()), int(acc.correct.size)
    low, high = wilson_interval(k, n)
    cols: dict[str, Any] = {"accuracy": float(acc), "accuracy_ci_low": low, "accuracy_ci_high": high,
                            "n_correct": k, "n_test": n, "accuracy_validation": acc.validation}
    if baseline is not None:
        gain, (g_low, g_high) = paired_bootstrap_ci(acc.correct, baseline)
        cols.update({"gain_points": 100 * gain, "gain_ci_low": 100 * g_low, "gain_ci_high": 100 * g_high,
                     "gain_mcnemar_p": mcnemar_exact(acc.correct, baseline)})
    return cols


def mitigation_table(results: Union[pd.DataFrame, str, Path, None] = None, **kwargs: Any) -> pd.DataFrame:
    """The comparison as a tidy table (scenario, lever, accuracy, energy ...), for docs and the report.

    ``results``: a table from ``run_comparison``, or a CSV/Parquet file of one (``examples/
    mitigation_comparison.py`` writes ``mitigation.csv``); ``None`` runs ``run_comparison(**kwargs)``.
    """
    if results is None:
        return run_comparison(**kwargs)
    if isinstance(results, pd.DataFrame):
        return results.copy()
    path = Path(results)
    if not path.is_file():
        raise FileNotFoundError(f"no comparison results at {str(path)!r}; run examples/mitigation_comparison.py first")
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


_HEADER = ["scenario", "lever", "test accuracy [95% CI]", "validation", "paired gain (pts) [95% CI]",
           "energy (pJ/inf.)", "pulses/cell", "how"]


def _cells(r: pd.Series) -> list[str]:
    """One row's cells: accuracy with its Wilson interval, the paired gain over ``none`` with its interval."""
    def given(key: str) -> bool:
        v = r.get(key, math.nan)
        return v is not None and not (isinstance(v, float) and math.isnan(v))

    acc = f"{r['accuracy']:.1%}"
    if given("accuracy_ci_low"):
        acc += f" [{r['accuracy_ci_low'] * 100:.1f}, {r['accuracy_ci_high'] * 100:.1f}]"
    gain = f"{r['gain_points']:+.1f}" if given("gain_points") else ""
    if given("gain_ci_low"):
        gain += f" [{r['gain_ci_low']:+.1f}, {r['gain_ci_high']:+.1f}]"
    return [str(r["scenario"]), str(r["lever"]), acc,
            f"{r['accuracy_validation']:.1%}" if given("accuracy_validation") else "", gain,
            f"{r['energy_j'] * 1e12:.3g}", f"{r['pulses_per_cell']:.1f}" if given("pulses_per_cell") else "",
            str(r.get("detail", ""))]


def to_markdown(table: pd.DataFrame) -> str:
    """The comparison as a Markdown table (accuracy in % with its interval, paired gain in points, energy in pJ)."""
    lines = ["| " + " | ".join(_HEADER) + " |", "|" + "---|" * len(_HEADER)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for _, r in table.iterrows()]
    return "\n".join(lines)


def to_html(table: pd.DataFrame) -> str:
    """The comparison as an HTML table (same columns and formats as ``to_markdown``), for the report."""
    rows = ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(r)) + "</tr>" for _, r in table.iterrows()]
    head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in _HEADER) + "</tr>"
    return f"<table class='mitigation'>{head}{''.join(rows)}</table>"
