"""Chord Newton on a group of tiles that end on the same neuron inputs: every tile in one iteration.

A *group* (``tiles.py``) is one tile alone, or the row tiles of a column block whose bit lines
meet at shared finite-gain neuron inputs. With every cell replaced by its companion model at the
chord slopes ``D`` (one slope per cell, at the batch's mean row voltage) the whole group is one
linear network, and each chord step solves it exactly:

* a tile alone is factorized with its neuron inputs (``H = (1 + A) / R_f``) and solved as is;
* tiles of a shared group are factorized with their column ends *held* at the reference. Each
  returns its cell voltages ``h`` and short-circuit currents ``s`` for the companion sources;
  Kirchhoff at the shared inputs gives ``n = (sum Y + H)^-1 (sum s + inject)`` (``Y``: each tile's
  column admittance), and raising a tile's column ends to ``n`` adds ``n U`` to its cell voltages
  (``U``: the cell voltages per volt on each column end, solved once per tile) and ``-Y n`` to its
  collected current.

So the shared inputs are coupled inside every step, not by sweeps over the tiles: the error
shrinks by the chord factor per step whatever the op-amp gain, one factorization per tile serves
every vector, and vectors are solved in chunks large enough that the sweeps' products are
BLAS-sized. Identical drive vectors (the blank patches of a convolution) are solved once. The
fixed point is the one ``tiles.coupled_cells`` and ``newton.solve_cells`` reach (the same
equations); chunks whose chord steps stall are handed to them (true Newton).

On a torch device the same iteration runs as dense matrix products (``device_chord.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from .dense import NotPositiveDefinite, spd_solve, symmetrize
from .factorize import Factorization, factorize, floating_error
from .network import ArrayNetwork
from .newton import NewtonSettings, _rate, _stalled, cell_current, solve_cells
from .solve import solve
from .tiles import column_admittance, coupled_cells

#: Doubles per chunk of a group's cell voltages: large enough that each row's product is BLAS-sized.
CHUNK_DOUBLES = 1 << 20


class _Stalled(Exception):
    """Chord steps stopped shrinking: the chunk goes to true Newton."""


@dataclass(frozen=True, eq=False)
class _Tile:
    """One tile's chord factorization and, when it shares neuron inputs, its coupling to them."""

    g_read: np.ndarray            # [R, C]
    slopes: np.ndarray            # [R, C]: chord conductances
    fact: Factorization           # held column ends in a shared group; with the neuron inputs when alone
    admittance: Optional[np.ndarray] = None   # [C, C]: Y (shared groups)
    response: Optional[np.ndarray] = None     # [R, C, C]: U, cell voltages [row, column end, column] per volt


def group_cells(cell: Any, blocks: Sequence[np.ndarray], drives: Sequence[np.ndarray], g_word_s: float,
                g_bit_s: float, neuron_g_s: Optional[np.ndarray], inject_a: Optional[np.ndarray],
                settings: NewtonSettings, label: str, drivers: bool = False) -> tuple:
    """Neuron inputs and total collected current ``[B, C]`` of a group of tiles of nonlinear cells.

    ``blocks`` are the tiles' read conductances ``[R_a, C]``, ``drives`` their rows' drives
    ``[B, R_a]`` (from the reference); ``neuron_g_s`` ``[C]`` and ``inject_a`` ``[1, C]`` the neuron
    inputs' ``H`` and offset injection (``None``: ideal op-amps, allowed for a tile alone).
    Returns ``(n, total, info)``, and with ``drivers`` a fourth item: each tile's row driver
    currents ``[B, R_a]`` (Kirchhoff on each word line: the sum of its cells' currents).
    """
    if len(blocks) > 1 and neuron_g_s is None:
        raise ValueError(f"{label}: tiles share neuron inputs only through a finite-gain op-amp; "
                         "with ideal op-amps solve each tile alone")
    joined = np.concatenate(drives, axis=1)
    unique, inverse = np.unique(joined, axis=0, return_inverse=True)
    if len(unique) < len(joined):  # e.g. the blank patches of a convolution: solve each distinct vector once
        parts = np.split(unique, np.cumsum([d.shape[1] for d in drives])[:-1], axis=1)
        solved = group_cells(cell, blocks, parts, g_word_s, g_bit_s, neuron_g_s, inject_a, settings, label, drivers)
        inverse = inverse.reshape(-1)
        mapped = (solved[0][inverse], solved[1][inverse], solved[2])
        return mapped + ([d[inverse] for d in solved[3]],) if drivers else mapped
    batch, cols = len(drives[0]), blocks[0].shape[1]
    info = {"method": settings.method, "iterations": 0, "full_newton_vectors": 0, "sweeps": 1}
    if settings.method == "full" or batch == 0:
        solved = _reference(cell, blocks, drives, g_word_s, g_bit_s, neuron_g_s, inject_a, settings, label, info,
                            drivers)
        return solved if drivers else solved[:3]
    tiles = [_chord_tile(cell, g, d, g_word_s, g_bit_s, neuron_g_s, len(blocks) == 1) for g, d in zip(blocks, drives)]
    coupling = None if len(tiles) == 1 else _coupling([t.admittance for t in tiles], neuron_g_s, label)
    neuron, total = np.empty((batch, cols)), np.empty((batch, cols))
    driver = [np.empty((batch, g.shape[0])) for g in blocks] if drivers else None
    scale_v = max(max(float(np.max(np.abs(d), initial=0.0)) for d in drives), 1e-3)
    chunk = max(1, CHUNK_DOUBLES // sum(g.size for g in blocks))
    for first in range(0, batch, chunk):
        part = slice(first, first + chunk)
        parts = [d[part] for d in drives]
        try:
            neuron[part], total[part], steps, volts = _iterate(cell, tiles, coupling, parts, inject_a, settings,
                                                               scale_v)
            info["iterations"] = max(info["iterations"], steps)
            if drivers:
                for d, t, v in zip(driver, tiles, volts):
                    d[part] = cell_current(cell, t.g_read[:, None, :], v).sum(axis=2).T
        except _Stalled:
            n, t, _, tile_drivers = _reference(cell, blocks, parts, g_word_s, g_bit_s, neuron_g_s, inject_a, settings,
                                               f"{label} vectors {first}..", info, drivers)
            neuron[part], total[part] = n, t
            if drivers:
                for d, tile_driver in zip(driver, tile_drivers):
                    d[part] = tile_driver
            info["method"] = "chord, then full"
    return (neuron, total, info, driver) if drivers else (neuron, total, info)


def _chord_tile(cell: Any, g_read: np.ndarray, drive: np.ndarray, g_word_s: float, g_bit_s: float,
                neuron_g_s: Optional[np.ndarray], alone: bool) -> _Tile:
    """Factorize one tile at its chord slopes (the cells' slopes at the batch's mean row voltage).

    A tile alone keeps its neuron inputs in the factorization; a tile of a shared group is
    factorized with its column ends held, and its coupling to them (``Y``, ``U``) is solved.
    """
    slopes = cell.differential_conductance(g_read, drive.mean(axis=0)[:, None])
    fact = factorize(ArrayNetwork(slopes[None], g_word_s, g_bit_s, neuron_g_s if alone else None))
    if alone:
        return _Tile(g_read, slopes, fact)
    rows, cols = g_read.shape
    response = np.ascontiguousarray(np.swapaxes(column_response(fact).reshape(cols, rows, cols), 0, 1))
    return _Tile(g_read, slopes, fact, column_admittance(fact), response)


def column_response(fact: Factorization) -> np.ndarray:
    """Cell voltages ``[C, R * C]`` per volt on each column end of an array factorized with held column ends.

    The last bit segment to a column end at ``n`` is, by Norton, the same segment to the reference
    plus a current ``g_b n`` into the last bit node; with ideal bit lines every bit node is at ``n``.
    """
    net = fact.network
    rows, cols = net.n_rows, net.n_columns
    eye = np.eye(cols)
    zero = np.zeros((rows, cols))
    if math.isinf(net.g_bit_s):
        bits = np.broadcast_to(eye, (rows, cols, cols)).copy()
        words = fact.word.word_voltages(zero, None, bits)
    else:
        inject = np.zeros((rows, cols, cols))
        inject[-1] = net.g_bit_s * eye
        sol = solve(fact, zero.T, inject_bit=inject, nodes=True, drivers=False)
        words, bits = sol.word_v, sol.bit_v
    return np.swapaxes(words - bits, 0, 1).reshape(cols, rows * cols)


def _coupling(admittances: Sequence[np.ndarray], neuron_g_s: np.ndarray, label: str) -> tuple[np.ndarray, np.ndarray]:
    """``(sum Y + H)^-1`` and ``sum Y`` of tiles on shared neuron inputs."""
    y = sum(admittances)
    try:
        k_inv = symmetrize(spd_solve((y + np.diag(neuron_g_s))[None], np.eye(len(y))[None])[0])
    except NotPositiveDefinite as exc:
        raise floating_error(exc.index, f"{label}: the neuron input") from None
    return k_inv, y


def converged(steps: list[tuple[float, float]], settings: NewtonSettings, scale_v: float, current_a: float) -> bool:
    """True when the last chord step leaves an error below ``rtol``; raises ``_Stalled`` when steps stop shrinking.

    ``steps`` are the largest changes of the cell voltages and of the collected currents per step,
    ``scale_v`` the largest drive and ``current_a`` the largest collected current.
    """
    step_v, step_a = steps[-1]
    if not math.isfinite(step_v):
        raise _Stalled
    # the error left after a step of a contraction with factor rho is at most rho / (1 - rho) times it
    rho = _rate(steps)
    left = rho / (1.0 - rho) if rho < 0.5 else 1.0
    if step_v * left <= settings.rtol * scale_v and step_a * left <= settings.rtol * current_a + 1e-300:
        return True
    if _stalled(steps) or len(steps) >= settings.max_iterations:
        raise _Stalled
    return False


def _iterate(cell: Any, tiles: Sequence[_Tile], coupling: Optional[tuple[np.ndarray, np.ndarray]],
             drives: Sequence[np.ndarray], inject_a: Optional[np.ndarray], settings: NewtonSettings,
             scale_v: float) -> tuple[np.ndarray, np.ndarray, int, list[np.ndarray]]:
    """Chord steps from the ideal-wire voltages until the estimated error is below ``rtol``.

    Returns the neuron inputs, the total collected current, the steps taken and every tile's
    last cell voltages ``[R, B, C]``.
    """
    # rows first [R, B, C]; every cell starts at its row's drive (word node at the driver, bit node at 0)
    volts = [np.repeat(d.T[:, :, None], t.g_read.shape[1], axis=2) for t, d in zip(tiles, drives)]
    steps: list[tuple[float, float]] = []
    old_total = None
    while True:
        held, shorts = [], []
        for t, d, v in zip(tiles, drives, volts):
            with np.errstate(over="ignore", invalid="ignore"):  # divergence shows up as a non-finite step
                comp = cell_current(cell, t.g_read[:, None, :], v)
                comp -= t.slopes[:, None, :] * v
            sol = solve(t.fact, d, inject_word=-comp, inject_bit=comp,
                        inject_neuron=inject_a if coupling is None else None, nodes=True, drivers=False)
            held.append(sol.word_v - sol.bit_v)
            shorts.append(sol)
        if coupling is None:
            neuron, total = shorts[0].neuron_v, shorts[0].collected_a
        else:
            k_inv, y = coupling
            pushed = sum(s.collected_a for s in shorts) + inject_a
            neuron = pushed @ k_inv
            total = pushed - inject_a - neuron @ y
            for h, t in zip(held, tiles):
                h += np.matmul(neuron, t.response)  # [R, B, C], row by row
        with np.errstate(invalid="ignore"):
            # v is not needed after this step: its buffer takes |h - v|
            step_v = max(float(np.max(np.abs(np.subtract(h, v, out=v), out=v), initial=0.0))
                         for h, v in zip(held, volts))
        step_a = math.inf if old_total is None else _max_abs(total - old_total)
        volts, old_total = held, total
        steps.append((step_v, step_a))
        if converged(steps, settings, scale_v, _max_abs(total)):
            return neuron, total, len(steps), volts


def _reference(cell: Any, blocks: Sequence[np.ndarray], drives: Sequence[np.ndarray], g_word_s: float,
               g_bit_s: float, neuron_g_s: Optional[np.ndarray], inject_a: Optional[np.ndarray],
               settings: NewtonSettings, label: str, info: dict,
               drivers: bool = False) -> tuple[np.ndarray, np.ndarray, dict, Optional[list[np.ndarray]]]:
    """The group by the tile-by-tile solvers (true Newton available; Gauss-Seidel over shared tiles).

    Returns ``(n, total, info, driver currents per tile or None)``.
    """
    if len(blocks) > 1:
        solved = coupled_cells(cell, blocks, drives, g_word_s, g_bit_s, neuron_g_s, inject_a, settings, label,
                               drivers=drivers)
        neuron, total, sub = solved[:3]
        driver = solved[3] if drivers else None
        info["sweeps"] = max(info["sweeps"], sub["sweeps"])
    else:
        sol, sub = solve_cells(cell, blocks[0], g_word_s, g_bit_s, neuron_g_s, drives[0], inject_a, settings, label,
                               drivers=drivers)
        neuron, total, driver = sol.neuron_v, sol.collected_a, [sol.driver_a]
    info["iterations"] = max(info["iterations"], sub["iterations"])
    info["full_newton_vectors"] += sub["full_newton_vectors"]
    if sub["method"] != settings.method:
        info["method"] = sub["method"]
    return neuron, total, info, driver if drivers else None


def _max_abs(a: np.ndarray) -> float:
    return float(np.max(np.abs(a), initial=0.0))


__all__ = ["column_response", "converged", "group_cells"]
