"""Engine speed, side by side: the nodal engine and solve_crossbar against ngspice in one run.

Run on demand (not in CI):  .venv/bin/python bench/engine.py  [--spice-images N] [--repeats K] [--blas-threads T]
                            [--device cuda]

Measures
1. ``solve_crossbar`` on 64x64, 128x128 and 256x256 arrays (conductances in the default window,
   1 ohm segments) with 1000 random input vectors each;
2. the nodal engine on the full default 64-8-8-8-10 network over all 1797 digits images, with
   linear and with gap-model cells (1 ohm wire segments, op-amp gain 1e4);
3. ngspice (``neurodtco.engines.ngspice``) on the same circuits, a subset of images batched into
   one ngspice run (its fastest mode: the matrix is ordered once per run), at the tolerances
   that make it agree with nodal to 1 uV; and the largest output difference on that subset.

Prints a Markdown table with per-image times and ratios, and the goals it checks; ``--write-docs``
publishes it into docs/engines.md (block ``engine``, ``examples/_docblocks.py``).

``--device`` (a torch device) runs what has a device path there: ``solve_crossbar``'s product with
the transfer matrix, the nodal engine's affine maps with linear cells (their factorizations stay on
the CPU) and its chord Newton with gap-model cells (each array a dense map on the device,
``_nodal/device_chord.py``). ``bench/crossbar.py`` times large arrays (up to 1024 x 1024)
against badcrossbar and SciPy's sparse LU.

BLAS runs single-threaded by default (``--blas-threads 1``): ngspice uses one core too, and on a
shared machine OpenBLAS threads that wait for busy cores make a 256x256 solve ~10x slower.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("NEURODTCO_CACHE", str(ROOT / ".neurodtco-cache"))

from neurodtco import MappingConfig, map_network, solve_crossbar, to_voltages  # noqa: E402
from neurodtco.data import load_digits  # noqa: E402
from neurodtco.engines import get_engine  # noqa: E402
from neurodtco.network import default_network  # noqa: E402
from timing import best_time, duration  # noqa: E402


def bench_crossbar(repeats: int, device: str | None = None) -> list[dict]:
    """solve_crossbar on square arrays with 1000 input vectors."""
    rows = []
    rng = np.random.default_rng(0)
    for n in (64, 128, 256):
        g = rng.uniform(1e-6, 1e-4, (n, n))
        v = rng.uniform(0.0, 0.2, (1000, n))
        reps = repeats if n < 256 else min(repeats, 3)
        seconds = best_time(lambda: solve_crossbar(g, v, 1.0, 1.0, device=device), reps)
        rows.append({"case": f"solve_crossbar {n}x{n}, 1000 vectors", "seconds": seconds})
        print(f"  solve_crossbar {n}x{n}: {seconds:.3f} s", file=sys.stderr, flush=True)
    return rows


def circuits() -> tuple[dict, np.ndarray]:
    """The default network on both cell models (1 ohm wires, A = 1e4), and all 1797 images."""
    dataset = load_digits(seed=0)
    net = default_network(dataset)
    images = to_voltages(np.concatenate([dataset.x_train, dataset.x_test]), 0.2)
    made = {cell: map_network(net, MappingConfig(cell=cell, r_word_ohm=1.0, r_bit_ohm=1.0, open_loop_gain=1e4))
            for cell in ("linear", "gap")}
    return made, images


def ngspice_available() -> bool:
    """True when the ngspice engine module and the ngspice binary both exist."""
    try:
        import neurodtco.engines.ngspice  # noqa: F401
    except ImportError:
        return False
    return shutil.which("ngspice") is not None


def main() -> None:
    """Run every measurement and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spice-images", type=int, default=100, help="images in the one ngspice run per cell model")
    parser.add_argument("--repeats", type=int, default=10, help="repeats of each nodal timing (the best is kept)")
    parser.add_argument("--blas-threads", type=int, default=1, help="BLAS threads for the nodal solves")
    parser.add_argument("--device", default=None, help="torch device for what runs on one (e.g. cuda); default NumPy")
    parser.add_argument("--write-docs", action="store_true", help="publish the table into docs/engines.md")
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        run(args)


def run(args: argparse.Namespace) -> None:
    """Every measurement, then the table."""

    print("solve_crossbar ...", file=sys.stderr, flush=True)
    crossbar = bench_crossbar(args.repeats, args.device)

    made, images = circuits()
    results = {}
    for cell, circuit in made.items():
        nodal = get_engine("nodal", device=args.device)
        nodal.run(circuit, images[:50])  # warm caches and imports
        seconds = best_time(lambda: nodal.run(circuit, images), args.repeats if cell == "linear" else 3)
        results[cell] = {"nodal_s": seconds, "nodal_per_image_s": seconds / len(images)}
        print(f"  nodal {cell}: {seconds * 1e3:.1f} ms for {len(images)} images", file=sys.stderr, flush=True)

    have_spice = ngspice_available()
    if have_spice:
        from neurodtco.engines.ngspice import NgspiceEngine

        subset = images[: args.spice_images]
        spice = NgspiceEngine(chunk_size=len(subset))
        for cell, circuit in made.items():
            print(f"  ngspice {cell}: {len(subset)} images in one run ...", file=sys.stderr, flush=True)
            start = time.perf_counter()
            reference = spice.run(circuit, subset)
            seconds = time.perf_counter() - start
            ours = get_engine("nodal", device=args.device if cell == "linear" else None).run(circuit, subset)
            difference = float(np.max(np.abs(reference.outputs_v - ours.outputs_v)))
            results[cell].update(ngspice_per_image_s=seconds / len(subset), max_difference_v=difference)

    table = markdown(crossbar, results, len(images), args.spice_images if have_spice else 0, args.blas_threads,
                     args.device)
    print(table)
    if args.write_docs:
        sys.path.insert(0, str(ROOT / "examples"))
        from _docblocks import command_line, publish

        publish("engines.md", "engine", table, command_line(__file__))


def markdown(crossbar: list[dict], results: dict, n_images: int, n_spice: int, blas: int, device: str | None) -> str:
    """The machine line, the Markdown table, the agreement with ngspice and the goal checks."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, BLAS threads {blas}, "
             f"load average {load:.1f} at the end; Python {platform.python_version()}, NumPy {np.__version__}; "
             f"device: {device or 'none (NumPy)'}, gap cells on {device or 'the CPU'}.", "",
             "| measurement | time | per image | ngspice per image | speed-up |", "|---|---|---|---|---|"]
    for row in crossbar:
        lines.append(f"| {row['case']} | {duration(row['seconds'])} | | | |")
    for cell, r in results.items():
        spice = r.get("ngspice_per_image_s")
        spice_text = f"{duration(spice)} ({n_spice} images, one run)" if spice else "not measured (no ngspice)"
        ratio = f"{spice / r['nodal_per_image_s']:,.0f}x" if spice else ""
        lines.append(f"| nodal, default network, {cell} cells, {n_images} images | {duration(r['nodal_s'])} "
                     f"| {duration(r['nodal_per_image_s'])} | {spice_text} | {ratio} |")
    lines += ["", "Settings: 1 ohm word and bit segments, op-amp open-loop gain 1e4; ngspice at the engine's "
              "default tolerances (those that agree with nodal to 1 uV)."]
    for cell, r in results.items():
        if "max_difference_v" in r:
            lines.append(f"Largest |nodal - ngspice| output difference on those {n_spice} images, {cell} cells: "
                         f"{r['max_difference_v']:.1e} V.")
    lines += ["", "Goals:", ""]
    big = crossbar[-1]["seconds"]
    lines.append(f"- 256x256 with 1000 vectors in < 5 s: {big:.2f} s -> {'met' if big < 5 else 'NOT met'}")
    for cell, goal in (("linear", 10_000), ("gap", 100)):
        r = results[cell]
        if "ngspice_per_image_s" in r:
            ratio = r["ngspice_per_image_s"] / r["nodal_per_image_s"]
            lines.append(f"- nodal >= {goal:,}x ngspice per image, {cell} cells: {ratio:,.0f}x -> "
                         f"{'met' if ratio >= goal else 'NOT met'}")
        else:
            lines.append(f"- nodal >= {goal:,}x ngspice per image, {cell} cells: ngspice not available")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
