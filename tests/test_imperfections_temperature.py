"""Temperature models against their analytic limits and the independent subthreshold formula."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurodtco.circuit import Circuit, Layer, NeuronModel
from neurodtco.devices import LinearCell
from neurodtco.engines import simulate
from neurodtco.imperfections import (EFlashThermalModel, ReRAMThermalModel, WireThermalModel, apply_imperfections,
                                     apply_temperature)

K_EV = 8.617333262e-5  # Boltzmann constant in eV/K (CODATA), written out independently of the module


def tiny_circuit(r_wire: float = 2.0) -> Circuit:
    """A 3x4 array (2 inputs + bias, 2 neurons) with states spread over the default window."""
    g = np.array([[1e-6, 5e-6, 2e-5, 1e-4], [3e-6, 1e-6, 1e-4, 7e-5], [1e-5, 4e-5, 1e-6, 2e-6]])
    layer = Layer(conductance=g, plus_columns=np.array([0, 2]), minus_columns=np.array([1, 3]),
                  neuron=NeuronModel(feedback_resistance_ohm=1e4), bias_voltage_v=0.2, r_word_ohm=r_wire,
                  r_bit_ohm=r_wire)
    return Circuit(layers=(layer,), cell=LinearCell())


def test_reference_temperature_is_the_identity_for_cells_and_wires():
    circuit = tiny_circuit()
    for spec in ({"kind": "temperature", "temperature_c": 25.0},
                 {"kind": "temperature", "temperature_c": 25.0, "technology": "eflash"},
                 {"kind": "temperature", "temperature_c": 40.0, "t_ref_c": 40.0}):
        hot, record = apply_imperfections(circuit, spec)
        np.testing.assert_allclose(hot.layers[0].conductance, circuit.layers[0].conductance, rtol=1e-12)
        assert hot.layers[0].r_word_ohm == pytest.approx(2.0)
        assert record["wire_factor"] == pytest.approx(1.0)
    x = np.array([[0.1, 0.2], [0.0, 0.05]])
    hot, _ = apply_imperfections(circuit, {"kind": "temperature", "temperature_c": 25.0})
    np.testing.assert_allclose(simulate(hot, x).outputs_v, simulate(circuit, x).outputs_v, rtol=1e-12)


@pytest.mark.parametrize("temperature_c", [-20.0, 55.0, 100.0])
def test_wire_resistance_follows_the_linear_tcr_law(temperature_c):
    hot, record = apply_temperature(tiny_circuit(r_wire=1.5), temperature_c)
    expected = 1.5 * (1.0 + 0.0039 * (temperature_c - 25.0))
    assert hot.layers[0].r_word_ohm == pytest.approx(expected, rel=1e-12)
    assert hot.layers[0].r_bit_ohm == pytest.approx(expected, rel=1e-12)
    assert WireThermalModel(tcr_per_k=0.0043).factor(125.0) == pytest.approx(1.43)


def test_reram_activated_states_follow_arrhenius_and_metallic_states_the_linear_law():
    model = ReRAMThermalModel(activation_energy_ev=0.1, metallic_tcr_per_k=2e-3, g_activated_s=1e-6,
                              g_metallic_s=1e-4)
    t0, t1 = 298.15, 373.15
    low = model.conductance(np.array([1e-6, 5e-7]), 100.0)
    np.testing.assert_allclose(low / np.array([1e-6, 5e-7]), math.exp(-0.1 / K_EV * (1 / t1 - 1 / t0)), rtol=1e-9)
    high = model.conductance(np.array([1e-4, 3e-4]), 100.0)
    np.testing.assert_allclose(high / np.array([1e-4, 3e-4]), 1.0 / (1.0 + 2e-3 * 75.0), rtol=1e-12)


def test_reram_temperature_coefficient_changes_sign_with_state_and_matches_the_derivative():
    model = ReRAMThermalModel()
    states = np.geomspace(1e-6, 1e-4, 9)
    tc = model.temperature_coefficient(states)
    assert tc[0] > 0 > tc[-1]  # activated low states warm up into higher conductance, metallic ones drop
    assert np.all(np.diff(tc) < 0)
    # The analytic coefficient equals a centred finite difference of the model itself.
    h = 1e-3
    numeric = (np.log(model.factor(states, 25.0 + h)) - np.log(model.factor(states, 25.0 - h))) / (2 * h)
    np.testing.assert_allclose(tc, numeric, rtol=1e-6)


def test_reram_states_with_their_own_activation_energies():
    """With a slope, each activated state follows Arrhenius at its own energy; the ratio of two states then moves."""
    model = ReRAMThermalModel(activation_energy_ev=0.2, activation_energy_slope_ev_per_decade=-0.05,
                              g_activated_s=1e-7, g_metallic_s=1e-3)
    states = np.array([1e-7, 1e-6, 1e-5])
    np.testing.assert_allclose(model.activation_energy(states), [0.2, 0.15, 0.1], rtol=1e-12)
    t0, t1 = 298.15, 373.15
    m = model.metallic_fraction(states)
    expected = m / (1 + model.metallic_tcr_per_k * 75) + (1 - m) * np.exp(-np.array([0.2, 0.15, 0.1]) / K_EV * (1 / t1 - 1 / t0))
    np.testing.assert_allclose(model.factor(states, 100.0), expected, rtol=1e-9)
    shared = ReRAMThermalModel(activation_energy_ev=0.2, g_activated_s=1e-7, g_metallic_s=1e-3)
    # Two purely activated states (below g_activated_s) keep their ratio when they share one energy...
    low = np.array([2e-8, 8e-8])
    assert np.ptp(shared.factor(low, 100.0)) == pytest.approx(0.0, abs=1e-15)
    # ...and the default model is unchanged by the new parameter.
    np.testing.assert_allclose(ReRAMThermalModel(activation_energy_slope_ev_per_decade=0.0).factor(states, 80.0),
                               ReRAMThermalModel().factor(states, 80.0), rtol=0)
    h = 1e-3
    numeric = (np.log(model.factor(states, 25.0 + h)) - np.log(model.factor(states, 25.0 - h))) / (2 * h)
    np.testing.assert_allclose(model.temperature_coefficient(states), numeric, rtol=1e-6)
    with pytest.raises(ValueError, match="activation_energy_slope_ev_per_decade"):
        ReRAMThermalModel(activation_energy_slope_ev_per_decade=3.0)


def test_eflash_matches_the_subthreshold_formula_with_explicit_gate_and_threshold_voltages():
    # An independent evaluation of I = I0 exp((Vg - Vt) / (n kT/q)) for cells of chosen Vt.
    n, i0, vg, v_read = 1.4, 1e-7, 1.0, 0.1
    vt = np.array([1.0, 1.1, 1.25, 1.4])
    t0, t1 = 298.15, 358.15
    i_ref = i0 * np.exp((vg - vt) / (n * K_EV * t0))
    i_hot = i0 * np.exp((vg - vt) / (n * K_EV * t1))
    model = EFlashThermalModel(slope_factor=n, g_threshold_s=i0 / v_read)
    np.testing.assert_allclose(model.conductance(i_ref / v_read, 85.0), i_hot / v_read, rtol=1e-9)
    # With no threshold shift and no mobility term, G(T) = G_th (G_ref/G_th)^(T_ref/T).
    g_th = i0 / v_read
    np.testing.assert_allclose(model.conductance(i_ref / v_read, 85.0), g_th * (i_ref / i0) ** (t0 / t1), rtol=1e-9)


def test_eflash_threshold_shift_and_mobility_terms():
    n, g_th = 1.5, 1e-4
    model = EFlashThermalModel(slope_factor=n, g_threshold_s=g_th, vt_tc_v_per_k=-1e-3, mobility_exponent=-1.5)
    g_ref = np.array([1e-6, 1e-5])
    t0, t1 = 298.15, 348.15
    overdrive = n * K_EV * t0 * np.log(g_ref / g_th) + 1e-3 * (t1 - t0)
    expected = g_th * (t1 / t0) ** -1.5 * np.exp(overdrive / (n * K_EV * t1))
    np.testing.assert_allclose(model.conductance(g_ref, 75.0), expected, rtol=1e-9)
    h = 1e-3
    numeric = (np.log(model.factor(g_ref, 25.0 + h)) - np.log(model.factor(g_ref, 25.0 - h))) / (2 * h)
    np.testing.assert_allclose(model.temperature_coefficient(g_ref), numeric, rtol=1e-6)


def test_eflash_deep_subthreshold_states_move_most_and_the_threshold_state_stays():
    circuit = tiny_circuit()
    hot, record = apply_imperfections(circuit, {"kind": "temperature", "temperature_c": 100, "technology": "eflash"})
    ratio = hot.layers[0].conductance / circuit.layers[0].conductance
    g = circuit.layers[0].conductance
    assert np.all(ratio[g == 1e-4] == pytest.approx(1.0))
    assert ratio[g == 1e-6].min() > ratio[g == 1e-5].max() > 1.0
    assert record["technology"] == "eflash" and record["conductance_factor_max"] == pytest.approx(ratio.max())


def test_feedback_resistor_tcr_and_temperature_metadata():
    circuit = tiny_circuit()
    hot, record = apply_imperfections(circuit, {"kind": "temperature", "temperature_c": 75, "feedback_tcr_per_k": 1e-3})
    assert hot.layers[0].neuron.feedback_resistance_ohm == pytest.approx(1e4 * 1.05)
    assert hot.metadata["temperature_c"] == 75.0
    assert record["feedback_factor"] == pytest.approx(1.05)


@pytest.mark.parametrize("spec, message", [
    ({"kind": "temperature"}, "temperature_c is required"),
    ({"kind": "temperature", "temperature_c": 50, "technology": "pcm"}, "technology='pcm'"),
    ({"kind": "temperature", "temperature_c": 50, "slope_factor": 1.5}, "unknown parameter"),
    ({"kind": "temperature", "temperature_c": -300}, "temperature_c=-300"),
    ({"kind": "temperature", "temperature_c": 50, "g_metallic_s": 1e-7}, "g_metallic_s"),
])
def test_bad_temperature_specs_are_refused_with_a_clear_message(spec, message):
    with pytest.raises(ValueError, match=message):
        apply_imperfections(tiny_circuit(), spec)
