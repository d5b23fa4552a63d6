"""Resolve defects on a concrete circuit and stick the hit cells: ``Circuit -> (Circuit, DefectRecord)``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from ..circuit import Circuit, Layer, Tile
from . import patterns as pt
from .spec import DEFAULT_CENTER, Defect, as_defect

# Periods tried when a checkerboard is sized by density: finer density steps, still visibly periodic.
MAX_CHECKERBOARD_PERIOD = 32
CHECKERBOARD_TOLERANCE = 0.01


@dataclass(frozen=True, eq=False)
class DefectRecord:
    """What ``apply_defects`` did: per-layer masks and densities, and the resolved defects.

    ``masks[l]``: bool ``[rows, cols]`` of the cells of layer ``l``'s matrix hit by any defect (all
    False if untouched). ``density[l]``: hit cells / cells of that layer. ``tile_density[l][t]``: hit
    cells / cells of tile ``t`` of layer ``l`` (``tiles[l]``; an untiled layer is one tile), what
    each physical array received. ``defects``: one resolved ``Defect`` per (requested defect,
    targeted layer, targeted tile), with a single layer (and on a tiled layer a single tile, its
    index in ``defect_tiles``) and its native size parameters filled in (``density`` is then None);
    ``sources[k]`` is the index of the requested defect that ``defects[k]`` came from, and
    ``defect_masks[k]`` its own mask over the layer. ``stuck_s[l]``: the conductance (S) each hit
    cell was stuck at, NaN elsewhere. ``requested``: the defects as given; ``seed``: the seed.
    """

    masks: list[np.ndarray]
    density: list[float]
    defects: list[Defect]
    sources: list[int]
    defect_masks: list[np.ndarray]
    stuck_s: list[np.ndarray]
    requested: list[Defect]
    seed: int
    tiles: list[list[Tile]]
    tile_density: list[list[float]]
    defect_tiles: list[int]

    @property
    def n_hit(self) -> list[int]:
        """Number of hit cells per layer."""
        return [int(m.sum()) for m in self.masks]

    @property
    def total_density(self) -> float:
        """Hit cells over all cells of all arrays."""
        return float(sum(m.sum() for m in self.masks) / sum(m.size for m in self.masks))

    def defect_density(self, k: int) -> float:
        """Achieved density of the ``k``-th resolved defect on its own array (its tile)."""
        layer = self.defects[k].layers[0]
        tile = self.tiles[layer][self.defect_tiles[k]]
        return float(self.defect_masks[k][tile.rows, tile.columns].mean())

    def to_dict(self) -> dict[str, Any]:
        """The JSON-friendly digest (``summary``), for stores that serialise records."""
        return self.summary()

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly digest: densities, hit counts, shapes and the resolved one-liners."""
        return {
            "seed": self.seed,
            "defect_density": list(self.density),
            "tile_density": [list(d) for d in self.tile_density],
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

    Each pattern is resolved on every targeted tile (physical array) in the tile's own coordinates,
    except ``clustered``, whose field spans the targeted tiles as they sit on the die. Defects are
    applied in order, so where two overlap the later one sets the stuck value. Every random choice
    comes from ``seed``, the defect's position in the list, the layer and the tile index, so the
    same call always gives the same masks.
    """
    if isinstance(defects, (Defect, str, Mapping)):
        defects = [defects]
    requested = [as_defect(d) for d in defects]
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} is not accepted: expected an integer >= 0")
    layer_tiles = [layer.tiles for layer in circuit.layers]
    conductances = [np.array(layer.conductance, dtype=np.float64, copy=True) for layer in circuit.layers]
    masks = [np.zeros(g.shape, dtype=bool) for g in conductances]
    stuck = [np.full(g.shape, np.nan) for g in conductances]
    resolved: list[Defect] = []
    sources: list[int] = []
    defect_masks: list[np.ndarray] = []
    defect_tiles: list[int] = []
    for n, defect in enumerate(requested):
        try:
            targets = target_tiles(circuit, defect)
        except ValueError as exc:
            raise ValueError(f"defect {defect.to_string()!r}: {exc}") from None
        windows = resolve_on_tiles(defect, circuit, targets, int(seed), n)
        for (index, tile), (params, window) in zip(targets, windows):
            mask = np.zeros(conductances[index].shape, dtype=bool)
            mask[tile.rows, tile.columns] = window
            _, kind_rng = tile_generators(int(seed), n, index, tile)
            values = stuck_values(defect, circuit, int(mask.sum()), kind_rng)
            conductances[index][mask] = values
            stuck[index][mask] = values
            masks[index] |= mask
            mask.setflags(write=False)
            # An untiled layer keeps the one-liner it had before tiles existed (its one tile is the layer).
            tiles = (tile.index,) if circuit.layers[index].tiling is not None else "all"
            resolved.append(Defect(pattern=defect.pattern, layers=(index,), kind=defect.kind, params=params,
                                   tiles=tiles))
            sources.append(n)
            defect_masks.append(mask)
            defect_tiles.append(tile.index)
    for array in (*masks, *stuck):
        array.setflags(write=False)
    tile_density = [[float(m[t.rows, t.columns].mean()) for t in tiles] for m, tiles in zip(masks, layer_tiles)]
    record = DefectRecord(masks=masks, density=[float(m.mean()) for m in masks], defects=resolved,
                          sources=sources, defect_masks=defect_masks, stuck_s=stuck, requested=requested,
                          seed=int(seed), tiles=layer_tiles, tile_density=tile_density, defect_tiles=defect_tiles)
    return circuit.with_conductances(conductances), record


def apply_stuck_map(circuit: Circuit, stuck_s: Sequence[np.ndarray]) -> tuple[Circuit, DefectRecord]:
    """Stick the cells of a given map: ``stuck_s[l]`` holds each stuck cell's conductance (S), NaN elsewhere.

    The entry point for masks that come from outside the pattern vocabulary (a wafer-level field,
    a measured defect-map file). The record has the masks and densities; it resolves no patterns.
    """
    if len(stuck_s) != circuit.n_layers:
        raise ValueError(f"stuck_s has {len(stuck_s)} arrays; this circuit has {circuit.n_layers} layers: give one "
                         "[rows, cols] array per layer (NaN where a cell is healthy)")
    stuck = []
    for index, (values, layer) in enumerate(zip(stuck_s, circuit.layers)):
        values = np.array(values, dtype=np.float64, copy=True)
        if values.shape != layer.conductance.shape:
            raise ValueError(f"stuck_s[{index}] has shape {values.shape}; layer {index} is {layer.conductance.shape}")
        if np.any(values < 0) or np.any(np.isinf(values)):
            raise ValueError(f"stuck_s[{index}] holds a negative or infinite conductance; stuck values must be "
                             "finite and >= 0 S (NaN marks a healthy cell)")
        values.setflags(write=False)
        stuck.append(values)
    masks = [~np.isnan(v) for v in stuck]
    conductances = [np.where(m, v, layer.conductance) for m, v, layer in zip(masks, stuck, circuit.layers)]
    for m in masks:
        m.setflags(write=False)
    layer_tiles = [layer.tiles for layer in circuit.layers]
    tile_density = [[float(m[t.rows, t.columns].mean()) for t in tiles] for m, tiles in zip(masks, layer_tiles)]
    record = DefectRecord(masks=masks, density=[float(m.mean()) for m in masks], defects=[], sources=[],
                          defect_masks=[], stuck_s=stuck, requested=[], seed=0, tiles=layer_tiles,
                          tile_density=tile_density, defect_tiles=[])
    return circuit.with_conductances(conductances), record


def target_layers(circuit: Circuit, defect: Defect) -> list[int]:
    """Layer indices a defect targets on this circuit (refuses layers that do not exist)."""
    if defect.layers == "all":
        return list(range(circuit.n_layers))
    for index in defect.layers:
        circuit.check_layer_index(index)
    return list(defect.layers)


def target_tiles(circuit: Circuit, defect: Defect) -> list[tuple[int, Tile]]:
    """(layer index, tile) pairs a defect targets, layer by layer; refuses tiles a layer does not have."""
    out: list[tuple[int, Tile]] = []
    for index in target_layers(circuit, defect):
        tiles = circuit.layers[index].tiles
        if defect.tiles == "all":
            out.extend((index, tile) for tile in tiles)
            continue
        for t in defect.tiles:
            if t >= len(tiles):
                raise ValueError(f"tile {t} does not exist: layer {index} has {_tile_range(circuit.layers[index])}")
            out.append((index, tiles[t]))
    return out


def _tile_range(layer: Layer) -> str:
    if layer.tiling is None:
        return "one array, tile 0 (it is not tiled)"
    rows, cols = layer.tiling.grid_shape
    return f"tiles 0..{layer.tiling.n_tiles - 1} (a {rows}x{cols} grid, numbered row block major)"


def tile_generators(seed: int, n: int, index: int, tile: Tile) -> tuple[np.random.Generator, np.random.Generator]:
    """The pattern's and the stuck values' generators of defect ``n`` on one tile of layer ``index``."""
    # SeedSequence pads its entropy with zero words, so tile 0 draws exactly what [seed, n, index]
    # drew before layers had tiles: untiled circuits keep their masks, and adding tiles to a layer
    # never reshuffles the tiles it already had.
    pattern_seq, kind_seq = np.random.SeedSequence([seed, n, index, tile.index]).spawn(2)
    return np.random.default_rng(pattern_seq), np.random.default_rng(kind_seq)


def tile_shape(tile: Tile) -> tuple[int, int]:
    """Rows and columns of one tile."""
    return tile.rows.stop - tile.rows.start, tile.columns.stop - tile.columns.start


def resolve_on_tiles(defect: Defect, circuit: Circuit, targets: Sequence[tuple[int, Tile]], seed: int, n: int
                     ) -> list[tuple[dict[str, Any], np.ndarray]]:
    """Native parameters and mask (in the tile's coordinates) of defect ``n`` on each targeted tile."""
    if defect.pattern == "clustered":
        out: dict[tuple[int, int], tuple[dict[str, Any], np.ndarray]] = {}
        for group in die_groups(circuit, targets):
            try:
                out.update(zip(((i, t.index) for i, t in group), _clustered_on_die(defect, group, seed, n)))
            except ValueError as exc:
                where = _where(circuit, *group[0]) if len(group) == 1 else f"{len(group)} tiles"
                raise ValueError(f"defect {defect.to_string()!r} on {where}: {exc}") from None
        return [out[(i, t.index)] for i, t in targets]
    resolved = []
    for index, tile in targets:
        rng, _ = tile_generators(seed, n, index, tile)
        try:
            resolved.append(resolve_pattern(defect, tile_shape(tile), rng))
        except ValueError as exc:
            raise ValueError(f"defect {defect.to_string()!r} on {_where(circuit, index, tile)}: {exc}") from None
    return resolved


def _where(circuit: Circuit, index: int, tile: Tile) -> str:
    rows, cols = tile_shape(tile)
    return f"layer {index}" + (f" tile {tile.index}" if circuit.layers[index].tiling is not None else "") + f" ({rows}x{cols})"


def die_groups(circuit: Circuit, targets: Sequence[tuple[int, Tile]]) -> list[list[tuple[int, Tile]]]:
    """Targets that share one die field: the tiles of every tiled layer together, each untiled layer alone."""
    # An untiled layer has no place on the die (its one tile sits at the origin), so it is its own field.
    tiled = [(i, t) for i, t in targets if circuit.layers[i].tiling is not None]
    alone = [[(i, t)] for i, t in targets if circuit.layers[i].tiling is None]
    return alone + ([tiled] if tiled else [])


def _clustered_on_die(defect: Defect, group: Sequence[tuple[int, Tile]], seed: int, n: int
                      ) -> list[tuple[dict[str, Any], np.ndarray]]:
    """One correlated field over the die box of ``group``; the highest cells of its tiles' windows are hit.

    The field is drawn with the first tile's generator; ``count`` is per targeted array (so the group
    gets ``count`` times its tiles), ``density`` a fraction of all the group's cells. Tiles lying in a
    high part of the field receive more than others, as arrays under a real defect cluster do.
    """
    top = min(t.origin[0] for _, t in group)
    left = min(t.origin[1] for _, t in group)
    bottom = max(t.origin[0] + tile_shape(t)[0] for _, t in group)
    right = max(t.origin[1] + tile_shape(t)[1] for _, t in group)
    length = defect.params["correlation_cells"]
    field = pt.correlated_field((bottom - top, right - left), length, tile_generators(seed, n, *group[0])[0])
    windows = [field[t.origin[0] - top:t.origin[0] - top + tile_shape(t)[0],
                     t.origin[1] - left:t.origin[1] - left + tile_shape(t)[1]] for _, t in group]
    sizes = [w.size for w in windows]
    n_cells = sum(sizes)
    if "count" in defect.params:
        count = defect.params["count"] * len(group)
        if count > n_cells:
            arrays = "the array has" if len(group) == 1 else f"the {len(group)} targeted arrays have"
            raise ValueError(f"count={defect.params['count']} cells asked for per array, but {arrays} {n_cells}")
    else:
        count = pt.round_half_up(defect.density * n_cells)
    hit = np.zeros(n_cells, dtype=bool)
    # Ranking instead of a numeric threshold hits the requested count exactly.
    hit[np.argsort(-np.concatenate([w.ravel() for w in windows]), kind="stable")[:count]] = True
    parts = np.split(hit, np.cumsum(sizes)[:-1])
    extra = kind_params(defect)
    return [({"count": int(part.sum()), "correlation_cells": length, **extra}, part.reshape(w.shape))
            for part, w in zip(parts, windows)]


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
