"""Energy of the memory arrays per inference, reported next to accuracy.

The engines return, on request, the power drawn from the row drivers of every array for each
input (``SimulationResult.power_w``): with ideal wires that is ``sum G V^2`` over the cells, with
resistive wires it also holds the wire losses (it is all the power the drivers deliver). A fully
analog circuit holds its inputs for one read time, so the arrays' energy per inference is
``power_w * read_time_s``. The op-amps' supply power is not included.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .._validate import check_positive
from ..circuit import Circuit
from ..engines import SimulationResult, simulate
from .noise import ReadNoiseModel

DEFAULT_READ_TIME_S = 1e-7


def energy_per_inference_j(result: SimulationResult, read_time_s: float = DEFAULT_READ_TIME_S) -> np.ndarray:
    """Arrays' energy (J) of every inference in ``result`` (simulated with ``return_power=True``)."""
    check_positive("read_time_s", read_time_s, "seconds the inputs are held per inference, e.g. 1e-7")
    if result.power_w is None:
        raise ValueError("the result holds no power: simulate with return_power=True")
    return np.asarray(result.power_w, dtype=np.float64) * read_time_s


def evaluate(
    circuit: Circuit,
    inputs_v: Any,
    labels: Any,
    engine: Any = "ideal",
    seed: Any = 0,
    read_time_s: float = DEFAULT_READ_TIME_S,
    read_noise: Optional[ReadNoiseModel] = None,
    **engine_kwargs: Any,
) -> dict:
    """Accuracy and arrays' energy per inference; ``read_noise`` resampled per inference group from ``seed``."""
    check_positive("read_time_s", read_time_s, "seconds the inputs are held per inference, e.g. 1e-7")
    result = simulate(circuit, inputs_v, engine=engine, read_noise=read_noise, seed=seed, return_power=True,
                      **engine_kwargs)
    energy = energy_per_inference_j(result, read_time_s)
    return {
        "accuracy": result.accuracy(np.asarray(labels)),
        "energy_per_inference_j": float(energy.mean()),
        "energy_per_inference_max_j": float(energy.max()),
        "power_mean_w": float(np.mean(result.power_w)),
        "read_time_s": float(read_time_s),
        "n_inferences": int(len(energy)),
        "engine": result.engine,
    }


__all__ = ["DEFAULT_READ_TIME_S", "energy_per_inference_j", "evaluate"]
