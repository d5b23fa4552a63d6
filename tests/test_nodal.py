"""The nodal engine against independent truth: the ideal engine in its limit, a plain nodal solve
with explicit op-amp nodes, closed forms (finite-gain TIA, a gap cell behind a wire found by
brentq), Kirchhoff's current law and energy conservation on the whole default network."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.optimize import brentq
from typer.testing import CliRunner

from neurodtco import MappingConfig, map_network, simulate, to_voltages
from neurodtco.circuit import Circuit, Layer, NeuronModel
from neurodtco.devices import GapReRAMCell, LinearCell
from neurodtco.engines import get_engine
from neurodtco.engines._nodal import ArrayNetwork, factorize
from neurodtco.engines.nodal import ConvergenceError, NodalEngine, solve_layer


@pytest.fixture(scope="module")
def images(digits):
    """The 180 test images as read voltages."""
    return to_voltages(digits.x_test, 0.2)


def one_layer(g: np.ndarray, neuron: NeuronModel, r_word: float, r_bit: float, bias_v: float = 0.2) -> Layer:
    """A layer whose neurons read columns (0, 1), (2, 3), ..."""
    n = g.shape[1] // 2
    return Layer(conductance=g, plus_columns=np.arange(n) * 2, minus_columns=np.arange(n) * 2 + 1, neuron=neuron,
                 bias_voltage_v=bias_v, r_word_ohm=r_word, r_bit_ohm=r_bit)


def reference_layer(layer: Layer, inputs_v: np.ndarray) -> np.ndarray:
    """TIA outputs from plain nodal analysis with the op-amp outputs as unknowns (resistive wires).

    Unknowns per vector: every word node, every bit node, every neuron input n_j and every op-amp
    output t_j; rows: Kirchhoff at each node, and t_j = A (V_os - n_j) for each op-amp.
    """
    g, rows, cols = layer.conductance, layer.n_rows, layer.n_columns
    gw, gb = 1.0 / layer.r_word_ohm, 1.0 / layer.r_bit_ohm
    nm = layer.neuron
    w = lambda i, j: i * cols + j  # noqa: E731
    b = lambda i, j: rows * cols + i * cols + j  # noqa: E731
    n = lambda j: 2 * rows * cols + j  # noqa: E731
    t = lambda j: 2 * rows * cols + cols + j  # noqa: E731
    size = 2 * rows * cols + 2 * cols
    mat = np.zeros((size, size))

    def conductance(p: int, q: int, value: float) -> None:
        mat[p, p] += value
        mat[q, q] += value
        mat[p, q] -= value
        mat[q, p] -= value

    for i in range(rows):
        mat[w(i, 0), w(i, 0)] += gw  # driver segment; the driver voltage goes to the right-hand side
        for j in range(cols):
            conductance(w(i, j), b(i, j), g[i, j])
            if j + 1 < cols:
                conductance(w(i, j), w(i, j + 1), gw)
            conductance(b(i, j), b(i + 1, j) if i + 1 < rows else n(j), gb)
    for j in range(cols):
        # feedback resistor: Kirchhoff at n only (the op-amp output is a voltage source)
        mat[n(j), n(j)] += 1.0 / nm.feedback_resistance_ohm
        mat[n(j), t(j)] -= 1.0 / nm.feedback_resistance_ohm
        mat[t(j), t(j)] = 1.0
        mat[t(j), n(j)] = nm.open_loop_gain
    drive = layer.row_voltages(inputs_v)
    rhs = np.zeros((size, len(drive)))
    for i in range(rows):
        rhs[w(i, 0)] = gw * drive[:, i]
    for j in range(cols):
        rhs[t(j)] = nm.open_loop_gain * nm.offset_v
    x = np.linalg.solve(mat, rhs)
    return x[2 * rows * cols + cols:].T


# -- limits and independent solves --------------------------------------------------------------

@pytest.mark.parametrize("cell", ["linear", "gap"])
def test_ideal_wires_and_op_amps_reduce_to_the_ideal_engine(default_net, images, cell):
    circuit = map_network(default_net, MappingConfig(cell=cell, r_word_ohm=0.0, r_bit_ohm=0.0))
    nodal = simulate(circuit, images, engine="nodal", return_hidden=True)
    ideal = simulate(circuit, images, engine="ideal", return_hidden=True)
    np.testing.assert_allclose(nodal.outputs_v, ideal.outputs_v, rtol=0, atol=1e-12)
    for a, b in zip(nodal.hidden_v, ideal.hidden_v):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("gain, offset", [(1e4, 0.0), (300.0, 3e-3), (math.inf, -2e-3)])
def test_layer_matches_plain_nodal_analysis_with_op_amp_nodes(gain, offset):
    rng = np.random.default_rng(1)
    g = rng.uniform(1e-6, 1e-4, (7, 6))
    neuron = NeuronModel(feedback_resistance_ohm=20e3, difference_gain=2.0, open_loop_gain=gain, offset_v=offset)
    layer = one_layer(g, neuron, r_word=2.0, r_bit=3.0)
    x = rng.uniform(0, 0.2, (12, 6))
    sol, _ = solve_layer(LinearCell(), layer, x)
    tia = offset + sol.neuron_v - neuron.feedback_resistance_ohm * sol.collected_a
    if math.isinf(gain):
        gain_big = NeuronModel(feedback_resistance_ohm=20e3, open_loop_gain=1e15, offset_v=offset)
        expected = reference_layer(one_layer(g, gain_big, 2.0, 3.0), x)
        np.testing.assert_allclose(tia, expected, rtol=1e-9)
    else:
        np.testing.assert_allclose(tia, reference_layer(layer, x), rtol=1e-11, atol=1e-15)


@pytest.mark.parametrize("gain, offset", [(1e4, 1e-3), (math.inf, -2e-3)])
def test_affine_and_direct_solves_agree(default_net, images, gain, offset):
    """Outputs and power (the driver currents' affine map) take the layer's affine maps; node voltages
    (and the power from them) are solved directly, vector by vector."""
    circuit = map_network(default_net, MappingConfig(open_loop_gain=gain, offset_v=offset))
    folded = simulate(circuit, images, engine="nodal", return_hidden=True)
    assert folded.info["layers"][0]["method"] == "affine"
    with_power = simulate(circuit, images, engine="nodal", return_power=True)
    assert with_power.info["layers"][0]["method"] == "affine"
    parts = [simulate(circuit, images[k:k + 5], engine="nodal", return_power=True, return_hidden=True,
                      return_nodes=True) for k in range(0, 180, 5)]
    assert parts[0].info["layers"][0]["method"] == "direct"
    direct = np.concatenate([p.outputs_v for p in parts])
    # volts near 0 differ by rounding only: compare against the 0.2 V scale of the signals
    np.testing.assert_allclose(folded.outputs_v, direct, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(with_power.outputs_v, direct, rtol=1e-12, atol=1e-13)
    for k, hidden in enumerate(folded.hidden_v):
        np.testing.assert_allclose(hidden, np.concatenate([p.hidden_v[k] for p in parts]), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(with_power.power_w, np.concatenate([p.power_w for p in parts]), rtol=1e-12)


# -- closed forms --------------------------------------------------------------------------------

def lone_cell_layer(g: float, neuron: NeuronModel, r_word: float, r_bit: float) -> Layer:
    """2 x 2 array where only cell (0, 0) conducts: the plus column of neuron 0 sees one cell."""
    cond = np.zeros((2, 2))
    cond[0, 0] = g
    return one_layer(cond, neuron, r_word, r_bit, bias_v=0.0)


def test_finite_gain_tia_closed_form():
    """V -> r_w -> G -> two bit segments -> n; op-amp: t = A (V_os - n), R_f from t to n."""
    g, r_w, r_b, gain, rf, off, r = 5e-5, 3.0, 4.0, 2e3, 30e3, 2e-3, 1.5
    neuron = NeuronModel(feedback_resistance_ohm=rf, difference_gain=r, open_loop_gain=gain, offset_v=off)
    circuit = Circuit(layers=(lone_cell_layer(g, neuron, r_w, r_b),), cell=LinearCell())
    v = np.array([[0.0], [0.05], [0.2]])
    result = simulate(circuit, v, engine="nodal", return_nodes=True)
    series = r_w + 1.0 / g + 2.0 * r_b
    n_plus = (v[:, 0] / series + gain * off / rf) / (1.0 / series + (1.0 + gain) / rf)
    t_plus = gain * (off - n_plus)
    t_minus = gain * off / (1.0 + gain)  # the open column: only the feedback loop
    nodes = result.nodes[0]
    np.testing.assert_allclose(nodes["neuron_in"][:, 0], n_plus, rtol=1e-13)
    np.testing.assert_allclose(nodes["tia_out"][:, 0], t_plus, rtol=1e-12)
    np.testing.assert_allclose(nodes["tia_out"][:, 1], t_minus, rtol=1e-12)
    # the virtual ground is not 0: n - V_os = -t / A
    np.testing.assert_allclose(nodes["neuron_in"] - off, -nodes["tia_out"] / gain, rtol=1e-9)
    d = r / (1.0 + (1.0 + r) / gain) * (t_minus - t_plus)
    np.testing.assert_allclose(result.outputs_v[:, 0], d, rtol=1e-12)


@pytest.mark.parametrize("newton", ["chord", "full"])
def test_gap_cell_behind_a_wire_matches_a_scalar_root(newton):
    """I = G sf sinh((V - I R_s) / V0) with R_s the three wire segments, solved by brentq."""
    cell = GapReRAMCell()
    g, r_w, r_b, rf = 1e-4, 400.0, 300.0, 10e3
    neuron = NeuronModel(feedback_resistance_ohm=rf)
    circuit = Circuit(layers=(lone_cell_layer(g, neuron, r_w, r_b),), cell=cell)
    series = r_w + 2.0 * r_b
    volts = [0.02, 0.11, 0.2]
    result = simulate(circuit, np.array(volts)[:, None], engine=NodalEngine(newton=newton), return_nodes=True)
    for k, v in enumerate(volts):
        current = brentq(lambda i: i - cell.current(g, v - i * series), 0.0, v / series, xtol=1e-30, rtol=1e-15)
        assert -result.nodes[0]["tia_out"][k, 0] / rf == pytest.approx(current, rel=1e-12)


# -- conservation laws on the whole default network ----------------------------------------------

@pytest.mark.parametrize("cell", ["linear", "gap"])
def test_driver_currents_equal_collected_currents(default_net, images, cell):
    circuit = map_network(default_net, MappingConfig(cell=cell, open_loop_gain=1e4, offset_v=2e-3))
    x = images[:20]
    for layer in circuit.layers:
        sol, _ = solve_layer(circuit.cell, layer, x, power=True)
        np.testing.assert_allclose(sol.driver_a.sum(axis=1), sol.collected_a.sum(axis=1), rtol=1e-11)
        x = simulate(circuit.replace(layers=(layer,)), x, engine="nodal").outputs_v


@pytest.mark.parametrize("cell", ["linear", "gap"])
def test_power_is_heat_in_cells_and_wires_plus_what_enters_the_neurons(default_net, images, cell):
    """Energy conservation per inference: drivers deliver what cells and wires dissipate, plus
    the power I_col * n carried into the op-amps' inputs (n != 0 with finite gain and offset)."""
    config = MappingConfig(cell=cell, r_word_ohm=2.0, r_bit_ohm=3.0, open_loop_gain=1e4, offset_v=2e-3)
    circuit = map_network(default_net, config)
    x = images[:15]
    result = simulate(circuit, x, engine="nodal", return_power=True, return_nodes=True, return_hidden=True)
    inputs = [x] + result.hidden_v
    total = np.zeros(len(x))
    for layer, nodes, layer_in in zip(circuit.layers, result.nodes, inputs):
        word, bit, n = nodes["word"], nodes["bit"], nodes["neuron_in"]
        v_cell = word - bit
        total += np.sum(circuit.cell.current(layer.conductance, v_cell) * v_cell, axis=(1, 2))
        drive = layer.row_voltages(layer_in)
        word_line = np.concatenate([drive[:, :, None], word], axis=2)
        bit_line = np.concatenate([bit, n[:, None, :]], axis=1)
        total += np.sum(np.diff(word_line, axis=2) ** 2, axis=(1, 2)) / layer.r_word_ohm
        total += np.sum(np.diff(bit_line, axis=1) ** 2, axis=(1, 2)) / layer.r_bit_ohm
        collected = (bit[:, -1, :] - n) / layer.r_bit_ohm
        total += np.sum(collected * n, axis=1)
    np.testing.assert_allclose(result.power_w, total, rtol=1e-10)


def test_nodes_hidden_and_outputs_are_consistent(default_net, images):
    config = MappingConfig(open_loop_gain=1e4, offset_v=1e-3)
    circuit = map_network(default_net, config)
    result = simulate(circuit, images[:7], engine="nodal", return_nodes=True, return_hidden=True)
    assert len(result.nodes) == circuit.n_layers and len(result.hidden_v) == circuit.n_layers - 1
    for index, (layer, nodes) in enumerate(zip(circuit.layers, result.nodes)):
        assert nodes["word"].shape == nodes["bit"].shape == (7, layer.n_rows, layer.n_columns)
        assert nodes["neuron_in"].shape == nodes["tia_out"].shape == (7, layer.n_columns)
        out = layer.neuron.activate(nodes["difference_out"])
        expected = result.hidden_v[index] if index < circuit.n_layers - 1 else result.outputs_v
        np.testing.assert_array_equal(out, expected)
        np.testing.assert_allclose(nodes["neuron_in"] - 1e-3, -nodes["tia_out"] / 1e4, rtol=1e-8, atol=1e-15)


# -- nonlinear solve -----------------------------------------------------------------------------

@pytest.mark.parametrize("wire_ohm", [1.0, 60.0])
def test_chord_and_full_newton_agree(default_net, images, wire_ohm):
    circuit = map_network(default_net, MappingConfig(cell="gap", r_word_ohm=wire_ohm, r_bit_ohm=wire_ohm,
                                                     open_loop_gain=1e4))
    chord = simulate(circuit, images[:12], engine=NodalEngine(newton="chord"), return_power=True)
    full = simulate(circuit, images[:12], engine=NodalEngine(newton="full"), return_power=True)
    np.testing.assert_allclose(chord.outputs_v, full.outputs_v, rtol=0, atol=1e-12)
    np.testing.assert_allclose(chord.power_w, full.power_w, rtol=1e-11)


def test_newton_that_cannot_converge_says_so(default_net, images):
    circuit = map_network(default_net, MappingConfig(cell="gap", r_word_ohm=500.0, r_bit_ohm=500.0))
    with pytest.raises(ConvergenceError, match="layer 0: Newton's method did not converge"):
        simulate(circuit, images[:3], engine=NodalEngine(max_iterations=2))


# -- errors --------------------------------------------------------------------------------------

def test_non_finite_inputs_are_refused(default_circuit, images):
    x = images[:2].copy()
    x[1, 5] = np.nan
    with pytest.raises(ValueError, match=r"inputs has a non-finite entry at index \(1, 5\)"):
        simulate(default_circuit, x, engine="nodal")


@pytest.mark.parametrize("option, value", [("rtol", 0.0), ("rtol", 1.0), ("max_iterations", 1), ("newton", "exact")])
def test_bad_engine_options_are_refused(option, value):
    with pytest.raises(ValueError, match=f"{option if option != 'newton' else 'newton'}="):
        get_engine("nodal", **{option: value})


def test_floating_node_is_an_error_not_a_nan():
    """A column whose cells are all open and whose neuron input holds no voltage floats."""
    g = np.full((1, 4, 3), 1e-5)
    g[0, :, 1] = 0.0
    for r_word, r_bit in ((1.0, 1.0), (math.inf, 1.0), (1.0, math.inf), (math.inf, math.inf)):
        net = ArrayNetwork(g, r_word, r_bit, neuron_g_s=np.zeros(3))
        with pytest.raises(ValueError, match="floats"):
            factorize(net)


def test_negative_wire_resistance_is_refused(default_circuit):
    with pytest.raises(ValueError, match="r_bit_ohm=-1.0"):
        default_circuit.replace_layer(0, r_bit_ohm=-1.0)


# -- CLI -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["linear", "gap"])
def test_cli_simulate_with_the_nodal_engine(cell):
    from neurodtco.cli import app

    result = CliRunner().invoke(app, ["simulate", "--engine", "nodal", "--cell", cell, "--gain", "1e4",
                                      "--n-images", "40", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["engine"] == "nodal" and payload["n_test"] == 40
    assert payload["accuracy"] >= 0.85


def test_stalled_chord_steps_fall_back_to_true_newton():
    """Inputs up to 1.5 V make the sinh slopes differ ~10x across the batch, more than one chord
    slope can cover: the solve must notice, switch to true Newton and still converge."""
    rng = np.random.default_rng(0)
    neuron = NeuronModel(feedback_resistance_ohm=1e4, open_loop_gain=1e4)
    layer = one_layer(rng.uniform(1e-6, 1e-4, (9, 6)), neuron, r_word=1e3, r_bit=1e3, bias_v=1.0)
    circuit = Circuit(layers=(layer,), cell=GapReRAMCell())
    x = np.concatenate([rng.uniform(0.0, 1.5, (6, 8)), np.zeros((6, 8))])
    chord = simulate(circuit, x, engine=NodalEngine(newton="chord"), return_nodes=True)
    assert chord.info["layers"][0]["method"] == "chord, then full"
    full = simulate(circuit, x, engine=NodalEngine(newton="full"))
    np.testing.assert_allclose(chord.outputs_v, full.outputs_v, rtol=0, atol=1e-12)
    # and the answer satisfies Kirchhoff with the true cell law at every bit node
    nodes = chord.nodes[0]
    cell_current = circuit.cell.current(layer.conductance, nodes["word"] - nodes["bit"])
    bit_line = np.concatenate([nodes["bit"], nodes["neuron_in"][:, None, :]], axis=1)
    segment = -np.diff(bit_line, axis=1) / layer.r_bit_ohm  # current down each bit segment
    inflow = cell_current + np.concatenate([np.zeros((12, 1, 6)), segment[:, :-1]], axis=1)
    np.testing.assert_allclose(inflow, segment, rtol=0, atol=1e-12 * np.max(np.abs(segment)))
