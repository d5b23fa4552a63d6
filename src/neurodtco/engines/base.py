"""The small interface every engine implements, and the result it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Protocol

import numpy as np

from ..circuit import Circuit


@dataclass
class SimulationResult:
    """What an engine computed for a batch of inputs (float64, SI units).

    ``outputs_v``: the last layer's neuron outputs ``[batch, n_outputs]``.
    ``hidden_v``: on request, every hidden layer's post-activation outputs ``[batch, n]``.
    ``nodes``: on request, per layer a dict of node voltages: ``word`` and ``bit`` ``[batch, rows,
    columns]`` (each cell's word-line and bit-line node), ``neuron_in`` and ``tia_out``
    ``[batch, columns]``, ``difference_out`` ``[batch, n_outputs]`` (before the activation).
    ``power_w``: on request, the power drawn from the row drivers of every array ``[batch]``
    (the memory arrays' read power; the op-amps' supply power is not included).
    """

    outputs_v: np.ndarray
    engine: str
    hidden_v: Optional[list[np.ndarray]] = None
    nodes: Optional[list[dict[str, np.ndarray]]] = None
    power_w: Optional[np.ndarray] = None
    info: dict = field(default_factory=dict)

    def predictions(self) -> np.ndarray:
        """Class chosen for each input: the neuron with the highest output voltage."""
        return np.argmax(self.outputs_v, axis=1)

    def accuracy(self, labels: np.ndarray) -> float:
        """Fraction of inputs whose predicted class equals the label."""
        return float(np.mean(self.predictions() == np.asarray(labels)))


class Engine(Protocol):
    """Turns ``(Circuit, input voltages)`` into a ``SimulationResult``."""

    name: str

    def run(
        self,
        circuit: Circuit,
        inputs_v: np.ndarray,
        *,
        return_hidden: bool = False,
        return_nodes: bool = False,
        return_power: bool = False,
    ) -> SimulationResult:
        """Simulate ``inputs_v`` ``[batch, n_inputs]`` (volts) through the whole circuit."""
        ...


class ReadNoise(Protocol):
    """What ``simulate(..., read_noise=...)`` needs of a read-noise model (``imperfections.ReadNoiseModel`` is one).

    ``sample`` returns one noisy read of conductances ``g`` (S) at read voltage ``v_read_v`` and
    ``temperature_c``; ``group_size`` inferences share one sample.
    """

    group_size: int

    def sample(self, g: np.ndarray, rng: np.random.Generator, v_read_v: float,
               temperature_c: float = 25.0) -> np.ndarray:
        """One noisy read of every cell."""
        ...


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
    return SimulationResult(outputs_v=np.concatenate([p.outputs_v for p in parts]), engine=first.engine,
                            hidden_v=hidden, nodes=nodes, power_w=power)
