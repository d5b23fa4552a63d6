"""What reporting power costs the nodal engine: a layer's map with and without its driver map, in one run.

Run on demand (not in CI):  .venv/bin/python bench/power.py [--vectors 2000] [--repeats 3] [--large] [--write-docs]

One dense layer of 256 inputs and 128 neurons (a 257 x 256 physical matrix: bias row, one pair
of columns per neuron) with random weights, linear cells, 1 ohm word and bit segments, op-amp
gain 1e4, cut into 64 x 64 tiles (20 arrays). Timed, the shortest of ``--repeats`` runs each:

1. the layer's affine map alone (``linear_layer_map``), and with the driver map that gives every
   driver's current from the same factorizations (``linear_layer(..., power=True)``);
2. ``--vectors`` random input vectors through ``simulate``, without and with ``return_power``.

``--large`` adds one untiled 1024 x 1024 array (1023 inputs, 512 neurons; nested dissection)
timed once each way, and the process's peak resident memory. The ratios are the signal on a
shared machine; the load average is printed beside them. ``--write-docs`` publishes the table into
docs/engines.md (block ``power``, ``examples/_docblocks.py``).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from neurodtco import MappingConfig, simulate  # noqa: E402
from neurodtco.engines.nodal import linear_layer, linear_layer_map  # noqa: E402
from neurodtco.mapping import map_weights  # noqa: E402
from timing import best_time, duration  # noqa: E402


def layer_circuit(n_inputs: int, n_neurons: int, tile: int | None, seed: int = 0):
    """One dense layer with random weights and biases, linear cells, 1 ohm wires, gain 1e4, optionally tiled."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0.0, 1.0, (n_neurons, n_inputs)) / np.sqrt(n_inputs)]
    config = MappingConfig(r_word_ohm=1.0, r_bit_ohm=1.0, open_loop_gain=1e4,
                           **({} if tile is None else {"tile_rows": tile, "tile_cols": tile}))
    return map_weights(weights, [rng.normal(0.0, 0.05, n_neurons)], config), config


def measure(circuit, config, vectors: int, repeats: int, with_simulate: bool = True) -> dict:
    """Map alone and map with driver map; optionally ``simulate`` without and with power."""
    layer = circuit.layers[0]
    row = {"shape": list(layer.conductance.shape), "arrays": circuit.n_arrays,
           "map_s": best_time(lambda: linear_layer_map(layer), repeats),
           "map_power_s": best_time(lambda: linear_layer(layer, power=True), repeats)}
    if with_simulate:
        volts = np.random.default_rng(1).uniform(0.0, config.v_read_v, (vectors, layer.n_rows - 1))
        row["simulate_s"] = best_time(lambda: simulate(circuit, volts, engine="nodal"), repeats)
        row["simulate_power_s"] = best_time(lambda: simulate(circuit, volts, engine="nodal", return_power=True), repeats)
    return row


def table(rows: list[dict], vectors: int) -> str:
    """One line per measurement pair, with the ratio of the power run to the plain one."""
    lines = ["| array | measurement | without power | with power | ratio |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        name = f"{row['shape'][0]} x {row['shape'][1]} in {row['arrays']} tile{'s' if row['arrays'] > 1 else ''}"
        pairs = [("the layer's map (factorizations included)", "map_s", "map_power_s")]
        if "simulate_s" in row:
            pairs.append((f"`simulate`, {vectors:,} vectors", "simulate_s", "simulate_power_s"))
        for what, plain, power in pairs:
            lines.append(f"| {name} | {what} | {duration(row[plain])} | {duration(row[power])} "
                         f"| {row[power] / row[plain]:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=2000, help="input vectors through simulate")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (the fastest is kept)")
    parser.add_argument("--large", action="store_true", help="also one untiled 1024 x 1024 array, once each way")
    parser.add_argument("--write-docs", action="store_true", help="publish the table into docs/engines.md")
    args = parser.parse_args()
    circuit, config = layer_circuit(256, 128, 64)
    rows = [measure(circuit, config, args.vectors, args.repeats)]
    if args.large:
        circuit, config = layer_circuit(1023, 512, None)
        rows.append(measure(circuit, config, args.vectors, 1, with_simulate=False))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    body = (f"{table(rows, args.vectors)}\n\nLinear cells, 1 ohm wires, gain 1e4; the shortest of {args.repeats} runs"
            f"{' (the 1024 x 1024 array: one run)' if args.large else ''}; {os.environ['OPENBLAS_NUM_THREADS']} BLAS thread(s), {os.cpu_count()} "
            f"CPUs shared with other jobs, 1-minute load average {os.getloadavg()[0]:.1f} at the end; peak resident "
            f"memory {peak:.2f} GiB.")
    print(body)
    if args.write_docs:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
        from _docblocks import command_line, publish

        publish("engines.md", "power", body, command_line(__file__))


if __name__ == "__main__":
    main()
