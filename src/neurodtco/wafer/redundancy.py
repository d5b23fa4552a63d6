"""Redundancy: spare rows and columns per array, onto which a tested die remaps its worst lines.

The model: every physical array (tile) carries ``spare_rows`` spare word lines and
``spare_cols`` spare bit lines, themselves defect-free (tested good at wafer sort). After the
test has found the stuck cells, the repair repeatedly takes the line (row or column of that
array) with the most remaining stuck cells and moves it onto a spare of its kind, while spares
of that kind remain; ties go to rows, then to the lower index. A remapped line's cells are
healthy copies programmed with the line's intended conductances, so they leave the die's stuck
map. This greedy rule is the classic repair heuristic (optimal row/column repair is NP-complete);
it may leave cells a smarter allocation would repair, so yields with spares are lower bounds.
"""

from __future__ import annotations

import numpy as np

from ..circuit import Circuit
from .diemap import DieMap


def repair(die: DieMap, circuit: Circuit, spare_rows: int, spare_cols: int) -> DieMap:
    """The die after its worst lines moved onto spares (see the module doc); ``die`` is unchanged."""
    for name, value in (("spare_rows", spare_rows), ("spare_cols", spare_cols)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name}={value!r} is not accepted: expected an integer >= 0 (spare lines per array)")
    if die.n_stuck == 0 or spare_rows + spare_cols == 0:
        return die
    out = []
    for values, layer in zip(die.stuck_s, circuit.layers):
        values = values.copy()
        for tile in layer.tiles:
            window = values[tile.rows, tile.columns]  # a view: repairs write through
            stuck = ~np.isnan(window)
            rows_left, cols_left = spare_rows, spare_cols
            while stuck.any() and (rows_left or cols_left):
                per_row = stuck.sum(axis=1) if rows_left else np.zeros(stuck.shape[0], dtype=int)
                per_col = stuck.sum(axis=0) if cols_left else np.zeros(stuck.shape[1], dtype=int)
                r, c = int(per_row.argmax()), int(per_col.argmax())
                if per_row[r] >= per_col[c]:
                    stuck[r, :] = False
                    window[r, :] = np.nan
                    rows_left -= 1
                else:
                    stuck[:, c] = False
                    window[:, c] = np.nan
                    cols_left -= 1
        out.append(values)
    return DieMap(die.key, tuple(out))
