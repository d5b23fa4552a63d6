"""Defect maps: every array of a circuit side by side, its conductances with the hit cells marked."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..circuit import Circuit
from ..plots import pyplot, save_figure
from .apply import DefectRecord

# Marker colours chosen to stand out on viridis: stuck-on cells are bright, stuck-off ones dark.
_ON, _OFF, _OTHER = "#e8112d", "#ffffff", "#ff7f0e"


def plot_defect_maps(circuit: Circuit, record: DefectRecord, path: Union[str, Path], *,
                     title: Optional[str] = None, dpi: int = 150) -> Path:
    """Draw each array's conductance map (uS) with the hit cells marked and write it to ``path`` (PNG, SVG, PDF).

    Pass the defective circuit to see the stuck values, or the healthy one to see what was lost.
    A cell stuck at G_max is marked with a red x, at G_min with a white x, at any other value
    (``kind=at``) with an orange x. Each panel's title gives the layer, its shape and the achieved density.
    """
    if len(record.masks) != circuit.n_layers:
        raise ValueError(f"the record has {len(record.masks)} layers but the circuit has {circuit.n_layers}; "
                         "plot a record with the circuit it was made from")
    for index, (layer, mask) in enumerate(zip(circuit.layers, record.masks)):
        if mask.shape != layer.conductance.shape:
            raise ValueError(f"layer {index}: record mask shape {mask.shape} differs from the array {layer.conductance.shape}")
    plt = pyplot()
    from matplotlib.lines import Line2D

    cell = circuit.cell
    all_g = np.concatenate([layer.conductance.ravel() for layer in circuit.layers])
    vmin = min(cell.g_min, float(all_g.min())) * 1e6
    vmax = max(cell.g_max, float(all_g.max())) * 1e6
    n = circuit.n_layers
    max_rows = max(layer.n_rows for layer in circuit.layers)
    widths = [layer.n_columns for layer in circuit.layers]
    panel_w = 2.4
    scale = panel_w / max(widths)
    height = max(2.8, min(10.0, max_rows * scale + 1.8))
    fig, axes = plt.subplots(1, n, figsize=(panel_w * n + 1.4, height), squeeze=False, layout="constrained",
                             gridspec_kw={"width_ratios": widths})
    image = None
    kinds_seen: set[str] = set()
    for index, (ax, layer) in enumerate(zip(axes[0], circuit.layers)):
        g_us = layer.conductance * 1e6
        image = ax.imshow(g_us, cmap="viridis", vmin=vmin, vmax=vmax, interpolation="nearest", aspect="equal")
        ax.set_anchor("N")
        mask = record.masks[index]
        stuck = record.stuck_s[index]
        rows_i, cols_i = np.nonzero(mask)
        if rows_i.size:
            values = stuck[rows_i, cols_i]
            is_on = np.isclose(values, cell.g_max, rtol=1e-12, atol=0)
            is_off = np.isclose(values, cell.g_min, rtol=1e-12, atol=0)
            size = max(4.0, (72.0 * scale * 0.55) ** 2)
            for sel, colour, name in ((is_on, _ON, "on"), (is_off, _OFF, "off"), (~(is_on | is_off), _OTHER, "at")):
                if sel.any():
                    ax.scatter(cols_i[sel], rows_i[sel], marker="x", s=size, c=colour, linewidths=0.9)
                    kinds_seen.add(name)
        # The bias row is physical: a dashed line sets it apart from the input rows.
        ax.axhline(layer.n_rows - 1.5, color="black", lw=0.8, ls="--")
        _label_axes(ax, layer)
        ax.set_title(f"layer {index}  {layer.n_rows}x{layer.n_columns}\n"
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
