"""Large crossbars, side by side: solve_crossbar against badcrossbar and SciPy's sparse LU in one run.

Run on demand (not in CI):
    .venv/bin/python bench/crossbar.py [--sizes 64 128 256 512 1024] [--vectors 1000]
        [--reference-vectors 100] [--badcrossbar-max 256] [--splu-max 512] [--blas-threads 1]

For each square size ``N`` (conductances in the default window, 1 ohm word and bit segments,
random read vectors in [0, 0.2] V) it times:

1. ``solve_crossbar`` (``method="auto"``: the dense sweep or nested dissection, whichever the size
   rule picks) on ``--vectors`` vectors (the goal: 1000 at 1024 x 1024 in under 10 s), and again on
   the first ``--reference-vectors`` of them, the workload the references get (their solves grow
   with the vectors: SciPy's LU takes ~130 s for 1000 vectors at 256 x 256); with
   ``--both-methods`` also each method on its own;
2. badcrossbar 1.1.0's exact solve (``badcrossbar.compute``, output currents only), an
   independent implementation (SciPy sparse solve of its own nodal matrix); optional (the
   ``bench`` extra plus ``pip install --no-deps badcrossbar==1.1.0``), capped at
   ``--badcrossbar-max`` because it grows ~8x per doubling;
3. SciPy's ``splu`` of the full nodal matrix (``2 N^2`` unknowns, assembled here, MMD ordering):
   factorization, then the same vectors; capped at ``--splu-max``.

It checks that all three agree, prints a Markdown table with the ratios, the load average (the
ratios are the signal on a shared machine), and as its last line one JSON object. ``--write-docs``
publishes the table into docs/engines.md (block ``crossbar``, ``examples/_docblocks.py``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from neurodtco import solve_crossbar
from neurodtco.engines._nodal.sparse import dissection_pays


def nodal_matrix(g: np.ndarray, r_word: float, r_bit: float) -> tuple[sp.csc_matrix, np.ndarray, np.ndarray]:
    """The full nodal matrix of an array with held neuron inputs, its driver rows and its last bit nodes."""
    rows, cols = g.shape
    gw, gb = 1.0 / r_word, 1.0 / r_bit
    w = np.arange(rows * cols).reshape(rows, cols)
    b = w + rows * cols
    size = 2 * rows * cols
    pairs = [(w.ravel(), b.ravel(), g.ravel()),
             (w[:, :-1].ravel(), w[:, 1:].ravel(), np.full(rows * (cols - 1), gw)),
             (b[:-1].ravel(), b[1:].ravel(), np.full((rows - 1) * cols, gb))]
    p = np.concatenate([x[0] for x in pairs])
    q = np.concatenate([x[1] for x in pairs])
    c = np.concatenate([x[2] for x in pairs])
    diag = np.bincount(p, c, size) + np.bincount(q, c, size)
    diag[w[:, 0]] += gw  # driver segments
    diag[b[-1]] += gb    # last bit segments into the held neuron inputs
    idx = np.arange(size)
    mat = sp.csc_matrix((np.r_[diag, -c, -c], (np.r_[idx, p, q], np.r_[idx, q, p])), shape=(size, size))
    return mat, w[:, 0], b[-1]


def time_splu(g: np.ndarray, v: np.ndarray, r: float) -> tuple[float, float, np.ndarray]:
    """Factorization and solve seconds of SciPy's sparse LU, and the currents."""
    start = time.perf_counter()
    mat, drivers, last = nodal_matrix(g, r, r)
    lu = sla.splu(mat, permc_spec="MMD_AT_PLUS_A")
    factor_s = time.perf_counter() - start
    start = time.perf_counter()
    rhs = np.zeros((mat.shape[0], len(v)))
    rhs[drivers] = v.T / r
    current = (lu.solve(rhs)[last] / r).T
    return factor_s, time.perf_counter() - start, current


def time_badcrossbar(g: np.ndarray, v: np.ndarray, r: float) -> tuple[float, np.ndarray]:
    """Seconds of badcrossbar's exact solve (output currents only), and the currents."""
    import badcrossbar

    start = time.perf_counter()
    sol = badcrossbar.compute(v.T, 1.0 / g, r_i=r, node_voltages=False, all_currents=False)
    return time.perf_counter() - start, np.asarray(sol.currents.output).reshape(len(v), -1)


def seconds(value: float) -> str:
    """A time in seconds to three significant digits (at least two decimals)."""
    return f"{value:.3f} s" if value < 1 else f"{value:.3g} s"


def markdown(rows: list[dict], args: argparse.Namespace, load: float) -> str:
    """The machine line, the table with the ratios, and (``--both-methods``) each method's time."""
    lines = [f"Machine: {platform.machine()}, {os.cpu_count()} cores, BLAS threads {args.blas_threads}, load average "
             f"{load:.1f} at the end; NumPy {np.__version__}. 1 ohm segments. neurodtco on {args.vectors} vectors, "
             f"then all three on {args.reference_vectors} vectors (the ratios).", "",
             f"| size | neurodtco, {args.vectors} vectors (method) | neurodtco, {args.reference_vectors} vectors "
             "| badcrossbar | badcrossbar / neurodtco | splu factor + solve | splu / neurodtco "
             "| largest relative difference |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        ours = row["neurodtco_reference_s"]
        bc = row.get("badcrossbar_s")
        lu = row["splu_factor_s"] + row["splu_solve_s"] if "splu_factor_s" in row else None
        diffs = [row[k] for k in ("badcrossbar_difference", "splu_difference") if k in row]
        cells = [str(row["size"]), f"{seconds(row['neurodtco_s'])} ({row['method']})", seconds(ours),
                 seconds(bc) if bc else "not run", f"{bc / ours:.1f}x" if bc else "",
                 f"{row['splu_factor_s']:.2f} + {row['splu_solve_s']:.2f} s" if lu else "not run",
                 f"{lu / ours:.1f}x" if lu else "", f"{max(diffs):.1e}" if diffs else ""]
        lines.append("| " + " | ".join(cells) + " |")
    if args.both_methods:
        lines += ["", f"Each method on its own, {args.reference_vectors} vectors:", ""]
        for row in rows:
            parts = [f"{m} {seconds(row[f'{m}_s'])}" for m in ("dense", "dissection") if f"{m}_s" in row]
            lines.append(f"- {row['size']} x {row['size']}: " + ", ".join(parts))
    lines += ["", f"badcrossbar runs up to {args.badcrossbar_max} x {args.badcrossbar_max} and splu up to "
              f"{args.splu_max} x {args.splu_max} (--badcrossbar-max, --splu-max): beyond, each takes minutes."]
    return "\n".join(lines)


def main() -> None:
    """Measure every size and print the table and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    parser.add_argument("--vectors", type=int, default=1000, help="read vectors per size")
    parser.add_argument("--reference-vectors", type=int, default=100, help="read vectors for badcrossbar and splu")
    parser.add_argument("--badcrossbar-max", type=int, default=256, help="largest size given to badcrossbar")
    parser.add_argument("--splu-max", type=int, default=512, help="largest size given to SciPy's splu")
    parser.add_argument("--both-methods", action="store_true", help="also time the dense sweep and dissection apart")
    parser.add_argument("--dense-max", type=int, default=256,
                        help="largest size for the dense sweep with --both-methods")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="BLAS threads; 1 by default: on a busy 2-core machine two threads per solve made every size 4-70x slower (measured)")
    parser.add_argument("--write-docs", action="store_true", help="publish the table into docs/engines.md")
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    have_badcrossbar = importlib.util.find_spec("badcrossbar") is not None
    if not have_badcrossbar:
        print("badcrossbar is not installed (pip install -e '.[bench]' && pip install --no-deps badcrossbar==1.1.0): "
              "its column stays empty", file=sys.stderr)
    r = 1.0
    rows = []
    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        solve_crossbar(np.full((8, 8), 1e-5), np.zeros((2, 8)), r, r)  # imports and first calls
        for n in args.sizes:
            rng = np.random.default_rng(n)
            g = rng.uniform(1e-6, 1e-4, (n, n))
            v = rng.uniform(0.0, 0.2, (args.vectors, n))
            row: dict = {"size": n, "vectors": args.vectors, "reference_vectors": args.reference_vectors,
                         "method": "dissection" if dissection_pays(n, n, 1 / r, 1 / r) else "dense"}
            start = time.perf_counter()
            ours = solve_crossbar(g, v, r, r)
            row["neurodtco_s"] = time.perf_counter() - start
            print(f"  {n}x{n}: neurodtco {row['neurodtco_s']:.3f} s ({row['method']})", file=sys.stderr, flush=True)
            ref_v = v[:args.reference_vectors]
            start = time.perf_counter()
            ours = solve_crossbar(g, ref_v, r, r)
            row["neurodtco_reference_s"] = time.perf_counter() - start
            if args.both_methods:
                for method in ("dense", "dissection"):
                    if method == "dense" and n > args.dense_max:
                        continue
                    start = time.perf_counter()
                    other = solve_crossbar(g, ref_v, r, r, method=method)
                    row[f"{method}_s"] = time.perf_counter() - start
                    row[f"{method}_difference"] = float(np.abs(other - ours).max() / np.abs(ours).max())
            if have_badcrossbar and n <= args.badcrossbar_max:
                row["badcrossbar_s"], theirs = time_badcrossbar(g, ref_v, r)
                row["badcrossbar_difference"] = float(np.abs(theirs - ours).max() / np.abs(ours).max())
                print(f"  {n}x{n}: badcrossbar {row['badcrossbar_s']:.3f} s", file=sys.stderr, flush=True)
            if n <= args.splu_max:
                row["splu_factor_s"], row["splu_solve_s"], lu_current = time_splu(g, ref_v, r)
                row["splu_difference"] = float(np.abs(lu_current - ours).max() / np.abs(ours).max())
                print(f"  {n}x{n}: splu {row['splu_factor_s']:.3f} + {row['splu_solve_s']:.3f} s", file=sys.stderr,
                      flush=True)
            rows.append(row)
    load = os.getloadavg()[0]
    table = markdown(rows, args, load)
    print("\n" + table)
    if args.write_docs:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
        from _docblocks import command_line, publish

        publish("engines.md", "crossbar", table, command_line(__file__))
    print(json.dumps({"benchmark": "crossbar", "load_average": load, "blas_threads": args.blas_threads,
                      "rows": rows}))


if __name__ == "__main__":
    main()
