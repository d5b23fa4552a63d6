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
    ``power_w``: on request, the power the row drivers of every array deliver ``[batch]``: heat in
    the cells and wire segments plus what flows into the neuron inputs (the memory arrays' read
    power; the op-amps' supply power is not included). A tiled layer counts every tile's own
    drivers (``sum V_row I_row`` over each tile's rows). A layer read several times per inference
    (a convolution, once per output position) counts every read: ``power_w`` is the **sum over
    reads of each read's power**, i.e. the arrays' energy per inference divided by the duration of
    one read (``power_w * read_time_s`` is the energy when every read lasts ``read_time_s``).
    ``layer_power_w``: with ``power_w`` where the engine splits it, each layer's part (summed over
    its reads) ``[batch, n_layers]``.
    """

    outputs_v: np.ndarray
    engine: str
    hidden_v: Optional[list[np.ndarray]] = None
    nodes: Optional[list[dict[str, np.ndarray]]] = None
    power_w: Optional[np.ndarray] = None
    layer_power_w: Optional[np.ndarray] = None
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
    layer_power = np.concatenate([p.layer_power_w for p in parts]) if first.layer_power_w is not None else None
    return SimulationResult(outputs_v=np.concatenate([p.outputs_v for p in parts]), engine=first.engine,
                            hidden_v=hidden, nodes=nodes, power_w=power, layer_power_w=layer_power)
