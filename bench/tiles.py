"""Tiled layers in the nodal engine against a PyTorch forward of the same network, in one run.

Run on demand (not in CI):  .venv/bin/python bench/tiles.py  [--tiles 64 128] [--images 10000] [--repeats 3]
                                                             [--model cnn.pt [--gap-images 100]]

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
Peak memory is the process's maximum resident set (``resource.getrusage``).

Prints a table on stderr; the last stdout line is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys

THREADS = "1"
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, THREADS)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from neurodtco import MappingConfig  # noqa: E402
from neurodtco.data import load_dataset, to_voltages  # noqa: E402
from neurodtco.engines.nodal import NodalEngine, linear_layer_map  # noqa: E402
from neurodtco.mapping import map_network, map_weights  # noqa: E402
from neurodtco.network import load_network  # noqa: E402
from timing import best_time  # noqa: E402

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


def bench_tile(tile: int, weights, biases, images: np.ndarray, logits: np.ndarray, repeats: int) -> dict:
    """Nodal on the tiled circuit: total time, factorization time, and agreement with the software network."""
    config = MappingConfig(r_word_ohm=1.0, r_bit_ohm=1.0, open_loop_gain=1e4, tile_rows=tile, tile_cols=tile)
    circuit = map_weights(weights, biases, config)
    volts = images * config.v_read_v
    engine = NodalEngine()
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


def bench_model(path: str, tile: int, gap_images: int, repeats: int) -> dict:
    """A trained network on the Fashion-MNIST test images: nodal (linear, then gap cells) against its PyTorch forward."""
    dataset = load_dataset("fashion-mnist")
    net = load_network(path)
    x, y = dataset.x_test, dataset.y_test
    model = net.sequential().eval()
    images = torch.from_numpy(x).float()
    with torch.inference_mode():
        torch_s = best_time(lambda: model(images), repeats)
        torch_classes = model(images).argmax(dim=1).numpy()
    engine = NodalEngine()
    row: dict = {"model": path, "arch": net.arch, "tile": tile, "images": len(y), "torch_float32_s": torch_s,
                 "torch_accuracy": float(np.mean(torch_classes == y))}
    for cell, n in (("linear", len(y)), ("gap", min(gap_images, len(y)))):
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
                     "same_class_as_torch": float(np.mean(classes == torch_classes[:n]))}
    row["peak_memory_gib"] = peak_memory_gib()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, nargs="+", default=[64, 128], help="tile sides to measure (cells)")
    parser.add_argument("--images", type=int, default=10_000, help="random input images")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (the fastest is kept)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=None, help="a trained network file: also benchmark it on Fashion-MNIST")
    parser.add_argument("--model-tile", type=int, default=64, help="tile side for --model (cells)")
    parser.add_argument("--gap-images", type=int, default=100, help="test images for the gap-cell run of --model")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ["OPENBLAS_NUM_THREADS"]))
    weights, biases = random_network(args.seed)
    images = np.random.default_rng(args.seed + 1).uniform(0.0, 1.0, (args.images, WIDTHS[0]))

    timings = {}
    logits = None
    for name, dtype in (("float32", torch.float32), ("float64", torch.float64)):
        model = torch_model(weights, biases, dtype)
        x = torch.from_numpy(images).to(dtype)
        with torch.inference_mode():
            timings[name] = best_time(lambda: model(x), args.repeats)
            if dtype == torch.float64:
                logits = model(x).numpy()
    print(f"torch forward, {args.images} images: float32 {timings['float32']:.4f} s, "
          f"float64 {timings['float64']:.4f} s", file=sys.stderr)

    rows = []
    for tile in args.tiles:
        row = bench_tile(tile, weights, biases, images, logits, args.repeats)
        row["ratio_to_torch_float32"] = row["nodal_s"] / timings["float32"]
        row["ratio_to_torch_float64"] = row["nodal_s"] / timings["float64"]
        rows.append(row)
        print(f"tile {tile}: {row['n_arrays']} arrays, nodal {row['nodal_s']:.3f} s "
              f"(factorizations {row['nodal_factorize_s']:.3f} s), {row['ratio_to_torch_float32']:.1f}x torch "
              f"float32, {row['ratio_to_torch_float64']:.1f}x torch float64; same class as software "
              f"{100 * row['class_agreement_with_software']:.2f} %", file=sys.stderr)

    model_row = None
    if args.model is not None:
        model_row = bench_model(args.model, args.model_tile, args.gap_images, args.repeats)
        lin, gap = model_row["linear"], model_row["gap"]
        print(f"{model_row['arch']} ({model_row['n_arrays']} arrays of {args.model_tile} x {args.model_tile}), "
              f"{lin['images']} Fashion-MNIST test images: torch float32 {model_row['torch_float32_s']:.3f} s; "
              f"nodal linear {lin['nodal_s']:.3f} s ({lin['ratio_to_torch_per_image']:.1f}x), accuracy "
              f"{100 * lin['accuracy']:.2f} % (torch {100 * model_row['torch_accuracy']:.2f} %); nodal gap cells "
              f"{gap['per_image_s']:.3g} s per image on {gap['images']} images ({gap['ratio_to_torch_per_image']:.0f}x "
              f"per image); peak memory {model_row['peak_memory_gib']:.2f} GiB", file=sys.stderr)

    print(json.dumps({
        "network": list(WIDTHS), "images": args.images, "cells": "linear", "wire_ohm": 1.0, "gain": 1e4,
        "threads": int(os.environ["OPENBLAS_NUM_THREADS"]), "machine": platform.processor() or platform.machine(),
        "torch_float32_s": timings["float32"], "torch_float64_s": timings["float64"], "tiles": rows,
        "model": model_row, "peak_memory_gib": peak_memory_gib(), "load_average_1min": os.getloadavg()[0],
    }))


if __name__ == "__main__":
    main()
