"""The report's yield sections: wafer maps, yield against D0 with Wilson bands, the D0 where 90 % yield is lost, calibration.

Everything is drawn from the store's ``dies`` table (one row per die and mitigation). A yield is the
share of dies that pass, with its 95 % Wilson interval over the dies (taken as independent). The
D0 at which yield falls below 90 % is read off the yield curve by linear interpolation in log D0
between the last density at or above 90 % and the first below; its interval is a parametric
bootstrap over dies: each density's pass count is redrawn as Binomial(n dies, observed yield), the
crossing taken again, 2000 times, and the 2.5 and 97.5 percentiles reported. A crossing outside the
densities studied is reported as a bound (``< lowest`` or ``> highest``).
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
import pandas as pd

from ..stats import first_crossing, wilson_interval

TARGET = 0.9
N_RESAMPLES = 2000


def mitigation_order(dies: pd.DataFrame) -> list[str]:
    """Mitigations in the order the study lists them (the order of the rows)."""
    return list(dict.fromkeys(dies["mitigation"]))


def correct_k(mitigation: str) -> Optional[int]:
    """The k of a ``correctK`` mitigation (None for any other)."""
    return int(mitigation[len("correct"):]) if mitigation.startswith("correct") and mitigation[7:].isdigit() else None


def yield_frame(dies: pd.DataFrame) -> pd.DataFrame:
    """Per (mitigation, alpha, D0): dies, passes, yield and its Wilson interval, mean accuracy."""
    rows = []
    for (m, alpha, d0), g in dies.groupby(["mitigation", "alpha", "d0"], sort=False):
        n, k = len(g), int(g["passed"].sum())
        low, high = wilson_interval(k, n)
        rows.append({"mitigation": m, "alpha": alpha, "d0": d0, "n_dies": n, "n_pass": k, "yield": k / n,
                     "yield_low": low, "yield_high": high, "mean_accuracy": float(g["accuracy"].mean()),
                     "n_wafers": int(g["wafer"].nunique())})
    return pd.DataFrame(rows).sort_values(["alpha", "d0"], kind="stable").reset_index(drop=True)


def crossing(d0: np.ndarray, y: np.ndarray, target: float = TARGET) -> float:
    """The D0 where the yield curve first falls below ``target`` (log-linear); -inf or +inf outside the range."""
    d0 = np.asarray(d0, dtype=float)
    positive = d0 > 0
    if positive.any() and not positive.all():  # a zero density has no logarithm: it stands a decade below the next
        d0 = np.where(positive, d0, d0[positive].min() / 10)
    c = first_crossing(d0, y, target)
    return -math.inf if math.isnan(c) else c


def d0_at_target(table: pd.DataFrame, target: float = TARGET, seed: int = 0) -> pd.DataFrame:
    """Per (mitigation, alpha): the D0 where yield falls below ``target``, with its bootstrap interval (see module doc)."""
    rng = np.random.default_rng(seed)
    rows = []
    for (m, alpha), g in table.groupby(["mitigation", "alpha"], sort=False):
        g = g.sort_values("d0")
        d0, n, k = g["d0"].to_numpy(), g["n_dies"].to_numpy(), g["n_pass"].to_numpy()
        boot = rng.binomial(n[None, :], (k / n)[None, :], size=(N_RESAMPLES, len(n))) / n
        draws = np.array([crossing(d0, b, target) for b in boot])
        low, high = np.quantile(draws, [0.025, 0.975], method="inverted_cdf")  # order statistics: inf-safe
        rows.append({"mitigation": m, "alpha": alpha, "d0": crossing(d0, k / n, target), "low": low, "high": high,
                     "d0_min": float(d0.min()), "d0_max": float(d0.max()), "n_dies": int(n.sum())})
    return pd.DataFrame(rows)


def format_d0(value: float, d0_min: float, d0_max: float) -> str:
    """A crossing as text: the number, or a bound when it lies outside the densities studied."""
    if value == -math.inf:
        return f"< {d0_min:.2g}"
    if value == math.inf:
        return f"> {d0_max:.2g}"
    return f"{value:.2g}"


def _alpha_text(alpha: float) -> str:
    return "no clustering" if math.isinf(alpha) else f"alpha = {alpha:g}"


def figure_yield_curves(dies: pd.DataFrame, plt: Any, palette: list[str]) -> Any:
    """Yield against D0, one panel per alpha, one line per mitigation, Wilson bands, the 90 % line."""
    table = yield_frame(dies)
    alphas = sorted(table["alpha"].unique())
    order = mitigation_order(dies)
    fig, axes = plt.subplots(1, len(alphas), figsize=(4.6 * len(alphas) + 1.6, 3.6), sharey=True, squeeze=False)
    for ax, alpha in zip(axes[0], alphas):
        for i, m in enumerate(order):
            g = table[(table["alpha"] == alpha) & (table["mitigation"] == m)].sort_values("d0")
            color = palette[i % len(palette)]
            ax.plot(g["d0"], g["yield"], marker="o", ms=3.5, color=color, label=m)
            ax.fill_between(g["d0"], g["yield_low"], g["yield_high"], color=color, alpha=0.15, lw=0)
        ax.axhline(TARGET, color="#6b7280", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("D0 (defects per cell)")
        ax.set_title(_alpha_text(alpha))
    axes[0][0].set_ylabel("yield (share of dies passing)")
    axes[0][-1].legend(title="mitigation", loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def figure_wafer_maps(dies: pd.DataFrame, plt: Any) -> Any:
    """Wafer 0 at every D0 (columns) under every mitigation (rows), first alpha: colour = accuracy, x = fails."""
    from matplotlib.patches import Circle, Rectangle

    alpha = sorted(dies["alpha"].unique())[0]
    sub = dies[(dies["alpha"] == alpha) & (dies["wafer"] == dies["wafer"].min())]
    order = mitigation_order(dies)
    d0s = sorted(sub["d0"].unique())
    have_acc = sub["accuracy"].notna().any()
    value = "accuracy" if have_acc else "n_stuck_left"
    cmap = plt.get_cmap("viridis" if have_acc else "magma_r")
    # Accuracy from a tenth below the worst die: the colours resolve the dies near the bound, not 0 to 1.
    vmin, vmax = ((math.floor(10 * float(sub[value].min())) / 10, 1.0) if have_acc
                  else (0.0, max(1.0, float(sub[value].max()))))
    norm = plt.Normalize(vmin, vmax)
    size = 1.55
    fig, axes = plt.subplots(len(order), len(d0s), figsize=(size * len(d0s) + 1.0, size * len(order) + 0.4),
                             squeeze=False)
    w = float(np.diff(np.unique(sub["x_mm"]))[0]) if sub["x_mm"].nunique() > 1 else 10.0
    h = float(np.diff(np.unique(sub["y_mm"]))[0]) if sub["y_mm"].nunique() > 1 else 10.0
    radius = float(np.hypot(sub["x_mm"].abs() + w / 2, sub["y_mm"].abs() + h / 2).max())
    for r, m in enumerate(order):
        for c, d0 in enumerate(d0s):
            ax = axes[r][c]
            g = sub[(sub["mitigation"] == m) & (sub["d0"] == d0)]
            ax.add_patch(Circle((0, 0), radius * 1.04, fc="#f3f4f6", ec="#9ca3af", lw=0.6))
            for row in g.itertuples():
                ax.add_patch(Rectangle((row.x_mm - w / 2, row.y_mm - h / 2), w, h, fc=cmap(norm(getattr(row, value))),
                                       ec="white", lw=0.4))
                if not row.passed:
                    ax.plot(row.x_mm, row.y_mm, marker="x", color="#dc2626", ms=3.2, mew=0.9)
            ax.set_xlim(-radius * 1.08, radius * 1.08)
            ax.set_ylim(-radius * 1.08, radius * 1.08)
            ax.set_aspect("equal")
            ax.axis("off")
            if r == 0:
                ax.set_title(f"D0 = {d0:.2g}", fontsize=8.5)
            n_pass = int(g["passed"].sum())
            ax.text(0, -radius * 1.12, f"{n_pass}/{len(g)} pass", ha="center", va="top", fontsize=7.5)
        axes[r][0].text(-radius * 1.2, 0, m, ha="right", va="center", fontsize=8.5, fontweight="bold")
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    bar = fig.colorbar(sm, ax=axes, shrink=0.6, pad=0.02)
    bar.set_label("die test accuracy" if have_acc else "stuck cells left")
    return fig


def figure_calibration(dies: pd.DataFrame, plt: Any, palette: list[str]) -> Optional[Any]:
    """Yield against the labelled images k of the per-die corrector, one line per D0 (first alpha); None below 2 k."""
    ks = sorted(k for k in (correct_k(m) for m in mitigation_order(dies)) if k is not None)
    if len(ks) < 2:
        return None
    table = yield_frame(dies)
    alphas = sorted(table["alpha"].unique())
    fig, axes = plt.subplots(1, len(alphas), figsize=(4.4 * len(alphas) + 1.4, 3.4), sharey=True, squeeze=False)
    for ax, alpha in zip(axes[0], alphas):
        t = table[table["alpha"] == alpha]
        for i, d0 in enumerate(sorted(t["d0"].unique())):
            color = palette[i % len(palette)]
            g = t[(t["d0"] == d0) & t["mitigation"].map(lambda m: correct_k(m) is not None)].copy()
            g["k"] = g["mitigation"].map(correct_k)
            g = g.sort_values("k")
            ax.plot(g["k"], g["yield"], marker="o", ms=3.5, color=color, label=f"{d0:.2g}")
            ax.fill_between(g["k"], g["yield_low"], g["yield_high"], color=color, alpha=0.15, lw=0)
            none = t[(t["d0"] == d0) & (t["mitigation"] == "none")]
            if len(none):
                ax.axhline(float(none["yield"].iloc[0]), color=color, ls=":", lw=0.9)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.set_xticks(ks)
        ax.set_xticklabels([str(k) for k in ks])
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("labelled images per die (k)")
        ax.set_title(_alpha_text(alpha))
    axes[0][0].set_ylabel("yield with per-die corrector")
    axes[0][-1].legend(title="D0", loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    fig.tight_layout()
    return fig
