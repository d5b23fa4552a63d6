"""Train the architecture presets on Fashion-MNIST with their recipe: the training table of docs/networks.md.

Each run trains one preset (``network.make_config``: AdamW, cosine schedule, batch 128, 2 torch
threads, seed 0) on ``load_fashion_mnist()``'s 55,000 training images, scores its 5,000
validation images after every epoch (where epochs and learning rate are chosen), then reads the
10,000 test images once; the same as ``neurodtco train --dataset fashion-mnist --arch ARCH``.
Accuracies are those of the lowered float64 operations (what an ideal circuit computes), with
their 95 % Wilson intervals.

    .venv/bin/python examples/train_presets.py [--runs cnn:10 resnet-mini:5 resnet-mini:10] [--write-docs]

``--write-docs`` publishes the table into docs/networks.md (block ``training``, ``examples/_docblocks.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from neurodtco.data import Dataset, load_fashion_mnist
from neurodtco.network import train_architecture
from neurodtco.network.training import make_config
from neurodtco.stats import wilson_interval

RUNS = ("cnn:10", "resnet-mini:5", "resnet-mini:10")


def parse_run(text: str) -> tuple[str, int]:
    """``ARCH:EPOCHS`` (e.g. ``cnn:10``) as (arch, epochs)."""
    arch, _, epochs = text.rpartition(":")
    if not arch or not epochs.isdigit() or int(epochs) < 1:
        raise ValueError(f"run {text!r} is not accepted: expected ARCH:EPOCHS with EPOCHS >= 1, e.g. cnn:10")
    return arch, int(epochs)


def train_run(data: Dataset, arch: str, epochs: int) -> dict[str, Any]:
    """Train one preset; its per-epoch validation, final accuracies with counts, and the training loop's time."""
    config = make_config(arch, data, epochs=epochs)
    marks = {"start": time.perf_counter(), "load_start": os.getloadavg()[0]}

    def progress(done: int, total: int) -> None:
        marks["last_epoch"] = time.perf_counter()  # the loop ends at the last epoch; scoring follows

    net = train_architecture(data, config, progress=progress)
    history = net.history
    counts = {"train": len(data.y_train), "validation": len(data.y_val), "test": len(data.y_test)}
    return {"arch": arch, "epochs": epochs, "learning_rate": config.learning_rate, "batch_size": config.batch_size,
            "threads": config.threads, "val_per_epoch": list(history["val_accuracy"]),
            "accuracy": {part: history[f"{part}_accuracy"] for part in counts}, "n": counts,
            "train_s": marks["last_epoch"] - marks["start"],
            "load": [marks["load_start"], os.getloadavg()[0]]}


def interval_text(accuracy: float, n: int) -> str:
    """``90.92 % [90.34, 91.47]`` with the 95 % Wilson interval of ``round(accuracy * n)`` of ``n``."""
    low, high = wilson_interval(round(accuracy * n), n)
    return f"{100 * accuracy:.2f} % [{100 * low:.2f}, {100 * high:.2f}]"


def table(runs: Sequence[dict[str, Any]]) -> str:
    """One row per run, as docs/networks.md shows it."""
    n = runs[0]["n"]
    lines = [f"{n['train']:,} training, {n['validation']:,} validation and {n['test']:,} test images; accuracies "
             "with their 95 % Wilson intervals; time: the training loop, validation scoring included:", "",
             "| arch | recipe | validation per epoch | validation | **test** | train | time to train |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in runs:
        recipe = f"{r['epochs']} epochs, AdamW {r['learning_rate']:g}, batch {r['batch_size']}, {r['threads']} threads"
        per_epoch = ", ".join(f"{100 * v:.1f}" for v in r["val_per_epoch"])
        acc = r["accuracy"]
        lines.append(f"| `{r['arch']}` | {recipe} | {per_epoch} | {interval_text(acc['validation'], r['n']['validation'])} "
                     f"| **{interval_text(acc['test'], r['n']['test'])}** | {interval_text(acc['train'], r['n']['train'])} "
                     f"| {r['train_s']:.0f} s (load {r['load'][0]:.1f} to {r['load'][1]:.1f}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=list(RUNS), help="ARCH:EPOCHS to train, in order")
    parser.add_argument("--write-docs", action="store_true", help="publish the table into docs/networks.md")
    args = parser.parse_args()
    try:
        runs = [parse_run(text) for text in args.runs]
    except ValueError as error:
        parser.error(str(error))
    data = load_fashion_mnist()
    results = []
    for arch, epochs in runs:
        results.append(train_run(data, arch, epochs))
        print(f"{arch}, {epochs} epochs: {results[-1]['train_s']:.0f} s", file=sys.stderr, flush=True)
    body = f"{table(results)}\n\nOn {os.cpu_count()} CPUs shared with other jobs (1-minute load averages above)."
    print(body)
    if args.write_docs:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _docblocks import command_line, publish

        publish("networks.md", "training", body, command_line(__file__))


if __name__ == "__main__":
    main()
