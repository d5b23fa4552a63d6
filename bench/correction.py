"""Batched corrector fits against one-by-one fits of the same correctors, in one run.

Run on demand (not in CI):  .venv/bin/python bench/correction.py  [--chips K] [--loop N] [--dtype float32]

Builds ``K`` defective chips of the default network (random and column stuck-on defects on every
array, nodal engine), then fits the corrective MLP (h = 8 and h = 1) to every chip with one batched
fit, and to the first ``N`` chips one at a time (the reference), and prints the time per chip of
each, the ratio, and whether the batched models predict what the one-by-one models predict.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from neurodtco.correction import BatchedMLPCorrector, MLPCorrector, measure_chip
from neurodtco.correction.studies import make_defective
from neurodtco.data import load_digits
from neurodtco.mapping import map_network
from neurodtco.network import default_network


def main() -> None:
    """Time batched against one-by-one fits and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chips", type=int, default=40, help="Chips fitted in one batch.")
    parser.add_argument("--loop", type=int, default=8, help="Chips fitted one by one (the reference).")
    parser.add_argument("--dtype", default="float32", help="float32 or float64.")
    args = parser.parse_args()
    dataset = load_digits(seed=0)
    circuit = map_network(default_network(dataset))
    specs = [(p, layer, i) for i in range(args.chips) for p in ("random", "column") for layer in range(4)][:args.chips]
    chips = [measure_chip(make_defective(circuit, p, layer, 0.1, i)[0], dataset, "nodal") for p, layer, i in specs]
    x_train = np.stack([c.outputs_train for c in chips])
    x_test = np.stack([c.outputs_test for c in chips])
    print(f"| hidden | chips | batched, s per chip | one by one, s per chip | ratio | same predictions |")
    print("|---|---|---|---|---|---|")
    for hidden in (8, 1):
        start = time.perf_counter()
        batched = BatchedMLPCorrector(hidden=hidden, dtype=args.dtype).fit(x_train, dataset.y_train)
        t_batched = (time.perf_counter() - start) / len(chips)
        predictions = batched.predict(x_test)
        start = time.perf_counter()
        singles = [MLPCorrector(hidden=hidden, dtype=args.dtype).fit(x_train[k], dataset.y_train)
                   for k in range(args.loop)]
        t_single = (time.perf_counter() - start) / args.loop
        agree = np.mean([np.mean(s.predict(x_test[k]) == predictions[k]) for k, s in enumerate(singles)])
        print(f"| {hidden} | {len(chips)} | {t_batched:.3f} | {t_single:.3f} | {t_single / t_batched:.1f}x "
              f"| {agree:.2%} of {args.loop} x {len(dataset.y_test)} |")


if __name__ == "__main__":
    main()
