"""Transistor-level periphery: the op-amp neuron in FreePDK45, its characterization and behavioural model.

Tests under ``needs_pdk`` run ngspice on the BSIM4 models (``make test`` installs them); the others
check the data file, the extraction arithmetic and the behavioural model without a simulator.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from neurodtco.circuit import NeuronModel
from neurodtco.engines import simulate
from neurodtco.mapping import map_weights
from neurodtco.periphery import (Characterization, NeuronCharacteristics, NeuronDesign, OpAmpDesign,
                                 activation_model, apply_characterization,
                                 load_characterization, mapping_from_characterization, neuron_from_characterization,
                                 opamp_subckt, pdk_available)
from neurodtco.periphery.characterize import _unity_gain, fit_gain_offset
from neurodtco.periphery.model import difference_stage_load_s, with_difference_gain
from neurodtco.periphery.opamp import neuron_subckt
from neurodtco.periphery.spice import ngspice_available, parse_ascii_raw

needs_pdk = pytest.mark.skipif(not (pdk_available() and ngspice_available()),
                               reason="needs ngspice and the FreePDK45 models (pip install -e .[pdk])")


@pytest.fixture(scope="module")
def builtin() -> Characterization:
    return load_characterization()


def tiny_circuit(char: Characterization, seed: int = 0):
    """A 6-4-3 network with seeded random weights, mapped for the characterized neuron."""
    rng = np.random.default_rng(seed)
    # large enough that some hidden neurons saturate at the op-amp swing
    weights = [rng.normal(0, 3.0, (4, 6)), rng.normal(0, 1.0, (3, 4))]
    biases = [rng.normal(0, 0.3, 4), rng.normal(0, 0.3, 3)]
    config = mapping_from_characterization(char)
    circuit = map_weights(weights, biases, config)
    circuit = with_difference_gain(circuit, circuit.n_layers - 1, 1.0)
    inputs = rng.uniform(0.0, config.v_read_v, (3, 6))
    return circuit, inputs


# --- without a simulator -------------------------------------------------------------------------

def test_design_validation_names_the_bad_value():
    with pytest.raises(ValueError, match="l_input_m"):
        OpAmpDesign(l_input_m=10e-9)
    with pytest.raises(ValueError, match="vdd_v"):
        OpAmpDesign(vdd_v=-0.6)
    with pytest.raises(ValueError, match="input_model"):
        OpAmpDesign(input_model="NMOS_VTG")
    with pytest.raises(ValueError, match="difference_gain"):
        NeuronDesign(difference_gain=0.0)


def test_opamp_subcircuit_has_eight_transistors_on_its_ports():
    text = opamp_subckt(OpAmpDesign(), name="amp")
    lines = text.splitlines()
    assert lines[0] == ".subckt amp inp inn out vdd vss" and lines[-1] == ".ends amp"
    devices = [ln for ln in lines if ln.startswith("m")]
    assert len(devices) == OpAmpDesign().n_transistors == 8
    # the input pair is the design's low-Vt PMOS with its bulk on its own source
    assert any(ln.startswith("m2 x2 inp tail tail PMOS_VTL") for ln in devices)
    assert all("rgatemod=0" in ln for ln in devices)
    assert all("rgatemod" not in ln for ln in opamp_subckt(OpAmpDesign(resistance_networks=True)).splitlines())


def test_gain_and_offset_fit_recovers_a_known_amplifier():
    gain, offset = 2500.0, -37e-6
    out = np.linspace(-0.45, 0.45, 91)
    v_inn = offset - out / gain  # out = A (offset - v_inn)
    a, vos, rms = fit_gain_offset(v_inn, out, fit_range_v=0.25)
    assert a == pytest.approx(gain, rel=1e-9)
    assert vos == pytest.approx(offset, abs=1e-12)
    assert rms < 1e-12


def test_activation_model_is_the_circuit_semantics():
    neuron = NeuronModel(feedback_resistance_ohm=1e3, difference_gain=16.0, open_loop_gain=3000.0, saturation_v=0.47)
    x = np.linspace(-0.06, 0.06, 25)
    expected = neuron.activate(neuron.closed_loop_difference_gain * x)
    np.testing.assert_allclose(activation_model(x, 16.0, 3000.0, 0.47), expected, rtol=0, atol=1e-15)


def test_unity_gain_frequency_and_phase_margin_of_a_one_pole_amplifier():
    a0, fp = 1e4, 1e3
    f = np.logspace(0, 9, 400)
    h = a0 / (1 + 1j * f / fp)
    dc, fu, pm = _unity_gain(f, h)
    assert dc == pytest.approx(a0, rel=1e-6)
    assert fu == pytest.approx(fp * math.sqrt(a0 ** 2 - 1), rel=2e-3)  # |A(fu)| = 1
    assert pm == pytest.approx(90.0 + math.degrees(math.atan(fp / fu)), abs=0.2)


def test_ascii_rawfile_parser_reads_real_and_complex_plots():
    real = ("Title: t\nDate: x\nPlotname: DC\nFlags: real\nNo. Variables: 2\nNo. Points: 2\nVariables:\n"
            "\t0\tv(v-sweep)\tvoltage\n\t1\tv(out)\tvoltage\nValues:\n 0\t0.0\n\t1.5\n 1\t0.1\n\t-2.5e-3\n")
    data = parse_ascii_raw(real)
    np.testing.assert_array_equal(data["v(out)"], [1.5, -2.5e-3])
    cplx = real.replace("Flags: real", "Flags: complex").replace("\t1.5", "\t1.5,2").replace("\t-2.5e-3", "\t0,-1")
    cplx = cplx.replace(" 0\t0.0", " 0\t0.0,0").replace(" 1\t0.1", " 1\t0.1,0")
    assert parse_ascii_raw(cplx)["v(out)"][0] == complex(1.5, 2)


def test_builtin_characterization_covers_corners_and_temperatures(builtin):
    assert builtin.corners == ("NOM", "FF", "SS")
    for corner in builtin.corners:
        assert builtin.temperatures(corner) == (25.0, 50.0, 75.0, 100.0)
    design = builtin.design.opamp
    for p in builtin.points:
        # sanity against the physics: gain well above the 1 + r noise gain, a small systematic
        # offset, and an output swing that stays inside the +-0.5 V rails
        assert p.open_loop_gain > 20 * (1 + builtin.design.difference_gain)
        assert abs(p.offset_v) < 1e-3
        assert 0.3 < p.swing_positive_v < design.vdd_v and 0.3 < p.swing_negative_v < -design.vss_v
        assert p.details["loop"]["phase_margin_deg"] > 45.0
        # heavier loads lower the gain (the second stage's gain is gm / (g_out + G_load))
        assert list(p.gain_at_load) == sorted(p.gain_at_load, reverse=True)
    assert builtin.activation_v == pytest.approx(builtin.point("NOM", 25.0).saturation_at(
        1 / builtin.bench.nominal_load_ohm + 1 / (builtin.design.difference_gain * builtin.design.r_difference_in_ohm)),
        abs=6e-4)


def test_characterization_round_trips_through_json(builtin, tmp_path):
    path = builtin.save(tmp_path / "c.json")
    again = load_characterization(path)
    assert again.design == builtin.design and again.bench == builtin.bench
    assert again.activation_v == builtin.activation_v
    for a, b in zip(again.points, builtin.points):
        assert (a.corner, a.temp_c) == (b.corner, b.temp_c)
        assert a.open_loop_gain == pytest.approx(b.open_loop_gain, rel=1e-5)
    data = json.loads(path.read_text())
    data["format"] = "something-else"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="format"):
        load_characterization(path)
    with pytest.raises(FileNotFoundError, match="characterize"):
        load_characterization(tmp_path / "missing.json")


def test_points_between_temperatures_interpolate_and_outside_are_refused(builtin):
    lo, hi = builtin.point("SS", 25.0), builtin.point("SS", 50.0)
    mid = builtin.point("SS", 37.5)
    assert min(lo.saturation_v, hi.saturation_v) <= mid.saturation_v <= max(lo.saturation_v, hi.saturation_v)
    assert 1 / mid.open_loop_gain == pytest.approx(0.5 * (1 / lo.open_loop_gain + 1 / hi.open_loop_gain))
    with pytest.raises(ValueError, match="outside the characterized range"):
        builtin.point("SS", 125.0)
    with pytest.raises(ValueError, match="corner"):
        builtin.point("TT", 25.0)


def test_gain_interpolates_linearly_in_one_over_a():
    p = NeuronCharacteristics(corner="NOM", temp_c=25.0, open_loop_gain=2000.0, offset_v=0.0, saturation_v=0.45,
                              swing_positive_v=0.44, swing_negative_v=0.46, load_conductance_s=(1e-4, 1e-3),
                              gain_at_load=(8000.0, 1000.0), offset_at_load_v=(0.0, 1e-5),
                              swing_positive_at_load_v=(0.49, 0.39), swing_negative_at_load_v=(0.49, 0.47))
    g = 5.5e-4
    assert 1 / p.open_loop_gain_at(g) == pytest.approx(0.5 * (1 / 8000 + 1 / 1000))
    assert p.saturation_at(g) == pytest.approx(0.5 * (0.44 + 0.48))
    assert p.open_loop_gain_at(1.0) == pytest.approx(1000.0)  # outside the table: the nearest load


def test_neuron_and_mapping_from_characterization(builtin):
    neuron = neuron_from_characterization(builtin, "FF", 100.0, feedback_resistance_ohm=2e3)
    p = builtin.point("FF", 100.0)
    assert neuron.difference_gain == builtin.design.difference_gain
    assert neuron.saturation_v == pytest.approx(p.saturation_at(
        1 / builtin.bench.nominal_load_ohm + 1 / (builtin.design.difference_gain * builtin.design.r_difference_in_ohm)))
    config = mapping_from_characterization(builtin)
    assert config.activation_v == builtin.activation_v and config.difference_gain == builtin.design.difference_gain
    assert config.output_swing_v is not None and config.output_swing_v < builtin.design.opamp.vdd_v


def test_apply_characterization_changes_the_op_amps_not_the_resistors(builtin):
    circuit, _ = tiny_circuit(builtin)
    ss = apply_characterization(circuit, builtin, "SS", 100.0)
    for l, (a, b) in enumerate(zip(circuit.layers, ss.layers)):
        assert b.neuron.feedback_resistance_ohm == a.neuron.feedback_resistance_ohm
        assert b.neuron.difference_gain == a.neuron.difference_gain
        g = difference_stage_load_s(builtin, circuit, l)
        assert b.neuron.open_loop_gain == pytest.approx(builtin.point("SS", 100.0).open_loop_gain_at(g))
    assert ss.metadata["periphery"] == {"characterization": "in-memory", "corner": "SS", "temp_c": 100.0}


def test_difference_gain_rebalance_keeps_the_ideal_outputs(builtin):
    circuit, x = tiny_circuit(builtin)
    moved = with_difference_gain(circuit, 0, 4.0)
    np.testing.assert_allclose(simulate(moved, x).outputs_v, simulate(circuit, x).outputs_v, rtol=1e-12, atol=1e-15)
    assert moved.layers[0].neuron.feedback_resistance_ohm == pytest.approx(
        circuit.layers[0].neuron.feedback_resistance_ohm * circuit.layers[0].neuron.difference_gain / 4.0)


# --- with ngspice and the FreePDK45 models -------------------------------------------------------

@pytest.fixture(scope="module")
def nom25():
    from neurodtco.periphery import characterize_point

    return characterize_point(NeuronDesign(), "NOM", 25.0)


@needs_pdk
def test_characterization_at_nom_25c_is_sane_and_self_consistent(nom25, builtin):
    design = NeuronDesign()
    r = design.difference_gain
    p = nom25
    # two independent benches see the same input offset: the inverting amplifier's fit and the
    # unity-gain follower at zero common mode
    vcm = np.array(p.details["common_mode"]["vcm_v"])
    follower = float(np.interp(0.0, vcm, p.details["common_mode"]["offset_v"]))
    assert abs(p.offset_v) < 1e-4
    assert follower == pytest.approx(p.offset_v, abs=5e-6)
    # the offset stays put over the difference stage's input common-mode range
    assert p.details["common_mode"]["max_offset_shift_within_0p2v_v"] < 3e-4
    # swing: below the rails, and lower with a heavier load (the output stage is class A)
    assert 0.4 < p.swing_positive_v < design.opamp.vdd_v
    assert 0.4 < p.swing_negative_v < -design.opamp.vss_v
    assert p.swing_positive_at_load_v[0] > p.swing_positive_at_load_v[-1]
    # the difference stage's measured small-signal gain is r / (1 + (1 + r) / A)
    act = p.details["activation"]
    assert act["small_signal_gain"] == pytest.approx(r / (1 + (1 + r) / act["open_loop_gain"]), rel=3e-3)
    assert act["model_max_error_linear_v"] < 5e-3
    assert p.details["loop"]["phase_margin_deg"] > 60.0
    # the shipped file was made by the same code on the same models
    ref = builtin.point("NOM", 25.0)
    assert p.open_loop_gain == pytest.approx(ref.open_loop_gain, rel=1e-3)
    assert p.saturation_v == pytest.approx(ref.saturation_v, abs=1e-4)


@needs_pdk
def test_transistor_tia_matches_the_finite_gain_formula(nom25):
    """t = [V_os (1 + G R_f) - I R_f] / (1 + (1 + G R_f) / A) with the extracted A and V_os."""
    from neurodtco.periphery import pdk
    from neurodtco.periphery.opamp import supply_lines
    from neurodtco.periphery.spice import Analysis, run_analyses

    design = OpAmpDesign()
    r_f, g_col = 5e3, 3e-4
    body = "\n".join([pdk.lib_line("NOM"), ".temp 25", opamp_subckt(design), supply_lines(design),
                      "iin 0 n dc 0", f"rf t n {r_f}", f"rcol n 0 {1 / g_col}", "x1 0 n t vdd vss opamp",
                      ".nodeset v(t)=0"])
    res = run_analyses(body, [Analysis("tia", "dc iin -40u 40u 5u", ("v(t)", "v(n)"))],
                       options="reltol=1e-6 vntol=1e-9 abstol=1e-14")["tia"]
    current = np.real(res["i(i-sweep)"]) if "i(i-sweep)" in res else np.linspace(-40e-6, 40e-6, 17)
    t = np.real(res["v(t)"])
    a = nom25.open_loop_gain_at(1 / r_f)  # the TIA's output load is its feedback resistor
    noise_gain = 1 + g_col * r_f
    model = (nom25.offset_v * noise_gain - current * r_f) / (1 + noise_gain / a)
    np.testing.assert_allclose(t, model, rtol=0, atol=5e-4 * np.abs(current * r_f).max() + 2e-5)
    # and the finite gain is visible: the ideal -R_f I misses by about I R_f (1 + G R_f) / A
    assert np.abs(t + current * r_f).max() > 0.5 * np.abs(current * r_f).max() * noise_gain / a


@needs_pdk
def test_transistor_network_agrees_with_nodal_on_class_and_outputs(builtin):
    from neurodtco.periphery.network import compare_with_behavioural, simulate_transistor_network

    circuit, x = tiny_circuit(builtin)
    circuit = apply_characterization(circuit, builtin, "NOM", 25.0)
    agreement = compare_with_behavioural(circuit, x, builtin, "NOM", 25.0)
    assert agreement.all_same_class
    assert agreement.within_tolerance, agreement.summary()
    # each layer on its own (same inputs) stays within the activation's characterized model error
    limit = builtin.point("NOM", 25.0).details["activation"]["model_max_error_v"]
    assert max(agreement.local_max_v) < limit
    # the layer-by-layer solve (next array as resistive load) against one solve of the whole network
    whole = simulate_transistor_network(circuit, x[:1], builtin.design, "NOM", 25.0, characterization=builtin,
                                        mode="monolithic")
    np.testing.assert_allclose(whole.outputs_v, agreement.transistor.outputs_v[:1], rtol=0, atol=2e-4)


def test_accuracy_holds_across_corners_and_temperatures(default_net, digits, builtin):
    """The shipped design's claim: every corner and temperature stays within 2 points of the software network."""
    from neurodtco.periphery.study import corner_temperature_table, markdown_table

    rows = corner_temperature_table(default_net, digits, builtin, temps_c=(25.0, 100.0), defect=None)
    assert [(r.corner, r.temp_c) for r in rows] == [(c, t) for c in ("NOM", "FF", "SS") for t in (25.0, 100.0)]
    software = default_net.accuracy(digits.x_test, digits.y_test)
    for r in rows:
        assert abs(r.accuracy - software) <= 0.02, r
    # hotter op-amps have less gain and a lower clamp
    by = {(r.corner, r.temp_c): r for r in rows}
    for corner in ("NOM", "FF", "SS"):
        assert by[(corner, 100.0)].open_loop_gain < by[(corner, 25.0)].open_loop_gain
        assert by[(corner, 100.0)].saturation_v < by[(corner, 25.0)].saturation_v
    assert markdown_table(rows).count("\n") == len(rows) + 1


def test_characterize_command_refuses_an_unknown_corner(tmp_path):
    from typer.testing import CliRunner

    from neurodtco.cli import app

    result = CliRunner().invoke(app, ["characterize", "--corner", "TT", "--out", str(tmp_path / "c.json")])
    assert result.exit_code == 2
    assert "corner='TT'" in result.output and "NOM, FF, SS" in result.output


@needs_pdk
def test_characterize_command_writes_a_loadable_file(tmp_path):
    from typer.testing import CliRunner

    from neurodtco.cli import app

    out = tmp_path / "ss.json"
    result = CliRunner().invoke(app, ["characterize", "--corner", "SS", "--temp-c", "75", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    char = load_characterization(out)
    assert char.corners == ("SS",) and char.temperatures("SS") == (75.0,)
    assert payload["points"][0]["open_loop_gain"] == pytest.approx(char.point("SS", 75.0).open_loop_gain, rel=1e-5)


@needs_pdk
def test_transistor_engine_behind_the_engine_interface(builtin):
    from neurodtco.engines import get_engine

    circuit, x = tiny_circuit(builtin)
    circuit = apply_characterization(circuit, builtin, "FF", 50.0)
    result = simulate(circuit, x[:2], engine=get_engine("transistor", corner="FF", temp_c=50.0), return_hidden=True)
    nodal = simulate(circuit, x[:2], engine="nodal", return_hidden=True)
    assert result.engine == "transistor" and result.info["corner"] == "FF"
    np.testing.assert_array_equal(result.predictions(), nodal.predictions())
    np.testing.assert_allclose(result.outputs_v, nodal.outputs_v, rtol=0, atol=circuit.output_scale_v)
    assert len(result.hidden_v) == 1
    with pytest.raises(ValueError, match="node voltages"):
        simulate(circuit, x[:1], engine="transistor", return_nodes=True)
    with pytest.raises(ValueError, match="outside the characterized range"):
        get_engine("transistor", temp_c=150.0)


def tiled_tiny_circuit(char: Characterization, combine: str):
    """``tiny_circuit``'s network cut into 4 x 4 tiles: two row tiles in each layer."""
    from dataclasses import replace

    rng = np.random.default_rng(0)
    weights = [rng.normal(0, 3.0, (4, 6)), rng.normal(0, 1.0, (3, 4))]
    biases = [rng.normal(0, 0.3, 4), rng.normal(0, 0.3, 3)]
    config = replace(mapping_from_characterization(char), tile_rows=4, tile_cols=4, tile_combine=combine)
    circuit = with_difference_gain(map_weights(weights, biases, config), 1, 1.0)
    return circuit, rng.uniform(0.0, config.v_read_v, (3, 6))


def test_a_neuron_on_summing_tiles_has_a_tia_per_row_tile_and_one_difference_stage():
    design = NeuronDesign()
    one = neuron_subckt(design, 1e4, "n").splitlines()
    assert one[0] == ".subckt n cp cm out vdd vss" and sum(line.startswith("x") for line in one) == 3
    two = neuron_subckt(design, 1e4, "n", row_tiles=2).splitlines()
    assert two[0] == ".subckt n cp0 cp1 cm0 cm1 out vdd vss"
    assert sorted(line.split()[0] for line in two if line.startswith("x")) == ["xd", "xtm0", "xtm1", "xtp0", "xtp1"]
    # every TIA output reaches the difference stage through its own R1; R2 feedback and R2 to ground
    r1, r2 = design.r_difference_in_ohm, design.difference_gain * design.r_difference_in_ohm
    assert {line.split()[0]: float(line.split()[3]) for line in two if line.startswith("r1") or line.startswith("r2")} \
        == pytest.approx({"r1n0": r1, "r1n1": r1, "r2n": r2, "r1p0": r1, "r1p1": r1, "r2p": r2})
    with pytest.raises(ValueError, match="row_tiles=0 is not accepted"):
        neuron_subckt(design, 1e4, "n", row_tiles=0)


@needs_pdk
@pytest.mark.parametrize("combine", ["shared", "summing"])
def test_tiled_layers_with_transistor_neurons_agree_with_nodal(builtin, combine):
    """Shared tiles end on one TIA per column; summing tiles have a TIA per row tile, added by the
    difference stage. Either way the transistor-level network matches the behavioural one."""
    from neurodtco.periphery.network import compare_with_behavioural, transistor_netlist

    circuit, x = tiled_tiny_circuit(builtin, combine)
    assert all(layer.tiling.grid_shape[0] == 2 for layer in circuit.layers)
    circuit = apply_characterization(circuit, builtin, "NOM", 25.0)
    body = transistor_netlist(circuit, x[:1])
    tias = 2 if combine == "summing" else 1
    assert f"{(2 * tias + 1) * 7} op-amps" in body
    assert not any(line.startswith(("bs", "et", "ed", "ba")) for line in body.splitlines())
    agreement = compare_with_behavioural(circuit, x, builtin, "NOM", 25.0)
    assert agreement.all_same_class and agreement.within_tolerance, agreement.summary()
    assert max(agreement.local_max_v) < builtin.point("NOM", 25.0).details["activation"]["model_max_error_v"]
    assert agreement.transistor.info["gmin_fallbacks"] == 0  # the untiled twin's node voltages are good hints
    assert agreement.transistor.n_transistors == builtin.design.opamp.n_transistors * (2 * tias + 1) * 7


def test_the_periphery_registers_the_transistor_engine_itself():
    import subprocess
    import sys
    from pathlib import Path

    import neurodtco.engines as engines
    from neurodtco.periphery import TransistorEngine

    assert "transistor" in engines.engine_names() and engines._REGISTRY["transistor"] is TransistorEngine
    # The engines layer does not name the package above it: the name lives in the periphery.
    source = "".join(p.read_text() for p in Path(engines.__file__).parent.glob("*.py"))
    assert "transistor" not in source.lower() and "..periphery" not in source and "neurodtco.periphery" not in source
    # A fresh process that imports only neurodtco finds it (the characterization is read, nothing simulated).
    code = "import neurodtco as nd; e = nd.get_engine('transistor'); print(type(e).__module__, e.corner)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["neurodtco.periphery.engine", "NOM"]


def test_register_engine_refuses_a_taken_name_and_a_non_callable():
    from neurodtco.engines import IdealEngine, get_engine, register_engine

    register_engine("ideal", IdealEngine)  # the same factory again changes nothing
    assert type(get_engine("ideal")) is IdealEngine
    with pytest.raises(ValueError, match="engine name 'nodal' is already registered"):
        register_engine("nodal", IdealEngine)
    with pytest.raises(ValueError, match="must be callable"):
        register_engine("other", "IdealEngine")
    with pytest.raises(ValueError, match="unknown engine 'spectre'; choose one of .*'transistor'"):
        get_engine("spectre")
