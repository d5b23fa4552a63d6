"""The report's figures: matplotlib drawings of the store's data, each returned as a PNG data URI.

matplotlib is imported inside the functions (Agg backend), so loading the report's data never pays
for it. Every function returns None when the store does not hold what it draws yet.
"""

from __future__ import annotations

import base64
import io
from typing import Any, Optional

import numpy as np
import pandas as pd

from ..correction.cross import cross_defect_figure
from ..stats import bootstrap_ci
from .data import (MAX_CORRECTOR_PARAMS, MEASURED_SOURCE, MEASURED_STUCK, ReportData, choose_corrector,
                   correction_frame, cross_result, parse_circuit_id)
from .uncertainty import grouped_means, mean_accuracy

_ON, _OFF, _HEALTHY = "#c2410c", "#1d4ed8", "#475569"
PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569"]


def report_pyplot() -> Any:
    """pyplot on the Agg backend, in the report's style."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "font.size": 9.5, "axes.titlesize": 10, "axes.labelsize": 9.5, "legend.fontsize": 8.5,
        "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.color": "#e5e7eb",
        "grid.linewidth": 0.6, "axes.edgecolor": "#9ca3af", "axes.titleweight": "bold",
        "figure.dpi": 110, "savefig.dpi": 130, "font.family": "DejaVu Sans",
    })
    return plt


def png_uri(fig: Any) -> str:
    """A figure as a base64 PNG data URI (and the figure closed)."""
    plt = report_pyplot()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", bbox_inches="tight", facecolor="white")
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _pattern_color(d: ReportData, pattern: str) -> str:
    """One colour per pattern, the same in every figure."""
    order = list(d.study["defects"]["patterns"]) + ["mixture"]
    return PALETTE[order.index(pattern) % len(PALETTE)] if pattern in order else _HEALTHY


def figure_gallery(d: ReportData) -> Optional[str]:
    """Defect maps: every pattern (columns) on every array (rows), over the programmed conductances."""
    healthy_task = [t for t in d.store.array_task_ids() if t.startswith("c-healthy")]
    if d.defective.empty:
        return None
    base = d.store.read_arrays(healthy_task[0]) if healthy_task else {}
    patterns = d.patterns()
    arrays = sorted(d.defective["array"].unique())
    severities = sorted(d.defective["severity"].unique())
    severity = severities[len(severities) // 2]
    masks: dict[tuple[str, int], np.ndarray] = {}
    for task_id in d.store.array_task_ids():
        if not task_id.startswith("c-") or task_id.startswith("c-healthy"):
            continue
        arrs = d.store.read_arrays(task_id)
        if "masks" not in arrs:
            continue
        for k, cid in enumerate(arrs["circuit_ids"].tolist()):
            pattern, kind, a, s, i = parse_circuit_id(cid)
            if s == severity and i == 0 and (pattern, a) not in masks:
                masks[(pattern, a)] = arrs["masks"][k]
    if not masks:
        return None
    plt = report_pyplot()
    from matplotlib.colors import ListedColormap

    shapes = {a: next((m.shape for (p, aa), m in masks.items() if aa == a), (1, 1)) for a in arrays}
    heights = [max(shapes[a][0] / shapes[a][1], 0.35) for a in arrays]
    col_w = 1.25
    fig, axes = plt.subplots(len(arrays), len(patterns), figsize=(col_w * len(patterns) + 0.9, col_w * sum(heights) + 0.8),
                             gridspec_kw={"height_ratios": heights, "hspace": 0.25, "wspace": 0.08}, squeeze=False)
    hit_cmap = ListedColormap(["#dc2626"])
    for r, a in enumerate(arrays):
        g = base.get(f"conductance_{a}")
        for c, p in enumerate(patterns):
            ax = axes[r][c]
            ax.grid(False)
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ("top", "right", "left", "bottom"):
                ax.spines[side].set_visible(True)
                ax.spines[side].set_color("#d1d5db")
            mask = masks.get((p, a))
            if mask is None:
                ax.set_facecolor("#f3f4f6")
                continue
            if g is not None and g.shape == mask.shape:
                ax.imshow(g, cmap="Greys", interpolation="nearest", aspect="equal", vmin=0)
            else:
                ax.imshow(np.zeros(mask.shape), cmap="Greys", vmin=0, vmax=1, aspect="equal")
            ax.imshow(np.ma.masked_where(~mask, mask.astype(float)), cmap=hit_cmap, alpha=0.85,
                      interpolation="nearest", aspect="equal")
            if r == 0:
                ax.set_title(p.replace("_", "\n"), fontsize=9)
            if c == 0:
                ax.set_ylabel(f"array {a}\n{mask.shape[0]}x{mask.shape[1]}", fontsize=8.5)
            ax.text(0.5, -0.02, f"{mask.mean():.0%}", transform=ax.transAxes, ha="center", va="top", fontsize=7.5,
                    color="#374151")
    return png_uri(fig)




def _basis(d: ReportData, n_chips: int) -> str:
    """``n = 15 chips per point (over 5 networks), 180 test images each``: printed on every figure."""
    nets = f" (over {d.n_networks} networks)" if d.n_networks > 1 else ""
    return f"n = {n_chips} chip{'s' if n_chips != 1 else ''} per point{nets}, {d.n_test:,} test images each"


def figure_accuracy_vs_severity(d: ReportData) -> Optional[str]:
    """Accuracy vs defect density, one panel per (kind, array), one line per pattern, with 95 % bands."""
    df = d.defective
    if df.empty:
        return None
    plt = report_pyplot()
    kinds = [k for k in d.study["defects"]["kinds"] if k in set(df["kind"])]
    arrays = sorted(df["array"].unique())
    fig, axes = plt.subplots(len(kinds), len(arrays), figsize=(2.55 * len(arrays) + 0.6, 2.25 * len(kinds) + 0.9),
                             sharex=True, sharey=True, squeeze=False)
    stats = grouped_means(df, ["kind", "array", "pattern", "severity"])
    log = df["severity"].max() / df["severity"].min() >= 20
    for r, kind in enumerate(kinds):
        for c, a in enumerate(arrays):
            ax = axes[r][c]
            for p in d.patterns():
                s = stats[(stats["kind"] == kind) & (stats["array"] == a) & (stats["pattern"] == p)]
                if s.empty:
                    continue
                color = _pattern_color(d, p)
                ax.plot(s["severity"], s["mean"] * 100, "-o", ms=3, lw=1.4, color=color, label=p)
                ax.fill_between(s["severity"], s["low"] * 100, s["high"] * 100, color=color, alpha=0.13, lw=0)
            if d.healthy_accuracy is not None:
                ax.axhline(d.healthy_accuracy * 100, color=_HEALTHY, ls="--", lw=1)
            if kind in MEASURED_STUCK:
                ax.axvline(MEASURED_STUCK[kind], color="#111827", ls="-.", lw=0.9,
                           label=f"measured ({MEASURED_SOURCE})" if (r, c) == (0, 0) or kind != kinds[0] else None)
            ax.axhline(10, color="#9ca3af", ls=":", lw=1)
            ax.set_ylim(0, 100)
            if log:
                ax.set_xscale("log")
            if r == 0:
                ax.set_title(f"array {a}")
            if c == 0:
                ax.set_ylabel(f"stuck-{kind}\ntest accuracy (%)")
            if r == len(kinds) - 1:
                ax.set_xlabel("defect density")
    handles, labels = [], []
    for ax in axes.ravel():
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 5), frameon=False, bbox_to_anchor=(0.5, 1.04))
    n_chips = int(stats["n_chips"].min()) if len(stats) else 0
    fig.text(0.5, 0.005, _basis(d, n_chips) + "; bands: 95 % interval (Wilson for one chip, bootstrap otherwise)",
             ha="center", va="bottom", fontsize=7.5, color="#4b5563")
    fig.tight_layout(rect=(0, 0.03, 1, 0.92))
    return png_uri(fig)


def figure_on_vs_off(d: ReportData) -> Optional[str]:
    """Paired stuck-on vs stuck-off accuracy (same cells hit), and the paired difference per pattern."""
    df = d.defective
    if df.empty or not {"on", "off"} <= set(df["kind"]):
        return None
    key = [k for k in ("network_seed", "pattern", "array", "severity", "instance") if k in df]
    on = df[df["kind"] == "on"].set_index(key)["accuracy"]
    off = df[df["kind"] == "off"].set_index(key)["accuracy"]
    pair = pd.concat({"on": on, "off": off}, axis=1).dropna().reset_index()
    if pair.empty:
        return None
    plt = report_pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.2, 3.9), gridspec_kw={"width_ratios": [1, 1.35]})
    markers = ["o", "s", "^", "D", "v", "P", "X"]
    arrays = sorted(pair["array"].unique())
    for p in d.patterns():
        for j, a in enumerate(arrays):
            s = pair[(pair["pattern"] == p) & (pair["array"] == a)]
            ax1.scatter(s["off"] * 100, s["on"] * 100, s=14, color=_pattern_color(d, p), marker=markers[j % len(markers)],
                        alpha=0.75, lw=0, label=p if j == 0 else None)
    ax1.plot([0, 100], [0, 100], color="#6b7280", lw=1, ls="--")
    ax1.set_xlim(0, 100)
    ax1.set_ylim(0, 100)
    ax1.set_aspect("equal")
    ax1.set_xlabel("accuracy with stuck-off cells (%)")
    ax1.set_ylabel("accuracy with stuck-on cells (%)")
    ax1.set_title("each point: the same cells stuck on, and off")
    ax1.legend(frameon=False, loc="upper left", fontsize=7.5, markerscale=1.3)
    pair["diff"] = pair["on"] - pair["off"]
    diffs = grouped_means(pair.rename(columns={"diff": "d"}).assign(accuracy=lambda t: t["d"]), ["pattern", "array"])
    width = 0.8 / max(len(arrays), 1)
    pats = d.patterns()
    for j, a in enumerate(arrays):
        s = diffs[diffs["array"] == a].set_index("pattern").reindex(pats)
        x = np.arange(len(pats)) - 0.4 + width * (j + 0.5)
        ax2.bar(x, s["mean"] * 100, width * 0.9, color=PALETTE[j % len(PALETTE)], label=f"array {a}")
        ax2.errorbar(x, s["mean"] * 100, yerr=[(s["mean"] - s["low"]) * 100, (s["high"] - s["mean"]) * 100],
                     fmt="none", ecolor="#111827", elinewidth=0.9, capsize=2)
    ax2.axhline(0, color="#6b7280", lw=1)
    ax2.set_xticks(np.arange(len(pats)), [p.replace("_", "\n") for p in pats], fontsize=8)
    ax2.set_ylabel("stuck-on minus stuck-off (points)")
    n = int(diffs["n_chips"].min()) if len(diffs) else 0
    nets = f" over {d.n_networks} networks" if d.n_networks > 1 else ""
    ax2.set_title(f"paired difference, 95 % bootstrap interval\nn = {n} chip pairs per bar{nets}, "
                  f"{d.n_test:,} test images each", fontsize=8.5)
    ax2.legend(frameon=False, ncol=min(len(arrays), 4), loc="upper center", bbox_to_anchor=(0.5, -0.16))
    fig.tight_layout()
    return png_uri(fig)



def figure_recovery(d: ReportData) -> Optional[str]:
    """Accuracy after correction vs corrector parameters per array, and the recovered share per array, with intervals."""
    c = correction_frame(d)
    if c.empty:
        return None
    plt = report_pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.2, 3.9))
    arrays = sorted(c["array"].unique())
    mlp = c[c["corrector"] == "mlp"]
    for j, a in enumerate(arrays):
        color = PALETTE[j % len(PALETTE)]
        s = grouped_means(mlp[mlp["array"] == a], ["n_parameters"])
        if len(s):
            ax1.errorbar(s["n_parameters"], s["mean"] * 100, yerr=[(s["mean"] - s["low"]) * 100,
                         (s["high"] - s["mean"]) * 100], fmt="-o", ms=3.5, lw=1.5, capsize=2, color=color,
                         label=f"array {a}")
            ax1.fill_between(s["n_parameters"], s["low"] * 100, s["high"] * 100, color=color, alpha=0.13, lw=0)
        raw = d.defective[d.defective["array"] == a]
        if len(raw):
            ax1.axhline(raw["accuracy"].mean() * 100, color=color, ls=":", lw=1)
        choice = choose_corrector(c[c["array"] == a])
        if choice is not None:
            sel = c[(c["array"] == a) & (c["corrector"] == choice[0]) & (c["hidden"] == choice[1])]
            ax1.scatter([choice[2]], [sel["accuracy"].mean() * 100], s=70, facecolors="none", edgecolors=color,
                        lw=1.4, zorder=6)
    for name, marker in (("affine", "s"), ("logistic", "D"), ("lastlayer", "^")):
        b = c[c["corrector"] == name]
        if len(b):
            e = mean_accuracy(b)
            ax1.errorbar([b["n_parameters"].iloc[0]], [e.value * 100], yerr=[[(e.value - e.low) * 100],
                         [(e.high - e.value) * 100]], fmt=marker, ms=6, color="#111827", capsize=3, zorder=5,
                         label=f"{name} (all arrays)")
    if d.healthy_accuracy is not None:
        ax1.axhline(d.healthy_accuracy * 100, color=_HEALTHY, ls="--", lw=1, label="healthy circuit")
    ax1.axvline(MAX_CORRECTOR_PARAMS, color="#9ca3af", lw=1)
    _parameter_axis(ax1, c["n_parameters"])
    ax1.set_xlabel("corrector parameters")
    ax1.set_ylabel("mean test accuracy after correction (%)")
    n = int(c.groupby(["array", "corrector", "hidden"])["circuit_id"].nunique().min())
    ax1.set_title(f"circled: chosen on validation\n{_basis(d, n)}", fontsize=8)
    ax1.legend(frameon=False, fontsize=7, loc="lower right")
    damaged = c[c["lost"] >= 0.05]
    if len(damaged):
        for j, a in enumerate(arrays):
            color = PALETTE[j % len(PALETTE)]
            g = damaged[(damaged["array"] == a) & (damaged["corrector"] == "mlp")]
            if g.empty:
                continue
            rows = []
            for n_par, part in g.groupby("n_parameters"):
                values = part["recovered"].dropna().to_numpy()
                if values.size:
                    low, high = bootstrap_ci(values, np.median)
                    rows.append((n_par, np.median(values), low, high))
            if rows:
                t = np.array(rows, dtype=float)
                ax2.errorbar(t[:, 0], t[:, 1] * 100, yerr=[(t[:, 1] - t[:, 2]) * 100, (t[:, 3] - t[:, 1]) * 100],
                             fmt="-o", ms=3.5, lw=1.5, capsize=2, color=color,
                             label=f"array {a} (n = {g['circuit_id'].nunique()})")
                ax2.fill_between(t[:, 0], t[:, 2] * 100, t[:, 3] * 100, color=color, alpha=0.13, lw=0)
        ax2.axhline(0, color="#6b7280", lw=1)
        low = ax2.get_ylim()[0]
        if low < -100:  # a harmful tiny corrector would squash the informative range into a line
            ax2.set_ylim(-100, 105)
            ax2.text(0.1, 0.97, "axis clipped at -100%", transform=ax2.transAxes, fontsize=7.5, color="#6b7280",
                     va="top")
        ax2.axvline(MAX_CORRECTOR_PARAMS, color="#9ca3af", lw=1)
        _parameter_axis(ax2, c["n_parameters"])
        ax2.set_xlabel("corrector parameters")
        ax2.set_ylabel("median recovered share of the loss (%)")
        ax2.set_title("circuits that lost >= 5 points\nbars and bands: 95 % bootstrap of the median", fontsize=8.5)
        ax2.legend(frameon=False, fontsize=7, loc="lower right")
    else:
        ax2.text(0.5, 0.5, "no circuit lost 5 points or more", ha="center", va="center", transform=ax2.transAxes)
        ax2.set_axis_off()
    fig.tight_layout()
    return png_uri(fig)


def _parameter_axis(ax: Any, counts: pd.Series) -> None:
    """A log axis labelled with the parameter counts that occur (not powers of ten)."""
    from matplotlib.ticker import FixedLocator, NullLocator

    ticks = sorted(int(v) for v in counts.unique())
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(t) for t in ticks], fontsize=8)


def figure_cross(d: ReportData) -> Optional[str]:
    """Heatmap of the cross-defect matrix (rows: trained on; columns: tested on)."""
    result = cross_result(d)
    if result is None:
        return None
    report_pyplot()  # the report's style for the figure drawn below
    return png_uri(cross_defect_figure(result, title=f"mean test accuracy (%), {result.n_test_chips} chips per column"))


def figure_voltages(d: ReportData) -> Optional[str]:
    """Histograms of every output voltage: healthy circuit vs defective ones at the highest density."""
    ids = d.store.array_task_ids()
    healthy = [t for t in ids if t.startswith("c-healthy")]
    if not healthy or d.defective.empty:
        return None
    h = d.store.read_arrays(healthy[0])["outputs_v"].ravel()
    smax = float(d.defective["severity"].max())
    groups: dict[tuple[int, str], list[np.ndarray]] = {}
    for task_id in ids:
        if not task_id.startswith("c-") or task_id.startswith("c-healthy"):
            continue
        arrs = d.store.read_arrays(task_id)
        for k, cid in enumerate(arrs["circuit_ids"].tolist()):
            pattern, kind, a, s, i = parse_circuit_id(cid)
            if s == smax:
                groups.setdefault((a, kind), []).append(arrs["outputs_v"][k].ravel())
    if not groups:
        return None
    arrays = sorted({a for a, _ in groups})
    plt = report_pyplot()
    fig, axes = plt.subplots(1, len(arrays), figsize=(2.6 * len(arrays) + 0.6, 2.9), sharey=True, squeeze=False)
    everything = np.concatenate([h] + [np.concatenate(v) for v in groups.values()])
    lo, hi = np.percentile(everything, [0.2, 99.8])
    bins = np.linspace(lo, hi, 70)
    for c, a in enumerate(arrays):
        ax = axes[0][c]
        ax.hist(h, bins=bins, density=True, color=_HEALTHY, alpha=0.35, label="healthy")
        for kind, color in (("on", _ON), ("off", _OFF)):
            if (a, kind) in groups:
                ax.hist(np.concatenate(groups[(a, kind)]), bins=bins, density=True, histtype="step", lw=1.5,
                        color=color, label=f"stuck-{kind}")
        ax.set_yscale("log")
        ax.set_title(f"defects in array {a}")
        ax.set_xlabel("output voltage (V)")
        if c == 0:
            ax.set_ylabel("density (1/V, log scale)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=3, frameon=False, bbox_to_anchor=(0.5, 1.06))
    fig.tight_layout()
    return png_uri(fig)
