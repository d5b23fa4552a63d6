"""Typed imperfections: one frozen dataclass per kind, parsed once from the study file's plain dicts.

``parse_imperfection(dict)`` turns ``{kind: temperature, temperature_c: 85, ...}`` into a
``Temperature`` holding the model objects of its module; ``parse_imperfections`` does a list and
returns an ``Imperfections`` tuple. Every item applies itself to a ``Circuit`` (``apply(circuit,
rng) -> (circuit, record)``) and turns back into the plain dict (``to_dict()``: every parameter,
defaults included, so a record says exactly what was simulated and parsing it gives the item back).

Read noise is drawn at read time, so ``ReadNoise`` leaves the circuit unchanged (its record
states the noise level); its model goes to the simulation instead: ``Imperfections.read_noise``
is handed to ``neurodtco.simulate(..., read_noise=...)`` or ``imperfections.evaluate``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, Mapping, Optional, Sequence, Union

import numpy as np

from .._validate import check_range
from ..circuit import Circuit
from ._common import kelvin
from .drift import PowerLawDrift, apply_drift
from .noise import ReadNoiseModel, read_noise_record
from .programming import (ORDERS, SCHEMES, SwitchingDevice, WriteVerifyConfig, apply_passive_programming,
                          apply_write_verify)
from .temperature import (TECHNOLOGIES, CellThermalModel, EFlashThermalModel, ReRAMThermalModel, WireThermalModel,
                          apply_temperature, thermal_model)


def _names(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


def _take(params: dict, cls: type) -> dict:
    return {k: params.pop(k) for k in list(params) if k in _names(cls)}


def _values(obj: Any) -> dict:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _reject_rest(kind: str, params: dict, accepted: set[str]) -> None:
    if params:
        raise ValueError(f"{kind}: unknown parameter(s) {sorted(params)}; accepted: {sorted(accepted)}")


@dataclass(frozen=True)
class Temperature:
    """The circuit read at ``temperature_c``: cells (ReRAM or eFlash), wires and feedback resistors."""

    kind: ClassVar[str] = "temperature"
    temperature_c: float
    cell: CellThermalModel = ReRAMThermalModel()
    wire_tcr_per_k: float = WireThermalModel().tcr_per_k
    feedback_tcr_per_k: float = 0.0

    def __post_init__(self) -> None:
        kelvin(self.temperature_c)
        WireThermalModel(tcr_per_k=self.wire_tcr_per_k, t_ref_c=self.cell.t_ref_c)  # refuses a bad coefficient now
        check_range("feedback_tcr_per_k", self.feedback_tcr_per_k, -0.01, 0.01,
                    "1/K of the TIA feedback resistors; 0 for temperature-compensated resistors")

    @property
    def technology(self) -> str:
        """``reram`` or ``eflash``, from the cell model."""
        return "eflash" if isinstance(self.cell, EFlashThermalModel) else "reram"

    @classmethod
    def from_params(cls, params: dict) -> "Temperature":
        """The item from a spec's parameters (``kind`` removed); refuses unknown ones."""
        if "temperature_c" not in params:
            raise ValueError("temperature: temperature_c is required (degrees Celsius, e.g. 85)")
        temperature_c = params.pop("temperature_c")
        kelvin(temperature_c)
        technology = params.pop("technology", "reram")
        if technology not in TECHNOLOGIES:
            raise ValueError(f"temperature: technology={technology!r} is not accepted: "
                             f"choose one of {list(TECHNOLOGIES)}")
        cell_cls = ReRAMThermalModel if technology == "reram" else EFlashThermalModel
        wire_tcr = params.pop("wire_tcr_per_k", WireThermalModel().tcr_per_k)
        feedback = params.pop("feedback_tcr_per_k", 0.0)
        accepted = _names(cell_cls) | {"temperature_c", "technology", "wire_tcr_per_k", "feedback_tcr_per_k"}
        cell_params = _take(params, cell_cls)
        _reject_rest("temperature", params, accepted)
        return cls(temperature_c, thermal_model(technology, **cell_params), wire_tcr, feedback)

    def apply(self, circuit: Circuit, rng: np.random.Generator) -> tuple[Circuit, dict]:
        """The circuit at ``temperature_c`` and the record of the change (no randomness)."""
        wire = WireThermalModel(tcr_per_k=self.wire_tcr_per_k, t_ref_c=self.cell.t_ref_c)
        return apply_temperature(circuit, self.temperature_c, self.cell, wire, self.feedback_tcr_per_k)

    def to_dict(self) -> dict:
        """The plain spec, every parameter stated."""
        return {"kind": self.kind, "temperature_c": self.temperature_c, "technology": self.technology,
                **_values(self.cell), "wire_tcr_per_k": self.wire_tcr_per_k,
                "feedback_tcr_per_k": self.feedback_tcr_per_k}


@dataclass(frozen=True)
class ReadNoise:
    """Per-read conductance noise; a simulation option (``model``), not a change of the circuit."""

    kind: ClassVar[str] = "read_noise"
    model: ReadNoiseModel = ReadNoiseModel()

    @classmethod
    def from_params(cls, params: dict) -> "ReadNoise":
        """The item from a spec's parameters (``kind`` removed); refuses unknown ones."""
        model_params = _take(params, ReadNoiseModel)
        _reject_rest("read_noise", params, _names(ReadNoiseModel))
        return cls(ReadNoiseModel(**model_params))

    def apply(self, circuit: Circuit, rng: np.random.Generator) -> tuple[Circuit, dict]:
        """The circuit unchanged, and the noise level its cells will be read with."""
        return circuit, read_noise_record(circuit, self.model)

    def to_dict(self) -> dict:
        """The plain spec, every parameter stated."""
        return {"kind": self.kind, **self.model.to_dict()}


def _programming_parts(kind: str, params: dict, extra: set[str]) -> tuple[SwitchingDevice, WriteVerifyConfig, dict]:
    device = SwitchingDevice(**_take(params, SwitchingDevice))
    config = WriteVerifyConfig(**_take(params, WriteVerifyConfig))
    options = {k: params.pop(k) for k in list(params) if k in extra}
    _reject_rest(kind, params, _names(SwitchingDevice) | _names(WriteVerifyConfig) | extra)
    return device, config, options


@dataclass(frozen=True)
class WriteVerify:
    """Write-verify programming of cells isolated by select transistors (1T1R)."""

    kind: ClassVar[str] = "write_verify"
    device: SwitchingDevice = SwitchingDevice()
    config: WriteVerifyConfig = WriteVerifyConfig()
    record_masks: bool = False

    @classmethod
    def from_params(cls, params: dict) -> "WriteVerify":
        """The item from a spec's parameters (``kind`` removed); refuses unknown ones."""
        device, config, options = _programming_parts(cls.kind, params, {"record_masks"})
        return cls(device, config, bool(options.get("record_masks", False)))

    def apply(self, circuit: Circuit, rng: np.random.Generator) -> tuple[Circuit, dict]:
        """Every array programmed to the circuit's conductances; the record counts pulses and failures."""
        return apply_write_verify(circuit, self.device, self.config, rng, record_masks=self.record_masks)

    def to_dict(self) -> dict:
        """The plain spec, every parameter stated."""
        return {"kind": self.kind, **_values(self.device), **_values(self.config), "record_masks": self.record_masks}


@dataclass(frozen=True)
class PassiveProgramming:
    """Cell-by-cell programming of passive (0T1R) crossbars with a V/2 or V/3 scheme (disturbance included)."""

    kind: ClassVar[str] = "passive_programming"
    device: SwitchingDevice = SwitchingDevice()
    config: WriteVerifyConfig = WriteVerifyConfig()
    scheme: str = "v/2"
    order: str = "row-major"
    passes: int = 1
    record_masks: bool = False

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"passive_programming: scheme={self.scheme!r} is not accepted: "
                             f"choose one of {list(SCHEMES)}")
        if self.order not in ORDERS:
            raise ValueError(f"passive_programming: order={self.order!r} is not accepted: choose one of {list(ORDERS)}")
        if isinstance(self.passes, bool) or not isinstance(self.passes, int) or self.passes < 1:
            raise ValueError(f"passive_programming: passes={self.passes!r} is not accepted: expected an integer >= 1")

    @classmethod
    def from_params(cls, params: dict) -> "PassiveProgramming":
        """The item from a spec's parameters (``kind`` removed); refuses unknown ones."""
        device, config, options = _programming_parts(cls.kind, params, {"scheme", "order", "passes", "record_masks"})
        return cls(device, config, scheme=str(options.get("scheme", "v/2")).lower(),
                   order=options.get("order", "row-major"), passes=options.get("passes", 1),
                   record_masks=bool(options.get("record_masks", False)))

    def apply(self, circuit: Circuit, rng: np.random.Generator) -> tuple[Circuit, dict]:
        """Every array programmed as a passive crossbar; the record counts failed and disturbed cells."""
        return apply_passive_programming(circuit, self.device, self.config, rng, scheme=self.scheme, order=self.order,
                                         passes=self.passes, record_masks=self.record_masks)

    def to_dict(self) -> dict:
        """The plain spec, every parameter stated."""
        return {"kind": self.kind, **_values(self.device), **_values(self.config), "scheme": self.scheme,
                "order": self.order, "passes": self.passes, "record_masks": self.record_masks}


@dataclass(frozen=True)
class Drift:
    """Power-law conductance drift ``model.time_s`` after programming."""

    kind: ClassVar[str] = "drift"
    model: PowerLawDrift

    @classmethod
    def from_params(cls, params: dict) -> "Drift":
        """The item from a spec's parameters (``kind`` removed); refuses unknown ones."""
        if "time_s" not in params:
            raise ValueError("drift: time_s is required (seconds after programming, e.g. 86400)")
        model = PowerLawDrift(**_take(params, PowerLawDrift))
        _reject_rest("drift", params, _names(PowerLawDrift))
        return cls(model)

    def apply(self, circuit: Circuit, rng: np.random.Generator) -> tuple[Circuit, dict]:
        """The drifted circuit and the record of the conductance change."""
        return apply_drift(circuit, self.model, rng)

    def to_dict(self) -> dict:
        """The plain spec, every parameter stated."""
        return {"kind": self.kind, **_values(self.model)}


Imperfection = Union[Temperature, ReadNoise, WriteVerify, PassiveProgramming, Drift]

#: Every kind, by its ``kind`` name (the one list of kinds).
KINDS: dict[str, type] = {cls.kind: cls for cls in (Temperature, ReadNoise, WriteVerify, PassiveProgramming, Drift)}


def imperfection_kinds() -> list[str]:
    """Values accepted for a spec's ``kind``."""
    return list(KINDS)


class Imperfections(tuple):
    """Parsed imperfection items in list order, with the read-noise model handed to the simulation."""

    @property
    def read_noise(self) -> Optional[ReadNoiseModel]:
        """The read-noise model to simulate with (``simulate(..., read_noise=...)``), or None."""
        return next((item.model for item in self if isinstance(item, ReadNoise)), None)

    def to_dicts(self) -> list[dict]:
        """Every item as its plain dict."""
        return [item.to_dict() for item in self]


def parse_imperfection(spec: Union[Mapping[str, Any], Imperfection]) -> Imperfection:
    """One typed item from a plain dict with a ``kind`` key (a typed item is returned as is)."""
    if isinstance(spec, tuple(KINDS.values())):
        return spec
    if not isinstance(spec, Mapping) or "kind" not in spec:
        raise ValueError(f"an imperfection spec needs a 'kind' key (one of {imperfection_kinds()}); got {spec!r}")
    params = dict(spec)
    kind = params.pop("kind")
    if kind not in KINDS:
        raise ValueError(f"unknown imperfection kind {kind!r}; choose one of {imperfection_kinds()}")
    return KINDS[kind].from_params(params)


Spec = Union[Mapping[str, Any], Imperfection, Sequence[Union[Mapping[str, Any], Imperfection]]]


def parse_imperfections(spec: Spec) -> Imperfections:
    """Typed items from one spec or a list of them; an error names the bad item's index."""
    if isinstance(spec, Imperfections):
        return spec
    items = [spec] if isinstance(spec, (Mapping, *KINDS.values())) else spec
    if not isinstance(items, (list, tuple)):
        raise ValueError("an imperfection spec must be a dict with a 'kind' key or a list of them; "
                         f"got {type(spec).__name__}")
    parsed = []
    for index, item in enumerate(items):
        try:
            parsed.append(parse_imperfection(item))
        except ValueError as exc:
            raise ValueError(f"imperfection {index}: {exc}") from None
    if sum(isinstance(item, ReadNoise) for item in parsed) > 1:
        raise ValueError("more than one read_noise item: a cell is read with one noise model; keep one")
    return Imperfections(parsed)


def apply_imperfections(circuit: Circuit, spec: Spec, seed: int = 0) -> tuple[Circuit, dict]:
    """Apply one imperfection or a list of them in order (plain dicts or typed items); seeded.

    A single item draws from ``seed`` and returns its own record; a list gives every item its own
    stream (``[seed, index]``) and returns ``{"kind": "sequence", "items": [...]}``. Read noise
    leaves the circuit unchanged: pass ``parse_imperfections(spec).read_noise`` to the simulation.
    """
    if isinstance(seed, (bool, float)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} is not accepted: expected a non-negative integer")
    if isinstance(spec, (Mapping, *KINDS.values())):
        return parse_imperfection(spec).apply(circuit, np.random.default_rng(int(seed)))
    items = parse_imperfections(spec)  # refuse a bad item before spending time on the good ones
    records: list[dict] = [{}] * len(items)
    # Read noise is drawn at read time: its record sees the circuit after every other change.
    ordered = sorted(range(len(items)), key=lambda k: isinstance(items[k], ReadNoise))
    for index in ordered:
        # One independent stream per list item keeps each model's draws stable when others are added.
        circuit, records[index] = items[index].apply(circuit, np.random.default_rng([int(seed), index]))
    return circuit, {"kind": "sequence", "items": records}


__all__ = ["Temperature", "ReadNoise", "WriteVerify", "PassiveProgramming", "Drift", "Imperfection", "Imperfections",
           "KINDS", "imperfection_kinds", "parse_imperfection", "parse_imperfections", "apply_imperfections"]
