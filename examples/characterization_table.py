"""The measured behaviour of the FreePDK45 neuron per corner and temperature, as docs/periphery.md shows it.

    .venv/bin/python examples/characterization_table.py [--characterization FILE] [--write-docs]

Reads a characterization (default: the shipped ``neurodtco/data/freepdk45_opamp.json``, written by
``neurodtco characterize --corner NOM --corner FF --corner SS --temp-c 25 --temp-c 50 --temp-c 75
--temp-c 100``) and prints one row per characterized point: the op-amp's gain at the 2 kohm bench
load and open, its offset, its swings, the behavioural clamp and the activation model's error,
the offset shift over the common-mode range, the loop's phase margin and unity-gain frequency, and
the supply current. ``--write-docs`` publishes the block ``characterization`` into docs/periphery.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from neurodtco.periphery import load_characterization
from neurodtco.periphery.characterize import Characterization, NeuronCharacteristics

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docblocks import publish  # noqa: E402

PAGE = "periphery.md"
HEADER = ("| corner | T (degC) | A (2 kohm) | A (open) | offset (uV) | swing + / - (V) | clamp model (V) "
          "| activation max err (mV) | linear-region err (mV) | offset shift, \\|vcm\\| <= 0.2 V (uV) | PM (deg) "
          "| f_u (MHz) | I_supply (uA) |")


def open_loop_gain_unloaded(point: NeuronCharacteristics) -> float:
    """The gain at the lightest bench load (the feedback network only)."""
    return float(point.gain_at_load[int(np.argmin(point.load_conductance_s))])


def row(point: NeuronCharacteristics) -> str:
    """One table row: the point's figures in the units of the header."""
    d = point.details
    act, loop = d["activation"], d["loop"]
    return (f"| {point.corner} | {point.temp_c:.0f} | {point.open_loop_gain:.0f} | {open_loop_gain_unloaded(point):.0f} "
            f"| {point.offset_v * 1e6:.1f} | +{point.swing_positive_v:.3f} / -{point.swing_negative_v:.3f} "
            f"| {act['saturation_v']:.3f} | {act['model_max_error_v'] * 1e3:.1f} "
            f"| {act['model_max_error_linear_v'] * 1e3:.1f} "
            f"| {d['common_mode']['max_offset_shift_within_0p2v_v'] * 1e6:.0f} | {loop['phase_margin_deg']:.1f} "
            f"| {loop['unity_gain_hz'] / 1e6:.1f} | {d['supply_current_a'] * 1e6:.0f} |")


def characterization_table(char: Characterization) -> str:
    """Every characterized point, corners in the PDK's order and temperatures rising."""
    points = sorted(char.points, key=lambda p: (char.corners.index(p.corner), p.temp_c))
    return "\n".join([HEADER, "|" + "---|" * HEADER.count(" | ") + "---|", *map(row, points)])


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Print the table and publish it on request."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--characterization", type=Path, default=None, help="characterization JSON (default: shipped)")
    parser.add_argument("--write-docs", action="store_true", help="publish the table into docs/periphery.md")
    args = parser.parse_args(argv)
    table = characterization_table(load_characterization(args.characterization))
    print(table)
    if args.write_docs:
        source = "" if args.characterization is None else f" --characterization {args.characterization}"
        publish(PAGE, "characterization", table, f"python examples/characterization_table.py{source} --write-docs")


if __name__ == "__main__":
    main()
