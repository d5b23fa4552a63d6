"""Cell models against their defining equations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from neurodtco.devices import GapReRAMCell, LinearCell, make_cell


def test_gap_model_is_the_published_equation():
    cell = GapReRAMCell()
    gaps = np.array([0.6e-9, 1.0e-9, 1.8e-9])
    g = cell.conductance_from_gap(gaps)
    v = np.linspace(-0.3, 0.3, 7)[:, None]
    direct = cell.i0_a * np.exp(-gaps / cell.g0_m) * np.sinh(v / cell.v0_v)
    assert np.allclose(cell.current(g, v), direct, rtol=1e-12)
    assert np.allclose(cell.gap_from_conductance(g), gaps, rtol=1e-12)


def test_read_conductance_is_the_chord_at_v_read():
    cell = GapReRAMCell()
    g = np.array([1e-6, 3e-5, 1e-4])
    assert np.allclose(cell.current(g, cell.v_read_v) / cell.v_read_v, g, rtol=1e-14)


def test_default_window_needs_published_gap_scale():
    cell = GapReRAMCell()
    # R_on = 10 kohm sits near 0.95 nm; R_off = 1 Mohm near 2.3 nm, both inside the 5 nm oxide
    assert 0.9e-9 < cell.gap_from_conductance(cell.g_max) < 1.0e-9
    assert 2.0e-9 < cell.gap_from_conductance(cell.g_min) < 2.4e-9


@pytest.mark.parametrize("cell", [LinearCell(), GapReRAMCell()])
def test_differential_conductance_is_the_derivative(cell):
    g = 5e-5
    for v in (-0.2, 0.0, 0.13):
        numeric = approx_fprime(np.array([v]), lambda x: float(cell.current(g, x[0])), 1e-7)[0]
        assert math.isclose(float(cell.differential_conductance(g, v)), numeric, rel_tol=1e-5)


def test_gap_cell_is_odd_and_superlinear():
    cell = GapReRAMCell()
    g = 1e-5
    assert math.isclose(float(cell.current(g, -0.3)), -float(cell.current(g, 0.3)))
    assert float(cell.current(g, 0.4)) / 0.4 > float(cell.current(g, 0.2)) / 0.2


def test_unreachable_gap_window_is_refused():
    with pytest.raises(ValueError, match="outside the oxide"):
        GapReRAMCell(r_on_ohm=10, r_off_ohm=1e6)


def test_make_cell_names():
    assert make_cell("linear").g_max == 1e-4
    with pytest.raises(ValueError, match="choose one of"):
        make_cell("flash")
