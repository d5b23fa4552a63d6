"""examples/system_energy.py: the tables of docs/energy.md from settling benches (tiny circuit, behavioural neurons)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from neurodtco.mapping import MappingConfig, map_weights
from neurodtco.periphery.settling import BehaviouralNeuron
from neurodtco.periphery.spice import ngspice_available

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import system_energy as example  # noqa: E402

pytestmark = pytest.mark.skipif(not ngspice_available(), reason="needs ngspice")


def test_ratios_keep_the_ideal_outputs_and_the_tables_add_up():
    rng = np.random.default_rng(3)
    w = [rng.normal(size=(3, 4)), rng.normal(size=(2, 3))]
    b = [rng.normal(size=3), rng.normal(size=2)]
    circuit = map_weights(w, b, MappingConfig(r_word_ohm=1.0, r_bit_ohm=1.0, difference_gain=16.0))
    x = rng.uniform(0, 0.2, size=(4, 4))
    amp = BehaviouralNeuron(open_loop_gain=1e4, output_resistance_ohm=100.0)
    ms = [example.measure(circuit, x, r, amp, opamp_power_w=6e-4) for r in (16.0, 4.0)]
    low = ms[1].circuit.layers[0].neuron
    # r R_f is what the ideal neuron computes: a lower r must raise R_f by the same factor
    high = circuit.layers[0].neuron
    assert low.difference_gain == 4.0
    assert low.difference_gain * low.feedback_resistance_ohm == pytest.approx(high.difference_gain * high.feedback_resistance_ohm)
    assert ms[1].circuit.layers[-1].neuron == circuit.layers[-1].neuron  # the output layer is left alone
    # the TIA outputs carry the signal the difference stage no longer amplifies: 4x larger at r = 4
    assert ms[1].largest_tia_v == pytest.approx(4 * ms[0].largest_tia_v, rel=1e-3)
    for m in ms:
        assert m.energy.latency_s == pytest.approx(sum(s.settling_s for s in m.settling))
    layers = example.layer_table(ms[0]).splitlines()
    assert len(layers) == 2 + circuit.n_layers and layers[2].startswith("| 0 | 5 x 6 | 9 | 16 |")
    summary = example.summary_table(ms[0]).splitlines()
    assert len(summary) == 3 and summary[2].count("|") == 7
    ratio = example.ratio_table(ms, len(x)).splitlines()
    assert len(ratio) == 2 + len(ms) and "(default)" in ratio[2] and "(nodal, 4 images)" in ratio[0]
    assert ratio[3].split("|")[2].count("/") == circuit.n_layers - 1
