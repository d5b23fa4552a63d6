"""What the ``neurodtco imperfect`` command does, as plain functions a notebook can call too."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import yaml

from ..circuit import Circuit
from ..stats import bootstrap_ci, with_wilson
from .energy import evaluate
from .spec import Imperfection, apply_imperfections, parse_imperfections


def specs_from_options(
    spec_file: Optional[Path] = None,
    temperature_c: Optional[float] = None,
    technology: str = "reram",
    read_noise: Optional[float] = None,
    read_time_s: float = 1e-7,
    tuning_tolerance: Optional[float] = None,
    passive_scheme: Optional[str] = None,
    threshold_variation: float = 0.0,
    max_pulses: int = 100,
    drift_time_s: Optional[float] = None,
    drift_nu: float = 0.05,
) -> list[dict]:
    """The imperfection list the CLI options describe (file entries first, then in physical order)."""
    specs = load_spec_file(spec_file) if spec_file is not None else []
    if passive_scheme is not None:
        specs.append({"kind": "passive_programming", "scheme": passive_scheme, "threshold_variation": threshold_variation,
                      "tolerance": 0.02 if tuning_tolerance is None else tuning_tolerance, "max_pulses": max_pulses})
    elif tuning_tolerance is not None:
        specs.append({"kind": "write_verify", "tolerance": tuning_tolerance, "threshold_variation": threshold_variation,
                      "max_pulses": max_pulses})
    elif threshold_variation:
        raise ValueError(f"--threshold-variation {threshold_variation} needs a programming model: add "
                         "--passive-scheme v/2 (passive crossbar) or --tuning-tolerance TOL (write-verify)")
    if drift_time_s is not None:
        specs.append({"kind": "drift", "time_s": drift_time_s, "nu": drift_nu})
    if temperature_c is not None:
        specs.append({"kind": "temperature", "temperature_c": temperature_c, "technology": technology})
    if read_noise is not None:
        specs.append({"kind": "read_noise", "relative_sigma": read_noise, "read_time_s": read_time_s})
    return specs


def load_spec_file(path: Path) -> list[dict]:
    """A YAML or JSON list of imperfection dicts (a single dict is accepted as a list of one)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"imperfection spec file {str(path)!r} does not exist")
    text = path.read_text()
    if path.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        data = yaml.safe_load(text)
    if isinstance(data, dict) and "imperfections" in data:
        data = data["imperfections"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise ValueError(f"{str(path)!r} must hold a list of dicts with a 'kind' key, e.g. "
                         "[{kind: temperature, temperature_c: 85}]")
    return data


def summarize_record(record: dict) -> Any:
    """The JSON-friendly scalars of a record (per-layer details and arrays dropped)."""
    if record.get("kind") == "sequence":
        return [summarize_record(item) for item in record["items"]]
    return {k: v for k, v in record.items() if isinstance(v, (str, int, float, bool)) or v is None}


def run_imperfect(
    circuit: Circuit,
    inputs_v: np.ndarray,
    labels: np.ndarray,
    specs: Sequence[Mapping[str, Any] | Imperfection],
    engine: str = "nodal",
    repeats: int = 1,
    seed: int = 0,
    read_time_s: float = 1e-7,
) -> dict:
    """Accuracy and arrays' energy per inference with and without the imperfections, over seeds."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats={repeats!r} is not accepted: expected an integer >= 1")
    items = parse_imperfections(list(specs))
    start = time.perf_counter()
    clean = evaluate(circuit, inputs_v, labels, engine=engine, read_time_s=read_time_s)
    t_clean = time.perf_counter() - start
    runs, records = [], []
    start = time.perf_counter()
    for k in range(repeats):
        imperfect, record = apply_imperfections(circuit, items, seed=seed + k)
        runs.append(evaluate(imperfect, inputs_v, labels, engine=engine, seed=seed + k, read_time_s=read_time_s,
                             read_noise=items.read_noise))
        records.append(summarize_record(record))
    t_imperfect = time.perf_counter() - start
    acc = np.array([r["accuracy"] for r in runs])
    energy = np.array([r["energy_per_inference_j"] for r in runs])
    payload = {
        "accuracy": float(acc.mean()),
        "accuracy_std": float(acc.std()),
        "accuracy_min": float(acc.min()),
        "accuracies": acc.tolist(),
        "accuracy_without_imperfections": clean["accuracy"],
    }
    # Each accuracy is judged on the same images: Wilson over them (a mean over draws is a fractional count).
    with_wilson(payload, ["accuracy", "accuracy_min", "accuracy_without_imperfections"], len(labels))
    return {
        **payload,
        # The spread of the draws alone (the images held fixed): a bootstrap over the seeds.
        "accuracy_draws_ci": list(bootstrap_ci(acc)),
        "energy_per_inference_j": float(energy.mean()),
        "energy_without_imperfections_j": clean["energy_per_inference_j"],
        "read_time_s": read_time_s,
        "engine": engine,
        "repeats": repeats,
        "seeds": list(range(seed, seed + repeats)),
        "imperfections": [dict(s) if isinstance(s, Mapping) else s.to_dict() for s in specs],
        "records": records,
        "n_test": int(len(labels)),
        "timings": {"clean_s": t_clean, "imperfect_s": t_imperfect},
    }


__all__ = ["specs_from_options", "load_spec_file", "summarize_record", "run_imperfect"]
