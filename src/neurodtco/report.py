"""The study report: one self-contained HTML file (figures embedded as PNG) built from the store alone.

Sections: headline numbers; defect-map gallery; accuracy vs severity for every pattern, array
and kind; stuck-on vs stuck-off; accuracy recovered vs corrector size; the cross-defect matrix;
output voltages of the healthy and defective circuits; the study and its environment. Every
section copes with a partial store (a run still going, or a study without that part).
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import pandas as pd

from .store import ResultStore, load_results, load_task_info

_ON, _OFF, _HEALTHY = "#c2410c", "#1d4ed8", "#475569"
_PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569"]
_MAX_CORRECTOR_PARAMS = 200  # the published budget of a "lightweight" corrector


def _plt() -> Any:
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


def _png(fig: Any) -> str:
    """A figure as a base64 PNG data URI (and the figure closed)."""
    plt = _plt()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", bbox_inches="tight", facecolor="white")
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@dataclass
class _Data:
    root: Path
    study: dict[str, Any]
    circuits: pd.DataFrame
    cross: pd.DataFrame
    info: pd.DataFrame
    store: ResultStore

    @property
    def raw(self) -> pd.DataFrame:
        """One row per circuit: its own accuracy, no corrector."""
        if self.circuits.empty:
            return self.circuits
        return self.circuits[self.circuits["corrector"] == "none"]

    @property
    def defective(self) -> pd.DataFrame:
        """Defective circuits only (no corrector)."""
        raw = self.raw
        return raw[raw["pattern"] != "none"] if not raw.empty else raw

    @property
    def healthy_accuracy(self) -> Optional[float]:
        """Test accuracy of the undamaged circuit."""
        raw = self.raw
        if raw.empty:
            return None
        h = raw[raw["pattern"] == "none"]
        return float(h["accuracy"].mean()) if len(h) else None

    @property
    def software_accuracy(self) -> Optional[float]:
        """Test accuracy of the software network."""
        return float(self.circuits["software_accuracy"].iloc[0]) if not self.circuits.empty else None

    def patterns(self) -> list[str]:
        """Patterns in study order (those with results)."""
        present = set(self.defective["pattern"]) if not self.defective.empty else set()
        return [p for p in self.study["defects"]["patterns"] if p in present]

    def pattern_color(self, pattern: str) -> str:
        """One colour per pattern, the same in every figure."""
        order = list(self.study["defects"]["patterns"]) + ["mixture"]
        return _PALETTE[order.index(pattern) % len(_PALETTE)] if pattern in order else _HEALTHY


def _load(root: Union[str, Path]) -> _Data:
    root = Path(root)
    store = ResultStore(root)
    study = store.stored_study()
    circuits = load_results(root, "circuits")
    cross = load_results(root, "cross")
    info = load_task_info(root)
    return _Data(root, study, circuits, cross, info, store)


# ----------------------------------------------------------------------------- figures

def figure_gallery(d: _Data) -> Optional[str]:
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
            pattern, kind, a, s, i = _parse_circuit_id(cid)
            if s == severity and i == 0 and (pattern, a) not in masks:
                masks[(pattern, a)] = arrs["masks"][k]
    if not masks:
        return None
    plt = _plt()
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
    return _png(fig)


def _parse_circuit_id(cid: str) -> tuple[str, str, int, float, int]:
    """``ring-on-a1-s0.2-i0`` -> (pattern, kind, array, severity, instance)."""
    parts = cid.split("-")
    instance = int(parts[-1][1:])
    severity = float(parts[-2][1:])
    array = int(parts[-3][1:])
    kind = parts[-4]
    pattern = "-".join(parts[:-4])
    return pattern, kind, array, severity, instance


def figure_accuracy_vs_severity(d: _Data) -> Optional[str]:
    """Accuracy vs defect density, one panel per (kind, array), one line per pattern."""
    df = d.defective
    if df.empty:
        return None
    plt = _plt()
    kinds = [k for k in d.study["defects"]["kinds"] if k in set(df["kind"])]
    arrays = sorted(df["array"].unique())
    fig, axes = plt.subplots(len(kinds), len(arrays), figsize=(2.55 * len(arrays) + 0.6, 2.25 * len(kinds) + 0.7),
                             sharex=True, sharey=True, squeeze=False)
    stats = df.groupby(["kind", "array", "pattern", "severity"])["accuracy"].agg(["mean", "min", "max"]).reset_index()
    for r, kind in enumerate(kinds):
        for c, a in enumerate(arrays):
            ax = axes[r][c]
            for p in d.patterns():
                s = stats[(stats["kind"] == kind) & (stats["array"] == a) & (stats["pattern"] == p)]
                if s.empty:
                    continue
                color = d.pattern_color(p)
                ax.plot(s["severity"], s["mean"] * 100, "-o", ms=3, lw=1.4, color=color, label=p)
                ax.fill_between(s["severity"], s["min"] * 100, s["max"] * 100, color=color, alpha=0.10, lw=0)
            if d.healthy_accuracy is not None:
                ax.axhline(d.healthy_accuracy * 100, color=_HEALTHY, ls="--", lw=1)
            ax.axhline(10, color="#9ca3af", ls=":", lw=1)
            ax.set_ylim(0, 100)
            if r == 0:
                ax.set_title(f"array {a}")
            if c == 0:
                ax.set_ylabel(f"stuck-{kind}\ntest accuracy (%)")
            if r == len(kinds) - 1:
                ax.set_xlabel("defect density")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 8), frameon=False, bbox_to_anchor=(0.5, 1.02))
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return _png(fig)


def figure_on_vs_off(d: _Data) -> Optional[str]:
    """Paired stuck-on vs stuck-off accuracy (same cells hit) and the mean per pattern."""
    df = d.defective
    if df.empty or not {"on", "off"} <= set(df["kind"]):
        return None
    key = ["pattern", "array", "severity", "instance"]
    on = df[df["kind"] == "on"].set_index(key)["accuracy"]
    off = df[df["kind"] == "off"].set_index(key)["accuracy"]
    pair = pd.concat({"on": on, "off": off}, axis=1).dropna().reset_index()
    if pair.empty:
        return None
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.2, 3.9), gridspec_kw={"width_ratios": [1, 1.35]})
    markers = ["o", "s", "^", "D", "v", "P", "X"]
    arrays = sorted(pair["array"].unique())
    for p in d.patterns():
        for j, a in enumerate(arrays):
            s = pair[(pair["pattern"] == p) & (pair["array"] == a)]
            ax1.scatter(s["off"] * 100, s["on"] * 100, s=14, color=d.pattern_color(p), marker=markers[j % len(markers)],
                        alpha=0.75, lw=0, label=p if j == 0 else None)
    ax1.plot([0, 100], [0, 100], color="#6b7280", lw=1, ls="--")
    ax1.set_xlim(0, 100)
    ax1.set_ylim(0, 100)
    ax1.set_aspect("equal")
    ax1.set_xlabel("accuracy with stuck-off cells (%)")
    ax1.set_ylabel("accuracy with stuck-on cells (%)")
    ax1.set_title("each point: the same cells stuck on, and off")
    ax1.legend(frameon=False, loc="upper left", fontsize=7.5, markerscale=1.3)
    means = pair.groupby("pattern")[["on", "off"]].mean().reindex(d.patterns())
    x = np.arange(len(means))
    ax2.bar(x - 0.2, means["on"] * 100, 0.4, color=_ON, label="stuck-on")
    ax2.bar(x + 0.2, means["off"] * 100, 0.4, color=_OFF, label="stuck-off")
    if d.healthy_accuracy is not None:
        ax2.axhline(d.healthy_accuracy * 100, color=_HEALTHY, ls="--", lw=1, label="healthy circuit")
    ax2.set_xticks(x, [p.replace("_", "\n") for p in means.index], fontsize=8)
    ax2.set_ylabel("mean test accuracy (%)")
    ax2.set_ylim(0, 100)
    ax2.set_title("mean over arrays, densities and instances")
    ax2.legend(frameon=False, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    fig.tight_layout()
    return _png(fig)


def _correction_frame(d: _Data) -> pd.DataFrame:
    """Corrected rows of defective circuits, with the healthy reference for the recovered fraction."""
    c = d.circuits
    if c.empty:
        return c
    c = c[(c["pattern"] != "none") & (c["corrector"] != "none")].copy()
    ref = d.healthy_accuracy if d.healthy_accuracy is not None else d.software_accuracy
    lost = ref - c["accuracy_before"]
    c["recovered"] = np.where(lost > 0, (c["accuracy"] - c["accuracy_before"]) / lost.where(lost > 0, 1.0), np.nan)
    c["lost"] = lost
    return c


def figure_recovery(d: _Data) -> Optional[str]:
    """Accuracy after correction vs corrector parameters, and the recovered fraction of the loss."""
    c = _correction_frame(d)
    if c.empty:
        return None
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.2, 3.8))
    mlp = c[c["corrector"] == "mlp"]
    arrays = sorted(c["array"].unique())
    for j, a in enumerate(arrays):
        s = mlp[mlp["array"] == a].groupby("n_parameters")["accuracy"].mean()
        if len(s):
            ax1.plot(s.index, s.values * 100, "-o", ms=3.5, lw=1.5, color=_PALETTE[j % len(_PALETTE)], label=f"array {a}")
    before = d.defective.groupby("array")["accuracy"].mean()
    for j, a in enumerate(arrays):
        if a in before.index:
            ax1.axhline(before[a] * 100, color=_PALETTE[j % len(_PALETTE)], ls=":", lw=1)
    for name, marker in (("affine", "s"), ("logistic", "D"), ("lastlayer", "^")):
        b = c[c["corrector"] == name]
        if len(b):
            ax1.scatter(b["n_parameters"].iloc[0], b["accuracy"].mean() * 100, marker=marker, s=46, color="#111827",
                        zorder=5, label=f"{name} (all arrays)")
    if d.healthy_accuracy is not None:
        ax1.axhline(d.healthy_accuracy * 100, color=_HEALTHY, ls="--", lw=1, label="healthy circuit")
    ax1.axvline(_MAX_CORRECTOR_PARAMS, color="#9ca3af", lw=1)
    _parameter_axis(ax1, c["n_parameters"])
    ax1.set_xlabel("corrector parameters")
    ax1.set_ylabel("mean test accuracy after correction (%)")
    ax1.set_title("dotted: the same circuits uncorrected")
    ax1.legend(frameon=False, fontsize=7.5, loc="lower right")
    damaged = c[c["lost"] >= 0.05]
    if len(damaged):
        groups = damaged.groupby(["corrector", "n_parameters"])["recovered"]
        q = groups.quantile([0.25, 0.5, 0.75]).unstack()
        q = q.reset_index()
        m = q[q["corrector"] == "mlp"].sort_values("n_parameters")
        ax2.plot(m["n_parameters"], m[0.5] * 100, "-o", color="#2563eb", ms=3.5, lw=1.6, label="MLP 10-h-10: median")
        ax2.fill_between(m["n_parameters"], m[0.25] * 100, m[0.75] * 100, color="#2563eb", alpha=0.15, lw=0,
                         label="quartiles")
        for name, marker in (("affine", "s"), ("logistic", "D"), ("lastlayer", "^")):
            b = q[q["corrector"] == name]
            if len(b):
                ax2.errorbar(b["n_parameters"], b[0.5] * 100, yerr=[(b[0.5] - b[0.25]) * 100, (b[0.75] - b[0.5]) * 100],
                             fmt=marker, color="#111827", ms=6, capsize=3, label=name)
        ax2.axhline(0, color="#6b7280", lw=1)
        low = float(np.nanmin(m[0.25])) * 100 if len(m) else 0.0
        if low < -100:  # a harmful tiny corrector would squash the informative range into a line
            ax2.set_ylim(-100, 105)
            ax2.text(0.1, 0.97, f"axis clipped at -100%:\nthe lower quartile reaches {low:.0f}%", transform=ax2.transAxes,
                     fontsize=7.5, color="#6b7280", va="top")
        ax2.axvline(_MAX_CORRECTOR_PARAMS, color="#9ca3af", lw=1)
        _parameter_axis(ax2, c["n_parameters"])
        ax2.set_xlabel("corrector parameters")
        ax2.set_ylabel("recovered share of the lost accuracy (%)")
        ax2.set_title(f"circuits that lost >= 5 points (n = {damaged['circuit_id'].nunique()})")
        ax2.legend(frameon=False, fontsize=7.5, loc="lower right")
    else:
        ax2.text(0.5, 0.5, "no circuit lost 5 points or more", ha="center", va="center", transform=ax2.transAxes)
        ax2.set_axis_off()
    fig.tight_layout()
    return _png(fig)


def _parameter_axis(ax: Any, counts: pd.Series) -> None:
    """A log axis labelled with the parameter counts that occur (not powers of ten)."""
    from matplotlib.ticker import FixedLocator, NullLocator

    ticks = sorted(int(v) for v in counts.unique())
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(t) for t in ticks], fontsize=8)


def cross_matrix(d: _Data) -> Optional[pd.DataFrame]:
    """Mean test accuracy of correctors trained on pattern A (rows) and tested on pattern B (columns)."""
    x = d.cross
    if x.empty:
        return None
    m = x.pivot_table(index="train_pattern", columns="test_pattern", values="accuracy", aggfunc="mean")
    patterns = [p for p in d.study["defects"]["patterns"] if p in m.columns]
    rows = [p for p in patterns if p in m.index] + (["mixture"] if "mixture" in m.index else [])
    m = m.reindex(index=rows, columns=patterns)
    before = x.drop_duplicates(["test_pattern", "array", "kind", "severity", "instance"]).groupby("test_pattern")[
        "accuracy_before"].mean()
    m.loc["uncorrected"] = before.reindex(patterns)
    return m


def figure_cross(d: _Data) -> Optional[str]:
    """Heatmap of the cross-defect matrix (rows: trained on; columns: tested on)."""
    m = cross_matrix(d)
    if m is None:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.0 * m.shape[1] + 2.6, 0.55 * m.shape[0] + 1.6))
    ax.grid(False)
    values = m.values * 100
    im = ax.imshow(values, cmap="viridis", vmin=max(0, np.nanmin(values) - 5), vmax=min(100, np.nanmax(values) + 2),
                   aspect="auto")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            v = values[i, j]
            if np.isfinite(v):
                bright = im.norm(v) > 0.6
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=8.5,
                        color="#111827" if bright else "white", fontweight="bold" if m.index[i] == m.columns[j] else None)
    ax.axhline(len(m.index) - 1.5, color="white", lw=3)
    if "mixture" in m.index:
        ax.axhline(len(m.index) - 2.5, color="white", lw=3)
    ax.set_xticks(range(m.shape[1]), [c.replace("_", "\n") for c in m.columns], fontsize=8)
    ax.set_yticks(range(m.shape[0]), [r.replace("_", " ") for r in m.index], fontsize=8.5)
    ax.set_xlabel("tested on a chip with this pattern")
    ax.set_ylabel("corrector trained on a chip with")
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    cb = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    cb.set_label("mean test accuracy (%)")
    fig.tight_layout()
    return _png(fig)


def figure_voltages(d: _Data) -> Optional[str]:
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
            pattern, kind, a, s, i = _parse_circuit_id(cid)
            if s == smax:
                groups.setdefault((a, kind), []).append(arrs["outputs_v"][k].ravel())
    if not groups:
        return None
    arrays = sorted({a for a, _ in groups})
    plt = _plt()
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
    return _png(fig)


# ----------------------------------------------------------------------------- numbers

def headline_numbers(d: _Data) -> list[tuple[str, str, str]]:
    """(quantity, value, note) rows for the headline table."""
    rows: list[tuple[str, str, str]] = []
    pct = lambda v: f"{v * 100:.1f}%"  # noqa: E731
    study = d.study
    if d.software_accuracy is not None:
        rows.append(("Software network, test accuracy", pct(d.software_accuracy),
                     f"{study['dataset']['n_test']} held-out test images"))
    if d.healthy_accuracy is not None:
        rows.append(("Healthy circuit, test accuracy", pct(d.healthy_accuracy),
                     f"engine {study['engine']}, wire segments {study['circuit']['r_word_ohm']:g} ohm"))
    df = d.defective
    if not df.empty:
        rows.append(("Defective circuits simulated", f"{df['circuit_id'].nunique():,}",
                     f"{len(d.patterns())} patterns, {df['array'].nunique()} arrays, {df['kind'].nunique()} kinds, "
                     f"{df['severity'].nunique()} densities, {_plural(df['instance'].nunique(), 'instance')}"))
        rows.append(("Mean accuracy of the defective circuits", pct(df["accuracy"].mean()),
                     f"median {pct(df['accuracy'].median())}"))
        worst = df.loc[df["accuracy"].idxmin()]
        rows.append(("Worst defective circuit", pct(worst["accuracy"]), str(worst["circuit_id"])))
        cell = df.groupby(["pattern", "array"])["accuracy"].mean()
        (wp, wa), wv = cell.idxmin(), cell.min()
        rows.append(("Most harmful pattern and array", f"{wp}, array {wa}", f"mean accuracy {pct(wv)}"))
        if {"on", "off"} <= set(df["kind"]):
            on, off = df[df["kind"] == "on"]["accuracy"].mean(), df[df["kind"] == "off"]["accuracy"].mean()
            rows.append(("Stuck-on vs stuck-off, mean accuracy", f"{pct(on)} vs {pct(off)}",
                         "same cells hit in each pair"))
    c = _correction_frame(d)
    if not c.empty:
        small = c[(c["n_parameters"] <= _MAX_CORRECTOR_PARAMS)]
        if len(small):
            best = small.groupby(["corrector", "hidden", "n_parameters"])["accuracy"].mean().idxmax()
            name = f"MLP h={best[1]}" if best[0] == "mlp" else best[0]
            sel = small[(small["corrector"] == best[0]) & (small["hidden"] == best[1])]
            damaged = sel[sel["lost"] >= 0.05]
            note = f"{best[2]} parameters; median recovered share {pct(damaged['recovered'].median())}" \
                if len(damaged) else f"{best[2]} parameters"
            rows.append((f"Best corrector with <= {_MAX_CORRECTOR_PARAMS} parameters ({name})",
                         f"{pct(df['accuracy'].mean())} -> {pct(sel['accuracy'].mean())}", note))
            low = small[small["accuracy_before"] <= 0.55]
            if len(low):
                top = low.loc[(low["accuracy"] - low["accuracy_before"]).idxmax()]
                label = f"MLP h={top['hidden']}" if top["corrector"] == "mlp" else top["corrector"]
                rows.append(("Largest recovery of a circuit at <= 55%",
                             f"{pct(top['accuracy_before'])} -> {pct(top['accuracy'])}",
                             f"{top['circuit_id']}, {label} ({top['n_parameters']} parameters)"))
        tiny = c[(c["corrector"] == "mlp") & (c["hidden"] == 1)]
        if len(tiny):
            delta = (tiny["accuracy"] - tiny["accuracy_before"]).mean()
            rows.append((f"Smallest corrector (h=1, {tiny['n_parameters'].iloc[0]} parameters)",
                         f"{delta * 100:+.1f} points", "mean change of test accuracy: " +
                         ("it helps on average" if delta > 0 else "it harms on average")))
    m = cross_matrix(d)
    if m is not None:
        core = m.drop(index=[r for r in ("mixture", "uncorrected") if r in m.index])
        diag = np.nanmean([core.loc[p, p] for p in core.index if p in core.columns])
        off = np.nanmean([core.loc[a, b] for a in core.index for b in core.columns if a != b])
        rows.append(("Cross-defect: same pattern vs other patterns", f"{pct(diag)} vs {pct(off)}",
                     f"corrector h={study['cross_defect']['hidden']}; uncorrected {pct(np.nanmean(m.loc['uncorrected']))}"))
        if "mixture" in m.index:
            rows.append(("Cross-defect: corrector trained on the mixture", pct(np.nanmean(m.loc["mixture"])),
                         "mean over test patterns"))
    runs = d.store.runs()
    if runs:
        wall = sum(r.get("wall_s", 0.0) for r in runs)
        inf = sum(r.get("n_inferences", 0) for r in runs)
        last = runs[-1].get("executor", {})
        rows.append(("Circuit-inferences simulated", f"{inf:,}", f"in {wall:.0f} s over {len(runs)} run(s): "
                     f"{inf / wall if wall else 0:,.0f} per second ({last.get('workers')} {last.get('executor')} workers)"))
    return rows


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def severity_table(d: _Data) -> Optional[pd.DataFrame]:
    """Mean accuracy per pattern (rows) and array (columns) at the highest density, both kinds pooled."""
    df = d.defective
    if df.empty:
        return None
    smax = df["severity"].max()
    t = df[df["severity"] == smax].pivot_table(index="pattern", columns="array", values="accuracy", aggfunc="mean")
    return t.reindex(d.patterns())


# ----------------------------------------------------------------------------- HTML

_CSS = """
:root { --ink:#111827; --muted:#4b5563; --line:#e5e7eb; --accent:#1d4ed8; --bg:#f8fafc; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font: 15px/1.55 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "DejaVu Sans", Arial, sans-serif; }
header { background:#0f172a; color:#f8fafc; padding:28px 0 22px; }
header .wrap > p { color:#cbd5e1; margin:6px 0 0; max-width:880px; }
header h1 { margin:0; font-size:26px; letter-spacing:-0.01em; }
header .meta { font-size:13px; color:#94a3b8; margin-top:10px; }
.wrap { max-width:1120px; margin:0 auto; padding:0 28px; }
nav { background:white; border-bottom:1px solid var(--line); position:sticky; top:0; z-index:2; }
nav .wrap { display:flex; flex-wrap:wrap; gap:18px; padding-top:10px; padding-bottom:10px; font-size:13.5px; }
nav a { color:var(--muted); text-decoration:none; } nav a:hover { color:var(--accent); }
section { background:white; border:1px solid var(--line); border-radius:10px; margin:22px 0; padding:20px 24px; }
h2 { font-size:19px; margin:0 0 4px; } h3 { font-size:15px; margin:18px 0 6px; }
.lead { color:var(--muted); margin:0 0 14px; }
figure { margin:8px 0 0; } figure img { max-width:100%; height:auto; display:block; margin:0 auto; }
figcaption { color:var(--muted); font-size:13.5px; margin-top:8px; max-width:900px; }
figcaption b { color:var(--ink); }
.cards { display:grid; grid-template-columns:repeat(auto-fill, minmax(210px, 1fr)); gap:12px; margin:6px 0 18px; }
.card { border:1px solid var(--line); border-radius:8px; padding:12px 14px; background:#fbfdff; }
.card .v { font-size:22px; font-weight:650; letter-spacing:-0.01em; }
.card .k { font-size:12.5px; color:var(--muted); }
table { border-collapse:collapse; width:100%; font-size:13.5px; }
th, td { text-align:left; padding:7px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#f1f5f9; font-weight:600; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
.note { font-size:13px; color:var(--muted); }
.missing { color:var(--muted); font-style:italic; }
code { background:#f1f5f9; padding:1px 5px; border-radius:4px; font-size:12.5px; }
footer { color:var(--muted); font-size:12.5px; padding:10px 0 40px; }
"""

# Records, for a browser-driven test, whether every image decoded (a harmless attribute for readers).
_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  imgs.forEach(function (i) { i.setAttribute('data-loaded', i.naturalWidth > 0 ? 'yes' : 'no'); });
  document.body.setAttribute('data-images-total', String(imgs.length));
  document.body.setAttribute('data-images-loaded', String(ok.length));
});
"""


def _e(text: Any) -> str:
    return html.escape(str(text))


def _figure(uri: Optional[str], alt: str, caption: str) -> str:
    if uri is None:
        return f'<p class="missing">Not available: {_e(alt)} needs results this store does not hold yet.</p>'
    return f'<figure><img src="{uri}" alt="{_e(alt)}"><figcaption>{caption}</figcaption></figure>'


def _frame_html(frame: pd.DataFrame, fmt: str = "{:.1f}", scale: float = 100.0, index_name: str = "") -> str:
    head = "".join(f'<th class="num">{_e(c)}</th>' for c in frame.columns)
    body = []
    for idx, row in frame.iterrows():
        cells = "".join(f'<td class="num">{fmt.format(v * scale) if pd.notna(v) else "&ndash;"}</td>' for v in row.values)
        body.append(f"<tr><td>{_e(idx)}</td>{cells}</tr>")
    return f"<table><tr><th>{_e(index_name)}</th>{head}</tr>{''.join(body)}</table>"


def build_report(root: Union[str, Path]) -> str:
    """The report of the store at ``root`` as one HTML string."""
    d = _load(root)
    study = d.study
    grid = study["defects"]
    n_done = len(d.info)
    headline = headline_numbers(d)
    cards = []
    for label in ("Healthy circuit, test accuracy", "Mean accuracy of the defective circuits",
                  f"Best corrector with <= {_MAX_CORRECTOR_PARAMS} parameters", "Circuit-inferences simulated"):
        row = next((r for r in headline if r[0].startswith(label)), None)
        if row:
            cards.append(f'<div class="card"><div class="v">{_e(row[1])}</div><div class="k">{_e(row[0])}</div></div>')
    table_rows = "".join(f"<tr><td>{_e(k)}</td><td class='num'>{_e(v)}</td><td class='note'>{_e(n)}</td></tr>"
                         for k, v, n in headline)
    sev = severity_table(d)
    sev_html = _frame_html(sev.rename(columns=lambda a: f"array {a}"), index_name="pattern") if sev is not None else ""
    cross = cross_matrix(d)
    smax = grid["severities"][-1]
    h_cross = study["cross_defect"]["hidden"]
    env = _read_json(d.root / "environment.json")
    git = env.get("git", {}) if env else {}
    pk = env.get("packages", {}) if env else {}
    versions = ", ".join(f"{k} {v}" for k, v in pk.items() if v)
    healthy_txt = f"{d.healthy_accuracy:.1%}" if d.healthy_accuracy is not None else "n/a"

    sections = [
        ("headline", "Headline numbers",
         f'<div class="cards">{"".join(cards)}</div>'
         f"<table><tr><th>Quantity</th><th class='num'>Value</th><th>Note</th></tr>{table_rows}</table>"
         + (f"<h3>Mean test accuracy (%) at the highest density ({smax:g}), stuck-on and stuck-off pooled</h3>{sev_html}"
            if sev_html else "")),
        ("gallery", "Defect maps",
         _figure(figure_gallery(d), "defect-map gallery",
                 "<b>What was hit.</b> One circuit per pattern (columns) and array (rows), instance 0 at the middle "
                 "density of the grid: the programmed conductances in grey (darker = higher conductance), the stuck "
                 "cells in red, and below each map the achieved density. Arrays are drawn in physical coordinates: "
                 "rows are word lines (inputs, bias row last), columns are bit lines (the two columns of each "
                 "differential pair side by side).")),
        ("severity", "Accuracy vs defect density",
         _figure(figure_accuracy_vs_severity(d), "accuracy vs severity",
                 "<b>How fast each pattern destroys accuracy.</b> Test accuracy of the defective circuit (no "
                 "correction) against the target defect density, for every pattern (colours), array (columns) and "
                 "kind (rows). Lines are the mean over instances, bands span the lowest to the highest instance. "
                 f"Dashed: the healthy circuit ({healthy_txt}); dotted: chance (10%).")),
        ("onoff", "Stuck-on vs stuck-off",
         _figure(figure_on_vs_off(d), "stuck-on vs stuck-off",
                 "<b>Does the stuck state matter?</b> Left: every defect instance is simulated twice with exactly the "
                 "same cells hit, once stuck at the highest conductance (on) and once at the lowest (off); points on "
                 "the dashed diagonal are equally harmful either way (markers distinguish arrays). Right: the mean "
                 "accuracy per pattern for each kind.")),
        ("correction", "Accuracy recovered vs corrector size",
         _figure(figure_recovery(d), "accuracy recovered vs corrector parameters",
                 "<b>How much a small network on the output voltages wins back.</b> Left: mean test accuracy after "
                 "correction against the corrector's parameter count (10 &rarr; h &rarr; 10 MLPs, "
                 f"h in {study['correctors']['hidden']}, fitted on each circuit's training images and evaluated on "
                 "its held-out test images); dotted lines: the same circuits uncorrected; black markers: the "
                 f"baselines ({_e(', '.join(study['correctors']['baselines']) or 'none in this study')}); the grey "
                 f"line marks {_MAX_CORRECTOR_PARAMS} parameters. Right: the share "
                 "of the lost accuracy (healthy minus defective) that correction recovers, for the circuits that "
                 "lost at least 5 points.")),
        ("cross", "Cross-defect matrix",
         _figure(figure_cross(d), "cross-defect matrix",
                 f"<b>Does a corrector trained on one defect pattern transfer to another?</b> A corrector (h={h_cross}) "
                 "is fitted on the training images of a chip with the pattern of the row and tested on the held-out "
                 "images of the chip with the pattern of the column, at the same array, kind, density and instance. "
                 "Values are mean test accuracies (%) over those; the diagonal (bold) is the same chip. "
                 "<i>mixture</i>: trained on the pooled chips of every pattern; <i>uncorrected</i>: the test chip "
                 "without a corrector.")
         if cross is not None or not study["cross_defect"]["enabled"] else
         _figure(None, "the cross-defect matrix", "")),
        ("voltages", "Output voltages, healthy vs defective",
         _figure(figure_voltages(d), "output voltage distributions",
                 "<b>What the defects do to the signal.</b> Distribution of every output neuron's voltage over all "
                 f"images, for the healthy circuit (grey) and for the defective circuits at the highest density "
                 f"({smax:g}) with the defects in the array of each panel, stuck-on and stuck-off. Log scale: the "
                 "tails are where decisions flip.")),
        ("study", "Study and environment",
         f"<p class='lead'>{_e(study.get('description', '')).strip()}</p>"
         "<table>"
         f"<tr><td>Grid</td><td>patterns {_e(', '.join(grid['patterns']))}; kinds {_e(', '.join(grid['kinds']))}; "
         f"arrays {_e(grid['arrays'])}; densities {_e(grid['severities'])}; {_plural(grid['instances'], 'instance')}</td></tr>"
         f"<tr><td>Circuit</td><td>{_e(', '.join(f'{k}={v}' for k, v in study['circuit'].items() if v is not None))}</td></tr>"
         f"<tr><td>Engine</td><td>{_e(study['engine'])} {_e(study['engine_options'] or '')}</td></tr>"
         f"<tr><td>Network</td><td>{_e('-'.join(map(str, study['network']['widths'])))}, {study['network']['epochs']} "
         f"epochs, seed {study['network']['seed']}</td></tr>"
         f"<tr><td>Seeds</td><td>{_e(study['seeds'])}</td></tr>"
         f"<tr><td>Tasks finished</td><td>{n_done}</td></tr>"
         f"<tr><td>Code</td><td>git {_e(git.get('commit') or 'unknown')}{' (uncommitted changes)' if git.get('dirty') else ''}</td></tr>"
         f"<tr><td>Packages</td><td>{_e(versions)}</td></tr>"
         f"<tr><td>Python, platform</td><td>{_e(env.get('python', ''))}, {_e(env.get('platform', ''))}</td></tr>"
         "</table>"
         "<p class='note'>Load the full table in Python with <code>neurodtco.store.load_results(DIR)</code> "
         "(one row per circuit and corrector) and <code>load_results(DIR, 'cross')</code>.</p>"),
    ]
    nav = "".join(f'<a href="#{sid}">{_e(title)}</a>' for sid, title, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{_e(title)}</h2>{content}</section>' for sid, title, content in sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(study['name'])}: stuck-at defect study report</title>
<style>{_CSS}</style></head>
<body>
<header><div class="wrap"><h1>Study <code style="background:#1e293b;color:#e2e8f0">{_e(study['name'])}</code></h1>
<p>{_e(study.get('description', '')).strip()}</p>
<div class="meta">Generated {time.strftime('%Y-%m-%d %H:%M')} from {_e(d.root.resolve())} by neurodtco</div></div></header>
<nav><div class="wrap">{nav}</div></nav>
<main class="wrap">{body}</main>
<footer class="wrap">Self-contained report: every figure is embedded; nothing is loaded from the network.</footer>
<script>{_SCRIPT}</script>
</body></html>
"""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def write_report(root: Union[str, Path], out: Optional[Union[str, Path]] = None) -> Path:
    """Write the report of the store at ``root`` (default ``root/report.html``); returns its path."""
    from .store import atomic_write_text

    root = Path(root)
    if not (root / "study.resolved.json").is_file():
        raise FileNotFoundError(f"{str(root)!r} is not a study results folder (no study.resolved.json); "
                                "run `neurodtco run STUDY.yaml --out DIR` first")
    path = Path(out) if out is not None else root / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, build_report(root))
    return path
