"""Small dense helpers for stacks of symmetric matrices: products and SPD solves.

A stack has a "sets" axis of length 1 (one matrix shared by every input vector) or of the batch
length (one matrix per input vector). Sharing is the common case and uses plain BLAS products.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import lapack


class NotPositiveDefinite(Exception):
    """A nodal block is singular: some node has no conducting path to a fixed voltage."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


def apply(mat: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """``M v`` for symmetric ``M`` ``[S, C, C]`` (S = 1 or B) and vectors ``[B, C]``."""
    if mat.shape[0] == 1:
        return vec @ mat[0]  # symmetric, so v M == M v for every row v
    return np.matmul(mat, vec[..., None])[..., 0]


def apply_rows(mat: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """``M_i v`` row by row: symmetric ``[R, S, C, C]`` (S = 1 or B), vectors ``[R, B, C]``."""
    if mat.shape[1] == 1:
        return np.matmul(vec, mat[:, 0])
    return np.matmul(mat, vec[..., None])[..., 0]


def spd_solve(mat: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``mat^-1 rhs`` for symmetric positive-definite ``mat`` ``[S, C, C]`` and ``rhs`` ``[S, C, K]``."""
    if mat.shape[0] == 1 and rhs.shape[0] == 1:
        # one matrix: LAPACK directly (a symmetric matrix reads the same in C and Fortran order)
        factor, info = _potrf(mat[0], lower=1, clean=0)
        if info != 0:
            raise NotPositiveDefinite(max(info - 1, 0))
        out, info = _potrs(factor, rhs[0], lower=1)
        return out[None]
    try:
        np.linalg.cholesky(mat)  # checks definiteness for every matrix in the stack at once
    except np.linalg.LinAlgError:
        diag = np.diagonal(mat, axis1=-2, axis2=-1)
        raise NotPositiveDefinite(int(np.unravel_index(np.argmin(diag), diag.shape)[-1])) from None
    return np.linalg.solve(mat, rhs)


_potrf = lapack.get_lapack_funcs("potrf", dtype=np.float64)
_potrs = lapack.get_lapack_funcs("potrs", dtype=np.float64)


def symmetrize(mat: np.ndarray) -> np.ndarray:
    """The symmetric part of each matrix (removes rounding asymmetry)."""
    return 0.5 * (mat + np.swapaxes(mat, -1, -2))
