"""Defects on tiled circuits: the tile selector, patterns in each tile's coordinates, clusters across the
die, per-tile densities, the die-layout picture, and passive programming tile by tile."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from neurodtco.defects import (Defect, apply_defects, checkerboard_mask, circle_mask, defect_from_dict,
                               parse_defect, plot_defect_maps, ring_mask)
from neurodtco.defects.patterns import round_half_up
from neurodtco.defects.plotting import die_layout
from neurodtco.imperfections import SwitchingDevice, WriteVerifyConfig, apply_passive_programming, program_passive
from neurodtco.mapping import MappingConfig, map_ops, map_weights
from neurodtco.ops import Dense


@pytest.fixture(scope="module")
def untiled():
    """The 6-5-4-3 circuit of test_defects.py (three small untiled arrays)."""
    rng = np.random.default_rng(3)
    widths = (6, 5, 4, 3)
    weights = [rng.normal(size=(o, i)) for i, o in zip(widths[:-1], widths[1:])]
    biases = [rng.normal(size=o) for o in widths[1:]]
    return map_weights(weights, biases)


@pytest.fixture(scope="module")
def tiled():
    """Layer 0: 11 x 10 cells in a 3 x 3 grid of tiles (4/4/3 rows, 4/4/2 columns); layer 1: 6 x 6 in 2 x 2."""
    rng = np.random.default_rng(0)
    ops = [Dense(rng.normal(size=(5, 10)), rng.normal(size=5), "hardtanh"), Dense(rng.normal(size=(3, 5)),
                                                                                 rng.normal(size=3), None)]
    return map_ops(ops, MappingConfig(tile_rows=4, tile_cols=4))


def tile_shape(tile):
    return tile.rows.stop - tile.rows.start, tile.columns.stop - tile.columns.start


# ----------------------------------------------------------------------------- the selector

@pytest.mark.parametrize("text,tiles", [
    ("ring:layer=1,tile=2,inner=0.2,outer=0.4,kind=on", (2,)),
    ("random:layers=[0,1],tiles=[3,0],density=0.1", (3, 0)),
    ("column:tiles=all,count=1", "all"),
    ("row:count=1", "all"),
])
def test_tile_selector_is_read_and_round_trips_through_text_and_mappings(text, tiles):
    d = parse_defect(text)
    assert d.tiles == tiles
    assert parse_defect(d.to_string()) == d
    assert defect_from_dict(json.loads(json.dumps(d.to_dict()))) == d
    assert ("tile" in d.to_string()) == (tiles != "all")  # one-liners without tiles read as before
    assert Defect.make(d.pattern, layers=d.layers, kind=d.kind, density=d.density, tiles=d.tiles, **d.params) == d


@pytest.mark.parametrize("text,fragment", [
    ("row:tile=-1,count=1", "tile -1 is not accepted"),
    ("row:tiles=[0,x],count=1", "tile 'x' is not accepted"),
    ("row:tiles=some,count=1", "tiles='some' is not accepted"),
    ("row:tile=1,tiles=[2],count=1", "either tile= or tiles="),
])
def test_bad_tile_selectors_are_refused(text, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_defect(text)


def test_a_tile_that_does_not_exist_is_refused_with_the_layers_range(tiled, untiled):
    with pytest.raises(ValueError, match=r"tile 9 does not exist: layer 0 has tiles 0\.\.8 \(a 3x3 grid"):
        apply_defects(tiled, ["row:layer=0,tile=9,count=1"])
    with pytest.raises(ValueError, match=r"tile 4 does not exist: layer 1 has tiles 0\.\.3"):
        apply_defects(tiled, ["row:tile=4,count=1"])  # layer 0 has a tile 4, layer 1 does not
    with pytest.raises(ValueError, match="tile 1 does not exist: layer 2 has one array, tile 0"):
        apply_defects(untiled, ["row:layer=2,tile=1,count=1"])
    _, record = apply_defects(untiled, ["row:tile=0,indices=[0]"])  # an untiled layer is its own tile 0
    assert all(m[0].all() and m.sum() == m.shape[1] for m in record.masks)


# ----------------------------------------------------------------------------- untiled stays bit-identical

# Masks, stuck values and conductances of the three untiled arrays, hashed, as the code gave them
# before layers had tiles (each case applied with "random:layer=1,count=3,kind=mix" after it).
BEFORE_TILES = {
    ("random:density=0.2,kind=mix", 0): "5d9e08aa8e351b3d",
    ("random:p=0.3", 7): "a8799abc195aa628",
    ("circular:density=0.3,kind=off", 0): "1a68258a50d49c63",
    ("circular_complement:radius=0.8", 7): "240c4e4e24153a95",
    ("ring:density=0.25", 0): "b3d98cb3eea4bb22",
    ("row:fraction=0.4,kind=off", 7): "37e1a7779ee1149a",
    ("column:count=2", 0): "26d66a107903986e",
    ("checkerboard:density=0.3", 7): "4301ece182173caa",
    ("clustered:density=0.3,kind=mix,correlation_cells=1.5", 0): "d810cc306a66545e",
    ("clustered:density=0.3,kind=mix,correlation_cells=1.5", 7): "d44a8e0ca377c87c",
}


@pytest.mark.parametrize("case", sorted(BEFORE_TILES))
def test_untiled_circuits_get_the_masks_they_got_before_tiles(untiled, case):
    text, seed = case
    new, record = apply_defects(untiled, [text, "random:layer=1,count=3,kind=mix"], seed=seed)
    h = hashlib.sha256()
    for m, s, g in zip(record.masks, record.stuck_s, new.conductances):
        h.update(m.tobytes())
        h.update(np.nan_to_num(s).tobytes())
        h.update(g.tobytes())
    assert h.hexdigest()[:16] == BEFORE_TILES[case]
    assert all("tile" not in d.to_string() for d in record.defects)
    assert record.tile_density == [[d] for d in record.density]


# ----------------------------------------------------------------------------- patterns per tile

@pytest.mark.parametrize("text,expected", [
    ("circular:layer=0,radius=0.7", lambda shape: circle_mask(shape, 0.7)),
    ("circular_complement:layer=0,radius=0.9,center=[0.2,0.6]", lambda shape: ~circle_mask(shape, 0.9, (0.2, 0.6))),
    ("ring:layer=0,inner=0.3,outer=0.8", lambda shape: ring_mask(shape, 0.3, 0.8)),
    ("row:layer=0,indices=[0,-1]", lambda shape: np.isin(np.arange(shape[0]), [0, shape[0] - 1])[:, None]
     & np.ones(shape, dtype=bool)),
    ("column:layer=0,indices=[1]", lambda shape: (np.arange(shape[1]) == 1)[None, :] & np.ones(shape, dtype=bool)),
    ("checkerboard:layer=0,phase=1", lambda shape: checkerboard_mask(shape, phase=1)),
])
def test_geometric_patterns_are_drawn_in_each_tiles_own_coordinates(tiled, text, expected):
    _, record = apply_defects(tiled, [text])
    mask = record.masks[0]
    for tile in tiled.layers[0].tiles:
        assert np.array_equal(mask[tile.rows, tile.columns], expected(tile_shape(tile))), tile.index
    assert not record.masks[1].any()


@pytest.mark.parametrize("pattern", ["random", "circular", "ring", "row", "column", "checkerboard"])
def test_density_sizes_the_pattern_on_each_tile(tiled, pattern):
    _, record = apply_defects(tiled, [f"{pattern}:layer=0,density=0.5"], seed=3)
    per_tile = [d for d, s in zip(record.defects, record.sources) if s == 0]
    assert len(per_tile) == 9 and [d.tiles for d in per_tile] == [(t,) for t in range(9)]
    for tile, density in zip(tiled.layers[0].tiles, record.tile_density[0]):
        cells = int(np.prod(tile_shape(tile)))
        # the same pattern resolved on the tile alone, as an untiled array of the tile's shape
        alone = map_weights([np.ones((tile_shape(tile)[1] // 2, tile_shape(tile)[0] - 1))], [np.zeros(tile_shape(tile)[1] // 2)])
        _, own = apply_defects(alone, [f"{pattern}:density=0.5"], seed=3)
        if pattern != "random":  # the geometric sizes depend on the shape alone
            assert density == own.density[0], tile.index
        else:
            assert density * cells == round_half_up(0.5 * cells)


def test_each_tile_draws_from_its_own_seed_so_other_tiles_do_not_reshuffle_it(tiled):
    defects = ["random:layer=0,tiles={},density=0.3,kind=mix", "column:layer=0,tiles={},count=1"]
    _, everywhere = apply_defects(tiled, [d.format("all") for d in defects], seed=4)
    _, one = apply_defects(tiled, [d.format(4) for d in defects], seed=4)
    _, two = apply_defects(tiled, [d.format("[4,1]") for d in defects], seed=4)
    t = tiled.layers[0].tiles[4]
    for record in (one, two):
        assert np.array_equal(record.masks[0][t.rows, t.columns], everywhere.masks[0][t.rows, t.columns])
        assert np.array_equal(record.stuck_s[0][t.rows, t.columns], everywhere.stuck_s[0][t.rows, t.columns],
                              equal_nan=True)
    outside = np.ones(one.masks[0].shape, dtype=bool)
    outside[t.rows, t.columns] = False
    assert not one.masks[0][outside].any()
    # tiles differ from each other: each has its own generator
    masks = [everywhere.defect_masks[k][s.rows, s.columns] for k, s in enumerate(tiled.layers[0].tiles)]
    assert not np.array_equal(masks[0], masks[1])


def test_resolved_tile_defects_reproduce_the_masks(tiled):
    _, record = apply_defects(tiled, ["row:count=2", "checkerboard:layer=1,density=0.3", "ring:density=0.3"], seed=5)
    assert all(len(d.tiles) == 1 and d.density is None for d in record.defects)
    _, again = apply_defects(tiled, record.defects, seed=123)
    assert all(np.array_equal(a, b) for a, b in zip(record.masks, again.masks))


# ----------------------------------------------------------------------------- clusters across the die

@pytest.fixture(scope="module")
def two_tiles():
    """One 24 x 16 layer cut into two 24 x 8 tiles side by side on the die."""
    rng = np.random.default_rng(0)
    return map_ops([Dense(rng.normal(size=(8, 23)), rng.normal(size=8), None)], MappingConfig(tile_cols=8))


def boundary_co_hits(circuit, defects) -> tuple[float, float]:
    """P(right neighbour hit | cell hit) across the tile boundary, and inside a tile, over 40 seeds."""
    across = inside = hits_a = hits_in = 0
    for seed in range(40):
        mask = apply_defects(circuit, defects, seed=seed)[1].masks[0]
        across += (mask[:, 7] & mask[:, 8]).sum()
        hits_a += mask[:, 7].sum()
        inside += (mask[:, 6] & mask[:, 7]).sum()
        hits_in += mask[:, 6].sum()
    return across / hits_a, inside / hits_in


def test_a_cluster_continues_across_the_tile_boundary(two_tiles):
    assert [t.origin for t in two_tiles.layers[0].tiles] == [(0, 0), (0, 8)]
    spanning, inside = boundary_co_hits(two_tiles, ["clustered:density=0.2,correlation_cells=6"])
    # the same tiles, each with a field of its own: the boundary cuts every cluster apart
    cut_across, cut_inside = boundary_co_hits(two_tiles, ["clustered:tile=0,density=0.2,correlation_cells=6",
                                                          "clustered:tile=1,density=0.2,correlation_cells=6"])
    assert spanning > 0.6 and abs(spanning - inside) < 0.2  # the boundary is invisible to one die field
    assert cut_across < 0.4 < cut_inside
    assert spanning > 2 * cut_across


def test_a_die_field_puts_more_on_some_tiles_and_its_total_is_the_density(tiled):
    _, record = apply_defects(tiled, ["clustered:density=0.2,correlation_cells=3"], seed=2)
    cells = sum(m.size for m in record.masks)
    assert sum(m.sum() for m in record.masks) == round_half_up(0.2 * cells)
    densities = [d for layer in record.tile_density for d in layer]
    assert max(densities) - min(densities) > 0.2  # tiles under a cluster get more than the others
    by_tile = [(d.layers[0], d.tiles[0], d.params["count"]) for d in record.defects]
    for layer, tile, count in by_tile:
        t = record.tiles[layer][tile]
        assert count == record.masks[layer][t.rows, t.columns].sum()
    with pytest.raises(ValueError, match="count=40 cells asked for per array, but the 13 targeted arrays have 146"):
        apply_defects(tiled, ["clustered:count=40"])


# ----------------------------------------------------------------------------- the record

def test_record_holds_what_each_tile_received(tiled):
    _, record = apply_defects(tiled, ["row:layer=0,tile=1,indices=[0]", "column:layer=1,tiles=[0,3],indices=[0]"])
    t = record.tiles[0][1]
    assert (t.rows, t.columns) == (slice(0, 4), slice(4, 8))
    assert record.tile_density[0] == [0, 1 / 4, 0, 0, 0, 0, 0, 0, 0]
    assert record.tile_density[1] == [1 / 4, 0, 0, 1 / 2]  # 4 of 4x4 cells, 2 of 2x2
    assert record.density == [4 / 110, 6 / 36]  # per layer, as before
    assert [record.defect_density(k) for k in range(3)] == [1 / 4, 1 / 4, 1 / 2]  # on each resolved tile
    summary = json.loads(json.dumps(record.summary()))
    assert summary["tile_density"] == record.tile_density
    assert [r["defect"] for r in summary["resolved"]] == ["row:layer=0,tile=1,kind=on,indices=[0]",
                                                         "column:layer=1,tile=0,kind=on,indices=[0]",
                                                         "column:layer=1,tile=3,kind=on,indices=[0]"]


def test_an_index_outside_a_smaller_edge_tile_names_the_tile(tiled):
    with pytest.raises(ValueError, match=r"on layer 0 tile 2 \(4x2\): column index 3 does not exist"):
        apply_defects(tiled, ["column:layer=0,indices=[3]"])


# ----------------------------------------------------------------------------- the picture

def test_die_layout_keeps_die_positions_and_separates_tiles(tiled):
    layer = tiled.layers[0]
    (height, width), offsets = die_layout(layer)
    tiles = layer.tiles
    canvas = np.zeros((height, width), dtype=int)
    for tile, (r, c) in zip(tiles, offsets):
        canvas[r:r + tile_shape(tile)[0], c:c + tile_shape(tile)[1]] += 1
    assert canvas.max() == 1 and canvas.sum() == layer.conductance.size  # no overlap, every cell drawn
    for a in tiles:  # a right or lower neighbour on the die starts after a gap
        for b in tiles:
            if b.grid == (a.grid[0], a.grid[1] + 1):
                assert offsets[b.index][1] - offsets[a.index][1] > b.origin[1] - a.origin[1]
            if b.grid == (a.grid[0] + 1, a.grid[1]):
                assert offsets[b.index][0] - offsets[a.index][0] > b.origin[0] - a.origin[0]
    assert die_layout(map_weights([np.ones((2, 3))], [np.zeros(2)]).layers[0]) == ((4, 4), [(0, 0)])


def test_defect_maps_of_a_tiled_circuit_are_written(tiled, tmp_path):
    new, record = apply_defects(tiled, ["clustered:density=0.1,kind=on", "ring:layer=0,tile=4,density=0.3,kind=off"])
    path = plot_defect_maps(new, record, tmp_path / "tiles.png")
    assert path.stat().st_size > 10_000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- passive programming per array

# Conductances, disturbed cells and pulses of the untiled circuit above, hashed, as programmed before tiles.
PROGRAMMED_BEFORE_TILES = {"v/2": ("56cc95435b4a0985", 65), "v/3": ("f9592c66d4a21b80", 22)}


@pytest.mark.parametrize("scheme", ["v/2", "v/3"])
def test_untiled_passive_programming_is_unchanged(untiled, scheme):
    new, rec = apply_passive_programming(untiled, SwitchingDevice(threshold_variation=0.3), WriteVerifyConfig(),
                                         np.random.default_rng(4), scheme=scheme, record_masks=True)
    h = hashlib.sha256()
    for g, r in zip(new.conductances, rec["layers"]):
        h.update(g.tobytes())
        h.update(r["disturbed_mask"].tobytes())
        h.update(r["pulses_map"].tobytes())
    assert (h.hexdigest()[:16], rec["disturbed"]) == PROGRAMMED_BEFORE_TILES[scheme]


def side_by_side(tiling: bool):
    """A 9 x 16 layer: its left half to program across the window, its right half already at G_min."""
    rng = np.random.default_rng(1)
    circuit = map_ops([Dense(rng.normal(size=(8, 8)), rng.normal(size=8), None)],
                      MappingConfig(tile_cols=8 if tiling else None))
    cell = circuit.cell
    g = np.full(circuit.layers[0].conductance.shape, cell.g_min)
    g[:, :8] = np.exp(rng.uniform(np.log(cell.g_min), np.log(cell.g_max), size=(9, 8)))
    return circuit.with_conductances([g])


@pytest.mark.parametrize("scheme", ["v/2", "v/3"])
def test_programming_one_tile_never_disturbs_another(scheme):
    device, config = SwitchingDevice(threshold_variation=0.35), WriteVerifyConfig()
    results = {}
    for tiling in (False, True):
        circuit = side_by_side(tiling)
        new, rec = apply_passive_programming(circuit, device, config, np.random.default_rng(2), scheme=scheme,
                                             record_masks=True)
        results[tiling] = (new.conductances[0], rec["layers"][0]["disturbed_mask"], circuit)
    g_min = results[True][2].cell.g_min
    # One array: the right half shares the left half's word lines and is half-selected and disturbed.
    assert results[False][1][:, 8:].any()
    # Two arrays: the right tile has lines of its own; its cells need no pulse and none reaches them.
    g, disturbed, circuit = results[True]
    assert not disturbed[:, 8:].any() and np.all(g[:, 8:] == g_min)
    # and each tile is exactly an array programmed on its own, one after the other
    rng = np.random.default_rng(2)
    for tile in circuit.layers[0].tiles:
        alone = program_passive(circuit.layers[0].conductance[tile.rows, tile.columns], g_min, circuit.cell.g_max,
                                device, config, rng, scheme)
        assert np.array_equal(alone.conductance, g[tile.rows, tile.columns])
