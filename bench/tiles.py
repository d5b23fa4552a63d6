"""Tiled layers in the nodal engine against a PyTorch forward of the same dense network, in one run.

Run on demand (not in CI):  .venv/bin/python bench/tiles.py  [--tiles 64 128] [--images 10000] [--repeats 3]

A 784-256-128-10 MLP with random weights (hard-tanh between layers) is mapped with linear cells,
1 ohm word and bit segments, op-amp gain 1e4 and tiles of ``T x T`` cells (row tiles sharing the
neuron inputs). The nodal engine solves it exactly on ``--images`` random input images: every
tile is factorized once per run, then each layer is one matrix product for the whole batch. The
reference is the dense network's PyTorch forward (float32, the usual inference precision, and
float64) on the same CPU with the same number of threads. Times are the shortest of
``--repeats`` runs; the nodal time includes the factorizations (reported separately too).

Prints a table on stderr; the last stdout line is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Callable

THREADS = "1"
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, THREADS)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from neurodtco import MappingConfig  # noqa: E402
from neurodtco.engines.nodal import NodalEngine, linear_layer_map  # noqa: E402
from neurodtco.mapping import map_weights  # noqa: E402

WIDTHS = (784, 256, 128, 10)


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Shortest wall time of ``repeats`` calls (a shared machine: the minimum is the signal)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, nargs="+", default=[64, 128], help="tile sides to measure (cells)")
    parser.add_argument("--images", type=int, default=10_000, help="random input images")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (the fastest is kept)")
    parser.add_argument("--seed", type=int, default=0)
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

    print(json.dumps({
        "network": list(WIDTHS), "images": args.images, "cells": "linear", "wire_ohm": 1.0, "gain": 1e4,
        "threads": int(os.environ["OPENBLAS_NUM_THREADS"]), "machine": platform.processor() or platform.machine(),
        "torch_float32_s": timings["float32"], "torch_float64_s": timings["float64"], "tiles": rows,
    }))


if __name__ == "__main__":
    main()
