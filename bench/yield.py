"""Yield of many dies of the digits network with per-die correction: dies per second and where the time goes.

Run on demand (not in CI):  .venv/bin/python bench/yield.py  [--dies 10000] [--d0 1e-3] [--alpha 2] [--correct 100]

Draws ``--dies`` dies of the default network from a wafer-level field (300 mm wafers, 10 mm dies,
die-scale Stapper clustering), simulates each (nodal engine, linear cells), fits one MLP corrector
per die on ``--correct`` labelled images (batched over the dies of a wafer) and judges them
against ``--bound``. The reference, in the same run: the first ``--reference`` dies through the
single-chip protocol one by one (``correction.correct_circuit``). Prints dies/s, the breakdown
(draw, simulate, correct), the ratio to the reference, the load average, and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from neurodtco.correction import MLPCorrector, correct_circuit
from neurodtco.data import load_digits
from neurodtco.mapping import map_network
from neurodtco.network import default_network
from neurodtco.wafer import DefectField, Mitigation, Wafer, die_circuit, draw_dies, wafer_yield


def main() -> None:
    """Time the wafer pipeline and the one-by-one reference; print both and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dies", type=int, default=10000, help="Dies judged by the wafer pipeline.")
    parser.add_argument("--d0", type=float, default=1e-3, help="Mean defects per cell.")
    parser.add_argument("--alpha", type=float, default=2.0, help="Stapper's clustering parameter.")
    parser.add_argument("--correct", type=int, default=100, help="Labelled images per die for its corrector.")
    parser.add_argument("--bound", type=float, default=0.9, help="Accuracy a die must reach.")
    parser.add_argument("--reference", type=int, default=40, help="Dies through the one-by-one protocol.")
    args = parser.parse_args()
    dataset = load_digits(seed=0)
    healthy = map_network(default_network(dataset))
    field = DefectField(d0_per_cell=args.d0, alpha=args.alpha)
    wafer = Wafer()
    load_before = os.getloadavg()[0]

    start = time.perf_counter()
    result = wafer_yield(healthy, field, wafer, args.dies, dataset, bound=args.bound,
                         mitigation=Mitigation(correct=args.correct))
    total = time.perf_counter() - start

    start = time.perf_counter()
    reference_dies = draw_dies(field, wafer, healthy, args.reference, seed=0)
    for die in reference_dies:
        correct_circuit(die_circuit(healthy, die)[0], dataset, MLPCorrector(hidden=8), "nodal",
                        n_calibration=args.correct)
    reference = time.perf_counter() - start

    t = result.timings
    per_die, ref_per_die = total / result.n_dies, reference / args.reference
    print(f"load average {load_before:.2f} -> {os.getloadavg()[0]:.2f} (2 cores shared: times are noisy)")
    print(f"wafer pipeline: {result.n_dies} dies in {total:.1f} s = {result.n_dies / total:.1f} dies/s "
          f"(draw {t['draw_s']:.1f} s, simulate {t['simulate_s']:.1f} s, correct {t['correct_s']:.1f} s, "
          f"other {total - t['draw_s'] - t['simulate_s'] - t['correct_s'] - t['repair_s']:.1f} s)")
    print(f"one-by-one reference: {args.reference} dies in {reference:.1f} s = {1 / ref_per_die:.1f} dies/s")
    print(f"ratio: {ref_per_die / per_die:.1f}x faster per die; yield {result.yield_:.3f} "
          f"[{result.yield_ci[0]:.3f}, {result.yield_ci[1]:.3f}]")
    print(json.dumps({"dies": result.n_dies, "seconds": total, "dies_per_s": result.n_dies / total,
                      "reference_dies_per_s": 1 / ref_per_die, "ratio": ref_per_die / per_die,
                      "timings": t, "yield": result.yield_, "yield_ci": list(result.yield_ci),
                      "load_average": load_before}))


if __name__ == "__main__":
    main()
