"""The report's HTML: one self-contained page (figures embedded as PNG) assembled from the data and figures.

Sections: headline numbers; defect-map gallery; accuracy vs severity for every pattern, array
and kind; stuck-on vs stuck-off; accuracy recovered vs corrector size; the cross-defect matrix;
output voltages of the healthy and defective circuits; for a study with a wafer section, the yield
sections (``yield_html``); the study and its environment. Every
section copes with a partial store (a run still going, or a study without that part). The style
sheet and the small script are package files (``report.css``, ``report.js``).
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path
from typing import Optional, Union

import pandas as pd

from ..store import atomic_write_text
from .data import (MAX_CORRECTOR_PARAMS, MEASURED_SOURCE, MEASURED_STUCK, ReportData, correction_by_array, fit_recipe,
                   headline_numbers, load_report_data, plural, read_json, severity_table, time_breakdown)
from .figures import (figure_accuracy_vs_severity, figure_cross, figure_gallery, figure_on_vs_off, figure_recovery,
                      figure_voltages)
from .htmlparts import escape as _e, figure_html as _figure
from .yield_html import yield_sections


def _asset(name: str) -> str:
    """A file shipped beside this module (the style sheet, the script)."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _frame_html(frame: pd.DataFrame, fmt: str = "{:.1f}", scale: float = 100.0, index_name: str = "") -> str:
    """A frame as an HTML table of scaled numbers (percent by default)."""
    head = "".join(f'<th class="num">{_e(c)}</th>' for c in frame.columns)
    body = []
    for idx, row in frame.iterrows():
        cells = "".join(f'<td class="num">{fmt.format(v * scale) if pd.notna(v) else "&ndash;"}</td>' for v in row.values)
        body.append(f"<tr><td>{_e(idx)}</td>{cells}</tr>")
    return f"<table><tr><th>{_e(index_name)}</th>{head}</tr>{''.join(body)}</table>"


def _grid_sections(d: ReportData) -> list[tuple[str, str, str]]:
    """The sections of the defect grid: headline numbers, maps, accuracy vs density, on vs off, correction, cross."""
    study = d.study
    grid = study["defects"]
    headline = headline_numbers(d)
    cards = []
    for label in ("Healthy circuit, test accuracy", "Mean accuracy of the defective circuits",
                  f"Best corrector with <= {MAX_CORRECTOR_PARAMS} parameters", "Circuit-inferences simulated"):
        row = next((r for r in headline if r[0].startswith(label)), None)
        if row:
            cards.append(f'<div class="card"><div class="v">{_e(row[1])}</div><div class="k">{_e(row[0])}</div></div>')
    table_rows = "".join(f"<tr><td>{_e(k)}</td><td class='num'>{_e(v)}</td><td class='note'>{_e(n)}</td></tr>"
                         for k, v, n in headline)
    sev = severity_table(d)
    n_cell = int(d.defective[d.defective["severity"] == d.defective["severity"].max()]
                 .groupby(["pattern", "array"]).size().min()) if sev is not None else 0
    sev_html = _frame_html(sev.rename(columns=lambda a: f"array {a}"), index_name="pattern") if sev is not None else ""
    smax = grid["severities"][-1]
    h_cross = study["cross_defect"]["hidden"]
    healthy_txt = f"{d.healthy_accuracy:.1%}" if d.healthy_accuracy is not None else "n/a"
    per_array = correction_by_array(d)
    per_array_html = ""
    if not per_array.empty:
        head = "".join(f"<th>{_e(h)}</th>" for h in ("array", "corrector (chosen on validation)", "parameters",
                                                     "uncorrected", "corrected", "paired gain", "basis"))
        body = "".join("<tr>" + "".join(f"<td>{_e(r[k])}</td>" for k in ("array", "corrector", "parameters",
                                                                          "uncorrected", "corrected", "gain", "basis"))
                       + "</tr>" for r in per_array.to_dict("records"))
        per_array_html = (f"<h3>Per array: the corrector with <= {MAX_CORRECTOR_PARAMS} parameters chosen on that "
                          "array's validation images, judged once on test (mean test accuracy, 95 % interval; the "
                          f"gain is paired on the same chips)</h3><table><tr>{head}</tr>{body}</table>")
    n_val = int(d.circuits["n_validation"].iloc[0]) if "n_validation" in d.circuits and not d.circuits.empty else 0
    measured = ", ".join(f"stuck-{k} {v:.2%}" for k, v in MEASURED_STUCK.items())

    sections = [
        ("headline", "Headline numbers",
         f'<div class="cards">{"".join(cards)}</div>'
         f"<table><tr><th>Quantity</th><th class='num'>Value</th><th>Note</th></tr>{table_rows}</table>"
         + (f"<h3>Mean test accuracy (%) at the highest density ({smax:g}), stuck-on and stuck-off pooled, "
            f"{n_cell} chips per cell (intervals: the accuracy-vs-density figure)</h3>{sev_html}"
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
                 f"kind (rows). Lines are the mean over instances{' and networks' if d.n_networks > 1 else ''}; bands "
                 "are 95 % intervals (Wilson over the test images for a single chip, otherwise a bootstrap over "
                 f"chips{' and networks' if d.n_networks > 1 else ''}). Dashed: the healthy circuit ({healthy_txt}); "
                 f"dotted: chance (10%); dash-dotted: the measured stuck-cell fraction of {MEASURED_SOURCE} "
                 f"({measured}; docs/defects.md).")),
        ("onoff", "Stuck-on vs stuck-off",
         _figure(figure_on_vs_off(d), "stuck-on vs stuck-off",
                 "<b>Does the stuck state matter?</b> Left: every defect instance is simulated twice with exactly the "
                 "same cells hit, once stuck at the highest conductance (on) and once at the lowest (off); points on "
                 "the dashed diagonal are equally harmful either way (markers distinguish arrays). Right: the paired "
                 "difference (stuck-on minus stuck-off accuracy on the same chips) per pattern and array, with its "
                 "95 % bootstrap interval; a bar whose interval spans zero shows no difference the study can resolve.")),
        ("correction", "Accuracy recovered vs corrector size",
         _figure(figure_recovery(d), "accuracy recovered vs corrector parameters",
                 "<b>How much a small network on the output voltages wins back.</b> Left: mean test accuracy after "
                 "correction against the corrector's parameter count, per array (10 &rarr; h &rarr; 10 MLPs, "
                 f"h in {study['correctors']['hidden']}, fitted on each circuit's training images; the circled size "
                 f"is the one chosen on the {n_val:,} validation images; the test images only report); bands: 95 % "
                 "bootstrap intervals; dotted lines: the same circuits uncorrected; black markers: the "
                 f"baselines ({_e(', '.join(study['correctors']['baselines']) or 'none in this study')}) with their "
                 f"intervals; the grey line marks {MAX_CORRECTOR_PARAMS} parameters. Right: per array, the median "
                 "share of the lost accuracy (healthy circuit of the same network minus defective) that correction "
                 f"recovers, for the circuits that lost at least 5 points. Fits: {_e(fit_recipe(study))}.")
         + per_array_html),
        ("cross", "Cross-defect matrix",
         '<p class="missing">Not run: this study does not enable the cross-defect matrix (set '
         '<code>cross_defect: {enabled: true}</code> in the study file to add it).</p>'
         if not study["cross_defect"].get("enabled", True) else
         _figure(figure_cross(d), "cross-defect matrix",
                 f"<b>Does a corrector trained on one defect pattern transfer to another?</b> A corrector (h={h_cross}) "
                 "is fitted on the training images of a chip with the pattern of the row and tested on the held-out "
                 "images of the chip with the pattern of the column, at the same array, kind, density and instance. "
                 "Values are mean test accuracies (%) over those; the diagonal (bold) is the same chip. "
                 "<i>mixture</i>: trained on the pooled chips of every pattern; <i>uncorrected</i>: the test chip "
                 "without a corrector.")),
        ("voltages", "Output voltages, healthy vs defective",
         _figure(figure_voltages(d), "output voltage distributions",
                 "<b>What the defects do to the signal.</b> Distribution of every output neuron's voltage over all "
                 f"images, for the healthy circuit (grey) and for the defective circuits at the highest density "
                 f"({smax:g}) with the defects in the array of each panel, stuck-on and stuck-off. Log scale: the "
                 "tails are where decisions flip.")),
    ]
    return sections


def fits_text(info: pd.DataFrame) -> str:
    """How the tasks' correctors were fitted, in words (compiled C or torch, on how many tasks); '' if not recorded."""
    if "fits" not in info or info.empty:
        return ""
    words = {"compiled": "compiled C", "torch": "torch", "compiled+torch": "compiled C and torch"}
    counts = info["fits"].fillna("").value_counts()
    return "; ".join(f"{words.get(name, name)} on {plural(int(n), 'task')}" for name, n in counts.items() if name)


def _study_section(d: ReportData) -> tuple[str, str, str]:
    """The study's settings, the time per stage, the code and the environment."""
    study = d.study
    grid = study.get("defects")
    n_done = len(d.info)
    breakdown = time_breakdown(d)
    spent = sum(v for _, v in breakdown) or 1.0
    # Wall seconds inside the workers, added over tasks: where a faster study must win its time.
    time_text = "; ".join(f"{name} {value:,.1f} s ({100 * value / spent:.0f}%)" for name, value in breakdown) or "n/a"
    env = read_json(d.root / "environment.json")
    fits = fits_text(d.info)
    git = env.get("git", {}) if env else {}
    pk = env.get("packages", {}) if env else {}
    versions = ", ".join(f"{k} {v}" for k, v in pk.items() if v)
    n_val = int(d.circuits["n_validation"].iloc[0]) if "n_validation" in d.circuits and not d.circuits.empty else (
        int(d.dies["n_validation"].iloc[0]) if not d.dies.empty else 0)
    grid_row = (f"<tr><td>Grid</td><td>patterns {_e(', '.join(grid['patterns']))}; kinds {_e(', '.join(grid['kinds']))}; "
                f"arrays {_e(grid['arrays'])}; densities {_e(grid['severities'])}; "
                f"{plural(grid['instances'], 'instance')}</td></tr>") if grid is not None else ""
    wafer_row = (f"<tr><td>Wafer</td><td>{_e(', '.join(f'{k}={v}' for k, v in study['wafer'].items()))}</td></tr>"
                 if study.get("wafer") else "")
    return ("study", "Study and environment",
         f"<p class='lead'>{_e(study.get('description', '')).strip()}</p>"
         "<table>"
         f"{grid_row}{wafer_row}"
         f"<tr><td>Circuit</td><td>{_e(', '.join(f'{k}={v}' for k, v in study['circuit'].items() if v is not None))}</td></tr>"
         f"<tr><td>Engine</td><td>{_e(study['engine'])} {_e(study['engine_options'] or '')}</td></tr>"
         f"<tr><td>Network</td><td>{_e('-'.join(map(str, study['network']['widths'])))}, {study['network']['epochs']} "
         f"epochs, seed{'s ' + _e(study['network']['seeds']) if study['network'].get('seeds') else ' ' + str(study['network']['seed'])}</td></tr>"
         f"<tr><td>Images</td><td>{n_val:,} validation images (every choice), {d.n_test:,} test images (reported "
         "once)</td></tr>"
         + (f"<tr><td>Correctors</td><td>{_e(fit_recipe(study))}</td></tr>" if grid is not None else "") +
         f"<tr><td>Seeds</td><td>{_e(study['seeds'])}</td></tr>"
         f"<tr><td>Tasks finished</td><td>{n_done}</td></tr>"
         f"<tr><td>Time per stage</td><td>{_e(time_text)}</td></tr>"
         + (f"<tr><td>Corrector fits</td><td>{_e(fits)}</td></tr>" if fits else "") +
         f"<tr><td>Code</td><td>git {_e(git.get('commit') or 'unknown')}{' (uncommitted changes)' if git.get('dirty') else ''}</td></tr>"
         f"<tr><td>Packages</td><td>{_e(versions)}</td></tr>"
         f"<tr><td>Python, platform</td><td>{_e(env.get('python', ''))}, {_e(env.get('platform', ''))}</td></tr>"
         "</table>"
         "<p class='note'>Load the full table in Python with <code>neurodtco.store.load_results(DIR)</code> "
         "(one row per circuit and corrector), <code>load_results(DIR, 'cross')</code> and "
         "<code>load_results(DIR, 'dies')</code> (one row per die and mitigation).</p>")


def build_report(root: Union[str, Path]) -> str:
    """The report of the store at ``root`` as one HTML string."""
    d = load_report_data(root)
    study = d.study
    sections = _grid_sections(d) if study.get("defects") is not None else []
    if study.get("wafer"):
        sections += yield_sections(d)
    sections.append(_study_section(d))
    kind = "stuck-at defect study" if study.get("defects") is not None else "yield study"
    nav = "".join(f'<a href="#{sid}">{_e(title)}</a>' for sid, title, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{_e(title)}</h2>{content}</section>' for sid, title, content in sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(study['name'])}: {kind} report</title>
<style>{_asset("report.css")}</style></head>
<body>
<header><div class="wrap"><h1>Study <code style="background:#1e293b;color:#e2e8f0">{_e(study['name'])}</code></h1>
<p>{_e(study.get('description', '')).strip()}</p>
<div class="meta">Generated {time.strftime('%Y-%m-%d %H:%M')} from {_e(d.root.resolve())} by neurodtco</div></div></header>
<nav><div class="wrap">{nav}</div></nav>
<main class="wrap">{body}</main>
<footer class="wrap">Self-contained report: every figure is embedded; nothing is loaded from the network.</footer>
<script>{_asset("report.js")}</script>
</body></html>
"""


def write_report(root: Union[str, Path], out: Optional[Union[str, Path]] = None) -> Path:
    """Write the report of the store at ``root`` (default ``root/report.html``); returns its path."""
    root = Path(root)
    if not (root / "study.resolved.json").is_file():
        raise FileNotFoundError(f"{str(root)!r} is not a study results folder (no study.resolved.json); "
                                "run `neurodtco run STUDY.yaml --out DIR` first")
    path = Path(out) if out is not None else root / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, build_report(root))
    return path
