"""solve_crossbar against physics that needs no simulator: closed forms, an independent nodal
solve, Kirchhoff's current law and energy conservation, and the 0-ohm limit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodtco import solve_crossbar

RNG = np.random.default_rng(7)


def random_array(rows: int, cols: int, batch: int = 5, seed: int = 0):
    """Conductances in the default window (1 Mohm..10 kohm) and read voltages in [0, 0.2] V."""
    rng = np.random.default_rng(seed)
    return rng.uniform(1e-6, 1e-4, (rows, cols)), rng.uniform(0.0, 0.2, (batch, rows))


def reference_currents(g: np.ndarray, v: np.ndarray, r_word: float, r_bit: float):
    """Plain nodal analysis, written independently of the package: one unknown per node, a dense
    solve, 0-ohm segments merged into one node. Returns currents, word and bit voltages."""
    rows, cols = g.shape
    parent: dict = {}

    def find(node):
        while parent.setdefault(node, node) != node:
            node = parent[node]
        return node

    segments = []
    for i in range(rows):
        prev = ("driver", i)
        for j in range(cols):
            if r_word == 0:
                parent[find(("w", i, j))] = find(prev)
            else:
                segments.append((prev, ("w", i, j), 1.0 / r_word))
            prev = ("w", i, j)
    for j in range(cols):
        for i in range(rows):
            below = ("b", i + 1, j) if i < rows - 1 else ("ground", j)
            if r_bit == 0:
                parent[find(("b", i, j))] = find(below)
            else:
                segments.append((("b", i, j), below, 1.0 / r_bit))
    elements = segments + [(("w", i, j), ("b", i, j), g[i, j]) for i in range(rows) for j in range(cols)]
    fixed = {find(("driver", i)): v[:, i] for i in range(rows)}
    fixed.update({find(("ground", j)): np.zeros(len(v)) for j in range(cols)})
    free = sorted({find(n) for a, b, _ in elements for n in (a, b)} - set(fixed), key=str)
    index = {node: k for k, node in enumerate(free)}
    mat = np.zeros((len(free), len(free)))
    rhs = np.zeros((len(free), len(v)))
    for a, b, cond in elements:
        a, b = find(a), find(b)
        for p, q in ((a, b), (b, a)):
            if p in index:
                mat[index[p], index[p]] += cond
                if q in index:
                    mat[index[p], index[q]] -= cond
                else:
                    rhs[index[p]] += cond * fixed[q]
    x = np.linalg.solve(mat, rhs) if free else np.zeros((0, len(v)))

    def volt(node):
        node = find(node)
        return x[index[node]] if node in index else fixed[node]

    word = np.array([[volt(("w", i, j)) for j in range(cols)] for i in range(rows)]).transpose(2, 0, 1)
    bit = np.array([[volt(("b", i, j)) for j in range(cols)] for i in range(rows)]).transpose(2, 0, 1)
    return np.sum(g * (word - bit), axis=1), word, bit


@pytest.mark.parametrize("r_word, r_bit", [(1.0, 1.0), (0.0, 2.5), (3.0, 0.0), (0.0, 0.0), (40.0, 7.0)])
@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (6, 1), (6, 4), (3, 8)])
def test_matches_an_independent_nodal_solve(shape, r_word, r_bit):
    g, v = random_array(*shape, seed=shape[0] * 10 + shape[1])
    current, word, bit = solve_crossbar(g, v, r_word, r_bit, return_nodes=True)
    ref_current, ref_word, ref_bit = reference_currents(g, v, r_word, r_bit)
    np.testing.assert_allclose(current, ref_current, rtol=1e-12, atol=1e-20)
    np.testing.assert_allclose(word, ref_word, rtol=0, atol=1e-14)
    np.testing.assert_allclose(bit, ref_bit, rtol=0, atol=1e-14)


def test_zero_wire_resistance_is_the_matrix_product():
    g, v = random_array(30, 12, batch=50)
    np.testing.assert_allclose(solve_crossbar(g, v, 0.0, 0.0), v @ g, rtol=1e-14)


def test_one_cell_is_three_resistors_in_series():
    g, r_word, r_bit, v = 4e-5, 3.0, 11.0, 0.17
    expected = v / (r_word + 1.0 / g + r_bit)
    assert solve_crossbar([[g]], [v], r_word, r_bit) == pytest.approx([expected], rel=1e-14)


def test_single_row_is_a_ladder():
    """Driver -> r_w -> node 0 -> r_w -> node 1 ...; node j shunted by cell j in series with r_b."""
    g, v = random_array(1, 9, batch=3, seed=3)
    r_word, r_bit = 25.0, 40.0
    shunt = 1.0 / (1.0 / g[0] + r_bit)
    # impedance looking into node j towards the far end, from the far end back
    z = np.empty(9)
    z[-1] = 1.0 / shunt[-1]
    for j in range(7, -1, -1):
        z[j] = 1.0 / (shunt[j] + 1.0 / (r_word + z[j + 1]))
    for k in range(3):
        flow = v[k, 0] / (r_word + z[0])  # current through the segment into node 0
        node = v[k, 0] - r_word * flow
        expected = []
        for j in range(9):
            expected.append(shunt[j] * node)
            flow -= shunt[j] * node
            node -= r_word * flow
        np.testing.assert_allclose(solve_crossbar(g, v[k], r_word, r_bit), expected, rtol=1e-12)


def test_single_column_is_a_chain_of_thevenin_sources():
    """Each row is a source V_i behind r_w + 1/G_i into its bit node; fold them down the chain."""
    g, v = random_array(8, 1, batch=3, seed=4)
    r_word, r_bit = 15.0, 30.0
    for k in range(3):
        series = r_word + 1.0 / g[:, 0]
        v_th, r_th = v[k, 0], series[0]
        for i in range(1, 8):
            r_up = r_th + r_bit
            r_th = 1.0 / (1.0 / r_up + 1.0 / series[i])
            v_th = r_th * (v_th / r_up + v[k, i] / series[i])
        expected = v_th / (r_th + r_bit)
        assert solve_crossbar(g, v[k], r_word, r_bit)[0] == pytest.approx(expected, rel=1e-12)


def driver_currents(v, word, r_word):
    return (v - word[:, :, 0]) / r_word


def test_current_is_conserved_for_every_input_vector():
    g, v = random_array(20, 14, batch=8, seed=5)
    current, word, _ = solve_crossbar(g, v, 2.0, 3.0, return_nodes=True)
    drawn = driver_currents(v, word, 2.0).sum(axis=1)
    np.testing.assert_allclose(drawn, current.sum(axis=1), rtol=1e-12)


def test_driver_power_is_the_heat_in_cells_and_wires():
    g, v = random_array(12, 10, batch=4, seed=6)
    r_word, r_bit = 5.0, 8.0
    _, word, bit = solve_crossbar(g, v, r_word, r_bit, return_nodes=True)
    drawn = np.sum(v * driver_currents(v, word, r_word), axis=1)
    cells = np.sum(g * (word - bit) ** 2, axis=(1, 2))  # I^2 / G = G v^2
    word_drive = np.concatenate([v[:, :, None], word], axis=2)
    bit_ground = np.concatenate([bit, np.zeros((len(v), 1, 10))], axis=1)
    wires = (np.sum(np.diff(word_drive, axis=2) ** 2, axis=(1, 2)) / r_word
             + np.sum(np.diff(bit_ground, axis=1) ** 2, axis=(1, 2)) / r_bit)
    np.testing.assert_allclose(drawn, cells + wires, rtol=1e-11)


def test_superposition_and_the_transfer_matrix_path_agree_with_direct_solves():
    """More vectors than rows use the transfer matrix; fewer are solved directly."""
    g, v = random_array(16, 16, batch=100, seed=8)
    many = solve_crossbar(g, v, 1.0, 1.0)
    few = np.concatenate([solve_crossbar(g, v[k:k + 4], 1.0, 1.0) for k in range(0, 100, 4)])
    np.testing.assert_allclose(many, few, rtol=1e-13)
    a, b = solve_crossbar(g, v[0], 1.0, 1.0), solve_crossbar(g, v[1], 1.0, 1.0)
    np.testing.assert_allclose(solve_crossbar(g, 2 * v[0] - 3 * v[1], 1.0, 1.0), 2 * a - 3 * b, rtol=1e-12)


def test_tiny_bit_segments_approach_the_ideal_limit_without_losing_digits():
    """Strong wires make g_b / G ~ 1e13; a formulation that subtracts g_b-sized pivots would lose
    most digits here, the excess form loses none."""
    g, v = random_array(32, 8, batch=3, seed=9)
    limit = solve_crossbar(g, v, 1.0, 0.0)
    for r_bit in (1e-6, 1e-9):
        near = solve_crossbar(g, v, 1.0, r_bit)
        assert np.max(np.abs(near - limit) / np.abs(limit)) < 100 * r_bit * 1e-4 * 32


def test_an_open_column_carries_no_current_and_disturbs_nothing():
    """With the ideal virtual ground the open column's bit line sits at 0 V: nothing floats."""
    g, v = random_array(10, 6, batch=3, seed=10)
    g_open = g.copy()
    g_open[:, 2] = 0.0
    for r in (0.0, 1.0):
        current = solve_crossbar(g_open, v, r, r)
        assert np.all(np.isfinite(current)) and np.all(current[:, 2] == 0.0)
    np.testing.assert_allclose(solve_crossbar(g_open, v, 0.0, 0.0), v @ g_open, rtol=1e-14)


def test_one_vector_and_torch_tensors():
    g, v = random_array(5, 3, batch=2, seed=11)
    single = solve_crossbar(g, v[0], 1.0, 1.0)
    assert single.shape == (3,)
    np.testing.assert_allclose(single, solve_crossbar(g, v, 1.0, 1.0)[0], rtol=1e-14)
    out = solve_crossbar(torch.tensor(g), torch.tensor(v), 1.0, 1.0)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), solve_crossbar(g, v, 1.0, 1.0), rtol=1e-15)


@pytest.mark.parametrize("kwargs, message", [
    ({"r_word": -1.0}, "r_word=-1.0"),
    ({"r_bit": float("nan")}, "r_bit=nan"),
    ({"r_bit": float("inf")}, "r_bit=inf"),
    ({"r_word": "one"}, "r_word='one'"),
    ({"v_in": [[0.1, float("nan")]]}, "v_in has a non-finite entry"),
    ({"conductance": [[1e-5], [float("inf")]]}, "conductance has a non-finite entry"),
    ({"conductance": [[1e-5], [-1e-6]]}, "is negative"),
    ({"v_in": [[0.1, 0.1, 0.1]]}, r"shape \[batch, 2\]"),
    ({"conductance": [1e-5, 1e-5]}, r"\[rows, cols\]"),
])
def test_bad_input_is_refused_with_a_message_naming_it(kwargs, message):
    args = {"conductance": [[1e-5], [2e-5]], "v_in": [[0.1, 0.2]], "r_word": 1.0, "r_bit": 1.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        solve_crossbar(**args)
