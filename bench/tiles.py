"""Tiled layers in the nodal engine against a PyTorch forward of the same network, in one run.

Run on demand (not in CI):  .venv/bin/python bench/tiles.py  [--tiles 64 128] [--images 10000] [--repeats 3]
                                  [--model cnn.pt|cnn [--gap-images 100]] [--device cuda]
                                  [--write-docs]

A 784-256-128-10 MLP with random weights (hard-tanh between layers) is mapped with linear cells,
1 ohm word and bit segments, op-amp gain 1e4 and tiles of ``T x T`` cells (row tiles sharing the
neuron inputs). The nodal engine solves it exactly on ``--images`` random input images: every
tile is factorized once per run, then each layer is one matrix product for the whole batch. The
reference is the dense network's PyTorch forward (float32, the usual inference precision, and
float64) on the same CPU with the same number of threads. Times are the shortest of
``--repeats`` runs; the nodal time includes the factorizations (reported separately too).

With ``--model`` (a trained network of any architecture, e.g. ``neurodtco train --dataset
fashion-mnist --arch cnn``), the same comparison on that network, tiled ``64 x 64`` with linear
cells, 1 ohm wires and gain 1e4, on the 10,000 Fashion-MNIST test images: nodal (convolutions read
once per output position) against the model's own PyTorch forward (float32) on the same images;
then gap-model cells (Newton per input) on the first ``--gap-images`` images, compared per image.
``--model cnn`` is the ``cnn`` preset as ``neurodtco train --dataset fashion-mnist --arch cnn``
trains it (trained once and cached by ``network.cached_fit``). Peak memory is the process's
maximum resident set (``resource.getrusage``).

With ``--device`` (``cuda``, ``cpu``: a torch device), the nodal engine applies the linear-cell
maps on that device in float64 (the maps are still computed on the CPU, and their time is in the
nodal time, as are the transfers of the inputs and outputs), gap-model cells run their chord
Newton there as dense per-tile maps (built on the CPU, timed too), and every PyTorch reference
runs on the same device (``--gap-images 0`` skips the gap cells).

Prints a table on stderr; the last stdout line is one JSON object with every number. With
``--write-docs`` the tables are published (``examples/_docblocks.py``): the MLP's into
docs/engines.md (block ``tiles``), the model's into docs/tiling.md (block ``bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Callable, Optional

THREADS = "1"
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, THREADS)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from neurodtco import MappingConfig  # noqa: E402
from neurodtco.data import load_fashion_mnist, to_voltages  # noqa: E402
from neurodtco.engines.forward import torch_device  # noqa: E402
from neurodtco.engines.nodal import NodalEngine, linear_layer_map  # noqa: E402
from neurodtco.mapping import map_network, map_weights  # noqa: E402
from neurodtco.network import TrainedNetwork, load_network  # noqa: E402
from neurodtco.network.training import cached_fit, make_config  # noqa: E402
from neurodtco.stats import accuracy_interval, format_accuracy  # noqa: E402
from timing import best_time, duration  # noqa: E402

WIDTHS = (784, 256, 128, 10)


def random_network(seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """He-scaled random weights and small biases for ``WIDTHS``."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0.0, 1.0, (o, i)) * np.sqrt(2.0 / i) for i, o in zip(WIDTHS, WIDTHS[1:])]
    biases = [rng.normal(0.0, 0.05, o) for o in WIDTHS[1:]]
    return weights, biases


def torch_model(weights: list[np.ndarray], biases: list[np.ndarray], dtype: torch.dtype) -> torch.nn.Module:
    """The same dense network in PyTorch: Linear, Hardtanh, ..., Linear."""
    layers: list[torch.nn.Module] = []
    for k, (w, b) in enumerate(zip(weights, biases)):
        lin = torch.nn.Linear(w.shape[1], w.shape[0]).to(dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if k < len(weights) - 1:
            layers.append(torch.nn.Hardtanh())
    return torch.nn.Sequential(*layers).eval()


def synced(fn: Callable[[], object], device: Optional[str]) -> Callable[[], object]:
    """``fn`` that returns only once a CUDA device has finished its work (kernels run asynchronously)."""
    if device is None or torch.device(device).type != "cuda":
        return fn

    def run() -> object:
        out = fn()
        torch.cuda.synchronize(device)
        return out

    return run


def bench_tile(tile: int, weights, biases, images: np.ndarray, logits: np.ndarray, repeats: int,
               device: Optional[str] = None) -> dict:
    """Nodal on the tiled circuit: total time, factorization time, and agreement with the software network."""
    config = MappingConfig(r_word_ohm=1.0, r_bit_ohm=1.0, open_loop_gain=1e4, tile_rows=tile, tile_cols=tile)
    circuit = map_weights(weights, biases, config)
    volts = images * config.v_read_v
    engine = NodalEngine(device=device)
    result = {}

    def run() -> None:
        result["out"] = engine.run(circuit, volts).outputs_v

    total = best_time(run, repeats)
    factor = best_time(lambda: [linear_layer_map(layer) for layer in circuit.layers], repeats)
    out = result["out"] / config.output_scale_v
    return {
        "tile": tile,
        "tiles": [list(layer.tiling.grid_shape) for layer in circuit.layers],
        "n_arrays": circuit.n_arrays,
        "nodal_s": total,
        "nodal_factorize_s": factor,
        "nodal_per_image_s": total / len(images),
        "class_agreement_with_software": float(np.mean(out.argmax(axis=1) == logits.argmax(axis=1))),
        "max_abs_logit_difference": float(np.abs(out - logits).max()),
    }


def peak_memory_gib() -> float:
    """This process's peak resident memory so far (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def network(path: str, dataset) -> TrainedNetwork:
    """The network ``--model`` names: a file, or ``cnn`` for the cnn preset trained once and cached."""
    if path == "cnn" and not Path(path).exists():
        return cached_fit(dataset, make_config("cnn", dataset))
    return load_network(path)


def bench_model(path: str, tile: int, gap_images: int, repeats: int, device: Optional[str] = None) -> dict:
    """A trained network on the Fashion-MNIST test images: nodal (linear, then gap cells) against its PyTorch forward."""
    dataset = load_fashion_mnist()
    net = network(path, dataset)
    x, y = dataset.x_test, dataset.y_test
    model = net.sequential().eval().to(device or "cpu")
    images = torch.from_numpy(x).float().to(device or "cpu")
    with torch.inference_mode():
        torch_s = best_time(synced(lambda: model(images), device), repeats)
        torch_classes = model(images).argmax(dim=1).cpu().numpy()
    row: dict = {"model": path, "arch": net.arch, "tile": tile, "images": len(y), "device": device,
                 "torch_float32_s": torch_s, "torch_accuracy": float(np.mean(torch_classes == y)),
                 "torch_accuracy_ci": list(accuracy_interval(torch_classes == y)[1])}
    runs = [("linear", len(y), NodalEngine(device=device))]
    if gap_images > 0:
        runs.append(("gap", min(gap_images, len(y)), NodalEngine(device=device)))
    for cell, n, engine in runs:
        config = MappingConfig(cell=cell, r_word_ohm=1.0, r_bit_ohm=1.0, open_loop_gain=1e4, tile_rows=tile, tile_cols=tile)
        circuit = map_network(net, config)
        volts = to_voltages(x[:n], config.v_read_v)
        result = {}

        def run() -> None:
            result["out"] = engine.run(circuit, volts).outputs_v

        # Gap cells are timed once: one Newton run per image is long enough to time, and costly to repeat.
        seconds = best_time(run, repeats if cell == "linear" else 1)
        classes = result["out"].argmax(axis=1)
        row["n_arrays"], row["n_cells"] = circuit.n_arrays, circuit.n_cells
        row[cell] = {"images": n, "nodal_s": seconds, "per_image_s": seconds / n,
                     "ratio_to_torch_per_image": (seconds / n) / (torch_s / len(y)),
                     "accuracy": float(np.mean(classes == y[:n])),
                     "accuracy_ci": list(accuracy_interval(classes == y[:n])[1]),
                     "same_class_as_torch": float(np.mean(classes == torch_classes[:n]))}
    row["peak_memory_gib"] = peak_memory_gib()
    return row


def machine_line(device: str, load: float, wall_s: float) -> str:
    """Where and under what load the tables were measured (read the ratios; the machine is shared)."""
    return (f"Device {device}, {os.environ['OPENBLAS_NUM_THREADS']} thread(s), {os.cpu_count()} CPUs shared with "
            f"other jobs, 1-minute load average {load:.1f} at the end, {wall_s:.0f} s wall for the whole benchmark.")


def mlp_table(timings: dict, rows: list[dict], images: int) -> str:
    """The random MLP in tiles: nodal (factorizations included) against the dense PyTorch forward."""
    lines = [f"{'-'.join(map(str, WIDTHS))} MLP, random weights, linear cells, 1 ohm wires, gain 1e4, {images:,} "
             "random images; the shortest of the repeats:", "",
             "| tiles | arrays | nodal (factorizations included) | of which factorizations | PyTorch float32 | ratio "
             "| same class as PyTorch float64 |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        lines.append(f"| {row['tile']} x {row['tile']} | {row['n_arrays']} | {duration(row['nodal_s'])} "
                     f"| {duration(row['nodal_factorize_s'])} | {duration(timings['float32'])} "
                     f"| {row['ratio_to_torch_float32']:.0f}x | {100 * row['class_agreement_with_software']:.2f} % |")
    return "\n".join(lines)


def ratio_text(ratio: float) -> str:
    """A ratio with one decimal below 100 (``4.8x``), whole above (``4,263x``)."""
    return f"{ratio:.1f}x" if ratio < 100 else f"{ratio:,.0f}x"


def model_table(row: dict) -> str:
    """The trained model in tiles: PyTorch, nodal with linear cells, nodal with gap-model cells."""
    n = row["images"]
    lines = [f"The `{row['arch']}` network in {row['tile']} x {row['tile']} tiles ({row['n_arrays']} arrays), 1 ohm "
             "wires, gain 1e4, Fashion-MNIST test images; accuracy with its 95 % Wilson interval:", "",
             "| run | images | time | per image | ratio to PyTorch (per image) | goal | accuracy |",
             "| --- | --- | --- | --- | --- | --- | --- |",
             f"| PyTorch forward, float32 | {n:,} | {duration(row['torch_float32_s'])} "
             f"| {duration(row['torch_float32_s'] / n)} | 1 | "
             f"| {format_accuracy(row['torch_accuracy'], row['torch_accuracy_ci'], n)} |"]
    for cell, name, goal in (("linear", "linear cells", 5), ("gap", "gap-model cells", 100)):
        if cell not in row:
            continue
        r = row[cell]
        met = "met" if r["ratio_to_torch_per_image"] <= goal else "**not met**"
        same = (f"; {round(r['same_class_as_torch'] * r['images'])} of {r['images']:,} same class as PyTorch"
                if cell == "gap" else "")
        lines.append(f"| nodal, {name} | {'' if r['images'] == n else 'first '}{r['images']:,} | {duration(r['nodal_s'])} "
                     f"| {duration(r['per_image_s'])} | {ratio_text(r['ratio_to_torch_per_image'])} | within {goal}x: {met} "
                     f"| {format_accuracy(r['accuracy'], r['accuracy_ci'], r['images'])}{same} |")
    memory = row["peak_memory_gib"]
    lines += ["", f"Peak memory (`resource.getrusage`, the whole process, MLP part included): {memory:.2f} GiB "
              f"(goal < 4 GiB: {'met' if memory < 4 else '**not met**'})."]
    return "\n".join(lines)


def main() -> None:
    start = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, nargs="+", default=[64, 128], help="tile sides to measure (cells)")
    parser.add_argument("--images", type=int, default=10_000, help="random input images")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (the fastest is kept)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=None, help="a trained network file: also benchmark it on Fashion-MNIST")
    parser.add_argument("--model-tile", type=int, default=64, help="tile side for --model (cells)")
    parser.add_argument("--gap-images", type=int, default=100,
                        help="test images for the gap-cell run of --model (0: skip it)")
    parser.add_argument("--write-docs", action="store_true",
                        help="publish the tables into docs/engines.md (MLP) and docs/tiling.md (--model)")
    parser.add_argument("--device", default=None,
                        help="torch device (cuda, cpu) for the nodal runs and the PyTorch references")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ["OPENBLAS_NUM_THREADS"]))
    try:
        torch_device(args.device)  # a bad or absent device is refused before any work
    except ValueError as error:
        parser.error(str(error))
    device = args.device or "cpu"
    weights, biases = random_network(args.seed)
    images = np.random.default_rng(args.seed + 1).uniform(0.0, 1.0, (args.images, WIDTHS[0]))

    timings = {}
    logits = None
    for name, dtype in (("float32", torch.float32), ("float64", torch.float64)):
        model = torch_model(weights, biases, dtype).to(device)
        x = torch.from_numpy(images).to(dtype).to(device)
        with torch.inference_mode():
            timings[name] = best_time(synced(lambda: model(x), args.device), args.repeats)
            if dtype == torch.float64:
                logits = model(x).cpu().numpy()
    print(f"torch forward on {device}, {args.images} images: float32 {timings['float32']:.4f} s, "
          f"float64 {timings['float64']:.4f} s", file=sys.stderr)

    rows = []
    for tile in args.tiles:
        row = bench_tile(tile, weights, biases, images, logits, args.repeats, args.device)
        row["ratio_to_torch_float32"] = row["nodal_s"] / timings["float32"]
        row["ratio_to_torch_float64"] = row["nodal_s"] / timings["float64"]
        rows.append(row)
        print(f"tile {tile}: {row['n_arrays']} arrays, nodal {row['nodal_s']:.3f} s "
              f"(factorizations {row['nodal_factorize_s']:.3f} s), {row['ratio_to_torch_float32']:.1f}x torch "
              f"float32, {row['ratio_to_torch_float64']:.1f}x torch float64; same class as software "
              f"{100 * row['class_agreement_with_software']:.2f} %", file=sys.stderr)

    model_row = None
    if args.model is not None:
        model_row = bench_model(args.model, args.model_tile, args.gap_images, args.repeats, args.device)
        lin = model_row["linear"]
        print(f"{model_row['arch']} ({model_row['n_arrays']} arrays of {args.model_tile} x {args.model_tile}), "
              f"{lin['images']} Fashion-MNIST test images on {device}: torch float32 "
              f"{model_row['torch_float32_s']:.3f} s; nodal linear {lin['nodal_s']:.3f} s "
              f"({lin['ratio_to_torch_per_image']:.1f}x), accuracy {100 * lin['accuracy']:.2f} % "
              f"(torch {100 * model_row['torch_accuracy']:.2f} %)", file=sys.stderr)
        if "gap" in model_row:
            gap = model_row["gap"]
            print(f"nodal gap cells on {device}: {gap['per_image_s']:.3g} s per image on {gap['images']} images "
                  f"({gap['ratio_to_torch_per_image']:.0f}x torch float32 per image), same class as torch "
                  f"{100 * gap['same_class_as_torch']:.1f} %", file=sys.stderr)
        print(f"peak memory {model_row['peak_memory_gib']:.2f} GiB; load average {os.getloadavg()[0]:.2f}",
              file=sys.stderr)

    load = os.getloadavg()[0]
    tables = {("engines.md", "tiles"): mlp_table(timings, rows, args.images)}
    if model_row is not None:
        tables["tiling.md", "bench"] = model_table(model_row)
    footer = machine_line(device, load, time.perf_counter() - start)
    for body in tables.values():
        print(f"\n{body}\n\n{footer}", file=sys.stderr)
    if args.write_docs:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
        from _docblocks import command_line, publish

        for (page, name), body in tables.items():
            publish(page, name, f"{body}\n\n{footer}", command_line(__file__))
    print(json.dumps({
        "network": list(WIDTHS), "images": args.images, "cells": "linear", "wire_ohm": 1.0, "gain": 1e4,
        "device": args.device,
        "threads": int(os.environ["OPENBLAS_NUM_THREADS"]), "machine": platform.processor() or platform.machine(),
        "torch_float32_s": timings["float32"], "torch_float64_s": timings["float64"], "tiles": rows,
        "model": model_row, "peak_memory_gib": peak_memory_gib(), "load_average_1min": load,
    }))


if __name__ == "__main__":
    main()
