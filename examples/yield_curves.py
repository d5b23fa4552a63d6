"""Yield against D0 for the digits chip and the tiled Fashion-MNIST CNN, with and without mitigation.

Run:  python examples/yield_curves.py [--only digits|cnn] [--quick] [--write-docs]

A die passes when its test accuracy lies within 1 percentage point of the healthy chip's (the
"1-point bound"). Dies are drawn from a die-scale Stapper field (alpha = 2, half stuck on), for
each D0 of a grid, and judged plain, with one spare row and column per array, with a per-die
MLP corrector on k = 20 and on all labelled training images, and (digits only) with defect-aware
retraining on the first dies of each point. The corrector's hidden size, and whether dies
without stuck cells get one, are chosen on validation images, on dies of another field seed; the
curves are measured on test images. For each option the D0 at which 90 % yield is lost comes with
the D0s where its 95 % Wilson band crosses 90 % (``wafer.d0_at_yield``). ``--write-docs`` publishes the tables into docs/yield.md and the figures
into docs/img/yield_{digits,cnn}.png.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docblocks import DOCS, publish  # noqa: E402

from neurodtco.correction import calibration_indices  # noqa: E402
from neurodtco.data import Dataset, load_digits, load_fashion_mnist  # noqa: E402
from neurodtco.mapping import MappingConfig, map_network  # noqa: E402
from neurodtco.network import default_network  # noqa: E402
from neurodtco.network.arch import ArchConfig, parse_arch  # noqa: E402
from neurodtco.network.training import cached_fit  # noqa: E402
from neurodtco.wafer import (DefectField, Mitigation, Wafer, d0_at_yield, draw_dies, evaluate_mitigations,  # noqa: E402
                             plot_yield)

ALPHA = 2.0
WITHIN_POINTS = 1.0
LEVEL = 0.9
HIDDEN = (8, 32)      # corrector sizes tried on validation
TEST_SEED, VALIDATION_SEED = 0, 1


@dataclass(frozen=True)
class Section:
    """One chip's run: its D0 grid, dies per point, and the D0 where the corrector is chosen."""

    name: str
    d0s: tuple[float, ...]
    n_dies: int
    choice_d0: float
    n_choice_dies: int
    n_retrain: int            # dies per point that are also retrained (0: none)
    wafer: Wafer


def digits_setup(quick: bool) -> tuple[Any, Dataset, Dataset, Section]:
    """The default digits chip, its test view and its validation view."""
    dataset = load_digits(seed=0, n_validation=180)
    healthy = map_network(default_network(dataset))
    d0s = (3e-4, 1e-3, 3e-3) if quick else tuple(float(d) for d in np.geomspace(1e-4, 1e-2, 7))
    section = Section("digits", d0s, 60 if quick else 200, 1e-3, 60 if quick else 200, 8 if quick else 24, Wafer())
    return healthy, _view(dataset, "test"), _view(dataset, "validation"), section


def cnn_setup(quick: bool) -> tuple[Any, Dataset, Dataset, Section]:
    """The cnn preset on 64x64 tiles, a labelled pool of training images, test and validation subsets."""
    full = load_fashion_mnist()
    net = cached_fit(full, ArchConfig(parse_arch("cnn", (1, *full.image_shape), full.n_classes)))
    healthy = map_network(net, MappingConfig(tile_rows=64, tile_cols=64))
    n_pool, n_test, n_val = (200, 500, 300) if quick else (500, 2000, 1000)
    # Class-balanced subsets: simulating every die on 70,000 images would take minutes per die here.
    pool = calibration_indices(full.y_train, n_pool, seed=0)
    test = calibration_indices(full.y_test, n_test, seed=0)
    val = calibration_indices(full.y_val, n_val, seed=0)
    x_val, y_val = full.validation()
    sub = Dataset(full.x_train[pool], full.y_train[pool], full.x_test[test], full.y_test[test], name="fashion-mnist",
                  image_shape=full.image_shape, x_val=x_val[val], y_val=y_val[val])
    d0s = (1e-5, 1e-4) if quick else tuple(float(d) for d in np.geomspace(1e-6, 3e-4, 6))
    # Die-scale clustering: each die independent, so a small wafer (16 dies) gives the same statistics.
    section = Section("cnn", d0s, 4 if quick else 16, 3e-5, 4 if quick else 16, 0,
                      Wafer(diameter_mm=60.0, edge_exclusion_mm=0.0))
    return healthy, _view(sub, "test"), _view(sub, "validation"), section


def _view(dataset: Dataset, part: str) -> Dataset:
    """The dataset with ``part`` as its judged images and no validation part (so dies simulate only what is judged)."""
    x, y = (dataset.x_test, dataset.y_test) if part == "test" else dataset.validation()
    return Dataset(dataset.x_train, dataset.y_train, x, y, name=f"{dataset.name}-{part}", image_shape=dataset.image_shape)


def choose_corrector(healthy: Any, validation: Dataset, section: Section, ks: Sequence[int]
                     ) -> tuple[dict[int, Mitigation], list[dict]]:
    """For each k, the corrector (size; clean dies corrected or not) with the best mean validation accuracy."""
    field = DefectField(section.choice_d0, alpha=ALPHA)
    dies = draw_dies(field, section.wafer, healthy, section.n_choice_dies, seed=VALIDATION_SEED)
    ms = [Mitigation(correct=k, hidden=h, correct_clean=c) for k in ks for h in HIDDEN for c in (True, False)]
    results = evaluate_mitigations(healthy, dies, validation, ms, within=WITHIN_POINTS, seed=VALIDATION_SEED)
    rows = [{"k": m.correct, "hidden": m.hidden, "clean": "corrected" if m.correct_clean else "left alone",
             "mean_val_accuracy": float(r.accuracies.mean()), "val_yield": r.yield_, "mitigation": m}
            for m, r in zip(ms, results)]
    best = {k: max((r for r in rows if r["k"] == k), key=lambda r: r["mean_val_accuracy"])["mitigation"] for k in ks}
    return best, rows


def curves(healthy: Any, test: Dataset, section: Section, mitigations: Sequence[Mitigation]) -> list[dict]:
    """Yield per (D0, mitigation) on the test images, dies of the test seed."""
    rows = []
    for d0 in section.d0s:
        start = time.perf_counter()
        field = DefectField(d0, alpha=ALPHA)
        dies = draw_dies(field, section.wafer, healthy, section.n_dies, seed=TEST_SEED)
        results = evaluate_mitigations(healthy, dies, test, mitigations, within=WITHIN_POINTS, seed=TEST_SEED)
        if section.n_retrain:
            results += evaluate_mitigations(healthy, dies[:section.n_retrain], test, [Mitigation(retrain=True)],
                                            within=WITHIN_POINTS, seed=TEST_SEED)
        for r in results:
            low, high = r.yield_ci
            rows.append({"d0_per_cell": d0, "d0_per_cm2": field.d0_per_cm2, "alpha": ALPHA, "mitigation": r.mitigation.name,
                         "yield": r.yield_, "yield_low": low, "yield_high": high, "n_pass": r.n_pass, "n_dies": r.n_dies,
                         "mean_stuck_cells": float(r.n_stuck.mean()), "healthy_accuracy": r.healthy_accuracy,
                         "mean_accuracy": float(r.accuracies.mean())})
        print(f"  D0 {d0:.3g}: {time.perf_counter() - start:.0f} s; " +
              ", ".join(f"{r.mitigation.name} {r.yield_:.2f}" for r in results), flush=True)
    return rows


def crossings(rows: list[dict], names: Sequence[str]) -> list[dict]:
    """The D0 at which each option's yield falls below 90 %, with its Wilson-band range."""
    out = []
    for name in names:
        mine = sorted((r for r in rows if r["mitigation"] == name), key=lambda r: r["d0_per_cell"])
        est, low, high = d0_at_yield([r["d0_per_cell"] for r in mine], [r["n_pass"] for r in mine],
                                     [r["n_dies"] for r in mine], LEVEL)
        out.append({"mitigation": name, "d0": est, "low": low, "high": high, "n_dies": mine[0]["n_dies"],
                    "first": mine[0]["d0_per_cell"], "last": mine[-1]["d0_per_cell"]})
    return out


def _d0_text(value: float, first: float, last: float) -> str:
    if value == 0.0:
        return f"< {first:.2g}"
    if math.isinf(value):
        return f"> {last:.2g}"
    return f"{value:.2g}"


def markdown(section: Section, rows: list[dict], cross: list[dict], choice: list[dict], n_cells: int,
             test: Dataset, validation: Dataset) -> str:
    """The section's tables: the curves, the D0 at 90 % yield, and the corrector choice."""
    names = list(dict.fromkeys(r["mitigation"] for r in rows))
    healthy = rows[0]["healthy_accuracy"]
    lines = [f"{section.name}: {n_cells} cells; healthy test accuracy {healthy:.4f} on {len(test.y_test)} test images; "
             f"a die passes at >= {healthy - WITHIN_POINTS / 100:.4f} (within {WITHIN_POINTS:g} point); "
             f"alpha = {ALPHA:g}, die-scale clustering; {len(test.y_train)} labelled training images.", "",
             "| D0 per cell | mean stuck cells | " + " | ".join(names) + " |",
             "|---|---|" + "---|" * len(names)]
    for d0 in section.d0s:
        here = {r["mitigation"]: r for r in rows if r["d0_per_cell"] == d0}
        cells = [f"{here[n]['yield']:.3f} [{here[n]['yield_low']:.3f}, {here[n]['yield_high']:.3f}] ({here[n]['n_dies']})"
                 for n in names]
        lines.append(f"| {d0:.3g} | {here[names[0]]['mean_stuck_cells']:.2f} | " + " | ".join(cells) + " |")
    lines += ["", "Yield [95 % Wilson over the dies] (dies). D0 at which 90 % yield is lost, with the D0s where the "
              "Wilson band's lower and upper edges cross 90 % (log-linear between grid points):", "",
              "| mitigation | dies per point | D0 at 90 % yield | range (Wilson band crossing) |", "|---|---|---|---|"]
    for c in cross:
        lines.append(f"| {c['mitigation']} | {c['n_dies']} | {_d0_text(c['d0'], c['first'], c['last'])} | "
                     f"[{_d0_text(c['low'], c['first'], c['last'])}, {_d0_text(c['high'], c['first'], c['last'])}] |")
    lines += ["", f"Corrector chosen on {len(validation.y_test)} validation images, {choice[0]['n_dies']} dies "
              f"of another field seed at D0 = {section.choice_d0:g}:", "",
              "| k | hidden | dies without stuck cells | mean validation accuracy | validation yield |",
              "|---|---|---|---|---|"]
    lines += [f"| {c['k']} | {c['hidden']} | {c['clean']} | {c['mean_val_accuracy']:.4f} | {c['val_yield']:.3f} |"
              for c in choice]
    return "\n".join(lines)


def figure(rows: list[dict], title: str, path: Path) -> None:
    """Yield against D0 per option with its Wilson band, and the 90 % line."""
    import pandas as pd

    fig = plot_yield(pd.DataFrame(rows))
    ax = fig.axes[0]
    ax.axhline(LEVEL, color="grey", lw=0.8, ls="--")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def run_section(name: str, quick: bool, write_docs: bool) -> str:
    """Choose on validation, measure on test, print (and publish) one section."""
    start, load = time.perf_counter(), os.getloadavg()[0]
    healthy, test, validation, section = (digits_setup if name == "digits" else cnn_setup)(quick)
    ks = (20, len(test.y_train))
    best, choice = choose_corrector(healthy, validation, section, ks)
    for row in choice:
        row["n_dies"] = section.n_choice_dies
    print(f"{name}: chosen on validation {best}", flush=True)
    mitigations = [Mitigation(), Mitigation(spare_rows=1, spare_cols=1)] + [best[k] for k in ks]
    rows = curves(healthy, test, section, mitigations)
    names = list(dict.fromkeys(r["mitigation"] for r in rows))
    body = markdown(section, rows, crossings(rows, names), choice, healthy.n_cells, test, validation)
    elapsed = time.perf_counter() - start
    print(body)
    print(f"\n{elapsed:.0f} s wall, 1-minute load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end "
          f"({os.cpu_count()} CPUs)")
    if write_docs:
        figure(rows, f"{name}: yield within {WITHIN_POINTS:g} point of healthy (alpha = {ALPHA:g})",
               DOCS / "img" / f"yield_{name}.png")
        publish("yield.md", f"yield_curves_{name}", body,
                f"python examples/yield_curves.py --only {name}{' --quick' if quick else ''} --write-docs")
    return body


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("digits", "cnn"), help="run one section (default: both)")
    parser.add_argument("--quick", action="store_true", help="a few dies and D0s: a smoke run, not results")
    parser.add_argument("--write-docs", action="store_true", help="publish the tables and figures into docs/")
    args = parser.parse_args(argv)
    for name in ([args.only] if args.only else ["digits", "cnn"]):
        run_section(name, args.quick, args.write_docs)


if __name__ == "__main__":
    main()
