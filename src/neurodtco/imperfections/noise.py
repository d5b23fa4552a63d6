"""Read noise: a fresh, state-dependent conductance sample for every inference, seeded.

The engines stay untouched: ``simulate_with_read_noise`` draws a noisy copy of the circuit's
conductances, runs any engine on a group of inputs with it, and repeats for the next group.
``group_size=1`` gives every inference its own independent sample. Larger groups share one
sample among ``group_size`` inferences: each inference still sees exactly the right noise
distribution, so the *expected* accuracy is unchanged, but errors inside a group are
correlated, which widens the spread of the accuracy estimate; the gain is speed for engines
that refactorize a nodal matrix per sample (``nodal``, ``ngspice``).

The noise model (per cell, standard deviation of the read conductance) follows the noise budget
of M. R. Mahmoodi, A. F. Vincent, H. Nili, D. B. Strukov, "Intrinsic bounds for computing
precision in memristor-based vector-by-matrix multipliers", IEEE Trans. Nanotechnology 19,
429-435 (2020): thermal (Johnson) noise ``4kTG df``, shot noise ``2qI df`` and a low-frequency
(1/f and random telegraph) part proportional to the current, here ``relative_sigma * G``. The
bandwidth is ``df = 1 / (2 read_time_s)``. With ``V = v_read``:

    sigma_G^2 = (relative_sigma G)^2 + (4 k T G + 2 q G V) df / V^2

so low-conductance states are relatively noisier, as measured on metal-oxide crossbars.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .._validate import check_positive, check_range
from ..circuit import Circuit
from ..engines import SimulationResult, get_engine
from ..engines import simulate as engine_simulate
from ._common import BOLTZMANN_J_PER_K, ELEMENTARY_CHARGE_C, kelvin, make_rng

METADATA_KEY = "read_noise"


@dataclass(frozen=True)
class ReadNoiseModel:
    """Per-read conductance noise: a state-proportional part plus thermal and shot noise."""

    relative_sigma: float = 0.01
    read_time_s: float = 1e-7
    thermal_shot: bool = True
    temperature_c: Optional[float] = None
    group_size: int = 1

    def __post_init__(self) -> None:
        check_range("relative_sigma", self.relative_sigma, 0.0, 1.0, "sigma_G / G of the 1/f and telegraph part, e.g. 0.01")
        check_positive("read_time_s", self.read_time_s, "seconds of integration per read, e.g. 1e-7")
        if not isinstance(self.thermal_shot, bool):
            raise ValueError(f"thermal_shot={self.thermal_shot!r} is not accepted: expected true or false")
        if self.temperature_c is not None:
            kelvin(self.temperature_c)
        if isinstance(self.group_size, bool) or not isinstance(self.group_size, (int, np.integer)) or self.group_size < 1:
            raise ValueError(f"group_size={self.group_size!r} is not accepted: expected an integer >= 1 "
                             "(inferences that share one noise sample)")

    @property
    def bandwidth_hz(self) -> float:
        """Noise bandwidth of one read, ``1 / (2 read_time_s)``."""
        return 0.5 / self.read_time_s

    def sigma(self, g: np.ndarray, v_read_v: float, temperature_c: float = 25.0) -> np.ndarray:
        """Standard deviation (S) of the read conductance of cells in state ``g`` (S)."""
        g = np.asarray(g, dtype=np.float64)
        var = (self.relative_sigma * g) ** 2
        if self.thermal_shot:
            t = kelvin(self.temperature_c if self.temperature_c is not None else temperature_c)
            current_psd = 4.0 * BOLTZMANN_J_PER_K * t * g + 2.0 * ELEMENTARY_CHARGE_C * g * v_read_v
            var = var + current_psd * self.bandwidth_hz / v_read_v**2
        return np.sqrt(var)

    def sample(self, g: np.ndarray, rng: np.random.Generator, v_read_v: float, temperature_c: float = 25.0) -> np.ndarray:
        """One noisy read of every cell (conductances stay >= 0)."""
        g = np.asarray(g, dtype=np.float64)
        return np.maximum(g + self.sigma(g, v_read_v, temperature_c) * rng.standard_normal(g.shape), 0.0)

    def to_dict(self) -> dict:
        """Plain parameters (for circuit metadata and records)."""
        return {"relative_sigma": self.relative_sigma, "read_time_s": self.read_time_s,
                "thermal_shot": self.thermal_shot, "temperature_c": self.temperature_c, "group_size": int(self.group_size)}


def circuit_temperature_c(circuit: Circuit) -> float:
    """The temperature a circuit was brought to (``apply_temperature``), else 25 C."""
    return float(circuit.metadata.get("temperature_c", 25.0))


def sample_read_noise(circuit: Circuit, model: ReadNoiseModel, rng: np.random.Generator) -> Circuit:
    """One noisy copy of the circuit (every cell read once)."""
    v_read, temp = circuit.cell.v_read_v, circuit_temperature_c(circuit)
    return circuit.with_conductances([model.sample(g, rng, v_read, temp) for g in circuit.conductances])


def attach_read_noise(circuit: Circuit, model: ReadNoiseModel, rng: np.random.Generator) -> tuple[Circuit, dict]:
    """One frozen noise sample in the conductances, plus what ``simulate`` needs to resample per inference.

    Engines called directly (``engines.simulate``, ``engine.run``) see the frozen sample: every
    inference of the batch shares it (the ``group_size = batch`` end of the trade-off above).
    ``simulate`` and ``evaluate`` of this package draw a fresh sample per group instead.
    """
    temp = circuit_temperature_c(circuit)
    clean = [np.asarray(g) for g in circuit.conductances]
    noisy = sample_read_noise(circuit, model, rng)
    frozen = [np.asarray(g) for g in noisy.conductances]
    marked = noisy.replace(metadata={**circuit.metadata,
                                     METADATA_KEY: {"model": model.to_dict(), "clean": clean, "frozen": frozen}})
    rel = [model.sigma(g, circuit.cell.v_read_v, temp) / np.maximum(g, np.finfo(float).tiny) for g in clean]
    every = np.concatenate([r.ravel() for r in rel])
    record = {"kind": "read_noise", **model.to_dict(), "temperature_c": temp,
              "relative_sigma_min": float(every.min()), "relative_sigma_max": float(every.max()),
              "relative_sigma_mean": float(every.mean()),
              "sampling": "per inference group with neurodtco.imperfections.simulate/evaluate; "
                          "one frozen sample for engines called directly"}
    return marked, record


def clean_circuit(circuit: Circuit) -> tuple[Circuit, Optional[ReadNoiseModel]]:
    """The circuit without its frozen read-noise sample, and the attached model (None if none).

    Cells changed after the sample was drawn (a defect applied later, say) keep their new value;
    untouched cells get their noise-free conductance back.
    """
    entry = circuit.metadata.get(METADATA_KEY)
    if entry is None:
        return circuit, None
    restored = [np.where(g == frozen, clean, g) if np.shape(g) == np.shape(frozen) else g
                for g, clean, frozen in zip(circuit.conductances, entry["clean"], entry["frozen"])]
    metadata = {k: v for k, v in circuit.metadata.items() if k != METADATA_KEY}
    return circuit.with_conductances(restored).replace(metadata=metadata), ReadNoiseModel(**entry["model"])


def simulate_with_read_noise(
    circuit: Circuit,
    inputs_v: Any,
    model: ReadNoiseModel,
    engine: Any = "ideal",
    seed: Any = 0,
    group_size: Optional[int] = None,
    **engine_kwargs: Any,
) -> SimulationResult:
    """Run ``engine`` with a fresh noise sample per group of ``group_size`` inferences (1: every one)."""
    group = model.group_size if group_size is None else group_size
    if isinstance(group, bool) or not isinstance(group, (int, np.integer)) or group < 1:
        raise ValueError(f"group_size={group!r} is not accepted: expected an integer >= 1")
    x = circuit.check_inputs(_as_numpy(inputs_v))
    eng = get_engine(engine) if isinstance(engine, str) else engine
    rng = make_rng(seed)
    parts = []
    for start in range(0, len(x), group):
        noisy = sample_read_noise(circuit, model, rng)
        parts.append(engine_simulate(noisy, x[start:start + group], engine=eng, **engine_kwargs))
    result = concatenate_results(parts)
    result.info.update({"read_noise": model.to_dict(), "noise_samples": len(parts), "group_size": int(group)})
    return result


def simulate(circuit: Circuit, inputs_v: Any, engine: Any = "ideal", seed: Any = 0, **engine_kwargs: Any) -> SimulationResult:
    """Drop-in for ``engines.simulate`` that resamples read noise attached by ``apply_imperfections``."""
    base, model = clean_circuit(circuit)
    if model is None:
        return engine_simulate(circuit, _as_numpy(inputs_v), engine=engine, **engine_kwargs)
    return simulate_with_read_noise(base, inputs_v, model, engine=engine, seed=seed, **engine_kwargs)


def concatenate_results(parts: list[SimulationResult]) -> SimulationResult:
    """One result from several batches simulated in order."""
    if not parts:
        raise ValueError("no results to concatenate: the input batch was empty")
    first = parts[0]
    hidden = None
    if first.hidden_v is not None:
        hidden = [np.concatenate([p.hidden_v[i] for p in parts]) for i in range(len(first.hidden_v))]
    nodes = None
    if first.nodes is not None:
        nodes = [{key: np.concatenate([p.nodes[i][key] for p in parts]) for key in first.nodes[i]}
                 for i in range(len(first.nodes))]
    power = np.concatenate([p.power_w for p in parts]) if first.power_w is not None else None
    elapsed = sum(p.info.get("elapsed_s", 0.0) for p in parts)
    return SimulationResult(outputs_v=np.concatenate([p.outputs_v for p in parts]), engine=first.engine,
                            hidden_v=hidden, nodes=nodes, power_w=power, info={"elapsed_s": elapsed})


def _as_numpy(inputs_v: Any) -> np.ndarray:
    if type(inputs_v).__module__.startswith("torch"):
        return inputs_v.detach().cpu().double().numpy()
    return np.asarray(inputs_v, dtype=np.float64)


__all__ = ["ReadNoiseModel", "sample_read_noise", "attach_read_noise", "clean_circuit", "simulate_with_read_noise",
           "simulate",
           "concatenate_results", "circuit_temperature_c"]
