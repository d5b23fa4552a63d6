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
from .common import circuit_accuracy
from .compare import LEVERS, SCENARIOS, ComparisonConfig, run_comparison
from .states import choose_memory_states, evaluate_candidates, window_grid
from .tolerance import defect_tolerance, single_fault_tolerance
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
    return _json_safe({"accuracy_healthy": circuit_accuracy(healthy, dataset, engine),
            "accuracy_before": circuit_accuracy(chip, dataset, engine),
            "accuracy_after": circuit_accuracy(fixed, dataset, engine),
            "stuck_cells": int(sum(record.n_hit)), "defect_density": record.density,
            "defects": [d.to_string() for d in record.requested], "timings": {"retrain_s": elapsed}})


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
    return _json_safe({"accuracy_healthy": plain.healthy_accuracy, "densities": list(map(float, sorted(densities))),
            "accuracy_plain": plain.mean_accuracy().tolist(), "accuracy_retrained": fixed.mean_accuracy().tolist(),
            "tolerance_plain": _finite(plain.tolerance_density),
            "tolerance_plain_single_fault": _finite(single.tolerance_density),
            "tolerance_retrained": _finite(fixed.tolerance_density), "ratio_vs_single_fault": _finite(ratio)})


def mitigate_tune(net: TrainedNetwork, dataset: Dataset, config: MappingConfig, threshold_variation: float,
                  scheme: str, retrain: bool, engine: str, seed: int) -> dict:
    """Basic vs ordered (and optionally retrained) passive programming of every array."""

    circuit = map_network(net, config)
    device, wv = SwitchingDevice(threshold_variation=threshold_variation), WriteVerifyConfig()
    out: dict[str, Any] = {"accuracy_ideal_programming": circuit_accuracy(circuit, dataset, engine),
                           "scheme": scheme, "threshold_variation": threshold_variation}
    runs = [("basic", lambda: apply_passive_programming(circuit, device, wv, np.random.default_rng(seed), scheme=scheme)),
            ("ordered", lambda: apply_ordered_programming(circuit, device, wv, np.random.default_rng(seed), scheme=scheme))]
    if retrain:
        runs.append(("ordered_retrained", lambda: program_with_retraining(circuit, dataset, device, wv,
                                                                          np.random.default_rng(seed), scheme=scheme)))
    for name, fn in runs:
        prog, rec = fn()
        out[name] = {"accuracy": circuit_accuracy(prog, dataset, engine), "pulses_per_cell": rec["pulses_mean"],
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
    return _json_safe({"rows": table.to_dict(orient="records")})


def mitigate_compare(net: TrainedNetwork, dataset: Dataset, scenarios: Sequence[str], levers: Sequence[str],
                     quick: bool, engine: str, seed: int) -> dict:
    """The side-by-side comparison (``compare.run_comparison``) as rows."""

    table = run_comparison(net, dataset, scenarios=scenarios or SCENARIOS, levers=levers or LEVERS,
                           config=ComparisonConfig(engine=engine, seed=seed, quick=quick))
    return _json_safe({"rows": table.to_dict(orient="records"), "quick": quick})


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
