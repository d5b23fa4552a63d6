"""Large arrays: a sparse direct elimination by nested dissection of the array's geometry.

The dense steps in ``factorize`` carry a full ``C x C`` block down the rows: ``O(R C^3)``. The
nodal matrix itself is sparse (a grid: word lines across, bit lines down, cells between them),
and a grid is eliminated far more cheaply in nested-dissection order: cut it in two along a line
of nodes, eliminate each half's interior first, the line last. Here the cuts follow the array:

* a **block** of cells ``[r0, r1) x [c0, c1)`` owns its cells' word and bit nodes, the word
  segments on its left and the bit segments below it. Seen from outside it is a Laplacian over
  its *ports* (its other nodes eliminated), in four groups ``[L, Rt, T, Bt]``: ``L`` the nodes
  left of its rows' first segments (the row drivers for ``c0 = 0``), ``Rt`` its rows' last word
  nodes, ``T`` its columns' top bit nodes, ``Bt`` the nodes below its columns' last segments
  (the neuron inputs for ``r1 = R``). A single cell is the 4-node chain
  ``L -g_w- Rt -G- T -g_b- Bt``.
* two blocks side by side share ``Rt`` of the left one = ``L`` of the right one; one block above
  another shares ``Bt`` of the upper one = ``T`` of the lower one. **Merging** adds their
  Laplacians and eliminates the shared nodes (one Cholesky and one symmetric update, in BLAS).
* merging level by level (pairs of block columns or pairs of block rows, the shorter block side
  doubled first) ends with one block. The first levels run strip by strip (32 rows, so that
  a strip's blocks stay in cache), tiny blocks stored last and eliminated one node at a time
  across all blocks, larger ones stored first for batched LAPACK and BLAS. The last levels (16
  blocks or fewer) run block by block: each block first eliminates its dead ends (the far word
  ends of the last block column, the top bit ends of the first block row), so that the largest
  merges carry only live ports, and the last block's ports are the drivers and the neuron inputs.

What is left is the array's **port admittance**: ``(R + C) x (R + C)`` between the row drivers and
the neuron inputs. With the neuron inputs held, ``-S[drivers, neurons]`` is the collected current
per volt on each driver (the whole transfer matrix), ``S[neurons, neurons]`` is the admittance
the column ends see (``tiles.py``'s Norton equivalent) and ``S[drivers, drivers]`` the drivers'
currents per driver volt (the array's power, with no node voltage formed). A square ``N x N`` array costs ``O(N^3)``
flops instead of ``O(N^4)``, nearly all in large matrix products; memory stays ``O(N^2)``.

Exactness: every block is a floating Laplacian (no node tied to a fixed voltage), so its rows sum
to zero. The off-diagonal entries of a Schur complement are sums of terms of one sign (no
cancellation), and each diagonal is recomputed as minus its row's off-diagonal sum, as in the
Grassmann-Taksar-Heyman elimination: strong wires next to weak cells lose no digits.

Sizes that are not powers of two are padded: empty rows above the array (their drivers see only
their own open word line) and empty columns on its right (the word lines run on past the last
cell into open cells): neither carries current, so the padding is exact and is dropped at the end.
This path needs resistive word and bit lines (with an ideal line the dense steps are cheap) and
runs on the CPU (NumPy and SciPy's BLAS).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas, lapack

#: Dissection pays when ``R C^3 > _CROSSOVER R' C' max(R', C')`` (``'``: padded to powers of two);
#: measured, see docs/engines.md.
_CROSSOVER = 64
#: Rows per strip for the first levels (strip by strip, so that each strip's blocks stay in cache).
_STRIP = 32
#: The last levels run block by block (dropping dead ends) once this few blocks are left.
_FEW = 16
#: Doubles of joined matrices merged at once (about a core's cache).
_CHUNK_DOUBLES = 1 << 17
#: Blocks stay stored last (eliminated one node at a time, all blocks in one NumPy step) until
#: both sides reach this many cells; then they move first, for batched LAPACK and BLAS.
_SMALL_MAX = 4
#: Interfaces at least this large are eliminated block by block with Cholesky and a symmetric
#: rank update (half the flops of a batched LU solve, which is faster for many tiny blocks; at
#: 512 x 512, 16 took ~15 % less CPU time than 8 or 48).
_CHOLESKY_MIN = 16


def port_admittance(conductance: np.ndarray, g_word_s: float, g_bit_s: float) -> np.ndarray:
    """Laplacian ``[R + C, R + C]`` of an array seen from its row drivers, then its neuron inputs."""
    g = np.asarray(conductance, dtype=np.float64)
    rows, cols = g.shape
    if not (np.isfinite(g_word_s) and np.isfinite(g_bit_s)):
        raise ValueError("the nested-dissection solver needs resistive word and bit lines (finite segment "
                         f"conductances); got g_word={g_word_s!r} S, g_bit={g_bit_s!r} S")
    big_r, big_c = _power_of_two(rows), _power_of_two(cols)
    padded = np.zeros((big_r, big_c))
    padded[big_r - rows:, :cols] = g  # empty rows on top, empty columns on the right
    # strips of rows first, each small enough to stay in cache through its first levels
    strip = min(_STRIP, big_r)
    parts = [_levels(_cells(padded[r:r + strip], g_word_s, g_bit_s), 1, 1, strip, small=True)
             for r in range(0, big_r, strip)]
    h, w = parts[0][1:]
    blocks = np.concatenate([p[0] for p in parts], axis=0)
    blocks, h, w = _levels(blocks, h, w, max(big_r, big_c), few=_FEW)
    ports = _top(blocks, h, w)  # [drivers, neuron inputs], padding included
    keep = np.r_[big_r - rows:big_r, big_r:big_r + cols]
    return ports[keep[:, None], keep]


def _levels(blocks: np.ndarray, h: int, w: int, stop: int, small: bool = False,
            few: int = 1) -> tuple[np.ndarray, int, int]:
    """Merge ``h x w`` blocks level by level (the shorter side first) until both sides reach ``stop``
    or ``few`` blocks are left. Takes blocks stored last (``small``: ``[P, P, nbr, nbc]``) or first
    (``[nbr, nbc, P, P]``); returns them first.
    """
    while True:
        grid = blocks.shape[2:] if small else blocks.shape[:2]
        if grid[0] * grid[1] <= few or (h >= stop and w >= stop):
            break
        across = grid[1] > 1 and (w <= h or grid[0] == 1)
        if small and min(h, w) >= _SMALL_MAX:
            blocks = np.ascontiguousarray(np.moveaxis(blocks, (0, 1), (2, 3)))  # blocks first, for BLAS
            small = False
        if small:
            if across:
                blocks = _merge_small(blocks[..., 0::2], blocks[..., 1::2], h, w, across)
            else:
                blocks = _merge_small(blocks[..., 0::2, :], blocks[..., 1::2, :], h, w, across)
        else:
            first, second = (blocks[:, 0::2], blocks[:, 1::2]) if across else (blocks[0::2], blocks[1::2])
            blocks = _merge(first, second, h, w, across)
        if across:
            w *= 2
        else:
            h *= 2
    if small:
        blocks = np.ascontiguousarray(np.moveaxis(blocks, (0, 1), (2, 3)))
    return blocks, h, w


def _top(blocks: np.ndarray, h: int, w: int) -> np.ndarray:
    """The last levels, block by block: each block first drops its dead ends (the far word ends of
    the last block column, the top bit ends of the first block row), so that the largest merges
    carry only live ports. Returns the whole array's Laplacian over ``[drivers, neuron inputs]``.
    """
    nbr, nbc = blocks.shape[:2]
    live = {}
    for i in range(nbr):
        for j in range(nbc):
            sizes = (h, 0 if j == nbc - 1 else h, 0 if i == 0 else w, w)
            starts = np.cumsum((0, h, h, w))
            keep = np.r_[0:h, starts[1]:starts[1] + sizes[1], starts[2]:starts[2] + sizes[2], starts[3]:starts[3] + w]
            dead = np.setdiff1d(np.arange(2 * h + 2 * w), keep)
            mat = _schur(blocks[i, j][None], keep, dead)[0] if len(dead) else blocks[i, j]
            live[i, j] = (mat, sizes)
    while nbr > 1 or nbc > 1:
        across = nbc > 1 and (w <= h or nbr == 1)
        merged = {}
        for i in range(nbr // (1 if across else 2)):
            for j in range(nbc // (2 if across else 1)):
                pair = ((i, 2 * j), (i, 2 * j + 1)) if across else ((2 * i, j), (2 * i + 1, j))
                (a, sa), (b, sb) = live[pair[0]], live[pair[1]]
                joined, kept, sizes = _join(a[None], b[None], sa, sb, across, last=False)
                merged[i, j] = (_eliminate_last(joined, kept)[0], sizes)
        live = merged
        if across:
            nbc, w = nbc // 2, 2 * w
        else:
            nbr, h = nbr // 2, 2 * h
    return live[0, 0][0]


def port_response(conductance: np.ndarray, g_word_s: float,
                  g_bit_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Norton equivalent at the column ends and the drivers' view, column ends held.

    Returns the collected current per driver volt ``[R, C]``, the column ends' admittance
    ``[C, C]`` and the driver currents per driver volt ``[R, R]`` (for power: no node voltages needed).
    """
    rows = np.shape(conductance)[0]
    s = port_admittance(conductance, g_word_s, g_bit_s)
    return -s[:rows, rows:], s[rows:, rows:], s[:rows, :rows]


def dissection_pays(rows: int, cols: int, g_word_s: float, g_bit_s: float) -> bool:
    """True when nested dissection beats the dense row sweep for this shape (resistive lines only)."""
    if not (np.isfinite(g_word_s) and np.isfinite(g_bit_s)):
        return False  # an ideal line leaves the dense steps O(R C) or O(R C^2)
    # the sweep costs ~R C^3 (C x C blocks down R rows), dissection ~N^3 on its padded grid; measured
    # side by side (docs/engines.md): 64 x 64 sweep ~2x faster, 128 x 128 dissection ~2.5x faster
    big_r, big_c = _power_of_two(rows), _power_of_two(cols)
    return rows * cols ** 3 > _CROSSOVER * big_r * big_c * max(big_r, big_c)


def _power_of_two(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


def _cells(g: np.ndarray, g_word_s: float, g_bit_s: float) -> np.ndarray:
    """Every cell as its 4-port chain ``L -g_w- Rt -G- T -g_b- Bt``: ``[4, 4, R, C]``."""
    out = np.zeros((4, 4) + g.shape)
    for a, b, cond in ((0, 1, g_word_s), (1, 2, g), (2, 3, g_bit_s)):
        out[a, b] = out[b, a] = -cond
    for a in range(4):
        out[a, a] = -out[a].sum(axis=0)
    return out


def _layout(sa: tuple, sb: tuple, across: bool) -> tuple[int, int, tuple, tuple, tuple]:
    """Where each port group ``[L, Rt, T, Bt]`` of two blocks goes when they merge.

    ``sa``, ``sb``: group sizes of the first (left or upper) and second block. Across: new ports
    ``[L_a, Rt_b, T_a, T_b, Bt_a, Bt_b]``, shared ``Rt_a = L_b`` last. Down: new ports
    ``[L_a, L_b, Rt_a, Rt_b, T_a, Bt_b]``, shared ``Bt_a = T_b`` last. Returns the kept and
    total node counts, both blocks' group offsets and the merged block's group sizes.
    """
    if across:
        order = (("a", 0), ("b", 1), ("a", 2), ("b", 2), ("a", 3), ("b", 3))
        shared, new = (("a", 1), ("b", 0)), (sa[0], sb[1], sa[2] + sb[2], sa[3] + sb[3])
        n_shared = sa[1]
    else:
        order = (("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 3))
        shared, new = (("a", 3), ("b", 2)), (sa[0] + sb[0], sa[1] + sb[1], sa[2], sb[3])
        n_shared = sa[3]
    size = {"a": sa, "b": sb}
    place = {"a": [0] * 4, "b": [0] * 4}
    offset = 0
    for who, group in order:
        place[who][group] = offset
        offset += size[who][group]
    for who, group in shared:
        place[who][group] = offset
    return offset, offset + n_shared, tuple(place["a"]), tuple(place["b"]), new


def _join(first: np.ndarray, second: np.ndarray, sa: tuple, sb: tuple, across: bool, last: bool):
    """Both blocks' Laplacians added on the merged node list (blocks on the last two axes if ``last``).

    Returns the joined matrices, how many of their nodes are kept, and the merged group sizes.
    """
    kept, n, place_a, place_b, new = _layout(sa, sb, across)
    lead = first.shape[2:] if last else first.shape[:-2]
    joined = np.zeros((n, n) + lead if last else lead + (n, n))
    for src, sizes, place in ((first, sa, place_a), (second, sb, place_b)):
        starts = np.cumsum((0,) + tuple(sizes))
        for p, lp in enumerate(sizes):
            for q, lq in enumerate(sizes):
                if lp == 0 or lq == 0:
                    continue
                to = (slice(place[p], place[p] + lp), slice(place[q], place[q] + lq))
                fro = (slice(starts[p], starts[p] + lp), slice(starts[q], starts[q] + lq))
                if last:
                    joined[to] += src[fro]
                else:
                    joined[(Ellipsis,) + to] += src[(Ellipsis,) + fro]
    return joined, kept, new


def _merge_small(first: np.ndarray, second: np.ndarray, h: int, w: int, across: bool) -> np.ndarray:
    """``_merge`` for small blocks stored last (``[P, P, nbr, nbc]``): one node at a time over all blocks."""
    joined, kept, _ = _join(first, second, (h, h, w, w), (h, h, w, w), across, last=True)
    for t in range(len(joined) - 1, kept - 1, -1):
        col = joined[:t, t]
        # the pivot as the sum of its remaining conductances (rows of a Laplacian sum to zero)
        pivot = -col.sum(axis=0)
        joined[:t, :t] -= col[:, None] * (col / pivot)[None, :]
    out = np.ascontiguousarray(joined[:kept, :kept])
    idx = np.arange(kept)
    out[idx, idx] = 0.0
    out[idx, idx] = -out.sum(axis=1)
    return out


def _merge(first: np.ndarray, second: np.ndarray, h: int, w: int, across: bool) -> np.ndarray:
    """Join pairs of ``h x w`` blocks (``first`` left of or above ``second``) and eliminate their shared nodes.

    Chunk by chunk, each chunk's joined matrices about the size of a core's cache.
    """
    lead, p = first.shape[:2], first.shape[-1]
    first, second = first.reshape((-1, p, p)), second.reshape((-1, p, p))
    kept, n = _layout((h, h, w, w), (h, h, w, w), across)[:2]
    chunk = max(1, _CHUNK_DOUBLES // (n * n))
    out = np.empty((len(first), kept, kept))
    for start in range(0, len(first), chunk):
        part = slice(start, start + chunk)
        joined = _join(first[part], second[part], (h, h, w, w), (h, h, w, w), across, last=False)[0]
        out[part] = _eliminate_last(joined, kept)
    return out.reshape(lead + (kept, kept))


def _schur(mats: np.ndarray, keep: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """Laplacians on ``keep`` after eliminating ``drop`` from Laplacians ``mats`` ``[n, m, m]``."""
    order = np.r_[keep, drop]
    return _eliminate_last(mats[:, order[:, None], order], len(keep))


def _eliminate_last(mats: np.ndarray, kept: int) -> np.ndarray:
    """Laplacians ``[n, kept, kept]``: the Schur complements of the leading blocks of ``mats`` (overwritten)."""
    kk, kd = mats[:, :kept, :kept], mats[:, :kept, kept:]
    dk, dd = mats[:, kept:, :kept], mats[:, kept:, kept:]
    if mats.shape[-1] - kept < _CHOLESKY_MIN:
        kk -= kd @ np.linalg.solve(dd, dk)
        out = 0.5 * (kk + np.swapaxes(kk, 1, 2))  # drops the rounding asymmetry
    else:
        out = np.empty_like(kk)
        for m in range(len(mats)):
            # D = L L^T; X = L^-1 D_dk; K - X^T X
            factor, info = lapack.dpotrf(dd[m], lower=1)
            if info != 0:
                raise ValueError(f"the nodal matrix is singular (pivot {info} of an interface is not positive)")
            x = blas.dtrsm(1.0, factor, dk[m], side=0, lower=1)
            np.subtract(kk[m], x.T @ x, out=out[m])  # NumPy runs X^T X as a symmetric rank update
    _fix_diagonal(out)
    return out


def _fix_diagonal(mats: np.ndarray) -> None:
    """Each diagonal as minus its row's off-diagonal sum (Laplacian rows sum to zero)."""
    idx = np.arange(mats.shape[-1])
    mats[..., idx, idx] = 0.0
    mats[..., idx, idx] = -mats.sum(axis=-1)
