"""Stuck-at defects: the geometry of every pattern, its density, its application, and what is refused."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurodtco.defects import (PATTERNS, Defect, apply_defects, load_defects, max_radius, normalized_distance,
                               parse_defect, plot_defect_maps, resolve_pattern)
from neurodtco.defects.patterns import round_half_up

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

shapes = st.tuples(st.integers(1, 12), st.integers(1, 12))
centers = st.tuples(st.floats(0, 1), st.floats(0, 1))
seeds = st.integers(0, 2**31)


def mask_of(defect: Defect, shape, seed: int = 0) -> np.ndarray:
    return resolve_pattern(defect, shape, np.random.default_rng(seed))[1]


def brute_distance(shape, center) -> np.ndarray:
    """The documented coordinates, written out cell by cell."""
    rows, cols = shape
    out = np.empty(shape)
    for i in range(rows):
        for j in range(cols):
            dy = ((i + 0.5) / rows - center[0]) / 0.5
            dx = ((j + 0.5) / cols - center[1]) / 0.5
            out[i, j] = math.sqrt(dy * dy + dx * dx)
    return out


# ----------------------------------------------------------------------------- geometry

@FAST
@given(shape=shapes, center=centers, frac=st.floats(0, 1))
def test_circle_follows_the_documented_coordinates_and_complement_partitions(shape, center, frac):
    radius = frac * max_radius(center)
    circle = mask_of(Defect("circular", params={"radius": radius, "center": center}), shape)
    complement = mask_of(Defect("circular_complement", params={"radius": radius, "center": center}), shape)
    assert np.array_equal(circle, brute_distance(shape, center) < radius)
    assert not np.any(circle & complement) and np.all(circle | complement)


@FAST
@given(shape=shapes, center=centers, a=st.floats(0, 1), b=st.floats(0, 1))
def test_ring_is_outer_circle_minus_inner_circle(shape, center, a, b):
    r_max = max_radius(center)
    inner, outer = sorted((a * r_max, b * r_max))
    if not inner < outer:
        return
    ring = mask_of(Defect("ring", params={"inner": inner, "outer": outer, "center": center}), shape)
    big = mask_of(Defect("circular", params={"radius": outer, "center": center}), shape)
    small = mask_of(Defect("circular", params={"radius": inner, "center": center}), shape)
    assert np.array_equal(ring, big & ~small)


@FAST
@given(shape=shapes, center=centers)
def test_radius_zero_hits_nothing_and_the_farthest_corner_everything(shape, center):
    assert not mask_of(Defect("circular", params={"radius": 0.0, "center": center}), shape).any()
    assert mask_of(Defect("circular", params={"radius": max_radius(center), "center": center}), shape).all()


def test_radius_one_is_the_inscribed_ellipse_on_a_non_square_array():
    mask = mask_of(Defect("circular", params={"radius": 1.0}), (20, 4))
    # Along the middle the ellipse reaches every row and every column, but not the corners.
    assert mask[:, 1].all() and mask[10, :].all()
    assert not mask[0, 0] and not mask[-1, -1]


@FAST
@given(shape=shapes, axis=st.sampled_from(["row", "column"]), data=st.data())
def test_lines_hit_exactly_the_requested_lines(shape, axis, data):
    n = shape[0] if axis == "row" else shape[1]
    indices = data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=n))
    mask = mask_of(Defect(axis, params={"indices": indices}), shape)
    wanted = {k % n for k in indices}
    lines = mask if axis == "row" else mask.T
    for k in range(n):
        assert lines[k].all() if k in wanted else not lines[k].any()


@FAST
@given(shape=shapes, axis=st.sampled_from(["row", "column"]), fraction=st.floats(0, 1), seed=seeds)
def test_line_fraction_hits_that_many_whole_lines(shape, axis, fraction, seed):
    n = shape[0] if axis == "row" else shape[1]
    mask = mask_of(Defect(axis, params={"fraction": fraction}), shape, seed)
    lines = mask if axis == "row" else mask.T
    full = lines.all(axis=1)
    assert full.sum() == round_half_up(fraction * n)
    assert not lines[~full].any()


def checkerboard_count(shape, block, phase) -> int:
    """Hit count from whole blocks: sizes of the row and column blocks, paired by parity."""
    rows_b = [min(block, shape[0] - s) for s in range(0, shape[0], block)]
    cols_b = [min(block, shape[1] - s) for s in range(0, shape[1], block)]
    return sum(a * c for i, a in enumerate(rows_b) for j, c in enumerate(cols_b) if (i + j) % 2 == phase)


@FAST
@given(shape=shapes, block=st.integers(1, 4), phase=st.integers(0, 1))
def test_checkerboard_has_the_right_count_and_parity(shape, block, phase):
    mask = mask_of(Defect("checkerboard", params={"block": block, "phase": phase}), shape)
    assert mask.sum() == checkerboard_count(shape, block, phase)
    i, j = np.nonzero(mask)
    assert np.all((i // block + j // block) % 2 == phase)
    other = mask_of(Defect("checkerboard", params={"block": block, "phase": 1 - phase}), shape)
    assert not np.any(mask & other) and np.all(mask | other)


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(2, 40), cols=st.integers(2, 40), p=st.floats(0, 1), seed=seeds)
def test_random_probability_reaches_its_density_within_binomial_noise(rows, cols, p, seed):
    from scipy.stats import binom

    mask = mask_of(Defect("random", params={"p": p}), (rows, cols), seed)
    n, k = rows * cols, int(mask.sum())
    # Exact binomial tails: a normal band fails on few cells at an extreme p (2 of 4 at p = 0.97 has p ~ 0.006).
    tail = min(binom.cdf(k, n, p), binom.sf(k - 1, n, p))
    assert tail > 1e-7, (k, n, p, tail)


@FAST
@given(shape=shapes, density=st.floats(0, 1), seed=seeds,
       pattern=st.sampled_from(["random", "clustered"]))
def test_random_and_clustered_density_hits_the_nearest_count_exactly(shape, density, seed, pattern):
    mask = mask_of(Defect(pattern, density=density), shape, seed)
    assert mask.sum() == round_half_up(density * shape[0] * shape[1])
    assert abs(mask.mean() - density) <= 0.5 / mask.size + 1e-12


def neighbour_hit_fraction(mask: np.ndarray) -> float:
    """Among the 4-neighbours of hit cells, the fraction that are hit too."""
    hits = pairs = 0
    for di, dj in ((0, 1), (1, 0)):
        a = mask[: mask.shape[0] - di, : mask.shape[1] - dj]
        b = mask[di:, dj:]
        hits += 2 * np.sum(a & b)
        pairs += np.sum(a) + np.sum(b)
    return hits / pairs


def test_clustered_defects_are_spatially_correlated_and_random_ones_are_not():
    clustered, scattered = [], []
    for seed in range(5):
        d = Defect("clustered", density=0.1, params={"correlation_cells": 2.0})
        clustered.append(neighbour_hit_fraction(mask_of(d, (40, 40), seed)))
        scattered.append(neighbour_hit_fraction(mask_of(Defect("random", density=0.1), (40, 40), seed)))
    # Independent cells: a neighbour is hit with the density itself; clusters make that several times larger.
    assert np.mean(scattered) == pytest.approx(0.1, abs=0.03)
    assert np.mean(clustered) > 0.5


@FAST
@given(shape=shapes, center=centers, density=st.floats(0, 1),
       pattern=st.sampled_from(["circular", "circular_complement"]))
def test_circle_density_picks_the_closest_achievable_count(shape, center, density, pattern):
    n = shape[0] * shape[1]
    mask = mask_of(Defect(pattern, density=density, params={"center": center}), shape)
    d = normalized_distance(shape, center)  # the coordinates themselves are checked above
    radii = list(np.unique(d)) + [max_radius(center)]
    achievable = [(d < r).sum() if pattern == "circular" else (d >= r).sum() for r in radii]
    best = min(abs(c - density * n) for c in achievable)
    assert abs(mask.sum() - density * n) == pytest.approx(best)


@FAST
@given(rows=st.integers(8, 40), cols=st.integers(8, 40), density=st.floats(0, 1))
def test_checkerboard_density_within_two_percent_on_arrays_of_8x8_and_more(rows, cols, density):
    defect = Defect("checkerboard", density=density)
    params, mask = resolve_pattern(defect, (rows, cols), np.random.default_rng(0))
    assert abs(mask.mean() - density) <= 0.02
    assert params["period"] >= 1 and 0 <= params["width"] <= params["period"]


def test_checkerboard_density_one_half_is_the_classic_checkerboard():
    params, mask = resolve_pattern(Defect("checkerboard", density=0.5), (8, 8), np.random.default_rng(0))
    assert (params["period"], params["width"]) == (2, 1)
    assert np.array_equal(mask, mask_of(Defect("checkerboard"), (8, 8)))


@FAST
@given(shape=st.tuples(st.integers(4, 16), st.integers(4, 16)), density=st.floats(0.05, 0.6))
def test_ring_density_reaches_the_closest_count_of_its_family(shape, density):
    params, mask = resolve_pattern(Defect("ring", density=density), shape, np.random.default_rng(0))
    assert params["inner"] == pytest.approx(params["outer"] / 2)
    assert np.array_equal(mask, mask_of(Defect("ring", params={"inner": params["inner"], "outer": params["outer"]}), shape))
    d = normalized_distance(shape)
    outers = [o for o in np.unique(np.concatenate([d.ravel(), 2 * d.ravel(), [max_radius()]])) if 0 < o <= max_radius()]
    best = min(abs(((d >= o / 2) & (d < o)).sum() - density * d.size) for o in outers)
    assert abs(mask.sum() - density * d.size) == pytest.approx(best)


@FAST
@given(shape=shapes, seed=seeds, pattern=st.sampled_from(PATTERNS), density=st.floats(0, 1))
def test_same_seed_gives_the_same_mask(shape, seed, pattern, density):
    defect = Defect(pattern, density=density)
    try:
        first = mask_of(defect, shape, seed)
    except ValueError:  # a ring cannot reach every density
        return
    assert np.array_equal(first, mask_of(defect, shape, seed))


def test_different_seeds_give_different_random_masks():
    masks = {mask_of(Defect(p, density=0.2), (20, 20), s).tobytes() for p in ("random", "clustered") for s in range(4)}
    assert len(masks) == 8


# ----------------------------------------------------------------------------- application

@pytest.fixture(scope="module")
def small_circuit():
    """A 6-5-4-3 network mapped with random weights: three small arrays, fast to simulate."""
    from neurodtco.mapping import map_weights

    rng = np.random.default_rng(3)
    widths = (6, 5, 4, 3)
    weights = [rng.normal(size=(o, i)) for i, o in zip(widths[:-1], widths[1:])]
    biases = [rng.normal(size=o) for o in widths[1:]]
    return map_weights(weights, biases)


@pytest.mark.parametrize("text,expected", [
    ("row:indices=[-1],kind=on", "g_max"),
    ("circular:density=0.3,kind=off", "g_min"),
    ("ring:inner=0.3,outer=1.1,kind=at,conductance_s=3.3e-5", 3.3e-5),
    ("column:fraction=0.5,kind=at,resistance_ohm=47000", 1 / 47000),
    ("checkerboard:kind=on", "g_max"),
    ("clustered:density=0.25,kind=off", "g_min"),
])
def test_stuck_cells_change_to_exactly_the_stuck_value_and_nothing_else(small_circuit, text, expected):
    value = getattr(small_circuit.cell, expected) if isinstance(expected, str) else expected
    before = [g.copy() for g in small_circuit.conductances]
    new, record = apply_defects(small_circuit, [text], seed=5)
    for index, (old, g, mask) in enumerate(zip(before, new.conductances, record.masks)):
        assert mask.any(), index  # "all" layers are targeted
        assert np.all(g[mask] == value)
        assert np.array_equal(g[~mask], old[~mask])
        assert np.array_equal(small_circuit.conductances[index], old)  # the input circuit is unchanged
        assert record.density[index] == mask.mean()


def test_bias_row_defect_changes_the_bias_weights_only(small_circuit):
    new, record = apply_defects(small_circuit, ["row:layer=1,indices=[-1],kind=on"])
    layer = new.layers[1]
    assert record.masks[1][-1].all() and record.masks[1].sum() == layer.n_columns
    w_old, w_new = small_circuit.layers[1].effective_weights(), layer.effective_weights()
    assert np.array_equal(w_old[:, :-1], w_new[:, :-1])
    # Both columns of each pair at G_max: the bias weight of every neuron becomes zero.
    assert np.allclose(w_new[:, -1], 0.0)


def test_only_targeted_layers_change(small_circuit):
    new, record = apply_defects(small_circuit, [Defect("random", layers=(0, 2), kind="on", density=0.3)])
    assert record.masks[0].any() and record.masks[2].any() and not record.masks[1].any()
    assert np.array_equal(new.conductances[1], small_circuit.conductances[1])
    assert record.density[1] == 0.0


def test_later_defects_win_where_they_overlap(small_circuit):
    new, record = apply_defects(small_circuit, ["row:layer=0,indices=[0],kind=on", "column:layer=0,indices=[0],kind=off"])
    g = new.conductances[0]
    assert g[0, 0] == small_circuit.cell.g_min and np.all(g[0, 1:] == small_circuit.cell.g_max)
    assert record.masks[0].sum() == g.shape[0] + g.shape[1] - 1
    assert len(record.defects) == 2 and record.sources == [0, 1]


def test_mix_sticks_each_cell_on_or_off_with_the_given_fraction(small_circuit):
    cell = small_circuit.cell
    _, rec_all_on = apply_defects(small_circuit, ["random:layer=0,p=1,kind=mix,on_fraction=1"])
    assert np.all(rec_all_on.stuck_s[0] == cell.g_max)
    _, rec_all_off = apply_defects(small_circuit, ["random:layer=0,p=1,kind=mix,on_fraction=0"])
    assert np.all(rec_all_off.stuck_s[0] == cell.g_min)
    on = []
    for seed in range(20):
        _, rec = apply_defects(small_circuit, ["random:layer=0,p=1,kind=mix,on_fraction=0.3"], seed=seed)
        values = rec.stuck_s[0]
        assert np.all((values == cell.g_max) | (values == cell.g_min))
        on.append(np.mean(values == cell.g_max))
    n = 20 * small_circuit.layers[0].conductance.size
    assert abs(np.mean(on) - 0.3) <= 4 * math.sqrt(0.3 * 0.7 / n)


def test_a_stuck_on_plus_column_raises_that_output_by_the_ohms_law_amount(small_circuit):
    from neurodtco.engines import simulate

    last = small_circuit.n_layers - 1
    layer = small_circuit.layers[last]
    col = int(layer.plus_columns[1])
    new, _ = apply_defects(small_circuit, [f"column:layer={last},indices=[{col}],kind=on"])
    x = np.random.default_rng(0).uniform(0, 0.2, size=(7, small_circuit.n_inputs))
    base = simulate(small_circuit, x, return_hidden=True)
    out = simulate(new, x).outputs_v
    rows = layer.row_voltages(base.hidden_v[-1])
    # Neuron 1 sees its plus column's extra current (G_max - G) V through R_f and the difference stage.
    extra = rows @ (small_circuit.cell.g_max - layer.conductance[:, col])
    expected = base.outputs_v.copy()
    expected[:, 1] += layer.neuron.difference_gain * layer.neuron.feedback_resistance_ohm * extra
    assert np.allclose(out, expected, rtol=1e-12, atol=1e-15)


def test_resolved_defects_reproduce_the_same_masks(small_circuit):
    requested = ["circular:density=0.3,kind=off", "row:layer=1,count=2", "checkerboard:layer=2,density=0.25"]
    _, record = apply_defects(small_circuit, requested, seed=11)
    assert all(d.density is None and len(d.layers) == 1 for d in record.defects)
    _, again = apply_defects(small_circuit, record.defects, seed=99)
    for a, b in zip(record.masks, again.masks):
        assert np.array_equal(a, b)
    assert json.loads(json.dumps(record.summary()))["defect_density"] == record.density


def test_a_density_too_small_for_one_line_hits_nothing(small_circuit):
    new, record = apply_defects(small_circuit, ["row:density=0.01,kind=on"])
    assert record.density == [0.0] * small_circuit.n_layers
    assert all(d.params["indices"] == () for d in record.defects)
    assert all(np.array_equal(a, b) for a, b in zip(new.conductances, small_circuit.conductances))


def test_same_seed_same_record_and_the_seed_matters(small_circuit):
    defects = ["clustered:density=0.3", "random:p=0.2,kind=mix"]
    a, ra = apply_defects(small_circuit, defects, seed=1)
    b, rb = apply_defects(small_circuit, defects, seed=1)
    _, rc = apply_defects(small_circuit, defects, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a.conductances, b.conductances))
    assert any(not np.array_equal(x, y) for x, y in zip(ra.masks, rc.masks))


# ----------------------------------------------------------------------------- vocabulary and refusals

@pytest.mark.parametrize("text", [
    "ring:layer=1,inner=0.2,outer=0.4,kind=on",
    "column:layer=0,fraction=0.3,kind=off",
    "row:layers=[0,2],indices=[0,5,-1],kind=at,resistance_ohm=50000.0",
    "circular:center=[0.25,0.75],radius=0.5,kind=mix,on_fraction=0.2",
    "checkerboard:block=2,phase=1",
    "clustered:density=0.1,correlation_cells=3.5,kind=stuck_off",
])
def test_one_liners_round_trip(text):
    defect = parse_defect(text)
    assert parse_defect(defect.to_string()) == defect
    assert Defect(**{**defect.__dict__}) == defect


def test_one_liner_fields_are_read_as_documented():
    d = parse_defect("ring:layer=1,inner=0.2,outer=0.4,kind=on")
    assert (d.pattern, d.layers, d.kind, d.params["inner"], d.params["outer"]) == ("ring", (1,), "on", 0.2, 0.4)
    d = parse_defect("random:layers=all,density=0.05,kind=stuck_on")
    assert (d.layers, d.density, d.kind) == ("all", 0.05, "on")


@pytest.mark.parametrize("text,fragments", [
    ("circle:radius=0.3", ["unknown defect pattern 'circle'", "random, circular, circular_complement, ring, row, column, checkerboard, clustered"]),
    ("circular:radius=1.5", ["radius=1.5 is outside the array", "1.414"]),
    ("circular:center=[0.9,0.9],radius=2.6", ["outside the array", "2.546"]),
    ("circular:center=[1.2,0.5],radius=0.3", ["center", "[0, 1]"]),
    ("ring:inner=0.4,outer=0.4", ["inner=0.4 must be smaller than outer=0.4"]),
    ("ring:inner=0.5,outer=0.2", ["must be smaller"]),
    ("random:density=1.5", ["density=1.5", "[0, 1]"]),
    ("random:density=-0.1", ["density=-0.1", "[0, 1]"]),
    ("row:radius=0.2", ["unknown key 'radius' for pattern 'row'", "indices, count, fraction"]),
    ("circular:radius=0.3,on_fraction=0.2", ["only applies to kind=mix"]),
    ("circular:radius=0.3,kind=sideways", ["unknown defect kind", "on", "off", "at", "mix"]),
    ("circular:radius=0.3,kind=at", ["conductance_s", "resistance_ohm"]),
    ("random:p=0.1,density=0.1", ["exactly one size"]),
    ("ring:density=0.1,inner=0.1,outer=0.5", ["at most one"]),
    ("row", ["exactly one size"]),
    ("row:layer=-1,count=1", ["layer -1"]),
    ("random:layers=[0,x],p=0.1", ["layer 'x'"]),
    ("ring:layer=1,inner", ["not key=value"]),
    ("ring:layer=1 inner=0.2", ["layers='1 inner=0.2' is not accepted"]),
])
def test_nonsense_is_refused_with_a_message(text, fragments):
    with pytest.raises(ValueError) as info:
        parse_defect(text)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


@pytest.mark.parametrize("text,fragments", [
    ("ring:layer=7,inner=0.1,outer=0.3", ["layer 7 does not exist", "layers 0..2"]),
    ("row:layer=0,indices=[9]", ["row index 9 does not exist", "rows 0..6"]),
    ("random:layer=0,count=1000", ["count=1000"]),
    ("ring:density=0.95", ["not reachable", "reachable densities"]),
])
def test_nonsense_that_depends_on_the_circuit_is_refused(small_circuit, text, fragments):
    with pytest.raises(ValueError) as info:
        apply_defects(small_circuit, [text])
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_defects_file_takes_one_liners_and_mappings(tmp_path):
    path = tmp_path / "defects.yaml"
    path.write_text(
        "- ring:layer=1,inner=0.2,outer=0.4,kind=on\n"
        "- {pattern: column, layer: 0, kind: off, fraction: 0.3}\n"  # YAML reads a bare off as false
        "- pattern: circular\n  layers: [0, 2]\n  density: 0.1\n  params: {center: [0.3, 0.6]}\n"
    )
    defects = load_defects(path)
    assert [d.pattern for d in defects] == ["ring", "column", "circular"]
    assert defects[1].kind == "off" and defects[1].layers == (0,)
    assert defects[2].params["center"] == (0.3, 0.6) and defects[2].layers == (0, 2)
    bad = tmp_path / "bad.yaml"
    bad.write_text("- ring:layer=1,inner=0.5,outer=0.4\n")
    with pytest.raises(ValueError, match="entry 0"):
        load_defects(bad)


# ----------------------------------------------------------------------------- picture and command line

def test_defect_maps_are_drawn_for_every_array(small_circuit, tmp_path):
    import matplotlib.image as mpimg

    new, record = apply_defects(small_circuit, ["ring:layer=1,inner=0.2,outer=1.0,kind=on", "row:layer=0,indices=[-1],kind=off"])
    path = plot_defect_maps(new, record, tmp_path / "maps.png")
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[1] > image.shape[0] > 100  # panels side by side


def test_cli_simulate_reports_accuracy_with_and_without_defects(default_net, tmp_path):
    from typer.testing import CliRunner

    from neurodtco.cli import app

    runner = CliRunner()
    file = tmp_path / "d.yaml"
    file.write_text("- row:layer=1,indices=[0],kind=off\n")
    result = runner.invoke(app, ["simulate", "--json", "--defect", "column:layer=3,indices=[0,1],kind=on",
                                 "--defects-file", str(file)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["accuracy_healthy"] == payload["software_accuracy"]
    assert payload["defect_density"] == [0.0, 16 / 144, 0.0, 18 / 180]
    # Neuron 0 of the last layer reads two columns both stuck at G_max: its output is the same for
    # every image, so the digits 0 are no longer recognised and accuracy falls.
    assert payload["accuracy"] < payload["accuracy_healthy"]
    assert payload["defects"] == ["row:layer=1,kind=off,indices=[0]", "column:layer=3,kind=on,indices=[0,1]"]
    healthy = runner.invoke(app, ["simulate", "--json"])
    plain = json.loads(healthy.stdout.strip().splitlines()[-1])
    assert plain["accuracy"] == plain["accuracy_healthy"] and plain["defect_density"] == [0.0] * 4


def test_cli_defects_show_writes_a_png_and_refuses_nonsense(default_net, tmp_path):
    from typer.testing import CliRunner

    from neurodtco.cli import app

    runner = CliRunner()
    out = tmp_path / "maps.png"
    result = runner.invoke(app, ["defects", "show", "--defect", "ring:layer=1,inner=0.2,outer=0.4,kind=on",
                                 "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["defect_density"][0] == 0.0 and payload["defect_density"][1] > 0
    for args, fragment in [
        (["defects", "show", "--defect", "blob:density=0.1"], "known patterns"),
        (["defects", "show", "--defect", "ring:layer=4,inner=0.1,outer=0.2"], "layer 4 does not exist"),
        (["defects", "show"], "no defect given"),
        (["simulate", "--defect", "ring:inner=0.3,outer=0.2"], "must be smaller"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert fragment in result.stderr.replace("\n", " "), (args, result.stderr)
