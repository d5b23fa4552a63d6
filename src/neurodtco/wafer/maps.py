"""Defect-map files: measured (or drawn) stuck cells of many dies, in CSV or Parquet.

One row per stuck cell, columns (in any order)::

    wafer, die_x, die_y, layer, tile, row, col, kind[, conductance_s]

* ``wafer`` (integer >= 0), ``die_x``/``die_y`` (integers, the die's grid indices, see
  ``geometry``): which die.
* ``layer`` (from 0), ``tile`` (the array's index in ``layer.tiles``, 0 for an untiled layer),
  ``row``/``col``: the cell in that array's own coordinates (row 0 is the first input row, the
  last row the bias row).
* ``kind``: ``stuck_on`` (``G_max``), ``stuck_off`` (``G_min``) or ``stuck_at`` (``conductance_s``).
* ``conductance_s`` (optional column, siemens): the measured stuck value; required for
  ``stuck_at``, and when given for ``stuck_on``/``stuck_off`` it replaces the window's end.

A die without stuck cells has no rows. ``.parquet`` files hold the same columns. A malformed file
is refused whole, with the line (CSV; the header is line 1) or record (Parquet) and the column.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..circuit import Circuit
from .diemap import DieMap
from .geometry import DieKey

COLUMNS: tuple[str, ...] = ("wafer", "die_x", "die_y", "layer", "tile", "row", "col", "kind")
OPTIONAL: tuple[str, ...] = ("conductance_s",)
KINDS: tuple[str, ...] = ("stuck_on", "stuck_off", "stuck_at")
_INTEGERS = COLUMNS[:-1]


def write_defect_maps(path: Union[str, Path], dies: Sequence[DieMap], circuit: Circuit) -> Path:
    """Write every stuck cell of ``dies`` (CSV, or Parquet for a ``.parquet`` path); returns the path."""
    import pandas as pd

    path = Path(path)
    cell = circuit.cell
    records: dict[str, list[Any]] = {name: [] for name in (*COLUMNS, *OPTIONAL)}
    for die in dies:
        for index, (values, layer) in enumerate(zip(die.stuck_s, circuit.layers)):
            for tile in layer.tiles:
                window = values[tile.rows, tile.columns]
                rows, cols = np.nonzero(~np.isnan(window))
                for r, c in zip(rows.tolist(), cols.tolist()):
                    g = float(window[r, c])
                    kind = "stuck_on" if g == cell.g_max else "stuck_off" if g == cell.g_min else "stuck_at"
                    for name, value in zip((*COLUMNS, *OPTIONAL), (*die.key, index, tile.index, r, c, kind, g)):
                        records[name].append(value)
    table = pd.DataFrame(records)
    if path.suffix == ".parquet":
        table.to_parquet(path, index=False)
    else:
        # repr-exact floats, so that a file read back gives the same conductances bit for bit
        table.to_csv(path, index=False, float_format="%.17g")
    return path


def read_defect_maps(path: Union[str, Path], circuit: Circuit, dies: Optional[Sequence[DieKey]] = None
                     ) -> list[DieMap]:
    """The dies of a defect-map file, sorted by key; with ``dies`` given, exactly those (clean ones included)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"defect-map file {str(path)!r} does not exist")
    header, rows, where = _load(path)
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{path}: line 1: missing column(s) {missing}; a defect-map file has the columns "
                         f"{list(COLUMNS)} and optionally {list(OPTIONAL)}")
    unknown = [c for c in header if c not in COLUMNS + OPTIONAL]
    if unknown:
        raise ValueError(f"{path}: line 1: unknown column(s) {unknown}; accepted: {list(COLUMNS + OPTIONAL)}")
    wanted = None if dies is None else {tuple(int(v) for v in k) for k in dies}
    stuck = {}
    seen: dict[tuple[int, ...], str] = {}
    for record, place in zip(rows, where):
        def bad(column: str, problem: str) -> ValueError:
            return ValueError(f"{path}: {place}, column {column!r}: {problem}")

        values = dict(zip(header, record))
        ints = {}
        for name in _INTEGERS:
            text = str(values[name]).strip()
            try:
                ints[name] = int(text)
            except ValueError:
                raise bad(name, f"{text!r} is not an integer") from None
        if ints["wafer"] < 0:
            raise bad("wafer", f"{ints['wafer']} is negative; wafers count from 0")
        key = (ints["wafer"], ints["die_x"], ints["die_y"])
        if wanted is not None and key not in wanted:
            raise bad("die_x", f"die {key} (wafer, die_x, die_y) is not one of the dies given")
        layer_index = ints["layer"]
        if not 0 <= layer_index < circuit.n_layers:
            raise bad("layer", f"layer {layer_index} does not exist: the circuit has layers 0..{circuit.n_layers - 1}")
        layer = circuit.layers[layer_index]
        tiles = layer.tiles
        if not 0 <= ints["tile"] < len(tiles):
            raise bad("tile", f"tile {ints['tile']} does not exist: layer {layer_index} has tiles 0..{len(tiles) - 1}")
        tile = tiles[ints["tile"]]
        for name, span in (("row", tile.rows), ("col", tile.columns)):
            size = span.stop - span.start
            if not 0 <= ints[name] < size:
                raise bad(name, f"{name} {ints[name]} is outside layer {layer_index} tile {tile.index}, which has "
                                f"{name}s 0..{size - 1}")
        kind = str(values["kind"]).strip()
        if kind not in KINDS:
            raise bad("kind", f"{kind!r} is not a stuck kind; accepted: {list(KINDS)}")
        g = _conductance(values.get("conductance_s"), kind, circuit, bad)
        cell_id = (*key, layer_index, tile.rows.start + ints["row"], tile.columns.start + ints["col"])
        if cell_id in seen:
            raise bad("row", f"this cell is already listed on {seen[cell_id]}; list each stuck cell once")
        seen[cell_id] = place
        stuck.setdefault(key, []).append((layer_index, cell_id[4], cell_id[5], g))
    keys = sorted(wanted) if wanted is not None else sorted(stuck)
    out = []
    for key in keys:
        arrays = [np.full(layer.conductance.shape, np.nan) for layer in circuit.layers]
        for layer_index, r, c, g in stuck.get(key, []):
            arrays[layer_index][r, c] = g
        out.append(DieMap(key, tuple(arrays)))
    return out


def _conductance(raw: Any, kind: str, circuit: Circuit, bad: Any) -> float:
    """The stuck value of one row: the given ``conductance_s``, or the window's end for on/off."""
    text = "" if raw is None or (isinstance(raw, float) and math.isnan(raw)) else str(raw).strip()
    if not text:
        if kind == "stuck_at":
            raise bad("conductance_s", "a stuck_at cell needs its conductance in siemens")
        return circuit.cell.g_max if kind == "stuck_on" else circuit.cell.g_min
    try:
        g = float(text)
    except ValueError:
        raise bad("conductance_s", f"{text!r} is not a number (siemens)") from None
    if not (math.isfinite(g) and g >= 0):
        raise bad("conductance_s", f"{text!r} is not a conductance: expected a finite value >= 0 S")
    return g


def _load(path: Path) -> tuple[list[str], list[list[Any]], list[str]]:
    """Header, rows and each row's place (``line N`` / ``record N``) of a CSV or Parquet file."""
    if path.suffix == ".parquet":
        import pandas as pd

        table = pd.read_parquet(path)
        header = [str(c) for c in table.columns]
        rows = table.astype(object).where(table.notna(), None).values.tolist()
        return header, rows, [f"record {k + 1}" for k in range(len(rows))]
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        rows, where = [], []
        for record in reader:
            if not record or all(not v.strip() for v in record):
                continue
            if len(record) != len(header):
                raise ValueError(f"{path}: line {reader.line_num}: {len(record)} fields, the header has {len(header)}")
            rows.append(record)
            where.append(f"line {reader.line_num}")
    return header, rows, where
