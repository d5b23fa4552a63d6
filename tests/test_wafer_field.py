"""Wafers, the wafer-level defect field, die circuits, spare-line repair and Stapper's formula."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurodtco.defects.apply import apply_stuck_map
from neurodtco.mapping import MappingConfig, map_network
from neurodtco.stats import wilson_interval
from neurodtco.wafer import (DefectField, DieMap, Wafer, cell_offsets_mm, die_circuit, draw_dies, draw_wafer,
                             effective_alpha, evaluate_dies, field_stapper_yield, gaussian_field, repair,
                             stapper_yield)


def test_dies_are_exactly_those_whose_four_corners_lie_in_the_usable_circle() -> None:
    wafer = Wafer(diameter_mm=200.0, die_width_mm=12.0, die_height_mm=7.0, edge_exclusion_mm=5.0)
    kept = {(d.die_x, d.die_y) for d in wafer.dies}
    radius = 95.0
    for i in range(-12, 12):
        for j in range(-20, 20):
            corners = [(x * 12.0, y * 7.0) for x in (i, i + 1) for y in (j, j + 1)]
            inside = all(math.hypot(x, y) <= radius for x, y in corners)
            assert ((i, j) in kept) == inside, (i, j)
    die = next(d for d in wafer.dies if (d.die_x, d.die_y) == (0, 0))
    assert die.center_mm == (6.0, 3.5)
    # The dies cover most of the usable disc: their area is below it, and above the disc shrunk by a die diagonal.
    area = wafer.n_dies * 12.0 * 7.0
    assert math.pi * (radius - math.hypot(12, 7)) ** 2 < area < math.pi * radius**2


def test_wafer_refuses_dies_that_cannot_fit() -> None:
    with pytest.raises(ValueError, match="no 300 x 300 mm die fits"):
        Wafer(die_width_mm=300.0, die_height_mm=300.0)
    with pytest.raises(ValueError, match="edge_exclusion_mm=200"):
        Wafer(edge_exclusion_mm=200.0)


def test_density_per_cm2_converts_through_the_cell_area() -> None:
    field = DefectField.from_d0_per_cm2(2e6, cell_area_um2=0.05)
    assert field.d0_per_cell == pytest.approx(2e6 * 0.05e-8)
    assert field.d0_per_cm2 == pytest.approx(2e6)
    assert field.cell_pitch_mm == pytest.approx(math.sqrt(0.05) * 1e-3)
    with pytest.raises(ValueError, match="alpha=0"):
        DefectField(1e-3, alpha=0)


def test_cells_sit_side_by_side_without_overlap(default_circuit) -> None:
    offsets = cell_offsets_mm(default_circuit, 1e-4)
    points = np.concatenate([o.reshape(-1, 2) for o in offsets])
    assert len(np.unique(np.round(points / 1e-4, 6), axis=0)) == len(points)
    # Layer 1 starts one pitch right of layer 0's last column, on the same top row.
    assert offsets[1][0, 0, 0] - offsets[0][0, -1, 0] == pytest.approx(1e-4)
    assert offsets[1][0, 0, 1] == pytest.approx(offsets[0][0, 0, 1])


def test_tiled_layers_sit_at_their_tiles_origins(default_net) -> None:
    tiled = map_network(default_net, MappingConfig(tile_rows=32, tile_cols=8))
    offsets = cell_offsets_mm(tiled, 1.0)
    layer = tiled.layers[0]
    for tile in layer.tiles:
        corner = offsets[0][tile.rows.start, tile.columns.start]
        top_left = offsets[0][0, 0]
        assert corner[0] - top_left[0] == pytest.approx(tile.origin[1])
        assert top_left[1] - corner[1] == pytest.approx(tile.origin[0])


def test_the_same_seed_draws_the_same_maps_and_another_wafer_others(default_circuit) -> None:
    field = DefectField(2e-3, alpha=1.0, cluster_radius_mm=20.0)
    wafer = Wafer(diameter_mm=100.0)
    a = draw_wafer(field, wafer, default_circuit, 0, seed=3)
    assert a == draw_wafer(field, wafer, default_circuit, 0, seed=3)
    assert a != draw_wafer(field, wafer, default_circuit, 1, seed=3)
    values = np.concatenate([v[~np.isnan(v)] for d in a for v in d.stuck_s])
    assert set(values) <= {default_circuit.cell.g_min, default_circuit.cell.g_max}


def test_a_die_circuit_has_exactly_its_stuck_cells(default_circuit) -> None:
    die = draw_dies(DefectField(0.02, on_fraction=0.3), Wafer(diameter_mm=50.0), default_circuit, 1, seed=1)[0]
    chip, record = die_circuit(default_circuit, die)
    for g, g0, values, mask in zip(chip.conductances, default_circuit.conductances, die.stuck_s, record.masks):
        stuck = ~np.isnan(values)
        np.testing.assert_array_equal(mask, stuck)
        np.testing.assert_array_equal(g[stuck], values[stuck])
        np.testing.assert_array_equal(g[~stuck], g0[~stuck])
    assert record.total_density == pytest.approx(die.n_stuck / default_circuit.n_cells)
    with pytest.raises(ValueError, match=r"stuck_s\[0\] has shape \(3, 3\)"):
        apply_stuck_map(default_circuit, [np.zeros((3, 3))] + list(die.stuck_s[1:]))


@pytest.mark.parametrize("alpha", [0.5, 2.0, math.inf])
def test_monte_carlo_yield_reproduces_stapper_for_die_scale_clustering(default_circuit, alpha) -> None:
    field = DefectField(1.0 / default_circuit.n_cells, alpha=alpha)
    result = evaluate_dies(default_circuit, draw_dies(field, Wafer(), default_circuit, 3000, seed=11),
                           criterion="any-defect")
    low, high = wilson_interval(result.n_pass, result.n_dies)
    assert low <= stapper_yield(1.0, alpha) <= high
    assert field_stapper_yield(field, default_circuit, Wafer()) == pytest.approx(stapper_yield(1.0, alpha))


def test_a_cluster_radius_much_larger_than_the_arrays_keeps_stapper(default_circuit) -> None:
    # 1 mm: the arrays (microns) see one multiplier, and dies 10 mm apart are independent.
    field = DefectField(1.0 / default_circuit.n_cells, alpha=0.5, cluster_radius_mm=1.0)
    result = evaluate_dies(default_circuit, draw_dies(field, Wafer(), default_circuit, 3000, seed=5),
                           criterion="any-defect")
    low, high = wilson_interval(result.n_pass, result.n_dies)
    assert low <= stapper_yield(1.0, 0.5) <= high


def test_a_cluster_radius_below_the_arrays_raises_the_effective_alpha(default_circuit) -> None:
    # 0.3 um against arrays of ~7 um: each die averages many independent multipliers.
    field = DefectField(1.0 / default_circuit.n_cells, alpha=0.5, cluster_radius_mm=3e-4)
    result = evaluate_dies(default_circuit, draw_dies(field, Wafer(), default_circuit, 1800, seed=5),
                           criterion="any-defect")
    assert result.n_stuck.mean() == pytest.approx(1.0, rel=0.15)
    high = wilson_interval(result.n_pass, result.n_dies)[1]
    assert high < stapper_yield(1.0, 0.5)
    assert effective_alpha(result.yield_, 1.0) > 2.0


def test_neighbouring_dies_are_correlated_and_distant_ones_are_not(default_circuit) -> None:
    field = DefectField(5.0 / default_circuit.n_cells, alpha=0.5, cluster_radius_mm=30.0)
    wafer = Wafer()
    centers = wafer.centers_mm()
    near, far = [], []
    for index in range(6):
        counts = np.array([d.n_stuck for d in draw_wafer(field, wafer, default_circuit, index, seed=2)], dtype=float)
        d = np.hypot(*(centers[:, None, :] - centers[None, :, :]).transpose(2, 0, 1))
        i, j = np.nonzero(np.triu((d > 5) & (d < 15)))
        near.append(np.corrcoef(counts[i], counts[j])[0, 1])
        i, j = np.nonzero(np.triu(d > 200))
        far.append(np.corrcoef(counts[i], counts[j])[0, 1])
    assert np.mean(near) > 0.3
    assert abs(np.mean(far)) < 0.1


def test_gaussian_field_has_the_gaussian_covariance() -> None:
    points = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    rng = np.random.default_rng(0)
    z = np.array([gaussian_field(points, 1.0, rng) for _ in range(4000)])
    assert z.var(axis=0) == pytest.approx([1.0, 1.0, 1.0], abs=0.08)
    assert np.mean(z[:, 0] * z[:, 1]) == pytest.approx(math.exp(-0.5), abs=0.06)
    assert np.mean(z[:, 0] * z[:, 2]) == pytest.approx(math.exp(-2.0), abs=0.06)


def test_radial_gradient_puts_more_defects_at_the_edge_and_keeps_the_mean(default_circuit) -> None:
    field = DefectField(2.0 / default_circuit.n_cells, edge_gradient=3.0)
    wafer = Wafer()
    r = np.hypot(*wafer.centers_mm().T) / wafer.usable_radius_mm
    counts = np.mean([[d.n_stuck for d in draw_wafer(field, wafer, default_circuit, k, seed=0)] for k in range(8)],
                     axis=0)
    radial = field.radial(r * wafer.usable_radius_mm, wafer.usable_radius_mm)
    outer, inner = r > 0.85, r < 0.35
    expected = radial[outer].mean() / radial[inner].mean()
    assert counts[outer].mean() / counts[inner].mean() == pytest.approx(expected, rel=0.12)
    assert counts.mean() == pytest.approx(2.0, rel=0.1)  # the wafer mean stays d0 per cell


def test_repair_moves_the_worst_lines_onto_spares(default_circuit) -> None:
    die = DieMap.healthy((0, 0, 0), default_circuit)
    values = [v.copy() for v in die.stuck_s]
    g = default_circuit.cell.g_max
    values[0][5, :4] = g       # row 5: four stuck cells
    values[0][:3, 9] = g       # column 9: three
    values[0][40, 2] = g       # a lone cell
    values[2][1, 1] = g        # another array
    die = DieMap((0, 0, 0), tuple(values))
    assert repair(die, default_circuit, 0, 0) == die
    one_row = repair(die, default_circuit, 1, 0)
    # Every array has its own spare row: row 5 of layer 0 and the lone cell of layer 2 both move.
    assert one_row.n_stuck == die.n_stuck - 5 and np.isnan(one_row.stuck_s[0][5]).all()
    fixed = repair(die, default_circuit, 1, 1)
    # Row 5 first (4 cells), then column 9 (3); the lone cell of layer 0 has no spare left; layer 2 fixes its own.
    assert fixed.n_stuck == 1 and not np.isnan(fixed.stuck_s[0][40, 2])
    assert die.stuck_s[0][5, 0] == g  # the input is unchanged
    with pytest.raises(ValueError, match="spare_rows=-1"):
        repair(die, default_circuit, -1, 0)


def test_effective_alpha_inverts_stapper() -> None:
    for alpha in (0.3, 1.0, 7.0):
        assert effective_alpha(stapper_yield(2.0, alpha), 2.0) == pytest.approx(alpha, rel=1e-6)
    assert effective_alpha(math.exp(-2.0) * 0.99, 2.0) == math.inf


@pytest.mark.parametrize("alpha", [0.2, 1.0, 5.0])
def test_gamma_copula_gives_gamma_quantiles(alpha) -> None:
    from scipy import stats

    from neurodtco.wafer.field import gamma_quantile

    z = np.linspace(-6.0, 6.0, 241)
    expected = stats.gamma.ppf(stats.norm.cdf(z), alpha, scale=1.0 / alpha)
    keep = stats.norm.cdf(z) < 1 - 1e-12  # scipy's own ppf loses its digits where the cdf rounds to 1
    np.testing.assert_allclose(gamma_quantile(z, alpha)[keep], expected[keep], rtol=1e-5)
