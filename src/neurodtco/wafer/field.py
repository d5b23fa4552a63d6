"""A spatial defect model in physical units, and the stuck-cell maps it draws for every die.

Every cell of every die receives point defects as a Poisson process of local intensity

    lambda(x) = d0 * radial(r) * M(x)      (defects per cell)

and is stuck when at least one lands on it: ``P(stuck) = 1 - exp(-lambda)``. A stuck cell is
stuck on (``G_max``) with probability ``on_fraction``, else stuck off (``G_min``).

* ``d0`` (canonical: defects per cell) is the wafer-mean intensity; ``DefectField.from_d0_per_cm2``
  converts a density per cm^2 with the cell area (``d0 = D0 * A_cell``), and ``d0_per_cm2`` goes back.
* ``radial(r) = (1 + g (r / R)^2) / (1 + g / 2)``: the edge (at the usable radius ``R``) carries
  ``1 + g`` times the centre's intensity, and the mean over the usable disc stays 1.
* ``M(x)`` is the clustering multiplier, Gamma-distributed with shape ``alpha`` and mean 1 (Stapper's
  negative-binomial model; ``alpha = inf`` is no clustering, ``M = 1``). With
  ``cluster_radius_mm=None`` each die draws its own ``M``, uniform over the die and independent of
  the other dies: that is exactly Stapper's model, whose yield with "any stuck cell kills the die"
  is ``(1 + A D0 / alpha)^-alpha``. With a finite radius ``M`` is a smooth random field: a Gaussian
  random field of correlation length ``cluster_radius_mm`` (covariance ``exp(-d^2 / 2 L^2)``, drawn
  with 256 random Fourier features per wafer), carried to Gamma(alpha, 1/alpha) marginals through
  its normal CDF (a Gaussian copula). Neighbouring dies, and the tiles of one die, then see
  correlated densities. A die much smaller than ``L`` sees one value of ``M`` (Stapper's limit); a
  die larger than ``L`` averages several nearly independent ones, so its defect count varies less
  and behaves like a larger alpha (see docs/yield.md for the numbers).

Cells sit on the die where the circuit places them: tiled layers at their tiles' origins, untiled
layers side by side, the block of arrays centred on the die, at a pitch of ``sqrt(cell_area_um2)``.
The field is evaluated at every cell: a cell sits at its die's centre plus its offset on the die,
so the random Fourier features split into a die part and a cell part, and one complex matrix
product gives the whole wafer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .._validate import check_positive
from ..circuit import Circuit
from .diemap import DieMap
from .geometry import Wafer

# Random Fourier features per wafer field: the field's marginal is a sum of this many cosines.
N_FEATURES = 256
# A 4F^2 cell at F = 50 nm; an assumption to override, not measured data.
DEFAULT_CELL_AREA_UM2 = 0.01


@dataclass(frozen=True)
class DefectField:
    """Wafer-level stuck-cell statistics: mean density, Stapper clustering, cluster radius, radial gradient."""

    d0_per_cell: float
    alpha: float = math.inf
    cluster_radius_mm: Optional[float] = None
    edge_gradient: float = 0.0
    on_fraction: float = 0.5
    cell_area_um2: float = DEFAULT_CELL_AREA_UM2

    def __post_init__(self) -> None:
        if not (isinstance(self.d0_per_cell, (int, float)) and 0 <= self.d0_per_cell < math.inf):
            raise ValueError(f"d0_per_cell={self.d0_per_cell!r} is not accepted: expected defects per cell >= 0 "
                             "(0.001 to 0.1 is the physical range; from per-cm^2 use DefectField.from_d0_per_cm2)")
        if not (isinstance(self.alpha, (int, float)) and self.alpha > 0):
            raise ValueError(f"alpha={self.alpha!r} is not accepted: expected Stapper's clustering parameter > 0 "
                             "(small: strong clustering; inf: none)")
        if self.cluster_radius_mm is not None:
            check_positive("cluster_radius_mm", self.cluster_radius_mm,
                           "millimetres, or None for die-scale clustering (each die its own multiplier)")
        if not (isinstance(self.edge_gradient, (int, float)) and -1 < self.edge_gradient < math.inf):
            raise ValueError(f"edge_gradient={self.edge_gradient!r} is not accepted: expected a number > -1 "
                             "(the edge has 1 + edge_gradient times the centre's density; 0: uniform)")
        if not (isinstance(self.on_fraction, (int, float)) and 0 <= self.on_fraction <= 1):
            raise ValueError(f"on_fraction={self.on_fraction!r} is not accepted: expected the stuck-on share in [0, 1]")
        check_positive("cell_area_um2", self.cell_area_um2, "square micrometres per memory cell")

    @classmethod
    def from_d0_per_cm2(cls, d0_per_cm2: float, cell_area_um2: float = DEFAULT_CELL_AREA_UM2,
                        **kwargs: object) -> "DefectField":
        """A field from a defect density per cm^2 of cell area."""
        if not (isinstance(d0_per_cm2, (int, float)) and 0 <= d0_per_cm2 < math.inf):
            raise ValueError(f"d0_per_cm2={d0_per_cm2!r} is not accepted: expected defects per cm^2 >= 0")
        return cls(d0_per_cell=d0_per_cm2 * cell_area_um2 * 1e-8, cell_area_um2=cell_area_um2, **kwargs)  # type: ignore[arg-type]

    @property
    def d0_per_cm2(self) -> float:
        """The mean density in defects per cm^2 of cell area."""
        return self.d0_per_cell / (self.cell_area_um2 * 1e-8)

    @property
    def cell_pitch_mm(self) -> float:
        """Cell pitch (mm), a square cell of ``cell_area_um2``."""
        return math.sqrt(self.cell_area_um2) * 1e-3

    def radial(self, r_mm: np.ndarray, usable_radius_mm: float) -> np.ndarray:
        """The radial factor of the intensity at radius ``r_mm`` (mean 1 over the usable disc)."""
        g = self.edge_gradient
        return (1.0 + g * (np.asarray(r_mm) / usable_radius_mm) ** 2) / (1.0 + g / 2.0)


def cell_offsets_mm(circuit: Circuit, pitch_mm: float) -> list[np.ndarray]:
    """Each layer's cell positions ``[rows, cols, 2]`` (x, y mm) relative to the die centre."""
    origins = []
    column = 0
    for layer in circuit.layers:
        if layer.tiling is None:
            # An untiled layer has no place on the die of its own: put it right of the previous ones.
            origins.append([(0, column)])
            column += layer.n_columns
        else:
            origins.append([t.origin for t in layer.tiles])
            column = max(column, max(t.origin[1] + t.columns.stop - t.columns.start for t in layer.tiles))
    rows_cells = []
    for layer, layer_origins in zip(circuit.layers, origins):
        r = np.zeros(layer.conductance.shape)
        c = np.zeros(layer.conductance.shape)
        for tile, (r0, c0) in zip(layer.tiles, layer_origins):
            rr, cc = np.meshgrid(np.arange(tile.rows.stop - tile.rows.start),
                                 np.arange(tile.columns.stop - tile.columns.start), indexing="ij")
            r[tile.rows, tile.columns] = r0 + rr
            c[tile.rows, tile.columns] = c0 + cc
        rows_cells.append((r, c))
    height = max(float(r.max()) for r, _ in rows_cells) + 1.0
    width = max(float(c.max()) for _, c in rows_cells) + 1.0
    # Row 0 is the top of the die block: y decreases with the row index.
    return [np.stack([(c + 0.5 - width / 2) * pitch_mm, (height / 2 - r - 0.5) * pitch_mm], axis=-1)
            for r, c in rows_cells]


def draw_wafer(field: DefectField, wafer: Wafer, circuit: Circuit, wafer_index: int = 0, seed: int = 0
               ) -> list[DieMap]:
    """The stuck cells of every die of one wafer (``wafer.dies`` order); the same arguments, the same maps."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} is not accepted: expected an integer >= 0")
    field_seq, cell_seq = np.random.SeedSequence([int(seed), int(wafer_index)]).spawn(2)
    field_rng, cell_rng = np.random.default_rng(field_seq), np.random.default_rng(cell_seq)
    offsets = cell_offsets_mm(circuit, field.cell_pitch_mm)
    sizes = [o.shape[0] * o.shape[1] for o in offsets]
    flat = np.concatenate([o.reshape(-1, 2) for o in offsets])                       # [cells, 2]
    centers = wafer.centers_mm()                                                    # [dies, 2]
    positions = centers[:, None, :] + flat[None, :, :]                              # [dies, cells, 2]
    intensity = field.d0_per_cell * field.radial(np.hypot(positions[..., 0], positions[..., 1]),
                                                 wafer.usable_radius_mm)
    intensity = intensity * _multiplier(field, centers, flat, field_rng)
    stuck = cell_rng.random(intensity.shape) < -np.expm1(-intensity)
    on = cell_rng.random(intensity.shape) < field.on_fraction
    values = np.where(stuck, np.where(on, circuit.cell.g_max, circuit.cell.g_min), np.nan)
    parts = np.split(values, np.cumsum(sizes)[:-1], axis=1)
    keys = [die.key(wafer_index) for die in wafer.dies]
    return [DieMap(key, tuple(p[k].reshape(o.shape[:2]) for p, o in zip(parts, offsets)))
            for k, key in enumerate(keys)]


def draw_dies(field: DefectField, wafer: Wafer, circuit: Circuit, n_dies: int, seed: int = 0) -> list[DieMap]:
    """The first ``n_dies`` dies of wafers 0, 1, ... (as many wafers as they need)."""
    if isinstance(n_dies, bool) or not isinstance(n_dies, (int, np.integer)) or n_dies < 1:
        raise ValueError(f"n_dies={n_dies!r} is not accepted: expected an integer >= 1")
    out: list[DieMap] = []
    index = 0
    while len(out) < n_dies:
        out.extend(draw_wafer(field, wafer, circuit, index, seed)[:n_dies - len(out)])
        index += 1
    return out


def _multiplier(field: DefectField, centers: np.ndarray, offsets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The clustering multiplier ``M`` at every cell ``[dies, cells]`` (die centres plus cell offsets, mm)."""
    shape = (len(centers), len(offsets))
    if math.isinf(field.alpha):
        return np.ones(shape)
    if field.cluster_radius_mm is None:
        return np.broadcast_to(rng.gamma(field.alpha, 1.0 / field.alpha, size=(shape[0], 1)), shape)
    omega, phase = _features(field.cluster_radius_mm, rng)
    # cos(w.(c + o) + p) = Re(exp(i w.c) exp(i (w.o + p))): one complex product covers every die and cell.
    z = (np.exp(1j * (centers @ omega)) @ np.exp(1j * (offsets @ omega + phase)).T).real
    return gamma_quantile(z * math.sqrt(2.0 / omega.shape[1]), field.alpha)


def gamma_quantile(z: np.ndarray, alpha: float) -> np.ndarray:
    """The Gamma(alpha, 1/alpha) value with the standard normal quantile of ``z`` (a Gaussian copula)."""
    from scipy.special import gammainccinv, gammaincinv, ndtr

    # log M is smooth and monotone in z: a dense table and linear interpolation replace a special
    # function per cell (relative error below 1e-5 for alpha >= 0.1 inside |z| < 8; the features'
    # sum never leaves it).
    grid = np.linspace(-8.0, 8.0, 16001)
    # The upper half goes through the complementary functions: ndtr(z) rounds to 1 in its tail.
    low = gammaincinv(alpha, ndtr(np.minimum(grid, 0.0)))
    high = gammainccinv(alpha, ndtr(-np.maximum(grid, 0.0)))
    table = np.log(np.where(grid < 0, low, high) / alpha)
    return np.exp(np.interp(z, grid, table))


def _features(length_mm: float, rng: np.random.Generator, n_features: int = N_FEATURES
              ) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies ``[2, K]`` and phases ``[K]`` of random Fourier features for the covariance ``exp(-d^2 / 2L^2)``."""
    return rng.standard_normal((2, n_features)) / length_mm, rng.uniform(0.0, 2.0 * math.pi, n_features)


def gaussian_field(points_mm: np.ndarray, length_mm: float, rng: np.random.Generator,
                   n_features: int = N_FEATURES) -> np.ndarray:
    """A unit-variance Gaussian random field at ``points_mm`` ``[n, 2]``, covariance ``exp(-d^2 / (2 L^2))``."""
    omega, phase = _features(length_mm, rng, n_features)
    return np.cos(np.asarray(points_mm) @ omega + phase).sum(axis=1) * math.sqrt(2.0 / n_features)
