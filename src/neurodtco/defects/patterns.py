"""Defect geometry: boolean masks over one array's physical cells, from shapes alone.

Coordinates (shared by every geometric pattern, see docs/defects.md):

* Cell ``(i, j)`` of an ``R x C`` array sits at the normalised position
  ``y = (i + 0.5) / R``, ``x = (j + 0.5) / C``, both in ``(0, 1)``; row 0 is the top (first input)
  row, the last row is the bias row, column 0 is the word-line driver side.
* A centre ``(cy, cx)`` is given in the same fractions; the default ``(0.5, 0.5)`` is the middle.
* The distance of a cell from the centre is normalised by *each* half-size,
  ``d = sqrt(((y - cy) / 0.5)**2 + ((x - cx) / 0.5)**2)``: radius 1 reaches the middle of every
  edge from the default centre, so a "circle" is an ellipse inscribed in the array on a
  non-square array (as a die-level disc defect on a stretched array would be after mapping).
* A circle of radius ``r`` holds the cells with ``d < r`` (strict: radius 0 hits nothing); a ring
  holds ``inner <= d < outer``, which is exactly ``circle(outer)`` minus ``circle(inner)``.
  Radii are accepted in ``[0, max_radius(center)]``, the distance to the farthest array corner
  (``sqrt(2)`` from the default centre), where a circle already covers the whole array.

Every function here is pure; the random ones take a ``numpy.random.Generator``.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

Shape = tuple[int, int]
DEFAULT_CENTER = (0.5, 0.5)


def check_shape(shape: Sequence[int]) -> Shape:
    """Validate an array shape ``(rows, columns)`` of positive integers."""
    if len(shape) != 2 or any(not isinstance(n, (int, np.integer)) or n < 1 for n in shape):
        raise ValueError(f"array shape {tuple(shape)!r} is not accepted: expected (rows, columns), both >= 1")
    return int(shape[0]), int(shape[1])


def max_radius(center: Sequence[float] = DEFAULT_CENTER) -> float:
    """Normalised distance from ``center`` to the farthest corner of the array."""
    cy, cx = center
    return 2.0 * math.hypot(max(cy, 1.0 - cy), max(cx, 1.0 - cx))


def normalized_distance(shape: Sequence[int], center: Sequence[float] = DEFAULT_CENTER) -> np.ndarray:
    """Distance ``[rows, cols]`` of every cell centre from ``center``, in half-sizes (see module doc)."""
    rows, cols = check_shape(shape)
    cy, cx = center
    # (i + 0.5 - cy R) / (R / 2) equals ((i + 0.5)/R - cy) / 0.5; this form is exact for cy = 0.5,
    # so cells placed symmetrically about the middle get bit-identical distances (clean ties).
    dy = (np.arange(rows) + 0.5 - cy * rows) / (0.5 * rows)
    dx = (np.arange(cols) + 0.5 - cx * cols) / (0.5 * cols)
    return np.hypot(dy[:, None], dx[None, :])


def circle_mask(shape: Sequence[int], radius: float, center: Sequence[float] = DEFAULT_CENTER) -> np.ndarray:
    """Cells strictly inside the circle (ellipse on a non-square array) of ``radius``."""
    return normalized_distance(shape, center) < radius


def ring_mask(shape: Sequence[int], inner: float, outer: float,
              center: Sequence[float] = DEFAULT_CENTER) -> np.ndarray:
    """Cells with ``inner <= d < outer``: ``circle(outer)`` minus ``circle(inner)``."""
    d = normalized_distance(shape, center)
    return (d < outer) & ~(d < inner)


def line_mask(shape: Sequence[int], axis: int, indices: Sequence[int]) -> np.ndarray:
    """Whole rows (``axis=0``) or whole columns (``axis=1``) at ``indices`` (negatives count from the end)."""
    rows, cols = check_shape(shape)
    n = (rows, cols)[axis]
    mask = np.zeros((rows, cols), dtype=bool)
    idx = resolve_line_indices(n, indices, "row" if axis == 0 else "column")
    if axis == 0:
        mask[idx, :] = True
    else:
        mask[:, idx] = True
    return mask


def resolve_line_indices(n_lines: int, indices: Sequence[int], what: str) -> np.ndarray:
    """Sorted, unique, non-negative line indices; refuses indices outside ``[-n, n-1]``."""
    out = []
    for k in indices:
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not -n_lines <= k < n_lines:
            raise ValueError(f"{what} index {k!r} does not exist: this array has {what}s 0..{n_lines - 1} "
                             f"(negative indices count from the end, -1 is the last)")
        out.append(int(k) % n_lines)
    return np.array(sorted(set(out)), dtype=np.int64)


def random_lines(n_lines: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` distinct line indices drawn uniformly without replacement, sorted."""
    return np.sort(rng.choice(n_lines, size=count, replace=False)).astype(np.int64)


def checkerboard_mask(shape: Sequence[int], block: int = 1, phase: int = 0, period: int = 2,
                      width: int = 1) -> np.ndarray:
    """Periodic pattern of ``block x block`` squares; square ``(I, J)`` is hit when ``(I + J - phase) mod period < width``.

    The defaults (period 2, width 1) are the classic checkerboard: squares with ``I + J`` of the
    parity ``phase``. Other periods and widths give diagonal stripes of density ``width/period``.
    """
    rows, cols = check_shape(shape)
    s = (np.arange(rows)[:, None] // block) + (np.arange(cols)[None, :] // block)
    return ((s - phase) % period) < width


def checkerboard_counts(shape: Sequence[int], block: int, phase: int, max_period: int) -> dict[tuple[int, int], int]:
    """Hit count of ``checkerboard_mask`` for every ``(period, width)`` with period <= ``max_period``."""
    rows, cols = check_shape(shape)
    s = ((np.arange(rows)[:, None] // block) + (np.arange(cols)[None, :] // block)).ravel()
    hist = np.bincount(s)
    values = np.arange(hist.size)
    counts: dict[tuple[int, int], int] = {}
    for period in range(1, max_period + 1):
        per_residue = np.bincount((values - phase) % period, weights=hist, minlength=period)
        cumulative = np.concatenate([[0], np.cumsum(per_residue)])
        for width in range(period + 1):
            counts[(period, width)] = int(round(cumulative[width]))
    return counts


def bernoulli_mask(shape: Sequence[int], p: float, rng: np.random.Generator) -> np.ndarray:
    """Each cell hit independently with probability ``p``."""
    return rng.random(check_shape(shape)) < p


def exact_random_mask(shape: Sequence[int], count: int, rng: np.random.Generator) -> np.ndarray:
    """Exactly ``count`` cells, drawn uniformly without replacement."""
    rows, cols = check_shape(shape)
    mask = np.zeros(rows * cols, dtype=bool)
    mask[rng.choice(rows * cols, size=count, replace=False)] = True
    return mask.reshape(rows, cols)


def correlated_field(shape: Sequence[int], correlation_cells: float, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise smoothed by a Gaussian of ``correlation_cells`` standard deviation."""
    from scipy.ndimage import gaussian_filter

    noise = rng.standard_normal(check_shape(shape))
    # Reflecting edges keep clusters from wrapping around to the opposite side of the die.
    return gaussian_filter(noise, sigma=correlation_cells, mode="reflect")


def clustered_mask(shape: Sequence[int], count: int, correlation_cells: float,
                   rng: np.random.Generator) -> np.ndarray:
    """The ``count`` cells where a spatially correlated random field is highest (a thresholded field)."""
    field = correlated_field(shape, correlation_cells, rng)
    mask = np.zeros(field.size, dtype=bool)
    if count > 0:
        # Ranking instead of a numeric threshold hits the requested count exactly.
        mask[np.argsort(-field.ravel(), kind="stable")[:count]] = True
    return mask.reshape(field.shape)


def closest_count(candidates: dict, target: float) -> tuple[object, int]:
    """The candidate key whose count is nearest ``target`` (first one on ties)."""
    best_key: Optional[object] = None
    best_count = -1
    for key, count in candidates.items():
        if best_key is None or abs(count - target) < abs(best_count - target) - 1e-9:
            best_key, best_count = key, count
    assert best_key is not None
    return best_key, best_count


def round_half_up(value: float) -> int:
    """Nearest integer, halves rounded up (not to even), so densities map predictably to counts."""
    return int(math.floor(value + 0.5))
