"""Symmetric tridiagonal systems along a wire: every word line and every bit line is one.

A line of ``n`` nodes joined by equal segments of conductance ``g`` has the matrix
``tridiag(-g, diag, -g)``. Thomas' algorithm (Gaussian elimination without pivoting) is stable
here because the matrices are diagonally dominant: every node's diagonal holds the conductances
of its own segments. All functions run along the **last** axis and broadcast over the others, so
every row (or column) of an array, and every input vector, is eliminated in one NumPy step.
"""

from __future__ import annotations

import numpy as np


def pivots(diag: np.ndarray, g: float) -> np.ndarray:
    """Thomas pivots ``den[..., k]`` of ``tridiag(-g, diag, -g)`` (last axis = the line)."""
    den = np.empty_like(diag, dtype=np.float64)
    den[..., 0] = diag[..., 0]
    g2 = g * g
    for k in range(1, diag.shape[-1]):
        den[..., k] = diag[..., k] - g2 / den[..., k - 1]
    return den


def solve(den: np.ndarray, g: float, rhs: np.ndarray) -> np.ndarray:
    """Solve ``tridiag(-g, diag, -g) x = rhs`` from the pivots of ``diag`` (broadcasting)."""
    n = den.shape[-1]
    shape = np.broadcast_shapes(den.shape, rhs.shape)
    z = np.empty(shape)
    z[..., 0] = rhs[..., 0]
    ratio = g / den
    for k in range(1, n):
        z[..., k] = rhs[..., k] + ratio[..., k - 1] * z[..., k - 1]
    x = z
    x[..., n - 1] = z[..., n - 1] / den[..., n - 1]
    for k in range(n - 2, -1, -1):
        x[..., k] = (z[..., k] + g * x[..., k + 1]) / den[..., k]
    return x


def inverse(diag: np.ndarray, g: float) -> np.ndarray:
    """Dense inverses ``[..., n, n]`` of ``tridiag(-g, diag, -g)``.

    Short lines go through one batched LAPACK inverse (``O(n^3)`` flops but one call). Long lines
    use Thomas' algorithm on all ``n`` unit sources at once: column ``m`` of the inverse is the
    solution for a unit current into node ``m``, ``O(n^2)`` per line in ``2 n`` NumPy steps.
    """
    n = diag.shape[-1]
    if n <= _DENSE_MAX:
        mat = np.zeros(diag.shape + (n,))
        idx = np.arange(n)
        mat[..., idx, idx] = diag
        mat[..., idx[1:], idx[:-1]] = -g
        mat[..., idx[:-1], idx[1:]] = -g
        return np.linalg.inv(mat)
    den = pivots(diag, g)
    ratio = (g / den)[..., None]
    scale = (1.0 / den)[..., None]
    # z[..., k, :] is the forward-eliminated right-hand side of row k for every unit source; it is
    # zero beyond column k, so only the first k + 1 columns are touched
    z = np.zeros(den.shape + (n,))
    z[..., 0, 0] = 1.0
    for k in range(1, n):
        np.multiply(z[..., k - 1, :k], ratio[..., k - 1, :], out=z[..., k, :k])
        z[..., k, k] = 1.0
    x = z  # back substitution in place: row k of z is read before it is overwritten
    x[..., n - 1, :] *= scale[..., n - 1, :]
    for k in range(n - 2, -1, -1):
        row = x[..., k, :]
        row += g * x[..., k + 1, :]
        row *= scale[..., k, :]
    return x


#: Lines up to this many nodes are inverted densely (fewer Python steps, negligible flops).
_DENSE_MAX = 32
