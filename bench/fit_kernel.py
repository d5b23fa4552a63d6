"""Where a compiled corrector fit's time goes: one evaluation of its loss and gradient, per image, against the floor.

Run on demand (not in CI)::

    .venv/bin/python bench/fit_kernel.py                 # the demo's shapes: 1437 images, 10 outputs, 10 classes
    .venv/bin/python bench/fit_kernel.py --write-docs    # the table of docs/studies.md

For each corrector of the demo (MLP with h = 1 ... 32, the affine calibration) it times one
evaluation of the compiled objective (``neurodtco.correction.native.objective``, best of seven
timings of many repeats) on random standardized voltages, and divides by the images: nanoseconds per
image. Beside it: the floor of the same evaluation (its products' flops, ``flops_per_evaluation``,
at the GEMM rate of ``neurodtco.study.floor.gemm_rate`` measured in this run), and the same MLP with
ReLU instead of tanh, whose difference is what the tanh costs. The softmax cross-entropy's share is
the affine calibration's time (it has almost no products). The load average is printed beside.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from neurodtco.correction import BatchedAffineCalibration, BatchedMLPCorrector, native
from neurodtco.study.floor import gemm_rate


def per_image_ns(kind: str, activation: str, hidden: int, x: np.ndarray, y: np.ndarray, repeats: int) -> float:
    """Best of seven timings of ``repeats`` evaluations, in nanoseconds per image and evaluation."""
    rng = np.random.default_rng(hidden)
    theta = 0.3 * rng.standard_normal(native._shape(kind, x.shape[0], hidden, 10))
    best = float("inf")
    for _ in range(7):
        start = time.perf_counter()
        native.objective(kind, activation, x, y, theta, 10, hidden, repeats=repeats)
        best = min(best, (time.perf_counter() - start) / repeats)
    return best / x.shape[1] * 1e9


def main(argv: list[str] | None = None) -> str:
    """Time the evaluations, print the table and publish it on request."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1437, help="images per evaluation (the demo's training set)")
    parser.add_argument("--repeats", type=int, default=300, help="evaluations per timing")
    parser.add_argument("--write-docs", action="store_true", help="publish the table into docs/studies.md")
    args = parser.parse_args(argv)
    if not native.available():
        parser.error(f"the compiled fits are not available here: {native.unavailable_reason()}")
    load = os.getloadavg()
    rng = np.random.default_rng(0)
    x = np.vstack([rng.standard_normal((10, args.images)), np.ones((1, args.images))])
    y = rng.integers(0, 10, args.images)
    rate = gemm_rate(args.images, 10, 32)
    lines = ["| corrector | ns per image and evaluation | floor (products at the GEMM rate) | x floor | "
             "with ReLU instead of tanh | tanh per hidden value |", "|---|---|---|---|---|---|"]
    for hidden in (1, 2, 4, 8, 16, 32):
        t = per_image_ns("mlp", "tanh", hidden, x, y, args.repeats)
        relu = per_image_ns("mlp", "relu", hidden, x, y, args.repeats)
        floor = BatchedMLPCorrector(hidden=hidden).flops_per_evaluation(10, 10, 1) / rate * 1e9
        lines.append(f"| MLP h = {hidden} | {t:.1f} | {floor:.1f} | {t / floor:.1f} | {relu:.1f} | "
                     f"{(t - relu) / hidden:.2f} ns |")
        print(lines[-1], file=sys.stderr, flush=True)
    t = per_image_ns("affine", "tanh", 0, x, y, args.repeats)
    floor = BatchedAffineCalibration().flops_per_evaluation(10, 10, 1) / rate * 1e9
    lines.append(f"| affine | {t:.1f} | {floor:.2f} | {t / floor:.0f} | - | - |")
    after = os.getloadavg()
    body = (f"{args.images} images, 10 outputs, 10 classes; GEMM rate {rate / 1e9:.1f} GFLOP/s measured in this run; "
            f"best of seven timings of {args.repeats} evaluations; load average (1 min) {load[0]:.1f} before, "
            f"{after[0]:.1f} after, on {os.cpu_count()} cores.\n\n" + "\n".join(lines))
    print(body)
    if args.write_docs:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
        from _docblocks import command_line, publish

        publish("studies.md", "fit_kernel", body, command_line(__file__, argv))
    return body


if __name__ == "__main__":
    main()
