"""The coupled chord solve of a tile group (``chord.py``) on a torch device, as dense matrix products.

At fixed chord slopes a tile is a linear network, so its chord solve is an affine map from its
row drives ``d`` ``[R]``, companion sources ``c`` ``[R C]`` (one per cell) and neuron injection to
its cell voltages ``[R C]``, collected currents ``[C]`` and (alone) neuron inputs ``[C]``. The map's
columns are the factorized tile's responses to unit sources (solved once per tile, in NumPy, on
the CPU); each chord step is then a handful of float64 matrix products on the device with no
loop over rows, and the shared-input coupling is the same as in ``chord.py``. A map holds
``(R C)^2`` doubles: 128 MiB for a 64 x 64 tile. A map costs one solve per unit source, so a
group read by fewer vectors than it has unit sources (a dense layer read once per image), or
with a tile whose map would exceed ``DENSE_MAX_DOUBLES``, is solved on the CPU by
``chord.group_cells`` instead (its drives moved there and its results back).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from ...devices import GapReRAMCell
from .chord import CHUNK_DOUBLES, _coupling, _reference, _Stalled, column_response, converged, group_cells
from .factorize import Factorization, factorize
from .network import ArrayNetwork
from .newton import NewtonSettings
from .solve import solve
from .tiles import column_admittance

if TYPE_CHECKING:
    import torch

#: Largest dense chord map of one tile (doubles): a 64 x 64 tile's is 4096^2, 128 MiB.
DENSE_MAX_DOUBLES = 1 << 24
#: Unit sources solved at once while a map is built.
_UNITS_PER_SOLVE = 512


@dataclass(frozen=True, eq=False)
class _DenseTile:
    """One tile's chord solve as matrices on the device (flat cells, row major)."""

    g_read: "torch.Tensor"      # [R C]
    slopes: "torch.Tensor"      # [R C]
    volts: "torch.Tensor"       # [R + R C (+ C), R C]: cell voltages per unit drive, source (, injection)
    currents: "torch.Tensor"    # [R + R C (+ C), C]: collected current per unit ...
    neuron: Optional["torch.Tensor"]    # [R + R C (+ C), C]: neuron inputs per unit ... (a tile alone)
    admittance: Optional["torch.Tensor"] = None  # [C, C]: Y (shared groups)
    response: Optional["torch.Tensor"] = None    # [C, R C]: U


def device_group_cells(cell: Any, blocks: Sequence[np.ndarray], drives: Sequence["torch.Tensor"], g_word_s: float,
                       g_bit_s: float, neuron_g_s: Optional[np.ndarray], inject_a: Optional[np.ndarray],
                       settings: NewtonSettings, label: str) -> tuple["torch.Tensor", "torch.Tensor", dict]:
    """``chord.group_cells`` for drives ``[B, R_a]`` on a torch device: neuron inputs and total collected current."""
    import torch

    if type(cell) is not GapReRAMCell:
        raise ValueError(f"{label}: cells of type {type(cell).__name__} have no torch current law; run them with "
                         "device=None (NumPy)")
    joined = torch.cat(list(drives), dim=1)
    unique, inverse = torch.unique(joined, dim=0, return_inverse=True)
    if len(unique) < len(joined):  # identical vectors (blank convolution patches) are solved once
        parts = torch.split(unique, [d.shape[1] for d in drives], dim=1)
        neuron, total, info = device_group_cells(cell, blocks, parts, g_word_s, g_bit_s, neuron_g_s, inject_a,
                                                 settings, label)
        return neuron[inverse], total[inverse], info
    device = joined.device
    info = {"method": settings.method, "iterations": 0, "full_newton_vectors": 0, "sweeps": 1}
    if settings.method == "full":
        return _on_cpu(_reference, cell, blocks, drives, g_word_s, g_bit_s, neuron_g_s, inject_a, settings, label,
                       info)
    units = sum(g.size + g.shape[0] + g.shape[1] for g in blocks)
    if len(joined) < units or max(g.size for g in blocks) ** 2 > DENSE_MAX_DOUBLES:
        # a map costs one solve per unit source: for fewer vectors than that (a dense layer read once
        # per image), the chord steps on the factorizations themselves cost less; a map too large
        # for memory is not built either
        return _on_cpu(_numpy_group, cell, blocks, drives, g_word_s, g_bit_s, neuron_g_s, inject_a, settings,
                       label, info)
    alone = len(blocks) == 1
    tiles = [_dense_tile(cell, g, d.mean(dim=0).cpu().numpy(), g_word_s, g_bit_s, neuron_g_s, alone, device)
             for g, d in zip(blocks, drives)]
    coupling = None
    if not alone:
        k_inv, y = _coupling([t.admittance.cpu().numpy() for t in tiles], neuron_g_s, label)
        coupling = (torch.tensor(k_inv, device=device), torch.tensor(y, device=device))
    inject = None if inject_a is None else torch.tensor(inject_a, device=device)
    batch, cols = joined.shape[0], blocks[0].shape[1]
    neuron = torch.empty((batch, cols), device=device, dtype=torch.float64)
    total = torch.empty_like(neuron)
    scale_v = max(float(joined.abs().max()) if batch else 0.0, 1e-3)
    chunk = max(1, CHUNK_DOUBLES // sum(g.size for g in blocks))
    for first in range(0, batch, chunk):
        parts = [d[first:first + chunk] for d in drives]
        try:
            neuron[first:first + chunk], total[first:first + chunk], steps = _iterate(
                cell, tiles, coupling, parts, inject, settings, scale_v)
            info["iterations"] = max(info["iterations"], steps)
        except _Stalled:
            n, t, _ = _on_cpu(_reference, cell, blocks, parts, g_word_s, g_bit_s, neuron_g_s, inject_a, settings,
                              f"{label} vectors {first}..", info)
            neuron[first:first + chunk], total[first:first + chunk] = n, t
            info["method"] = "chord, then full"
    return neuron, total, info


def _dense_tile(cell: GapReRAMCell, g_read: np.ndarray, mean_drive: np.ndarray, g_word_s: float, g_bit_s: float,
                neuron_g_s: Optional[np.ndarray], alone: bool, device: "torch.device") -> _DenseTile:
    """Factorize a tile at its chord slopes and solve it for every unit source: its dense chord map.

    A tile alone is factorized with its neuron inputs; a tile of a shared group with its column
    ends held, its coupling to the shared inputs (``Y``, ``U``) solved as in ``chord.py``.
    """
    import torch

    rows, cols = g_read.shape
    cells = rows * cols
    slopes = cell.differential_conductance(g_read, mean_drive[:, None])
    fact = factorize(ArrayNetwork(slopes[None], g_word_s, g_bit_s, neuron_g_s if alone else None))
    volts, currents, neuron = [], [], []
    units = [("drive", k) for k in range(rows)] + [("source", k) for k in range(cells)]
    if alone and neuron_g_s is not None:
        units += [("inject", k) for k in range(cols)]
    for first in range(0, len(units), _UNITS_PER_SOLVE):
        sol = _unit_solve(fact, units[first:first + _UNITS_PER_SOLVE])
        volts.append(np.swapaxes(sol.word_v - sol.bit_v, 0, 1).reshape(-1, cells))
        currents.append(sol.collected_a)
        neuron.append(sol.neuron_v)

    def put(a: Optional[np.ndarray]) -> Optional["torch.Tensor"]:
        return None if a is None else torch.tensor(np.ascontiguousarray(a), device=device)

    if alone:
        return _DenseTile(put(g_read.reshape(-1)), put(slopes.reshape(-1)), put(np.concatenate(volts)),
                          put(np.concatenate(currents)), put(np.concatenate(neuron)))
    return _DenseTile(put(g_read.reshape(-1)), put(slopes.reshape(-1)), put(np.concatenate(volts)),
                      put(np.concatenate(currents)), None, put(column_admittance(fact)), put(column_response(fact)))


def _unit_solve(fact: Factorization, units: list[tuple[str, int]]):
    """Node voltages for one unit source per vector: 1 V on a driver, 1 A into a cell, 1 A into a neuron input."""
    net = fact.network
    rows, cols = net.n_rows, net.n_columns
    batch = len(units)
    drive = np.zeros((batch, rows))
    source = np.zeros((rows, batch, cols))
    inject = np.zeros((batch, cols))
    for b, (kind, k) in enumerate(units):
        if kind == "drive":
            drive[b, k] = 1.0
        elif kind == "source":
            source[k // cols, b, k % cols] = 1.0
        else:
            inject[b, k] = 1.0
    # a companion source drives its current from the cell's word node into its bit node
    return solve(fact, drive, inject_word=-source, inject_bit=source,
                 inject_neuron=None if net.neuron_g_s is None else inject, nodes=True, drivers=False)


def _iterate(cell: GapReRAMCell, tiles: Sequence[_DenseTile], coupling, drives: Sequence["torch.Tensor"],
             inject: Optional["torch.Tensor"], settings: NewtonSettings, scale_v: float):
    """Chord steps from the ideal-wire voltages, every tile a few matrix products."""
    import torch

    cols = tiles[0].currents.shape[1]
    volts = [d.repeat_interleave(cols, dim=1) for d in drives]  # every cell at its row's drive
    steps: list[tuple[float, float]] = []
    old_total = None
    while True:
        held, shorts, neuron = [], [], None
        for t, d, v in zip(tiles, drives, volts):
            comp = t.g_read * cell.shape_factor * torch.sinh(v / cell.v0_v) - t.slopes * v
            parts = [d, comp]
            if t.volts.shape[0] > d.shape[1] + comp.shape[1]:  # a tile alone with a finite-gain neuron input
                parts.append(inject.expand(len(d), -1))
            sources = torch.cat(parts, dim=1)
            rows = sources.shape[1]
            held.append(sources @ t.volts[:rows])
            shorts.append(sources @ t.currents[:rows])
            if t.neuron is not None:
                neuron = sources @ t.neuron[:rows]
        if coupling is None:
            total = shorts[0]
        else:
            k_inv, y = coupling
            pushed = sum(shorts) + inject
            neuron = pushed @ k_inv
            total = pushed - inject - neuron @ y
            for h, t in zip(held, tiles):
                h += neuron @ t.response
        step_v = max(float((h - v).abs().max()) for h, v in zip(held, volts))
        step_a = float("inf") if old_total is None else float((total - old_total).abs().max())
        volts, old_total = held, total
        steps.append((step_v, step_a))
        if converged(steps, settings, scale_v, float(total.abs().max())):
            return neuron, total, len(steps)


def _numpy_group(cell: Any, blocks: Sequence[np.ndarray], drives: Sequence[np.ndarray], g_word_s: float,
                 g_bit_s: float, neuron_g_s: Optional[np.ndarray], inject_a: Optional[np.ndarray],
                 settings: NewtonSettings, label: str, info: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    """``chord.group_cells`` on the CPU (its own counts replace ``info``)."""
    return group_cells(cell, blocks, drives, g_word_s, g_bit_s, neuron_g_s, inject_a, settings, label)


def _on_cpu(solver: Any, cell: Any, blocks: Sequence[np.ndarray], drives: Sequence["torch.Tensor"], g_word_s: float,
            g_bit_s: float, neuron_g_s: Optional[np.ndarray], inject_a: Optional[np.ndarray],
            settings: NewtonSettings, label: str, info: dict):
    """Some vectors by a NumPy solver (``_reference``: true Newton), their results moved back to the device."""
    import torch

    device = drives[0].device
    neuron, total, info = solver(cell, blocks, [d.cpu().numpy() for d in drives], g_word_s, g_bit_s, neuron_g_s,
                                 inject_a, settings, label, info)[:3]
    return torch.tensor(neuron, device=device), torch.tensor(total, device=device), info
