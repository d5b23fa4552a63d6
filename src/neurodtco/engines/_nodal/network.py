"""Assemble: one crossbar array as a linear resistor network, ready to be factorized.

Nodes (see ``circuit.py``): every cell ``(i, j)`` has a word-line node ``w[i, j]`` and a bit-line
node ``b[i, j]`` joined by the cell's conductance. Row ``i`` is driven at its left end through one
word segment into ``w[i, 0]``; neighbouring word nodes of a row are one segment apart. Column ``j``
is a chain ``b[0, j] ... b[R-1, j]`` of bit segments, and one more segment joins ``b[R-1, j]``
to the neuron input ``n[j]``.

Voltages here are measured from the neuron reference (the op-amps' non-inverting input), so the
neuron input is either *held* at 0 (ideal virtual ground) or tied to 0 through a conductance
``neuron_g_s`` (a transimpedance stage of finite gain ``A`` looks like ``(1 + A) / R_f``).

A segment of 0 ohm is handled as the exact limit: the nodes it joins are one node. Ideal word
lines make every word node of a row its driver; ideal bit lines make every bit node of a column
the neuron input. Wire conductances are then ``math.inf``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np


def wire_conductance(name: str, resistance_ohm: float) -> float:
    """Conductance (S) of one wire segment; ``inf`` for an ideal (0 ohm) segment."""
    try:
        r = float(resistance_ohm)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={resistance_ohm!r} is not accepted: expected a resistance in ohms >= 0") from None
    if not math.isfinite(r) or r < 0:
        raise ValueError(f"{name}={resistance_ohm!r} is not accepted: expected a finite resistance in ohms >= 0 "
                         "(0 means an ideal wire)")
    if r == 0.0:
        return math.inf
    g = 1.0 / r
    if not math.isfinite(g):
        raise ValueError(f"{name}={resistance_ohm!r} ohm is too small to represent; use 0 for an ideal wire")
    return g


@dataclass(frozen=True, eq=False)
class ArrayNetwork:
    """One array's linear network: cell conductances, wire segments and the neuron inputs.

    ``cell_s`` is ``[n_sets, rows, columns]``: one set of cell conductances (a linear array) or one
    per input vector (the Newton linearisation of nonlinear cells at each vector's voltages).
    """

    cell_s: np.ndarray
    g_word_s: float
    g_bit_s: float
    neuron_g_s: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        d = np.asarray(self.cell_s, dtype=np.float64)
        if d.ndim != 3 or d.shape[1] < 1 or d.shape[2] < 1:
            raise ValueError(f"cell conductances must be [sets, rows, columns]; got shape {d.shape}")
        if not np.all(np.isfinite(d)):
            raise ValueError("cell conductances contain a non-finite value; all must be finite siemens")
        if np.any(d < 0):
            raise ValueError(f"cell conductance {d.min():g} S is negative; cell conductances must be >= 0 S")
        object.__setattr__(self, "cell_s", d)
        for name, g in (("word-segment conductance", self.g_word_s), ("bit-segment conductance", self.g_bit_s)):
            if not g > 0:
                raise ValueError(f"{name} {g!r} S must be > 0 (inf for an ideal wire)")
        if self.neuron_g_s is not None:
            h = np.asarray(self.neuron_g_s, dtype=np.float64)
            if h.shape != (self.n_columns,) or not np.all(np.isfinite(h)) or np.any(h < 0):
                raise ValueError(f"neuron input conductances must be {self.n_columns} finite values >= 0 S")
            object.__setattr__(self, "neuron_g_s", h)

    @property
    def n_sets(self) -> int:
        """Sets of cell conductances (1, or one per input vector)."""
        return int(self.cell_s.shape[0])

    @property
    def n_rows(self) -> int:
        """Word lines."""
        return int(self.cell_s.shape[1])

    @property
    def n_columns(self) -> int:
        """Bit lines."""
        return int(self.cell_s.shape[2])

    @property
    def word_wires(self) -> bool:
        """True when word segments have resistance (word nodes are unknowns)."""
        return math.isfinite(self.g_word_s)

    @property
    def bit_wires(self) -> bool:
        """True when bit segments have resistance (bit nodes are unknowns)."""
        return math.isfinite(self.g_bit_s)

    @property
    def neuron_held(self) -> bool:
        """True when the neuron inputs are ideal virtual grounds (held at the reference)."""
        return self.neuron_g_s is None
