"""Tiles: a layer cut into separate arrays, joined again at the neuron inputs.

Every tile is an array of its own (its own word and bit segments, its rows driven by their own
drivers). Seen from its column ends, a tile of linear cells is a Norton equivalent: with the
column ends held at the reference it delivers the short-circuit currents ``s = M d`` (``d``: its
rows' drives), and with the column ends at voltages ``n`` it delivers ``s - Y n``, where ``Y``
(``C x C``, symmetric positive semi-definite) is its admittance with every driver at the reference.
``Y`` falls out of the elimination in ``factorize``: the sweep's last *excess*, the lumped bit
side's sum of Schur blocks, or per column the series-parallel reduction of a bit-line chain.

Tiles that end on the same neuron inputs (a *group*: every row tile of a column block with
``combine="shared"``, each tile alone with ``combine="summing"``) obey Kirchhoff there:
``sum (s - Y n) + inject - H n = 0`` with ``H = (1 + A) / R_f``, so
``n = (sum Y + H)^-1 (sum s + inject)`` and the group's collected current is ``sum s - (sum Y) n``.
Each group's transimpedance output is ``V_os + n - R_f I``; a column's output is the sum over its
groups (one group when shared; a summing amplifier adding the tiles' outputs when summing).

Nonlinear cells: the engine solves row tiles that share finite-gain neuron inputs together, the
shared node coupled inside every chord step (``chord.py``). ``coupled_cells`` is the tile-by-tile
reference it falls back to (true Newton, ``newton="full"``): Gauss-Seidel over the tiles, Newton
inside each, tile ``a`` seeing the others' latest currents injected into its neuron inputs. At
the fixed point every tile's node voltage is the same and Kirchhoff holds at the shared node
exactly; each sweep shrinks the error by about ``Y / H`` (``1e-3`` or less for op-amp gains of
``1e3`` and up), so a few sweeps reach ``rtol``.

Power: a tile's row drivers deliver ``I = S d - s^T n`` (``S`` ``[R_t, R_t]``: the driver currents per
volt on each driver with the column ends held; ``-s^T``: per volt on each column end, by
reciprocity), so with ``n`` affine in the drives the driver currents are too (``DriverMap``): one
factorization per tile serves the outputs and the power of every vector.

Voltages are measured from the neuron reference ``V_os``, as everywhere in ``_nodal``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from ...circuit import Tile
from .dense import NotPositiveDefinite, spd_solve, symmetrize
from .factorize import (_BLOCK_DOUBLES, ChainBitSide, Factorization, LumpedBitSide, SweepBitSide, factorize,
                        floating_error)
from .network import ArrayNetwork
from .newton import ConvergenceError, NewtonSettings, solve_cells
from .solve import unit_drives


@dataclass(frozen=True, eq=False)
class TileResponse:
    """One tile of linear cells seen from its column ends (drives from the neuron reference)."""

    tile: Tile
    short_a: np.ndarray       # [R_t, C_t]: collected current per volt on each row driver, column ends held
    admittance_s: np.ndarray  # [C_t, C_t]: Y, with every driver at the reference
    driver_s: Optional[np.ndarray] = None  # [R_t, R_t]: S, driver currents per driver volt, column ends held


def tile_response(tile: Tile, conductance: np.ndarray, g_word_s: float, g_bit_s: float,
                  drivers: bool = False) -> TileResponse:
    """Factorize one tile with its column ends held and read off its Norton equivalent (and ``S`` if ``drivers``)."""
    fact = factorize(ArrayNetwork(conductance[None], g_word_s, g_bit_s))
    short = unit_drives(fact).collected_a[:-1]  # the last row is the (absent) neuron injection
    return TileResponse(tile, short, column_admittance(fact), driver_admittance(fact) if drivers else None)


def driver_admittance(fact: Factorization) -> np.ndarray:
    """``S`` ``[R, R]`` of an array factorized with its column ends held: driver currents per volt on each driver.

    Eliminating the word line, driver ``i`` delivers ``sum_j f_ij (V_i - b_ij)`` (``f``: the word
    side's feed; its row sum is the line's conductance into bit nodes held at 0), so
    ``S = diag(sum_j f_ij) - F^T K^-1 F`` with ``K`` the bit side: the sweep's forward pass alone
    gives the second term (``SweepBitSide.unit_energy``); otherwise one bit solve per driver
    (chunked so that the bit voltages stay small).
    """
    net, word = fact.network, fact.word
    if net.neuron_g_s is not None or net.n_sets != 1:
        raise ValueError("a driver admittance needs one set of cell conductances and held column ends")
    rows = net.n_rows
    if isinstance(fact.bit, SweepBitSide):
        return symmetrize(np.diag(word.feed_s[:, 0].sum(axis=1)) - fact.bit.unit_energy(word.feed_s))
    out = np.empty((rows, rows))
    step = max(1, _BLOCK_DOUBLES // (rows * net.n_columns))
    for first in range(0, rows, step):
        drive = np.ascontiguousarray(np.eye(rows)[:, first:first + step])  # rows first [R, k]
        bits, neuron, _ = fact.bit.solve(word.sources(drive, None), None, True)
        if bits is None:  # ideal bit lines: every bit node is its column's neuron input (held at 0)
            bits = np.broadcast_to(neuron, (rows,) + neuron.shape)
        out[:, first:first + step] = np.sum(word.feed_s * (drive[:, :, None] - bits), axis=2)
    return symmetrize(out)


def column_admittance(fact: Factorization) -> np.ndarray:
    """``Y`` ``[C, C]`` of an array factorized with held neuron inputs: the conductance its column ends see."""
    net, bit = fact.network, fact.bit
    if net.n_sets != 1:
        raise ValueError("a column admittance needs one set of cell conductances shared by all vectors")
    if isinstance(bit, SweepBitSide):
        return symmetrize(bit.last_excess[0])
    if isinstance(bit, ChainBitSide):
        # Series-parallel down each column: the excess e_k of bit node k over its segment below is its
        # cell plus the chain above in series with one segment; no g - g^2/den cancellation.
        g = net.g_bit_s
        d = net.cell_s[0]
        excess = d[0].copy()
        for row in d[1:]:
            excess = row + g * excess / (g + excess)
        return np.diag(g * excess / (g + excess))
    assert isinstance(bit, LumpedBitSide)
    word = fact.word
    if word.line_inv is None:
        return np.diag(net.cell_s[0].sum(axis=0))
    cols = net.n_columns
    total = np.zeros((cols, cols))
    step = max(1, _BLOCK_DOUBLES // (cols * cols))
    for first in range(0, net.n_rows, step):
        total += word.schur_rows(slice(first, first + step))[:, 0].sum(axis=0)
    return symmetrize(total)


def tia_map(responses: Sequence[TileResponse], n_rows: int, n_columns: int, combine: str,
            neuron_g_s: Optional[np.ndarray], inject_a: Optional[np.ndarray], offset_v: float,
            feedback_ohm: float, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Transimpedance outputs of a tiled layer as an affine map of its row drives.

    Returns ``per_volt`` ``[n_rows, n_columns]`` (output per volt on each row driver, drives
    measured from ``V_os``) and ``at_offset`` ``[n_columns]`` (every driver at ``V_os``).
    ``neuron_g_s``/``inject_a`` ``[n_columns]`` are ``H`` and the offset's injection; ``None``
    for ideal op-amps (the neuron inputs held at the reference).
    """
    per_volt = np.zeros((n_rows, n_columns))
    at_offset = np.zeros(n_columns)
    for group, k_inv, y in _coupled_groups(responses, combine, neuron_g_s, label):
        cols = group[0].tile.columns
        at_offset[cols] += offset_v
        if k_inv is None:  # virtual grounds: nothing flows back, the tiles' currents add
            for r in group:
                per_volt[r.tile.rows, cols] = -feedback_ohm * r.short_a
            continue
        for r in group:
            n = r.short_a @ k_inv
            per_volt[r.tile.rows, cols] = n - feedback_ohm * (r.short_a - n @ y)
        n0 = inject_a[cols] @ k_inv
        at_offset[cols] += n0 + feedback_ohm * (n0 @ y)
    return per_volt, at_offset


@dataclass(frozen=True, eq=False)
class DriverMap:
    """Row driver currents of a layer of linear cells (tiled or not) as a function of its row drives.

    ``groups``: each group of tiles on the same neuron inputs with its ``(sum Y + H)^-1`` (``None``
    for virtual grounds); ``inject_a`` ``[C]`` the neuron inputs' offset injection.
    """

    n_rows: int
    groups: list[tuple[list[TileResponse], Optional[np.ndarray]]]
    inject_a: Optional[np.ndarray]

    def currents(self, drive_v: np.ndarray) -> np.ndarray:
        """Current ``[B, n_rows]`` each layer row's drivers deliver, summed over its column tiles.

        ``drive_v`` ``[B, n_rows]`` is measured from the neuron reference.
        """
        out = np.zeros((len(drive_v), self.n_rows))
        for group, k_inv in self.groups:
            n = None
            if k_inv is not None:
                cols = group[0].tile.columns
                n = (sum(drive_v[:, r.tile.rows] @ r.short_a for r in group) + self.inject_a[cols]) @ k_inv
            for r in group:
                current = drive_v[:, r.tile.rows] @ r.driver_s
                if n is not None:
                    current -= n @ r.short_a.T  # raising the column ends to n: -s^T per volt (reciprocity)
                out[:, r.tile.rows] += current
        return out

    def power(self, rows_v: np.ndarray, offset_v: float) -> np.ndarray:
        """Power ``[B]`` the row drivers deliver at absolute row voltages ``rows_v`` ``[B, n_rows]``."""
        return np.sum(rows_v * self.currents(rows_v - offset_v), axis=1)


def driver_map(responses: Sequence[TileResponse], n_rows: int, combine: str, neuron_g_s: Optional[np.ndarray],
               inject_a: Optional[np.ndarray], label: str) -> DriverMap:
    """The ``DriverMap`` of a layer's tiles (each ``TileResponse`` built with ``drivers=True``)."""
    groups = [(group, k_inv) for group, k_inv, _ in _coupled_groups(responses, combine, neuron_g_s, label)]
    return DriverMap(n_rows, groups, inject_a)


def _coupled_groups(responses: Sequence[TileResponse], combine: str, neuron_g_s: Optional[np.ndarray],
                    label: str) -> list[tuple[list[TileResponse], Optional[np.ndarray], Optional[np.ndarray]]]:
    """Each group with ``(sum Y + H)^-1`` and ``sum Y`` (both ``None`` for virtual grounds)."""
    out = []
    for group in _groups(responses, combine):
        if neuron_g_s is None:
            out.append((group, None, None))
            continue
        cols = group[0].tile.columns
        y = sum(r.admittance_s for r in group)
        out.append((group, _spd_inverse(y + np.diag(neuron_g_s[cols]), int(cols.start), label), y))
    return out


def _groups(responses: Sequence[TileResponse], combine: str) -> list[list[TileResponse]]:
    """Tiles that end on the same neuron inputs: a column block's row tiles (shared), or each tile alone."""
    if combine == "summing":
        return [[r] for r in responses]
    blocks: dict[int, list[TileResponse]] = {}
    for r in responses:
        blocks.setdefault(r.tile.grid[1], []).append(r)
    return list(blocks.values())


def _spd_inverse(mat: np.ndarray, first_column: int, label: str) -> np.ndarray:
    try:
        return symmetrize(spd_solve(mat[None], np.eye(len(mat))[None])[0])
    except NotPositiveDefinite as exc:
        raise floating_error(first_column + exc.index, f"{label}: the neuron input") from None


def coupled_cells(cell: Any, blocks: Sequence[np.ndarray], drives: Sequence[np.ndarray], g_word_s: float,
                  g_bit_s: float, neuron_g_s: np.ndarray, inject_a: np.ndarray, settings: NewtonSettings,
                  label: str, drivers: bool = False) -> tuple:
    """Row tiles of nonlinear cells on shared finite-gain neuron inputs: neuron inputs and total collected current.

    ``blocks`` are the tiles' read conductances ``[R_a, C]``, ``drives`` their rows' drives
    ``[B, R_a]`` (from the reference); ``neuron_g_s`` ``[C]`` and ``inject_a`` ``[1, C]`` the
    neuron inputs' ``H`` and offset injection. Returns ``n`` and ``sum_a I_a``, both ``[B, C]``, the
    info, and with ``drivers`` a fourth item: each tile's driver currents ``[B, R_a]`` (last sweep).
    """
    batch, cols = len(drives[0]), blocks[0].shape[1]
    currents = [np.zeros((batch, cols)) for _ in blocks]
    driver: list = [None] * len(blocks)
    info = {"method": settings.method, "iterations": 0, "full_newton_vectors": 0, "sweeps": 0}
    for sweep in range(1, settings.max_iterations + 1):
        change = 0.0
        for a, (g, drive) in enumerate(zip(blocks, drives)):
            others = sum(currents[b] for b in range(len(blocks)) if b != a)
            sol, tile_info = solve_cells(cell, g, g_word_s, g_bit_s, neuron_g_s, drive, inject_a + others, settings,
                                         f"{label} row tile {a}", drivers=drivers)
            change = max(change, float(np.max(np.abs(sol.collected_a - currents[a]))))
            currents[a], driver[a] = sol.collected_a, sol.driver_a
            info["iterations"] = max(info["iterations"], tile_info["iterations"])
            info["full_newton_vectors"] += tile_info["full_newton_vectors"]
        total = sum(currents)
        info["sweeps"] = sweep
        if change <= settings.rtol * float(np.max(np.abs(total))) + 1e-300:
            break
    else:
        raise ConvergenceError(f"{label}: the row tiles sharing neuron inputs did not settle after {sweep} sweeps "
                               f"(last change {change:.3g} A); raise max_iterations")
    # Kirchhoff at the shared node: H n = sum_a I_a + inject
    neuron = (total + inject_a) / neuron_g_s
    return (neuron, total, info, driver) if drivers else (neuron, total, info)
