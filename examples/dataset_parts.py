"""The built-in datasets' parts, memory and load time, and how wide a 90 % accuracy's interval is on each test part.

For the splits docs/data.md shows (digits by default, with a validation part, one fold of ten;
Fashion-MNIST), loads each with ``load_dataset`` and tabulates its training, validation and test
images, the float64 memory of the three parts, the time the load took, and the half-width of the
95 % Wilson interval of a 90 % accuracy on its test part (and on the 1,797 images that
``run_folds`` pools over ten folds).

    .venv/bin/python examples/dataset_parts.py [--write-docs]

``--write-docs`` publishes the table into docs/data.md (block ``parts``, ``examples/_docblocks.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from neurodtco.data import Dataset, load_dataset
from neurodtco.stats import wilson_interval

#: what the page shows: (the call as written on the page, name or path, loader options)
SPLITS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ('load_dataset("digits")', "digits", {}),
    ('load_dataset("digits", n_validation=180)', "digits", {"n_validation": 180}),
    ('load_dataset("digits", fold=3, n_validation=160)', "digits", {"fold": 3, "n_validation": 160}),
    ('load_dataset("fashion-mnist")', "fashion-mnist", {}),
)
ACCURACY = 0.9
DIGITS_IMAGES = 1797


def half_width(n: int, accuracy: float = ACCURACY) -> float:
    """Half the width of the 95 % Wilson interval of ``accuracy`` measured on ``n`` images, in points."""
    low, high = wilson_interval(accuracy * n, n)
    return 100 * (high - low) / 2


def describe(call: str, name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Load one split and measure its parts, memory and load time."""
    start = time.perf_counter()
    data: Dataset = load_dataset(name, **options)
    seconds = time.perf_counter() - start
    parts = [data.x_train, data.x_test] + ([data.x_val] if data.has_validation else [])
    return {"call": call, "name": data.name, "train": len(data.y_train),
            "validation": len(data.y_val) if data.has_validation else 0, "test": len(data.y_test),
            "image": "x".join(map(str, data.image_shape)), "megabytes": sum(p.nbytes for p in parts) / 1e6,
            "load_s": seconds}


def table(rows: list[dict[str, Any]]) -> str:
    """One row per split, then the pooled digits folds."""
    lines = ["| call | name | train | validation | test | image | float64 memory | load time "
             f"| 95 % interval of {100 * ACCURACY:.0f} % on the test part |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        validation = f"{r['validation']:,}" if r["validation"] else "none"
        lines.append(f"| `{r['call']}` | `{r['name']}` | {r['train']:,} | {validation} | {r['test']:,} "
                     f"| {r['image']} | {r['megabytes']:,.1f} MB | {r['load_s']:.2f} s | +-{half_width(r['test']):.1f} points |")
    lines += ["", f"Pooled over the ten digits folds (`run_folds`, every image once): {DIGITS_IMAGES:,} test images, "
              f"+-{half_width(DIGITS_IMAGES):.1f} points at {100 * ACCURACY:.0f} %."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-docs", action="store_true", help="publish the table into docs/data.md")
    args = parser.parse_args()
    rows = [describe(*split) for split in SPLITS]
    body = (f"{table(rows)}\n\nLoad times on {os.cpu_count()} CPUs shared with other jobs (1-minute load average "
            f"{os.getloadavg()[0]:.1f}; the first load includes importing scikit-learn); Fashion-MNIST is read from the "
            "gzipped files every time (nothing is cached).")
    print(body)
    if args.write_docs:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _docblocks import command_line, publish

        publish("data.md", "parts", body, command_line(__file__))


if __name__ == "__main__":
    main()
