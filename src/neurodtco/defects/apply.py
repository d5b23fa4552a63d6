"""Resolve defects on a concrete circuit and stick the hit cells: ``Circuit -> (Circuit, DefectRecord)``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from ..circuit import Circuit
from . import patterns as pt
from .spec import DEFAULT_CENTER, Defect, as_defect

# Periods tried when a checkerboard is sized by density: finer density steps, still visibly periodic.
MAX_CHECKERBOARD_PERIOD = 32
CHECKERBOARD_TOLERANCE = 0.01


@dataclass(frozen=True, eq=False)
class DefectRecord:
    """What ``apply_defects`` did: per-layer masks and densities, and the resolved defects.

    ``masks[l]``: bool ``[rows, cols]`` of the cells of layer ``l`` hit by any defect (all False if
    untouched). ``density[l]``: hit cells / cells of that array. ``defects``: one resolved ``Defect``
    per (requested defect, targeted layer), with a single layer and its native size parameters
    filled in (``density`` is then None); ``sources[k]`` is the index of the requested defect that
    ``defects[k]`` came from, and ``defect_masks[k]`` its own mask. ``stuck_s[l]``: the conductance
    (S) each hit cell was stuck at, NaN elsewhere. ``requested``: the defects as given; ``seed``: the seed.
    """

    masks: list[np.ndarray]
    density: list[float]
    defects: list[Defect]
    sources: list[int]
    defect_masks: list[np.ndarray]
    stuck_s: list[np.ndarray]
    requested: list[Defect]
    seed: int

    @property
    def n_hit(self) -> list[int]:
        """Number of hit cells per layer."""
        return [int(m.sum()) for m in self.masks]

    @property
    def total_density(self) -> float:
        """Hit cells over all cells of all arrays."""
        return float(sum(m.sum() for m in self.masks) / sum(m.size for m in self.masks))

    def defect_density(self, k: int) -> float:
        """Achieved density of the ``k``-th resolved defect on its own layer."""
        return float(self.defect_masks[k].mean())

    def to_dict(self) -> dict[str, Any]:
        """The JSON-friendly digest (``summary``), for stores that serialise records."""
        return self.summary()

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly digest: densities, hit counts, shapes and the resolved one-liners."""
        return {
            "seed": self.seed,
            "defect_density": list(self.density),
            "n_hit": self.n_hit,
            "shapes": [list(m.shape) for m in self.masks],
            "total_density": self.total_density,
            "requested": [d.to_string() for d in self.requested],
            "resolved": [{"source": s, "defect": d.to_string(), "density": self.defect_density(k)}
                         for k, (s, d) in enumerate(zip(self.sources, self.defects))],
        }


def apply_defects(circuit: Circuit, defects: Sequence[Union[Defect, str, Mapping[str, Any]]], seed: int = 0
                  ) -> tuple[Circuit, DefectRecord]:
    """Stick the cells each defect hits; returns the new circuit and the record (the input is unchanged).

    Defects are applied in order, so where two overlap the later one sets the stuck value. Every
    random choice comes from ``seed``, the defect's position in the list and the layer index, so the
    same call always gives the same masks.
    """
    if isinstance(defects, (Defect, str, Mapping)):
        defects = [defects]
    requested = [as_defect(d) for d in defects]
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} is not accepted: expected an integer >= 0")
    conductances = [np.array(layer.conductance, dtype=np.float64, copy=True) for layer in circuit.layers]
    masks = [np.zeros(g.shape, dtype=bool) for g in conductances]
    stuck = [np.full(g.shape, np.nan) for g in conductances]
    resolved: list[Defect] = []
    sources: list[int] = []
    defect_masks: list[np.ndarray] = []
    for n, defect in enumerate(requested):
        try:
            indices = target_layers(circuit, defect)
        except ValueError as exc:
            raise ValueError(f"defect {defect.to_string()!r}: {exc}") from None
        for index in indices:
            pattern_seq, kind_seq = np.random.SeedSequence([int(seed), n, index]).spawn(2)
            try:
                params, mask = resolve_pattern(defect, conductances[index].shape, np.random.default_rng(pattern_seq))
            except ValueError as exc:
                raise ValueError(f"defect {defect.to_string()!r} on layer {index} "
                                 f"({conductances[index].shape[0]}x{conductances[index].shape[1]}): {exc}") from None
            values = stuck_values(defect, circuit, int(mask.sum()), np.random.default_rng(kind_seq))
            conductances[index][mask] = values
            stuck[index][mask] = values
            masks[index] |= mask
            mask.setflags(write=False)
            resolved.append(Defect(pattern=defect.pattern, layers=(index,), kind=defect.kind, params=params))
            sources.append(n)
            defect_masks.append(mask)
    for array in (*masks, *stuck):
        array.setflags(write=False)
    record = DefectRecord(masks=masks, density=[float(m.mean()) for m in masks], defects=resolved,
                          sources=sources, defect_masks=defect_masks, stuck_s=stuck, requested=requested,
                          seed=int(seed))
    return circuit.with_conductances(conductances), record


def target_layers(circuit: Circuit, defect: Defect) -> list[int]:
    """Layer indices a defect targets on this circuit (refuses layers that do not exist)."""
    if defect.layers == "all":
        return list(range(circuit.n_layers))
    for index in defect.layers:
        circuit.check_layer_index(index)
    return list(defect.layers)


def stuck_values(defect: Defect, circuit: Circuit, count: int, rng: np.random.Generator) -> np.ndarray:
    """The conductance (S) each of ``count`` hit cells is stuck at."""
    cell = circuit.cell
    if defect.kind == "on":
        return np.full(count, cell.g_max)
    if defect.kind == "off":
        return np.full(count, cell.g_min)
    if defect.kind == "at":
        if "conductance_s" in defect.params:
            return np.full(count, defect.params["conductance_s"])
        return np.full(count, 1.0 / defect.params["resistance_ohm"])
    on = rng.random(count) < defect.params["on_fraction"]
    return np.where(on, cell.g_max, cell.g_min)


def kind_params(defect: Defect) -> dict[str, Any]:
    """The kind's own parameters of a defect (stuck value, on fraction)."""
    return {k: v for k, v in defect.params.items() if k in ("conductance_s", "resistance_ohm", "on_fraction")}


def resolve_pattern(defect: Defect, shape: tuple[int, int], rng: np.random.Generator
                    ) -> tuple[dict[str, Any], np.ndarray]:
    """The pattern's native parameters on an array of ``shape`` and the mask they hit."""
    rows, cols = pt.check_shape(shape)
    n_cells = rows * cols
    p = defect.params
    density = defect.density
    extra = kind_params(defect)
    pattern = defect.pattern
    if pattern == "random":
        if "p" in p:
            return {"p": p["p"], **extra}, pt.bernoulli_mask(shape, p["p"], rng)
        count = _count(p, density, n_cells, "cells")
        return {"count": count, **extra}, pt.exact_random_mask(shape, count, rng)
    if pattern == "clustered":
        count = _count(p, density, n_cells, "cells")
        length = p["correlation_cells"]
        return ({"count": count, "correlation_cells": length, **extra},
                pt.clustered_mask(shape, count, length, rng))
    if pattern in ("row", "column"):
        axis = 0 if pattern == "row" else 1
        n_lines = shape[axis]
        if "indices" in p:
            indices = pt.resolve_line_indices(n_lines, p["indices"], pattern)
        else:
            fraction = p.get("fraction", density)
            count = p["count"] if "count" in p else pt.round_half_up(fraction * n_lines)
            if count > n_lines:
                raise ValueError(f"count={count} {pattern}s asked for, but the array has {n_lines}")
            indices = pt.random_lines(n_lines, count, rng)
        resolved = {"indices": tuple(int(i) for i in indices), **extra}
        return resolved, pt.line_mask(shape, axis, indices)
    if pattern == "checkerboard":
        q = {"block": p["block"], "phase": p["phase"], "period": p.get("period", 2), "width": p.get("width", 1)}
        if density is not None:
            max_period = max(2, min(MAX_CHECKERBOARD_PERIOD, rows + cols))
            counts = pt.checkerboard_counts(shape, q["block"], q["phase"], max_period)
            target = density * n_cells
            # The shortest period within 1% of the array keeps the pattern as regular as possible;
            # failing that (tiny arrays), the closest count over all periods.
            close = [key for key, c in counts.items() if abs(c - target) <= max(0.5, CHECKERBOARD_TOLERANCE * n_cells)]
            (q["period"], q["width"]) = close[0] if close else pt.closest_count(counts, target)[0]
        return {**q, **extra}, pt.checkerboard_mask(shape, **q)
    center = p.get("center", DEFAULT_CENTER)
    if pattern in ("circular", "circular_complement"):
        radius = p["radius"] if "radius" in p else _circle_radius_for(shape, center, density, pattern)
        mask = pt.circle_mask(shape, radius, center)
        return {"radius": radius, "center": center, **extra}, (mask if pattern == "circular" else ~mask)
    if pattern == "ring":
        inner, outer = p.get("inner"), p.get("outer")
        if density is not None:
            inner, outer = _ring_radii_for(shape, center, density, inner, outer)
        return ({"inner": inner, "outer": outer, "center": center, **extra},
                pt.ring_mask(shape, inner, outer, center))
    raise AssertionError(f"pattern {pattern!r} has no resolver")  # Defect validation makes this unreachable


def _count(p: Mapping[str, Any], density: Optional[float], n_cells: int, what: str) -> int:
    count = p["count"] if "count" in p else pt.round_half_up(density * n_cells)
    if count > n_cells:
        raise ValueError(f"count={count} {what} asked for, but the array has {n_cells}")
    return count


def _candidate_radii(shape: tuple[int, int], center: tuple[float, float]) -> np.ndarray:
    """Every radius at which a circle's hit count changes, plus the farthest corner (whole array)."""
    d = np.unique(pt.normalized_distance(shape, center))
    return np.append(d, pt.max_radius(center))


def _circle_radius_for(shape: tuple[int, int], center: tuple[float, float], density: float, pattern: str) -> float:
    sorted_d = np.sort(pt.normalized_distance(shape, center).ravel())
    n_cells = sorted_d.size
    radii = _candidate_radii(shape, center)
    inside = np.searchsorted(sorted_d, radii, side="left")  # cells with d < r
    hits = inside if pattern == "circular" else n_cells - inside
    key, _ = pt.closest_count({float(r): int(h) for r, h in zip(radii, hits)}, density * n_cells)
    return float(key)


def _ring_radii_for(shape: tuple[int, int], center: tuple[float, float], density: float,
                    inner: Optional[float], outer: Optional[float]) -> tuple[float, float]:
    """Radii reaching ``density``: solve the missing radius; with neither given, inner = outer / 2."""
    sorted_d = np.sort(pt.normalized_distance(shape, center).ravel())
    n_cells = sorted_d.size
    radii = _candidate_radii(shape, center)
    r_max = pt.max_radius(center)

    def count(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.searchsorted(sorted_d, b, side="left") - np.searchsorted(sorted_d, a, side="left")

    if inner is not None:
        outers = radii[radii > inner]
        pairs = [(inner, float(o)) for o in outers]
    elif outer is not None:
        inners = np.concatenate([[0.0], radii[radii < outer]])
        pairs = [(float(i), outer) for i in inners]
    else:
        # The count changes where the outer edge or the inner edge (at half the outer) crosses a cell.
        outers = np.unique(np.concatenate([radii, 2.0 * radii]))
        outers = outers[(outers > 0) & (outers <= r_max)]
        pairs = [(float(o) / 2.0, float(o)) for o in outers]
    if not pairs:
        raise ValueError(f"no ring fits with inner={inner}: it must be below the farthest cell")
    a = np.array([q[0] for q in pairs])
    b = np.array([q[1] for q in pairs])
    counts = count(a, b)
    target = density * n_cells
    if target < counts.min() - 0.5 or target > counts.max() + 0.5:
        fixed = f"inner={inner:g}" if inner is not None else f"outer={outer:g}" if outer is not None else "inner=outer/2"
        raise ValueError(f"density={density:g} is not reachable by a ring with {fixed}: reachable densities are "
                         f"[{counts.min() / n_cells:.3g}, {counts.max() / n_cells:.3g}]")
    best, _ = pt.closest_count({k: int(c) for k, c in enumerate(counts)}, target)
    return pairs[int(best)]
