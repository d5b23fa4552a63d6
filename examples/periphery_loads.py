"""What the default network asks of its transistor-level neurons, layer by layer (docs/periphery.md).

    .venv/bin/python examples/periphery_loads.py [--write-docs]

The default digits network (64-8-8-8-10) mapped for the characterized FreePDK45 neuron
(``characterized_circuit``, NOM 25 degC), read on its 180 test images with the nodal engine. Per
layer: the difference-stage ratio ``r`` and feedback resistor ``R_f``; the layer's voltage gain
from its input rows to its outputs, ``r R_f max_j sum_i |G+_ij - G-_ij|`` (how much an error on
every input row can grow); the conductance each output drives (the next array's input rows) and
the mean load the behavioural model reads the neuron at (``difference_stage_load_s``); the largest
transimpedance output; and the largest common-mode input of the difference stage,
``r / (1 + r) |t_minus|``. ``--write-docs`` publishes the block ``loads`` into docs/periphery.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from neurodtco.circuit import Circuit, Layer
from neurodtco.data import load_digits, to_voltages
from neurodtco.engines import simulate
from neurodtco.network import default_network
from neurodtco.periphery import load_characterization
from neurodtco.periphery.characterize import Characterization
from neurodtco.periphery.model import characterized_circuit, difference_stage_load_s
from neurodtco.periphery.network import next_row_loads_s

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docblocks import publish  # noqa: E402

PAGE = "periphery.md"


def voltage_gain(layer: Layer) -> float:
    """``r R_f max_j sum_i |G+_ij - G-_ij|`` over the input rows: the largest output change per volt on every row."""
    g = layer.conductance[:-1]  # the bias row holds its voltage
    weights = np.abs(g[:, layer.plus_columns] - g[:, layer.minus_columns]).sum(axis=0)
    return float(layer.neuron.difference_gain * layer.neuron.feedback_resistance_ohm * weights.max())


def loads_table(circuit: Circuit, char: Characterization, inputs_v: np.ndarray) -> str:
    """One row per layer: ratio, R_f, voltage gain, loads, largest TIA output and difference-stage common mode."""
    nodes = simulate(circuit, inputs_v, engine="nodal", return_nodes=True).nodes
    lines = ["| layer | r | R_f (Ω) | voltage gain | next array's row loads (mS) | modelled load (mS) "
             f"| largest \\|TIA output\\| (V) | largest r/(1+r) \\|t_minus\\| (V) |", "|" + "---|" * 8]
    for l, layer in enumerate(circuit.layers):
        r = layer.neuron.difference_gain
        tia = nodes[l]["tia_out"]
        rows = next_row_loads_s(circuit, l)
        spread = "(read-out)" if rows is None else f"{rows.min() * 1e3:.2f}-{rows.max() * 1e3:.2f}"
        lines.append(f"| {l} | {r:g} | {layer.neuron.feedback_resistance_ohm:.0f} | {voltage_gain(layer):.2f} | {spread} "
                     f"| {difference_stage_load_s(char, circuit, l) * 1e3:.2f} | {np.abs(tia).max():.3f} "
                     f"| {r / (1 + r) * np.abs(tia[:, layer.minus_columns]).max():.3f} |")
    return "\n".join(lines) + (f"\n\nNodal engine, {len(inputs_v)} test images; the modelled load is the difference "
                               "stage's feedback path plus the next array's mean row conductance.")


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Print the table and publish it on request."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-docs", action="store_true", help="publish the table into docs/periphery.md")
    args = parser.parse_args(argv)
    dataset = load_digits(seed=0)
    char = load_characterization()
    circuit = characterized_circuit(default_network(dataset), char)
    table = loads_table(circuit, char, to_voltages(dataset.x_test, circuit.input_scale_v))
    print(table)
    if args.write_docs:
        publish(PAGE, "loads", table, "python examples/periphery_loads.py --write-docs")


if __name__ == "__main__":
    main()
