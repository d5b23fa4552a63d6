"""The ideal engine's forward pass in PyTorch, over the conductances themselves.

Training levers that act on the hardware (defect-aware retraining, training in conductance
space) need gradients with respect to each cell's conductance. This module rebuilds exactly the
ideal engine's arithmetic (``engines/ideal.py``) on a batch of ``K`` circuits that share one
architecture and periphery but hold different conductance arrays, so ``K`` chips (e.g. ``K``
defect instances) are retrained in one graph.

Both cell models are separable: the current of a cell is ``G * f(V)`` with ``f(V) = V`` for the
linear cell and ``f(V) = V_read sinh(V/V0) / sinh(V_read/V0)`` for the gap model, so a column
current is ``f(rows) @ G`` and stays a matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..circuit import Circuit
from ..devices import GapReRAMCell


@dataclass(frozen=True)
class LayerPeriphery:
    """What the forward pass needs of one layer besides its conductances."""

    plus: torch.Tensor
    minus: torch.Tensor
    gain_ohm: float  # difference gain r times feedback resistance R_f: volts per ampere
    saturation_v: float | None
    bias_voltage_v: float


def periphery(circuit: Circuit) -> list[LayerPeriphery]:
    """The fixed (non-trainable) part of every layer of ``circuit``."""
    return [LayerPeriphery(plus=torch.tensor(np.array(layer.plus_columns)),
                           minus=torch.tensor(np.array(layer.minus_columns)),
                           gain_ohm=layer.neuron.difference_gain * layer.neuron.feedback_resistance_ohm,
                           saturation_v=layer.neuron.saturation_v, bias_voltage_v=layer.bias_voltage_v)
            for layer in circuit.layers]


def row_drive(circuit: Circuit, v: torch.Tensor) -> torch.Tensor:
    """``f(V)``: the factor a cell's conductance multiplies to give its current."""
    cell = circuit.cell
    if cell.is_linear:
        return v
    if isinstance(cell, GapReRAMCell):
        return cell.shape_factor * torch.sinh(v / cell.v0_v)
    raise ValueError(f"cell model {type(cell).__name__} has no differentiable current; use 'linear' or 'gap'")


def forward(circuit: Circuit, conductances: Sequence[torch.Tensor], inputs_v: torch.Tensor,
            layers: Sequence[LayerPeriphery] | None = None) -> torch.Tensor:
    """Output voltages of the ideal circuit, ``[K, batch, n_outputs]`` for conductances ``[K, rows, cols]``.

    ``inputs_v`` is ``[batch, n_inputs]`` (volts, shared by the ``K`` circuits) or ``[K, batch,
    n_inputs]``. The arithmetic is the ideal engine's: column currents ``f(rows) @ G``, difference
    ``r R_f (I+ - I-)``, clamp at the rails. ``layers`` (from ``periphery(circuit)``) saves
    rebuilding the periphery at every call inside a training loop.
    """
    x = inputs_v
    for g, p in zip(conductances, layers if layers is not None else periphery(circuit)):
        bias = torch.full((*x.shape[:-1], 1), p.bias_voltage_v, dtype=x.dtype)
        currents = torch.matmul(row_drive(circuit, torch.cat([x, bias], dim=-1)), g)
        x = p.gain_ohm * (currents[..., p.plus] - currents[..., p.minus])
        if p.saturation_v is not None:
            x = torch.clamp(x, -p.saturation_v, p.saturation_v)
    return x


def stack_conductances(circuits: Sequence[Circuit]) -> list[torch.Tensor]:
    """Per layer, the conductances of ``K`` circuits as one float64 tensor ``[K, rows, cols]``."""
    check_same_architecture(circuits)
    return [torch.tensor(np.stack([c.layers[i].conductance for c in circuits]), dtype=torch.float64)
            for i in range(circuits[0].n_layers)]


def check_same_architecture(circuits: Sequence[Circuit]) -> None:
    """Refuse a batch of circuits whose shapes or periphery differ (they must share one graph)."""
    if not circuits:
        raise ValueError("need at least one circuit")
    ref = circuits[0]
    for k, c in enumerate(circuits[1:], start=1):
        if c.n_layers != ref.n_layers or c.cell != ref.cell:
            raise ValueError(f"circuit {k} differs from circuit 0 in its layers or cell model; retrain them separately")
        for i, (a, b) in enumerate(zip(ref.layers, c.layers)):
            if (a.conductance.shape != b.conductance.shape or a.neuron != b.neuron
                    or not np.array_equal(a.plus_columns, b.plus_columns)
                    or not np.array_equal(a.minus_columns, b.minus_columns)
                    or a.bias_voltage_v != b.bias_voltage_v):
                raise ValueError(f"circuit {k}, layer {i}: shape or periphery differs from circuit 0")
