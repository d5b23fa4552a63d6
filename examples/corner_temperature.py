"""System accuracy of the default network against process corner and temperature (FreePDK45 neurons).

Reads the shipped characterization of the transistor-level neuron (or a file from
``neurodtco characterize``), maps the default 64-8-8-8-10 network for it, and evaluates the 180
test images with the nodal engine at NOM/FF/SS and 25-100 degC, healthy and with one defect
case. Optionally checks the behavioural model against the transistor-level network in ngspice.

    python examples/corner_temperature.py [--characterization FILE] [--transistor-images 30] [--write-docs]

Writes results/periphery/corner_temperature.{md,json,png}. ``--write-docs`` publishes into
docs/periphery.md the blocks ``corners`` (accuracy per corner and temperature), ``margins`` (one
neuron parameter forced in every layer) and, with ``--transistor-images``, ``agreement`` (the
transistor-level network against the behavioural one, outputs and hidden layers), and redraws the
page's figure. Every accuracy carries its 95 % Wilson interval on the test images.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from neurodtco.data import load_digits, to_voltages
from neurodtco.network import default_network
from neurodtco.periphery import load_characterization
from neurodtco.periphery.model import characterized_circuit
from neurodtco.periphery.study import (DEFAULT_DEFECT, CornerRow, SensitivityRow, corner_temperature_table,
                                       markdown_table, sensitivity_table)
from neurodtco.plots import pyplot, save_figure
from neurodtco.stats import wilson_interval

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docblocks import DOCS, publish  # noqa: E402

PAGE = "periphery.md"
PARAMETER_NAMES = {"reference": "characterized (NOM 25 degC)", "open_loop_gain": "open-loop gain",
                   "clamp_scale": "clamp, fraction of the swing", "offset_v": "input offset (mV)"}


def with_interval(accuracy: float, n: int) -> str:
    """``93.9 % [89.4, 96.6]``: an accuracy on ``n`` images and its 95 % Wilson interval."""
    low, high = wilson_interval(round(accuracy * n), n)
    return f"{100 * accuracy:.1f} % [{100 * low:.1f}, {100 * high:.1f}]"


def corners_block(rows: Sequence[CornerRow], n_images: int, software_accuracy: float) -> str:
    """One line per corner and temperature: the hidden neurons' mean gain and clamp, accuracy per case."""
    cases = list(dict.fromkeys(r.case for r in rows))
    by = {(r.corner, r.temp_c, r.case): r for r in rows}
    names = ["healthy" if c == "healthy" else f"defect `{c}`" for c in cases]
    lines = ["| corner | T (degC) | A (hidden, mean) | clamp (V) | " + " | ".join(names) + " |",
             "|" + "---|" * (4 + len(cases))]
    for corner, temp in dict.fromkeys((r.corner, r.temp_c) for r in rows):
        first = by[(corner, temp, cases[0])]
        accs = " | ".join(with_interval(by[(corner, temp, c)].accuracy, n_images) for c in cases)
        lines.append(f"| {corner} | {temp:.0f} | {first.open_loop_gain:.0f} | {first.saturation_v:.3f} | {accs} |")
    return ("\n".join(lines) + f"\n\nAccuracy on {n_images} test images with its 95 % Wilson interval (nodal engine); "
            f"software network: {with_interval(software_accuracy, n_images)}.")


def margins_block(margins: Sequence[SensitivityRow], n_images: int) -> str:
    """One line per forced value: the accuracy and how many test images it changes against the characterized circuit."""
    reference = next(m.accuracy for m in margins if m.parameter == "reference")
    lines = [f"| parameter (all layers) | value | accuracy ({n_images} test images) | change (images) |",
             "|---|---|---|---|"]
    for m in margins:
        value = "" if m.parameter == "reference" else f"{m.value * 1e3:g}" if m.parameter == "offset_v" else f"{m.value:g}"
        change = round((m.accuracy - reference) * n_images)
        lines.append(f"| {PARAMETER_NAMES[m.parameter]} | {value} | {with_interval(m.accuracy, n_images)} | {change:+d} |")
    return "\n".join(lines)


def agreement_block(checks: Sequence[dict], jobs: int, load: float) -> str:
    """Per corner: same classes, output and hidden-layer differences (end to end and local), accuracy, cost."""
    lines = ["| corner | images | same class | outputs max \\|diff\\| (mV) | outputs rms (mV) "
             "| hidden layers, end to end max (mV) | per-layer local max (mV) | accuracy transistor | accuracy nodal "
             "| gmin fallbacks | time per image |", "|" + "---|" * 11]
    for c in checks:
        n = c["n_images"]
        mv = lambda values: ", ".join(f"{1e3 * v:.2f}" for v in values)  # noqa: E731
        lines.append(f"| {c['corner']} {c['temp_c']:.0f} degC | {n} | {c['same_class']}/{n} | {1e3 * c['outputs_max_v']:.1f} "
                     f"| {1e3 * c['outputs_rms_v']:.1f} | {mv(c['end_to_end_max_v'][:-1])} | {mv(c['local_max_v'])} "
                     f"| {with_interval(c['transistor_accuracy'], n)} | {with_interval(c['behavioural_accuracy'], n)} "
                     f"| {c['gmin_fallbacks']} of {n * len(c['local_max_v'])} solves | {c['per_image_s']:.1f} s |")
    return ("\n".join(lines) + f"\n\n(Layerwise mode, {jobs} ngspice processes; load average up to {load:.1f} on "
            f"{os.cpu_count()} cores, so the times are the shared machine's.)")


def main() -> None:
    """Table, plot and (optionally) the transistor-level check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--characterization", type=Path, default=None, help="characterization JSON (default: shipped)")
    parser.add_argument("--defect", default=DEFAULT_DEFECT, help="defect case, in the defects one-line syntax")
    parser.add_argument("--transistor-images", type=int, default=0,
                        help="also run this many test images through the transistor-level network (ngspice)")
    parser.add_argument("--transistor-corners", default="NOM:25,SS:100,FF:100",
                        help="corner:temperature pairs for that check")
    parser.add_argument("--jobs", type=int, default=2, help="ngspice processes at once")
    parser.add_argument("--out", type=Path, default=Path("results/periphery"))
    parser.add_argument("--write-docs", action="store_true", help="publish the tables into docs/periphery.md")
    args = parser.parse_args()
    if args.write_docs and (args.characterization is not None or args.defect != DEFAULT_DEFECT):
        parser.error("--write-docs publishes the shipped characterization and the default defect only; "
                     "drop --characterization and --defect, or drop --write-docs")

    char = load_characterization(args.characterization)
    dataset = load_digits(seed=0)
    net = default_network(dataset)
    start = time.perf_counter()
    rows = corner_temperature_table(net, dataset, char, defect=args.defect)
    t_table = time.perf_counter() - start
    table = markdown_table(rows)
    print(table)
    print(f"({len(rows)} evaluations of {len(dataset.y_test)} images in {t_table:.1f} s, nodal engine)")

    margins = sensitivity_table(net, dataset, char)
    n = len(dataset.y_test)
    margin_table = margins_block(margins, n)
    print("\nmargins: one op-amp parameter forced in every layer (nodal engine)")
    print(margin_table)
    table = table + "\n\nMargins (one parameter forced in every layer):\n\n" + margin_table
    software = float(net.accuracy(dataset.x_test, dataset.y_test))
    blocks = {"corners": corners_block(rows, n, software), "margins": margin_table}

    payload: dict = {"rows": [r.__dict__ for r in rows], "margins": [m.__dict__ for m in margins],
                     "activation_v": char.activation_v, "defect": args.defect,
                     "software_accuracy": software,
                     "timings": {"table_s": t_table}}
    if args.transistor_images > 0:
        from neurodtco.periphery.network import compare_with_behavioural

        n = args.transistor_images
        payload["transistor_checks"] = []
        load = os.getloadavg()[0]
        for pair in args.transistor_corners.split(","):
            corner, temp = pair.split(":")
            circuit = characterized_circuit(net, char, corner, float(temp))
            x = to_voltages(dataset.x_test[:n], circuit.input_scale_v)
            agreement = compare_with_behavioural(circuit, x, char, corner, float(temp), labels=dataset.y_test[:n],
                                                 jobs=args.jobs)
            summary = {"corner": corner, "temp_c": float(temp), **agreement.summary()}
            payload["transistor_checks"].append(summary)
            print(f"transistor-level vs nodal at {corner} {temp} degC, {n} images: same class "
                  f"{summary['same_class']}/{n}, outputs max |diff| {summary['outputs_max_v'] * 1e3:.2f} mV "
                  f"(rms {summary['outputs_rms_v'] * 1e3:.2f} mV, tolerance {summary['tolerance_v'] * 1e3:.0f} mV), "
                  f"per-layer local max {[round(v * 1e3, 2) for v in summary['local_max_v']]} mV, "
                  f"{summary['per_image_s']:.1f} s per image")
            load = max(load, os.getloadavg()[0])
        blocks["agreement"] = agreement_block(payload["transistor_checks"], args.jobs, load)
        print(blocks["agreement"])

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "corner_temperature.md").write_text(table + "\n")
    (args.out / "corner_temperature.json").write_text(json.dumps(payload, indent=1) + "\n")
    plot(rows, char, args.out / "corner_temperature.png")
    print(f"wrote {args.out}/corner_temperature.md, .json and .png")
    if args.write_docs:
        command = "python examples/corner_temperature.py"
        if args.transistor_images > 0:
            command += (f" --transistor-images {args.transistor_images} --transistor-corners {args.transistor_corners}"
                        f" --jobs {args.jobs}")
        for name, body in blocks.items():
            publish(PAGE, name, body, command + " --write-docs")
        plot(rows, char, DOCS / "img" / "periphery_corner_temperature.png")


def plot(rows: list, char, path: Path) -> None:
    """Accuracy against temperature per corner (healthy solid, defect dashed) and the activation curves."""
    plt = pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {"NOM": "tab:blue", "FF": "tab:red", "SS": "tab:green"}
    cases = list(dict.fromkeys(r.case for r in rows))
    for corner in dict.fromkeys(r.corner for r in rows):
        for case, style in zip(cases, ("-", "--")):
            sel = [r for r in rows if r.corner == corner and r.case == case]
            ax.plot([r.temp_c for r in sel], [100 * r.accuracy for r in sel], style, marker="o",
                    color=colors.get(corner), label=f"{corner}, {'healthy' if case == 'healthy' else 'defect'}")
    ax.set_xlabel("temperature (degC)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("default network, nodal engine, characterized neurons")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    for corner in char.corners:
        for temp, style in ((min(char.temperatures(corner)), "-"), (max(char.temperatures(corner)), ":")):
            p = char.point(corner, temp)
            x = 1e3 * np.array(p.activation_x_v)
            bx.plot(x, p.activation_out_v, style, color=colors.get(corner), label=f"{corner} {temp:.0f} degC")
    sat = char.activation_v
    bx.axhline(sat, color="grey", lw=0.8)
    bx.axhline(-sat, color="grey", lw=0.8)
    bx.set_xlabel("difference-stage input t_minus - t_plus (mV)")
    bx.set_ylabel("activation output (V)")
    bx.set_title(f"transistor activation (r = {char.design.difference_gain:g}); rail {sat:.3f} V")
    bx.legend(fontsize=8)
    bx.grid(alpha=0.3)
    save_figure(fig, path)


if __name__ == "__main__":
    main()
