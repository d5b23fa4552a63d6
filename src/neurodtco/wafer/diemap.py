"""One die's stuck cells, and the circuit it makes through the defect machinery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..circuit import Circuit
from ..defects.apply import DefectRecord, apply_stuck_map
from .geometry import DieKey


@dataclass(frozen=True, eq=False)
class DieMap:
    """The stuck cells of one die: ``stuck_s[l]`` is layer ``l``'s conductance (S) per stuck cell, NaN elsewhere."""

    key: DieKey
    stuck_s: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        arrays = []
        for values in self.stuck_s:
            array = np.array(values, dtype=np.float64, copy=True)
            array.setflags(write=False)
            arrays.append(array)
        object.__setattr__(self, "stuck_s", tuple(arrays))
        object.__setattr__(self, "key", tuple(int(k) for k in self.key))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DieMap):
            return NotImplemented
        return self.key == other.key and len(self.stuck_s) == len(other.stuck_s) and all(
            a.shape == b.shape and np.array_equal(a, b, equal_nan=True) for a, b in zip(self.stuck_s, other.stuck_s))

    __hash__ = None  # type: ignore[assignment]

    @property
    def masks(self) -> list[np.ndarray]:
        """Per-layer bool masks of the stuck cells."""
        return [~np.isnan(v) for v in self.stuck_s]

    @property
    def n_stuck(self) -> int:
        """Stuck cells over all layers."""
        return int(sum(np.count_nonzero(~np.isnan(v)) for v in self.stuck_s))

    @classmethod
    def healthy(cls, key: DieKey, circuit: Circuit) -> "DieMap":
        """A die without stuck cells."""
        return cls(key, tuple(np.full(layer.conductance.shape, np.nan) for layer in circuit.layers))


def die_circuit(healthy: Circuit, die: DieMap) -> tuple[Circuit, DefectRecord]:
    """The die's chip: ``healthy`` with the die's cells stuck (``defects.apply.apply_stuck_map``)."""
    return apply_stuck_map(healthy, die.stuck_s)


def die_circuits(healthy: Circuit, dies: Sequence[DieMap]) -> list[Circuit]:
    """Every die's chip, in order."""
    return [die_circuit(healthy, die)[0] for die in dies]
