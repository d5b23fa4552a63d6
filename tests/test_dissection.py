"""Nested dissection (``engines/_nodal/sparse.py``) against independent truth: the full nodal matrix
assembled here and solved by SciPy's sparse LU, the dense row sweep, and the invariants of a
resistor network's port admittance (symmetric, rows summing to zero, reciprocity)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla
import torch

from neurodtco import simulate, solve_crossbar
from neurodtco.circuit import Circuit, Layer, NeuronModel
from neurodtco.devices import LinearCell
from neurodtco.engines import nodal
from neurodtco.engines._nodal import sparse
from neurodtco.engines._nodal.sparse import dissection_pays, port_admittance, port_response
from neurodtco.engines._nodal.tiles import tile_response
from neurodtco.engines.nodal import linear_layer_map

SHAPES = [(1, 1), (1, 7), (7, 1), (2, 2), (5, 9), (16, 16), (13, 40), (33, 17)]


def random_array(rows: int, cols: int, defects: bool, seed: int = 0):
    """Default-window conductances; with ``defects`` ~10 % stuck-off (0 S) and ~5 % stuck-on cells."""
    rng = np.random.default_rng(seed)
    g = rng.uniform(1e-6, 1e-4, (rows, cols))
    if defects:
        hit = rng.random((rows, cols))
        g[hit < 0.10] = 0.0
        g[hit > 0.95] = 1e-4
    return g, rng.uniform(0.0, 0.2, (6, rows))


def full_matrix(g: np.ndarray, v: np.ndarray, r_word: float, r_bit: float, neuron_g: float | None = None):
    """The full nodal matrix (every word and bit node, and the neuron inputs when they sit on a
    conductance ``neuron_g`` to the reference), its right-hand sides for drives ``v`` and the word node indices."""
    rows, cols = g.shape
    gw, gb = 1.0 / r_word, 1.0 / r_bit
    w = np.arange(rows * cols).reshape(rows, cols)
    b = w + rows * cols
    n = 2 * rows * cols + np.arange(cols)
    size = 2 * rows * cols + (cols if neuron_g is not None else 0)
    entries: list[tuple[int, int, float]] = []

    def element(p: int, q: int | None, cond: float) -> None:
        """A conductance between unknowns p and q (q None: to a node held at 0 V or to a driver)."""
        entries.append((p, p, cond))
        if q is not None:
            entries.extend([(q, q, cond), (p, q, -cond), (q, p, -cond)])

    for i in range(rows):
        element(w[i, 0], None, gw)
        for j in range(cols):
            element(w[i, j], b[i, j], g[i, j])
            if j + 1 < cols:
                element(w[i, j], w[i, j + 1], gw)
            below = b[i + 1, j] if i + 1 < rows else (n[j] if neuron_g is not None else None)
            element(b[i, j], below, gb)
    if neuron_g is not None:
        for j in range(cols):
            element(n[j], None, neuron_g)
    r, c, val = map(np.array, zip(*entries))
    mat = sp.csc_matrix((val, (r, c)), shape=(size, size))
    rhs = np.zeros((size, len(v)))
    rhs[w[:, 0]] = gw * v.T
    return mat, rhs, w


def sparse_reference(g: np.ndarray, v: np.ndarray, r_word: float, r_bit: float,
                     neuron_g: float | None = None) -> np.ndarray:
    """Collected currents from the full nodal matrix (``full_matrix``), solved by ``spsolve``."""
    rows, cols = g.shape
    mat, rhs, _ = full_matrix(g, v, r_word, r_bit, neuron_g)
    x = sla.spsolve(mat, rhs).reshape(mat.shape[0], -1)
    b = rows * cols + np.arange(rows * cols).reshape(rows, cols)
    neuron_v = x[2 * rows * cols + np.arange(cols)] if neuron_g is not None else 0.0
    return (x[b[-1]] - neuron_v).T / r_bit


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("defects", [False, True])
@pytest.mark.parametrize("r_word, r_bit", [(1.0, 1.0), (0.05, 20.0), (30.0, 0.01)])
def test_currents_match_the_full_nodal_matrix_and_the_dense_sweep(shape, defects, r_word, r_bit):
    g, v = random_array(*shape, defects, seed=shape[0] * 100 + shape[1])
    expected = sparse_reference(g, v, r_word, r_bit)
    got = solve_crossbar(g, v, r_word, r_bit, method="dissection")
    dense = solve_crossbar(g, v, r_word, r_bit, method="dense")
    scale = np.abs(expected).max()
    assert np.abs(got - expected).max() <= 1e-12 * scale
    assert np.abs(got - dense).max() <= 1e-12 * scale


@pytest.mark.parametrize("shape", [(1, 1), (5, 9), (16, 16), (33, 17)])
def test_norton_equivalent_matches_the_dense_tile_response(shape):
    g, _ = random_array(*shape, defects=True, seed=3)
    short, admittance, drivers = port_response(g, 1.0, 0.5)
    dense = tile_response(None, g, 1.0, 0.5, drivers=True)
    np.testing.assert_allclose(short, dense.short_a, rtol=0, atol=1e-12 * np.abs(dense.short_a).max())
    np.testing.assert_allclose(admittance, dense.admittance_s, rtol=0, atol=1e-12 * np.abs(dense.admittance_s).max())
    np.testing.assert_allclose(drivers, dense.driver_s, rtol=0, atol=1e-12 * np.abs(dense.driver_s).max())


@pytest.mark.parametrize("r_word, r_bit", [(1.0, 1.0), (0.05, 20.0), (30.0, 0.01)])
def test_driver_admittance_matches_the_full_nodal_matrix(r_word, r_bit):
    """Driver currents with the column ends held, from the full matrix: each word line's cell currents
    (Kirchhoff on the line; ``g_w (V - w_0)`` would lose digits to cancellation behind strong wires)."""
    g, v = random_array(13, 40, defects=True, seed=4)
    rows, cols = g.shape
    mat, rhs, w = full_matrix(g, v, r_word, r_bit)
    x = sla.spsolve(mat, rhs).reshape(mat.shape[0], -1)
    expected = np.einsum("ij,ijb->bi", g, x[w] - x[w + rows * cols])
    drivers = port_response(g, 1.0 / r_word, 1.0 / r_bit)[2]
    np.testing.assert_allclose(v @ drivers, expected, rtol=0, atol=1e-11 * np.abs(expected).max())
    dense = tile_response(None, g, 1.0 / r_word, 1.0 / r_bit, drivers=True).driver_s  # the sweep's forward pass
    np.testing.assert_allclose(v @ dense, expected, rtol=0, atol=1e-11 * np.abs(expected).max())
    # currents are conserved: what the drivers deliver is what the held column ends collect
    np.testing.assert_allclose((v @ drivers).sum(axis=1), sparse_reference(g, v, r_word, r_bit).sum(axis=1),
                               rtol=1e-11)


def test_port_admittance_is_a_reciprocal_floating_laplacian():
    """Symmetric (reciprocity), rows summing to zero (no path to ground but the ports), positive
    semi-definite, couplings never positive; and one cell is its three conductances in series."""
    g, _ = random_array(20, 12, defects=True, seed=5)
    s = port_admittance(g, 2.0, 3.0)
    scale = np.abs(s).max()
    np.testing.assert_allclose(s, s.T, rtol=0, atol=1e-15 * scale)
    np.testing.assert_allclose(s.sum(axis=1), 0.0, rtol=0, atol=1e-14 * scale)
    assert np.linalg.eigvalsh(s).min() > -1e-13 * scale
    assert np.all(s[~np.eye(len(s), dtype=bool)] <= 1e-18)
    series = 1.0 / (1 / 2.0 + 1 / 1e-4 + 1 / 3.0)
    np.testing.assert_allclose(port_admittance(np.array([[1e-4]]), 2.0, 3.0),
                               series * np.array([[1.0, -1.0], [-1.0, 1.0]]), rtol=1e-14)


@pytest.mark.parametrize("gain, offset", [(1e4, 2e-3), (300.0, -1e-3), (math.inf, 1e-3)])
def test_layer_map_with_finite_gain_op_amps_matches_the_dense_path(monkeypatch, gain, offset):
    rng = np.random.default_rng(2)
    g = rng.uniform(1e-6, 1e-4, (23, 10))
    g[rng.random(g.shape) < 0.1] = 0.0
    neuron = NeuronModel(feedback_resistance_ohm=20e3, difference_gain=2.0, open_loop_gain=gain, offset_v=offset)
    layer = Layer(conductance=g, plus_columns=np.arange(5) * 2, minus_columns=np.arange(5) * 2 + 1, neuron=neuron,
                  bias_voltage_v=0.2, r_word_ohm=1.0, r_bit_ohm=2.0)
    monkeypatch.setattr(sparse, "_CROSSOVER", math.inf)
    dense_w, dense_c = linear_layer_map(layer)
    monkeypatch.setattr(sparse, "_CROSSOVER", 0.0)
    assert dissection_pays(23, 10, 1.0, 0.5)
    w, c = linear_layer_map(layer)
    np.testing.assert_allclose(w, dense_w, rtol=0, atol=1e-12 * np.abs(dense_w).max())
    np.testing.assert_allclose(c, dense_c, rtol=0, atol=1e-12 * max(np.abs(dense_c).max(), np.abs(dense_w).max()))


@pytest.mark.parametrize("gain, offset", [(1e4, 2e-3), (math.inf, 1e-3)])
def test_layer_power_by_dissection_matches_the_node_voltage_path(monkeypatch, gain, offset):
    rng = np.random.default_rng(6)
    g = rng.uniform(1e-6, 1e-4, (23, 10))
    neuron = NeuronModel(feedback_resistance_ohm=20e3, open_loop_gain=gain, offset_v=offset)
    layer = Layer(conductance=g, plus_columns=np.arange(5) * 2, minus_columns=np.arange(5) * 2 + 1, neuron=neuron,
                  bias_voltage_v=0.2, r_word_ohm=1.0, r_bit_ohm=2.0)
    circuit = Circuit(layers=(layer,), cell=LinearCell())
    x = rng.uniform(0.0, 0.2, (40, 22))
    reference = simulate(circuit, x, engine="nodal", return_power=True, return_nodes=True).power_w
    monkeypatch.setattr(sparse, "_CROSSOVER", 0.0)
    assert dissection_pays(23, 10, 1.0, 0.5)
    got = simulate(circuit, x, engine="nodal", return_power=True).power_w
    np.testing.assert_allclose(got, reference, rtol=1e-11)


def test_node_voltages_of_a_large_layer_are_refused_with_what_to_do(monkeypatch):
    layer = Layer(conductance=np.full((9, 8), 1e-5), plus_columns=np.arange(4) * 2, minus_columns=np.arange(4) * 2 + 1,
                  neuron=NeuronModel(feedback_resistance_ohm=2e3), bias_voltage_v=0.2, r_word_ohm=1.0, r_bit_ohm=1.0)
    circuit = Circuit(layers=(layer,), cell=LinearCell())
    monkeypatch.setattr(nodal, "NODES_MAX_DOUBLES", 9 * 8 * 8 - 1)
    with pytest.raises(ValueError, match=r"layer 0 \(9 x 8\).*power without return_nodes"):
        simulate(circuit, np.full((2, 8), 0.1), engine="nodal", return_nodes=True)
    assert simulate(circuit, np.full((2, 8), 0.1), engine="nodal", return_power=True).power_w.shape == (2,)
    # ideal word lines factorize in O(R C): their node voltages are given at any size
    ideal_words = Circuit(layers=(layer.replace(r_word_ohm=0.0),), cell=LinearCell())
    assert simulate(ideal_words, np.full((2, 8), 0.1), engine="nodal", return_nodes=True).nodes[0]["bit"].shape == \
        (2, 9, 8)


def test_method_choice_follows_the_shape():
    """Wide arrays take dissection (the sweep is O(R C^3)); tall ones and small ones the sweep; an
    ideal line never dissection."""
    assert dissection_pays(1024, 1024, 1.0, 1.0)
    assert dissection_pays(256, 256, 1.0, 1.0)
    assert dissection_pays(64, 1024, 1.0, 1.0)
    assert not dissection_pays(1024, 64, 1.0, 1.0)
    assert not dissection_pays(32, 32, 1.0, 1.0)
    assert not dissection_pays(1024, 1024, math.inf, 1.0)
    assert not dissection_pays(1024, 1024, 1.0, math.inf)


def test_ideal_lines_are_refused_by_name():
    g, v = random_array(4, 4, defects=False)
    with pytest.raises(ValueError, match="resistive word and bit lines"):
        solve_crossbar(g, v, 0.0, 1.0, method="dissection")
    np.testing.assert_allclose(solve_crossbar(g, v, 0.0, 1.0, method="auto"), solve_crossbar(g, v, 0.0, 1.0))


def test_bad_method_and_nodes_requests_are_refused():
    g, v = random_array(4, 4, defects=False)
    with pytest.raises(ValueError, match="method='fast' is not accepted"):
        solve_crossbar(g, v, 1.0, 1.0, method="fast")
    with pytest.raises(ValueError, match="return_nodes needs"):
        solve_crossbar(g, v, 1.0, 1.0, return_nodes=True, method="dissection")
    with pytest.raises(ValueError, match="return_nodes needs"):
        solve_crossbar(g, v, 1.0, 1.0, return_nodes=True, device="cpu")


@pytest.mark.parametrize("method", ["dense", "dissection"])
def test_device_product_matches_numpy(method):
    g, v = random_array(9, 14, defects=True, seed=4)
    expected = solve_crossbar(g, v, 1.0, 1.0, method=method)
    got = solve_crossbar(g, v, 1.0, 1.0, method=method, device="cpu")
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64 and got.shape == (6, 14)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-14, atol=1e-20)
    one = solve_crossbar(g, v[0], 1.0, 1.0, method=method, device="cpu")
    np.testing.assert_allclose(one.numpy(), expected[0], rtol=1e-14, atol=1e-20)
    with pytest.raises(ValueError, match="device='tpu' is not accepted"):
        solve_crossbar(g, v, 1.0, 1.0, device="tpu")
