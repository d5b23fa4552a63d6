"""Latency and energy per inference of the default network against the hidden difference-stage ratio (docs/energy.md).

    .venv/bin/python examples/system_energy.py [--ratios 16 8 4] [--jobs 2] [--write-docs]

The default digits network (64-8-8-8-10) is mapped for the characterized FreePDK45 neuron
(``characterized_circuit``, NOM 25 degC); for every hidden ratio ``r`` the hidden layers' ratio is
set with ``R_f`` rescaled so every ideal output stays (``with_difference_gain``), every layer's
settling is measured in ngspice for the step to test image 0, and the system's energy per
inference follows (``system_energy``, op-amps always on, the arrays' power from the nodal engine
averaged over the 180 test images), exactly as ``neurodtco energy --json`` computes it for the
default ratio. The largest transimpedance output over the test images (nodal) says whether a
lower ratio still fits inside the op-amps' +-0.5 V rails. The first ratio is the design, whose
per-layer table and energy split are published too. Each configuration costs about five
CPU-minutes of ngspice.

``--write-docs`` publishes the blocks ``layers``, ``summary`` and ``ratio`` into docs/energy.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from neurodtco.circuit import Circuit
from neurodtco.data import load_digits, to_voltages
from neurodtco.engines import simulate
from neurodtco.imperfections.system_energy import ArrayParasitics, SystemEnergy, system_energy
from neurodtco.network import default_network
from neurodtco.periphery import load_characterization, with_difference_gain
from neurodtco.periphery.model import characterized_circuit
from neurodtco.periphery.settling import Amplifier, Settling, circuit_settling

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docblocks import publish  # noqa: E402

PAGE = "energy.md"
DESIGN_RATIOS = (16.0, 8.0, 4.0)
RAIL_V = 0.5  # the op-amps' supply is +-0.5 V around ground (docs/periphery.md)


@dataclass(frozen=True)
class Measured:
    """One configuration: its circuit, every layer's settling, the energy split and the largest TIA output."""

    ratio: float
    circuit: Circuit
    settling: list[Settling]
    energy: SystemEnergy
    largest_tia_v: float
    wall_s: float


def with_hidden_ratio(circuit: Circuit, ratio: float) -> Circuit:
    """``circuit`` with every hidden layer's difference-stage ratio set to ``ratio`` (ideal outputs kept)."""
    for l in range(circuit.n_layers - 1):
        circuit = with_difference_gain(circuit, l, ratio)
    return circuit


def largest_tia_output_v(circuit: Circuit, inputs_v: np.ndarray) -> float:
    """The largest |transimpedance output| of the hidden layers over ``inputs_v`` (nodal engine)."""
    nodes = simulate(circuit, inputs_v, engine="nodal", return_nodes=True).nodes
    return float(max(np.max(np.abs(layer["tia_out"])) for layer in nodes[:-1]))


def measure(circuit: Circuit, inputs_v: np.ndarray, ratio: float, amplifier: Amplifier, opamp_power_w: float,
            parasitics: ArrayParasitics = ArrayParasitics(), image: int = 0, jobs: int = 1) -> Measured:
    """Settle every layer of ``circuit`` at hidden ratio ``ratio`` for the step to ``inputs_v[image]``; the energy split."""
    chip = with_hidden_ratio(circuit, ratio)
    array_power = simulate(chip, inputs_v, engine="nodal", return_power=True).layer_power_w
    start = time.perf_counter()
    settled = circuit_settling(chip, inputs_v[image], amplifier, parasitics, jobs=jobs)
    wall = time.perf_counter() - start
    parts = system_energy(chip, array_power, inputs_v, [s.settling_s for s in settled], opamp_power_w, parasitics)
    return Measured(ratio=float(ratio), circuit=chip, settling=settled, energy=parts,
                    largest_tia_v=largest_tia_output_v(chip, inputs_v), wall_s=wall)


def _ns(seconds: float) -> str:
    return f"{seconds * 1e9:.0f}"


def _latency(seconds: float) -> str:
    return f"{seconds * 1e6:.2f} µs"


def layer_table(m: Measured) -> str:
    """Per layer: size, op-amps, ratio, feedback resistor and settling time."""
    lines = ["| layer | rows x columns | op-amps | r | R_f (Ω) | settling (ns) |", "|---|---|---|---|---|---|"]
    for l, layer in enumerate(m.circuit.layers):
        lines.append(f"| {l} | {layer.n_rows} x {layer.n_columns} | {m.energy.layer_opamps[l]} "
                     f"| {layer.neuron.difference_gain:g} | {layer.neuron.feedback_resistance_ohm:.0f} "
                     f"| {_ns(m.settling[l].settling_s)} |")
    return "\n".join(lines)


def summary_table(m: Measured) -> str:
    """Latency and the energy per inference split into op-amps, arrays and input drivers."""
    e = m.energy
    return "\n".join(["| latency | op-amps | arrays | drivers | total | op-amp share |", "|---|---|---|---|---|---|",
                      f"| {_latency(e.latency_s)} | {e.opamps_j * 1e9:.3g} nJ | {e.arrays_j * 1e9:.2g} nJ "
                      f"| {e.drivers_j * 1e12:.2g} pJ | {e.total_j * 1e9:.3g} nJ | {e.opamp_share:.1%} |"])


def ratio_table(ms: Sequence[Measured], n_images: int) -> str:
    """Per hidden ratio: settling per layer, latency, op-amp energy and the largest TIA output against the rails."""
    lines = ["| hidden `r` | settling per layer (ns) | latency | op-amps (`always_on`) "
             f"| largest TIA output (nodal, {n_images} images) |", "|---|---|---|---|---|"]
    for i, m in enumerate(ms):
        tia = f"{m.largest_tia_v:.2f} V" + (f": beyond the ±{RAIL_V} V rails" if m.largest_tia_v > RAIL_V else "")
        name = f"{m.ratio:g}" + (" (default)" if i == 0 else "")
        lines.append(f"| {name} | {' / '.join(_ns(s.settling_s) for s in m.settling)} | {_latency(m.energy.latency_s)} "
                     f"| {m.energy.opamps_j * 1e9:.3g} nJ | {tia} |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Measure every ratio, print the tables, and publish them on request."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratios", type=float, nargs="+", default=list(DESIGN_RATIOS),
                        help="hidden difference-stage ratios; the first is the design (default 16 8 4)")
    parser.add_argument("--jobs", type=int, default=2, help="layers settled at once (ngspice processes)")
    parser.add_argument("--write-docs", action="store_true", help="publish the tables into docs/energy.md")
    args = parser.parse_args(argv)

    from neurodtco.cli.energy import opamp_power_w

    dataset = load_digits(seed=0)
    char = load_characterization()
    chip = characterized_circuit(default_network(dataset), char)
    x = to_voltages(dataset.x_test, chip.input_scale_v)
    load = os.getloadavg()[0]
    ms = []
    for ratio in args.ratios:
        ms.append(measure(chip, x, ratio, char.design, opamp_power_w(char, "NOM", 25.0), jobs=args.jobs))
        print(f"r = {ratio:g}: settling {[round(s.settling_s * 1e9) for s in ms[-1].settling]} ns, "
              f"{ms[-1].wall_s:.0f} s of ngspice wall time", flush=True)
    load = max(load, os.getloadavg()[0])
    walls = ", ".join(f"{m.wall_s:.0f}" for m in ms)
    runtime = (f"ngspice wall time per configuration {walls} s with `--jobs {args.jobs}` "
               f"(load average up to {load:.1f} on {os.cpu_count()} cores)")
    tables = {"layers": layer_table(ms[0]), "summary": summary_table(ms[0]),
              "ratio": ratio_table(ms, len(x)) + f"\n\n({runtime}.)"}
    for name, body in tables.items():
        print(f"\n{name}:\n{body}")
    if args.write_docs:
        ratios = " ".join(f"{r:g}" for r in args.ratios)
        command = f"python examples/system_energy.py --ratios {ratios} --jobs {args.jobs} --write-docs"
        for name, body in tables.items():
            publish(PAGE, name, body, command)
        print(f"published {', '.join(tables)} into docs/{PAGE}")


if __name__ == "__main__":
    main()
