"""The helpers of examples/cnn_mitigation.py: read energy against the dense-chain formula, the tolerance crossing."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from cnn_mitigation import crossing_interval, layer_inputs, read_energy_j  # noqa: E402

from neurodtco.engines import simulate  # noqa: E402
from neurodtco.imperfections.system_energy import ArrayParasitics, driver_energy_j, ideal_wire_power_w  # noqa: E402
from neurodtco.mapping import MappingConfig, map_ops, map_weights  # noqa: E402


def test_read_energy_of_a_dense_chain_is_the_ideal_wire_power_over_the_settling_time():
    rng = np.random.default_rng(0)
    w = [0.4 * rng.normal(size=(5, 6)), 0.4 * rng.normal(size=(3, 5))]
    b = [0.1 * rng.normal(size=5), 0.1 * rng.normal(size=3)]
    circuit = map_weights(w, b, MappingConfig(tile_rows=4, tile_cols=4))
    x = rng.uniform(0, 0.2, (7, 6))
    res = simulate(circuit, x, engine="ideal", return_hidden=True)
    t = 3e-7  # one settling time for both layers: the energy is the power times it
    arrays, drivers = read_energy_j(circuit, x, res.hidden_v, [t, t])
    assert arrays == pytest.approx(float(ideal_wire_power_w(circuit, x, res.hidden_v).mean()) * t, rel=1e-12)
    parasitics = ArrayParasitics()
    assert drivers == pytest.approx(float(driver_energy_j(circuit, x, parasitics).mean()), rel=1e-12)
    arrays_slow, _ = read_energy_j(circuit, x, res.hidden_v, [t, 3 * t])
    assert arrays < arrays_slow < 3 * arrays


def test_a_convolution_is_read_once_per_patch_and_the_dense_layer_after_pooling_reads_the_pooled_maps():
    import torch
    from torch import nn

    from neurodtco.circuit import Crossbar
    from neurodtco.network import Saturate, lower_sequential
    from neurodtco.ops import Pool

    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), Saturate("relu"), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3)).eval()
    circuit = map_ops(lower_sequential(model, (1, 6, 6)))
    x = np.random.default_rng(3).uniform(0, 0.2, (4, 36))
    res = simulate(circuit, x, engine="ideal", return_hidden=True)
    rows = layer_inputs(circuit, x, res.hidden_v)
    conv = next(s.conv for s in circuit.stage_list() if isinstance(s, Crossbar) and s.conv is not None)
    pool = next(s for s in circuit.stage_list() if isinstance(s, Pool))
    np.testing.assert_array_equal(rows[0], conv.patches(x))
    assert rows[0].shape == (4 * 16, 9)
    np.testing.assert_array_equal(rows[1], pool.geometry.apply(res.hidden_v[0]))
    # the conv layer's array energy: every patch's sum G V^2, summed over the 16 reads, over its settling time
    arrays, _ = read_energy_j(circuit, x, res.hidden_v, [1.0, 0.0])
    layer = circuit.layers[0]
    by_patch = sum(float(np.sum(layer.row_voltages(p[None]) ** 2 @ layer.conductance.sum(axis=1))) for p in rows[0])
    assert arrays == pytest.approx(by_patch / 4, rel=1e-12)


def test_the_tolerance_crossing_is_log_linear_between_grid_points_with_an_interval_around_it():
    n = 4000
    healthy = np.ones((2, n), dtype=bool)
    densities = [0.001, 0.01]
    chips = np.ones((2, 2, n), dtype=bool)
    chips[:, 0, :20] = False   # 99.5 % at 0.1 %
    chips[:, 1, :120] = False  # 97.0 % at 1 %
    point, (low, high) = crossing_interval(densities, healthy, chips, 0.01, n_resamples=300)
    # 99.0 % lies a fifth of the way from 99.5 to 97.0: log-linear, 10 ** 0.2 above 0.1 %
    assert point == pytest.approx(0.001 * 10 ** 0.2, rel=1e-9)
    assert low < point < high and high / low < 2
    with pytest.raises(ValueError, match=r"networks, densities, images"):
        crossing_interval(densities, healthy, chips[:, :1], 0.01)
