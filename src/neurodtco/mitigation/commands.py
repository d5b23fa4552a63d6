"""What ``neurodtco mitigate LEVER`` does, as plain functions returning JSON-friendly dicts."""

from __future__ import annotations

import math
import time
from typing import Any, Optional, Sequence

import numpy as np

from ..data import Dataset
from ..defects.commands import apply_option_defects
from ..imperfections import SwitchingDevice, WriteVerifyConfig, apply_passive_programming
from ..mapping import MappingConfig, map_network
from ..network import TrainedNetwork
from .circuit_levers import sweep_circuit
from ..stats import paired_accuracy_comparison, wilson_interval, with_ci, with_wilson
from .common import circuit_accuracy
from .compare import LEVERS, SCENARIOS, ComparisonConfig, run_comparison
from .states import choose_memory_states, evaluate_candidates, window_grid
from .tolerance import defect_tolerance, single_fault_tolerance, tolerance_thresholds
from .training import RetrainConfig, retrain_defect_aware
from .tuning import apply_ordered_programming, program_with_retraining

MITIGATE_LEVERS = ("retrain", "tolerance", "tune", "states", "circuit", "compare")


def mitigate_retrain(net: TrainedNetwork, dataset: Dataset, config: MappingConfig, defects: Sequence[str],
                     defect_seed: int, epochs: int, engine: str) -> dict:
    """Defect-aware retraining of one defective chip: accuracy healthy, before and after."""

    healthy = map_network(net, config)
    chip, record = apply_option_defects(healthy, list(defects), None, defect_seed)
    if record is None:
        raise ValueError("no defect given: add --defect PATTERN:key=value,... (e.g. random:p=0.01,kind=mix)")
    start = time.perf_counter()
    fixed = retrain_defect_aware(chip, record, dataset, RetrainConfig(epochs=epochs, batch_size=256,
                                                                      learning_rate=2e-2))
    elapsed = time.perf_counter() - start
    correct = {name: circuit_accuracy(c, dataset, engine, per_image=True)
               for name, c in (("healthy", healthy), ("before", chip), ("after", fixed))}
    out = {f"accuracy_{name}": float(c.mean()) for name, c in correct.items()}
    with_wilson(out, list(out), len(dataset.y_test))
    out.update(_paired(correct["after"], correct["before"]))
    return _json_safe({**out, "n_test": len(dataset.y_test), "stuck_cells": int(sum(record.n_hit)),
                       "defect_density": record.density, "defects": [d.to_string() for d in record.requested],
                       "timings": {"retrain_s": elapsed}})


def mitigate_tolerance(net: TrainedNetwork, dataset: Dataset, config: MappingConfig, densities: Sequence[float],
                       instances: int, kind: str, epochs: int, engine: str, seed: int) -> dict:
    """Defect tolerance with and without retraining on one density grid (random stuck cells)."""

    circuit = map_network(net, config)
    plain = defect_tolerance(circuit, dataset, densities, kind=kind, instances=instances, engine=engine, seed=seed)
    fixed = defect_tolerance(circuit, dataset, densities, kind=kind, instances=instances, engine=engine, seed=seed,
                             retrain=RetrainConfig(epochs=epochs, batch_size=256, learning_rate=2e-2))
    on_fraction = {"on": 1.0, "off": 0.0}.get(kind, 0.5)
    single = single_fault_tolerance(circuit, dataset, on_fraction=on_fraction, engine=engine)
    ratio = fixed.tolerance_density / single.tolerance_density
    n_test = len(dataset.y_test)
    out = with_wilson({"accuracy_healthy": plain.healthy_accuracy}, ["accuracy_healthy"], n_test)
    for name, result in (("plain", plain), ("retrained", fixed)):
        # Means over instances with a bootstrap interval over them (one instance: that chip's Wilson interval).
        table = result.mean_accuracy_ci()
        out[f"accuracy_{name}"] = table["mean"].tolist()
        out[f"accuracy_{name}_ci"] = table[["low", "high"]].values.tolist()
        # Measured crossings at 1, 2 and 5 points below the healthy chip, each with its interval over instances.
        out[f"thresholds_{name}"] = [
            {"drop_points": float(drop), "density": _finite(row["density"]),
             "density_ci": [_finite(row["low"]), _finite(row["high"])]}
            for drop, row in tolerance_thresholds(result).iterrows()]
    return _json_safe({**out, "densities": list(map(float, sorted(densities))), "instances": instances,
                       "n_test": n_test, "tolerance_plain": _finite(plain.tolerance_density),
                       "tolerance_plain_single_fault": _finite(single.tolerance_density),
                       "tolerance_retrained": _finite(fixed.tolerance_density), "ratio_vs_single_fault": _finite(ratio)})


def mitigate_tune(net: TrainedNetwork, dataset: Dataset, config: MappingConfig, threshold_variation: float,
                  scheme: str, retrain: bool, engine: str, seed: int) -> dict:
    """Basic vs ordered (and optionally retrained) passive programming of every array."""

    circuit = map_network(net, config)
    device, wv = SwitchingDevice(threshold_variation=threshold_variation), WriteVerifyConfig()
    ideal = circuit_accuracy(circuit, dataset, engine, per_image=True)
    out: dict[str, Any] = with_wilson({"accuracy_ideal_programming": float(ideal.mean())},
                                      ["accuracy_ideal_programming"], ideal.size)
    out.update(scheme=scheme, threshold_variation=threshold_variation, n_test=int(ideal.size))
    runs = [("basic", lambda: apply_passive_programming(circuit, device, wv, np.random.default_rng(seed), scheme=scheme)),
            ("ordered", lambda: apply_ordered_programming(circuit, device, wv, np.random.default_rng(seed), scheme=scheme))]
    if retrain:
        runs.append(("ordered_retrained", lambda: program_with_retraining(circuit, dataset, device, wv,
                                                                          np.random.default_rng(seed), scheme=scheme)))
    for name, fn in runs:
        prog, rec = fn()
        correct = circuit_accuracy(prog, dataset, engine, per_image=True)
        # The paired difference is against ideal programming of the same network on the same images.
        out[name] = {**with_wilson({"accuracy": float(correct.mean())}, ["accuracy"], correct.size),
                     **_paired(correct, ideal), "pulses_per_cell": rec["pulses_mean"],
                     "off_target": rec["out_of_tolerance"]}
    return _json_safe(out)


def mitigate_states(net: TrainedNetwork, dataset: Dataset, config: MappingConfig, temperatures: Sequence[float],
                    engine: str) -> dict:
    """The memory-state choice over a small window grid (fixed and tracking feedback)."""

    cands = window_grid(r_on_ohm=(config.r_on_ohm, config.r_on_ohm * 10, config.r_on_ohm * 100),
                        ratios=(config.r_off_ohm / config.r_on_ohm,), feedbacks=("fixed", "tracking"))
    table = evaluate_candidates(net, dataset, cands, temperatures_c=temperatures, base=config, engine=engine,
                                read_noise={"kind": "read_noise", "relative_sigma": 0.01, "group_size": 20})
    choice = choose_memory_states(table, cands[0].label)
    best = choice[choice["meets_bound"]].iloc[0]
    # Chosen on the validation images (choose_memory_states); the test numbers only report the choice.
    return _json_safe({"choice": best["candidate"], "chosen_on": "validation",
            "energy_saving": float(best["energy_saving"]),
            "worst_accuracy": float(best["worst_accuracy"]), "worst_accuracy_ci": list(best["worst_accuracy_ci"]),
            "accuracy_cost_points": float(100 * best["accuracy_cost"]),
            "candidates": choice[["candidate", "energy_j", "worst_accuracy", "worst_accuracy_ci", "worst_validation",
                                  "meets_bound"]].to_dict(orient="records")})


def mitigate_circuit(net: TrainedNetwork, dataset: Dataset, config: MappingConfig, arrangements: Sequence[str],
                     temperatures: Sequence[float], engine: str) -> dict:
    """Differential vs shared-reference arrangements at the given circuit settings and temperatures."""

    table = sweep_circuit(net, dataset, arrangements=arrangements, v_read_v=(config.v_read_v,),
                          open_loop_gain=(config.open_loop_gain,), wire_ohm=(config.r_word_ohm,),
                          temperatures_c=temperatures, base=config, engine=engine)
    n_test = len(dataset.y_test)
    rows = [with_ci("accuracy", row["accuracy"], wilson_interval(row["accuracy"] * n_test, n_test), dict(row))
            for row in table.to_dict(orient="records")]
    return _json_safe({"rows": rows, "n_test": n_test})


def mitigate_compare(net: TrainedNetwork, dataset: Dataset, scenarios: Sequence[str], levers: Sequence[str],
                     quick: bool, engine: str, seed: int) -> dict:
    """The side-by-side comparison (``compare.run_comparison``) as rows."""

    table = run_comparison(net, dataset, scenarios=scenarios or SCENARIOS, levers=levers or LEVERS,
                           config=ComparisonConfig(engine=engine, seed=seed, quick=quick))
    return _json_safe({"rows": table.to_dict(orient="records"), "quick": quick})


def _paired(correct: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """``difference`` (points of accuracy) of ``correct`` over ``reference`` on the same images, its interval, McNemar's p."""
    cmp = paired_accuracy_comparison(correct, reference)
    return {"difference": cmp["difference"], "difference_ci": cmp["difference_ci"], "mcnemar_p": cmp["mcnemar_p"]}


def _finite(value: float) -> Optional[float]:
    """JSON has no NaN/inf: report them as None."""
    return float(value) if math.isfinite(value) else None


def _json_safe(value: Any) -> Any:
    """Replace NaN and infinities (not JSON) by None and NumPy scalars by Python ones, recursively."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value
