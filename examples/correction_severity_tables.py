"""The tables of the severity study (``examples/correction_study.py --mode severity``), with intervals.

``tables(result)`` turns the study's ``results.json`` into the Markdown blocks of docs/correction.md
(``severity``, ``severity-arrays``, ``severity-sizes``, ``severity-cross``, ``severity-unseen``,
``severity-budget``). Every accuracy is a median (or, in the matrices, a mean) over chips with a
95 % bootstrap interval over those chips; gains and harm are paired on the same chips and images.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from neurodtco.stats import bootstrap_ci, wilson_interval

CORRECTORS = (("mlp8", "MLP h=8"), ("logistic", "logistic"), ("affine", "affine"), ("lastlayer", "last layer"),
              ("mlp8_hidden", "MLP h=8 + hidden"))


def with_ci(values: Any, statistic: Callable[..., Any] = np.median, signed: bool = False) -> str:
    """``statistic`` of the per-chip values in percent with its bootstrap interval over the chips."""
    v = 100 * np.asarray(values, dtype=float)
    low, high = bootstrap_ci(v, statistic)
    f = "+.1f" if signed else ".1f"
    return f"{format(float(statistic(v)), f)} [{format(low, f)}, {format(high, f)}]"


def _header(res: dict[str, Any]) -> str:
    healthy, n_test = res["healthy_accuracy"], res["n_test"]
    low, high = wilson_interval(round(healthy * n_test), n_test)
    return (f"Default 64-8-8-8-10 network trained on {res['n_train']} images; healthy chip "
            f"{100 * healthy:.1f} % [{100 * low:.1f}, {100 * high:.1f}] on {n_test} test images ({res['engine']} "
            f"engine); stuck-{res['kind']} cells, one array at a time; {res['instances']} instances per pattern x "
            f"array at the density whose median **validation** accuracy lies in 40-60 %. Every corrector is fitted "
            f"per chip on its training images ({res['dtype']}) and judged on its {n_test} test images.")


def cases(res: dict[str, Any]) -> str:
    """Per pattern x array: density, and the median test accuracy before and after each corrector."""
    before, case_of = np.array(res["before"]), np.array(res["case_of_chip"])
    after = {k: np.array(v) for k, v in res["after"].items()}
    n = res["n_parameters"]
    lines = [_header(res) + f" Medians over the {res['instances']} chips of a case with 95 % bootstrap intervals "
             "over them (with 5 chips the interval spans about the middle three); gain: median of the per-chip "
             "gains of the MLP h=8.", "",
             "| pattern | array | density (achieved) | before (%) | gain, MLP h=8 (pts) | "
             + " | ".join(f"{label} ({n[key]}) (%)" for key, label in CORRECTORS) + " |",
             "|---" * (5 + len(CORRECTORS)) + "|"]
    reach = {key: 0 for key, _ in CORRECTORS}
    for i, case in enumerate(res["cases"]):
        sel = case_of == i
        gains = after["mlp8"][sel] - before[sel]
        for key in reach:
            reach[key] += np.median(after[key][sel] - before[sel]) >= 0.25
        flag = "" if case["in_range"] else " *"
        lines.append(f"| {case['pattern']} | {case['layer']} | {case['density']:.3f} ({case['achieved_density']:.3f}) "
                     f"| {with_ci(before[sel])}{flag} | {with_ci(gains, signed=True)} | "
                     + " | ".join(with_ci(after[key][sel]) for key, _ in CORRECTORS) + " |")
    medians = [np.median(before[case_of == i]) for i in range(len(res["cases"]))]
    starred = "`*`: no density puts the median in 40-60 % (see the notes). " if not all(
        c["in_range"] for c in res["cases"]) else "Every case has a density in the band. "
    lines += ["", f"{starred}Test medians before correction: {100 * min(medians):.1f}-{100 * max(medians):.1f} %. "
              f"Cases with a median gain of at least 25 points: " + ", ".join(
                  f"{label} {reach[key]}" for key, label in CORRECTORS) + f" of {len(res['cases'])}."]
    notes = [f"- {c['pattern']} on array {c['layer']}: {c['note']}" for c in res["cases"] if c["note"]]
    hits = np.flatnonzero((before <= 0.55) & (after["mlp8"] >= 0.85))
    lines += ["", f"Chips from <= 55 % to >= 85 % with the MLP h=8: {hits.size} of the {int((before <= 0.55).sum())}"
              f" that start at <= 55 % ({len(before)} chips in all); the largest gains:"]
    for k in sorted(hits, key=lambda k: after["mlp8"][k] - before[k], reverse=True)[:3]:
        case = res["cases"][case_of[k]]
        lines.append(f"- {case['pattern']} on array {case['layer']} (density {case['density']:.3f}): "
                     f"{100 * before[k]:.1f} % -> {100 * after['mlp8'][k]:.1f} %")
    return "\n".join(lines + (["", "Notes:", *notes] if notes else []))


def arrays(res: dict[str, Any]) -> str:
    """Per array: median over all its chips (seven patterns x instances)."""
    before, case_of = np.array(res["before"]), np.array(res["case_of_chip"])
    layers = np.array([res["cases"][c]["layer"] for c in case_of])
    lines = ["Median test accuracy (%) over the chips of each array (seven patterns x "
             f"{res['instances']} instances) with 95 % bootstrap intervals over those chips.", "",
             "| array | chips | before | " + " | ".join(label for _, label in CORRECTORS) + " |",
             "|---" * (3 + len(CORRECTORS)) + "|"]
    for layer in sorted(set(layers.tolist())):
        sel = layers == layer
        lines.append(f"| {layer} | {int(sel.sum())} | {with_ci(before[sel])} | "
                     + " | ".join(with_ci(np.array(res["after"][key])[sel]) for key, _ in CORRECTORS) + " |")
    return "\n".join(lines)


def sizes(res: dict[str, Any]) -> str:
    """The hidden-size sweep over all chips: accuracy, paired gain, recovered fraction, chips harmed."""
    before = np.array(res["before"])
    lost = res["healthy_accuracy"] - before
    lines = [f"Over all {len(before)} chips: median and mean test accuracy with 95 % bootstrap intervals over the "
             "chips; gain: median of the per-chip gains (paired, same images); recovered: median over the chips "
             "that lost accuracy of gain / loss; harmed: chips whose accuracy after is below before.", "",
             "| hidden h | parameters | median after (%) | mean after (%) | median gain (pts) | median recovered "
             "fraction | chips harmed |", "|---|---|---|---|---|---|---|"]
    for h, values in res["sweep"].items():
        acc = np.array(values)
        frac = np.median((acc - before)[lost > 0] / lost[lost > 0])
        lines.append(f"| {h} | {21 * int(h) + 10} | {with_ci(acc)} | {with_ci(acc, np.mean)} | "
                     f"{with_ci(acc - before, signed=True)} | {frac:.2f} | {int(np.sum(acc < before))} of {len(acc)} |")
    lines.append(f"| (no correction) | 0 | {with_ci(before)} | {with_ci(before, np.mean)} | | | |")
    return "\n".join(lines)


def matrix(data: dict[str, Any], intro: str) -> str:
    """A cross-defect matrix with each entry's mean over its test chips and the bootstrap interval over them."""
    chips = np.array(data["chip_accuracy"])  # [rows, columns, chips]
    before = np.array(data["chip_before"])  # [columns, chips]
    lines = [intro, "", "| trained on \\ tested on | " + " | ".join(data["test_types"]) + " |",
             "|---" * (len(data["test_types"]) + 1) + "|"]
    for name, row in zip(data["train_types"], chips):
        lines.append(f"| {name} | " + " | ".join(with_ci(c, np.mean) for c in row) + " |")
    lines.append("| (no correction) | " + " | ".join(with_ci(c, np.mean) for c in before) + " |")
    return "\n".join(lines)


def cross(res: dict[str, Any]) -> str:
    """The paired cross-defect matrix (averaged over the arrays) and its per-array diagonal and off-diagonal means."""
    data = res["cross"]
    text = matrix(data, f"MLP h=8; entry: mean test accuracy (%) over the {data['n_test_chips']} chips of the "
                        f"column's type ({res['instances']} instances x 4 arrays), each judged by the corrector of the "
                        "row's type fitted on the chip of the same array and instance, with a 95 % bootstrap interval "
                        "over those chips. Mixture: one corrector fitted on the training images of all seven chips "
                        "of an array and instance.")
    lines = ["", "Per array (means over the instances, in %):", ""]
    for layer, m in enumerate(res["cross_per_array"]):
        acc = np.array(m["chip_accuracy"]).mean(axis=2)
        k = len(m["test_types"])
        off = acc[:k, :k][~np.eye(k, dtype=bool)]
        lines.append(f"- array {layer}: diagonal {100 * np.mean(np.diag(acc[:k, :k])):.1f}, off-diagonal "
                     f"{100 * np.mean(off):.1f}, mixture {100 * np.mean(acc[-1]):.1f}, uncorrected "
                     f"{100 * np.mean(m['chip_before']):.1f}")
    return text + "\n" + "\n".join(lines)


def unseen(res: dict[str, Any]) -> str:
    """The matrix of correctors trained on other chips and judged on chips they never saw."""
    data = res["unseen"]
    return matrix(data, f"MLP h=8 trained on the pooled training images of {data['n_train_chips']} other chips of "
                        f"the row's type (all arrays, {res['train_instances']} instances each), judged on the "
                        f"{data['n_test_chips']} chips of the column's type above; entry: mean test accuracy (%) "
                        "with a 95 % bootstrap interval over those chips.")


def budget(res: dict[str, Any]) -> str:
    """Median test accuracy against the labelled images each chip is calibrated on."""
    names = list(res["budget"])
    n_chips = len(res["before"])
    lines = [f"Median test accuracy (%) over the {n_chips} chips with 95 % bootstrap intervals over the chips, "
             f"against the labelled images each chip is calibrated on (class-balanced subsets of its "
             f"{res['n_train']} training images; the last row: all of them).", "",
             "| labelled images per chip | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for j, size in enumerate(res["budget"][names[0]]["budget"]):
        lines.append(f"| {size} | " + " | ".join(with_ci(res["budget"][n]["accuracy"][j]) for n in names) + " |")
    lines.append("| (no correction) | " + " | ".join(with_ci(res["before"]) for _ in names) + " |")
    t = res["timings"]
    lines += ["", "Time: " + ", ".join(f"{k[:-2]} {v:.0f} s" for k, v in t.items())]
    return "\n".join(lines)


def tables(res: dict[str, Any]) -> dict[str, str]:
    """Every published block of the severity study, by block name."""
    return {"severity": cases(res), "severity-arrays": arrays(res), "severity-sizes": sizes(res),
            "severity-cross": cross(res), "severity-unseen": unseen(res), "severity-budget": budget(res)}
