"""Defect maps: every layer of a circuit side by side, its conductances with the hit cells marked.

A tiled layer is drawn as its tiles sit on the die (each tile at its ``origin``, a gap between
neighbours, each outlined and numbered), so a defect pattern is seen in each physical array's own
coordinates and a clustered field is seen running across them.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..circuit import Circuit, Layer
from ..plots import pyplot, save_figure
from .apply import DefectRecord

# Marker colours chosen to stand out on viridis: stuck-on cells are bright, stuck-off ones dark.
_ON, _OFF, _OTHER = "#e8112d", "#ffffff", "#ff7f0e"


def plot_defect_maps(circuit: Circuit, record: DefectRecord, path: Union[str, Path], *,
                     title: Optional[str] = None, dpi: int = 150) -> Path:
    """Draw each array's conductance map (uS) with the hit cells marked and write it to ``path`` (PNG, SVG, PDF).

    Pass the defective circuit to see the stuck values, or the healthy one to see what was lost.
    A cell stuck at G_max is marked with a red x, at G_min with a white x, at any other value
    (``kind=at``) with an orange x. Each panel's title gives the layer, its shape and the achieved density;
    a tiled layer's tiles are laid out as on the die, each labelled with its index and density.
    """
    if len(record.masks) != circuit.n_layers:
        raise ValueError(f"the record has {len(record.masks)} layers but the circuit has {circuit.n_layers}; "
                         "plot a record with the circuit it was made from")
    for index, (layer, mask) in enumerate(zip(circuit.layers, record.masks)):
        if mask.shape != layer.conductance.shape:
            raise ValueError(f"layer {index}: record mask shape {mask.shape} differs from the array {layer.conductance.shape}")
    plt = pyplot()
    import matplotlib
    from matplotlib.lines import Line2D

    cell = circuit.cell
    all_g = np.concatenate([layer.conductance.ravel() for layer in circuit.layers])
    vmin = min(cell.g_min, float(all_g.min())) * 1e6
    vmax = max(cell.g_max, float(all_g.max())) * 1e6
    n = circuit.n_layers
    layouts = [die_layout(layer) for layer in circuit.layers]
    max_rows = max(shape[0] for shape, _ in layouts)
    widths = [shape[1] for shape, _ in layouts]
    panel_w = 2.4
    scale = panel_w / max(widths)
    height = max(2.8, min(10.0, max_rows * scale + 1.8))
    fig, axes = plt.subplots(1, n, figsize=(panel_w * n + 1.4, height), squeeze=False, layout="constrained",
                             gridspec_kw={"width_ratios": widths})
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="white")  # white: die area between tiles
    image = None
    kinds_seen: set[str] = set()
    for index, (ax, layer, (shape, offsets)) in enumerate(zip(axes[0], circuit.layers, layouts)):
        place_r, place_c = _placement(layer, offsets)
        canvas = np.full(shape, np.nan)
        canvas[place_r[:, None], place_c[None, :]] = layer.conductance * 1e6
        image = ax.imshow(canvas, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest", aspect="equal")
        ax.set_anchor("N")
        mask = record.masks[index]
        stuck = record.stuck_s[index]
        rows_i, cols_i = np.nonzero(mask)
        if rows_i.size:
            values = stuck[rows_i, cols_i]
            rows_i, cols_i = place_r[rows_i], place_c[cols_i]
            is_on = np.isclose(values, cell.g_max, rtol=1e-12, atol=0)
            is_off = np.isclose(values, cell.g_min, rtol=1e-12, atol=0)
            size = max(4.0, (72.0 * scale * 0.55) ** 2)
            for sel, colour, name in ((is_on, _ON, "on"), (is_off, _OFF, "off"), (~(is_on | is_off), _OTHER, "at")):
                if sel.any():
                    ax.scatter(cols_i[sel], rows_i[sel], marker="x", s=size, c=colour, linewidths=0.9)
                    kinds_seen.add(name)
        if layer.tiling is None:
            # The bias row is physical: a dashed line sets it apart from the input rows.
            ax.axhline(layer.n_rows - 1.5, color="black", lw=0.8, ls="--")
            _label_axes(ax, layer)
            grid = ""
        else:
            _draw_tiles(ax, layer, offsets, record.tile_density[index])
            grid = f" in {layer.tiling.grid_shape[0]}x{layer.tiling.grid_shape[1]} tiles"
        ax.set_title(f"layer {index}  {layer.n_rows}x{layer.n_columns}{grid}\n"
                     f"{int(mask.sum())} hit ({record.density[index]:.1%})", fontsize=9)
    assert image is not None
    bar = fig.colorbar(image, ax=axes[0].tolist(), shrink=min(1.0, 3.0 / height + 0.3), aspect=25, pad=0.01)
    bar.set_label("conductance (uS)")
    for ax in axes[0]:
        ax.set_anchor("N")  # after the colourbar, which re-anchors its parents: small arrays sit at the top
    handles = [Line2D([], [], marker="x", ls="", color=c, markeredgecolor="black" if c == _OFF else c,
                      label=label)
               for name, c, label in (("on", _ON, "stuck on (G_max)"), ("off", _OFF, "stuck off (G_min)"),
                                      ("at", _OTHER, "stuck at a value"))
               if name in kinds_seen]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)
    if title is None:
        described = "; ".join(d.to_string() for d in record.requested) or "no defects"
        title = f"{described}  (seed {record.seed}, {record.total_density:.1%} of all cells)"
    fig.suptitle("\n".join(textwrap.wrap(title, 110)), fontsize=9)
    return save_figure(fig, path, dpi=dpi)


def die_layout(layer: Layer) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """The picture's shape and each tile's top-left cell in it: die positions, plus a gap between tiles.

    An untiled layer is its matrix as it is. The gap (a tenth of the tile pitch, at least one cell)
    only separates the arrays in the picture; their relative positions are those on the die.
    """
    tiles = layer.tiles
    if layer.tiling is None:
        return (layer.n_rows, layer.n_columns), [(0, 0)]
    gap = max(1, round(0.1 * max(layer.tiling.tile_shape)))
    top = min(t.origin[0] for t in tiles)
    left = min(t.origin[1] for t in tiles)
    offsets = [(t.origin[0] - top + gap * t.grid[0], t.origin[1] - left + gap * t.grid[1]) for t in tiles]
    height = max(r + t.rows.stop - t.rows.start for (r, _), t in zip(offsets, tiles))
    width = max(c + t.columns.stop - t.columns.start for (_, c), t in zip(offsets, tiles))
    return (height, width), offsets


def _placement(layer: Layer, offsets: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Picture row of every matrix row and picture column of every matrix column."""
    rows, cols = np.empty(layer.n_rows, dtype=np.int64), np.empty(layer.n_columns, dtype=np.int64)
    for tile, (r, c) in zip(layer.tiles, offsets):
        rows[tile.rows] = r + np.arange(tile.rows.stop - tile.rows.start)
        cols[tile.columns] = c + np.arange(tile.columns.stop - tile.columns.start)
    return rows, cols


def _draw_tiles(ax: object, layer: Layer, offsets: list[tuple[int, int]], densities: list[float]) -> None:
    """Outline and label each tile; a dashed line above the bias row in the tiles that hold it."""
    from matplotlib.patches import Rectangle

    tiles = layer.tiles
    for tile, (r, c), density in zip(tiles, offsets, densities):
        h, w = tile.rows.stop - tile.rows.start, tile.columns.stop - tile.columns.start
        ax.add_patch(Rectangle((c - 0.5, r - 0.5), w, h, fill=False, edgecolor="black", lw=0.6))
        if tile.rows.stop == layer.n_rows:
            ax.plot([c - 0.5, c + w - 0.5], [r + h - 1.5] * 2, color="black", lw=0.8, ls="--")
        if len(tiles) <= 36:  # beyond that the labels would cover the arrays
            ax.text(c - 0.5, r - 0.7, f"{tile.index}: {density:.0%}", fontsize=5, va="bottom", ha="left")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"tiles of at most {layer.tiling.tile_shape[0]}x{layer.tiling.tile_shape[1]} cells, "
                  "as on the die", fontsize=7)
    ax.set_frame_on(False)


def _label_axes(ax: object, layer: object) -> None:
    """Column ticks as neuron +/- pairs and the bias row named, where the array is small enough to read."""
    n_rows, n_cols = layer.n_rows, layer.n_columns
    if n_cols <= 32:
        labels = [""] * n_cols
        for j, (p, m) in enumerate(zip(layer.plus_columns, layer.minus_columns)):
            labels[int(p)] = f"{j}+"
            labels[int(m)] = f"{j}-"
        ax.set_xticks(range(n_cols))
        ax.set_xticklabels(labels, fontsize=5, rotation=90)
    else:
        ax.set_xlabel("column", fontsize=8)
    step = max(1, int(np.ceil(n_rows / 8)))
    ticks = list(range(0, n_rows - 1, step)) + [n_rows - 1]
    ax.set_yticks(ticks)
    ax.set_yticklabels([str(t) for t in ticks[:-1]] + ["bias"], fontsize=6)
    ax.tick_params(length=2)
