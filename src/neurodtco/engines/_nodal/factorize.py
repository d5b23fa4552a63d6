"""Factorize: eliminate an array's nodes once, so every input vector is a few matrix products.

The nodal matrix is never formed. Its structure does the work (``R`` rows, ``C`` columns):

1. **Word side** (per row): the word nodes of row ``i`` couple only to each other (a tridiagonal
   line ``A_i = g_w T + D_i``) and, through the cells ``D_i = diag(G[i, :])``, to the bit nodes
   of the same row. Eliminating them leaves, for the bit side of row ``i``, a current source
   ``f_i V_i + D_i A_i^-1 r_i`` (driver ``V_i``, injections ``r_i``) and a dense conductance
   ``S_i = D_i - D_i A_i^-1 D_i`` between the row's bit nodes and its driver.
2. **Bit side**: the bit nodes form ``C`` lines down the columns. With the word side eliminated
   the bit system is block tridiagonal over rows (diagonal blocks ``S_i + c_i g_b I``, off-diagonal
   blocks ``-g_b I``), closed by the neuron inputs. Block elimination from the top row down
   (``SweepBitSide``) keeps the *excess* ``E_i = M_i - g_b I`` of each pivot block instead of the
   pivot itself, so that strong bit wires (``g_b >> G``) lose no digits to cancellation:
   ``E_0 = S_0``, ``E_i = S_i + g_b E_{i-1} M_{i-1}^-1``.
   Ideal word lines make every ``S_i`` diagonal, so each column is its own tridiagonal line
   (``ChainBitSide``); ideal bit lines make each column one node (``LumpedBitSide``).

Costs: ``O(R C^2)`` for the word side and ``O(R C^3)`` for the sweep, all in BLAS.

Layout: arrays are rows first. Factors are ``[R, S, ...]`` (``S`` = 1 set of cells shared by every
input vector, or one set per vector for true Newton), per-vector sources and node voltages are
``[R, B, C]``, so that each row's slice is contiguous for the sequential sweeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from . import tridiagonal
from .dense import NotPositiveDefinite, apply, apply_rows, spd_solve, symmetrize
from .network import ArrayNetwork

#: Rows of Schur complements formed at once (bounds memory for large arrays).
_BLOCK_DOUBLES = 1 << 20
#: A pivot below this fraction of its diagonal means the node has no path to a fixed voltage.
_FLOATING_PIVOT = 1e-13


def floating_error(column: int, where: str) -> ValueError:
    """The error for a node whose voltage nothing determines (a singular nodal matrix)."""
    return ValueError(
        f"the nodal matrix is singular: {where} of column {column} floats (no conducting path to a "
        "driver or to a fixed neuron input; e.g. every cell of the column open, G = 0 S, with a "
        "neuron input that holds no voltage)"
    )


@dataclass(frozen=True, eq=False)
class WordSide:
    """Row-by-row elimination of the word nodes (or, with ideal word lines, the drivers themselves)."""

    cell_s: np.ndarray                # [R, S, C]
    g_word_s: float
    line_inv: Optional[np.ndarray]    # [R, S, C, C]: A_i^-1; None with ideal word lines
    feed_s: np.ndarray                # [R, S, C]: f_i, current into the bit side per volt of V_i

    @classmethod
    def build(cls, net: ArrayNetwork) -> "WordSide":
        """Eliminate every row's word line."""
        d = np.ascontiguousarray(np.swapaxes(net.cell_s, 0, 1))
        if not net.word_wires:
            return cls(d, net.g_word_s, None, d)
        g = net.g_word_s
        ends = np.full(net.n_columns, 2.0)
        ends[-1] = 1.0  # the far end of the line has no segment beyond it
        if net.n_columns == 1:
            ends[0] = 1.0  # only the driver segment
        line_inv = tridiagonal.inverse(d + g * ends, g)
        feed = g * d * line_inv[..., :, 0]
        return cls(d, g, line_inv, feed)

    def schur_rows(self, rows: slice) -> np.ndarray:
        """``S_i = D_i - D_i A_i^-1 D_i`` ``[k, S, C, C]`` for a block of rows: the bit side's view."""
        d = self.cell_s[rows]
        idx = np.arange(d.shape[-1])
        if self.line_inv is None:
            s = np.zeros(d.shape + d.shape[-1:])
            s[..., idx, idx] = d
            return s
        # in place, two passes: these blocks are the largest arrays a big array's solve touches
        s = np.multiply(self.line_inv[rows], -d[..., :, None])
        s *= d[..., None, :]
        s[..., idx, idx] += d
        return s

    def sources(self, drive_v: np.ndarray, inject_word: Optional[np.ndarray]) -> np.ndarray:
        """Current ``[R, B, C]`` the word side pushes into bit nodes held at the reference.

        ``drive_v`` is rows first, ``[R, B]``.
        """
        out = self.feed_s * drive_v[:, :, None]
        if inject_word is not None and self.line_inv is not None:
            out += self.cell_s * apply_rows(self.line_inv, inject_word)
        return out

    def word_voltages(self, drive_v: np.ndarray, inject_word: Optional[np.ndarray], bit_v: np.ndarray) -> np.ndarray:
        """Word node voltages ``[R, B, C]`` once the bit nodes are known."""
        if self.line_inv is None:
            return np.broadcast_to(drive_v[:, :, None], bit_v.shape).copy()
        src = self.cell_s * bit_v
        src[..., 0] += self.g_word_s * drive_v
        if inject_word is not None:
            src += inject_word
        return apply_rows(self.line_inv, src)

    def driver_currents(self, drive_v: np.ndarray, inject_word: Optional[np.ndarray], word_v: np.ndarray,
                        bit_v: np.ndarray) -> np.ndarray:
        """Current ``[R, B]`` each row driver delivers.

        Kirchhoff on the whole word line: the driver and the injections feed the row's cells.
        Summing cell currents avoids ``g_w (V - w_0)``, a small difference of near-equal voltages.
        """
        out = np.sum(self.cell_s * (word_v - bit_v), axis=2)
        if inject_word is not None:
            out -= inject_word.sum(axis=2)
        return out


@dataclass(frozen=True, eq=False)
class SweepBitSide:
    """Resistive bit lines behind resistive word lines: block elimination from row 0 down."""

    g_bit_s: float
    pivot_inv: np.ndarray             # [R, S, C, C]: M_i^-1
    last_excess: np.ndarray           # [S, C, C]: g_b E_{R-1} M_{R-1}^-1
    neuron_inv: Optional[np.ndarray]  # [S, C, C]: (H + g_b E_{R-1} M_{R-1}^-1)^-1; None when held

    @classmethod
    def build(cls, net: ArrayNetwork, word: WordSide) -> "SweepBitSide":
        """Eliminate the bit rows one after the other."""
        g = net.g_bit_s
        n_sets, rows, cols = net.cell_s.shape
        pivot_inv = np.empty((rows, n_sets, cols, cols))
        passed = None  # g_b E_{i-1} M_{i-1}^-1: what the rows above pass down
        eye_g, eye_over_g = g * np.eye(cols), np.eye(cols) / g
        block = max(1, _BLOCK_DOUBLES // (n_sets * cols * cols))
        for first in range(0, rows, block):
            schur = word.schur_rows(slice(first, first + block))
            for k, excess in enumerate(schur):
                if passed is not None:
                    excess += passed
                pivot = excess + eye_g
                try:
                    # X = M^-1 E with M = g I + E; then g M^-1 = I - X and g E M^-1 = g X, both
                    # free of the cancellation in g I - g^2 M^-1. (X is symmetric up to rounding;
                    # LAPACK reads one triangle of the next pivot, so the rounding never builds up.)
                    x = spd_solve(pivot, excess)
                except NotPositiveDefinite as exc:
                    raise floating_error(exc.index, f"the bit line at row {first + k}") from None
                p = pivot_inv[first + k]
                np.multiply(x, -1.0 / g, out=p)
                p += eye_over_g
                passed = x
                passed *= g
        neuron_inv = None
        if net.neuron_g_s is not None:
            try:
                neuron_inv = _spd_inverse(passed + np.diag(net.neuron_g_s))
            except NotPositiveDefinite as exc:
                raise floating_error(exc.index, "the neuron input") from None
        return cls(g, pivot_inv, passed, neuron_inv)

    def unit_drives(self, feed: np.ndarray, inject_neuron: Optional[np.ndarray]):
        """Neuron inputs and collected currents ``[R + 1, C]``: 1 V on each row driver in turn,
        then the neuron injection alone.

        Same as ``solve`` with one source row per vector, but a vector driven at row ``k`` has
        nothing to carry down before row ``k``: skipping those zeros halves the work.
        """
        g, p = self.g_bit_s, self.pivot_inv
        rows = feed.shape[0]
        y = np.zeros((rows + 1, feed.shape[2]))
        y[0] = feed[0, 0]
        for i in range(1, rows):
            y[:i] = g * apply(p[i - 1], y[:i])
            y[i] = feed[i, 0]
        inject = np.zeros_like(y)
        if inject_neuron is not None:
            inject[rows] = inject_neuron
        return self._close(y, inject)

    def unit_energy(self, feed: np.ndarray) -> np.ndarray:
        """``F^T K^-1 F`` ``[R, R]`` for 1 V on each row driver (``F``: the word side's feed, ``K``: the bit side, held).

        With ``K = L D L^T`` (the sweep's pivots are ``D``) it is ``sum_i z_i^T M_i^-1 z_i`` over the
        forward sweep's eliminated sources ``z``: no back sweep, and a vector driven at row ``k`` has
        nothing to carry before row ``k`` (as in ``unit_drives``).
        """
        if self.neuron_inv is not None:
            raise ValueError("unit_energy needs the neuron inputs held (a tile's column ends)")
        g, p = self.g_bit_s, self.pivot_inv
        rows = feed.shape[0]
        y = np.zeros((rows, feed.shape[2]))
        out = np.zeros((rows, rows))
        for i in range(rows):
            if i:
                y[:i] = g * apply(p[i - 1], y[:i])
            y[i] = feed[i, 0]
            z = y[:i + 1]
            out[:i + 1, :i + 1] += apply(p[i], z) @ z.T
        return out

    def solve(self, rhs: np.ndarray, inject_neuron: Optional[np.ndarray], nodes: bool):
        """Bit voltages (if ``nodes``), neuron inputs and collected currents for sources ``rhs``."""
        g, p = self.g_bit_s, self.pivot_inv
        rows = rhs.shape[0]
        partial = np.empty_like(rhs) if nodes else None
        y = rhs[0]
        for i in range(1, rows):
            if nodes:
                partial[i - 1] = y
            y = apply(p[i - 1], y)
            y *= g
            y += rhs[i]
        if nodes:
            partial[rows - 1] = y
        neuron, collected = self._close(y, inject_neuron)
        if not nodes:
            return None, neuron, collected
        bits = partial  # overwritten from the bottom up: row i's partial sum is read before it is replaced
        b = apply(p[rows - 1], y + g * neuron)
        bits[rows - 1] = b
        for i in range(rows - 2, -1, -1):
            b *= g
            b += partial[i]
            b = apply(p[i], b)
            bits[i] = b
        return bits, neuron, collected

    def _close(self, y: np.ndarray, inject_neuron: Optional[np.ndarray]):
        """Neuron inputs and collected currents from the last row's eliminated sources ``y``."""
        g_p_y = self.g_bit_s * apply(self.pivot_inv[-1], y)
        if self.neuron_inv is None:
            return np.zeros_like(g_p_y), g_p_y
        src = g_p_y if inject_neuron is None else g_p_y + inject_neuron
        neuron = apply(self.neuron_inv, src)
        return neuron, g_p_y - apply(self.last_excess, neuron)


@dataclass(frozen=True, eq=False)
class ChainBitSide:
    """Resistive bit lines behind ideal word lines: every column is one tridiagonal line."""

    g_bit_s: float
    pivots: np.ndarray   # [S, C, L]: Thomas pivots down each column (L = R, + 1 for a free neuron input)
    held: bool

    @classmethod
    def build(cls, net: ArrayNetwork) -> "ChainBitSide":
        """Pivots of every column's line, the neuron input appended when it is free."""
        g = net.g_bit_s
        d = np.swapaxes(net.cell_s, 1, 2)  # [S, C, R]: the line runs along the last axis
        segs = np.full(net.n_rows, 2.0 * g)
        segs[0] = g  # the top cell has a segment below it only (or only the neuron segment)
        diag = d + segs
        if net.neuron_g_s is not None:
            neuron = np.broadcast_to((g + net.neuron_g_s)[None, :, None], d.shape[:2] + (1,))
            diag = np.concatenate([diag, neuron], axis=2)
        den = tridiagonal.pivots(diag, g)
        bad = den <= _FLOATING_PIVOT * diag
        if np.any(bad):
            where = np.argwhere(bad)[0]
            raise floating_error(int(where[1]), "the bit line" if where[2] < net.n_rows else "the neuron input")
        return cls(g, den, net.neuron_g_s is None)

    def solve(self, rhs: np.ndarray, inject_neuron: Optional[np.ndarray], nodes: bool):
        """Bit voltages, neuron inputs and collected currents for sources ``rhs`` ``[R, B, C]``."""
        rows = rhs.shape[0]
        line = np.moveaxis(rhs, 0, -1)  # [B, C, R]
        if not self.held:
            extra = np.zeros(line.shape[:2] + (1,))
            if inject_neuron is not None:
                extra[..., 0] = inject_neuron
            line = np.concatenate([line, extra], axis=2)
        x = tridiagonal.solve(self.pivots, self.g_bit_s, line)
        bits = np.ascontiguousarray(np.moveaxis(x[..., :rows], -1, 0))
        neuron = np.zeros(bits.shape[1:]) if self.held else x[..., rows]
        collected = self.g_bit_s * (bits[rows - 1] - neuron)
        return bits, neuron, collected


@dataclass(frozen=True, eq=False)
class LumpedBitSide:
    """Ideal bit lines: every column is one node, the neuron input."""

    schur_sum: Optional[np.ndarray]    # [S, C, C]: sum over rows of S_i; None when held
    neuron_inv: Optional[np.ndarray]   # [S, C, C]: (sum S_i + H)^-1; None when held

    @classmethod
    def build(cls, net: ArrayNetwork, word: WordSide) -> "LumpedBitSide":
        """Sum the rows' views of the column nodes."""
        if net.neuron_g_s is None:
            return cls(None, None)  # held inputs: nothing to solve, nothing flows back
        total = sum(word.schur_rows(slice(i, i + 1))[0] for i in range(net.n_rows))
        try:
            neuron_inv = _spd_inverse(total + np.diag(net.neuron_g_s))
        except NotPositiveDefinite as exc:
            raise floating_error(exc.index, "the bit line") from None
        return cls(total, neuron_inv)

    def solve(self, rhs: np.ndarray, inject_neuron: Optional[np.ndarray], nodes: bool):
        """Neuron inputs (the bit lines) and collected currents for sources ``rhs`` ``[R, B, C]``."""
        pushed = rhs.sum(axis=0)
        if self.neuron_inv is None:
            return None, np.zeros_like(pushed), pushed
        src = pushed if inject_neuron is None else pushed + inject_neuron
        neuron = apply(self.neuron_inv, src)
        return None, neuron, pushed - apply(self.schur_sum, neuron)


BitSide = Union[SweepBitSide, ChainBitSide, LumpedBitSide]


@dataclass(frozen=True, eq=False)
class Factorization:
    """An array's network with its word and bit sides eliminated."""

    network: ArrayNetwork
    word: WordSide
    bit: BitSide


def factorize(net: ArrayNetwork) -> Factorization:
    """Eliminate the array's nodes; the result solves any number of input vectors."""
    word = WordSide.build(net)
    if not net.bit_wires:
        bit: BitSide = LumpedBitSide.build(net, word)
    elif not net.word_wires:
        bit = ChainBitSide.build(net)
    else:
        bit = SweepBitSide.build(net, word)
    return Factorization(net, word, bit)


def _spd_inverse(mat: np.ndarray) -> np.ndarray:
    eye = np.broadcast_to(np.eye(mat.shape[-1]), mat.shape)
    return symmetrize(spd_solve(mat, eye))
