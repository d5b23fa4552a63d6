"""Interchangeable simulators behind one interface: ``ideal``, ``nodal``, ``ngspice`` and registered ones.

Engines are found by name in a registry. The built-in ones register here; a higher package
plugs its own in with ``register_engine`` when it is imported, so this layer never names the
packages above it.
"""

from __future__ import annotations

import inspect
import time
from typing import Any, Callable, Optional

import numpy as np

from ..circuit import Circuit
from .base import Engine, ReadNoise, SimulationResult, concatenate_results
from .ideal import IdealEngine
from .ngspice import NgspiceEngine
from .nodal import NodalEngine

#: Circuit metadata key of the temperature a circuit is at (set by ``imperfections.apply_temperature``).
TEMPERATURE_KEY = "temperature_c"

_REGISTRY: dict[str, Callable[..., Engine]] = {}


def register_engine(name: str, factory: Callable[..., Engine]) -> None:
    """Make ``get_engine(name, **options)`` return ``factory(**options)``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"engine name {name!r} is not accepted: expected a non-empty string")
    if not callable(factory):
        raise ValueError(f"the factory of engine {name!r} must be callable (a class or a function); got {factory!r}")
    known = _REGISTRY.get(name)
    if known is not None and known is not factory:
        raise ValueError(f"engine name {name!r} is already registered to {known!r}; choose another name")
    _REGISTRY[name] = factory


register_engine("ideal", IdealEngine)
register_engine("nodal", NodalEngine)
register_engine("ngspice", NgspiceEngine)


def engine_names() -> list[str]:
    """Names accepted by ``get_engine``."""
    return list(_REGISTRY)


def get_engine(name: str, **options: Any) -> Engine:
    """An engine instance by name, with engine-specific options."""
    if isinstance(name, str) and name in _REGISTRY:
        return _REGISTRY[name](**options)
    raise ValueError(f"unknown engine {name!r}; choose one of {engine_names()}")


def device_engine_names() -> list[str]:
    """Names of the engines that take a ``device`` option (a torch device such as ``"cuda"``)."""
    return [name for name, factory in _REGISTRY.items() if "device" in inspect.signature(factory).parameters]


def simulate(circuit: Circuit, inputs_v: Any, engine: str | Engine = "ideal", *,
             read_noise: Optional[ReadNoise] = None, seed: Any = 0, device: Any = None,
             **kwargs: Any) -> SimulationResult:
    """Simulate input voltages through a circuit; torch inputs give torch outputs.

    ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``): run a named engine that
    takes one (``device_engine_names()``) on that torch device, in float64; ``None`` is NumPy.
    ``read_noise`` (e.g. ``imperfections.ReadNoiseModel``): every group of ``read_noise.group_size``
    inferences reads its own noisy sample of the conductances, drawn from ``seed`` (an int, a
    ``SeedSequence`` or a ``Generator``); without it the circuit is read noise-free and ``seed``
    is unused.
    """
    is_torch = type(inputs_v).__module__.startswith("torch")
    x = inputs_v.detach().cpu().double().numpy() if is_torch else np.asarray(inputs_v, dtype=np.float64)
    if device is not None and not isinstance(engine, str):
        raise ValueError(f"device={device!r} applies to an engine given by name; an engine instance carries its own "
                         "device: build it with get_engine(name, device=...)")
    eng = get_engine(engine, **_device_option(engine, device)) if isinstance(engine, str) else engine
    start = time.perf_counter()
    if read_noise is None:
        result = eng.run(circuit, x, **kwargs)
    else:
        result = _run_with_read_noise(eng, circuit, x, read_noise, seed, **kwargs)
    result.info.setdefault("elapsed_s", time.perf_counter() - start)
    if is_torch:
        import torch  # optional dependency, only when the caller passed torch tensors

        result.outputs_v = torch.from_numpy(result.outputs_v)
        if result.hidden_v is not None:
            result.hidden_v = [torch.from_numpy(h) for h in result.hidden_v]
    return result


def _device_option(name: str, device: Any) -> dict[str, Any]:
    """``{"device": device}`` for an engine that takes one; a device for any other engine is refused."""
    if device is None:
        return {}
    if name in _REGISTRY and name not in device_engine_names():
        raise ValueError(f"engine {name!r} runs on the CPU only; device={device!r} is accepted by "
                         f"{device_engine_names()} (or pass device=None)")
    return {"device": device}


def _run_with_read_noise(eng: Engine, circuit: Circuit, inputs_v: np.ndarray, read_noise: ReadNoise, seed: Any,
                         **kwargs: Any) -> SimulationResult:
    """A fresh noisy conductance sample per group of ``read_noise.group_size`` inferences."""
    group = read_noise.group_size
    if isinstance(group, bool) or not isinstance(group, (int, np.integer)) or group < 1:
        raise ValueError(f"group_size={group!r} is not accepted: expected an integer >= 1 "
                         "(inferences that share one noise sample)")
    seeds = (int, np.integer, np.random.SeedSequence, np.random.Generator)
    if isinstance(seed, bool) or not (seed is None or isinstance(seed, seeds)):
        raise ValueError(f"seed={seed!r} is not accepted: expected a non-negative integer, a SeedSequence "
                         "or a Generator")
    x = circuit.check_inputs(inputs_v)
    rng = np.random.default_rng(seed)
    v_read = circuit.cell.v_read_v
    temperature_c = float(circuit.metadata.get(TEMPERATURE_KEY, 25.0))
    parts = []
    for begin in range(0, len(x), group):
        noisy = circuit.with_conductances([read_noise.sample(g, rng, v_read, temperature_c)
                                           for g in circuit.conductances])
        parts.append(eng.run(noisy, x[begin:begin + group], **kwargs))
    result = concatenate_results(parts)
    result.info.update({"noise_samples": len(parts), "group_size": int(group)})
    return result


__all__ = ["Engine", "ReadNoise", "SimulationResult", "TEMPERATURE_KEY", "concatenate_results", "device_engine_names",
           "engine_names", "get_engine", "register_engine", "simulate"]
