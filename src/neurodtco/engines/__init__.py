"""Interchangeable simulators behind one interface: ``ideal``, ``nodal`` and ``ngspice``."""

from __future__ import annotations

import importlib
import time
from typing import Any

import numpy as np

from ..circuit import Circuit
from .base import Engine, SimulationResult

_ENGINES = {
    "ideal": ("neurodtco.engines.ideal", "IdealEngine"),
    "nodal": ("neurodtco.engines.nodal", "NodalEngine"),
    "ngspice": ("neurodtco.engines.ngspice", "NgspiceEngine"),
    # FreePDK45 op-amp neurons in ngspice (needs the optional pdk extra); see docs/periphery.md
    "transistor": ("neurodtco.periphery.engine", "TransistorEngine"),
}


def engine_names() -> list[str]:
    """Names accepted by ``get_engine``."""
    return list(_ENGINES)


def get_engine(name: str, **options: Any) -> Engine:
    """An engine instance by name, with engine-specific options."""
    if isinstance(name, str) and name in _ENGINES:
        module, cls = _ENGINES[name]
        return getattr(importlib.import_module(module), cls)(**options)
    raise ValueError(f"unknown engine {name!r}; choose one of {engine_names()}")


def simulate(circuit: Circuit, inputs_v: Any, engine: str | Engine = "ideal", **kwargs: Any) -> SimulationResult:
    """Simulate input voltages through a circuit; torch inputs give torch outputs."""
    is_torch = type(inputs_v).__module__.startswith("torch")
    x = inputs_v.detach().cpu().double().numpy() if is_torch else np.asarray(inputs_v, dtype=np.float64)
    eng = get_engine(engine) if isinstance(engine, str) else engine
    start = time.perf_counter()
    result = eng.run(circuit, x, **kwargs)
    result.info.setdefault("elapsed_s", time.perf_counter() - start)
    if is_torch:
        import torch

        result.outputs_v = torch.from_numpy(result.outputs_v)
        if result.hidden_v is not None:
            result.hidden_v = [torch.from_numpy(h) for h in result.hidden_v]
    return result


__all__ = ["Engine", "SimulationResult", "engine_names", "get_engine", "simulate"]
