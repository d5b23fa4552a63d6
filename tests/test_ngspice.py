"""The ngspice engine: hand-solved circuits, the ideal limit, agreement with the nodal engine, errors."""

from __future__ import annotations

import json
import math
import os
import stat

import numpy as np
import pytest
from typer.testing import CliRunner

from neurodtco.circuit import Circuit, Layer, NeuronModel
from neurodtco.cli import app
from neurodtco.data import to_voltages
from neurodtco.devices import GapReRAMCell, LinearCell
from neurodtco.engines import get_engine, simulate
from neurodtco.engines.ngspice import NgspiceEngine, read_rawfile
from neurodtco.mapping import MappingConfig, map_network, map_weights


def two_path_circuit(cell, gain: float, r_word: float, r_bit: float, saturation_v=None) -> Circuit:
    """One neuron whose two columns are single series paths: solvable by hand.

    Column 0 holds one cell in the input row, column 1 one cell in the bias row; every other
    cell is open, so each column's current flows through one chain of wire segments and a cell.
    """
    g = np.array([[50e-6, 0.0], [0.0, 20e-6]])
    neuron = NeuronModel(feedback_resistance_ohm=7e3, difference_gain=2.0, open_loop_gain=gain,
                         saturation_v=saturation_v)
    layer = Layer(conductance=g, plus_columns=np.array([0]), minus_columns=np.array([1]), neuron=neuron,
                  bias_voltage_v=0.15, r_word_ohm=r_word, r_bit_ohm=r_bit)
    return Circuit(layers=(layer,), cell=cell)


def test_hand_solved_linear_circuit_with_wires_and_finite_gain():
    r_w, r_b, a_gain, r_f, r = 40.0, 60.0, 500.0, 7e3, 2.0
    circuit = two_path_circuit(LinearCell(), a_gain, r_w, r_b, saturation_v=0.12)
    x = np.array([[0.1], [0.2], [-0.2]])
    res = simulate(circuit, x, engine="ngspice", return_nodes=True, return_power=True)
    v, vb = x[:, 0], 0.15
    # series path of column 0: one word segment, the cell, two bit segments (rows 0->1, row 1->neuron)
    r0 = r_w + 1 / 50e-6 + 2 * r_b
    # column 1: two word segments (bias row to its cell in column 1), the cell, one bit segment
    r1 = 2 * r_w + 1 / 20e-6 + r_b
    # op-amp: t = -A n and KCL at n: (v - n)/R + (t - n)/R_f = 0
    t0 = -r_f * v / (r0 * (1 + 1 / a_gain) + r_f / a_gain)
    t1 = -r_f * vb / (r1 * (1 + 1 / a_gain) + r_f / a_gain)
    n0, n1 = -t0 / a_gain, -t1 / a_gain
    i0, i1 = (v - n0) / r0, (vb - n1) / r1
    d = r / (1 + (1 + r) / a_gain) * (t1 - t0)
    nodes = res.nodes[0]
    np.testing.assert_allclose(nodes["tia_out"][:, 0], t0, rtol=1e-11)
    np.testing.assert_allclose(nodes["tia_out"][:, 1], t1, rtol=1e-11)
    np.testing.assert_allclose(nodes["neuron_in"], np.stack([n0, np.broadcast_to(n1, n0.shape)], 1), rtol=1e-9)
    np.testing.assert_allclose(nodes["difference_out"][:, 0], d, rtol=1e-11)
    np.testing.assert_allclose(res.outputs_v[:, 0], np.clip(d, -0.12, 0.12), rtol=1e-11)
    assert np.any(np.abs(d) > 0.12) and np.any(np.abs(d) < 0.12)  # both sides of the clamp
    # every node along the two paths
    np.testing.assert_allclose(nodes["word"][:, 0, 0], v - r_w * i0, rtol=1e-11)
    np.testing.assert_allclose(nodes["word"][:, 0, 1], v - r_w * i0, rtol=1e-11)  # dead end: no current
    np.testing.assert_allclose(nodes["bit"][:, 0, 0], n0 + 2 * r_b * i0, rtol=1e-9)
    np.testing.assert_allclose(nodes["bit"][:, 1, 0], n0 + r_b * i0, rtol=1e-9)
    np.testing.assert_allclose(nodes["word"][:, 1, 1], vb - 2 * r_w * i1, rtol=1e-11)
    np.testing.assert_allclose(res.power_w, v * i0 + vb * i1, rtol=1e-10)


def test_hand_solved_gap_cell_with_ideal_virtual_ground():
    cell = GapReRAMCell()
    circuit = two_path_circuit(cell, math.inf, 0.0, 0.0)
    x = np.array([[0.05], [0.2], [0.31]])
    res = simulate(circuit, x, engine="ngspice", return_nodes=True)
    i0 = 50e-6 * cell.shape_factor * np.sinh(x[:, 0] / cell.v0_v)
    i1 = 20e-6 * cell.shape_factor * np.sinh(0.15 / cell.v0_v)
    np.testing.assert_allclose(res.nodes[0]["tia_out"][:, 0], -7e3 * i0, rtol=1e-9)
    np.testing.assert_allclose(res.outputs_v[:, 0], 2.0 * 7e3 * (i0 - i1), rtol=1e-9)
    np.testing.assert_allclose(res.nodes[0]["neuron_in"], 0.0, atol=1e-15)  # the virtual ground
    # at the read voltage the chord conductance is the programmed one
    np.testing.assert_allclose(-res.nodes[0]["tia_out"][1, 0] / 7e3 / 0.2, 50e-6, rtol=1e-9)


@pytest.mark.parametrize("cell", ["linear", "gap"])
def test_ngspice_reduces_to_the_ideal_engine_without_wires(default_net, digits, cell):
    circuit = map_network(default_net, MappingConfig(cell=cell, r_word_ohm=0.0, r_bit_ohm=0.0))
    x = to_voltages(digits.x_test[:6])
    kw = dict(return_hidden=True, return_nodes=True, return_power=True)
    spice = simulate(circuit, x, engine="ngspice", **kw)
    ideal = simulate(circuit, x, engine="ideal", **kw)
    np.testing.assert_allclose(spice.outputs_v, ideal.outputs_v, rtol=0, atol=1e-9)
    for a, b in zip(spice.hidden_v, ideal.hidden_v):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)
    for a, b in zip(spice.nodes, ideal.nodes):
        for key in ("word", "bit", "neuron_in", "tia_out", "difference_out"):
            assert a[key].shape == b[key].shape
            np.testing.assert_allclose(a[key], b[key], rtol=0, atol=1e-9, err_msg=key)
    np.testing.assert_allclose(spice.power_w, ideal.power_w, rtol=1e-9)
    assert spice.info["ngspice_runs"] == 1


def small_network(cell: str, seed: int = 3) -> tuple[Circuit, np.ndarray]:
    """A 6-4-3 network with random weights, wires, finite gain and an input offset, and 4 inputs."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0, 1, (4, 6)), rng.normal(0, 1, (3, 4))]
    biases = [rng.normal(0, 0.2, 4), rng.normal(0, 0.2, 3)]
    config = MappingConfig(cell=cell, r_word_ohm=5.0, r_bit_ohm=3.0, open_loop_gain=300.0, offset_v=2e-3)
    return map_weights(weights, biases, config), rng.uniform(0, 0.2, (4, 6))


def test_chunks_give_the_same_numbers_as_one_run():
    circuit, x = small_network("gap")
    one = simulate(circuit, x, engine=NgspiceEngine())
    chunked = simulate(circuit, x, engine=NgspiceEngine(chunk_size=3, jobs=2))
    assert one.info["ngspice_runs"] == 1 and chunked.info["ngspice_runs"] == 2
    # a different starting point for Newton moves the answer by rounding only
    np.testing.assert_allclose(one.outputs_v, chunked.outputs_v, rtol=0, atol=1e-12)


# -- the headline: nodal and ngspice agree on the default network -------------------------------

AGREEMENT_V = 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["linear", "gap"])
def test_nodal_and_ngspice_agree_on_the_default_network(default_net, digits, cell):
    config = MappingConfig(cell=cell, r_word_ohm=1.0, r_bit_ohm=1.0, open_loop_gain=1e4)
    circuit = map_network(default_net, config)
    x = to_voltages(digits.x_test[:20])
    kw = dict(return_hidden=True, return_power=True)
    nodal = simulate(circuit, x, engine="nodal", **kw)
    spice = simulate(circuit, x, engine="ngspice", **kw)
    ideal = simulate(circuit, x, engine="ideal")
    worst = np.max(np.abs(nodal.outputs_v - spice.outputs_v))
    assert worst < AGREEMENT_V, f"largest output difference {worst:.3g} V"
    for a, b in zip(nodal.hidden_v, spice.hidden_v):
        assert np.max(np.abs(a - b)) < AGREEMENT_V
    np.testing.assert_allclose(nodal.power_w, spice.power_w, rtol=1e-6)
    # the comparison is not vacuous: wires and the finite gain move the outputs far more than 1 uV
    assert np.max(np.abs(ideal.outputs_v - spice.outputs_v)) > 1000 * AGREEMENT_V


@pytest.mark.parametrize("cell", ["linear", "gap"])
def test_nodal_and_ngspice_agree_on_every_node_of_a_small_network(cell):
    circuit, x = small_network(cell)
    kw = dict(return_hidden=True, return_nodes=True, return_power=True)
    nodal = simulate(circuit, x, engine="nodal", **kw)
    spice = simulate(circuit, x, engine="ngspice", **kw)
    for a, b in zip(nodal.nodes, spice.nodes):
        for key in ("word", "bit", "neuron_in", "tia_out", "difference_out"):
            assert a[key].shape == b[key].shape, key
            np.testing.assert_allclose(a[key], b[key], rtol=0, atol=AGREEMENT_V, err_msg=key)
    np.testing.assert_allclose(nodal.power_w, spice.power_w, rtol=1e-6)


# -- errors carry ngspice's own words ----------------------------------------------------------


def test_missing_ngspice_binary_is_a_clear_error(monkeypatch, tmp_path, default_circuit):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="ngspice executable 'ngspice' was not found"):
        simulate(default_circuit, np.zeros((1, 64)), engine="ngspice")


def test_broken_netlist_reports_ngspice_message():
    text = "* broken\nvidx idx 0 0\nrx a b foo\n.dc vidx 0 1 1\n.control\nrun\nwrite out.raw\nquit\n.endc\n.end\n"
    with pytest.raises(RuntimeError, match=r"(?s)ngspice.*unknown parameter \(foo\)"):
        NgspiceEngine().run_netlist(text, 2)


def test_sweep_that_stops_converging_is_an_error_not_a_short_result():
    # a node equation with real solutions only while 2 - idx >= 0.75: the third point has none
    text = ("* no solution at idx=2\nvidx idx 0 0\nb1 a 0 i=1+v(a)*v(a)-(2-v(idx))\nr1 a 0 1\n"
            ".dc vidx 0 2 1\n.control\nset filetype=ascii\nrun\nwrite out.raw\nquit\n.endc\n.end\n")
    with pytest.raises(RuntimeError, match=r"(?s)solved 2 of 3 input vectors.*trouble with node"):
        NgspiceEngine().run_netlist(text, 3, ["v(a)"])


def fake_ngspice(tmp_path, script: str) -> str:
    path = tmp_path / "fake-ngspice"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_unparsable_rawfile_is_a_value_error(tmp_path, default_circuit):
    exe = fake_ngspice(tmp_path, "echo 'Title: x' > out.raw\necho 'not a rawfile' >> out.raw\necho 'fake ngspice says hi'\n")
    with pytest.raises(ValueError, match=r"(?s)cannot read ngspice's rawfile.*fake ngspice says hi"):
        simulate(default_circuit, np.zeros((1, 64)), engine=NgspiceEngine(executable=exe))


def test_failing_ngspice_exit_code_is_reported(tmp_path, default_circuit):
    exe = fake_ngspice(tmp_path, "echo 'Error: out of licences' >&2\nexit 3\n")
    with pytest.raises(RuntimeError, match=r"(?s)exited with code 3.*out of licences"):
        simulate(default_circuit, np.zeros((1, 64)), engine=NgspiceEngine(executable=exe))


def test_rawfile_reader_and_engine_options():
    text = ("Title: t\nPlotname: DC transfer characteristic\nFlags: real\nNo. Variables: 2\nNo. Points: 2\n"
            "Variables:\n\t0\tv(v-sweep)\tvoltage\n\t1\tV(A)\tvoltage\nValues:\n 0\t0.0\n\t1.5e-3\n\n 1\t1.0\n\t-2.0\n")
    data = read_rawfile(text)
    np.testing.assert_array_equal(data["v(a)"], [1.5e-3, -2.0])
    with pytest.raises(ValueError, match="Values"):
        read_rawfile("Title: t\n")
    with pytest.raises(ValueError, match="chunk_size"):
        get_engine("ngspice", chunk_size=0)
    with pytest.raises(ValueError, match="jobs"):
        get_engine("ngspice", jobs=0)


# -- CLI --------------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_netlist_writes_both_formats(tmp_path, default_net):
    for fmt, name in (("spice", "net.cir"), ("spectre", "net.scs")):
        out = tmp_path / name
        result = runner.invoke(app, ["netlist", "--format", fmt, "--out", str(out), "--n-images", "3",
                                     "--cell", "gap", "--gain", "1e4", "--json"])
        assert result.exit_code == 0, result.output
        payload = json.loads(result.stdout.strip().splitlines()[-1])
        assert payload["format"] == fmt and payload["n_images"] == 3 and out.stat().st_size == payload["bytes"]
    assert ".dc vidx 0 2 1" in (tmp_path / "net.cir").read_text()
    assert "bsource i=" in (tmp_path / "net.scs").read_text()
    bad = runner.invoke(app, ["netlist", "--format", "verilog", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "verilog" in bad.output


def test_cli_verify_reports_agreement(default_net):
    result = runner.invoke(app, ["verify", "--n-images", "3", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["n_images"] == 3 and payload["agree"] and payload["predictions_agree"]
    assert 0 <= payload["max_abs_difference_v"] < 1e-6
    assert payload["timings"]["nodal_s"] > 0 and payload["timings"]["ngspice_s"] > 0
    assert os.environ.get("PATH")  # the PATH monkeypatch above did not leak
