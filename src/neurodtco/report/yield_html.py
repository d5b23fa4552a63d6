"""The report's yield sections as HTML: the numbers of the wafer section and its figures, each with its counts."""

from __future__ import annotations

import math
from typing import Any

from .data import ReportData
from .figures import PALETTE, png_uri, report_pyplot
from .htmlparts import escape as _e, figure_html as _figure
from .yield_report import (correct_k, d0_at_target, figure_calibration, figure_wafer_maps,
                           figure_yield_curves, format_d0, mitigation_order, yield_frame)


def _criterion_text(wafer: dict[str, Any]) -> str:
    c = wafer["criterion"]
    if c["kind"] == "any-defect":
        return "a die passes when it has no stuck cell left"
    if c.get("bound") is not None:
        return f"a die passes at a test accuracy of {c['bound']:.0%} or more"
    return f"a die passes within {c['within']:g} points of the healthy chip's test accuracy"


def yield_sections(d: ReportData) -> list[tuple[str, str, str]]:
    """The yield sections: the D0 where 90 % yield is lost, yield curves, wafer maps, calibration."""
    wafer = d.study["wafer"]
    dies = d.dies
    if dies.empty:
        missing = '<p class="missing">Not available: no dies task has finished yet.</p>'
        return [("yield", "Yield", missing)]
    plt = report_pyplot()
    table = yield_frame(dies)
    order = mitigation_order(dies)
    per_point = table.groupby(["alpha", "d0"])["n_dies"].first()
    n_wafers = int(dies.groupby(["d0", "alpha"])["wafer"].nunique().min())
    n_test, n_val = int(dies["n_test"].iloc[0]), int(dies["n_validation"].iloc[0])
    healthy = dies["healthy_accuracy"].dropna()
    counts = (f"{int(per_point.min()):,}" + (f" to {int(per_point.max()):,}" if per_point.max() != per_point.min()
                                             else "")
              + f" dies per point ({n_wafers} wafer{'s' if n_wafers != 1 else ''} of {wafer['diameter_mm']:g} mm, "
              f"{wafer['die_width_mm']:g} x {wafer['die_height_mm']:g} mm dies), {len(dies[dies['mitigation'] == order[0]]):,} "
              f"dies in all, each judged on {n_test:,} test images")
    crit = _criterion_text(wafer)
    healthy_text = f" (healthy chip: {healthy.iloc[0]:.1%})" if len(healthy) else ""

    d90 = d0_at_target(table)
    rows = "".join(
        f"<tr><td>{_e(r['mitigation'])}</td><td>{'none' if math.isinf(r['alpha']) else f'{r.alpha:g}'}</td>"
        f"<td class='num'>{_e(format_d0(r['d0'], r['d0_min'], r['d0_max']))}</td>"
        f"<td class='num'>[{_e(format_d0(r['low'], r['d0_min'], r['d0_max']))}, "
        f"{_e(format_d0(r['high'], r['d0_min'], r['d0_max']))}]</td><td class='num'>{r['n_dies']:,}</td></tr>"
        for r in d90.to_dict("records") for r in [_Row(r)])
    d90_html = (f"<p>{_e(crit[0].upper() + crit[1:])}{_e(healthy_text)}; {_e(counts)}.</p>"
                "<table><tr><th>mitigation</th><th>alpha</th><th class='num'>D0 where yield falls below 90 % (defects per cell)</th>"
                f"<th class='num'>95 % interval</th><th class='num'>dies</th></tr>{rows}</table>"
                "<p class='note'>Read off the yield curve by linear interpolation in log D0 between the last density "
                "at or above 90 % and the first below. The interval is a parametric bootstrap over the dies: each "
                "density's pass count redrawn as Binomial(dies, observed yield), the crossing taken again, 2000 times "
                "(2.5 and 97.5 percentiles). '&lt;' and '&gt;': the crossing lies outside the densities studied.</p>")

    ks = [k for k in (correct_k(m) for m in order) if k is not None]
    calibration = figure_calibration(dies, plt, PALETTE)
    first_alpha = sorted(dies["alpha"].unique())[0]
    alpha_text = "no clustering" if math.isinf(first_alpha) else f"alpha = {first_alpha:g}"
    sections = [
        ("yield", "Yield: where 90 % is lost", d90_html),
        ("yieldcurves", "Yield vs D0",
         _figure(png_uri(figure_yield_curves(dies, plt, PALETTE)), "yield vs D0",
                 f"<b>How yield falls with the defect density.</b> Share of dies that pass ({_e(crit)}) against the "
                 "mean stuck-defect density D0, one panel per clustering parameter alpha, one line per mitigation; "
                 "bands: 95 % Wilson intervals over the dies; dotted: 90 % yield. "
                 f"{_e(counts)}.")),
        ("wafermaps", "Wafer maps",
         _figure(png_uri(figure_wafer_maps(dies, plt)), "wafer maps",
                 f"<b>Where the failing dies are.</b> Wafer 0 of each density (columns, {_e(alpha_text)}) under "
                 "each mitigation (rows): every die coloured by its test accuracy after the mitigation, a red cross on "
                 f"each die that fails ({_e(crit)}); below each wafer the dies that pass. The same drawn dies in "
                 f"every row. {int(dies[dies['wafer'] == dies['wafer'].min()].groupby(['d0', 'alpha', 'mitigation']).size().max())} "
                 f"dies per wafer, {n_test:,} test images per die.")),
    ]
    if calibration is not None:
        sections.append(("calibration", "Calibration: labelled images per die",
                         _figure(png_uri(calibration), "calibration curve",
                                 "<b>How many labelled images a per-die corrector needs.</b> Yield with a 10 &rarr; "
                                 f"{wafer['mitigations']['hidden']} &rarr; 10 MLP corrector fitted on each die's own k "
                                 f"labelled training images (k in {ks}, a class-balanced subset per die), one line per "
                                 "D0; bands: 95 % Wilson intervals over the dies; dotted: the same dies uncorrected. "
                                 f"{_e(counts)}; {n_val:,} validation images are held out of every fit.")))
    return sections


class _Row(dict):
    """A record whose keys read as attributes too (for the f-strings above)."""

    __getattr__ = dict.__getitem__
