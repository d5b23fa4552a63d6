"""Imperfections of real analog memories, selectable by a small dict (the study file's vocabulary).

``apply_imperfections(circuit, spec, seed) -> (circuit, record)`` is the one entry point the study
runner and the CLI use. ``spec`` is a dict with a ``kind`` key, a typed item, or a list of them
(applied in order). ``parse_imperfections(spec)`` turns the dicts into typed items once
(``spec.py``: ``Temperature``, ``ReadNoise``, ``WriteVerify``, ``PassiveProgramming``, ``Drift``),
each holding the model objects of its module; ``item.to_dict()`` gives the plain dict back.

* ``{kind: temperature, temperature_c: 85, technology: reram|eflash, ...}`` (``temperature.py``)
* ``{kind: read_noise, relative_sigma: 0.01, read_time_s: 1e-7, group_size: 1, ...}`` (``noise.py``):
  drawn at read time, so it does not change the circuit: ``parse_imperfections(spec).read_noise``
  is the model to simulate with (``neurodtco.simulate(..., read_noise=...)``, ``evaluate``). Its
  record, always made after every other item's, states the noise level the cells are read with.
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

from .drift import PowerLawDrift, apply_drift
from .energy import DEFAULT_READ_TIME_S, energy_per_inference_j, evaluate
from .noise import ReadNoiseModel, circuit_temperature_c, read_noise_record
from .programming import (ORDERS, SCHEMES, ProgrammingResult, SwitchingDevice, WriteVerifyConfig,
                          apply_passive_programming, apply_write_verify, cell_thresholds, check_targets,
                          initial_state, layer_record, program_passive, programming_totals, write_verify)
from .spec import (KINDS, Drift, Imperfection, Imperfections, PassiveProgramming, ReadNoise, Temperature, WriteVerify,
                   apply_imperfections, imperfection_kinds, parse_imperfection, parse_imperfections)
from .temperature import (TECHNOLOGIES, EFlashThermalModel, ReRAMThermalModel, WireThermalModel, apply_temperature,
                          thermal_model)

__all__ = [
    "apply_imperfections", "parse_imperfection", "parse_imperfections", "imperfection_kinds", "KINDS",
    "Imperfection", "Imperfections", "Temperature", "ReadNoise", "WriteVerify", "PassiveProgramming", "Drift",
    "ReRAMThermalModel", "EFlashThermalModel", "WireThermalModel", "TECHNOLOGIES", "thermal_model",
    "apply_temperature",
    "ReadNoiseModel", "read_noise_record", "circuit_temperature_c",
    "SwitchingDevice", "WriteVerifyConfig", "ProgrammingResult", "write_verify", "program_passive",
    "apply_write_verify", "apply_passive_programming", "SCHEMES", "ORDERS", "cell_thresholds", "check_targets",
    "initial_state", "layer_record", "programming_totals",
    "PowerLawDrift", "apply_drift",
    "DEFAULT_READ_TIME_S", "energy_per_inference_j", "evaluate",
]
