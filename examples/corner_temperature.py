"""System accuracy of the default network against process corner and temperature (FreePDK45 neurons).

Reads the shipped characterization of the transistor-level neuron (or a file from
``neurodtco characterize``), maps the default 64-8-8-8-10 network for it, and evaluates the 180
test images with the nodal engine at NOM/FF/SS and 25-100 degC, healthy and with one defect
case. Optionally checks the behavioural model against the transistor-level network in ngspice.

    python examples/corner_temperature.py [--characterization FILE] [--transistor-images 30]

Writes results/periphery/corner_temperature.{md,json,png}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from neurodtco.data import load_digits, to_voltages
from neurodtco.network import default_network
from neurodtco.periphery import load_characterization
from neurodtco.periphery.model import characterized_circuit
from neurodtco.periphery.study import DEFAULT_DEFECT, corner_temperature_table, markdown_table, sensitivity_table
from neurodtco.plots import pyplot, save_figure


def main() -> None:
    """Table, plot and (optionally) the transistor-level check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--characterization", type=Path, default=None, help="characterization JSON (default: shipped)")
    parser.add_argument("--defect", default=DEFAULT_DEFECT, help="defect case, in the defects one-line syntax")
    parser.add_argument("--transistor-images", type=int, default=0,
                        help="also run this many test images through the transistor-level network (ngspice)")
    parser.add_argument("--transistor-corners", default="NOM:25,SS:100", help="corner:temperature pairs for that check")
    parser.add_argument("--jobs", type=int, default=2, help="ngspice processes at once")
    parser.add_argument("--out", type=Path, default=Path("results/periphery"))
    args = parser.parse_args()

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
    margin_lines = ["| parameter (all layers) | value | accuracy |", "|---|---|---|"]
    margin_lines += [f"| {m.parameter} | {'characterized' if m.parameter == 'reference' else f'{m.value:g}'} "
                     f"| {m.accuracy:.2%} |" for m in margins]
    margin_table = "\n".join(margin_lines)
    print("\nmargins: one op-amp parameter forced in every layer (nodal engine, 180 images)")
    print(margin_table)
    table = table + "\n\nMargins (one parameter forced in every layer):\n\n" + margin_table

    payload: dict = {"rows": [r.__dict__ for r in rows], "margins": [m.__dict__ for m in margins],
                     "activation_v": char.activation_v, "defect": args.defect,
                     "software_accuracy": float(net.accuracy(dataset.x_test, dataset.y_test)),
                     "timings": {"table_s": t_table}}
    if args.transistor_images > 0:
        from neurodtco.periphery.network import compare_with_behavioural

        n = args.transistor_images
        payload["transistor_checks"] = []
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

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "corner_temperature.md").write_text(table + "\n")
    (args.out / "corner_temperature.json").write_text(json.dumps(payload, indent=1) + "\n")
    plot(rows, char, args.out / "corner_temperature.png")
    print(f"wrote {args.out}/corner_temperature.md, .json and .png")


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
