"""Settling time from an ngspice transient: the analytic RC step, then the FreePDK45 neuron under load."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from neurodtco.circuit import Circuit, Layer, NeuronModel
from neurodtco.devices import LinearCell
from neurodtco.engines import simulate
from neurodtco.imperfections.system_energy import ArrayParasitics
from neurodtco.periphery import NeuronDesign, apply_characterization, load_characterization, pdk_available
from neurodtco.periphery.settling import (BehaviouralNeuron, circuit_settling, layer_bench, measure_settling,
                                          settling_time)
from neurodtco.periphery.spice import ngspice_available

needs_ngspice = pytest.mark.skipif(not ngspice_available(), reason="ngspice is not installed")
needs_pdk = pytest.mark.skipif(not (pdk_available() and ngspice_available()),
                               reason="needs ngspice and the FreePDK45 models (pip install c4m-pdk-freepdk45)")


def test_settling_time_interpolates_the_last_exit_from_the_band():
    t = np.linspace(0.0, 10.0, 11)
    v = 1.0 - np.array([1.0, 0.5, 0.2, 0.05, 0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    # |v - 1| crosses 0.03 between t = 3 (0.05) and t = 4 (0.01): halfway
    assert settling_time(t, v, 1.0, 0.03) == pytest.approx(3.5)
    assert settling_time(t, v, 1.0, 2.0) == 0.0
    assert math.isinf(settling_time(t, v, 2.0, 0.1))


def single_cell_layer(g: float = 1e-4, r_f: float = 10e3, r: float = 2.0, r_wire: float = 0.0) -> Layer:
    # one input row (one cell on the plus column) and an unconnected bias row
    conductance = np.array([[g, 0.0], [0.0, 0.0]])
    return Layer(conductance=conductance, plus_columns=np.array([0]), minus_columns=np.array([1]),
                 neuron=NeuronModel(feedback_resistance_ohm=r_f, difference_gain=r), bias_voltage_v=0.2,
                 r_word_ohm=r_wire, r_bit_ohm=r_wire)


@needs_ngspice
def test_rc_load_of_an_ideal_amplifier_settles_as_the_analytic_exponential():
    g, r_f, r, x = 1e-4, 10e3, 2.0, 0.2
    r_out, c_load, rise = 1e3, 100e-12, 1e-9
    tau = r_out * c_load
    final = r * r_f * g * x  # the TIA gives -R_f G x on the plus side; d = r (t_minus - t_plus)
    parasitics = ArrayParasitics(cell_capacitance_f=0.0, wire_capacitance_f_per_m=0.0, output_load_f=c_load)
    body = layer_bench(single_cell_layer(g, r_f, r), [x], None, parasitics,
                       BehaviouralNeuron(open_loop_gain=1e9, output_resistance_ohm=r_out), rise_time_s=rise)
    result = measure_settling(body, [0], stop_time_s=2e-6, tolerance_v=1e-3)
    # RC driven by a ramp of duration tr: v = V [1 - (tau/tr)(exp(tr/tau) - 1) exp(-t/tau)] after the ramp
    amplitude = final * (tau / rise) * math.expm1(rise / tau)
    expected = tau * math.log(amplitude / 1e-3)
    assert result.settling_s == pytest.approx(expected, rel=2e-3)
    assert result.final_v[0] == pytest.approx(final, abs=1e-5) and result.dc_v[0] == pytest.approx(final, abs=1e-6)
    later = result.time_s > 2 * rise
    analytic = final * (1 - (tau / rise) * math.expm1(rise / tau) * np.exp(-result.time_s[later] / tau))
    np.testing.assert_allclose(result.outputs_v[later, 0], analytic, atol=2e-4)


@needs_ngspice
def test_a_longer_stop_time_is_found_when_the_first_is_too_short():
    parasitics = ArrayParasitics(cell_capacitance_f=0.0, wire_capacitance_f_per_m=0.0, output_load_f=100e-12)
    body = layer_bench(single_cell_layer(), [0.2], None, parasitics, BehaviouralNeuron(output_resistance_ohm=1e3))
    short = measure_settling(body, [0], stop_time_s=2e-7)
    assert short.stop_time_s >= 2 * short.settling_s and short.stop_time_s > 2e-7
    assert short.settling_s == pytest.approx(measure_settling(body, [0], stop_time_s=2e-6).settling_s, rel=2e-2)


def test_bench_refuses_bad_inputs_by_name():
    layer = single_cell_layer()
    with pytest.raises(ValueError, match="1 finite voltages"):
        layer_bench(layer, [0.1, 0.2])
    with pytest.raises(ValueError, match="neurons=\\[3\\]"):
        layer_bench(layer, [0.1], neurons=[3])
    with pytest.raises(ValueError, match="output_resistance_ohm=-1"):
        BehaviouralNeuron(output_resistance_ohm=-1.0)


def pdk_layer(r_wire: float = 1.0) -> tuple[Layer, Layer]:
    """A 4-input, 2-neuron layer in the default window, and the 2-input layer it drives."""
    rng = np.random.default_rng(3)
    g = rng.uniform(1e-6, 1e-4, size=(5, 4))
    nxt = rng.uniform(1e-6, 1e-4, size=(3, 4))
    neuron = NeuronModel(feedback_resistance_ohm=2e3, difference_gain=16.0, saturation_v=0.48)
    layer = Layer(conductance=g, plus_columns=np.array([0, 2]), minus_columns=np.array([1, 3]), neuron=neuron,
                  bias_voltage_v=0.2, r_word_ohm=r_wire, r_bit_ohm=r_wire)
    following = Layer(conductance=nxt, plus_columns=np.array([0, 2]), minus_columns=np.array([1, 3]), neuron=neuron,
                      bias_voltage_v=0.2, r_word_ohm=r_wire, r_bit_ohm=r_wire)
    return layer, following


@needs_pdk
def test_freepdk45_neuron_settles_slower_under_more_bit_line_capacitance_to_its_dc_solution():
    layer, following = pdk_layer()
    # r = 1 (as in the output layer) keeps the difference stage fast, so the transimpedance stages'
    # load shows; with r = 16 the difference stage's closed-loop bandwidth sets the time alone.
    layer = layer.replace(neuron=replace(layer.neuron, difference_gain=1.0, feedback_resistance_ohm=10e3))
    x = np.array([0.05, 0.0, 0.02, 0.01])  # small inputs: the neuron stays linear, where settling is slowest
    one_layer = Circuit(layers=(layer,), cell=LinearCell())
    char = load_characterization()
    behavioural = simulate(apply_characterization(one_layer, char, output_load_s=float(following.conductance[0].sum())),
                           x[None], engine="nodal").outputs_v[0, 0]
    times = []
    for c_cell in (1e-15, 300e-15, 1e-12):
        body = layer_bench(layer, x, following, ArrayParasitics(cell_capacitance_f=c_cell), NeuronDesign(),
                           neurons=[0])
        result = measure_settling(body, [0], stop_time_s=1e-6)
        assert math.isfinite(result.settling_s) and result.settling_s > 0
        assert result.final_v[0] == pytest.approx(result.dc_v[0], abs=1e-4)
        # the behavioural model of the same neuron (characterized gain and offset): within its few-mV error
        assert result.final_v[0] == pytest.approx(behavioural, abs=5e-3)
        times.append(result.settling_s)
    assert times[0] < times[1] < times[2], times
    assert times[2] > 3 * times[0]


@needs_ngspice
@pytest.mark.parametrize("tiles", [{}, {"tile_rows": 3, "tile_cols": 4}], ids=["one array", "tiled"])
def test_circuit_settling_steps_every_layer_to_its_own_nodal_inputs(tiles):
    from neurodtco.mapping import MappingConfig, map_weights

    rng = np.random.default_rng(5)
    w = [0.3 * rng.normal(size=(3, 4)), 0.3 * rng.normal(size=(2, 3))]
    b = [0.1 * rng.normal(size=3), 0.1 * rng.normal(size=2)]
    circuit = map_weights(w, b, MappingConfig(r_word_ohm=1.0, r_bit_ohm=1.0, **tiles))
    if tiles:  # row tiles share a neuron input, and the next layer's word lines span column tiles
        assert [layer.tiling.grid_shape for layer in circuit.layers] == [(2, 2), (2, 1)]
    x = np.array([[0.05, 0.1, 0.0, 0.02]])
    nodal = simulate(circuit, x, engine="nodal", return_hidden=True)
    assert np.all(np.abs(nodal.hidden_v[0]) < 0.9 * circuit.layers[0].neuron.saturation_v)  # no clamp in the test
    layers = circuit_settling(circuit, x, BehaviouralNeuron(open_loop_gain=1e9), jobs=2)
    assert [len(s.neurons) for s in layers] == [3, 2]
    np.testing.assert_allclose(layers[0].final_v, nodal.hidden_v[0][0], atol=1e-5)
    np.testing.assert_allclose(layers[1].final_v, nodal.outputs_v[0], atol=1e-5)
    assert all(0 < s.settling_s < s.stop_time_s / 2 for s in layers)


@needs_ngspice
def test_conv_layers_settle_to_the_nodal_output_of_their_hardest_driven_read():
    import torch
    from torch import nn

    from neurodtco.circuit import Crossbar
    from neurodtco.mapping import MappingConfig, map_ops
    from neurodtco.network import Saturate, lower_sequential
    from neurodtco.periphery.settling import layer_reads

    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), Saturate("relu"), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3),
                          Saturate("hardtanh"), nn.Linear(3, 2)).eval()
    circuit = map_ops(lower_sequential(model, (1, 6, 6)), MappingConfig(r_word_ohm=1.0, r_bit_ohm=1.0))
    x = np.random.default_rng(2).uniform(0.0, 0.2, (1, 36))
    rows, following = layer_reads(circuit, x)
    assert following == [None, 2, None]  # the conv feeds the hold, dense 1 drives dense 2's word lines
    conv = next(s for s in circuit.stage_list() if isinstance(s, Crossbar) and s.conv is not None).conv
    patches = conv.patches(x)
    position = int(np.argmax(np.sum(patches ** 2, axis=1)))
    np.testing.assert_array_equal(rows[0], patches[position])
    nodal = simulate(circuit, x, engine="nodal", return_hidden=True)
    layers = circuit_settling(circuit, x, BehaviouralNeuron(open_loop_gain=1e9), jobs=2)
    conv_out = nodal.hidden_v[0][0].reshape(2, -1)[:, position]  # channel-major maps: (channel, position)
    rail = circuit.layers[0].neuron.saturation_v  # the behavioural neuron has no clamp: the ReLU is applied here
    np.testing.assert_allclose(np.clip(layers[0].final_v, 0.0, rail), conv_out, atol=1e-5)
    np.testing.assert_allclose(layers[2].final_v, nodal.outputs_v[0], atol=1e-5)
    assert all(0 < s.settling_s < s.stop_time_s / 2 for s in layers)
