"""Defect-map files: the round trip of drawn maps, and every malformed file refused with its line and column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurodtco.mapping import MappingConfig, map_network
from neurodtco.wafer import DefectField, DieMap, Wafer, draw_dies, read_defect_maps, write_defect_maps

HEADER = "wafer,die_x,die_y,layer,tile,row,col,kind,conductance_s\n"


@pytest.fixture(scope="module")
def tiled(default_net):
    return map_network(default_net, MappingConfig(tile_rows=32, tile_cols=8))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_drawn_maps_round_trip(tmp_path: Path, tiled, suffix: str) -> None:
    dies = draw_dies(DefectField(0.01, alpha=1.0, cluster_radius_mm=15.0), Wafer(diameter_mm=100.0), tiled, 40, seed=4)
    # A measured stuck-at value travels through conductance_s.
    odd = [v.copy() for v in dies[0].stuck_s]
    odd[1][0, 0] = 3.3e-5
    dies[0] = DieMap(dies[0].key, tuple(odd))
    path = write_defect_maps(tmp_path / f"maps{suffix}", dies, tiled)
    back = read_defect_maps(path, tiled)
    with_defects = sorted((d for d in dies if d.n_stuck), key=lambda d: d.key)
    assert back == with_defects
    everything = read_defect_maps(path, tiled, dies=[d.key for d in dies])
    assert everything == sorted(dies, key=lambda d: d.key)


def test_rows_and_columns_are_in_the_tiles_own_coordinates(tmp_path: Path, tiled) -> None:
    tile = tiled.layers[0].tiles[3]
    path = tmp_path / "m.csv"
    path.write_text(HEADER + "0,1,-2,0,3,2,1,stuck_on,\n0,1,-2,1,0,0,0,stuck_at,2.5e-5\n")
    (die,) = read_defect_maps(path, tiled)
    assert die.key == (0, 1, -2)
    assert die.stuck_s[0][tile.rows.start + 2, tile.columns.start + 1] == tiled.cell.g_max
    assert die.stuck_s[1][0, 0] == 2.5e-5
    assert die.n_stuck == 2


@pytest.mark.parametrize("body, match", [
    ("0,0,0,0,0,65,0,stuck_on,\n", r"line 2, column 'row': row 65 is outside layer 0 tile 0, which has rows 0..64"),
    ("0,0,0,0,0,0,0,stuck_on,\n0,0,0,0,0,1,16,stuck_off,\n",
     r"line 3, column 'col': col 16 is outside layer 0 tile 0, which has cols 0..15"),
    ("0,0,0,0,0,0,0,stuck_sideways,\n", r"line 2, column 'kind': 'stuck_sideways' is not a stuck kind"),
    ("0,0,0,0,0,1.5,0,stuck_on,\n", r"line 2, column 'row': '1.5' is not an integer"),
    ("0,0,0,7,0,0,0,stuck_on,\n", r"line 2, column 'layer': layer 7 does not exist: the circuit has layers 0..3"),
    ("0,0,0,0,1,0,0,stuck_on,\n", r"line 2, column 'tile': tile 1 does not exist: layer 0 has tiles 0..0"),
    ("0,0,0,0,0,0,0,stuck_at,\n", r"line 2, column 'conductance_s': a stuck_at cell needs its conductance"),
    ("0,0,0,0,0,0,0,stuck_at,-1e-5\n", r"line 2, column 'conductance_s': '-1e-5' is not a conductance"),
    ("0,0,0,0,0,0,0,stuck_on,\n0,0,0,0,0,0,0,stuck_off,\n", r"line 3, column 'row': this cell is already listed on line 2"),
    ("-1,0,0,0,0,0,0,stuck_on,\n", r"line 2, column 'wafer': -1 is negative"),
    ("0,0,0,0,0,0,stuck_on,\n", r"line 2: 8 fields, the header has 9"),
])
def test_malformed_rows_are_refused_with_line_and_column(tmp_path: Path, default_circuit, body: str, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + body)
    with pytest.raises(ValueError, match=match):
        read_defect_maps(path, default_circuit)


def test_missing_and_unknown_columns_are_named(tmp_path: Path, default_circuit) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("wafer,die_x,die_y,layer,row,col,kind\n0,0,0,0,0,0,stuck_on\n")
    with pytest.raises(ValueError, match=r"line 1: missing column\(s\) \['tile'\]"):
        read_defect_maps(path, default_circuit)
    path.write_text("wafer,die_x,die_y,layer,tile,row,col,kind,conductance\n0,0,0,0,0,0,0,stuck_on,\n")
    with pytest.raises(ValueError, match=r"line 1: unknown column\(s\) \['conductance'\]"):
        read_defect_maps(path, default_circuit)


def test_a_die_outside_the_given_dies_is_refused(tmp_path: Path, default_circuit) -> None:
    path = tmp_path / "m.csv"
    path.write_text(HEADER + "0,0,0,0,0,0,0,stuck_on,\n\n0,9,9,0,0,0,0,stuck_on,\n")
    with pytest.raises(ValueError, match=r"line 4, column 'die_x': die \(0, 9, 9\)"):
        read_defect_maps(path, default_circuit, dies=[(0, 0, 0)])


def test_parquet_errors_name_the_record(tmp_path: Path, default_circuit) -> None:
    import pandas as pd

    path = tmp_path / "bad.parquet"
    pd.DataFrame({"wafer": [0, 0], "die_x": [0, 0], "die_y": [0, 0], "layer": [0, 0], "tile": [0, 0],
                  "row": [0, 99], "col": [0, 0], "kind": ["stuck_on", "stuck_off"]}).to_parquet(path)
    with pytest.raises(ValueError, match=r"record 2, column 'row': row 99"):
        read_defect_maps(path, default_circuit)


def test_a_refused_file_loads_nothing(tmp_path: Path, default_circuit) -> None:
    # The error comes after valid rows: the reader gives back no partial result, only the error.
    path = tmp_path / "m.csv"
    good = "".join(f"0,0,0,0,0,{r},0,stuck_on,\n" for r in range(10))
    path.write_text(HEADER + good + "0,0,0,0,0,0,0,bogus,\n")
    loaded = None
    with pytest.raises(ValueError, match="line 12"):
        loaded = read_defect_maps(path, default_circuit)
    assert loaded is None
    path.write_text(HEADER + good)
    (die,) = read_defect_maps(path, default_circuit)
    assert np.count_nonzero(~np.isnan(die.stuck_s[0][:, 0])) == 10
