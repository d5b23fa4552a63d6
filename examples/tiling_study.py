"""Tiling DTCO on Fashion-MNIST: how tile size and wire resistance cost a trained network accuracy.

For a trained network (any architecture lowered to ``neurodtco.ops``) on the 10,000 Fashion-MNIST
test images:

1. Exactness: the ``ideal`` engine on the network cut into 64 x 64 tiles must give the software
   network's classes (images whose class differs, expected 0) and ``output_scale_v`` times its
   logits (largest error, relative to each image's largest output).
2. The DTCO table: the exact ``nodal`` engine (linear cells, op-amp gain 1e4, ``shared`` row
   tiles) for tile sizes 32, 64, 128, 256 (square tiles) x wire segments 0.5, 1, 2, 5 ohm (word
   and bit lines alike). Every accuracy carries its 95 % Wilson interval; the paired comparison
   with software counts the images that flip each way, and the exact McNemar test (two-sided
   binomial test of the discordant images at p = 1/2) says which entries are distinguishable from
   software at the 5 % level.

It also counts the arrays each square tile size makes of the network. Without ``--model`` the
network is the ``cnn`` preset as ``neurodtco train --dataset fashion-mnist --arch cnn`` trains it
(trained once and cached by ``network.cached_fit``).

Prints Markdown tables on stdout and writes ``results.json`` and ``tiling_heatmap.png`` to ``--out``;
``--write-docs`` publishes the tables into docs/tiling.md (``examples/_docblocks.py``) and the
heatmap into docs/img/. Run from the repository root (about 3 minutes for the CNN on a shared
2-core machine):

    .venv/bin/python examples/tiling_study.py [--model cnn.pt] [--out results/tiling] [--write-docs]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from neurodtco.data import load_fashion_mnist, to_voltages
from neurodtco.engines import simulate
from neurodtco.mapping import MappingConfig, map_network
from neurodtco.network import TrainedNetwork, load_network
from neurodtco.network.training import cached_fit, make_config
from neurodtco.plots import pyplot, save_figure
from neurodtco.stats import mcnemar_counts as mcnemar_p
from neurodtco.stats import wilson_interval

TILES = (32, 64, 128, 256)
WIRES_OHM = (0.5, 1.0, 2.0, 5.0)
GAIN = 1e4
EXACT_TILE = 64
ALPHA = 0.05


def paired_flips(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray) -> dict[str, int]:
    """Images the candidate gets wrong that the reference gets right (``lost``), the reverse (``gained``), and class changes."""
    reference, candidate, labels = (np.asarray(a) for a in (reference, candidate, labels))
    if not reference.shape == candidate.shape == labels.shape or reference.ndim != 1:
        raise ValueError(f"predictions and labels must be 1-D of one length; got {reference.shape}, "
                         f"{candidate.shape}, {labels.shape}")
    ref_ok, cand_ok = reference == labels, candidate == labels
    return {"lost": int(np.sum(ref_ok & ~cand_ok)), "gained": int(np.sum(~ref_ok & cand_ok)),
            "class_changed": int(np.sum(reference != candidate))}


def accuracy_entry(predictions: np.ndarray, software: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Accuracy, its Wilson interval and the paired comparison with software on the same images."""
    correct = int(np.sum(predictions == labels))
    low, high = wilson_interval(correct, len(labels))
    flips = paired_flips(software, predictions, labels)
    p = mcnemar_p(flips["lost"], flips["gained"])
    return {"accuracy": correct / len(labels), "ci95": [low, high], **flips,
            "mcnemar_p": p, "distinguishable": p < ALPHA}


def tiled_config(tile: int, wire_ohm: float, gain: float) -> MappingConfig:
    """Linear cells, square ``tile`` x ``tile`` tiles with shared row tiles, equal word and bit segments."""
    return MappingConfig(cell="linear", r_word_ohm=wire_ohm, r_bit_ohm=wire_ohm, open_loop_gain=gain,
                         tile_rows=tile, tile_cols=tile)


def layout(net, tiles: Sequence[int]) -> list[dict[str, Any]]:
    """For each square tile size: arrays per layer, their total, and the largest array (rows, columns)."""
    rows = []
    for tile in tiles:
        circuit = map_network(net, tiled_config(tile, 1.0, GAIN))
        shapes = [(t.rows.stop - t.rows.start, t.columns.stop - t.columns.start)
                  for layer in circuit.layers for t in layer.tiles]
        rows.append({"tile": tile, "arrays_per_layer": [len(layer.tiles) for layer in circuit.layers],
                     "n_arrays": circuit.n_arrays, "n_cells": circuit.n_cells,
                     "layer_shapes": [list(layer.conductance.shape) for layer in circuit.layers],
                     "largest_array": list(max(shapes, key=lambda shape: shape[0] * shape[1]))})
    return rows


def exactness(net, x: np.ndarray, logits: np.ndarray) -> dict[str, Any]:
    """The ideal engine on 64 x 64 tiles against ``output_scale_v`` x the software logits."""
    config = MappingConfig(r_word_ohm=0.0, r_bit_ohm=0.0, tile_rows=EXACT_TILE, tile_cols=EXACT_TILE)
    circuit = map_network(net, config)
    out = simulate(circuit, to_voltages(x, config.v_read_v), engine="ideal").outputs_v
    target = config.output_scale_v * logits
    error = np.abs(out - target)
    return {"tile": EXACT_TILE, "n_arrays": circuit.n_arrays, "n_cells": circuit.n_cells,
            "class_differs": int(np.sum(out.argmax(axis=1) != logits.argmax(axis=1))),
            "max_abs_error_v": float(error.max()),
            "max_relative_error": float(np.max(error.max(axis=1) / np.abs(target).max(axis=1)))}


def dtco_table(net, x: np.ndarray, y: np.ndarray, software: np.ndarray, tiles: Sequence[int],
               wires: Sequence[float], gain: float) -> list[dict[str, Any]]:
    """Nodal accuracy of every (tile, wire) with its interval and paired comparison to software."""
    rows = []
    for tile in tiles:
        for wire in wires:
            config = tiled_config(tile, wire, gain)
            circuit = map_network(net, config)
            start = time.perf_counter()
            out = simulate(circuit, to_voltages(x, config.v_read_v), engine="nodal").outputs_v
            elapsed = time.perf_counter() - start
            rows.append({"tile": tile, "wire_ohm": wire, "n_arrays": circuit.n_arrays, "simulate_s": elapsed,
                         **accuracy_entry(out.argmax(axis=1), software, y)})
    return rows


def percent(value: float) -> str:
    """A fraction as a percentage with two decimals."""
    return f"{100 * value:.2f}"


def p_text(p: float) -> str:
    """A p-value for a table; one below the float range (it underflows to 0) says so."""
    return f"p = {p:.2g}" if p > 0 else "p < 1e-300"


def sections(results: dict[str, Any]) -> dict[str, str]:
    """The study's tables in Markdown, by the name of the block each is published as."""
    sw, ex, rows, n = results["software"], results["exactness"], results["dtco"], results["n_test"]
    shapes = [f"{r} x {c}" for r, c in results["layout"][0]["layer_shapes"]]
    out = {"layout": "\n".join(
        [f"Physical matrices {', '.join(shapes[:-1])} and {shapes[-1]}, {results['layout'][0]['n_cells']:,} cells:", "",
         "| tile | arrays per layer | arrays | largest array |", "| --- | --- | --- | --- |"]
        + [f"| {r['tile']} x {r['tile']} | {', '.join(map(str, r['arrays_per_layer']))} | {r['n_arrays']} "
           f"| {r['largest_array'][0]} x {r['largest_array'][1]} |" for r in results["layout"]])}
    out["exactness"] = "\n".join(
        [f"The `ideal` engine on {ex['n_arrays']} arrays of at most {ex['tile']} x {ex['tile']} ({ex['n_cells']:,} cells), "
         f"{n:,} test images:", "",
         "| images whose class differs from software | largest relative output error | largest output error |",
         "| --- | --- | --- |",
         f"| {ex['class_differs']} of {n:,} | {ex['max_relative_error']:.1e} | {ex['max_abs_error_v']:.1e} V |"])
    tiles = sorted({r["tile"] for r in rows})
    wires = sorted({r["wire_ohm"] for r in rows})
    cell = {(r["tile"], r["wire_ohm"]): r for r in rows}
    lines = [f"Accuracy in % with its 95 % Wilson interval on {n:,} test images; software "
             f"{percent(sw['accuracy'])} % [{percent(sw['ci95'][0])}, {percent(sw['ci95'][1])}]; `*`: "
             f"distinguishable from software (exact McNemar, p < {ALPHA}, table below):", "",
             "| tile | arrays | " + " | ".join(f"{w:g} ohm" for w in wires) + " |",
             "| --- | --- | " + " | ".join("---" for _ in wires) + " |"]
    for t in tiles:
        entries = [f"{percent(cell[t, w]['accuracy'])} [{percent(cell[t, w]['ci95'][0])}, "
                   f"{percent(cell[t, w]['ci95'][1])}]{' *' if cell[t, w]['distinguishable'] else ''}" for w in wires]
        lines.append(f"| {t} x {t} | {cell[t, wires[0]]['n_arrays']} | " + " | ".join(entries) + " |")
    load = results["load_average_1min"]
    lines += ["", f"{results['wall_s']:.0f} s wall for the whole study on {load['cpus']} CPUs shared with other jobs "
              f"(1-minute load average {load['start']:.1f} at the start, {load['end']:.1f} at the end)."]
    out["dtco"] = "\n".join(lines)
    lines = ["| tile | " + " | ".join(f"{w:g} ohm" for w in wires) + " |",
             "| --- | " + " | ".join("---" for _ in wires) + " |"]
    for t in tiles:
        lines.append(f"| {t} x {t} | " + " | ".join(
            f"-{cell[t, w]['lost']} / +{cell[t, w]['gained']}, {p_text(cell[t, w]['mcnemar_p'])}" for w in wires) + " |")
    out["flips"] = "\n".join(lines)
    return out


def heatmap(rows: list[dict[str, Any]], software: float, path: Path) -> Path:
    """Accuracy over tile size x wire segment, each cell annotated with its accuracy and interval."""
    plt = pyplot()
    tiles = sorted({r["tile"] for r in rows})
    wires = sorted({r["wire_ohm"] for r in rows})
    cell = {(r["tile"], r["wire_ohm"]): r for r in rows}
    acc = np.array([[100 * cell[t, w]["accuracy"] for w in wires] for t in tiles])
    fig, ax = plt.subplots(figsize=(1.9 * len(wires) + 1.5, 1.0 * len(tiles) + 1.2))
    image = ax.imshow(acc, cmap="viridis", aspect="auto")
    for i, t in enumerate(tiles):
        for j, w in enumerate(wires):
            r = cell[t, w]
            text = (f"{percent(r['accuracy'])}{' *' if r['distinguishable'] else ''}\n"
                    f"[{percent(r['ci95'][0])}, {percent(r['ci95'][1])}]")
            shade = (acc[i, j] - acc.min()) / max(np.ptp(acc), 1e-12)
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="black" if shade > 0.5 else "white")
    ax.set_xticks(range(len(wires)), [f"{w:g}" for w in wires])
    ax.set_yticks(range(len(tiles)), [f"{t} x {t}\n({cell[t, wires[0]]['n_arrays']} arrays)" for t in tiles])
    ax.set_xlabel("wire segment (ohm, word and bit lines)")
    ax.set_ylabel("tile")
    ax.set_title(f"nodal accuracy (%), software {100 * software:.2f} %; * = differs from software (McNemar p < {ALPHA})",
                 fontsize=9)
    fig.colorbar(image, ax=ax, label="accuracy (%)")
    return save_figure(fig, path)


def cnn_preset() -> TrainedNetwork:
    """The ``cnn`` preset trained on Fashion-MNIST with its default recipe (seed 0), cached."""
    data = load_fashion_mnist()
    return cached_fit(data, make_config("cnn", data))


def run(model: Path | None, tiles: Sequence[int] = TILES, wires: Sequence[float] = WIRES_OHM, gain: float = GAIN,
        n_images: int | None = None) -> dict[str, Any]:
    """Software accuracy, ideal-engine exactness and the nodal DTCO table on the Fashion-MNIST test images."""
    start, load_start = time.perf_counter(), os.getloadavg()[0]
    dataset = load_fashion_mnist()
    net = cnn_preset() if model is None else load_network(model)
    x, y = dataset.x_test[:n_images], dataset.y_test[:n_images]
    logits = net.logits(x)
    software = logits.argmax(axis=1)
    correct = int(np.sum(software == y))
    results: dict[str, Any] = {
        "model": "cnn preset (network.cached_fit)" if model is None else str(model), "arch": net.arch, "dataset": "fashion-mnist", "n_test": int(len(y)), "gain": gain,
        "cells": "linear", "combine": "shared", "pair_encoding": "low",
        "software": {"accuracy": correct / len(y), "ci95": list(wilson_interval(correct, len(y)))},
        "layout": layout(net, tiles),
        "exactness": exactness(net, x, logits),
        "dtco": dtco_table(net, x, y, software, tiles, wires, gain),
    }
    results["wall_s"] = time.perf_counter() - start
    results["load_average_1min"] = {"start": load_start, "end": os.getloadavg()[0], "cpus": os.cpu_count()}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None,
                        help="a trained network file (neurodtco train --out); default: the cnn preset, trained once and cached")
    parser.add_argument("--out", type=Path, default=Path("results/tiling"), help="folder for results.json and the heatmap")
    parser.add_argument("--n-images", type=int, default=None, help="only the first N test images (default: all 10,000)")
    parser.add_argument("--write-docs", action="store_true", help="publish the tables into docs/tiling.md")
    args = parser.parse_args()
    if args.model is not None and not args.model.is_file():
        parser.error(f"--model {str(args.model)!r} is not a file: give a network saved by `neurodtco train --out`")
    results = run(args.model, n_images=args.n_images)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    heatmap(results["dtco"], results["software"]["accuracy"], args.out / "tiling_heatmap.png")
    tables = sections(results)
    print("\n\n".join(tables.values()))
    print(f"\nresults.json and tiling_heatmap.png in {args.out}")
    if args.write_docs:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _docblocks import DOCS, command_line, publish

        command = command_line(__file__)
        for name, body in tables.items():
            publish("tiling.md", name, body, command)
        heatmap(results["dtco"], results["software"]["accuracy"], DOCS / "img" / "tiling_heatmap.png")


if __name__ == "__main__":
    main()
