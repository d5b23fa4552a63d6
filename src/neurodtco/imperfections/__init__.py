"""Imperfections of real analog memories, selectable by a small dict (the study file's vocabulary).

``apply_imperfections(circuit, spec, seed) -> (circuit, record)`` is the one entry point the study
runner and the CLI use. ``spec`` is a dict with a ``kind`` key (or a list of such dicts, applied in
order); the other keys are the model's parameters:

* ``{kind: temperature, temperature_c: 85, technology: reram|eflash, ...}`` (``temperature.py``)
* ``{kind: read_noise, relative_sigma: 0.01, read_time_s: 1e-7, group_size: 1, ...}`` (``noise.py``):
  one frozen sample goes into the conductances (what an engine called directly sees); this
  package's ``simulate`` / ``evaluate`` resample it per inference group. In a list it is always
  applied last, since noise is drawn at read time, after every other change.
* ``{kind: write_verify, tolerance: 0.02, max_pulses: 100, threshold_variation: 0.1, ...}``
  (``programming.py``)
* ``{kind: passive_programming, threshold_variation: 0.25, scheme: v/2|v/3, ...}``
  (``programming.py``)
* ``{kind: drift, time_s: 86400, nu: 0.05, nu_sigma: 0.01}`` (``drift.py``)

Programming kinds take the circuit's conductances as targets, so put them before temperature
and drift in a list. Records hold JSON-friendly scalars at the top level and per-layer counts
under ``record["layers"]``; ``record_masks: true`` adds the cell maps (boolean arrays).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Callable, Mapping, Sequence, Union

import numpy as np

from ..circuit import Circuit
from ._common import kelvin, make_rng
from .drift import PowerLawDrift, apply_drift
from .energy import DEFAULT_READ_TIME_S, energy_per_inference_j, evaluate
from .noise import (ReadNoiseModel, attach_read_noise, clean_circuit, sample_read_noise, simulate,
                    simulate_with_read_noise)
from .programming import (ORDERS, SCHEMES, ProgrammingResult, SwitchingDevice, WriteVerifyConfig,
                          apply_passive_programming, apply_write_verify, program_passive, write_verify)
from .temperature import (TECHNOLOGIES, EFlashThermalModel, ReRAMThermalModel, WireThermalModel, apply_temperature,
                          thermal_model)

Spec = Union[Mapping[str, Any], Sequence[Mapping[str, Any]]]


def _names(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


def _take(params: dict, cls: type) -> dict:
    return {k: params.pop(k) for k in list(params) if k in _names(cls)}


def _reject_rest(kind: str, params: dict, accepted: set[str]) -> None:
    if params:
        raise ValueError(f"{kind}: unknown parameter(s) {sorted(params)}; accepted: {sorted(accepted)}")


Applier = Callable[[Circuit, np.random.Generator], tuple[Circuit, dict]]


def _temperature(params: dict) -> Applier:
    if "temperature_c" not in params:
        raise ValueError("temperature: temperature_c is required (degrees Celsius, e.g. 85)")
    temperature_c = params.pop("temperature_c")
    kelvin(temperature_c)
    technology = params.pop("technology", "reram")
    if technology not in TECHNOLOGIES:
        raise ValueError(f"temperature: technology={technology!r} is not accepted: choose one of {list(TECHNOLOGIES)}")
    cell_cls = ReRAMThermalModel if technology == "reram" else EFlashThermalModel
    wire_tcr = params.pop("wire_tcr_per_k", WireThermalModel().tcr_per_k)
    feedback = params.pop("feedback_tcr_per_k", 0.0)
    accepted = _names(cell_cls) | {"temperature_c", "technology", "wire_tcr_per_k", "feedback_tcr_per_k"}
    cell_params = _take(params, cell_cls)
    _reject_rest("temperature", params, accepted)
    cell_model = thermal_model(technology, **cell_params)
    wire = WireThermalModel(tcr_per_k=wire_tcr, t_ref_c=cell_model.t_ref_c)
    return lambda circuit, rng: apply_temperature(circuit, temperature_c, cell_model, wire, feedback)


def _read_noise(params: dict) -> Applier:
    model_params = _take(params, ReadNoiseModel)
    _reject_rest("read_noise", params, _names(ReadNoiseModel))
    model = ReadNoiseModel(**model_params)
    return lambda circuit, rng: attach_read_noise(circuit, model, rng)


def _programming_parts(kind: str, params: dict, extra: set[str]) -> tuple[SwitchingDevice, WriteVerifyConfig, dict]:
    device = SwitchingDevice(**_take(params, SwitchingDevice))
    config = WriteVerifyConfig(**_take(params, WriteVerifyConfig))
    options = {k: params.pop(k) for k in list(params) if k in extra}
    _reject_rest(kind, params, _names(SwitchingDevice) | _names(WriteVerifyConfig) | extra)
    return device, config, options


def _write_verify(params: dict) -> Applier:
    device, config, options = _programming_parts("write_verify", params, {"record_masks"})
    masks = bool(options.get("record_masks", False))
    return lambda circuit, rng: apply_write_verify(circuit, device, config, rng, record_masks=masks)


def _passive(params: dict) -> Applier:
    device, config, options = _programming_parts("passive_programming", params,
                                                 {"scheme", "order", "passes", "record_masks"})
    scheme = str(options.get("scheme", "v/2")).lower()
    order, passes = options.get("order", "row-major"), options.get("passes", 1)
    if scheme not in SCHEMES:
        raise ValueError(f"passive_programming: scheme={scheme!r} is not accepted: choose one of {list(SCHEMES)}")
    if order not in ORDERS:
        raise ValueError(f"passive_programming: order={order!r} is not accepted: choose one of {list(ORDERS)}")
    if isinstance(passes, bool) or not isinstance(passes, int) or passes < 1:
        raise ValueError(f"passive_programming: passes={passes!r} is not accepted: expected an integer >= 1")
    masks = bool(options.get("record_masks", False))
    return lambda circuit, rng: apply_passive_programming(circuit, device, config, rng, scheme=scheme, order=order,
                                                          passes=passes, record_masks=masks)


def _drift(params: dict) -> Applier:
    if "time_s" not in params:
        raise ValueError("drift: time_s is required (seconds after programming, e.g. 86400)")
    model = PowerLawDrift(**_take(params, PowerLawDrift))
    _reject_rest("drift", params, _names(PowerLawDrift))
    return lambda circuit, rng: apply_drift(circuit, model, rng)


KINDS: dict[str, Callable[[dict], Applier]] = {
    "temperature": _temperature,
    "read_noise": _read_noise,
    "write_verify": _write_verify,
    "passive_programming": _passive,
    "drift": _drift,
}


def imperfection_kinds() -> list[str]:
    """Values accepted for a spec's ``kind``."""
    return list(KINDS)


def apply_imperfections(circuit: Circuit, spec: Spec, seed: int = 0) -> tuple[Circuit, dict]:
    """Apply one imperfection (a dict with ``kind``) or a list of them in order; seeded."""
    if isinstance(seed, (bool, float)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} is not accepted: expected a non-negative integer")
    if isinstance(spec, Mapping):
        return _apply_one(circuit, spec, make_rng(int(seed)))
    if isinstance(spec, (list, tuple)):
        validate_imperfections(spec)  # refuse a bad item before spending time on the good ones
        records: list[dict] = [{}] * len(spec)
        # Read noise is drawn at read time: after every other imperfection, whatever the list order.
        ordered = sorted(range(len(spec)), key=lambda k: spec[k].get("kind") == "read_noise")
        for index in ordered:
            # One independent stream per list item keeps each model's draws stable when others are added.
            circuit, record = _apply_one(circuit, spec[index], np.random.default_rng([int(seed), index]))
            records[index] = record
        return circuit, {"kind": "sequence", "items": records}
    raise ValueError(f"an imperfection spec must be a dict with a 'kind' key or a list of them; got {type(spec).__name__}")


def validate_imperfections(spec: Spec) -> list[dict]:
    """Check a spec (or a list) without a circuit; returns it as a list of plain dicts."""
    items = [spec] if isinstance(spec, Mapping) else spec
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"an imperfection spec must be a dict with a 'kind' key or a list of them; got {type(spec).__name__}")
    for index, item in enumerate(items):
        try:
            _parse(item)
        except ValueError as exc:
            raise ValueError(f"imperfection {index}: {exc}") from None
    return [dict(item) for item in items]


def _parse(spec: Mapping[str, Any]) -> Applier:
    if not isinstance(spec, Mapping) or "kind" not in spec:
        raise ValueError(f"an imperfection spec needs a 'kind' key (one of {imperfection_kinds()}); got {spec!r}")
    params = dict(spec)
    kind = params.pop("kind")
    if kind not in KINDS:
        raise ValueError(f"unknown imperfection kind {kind!r}; choose one of {imperfection_kinds()}")
    return KINDS[kind](params)


def _apply_one(circuit: Circuit, spec: Mapping[str, Any], rng: np.random.Generator) -> tuple[Circuit, dict]:
    return _parse(spec)(circuit, rng)


__all__ = [
    "apply_imperfections", "validate_imperfections", "imperfection_kinds", "KINDS",
    "ReRAMThermalModel", "EFlashThermalModel", "WireThermalModel", "thermal_model", "apply_temperature",
    "ReadNoiseModel", "attach_read_noise", "clean_circuit", "sample_read_noise", "simulate_with_read_noise", "simulate",
    "SwitchingDevice", "WriteVerifyConfig", "ProgrammingResult", "write_verify", "program_passive",
    "apply_write_verify", "apply_passive_programming", "SCHEMES", "ORDERS",
    "PowerLawDrift", "apply_drift",
    "DEFAULT_READ_TIME_S", "energy_per_inference_j", "evaluate",
]
