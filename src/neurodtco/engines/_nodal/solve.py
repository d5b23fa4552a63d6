"""Solve and extract: node voltages and branch currents of a factorized array for many inputs.

Inputs are the row drive voltages ``[B, R]`` (measured from the neuron reference) and, for the
Newton companion model of nonlinear cells, currents injected into word nodes and bit nodes
(rows first, ``[R, B, C]``) and into the neuron inputs ``[B or 1, C]``. Outputs are what the rest
of the circuit needs: the current each column delivers into its neuron input, the neuron input
voltages, and on request every node voltage (rows first) and the current of each row driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .factorize import Factorization, SweepBitSide


@dataclass(frozen=True, eq=False)
class ArraySolution:
    """One array's solution for a batch (volts from the neuron reference, amperes)."""

    collected_a: np.ndarray                # [B, C]: current from the last bit segment into the neuron input
    neuron_v: np.ndarray                   # [B, C]
    word_v: Optional[np.ndarray] = None    # [R, B, C] (rows first)
    bit_v: Optional[np.ndarray] = None     # [R, B, C] (rows first)
    driver_a: Optional[np.ndarray] = None  # [B, R]: current delivered by each row driver


def solve(fact: Factorization, drive_v: np.ndarray, *, inject_word: Optional[np.ndarray] = None,
          inject_bit: Optional[np.ndarray] = None, inject_neuron: Optional[np.ndarray] = None,
          nodes: bool = False, drivers: bool = True) -> ArraySolution:
    """Solve the factorized array for drive voltages ``[B, R]`` (all vectors at once).

    ``nodes`` asks for every node voltage, and then (unless ``drivers`` is False) for the
    driver currents too.
    """
    word = fact.word
    rows_v = np.ascontiguousarray(drive_v.T)
    rhs = word.sources(rows_v, inject_word)
    if inject_bit is not None:
        rhs += inject_bit
    bits, neuron, collected = fact.bit.solve(rhs, inject_neuron, nodes)
    if not nodes:
        return ArraySolution(collected, neuron)
    if bits is None:  # ideal bit lines: every bit node of a column is its neuron input
        bits = np.broadcast_to(neuron, rhs.shape).copy()
    words = word.word_voltages(rows_v, inject_word, bits)
    driver = word.driver_currents(rows_v, inject_word, words, bits).T if drivers else None
    return ArraySolution(collected, neuron, words, bits, driver)


def unit_drives(fact: Factorization, inject_neuron: Optional[np.ndarray] = None) -> ArraySolution:
    """The array's affine map: collected currents and neuron inputs ``[R + 1, C]``.

    Row ``k < R`` is the response to 1 V on row driver ``k`` alone; row ``R`` is the response to
    the neuron injection alone. Any batch is then ``drive_v @ result[:R] + result[R]``.
    """
    if fact.network.n_sets != 1:
        raise ValueError("unit drives need one set of cell conductances shared by all vectors")
    rows = fact.network.n_rows
    if isinstance(fact.bit, SweepBitSide):
        neuron, collected = fact.bit.unit_drives(fact.word.feed_s, inject_neuron)
        return ArraySolution(collected, neuron)
    inject = np.zeros((rows + 1, fact.network.n_columns))
    if inject_neuron is not None:
        inject[rows] = inject_neuron
    return solve(fact, np.eye(rows + 1, rows), inject_neuron=inject)
