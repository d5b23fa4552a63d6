"""bench/power.py: the cost of reporting power, as docs/engines.md shows it."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np

from neurodtco import simulate

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))  # bench scripts import their sibling ``timing``
_spec = importlib.util.spec_from_file_location("bench_power", BENCH / "power.py")
power = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(power)


def test_the_documented_layer_is_257_by_256_in_20_tiles():
    circuit, _ = power.layer_circuit(256, 128, 64)
    assert circuit.layers[0].conductance.shape == (257, 256)
    assert circuit.n_arrays == math.ceil(257 / 64) * math.ceil(128 / 32) == 20


def test_a_small_layer_fills_both_rows_and_power_is_what_simulate_reports():
    circuit, config = power.layer_circuit(20, 6, 8)
    assert circuit.n_arrays == math.ceil(21 / 8) * math.ceil(6 / 4)
    row = power.measure(circuit, config, vectors=5, repeats=1)
    assert all(row[k] > 0 for k in ("map_s", "map_power_s", "simulate_s", "simulate_power_s"))
    lines = power.table([row], 5).splitlines()
    assert len(lines) == 4 and lines[2].startswith("| 21 x 12 in 6 tiles | the layer's map")
    assert "| `simulate`, 5 vectors |" in lines[3]
    ratio = float(lines[3].split("|")[-2].strip().rstrip("x"))
    assert ratio == round(row["simulate_power_s"] / row["simulate_s"], 2)
    # What the power run pays for: one drive power per vector, positive (the drivers deliver energy).
    volts = np.full((3, 20), 0.1)
    assert np.all(simulate(circuit, volts, engine="nodal", return_power=True).power_w > 0)
