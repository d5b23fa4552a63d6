"""Corrector fits batched and one by one, compiled and in torch, in one run.

Run on demand (not in CI)::

    .venv/bin/python bench/correction.py [--chips K] [--loop N] [--dtype float64 float32] [--write-docs]

Builds ``K`` defective chips of the default network (random and column stuck-on defects on every
array, nodal engine), then fits the corrective MLP (h = 8 and h = 1) to every chip with one batched
fit, and to the first ``N`` chips one at a time (the reference): in float64 with the compiled fits
(``neurodtco.correction.native``) and in torch, in float32 in torch (the compiled fits are
float64). It prints the time per chip of each, the ratio, whether the batched models predict what
the one-by-one models predict, and how many of the batched torch fits' predictions the compiled
fits share, with the load average beside them. ``--write-docs`` publishes the table into
docs/correction.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np

from neurodtco.correction import BatchedMLPCorrector, MLPCorrector, measure_chip, native
from neurodtco.correction.studies import make_defective
from neurodtco.data import load_digits
from neurodtco.mapping import map_network
from neurodtco.network import default_network


def main() -> None:
    """Time batched against one-by-one fits and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chips", type=int, default=40, help="Chips fitted in one batch.")
    parser.add_argument("--loop", type=int, default=8, help="Chips fitted one by one (the reference).")
    parser.add_argument("--dtype", nargs="+", default=["float64", "float32"], help="float64 and/or float32.")
    parser.add_argument("--write-docs", action="store_true", help="publish the table into docs/correction.md")
    args = parser.parse_args()
    load = os.getloadavg()
    dataset = load_digits(seed=0)
    circuit = map_network(default_network(dataset))
    specs = [(p, layer, i) for i in range(args.chips) for p in ("random", "column") for layer in range(4)][:args.chips]
    chips = [measure_chip(make_defective(circuit, p, layer, 0.1, i)[0], dataset, "nodal") for p, layer, i in specs]
    x_train = np.stack([c.outputs_train for c in chips])
    x_test = np.stack([c.outputs_test for c in chips])
    lines = ["| fits | dtype | hidden | batched, s per chip | one by one, s per chip | ratio | same predictions "
             "(batched vs one by one) | same predictions as compiled float64 |", "|---|---|---|---|---|---|---|---|"]
    # The compiled fits first: the others are compared with them.
    variants = [("compiled", "float64")] if "float64" in args.dtype and native.available() else []
    variants += [("torch", dtype) for dtype in args.dtype]
    compiled: dict[int, np.ndarray] = {}
    for fits, dtype in variants:
        for hidden in (8, 1):
            with native.torch_fits() if fits == "torch" else contextlib.nullcontext():
                start = time.perf_counter()
                batched = BatchedMLPCorrector(hidden=hidden, dtype=dtype).fit(x_train, dataset.y_train)
                t_batched = (time.perf_counter() - start) / len(chips)
                predictions = batched.predict(x_test)
                start = time.perf_counter()
                singles = [MLPCorrector(hidden=hidden, dtype=dtype).fit(x_train[k], dataset.y_train)
                           for k in range(args.loop)]
                t_single = (time.perf_counter() - start) / args.loop
            agree = np.mean([np.mean(s.predict(x_test[k]) == predictions[k]) for k, s in enumerate(singles)])
            if fits == "compiled":
                compiled[hidden] = predictions
            shared = f"{np.mean(compiled[hidden] == predictions):.1%}" if hidden in compiled else "-"
            lines.append(f"| {fits} | {dtype} | {hidden} | {t_batched:.2f} | {t_single:.2f} | "
                         f"{t_single / t_batched:.1f}x | {agree:.1%} | {shared} |")
            print(lines[-1], file=sys.stderr, flush=True)
    after = os.getloadavg()
    body = (f"{len(chips)} chips (random and column stuck-on defects at density 0.1 on every array, nodal engine), "
            f"MLP correctors fitted on 1617 training images each (at most 300 L-BFGS iterations for h = 8, 1000 for h = 1): "
            f"all chips in one batched fit, and the first "
            f"{args.loop} one at a time (the reference); same predictions: the share of the {args.loop} x "
            f"{len(dataset.y_test)} test predictions on which the two agree. Wall-clock seconds per chip, one run, "
            f"2 cores; load average (1 min) {load[0]:.1f} at the start, {after[0]:.1f} at the end.\n\n"
            + "\n".join(lines))
    print(body)
    if args.write_docs:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
        from _docblocks import command_line, publish

        publish("correction.md", "batched-bench", body, command_line(__file__))


if __name__ == "__main__":
    main()
