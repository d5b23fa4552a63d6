"""Tuning the cells: write-verify programming, alone (1T1R) or in passive 0T1R crossbars (V/2, V/3).

Device (``SwitchingDevice``): a bipolar threshold switch in the spirit of the VTEAM model
(S. Kvatinsky, M. Ramadan, E. G. Friedman, A. Kolodny, "VTEAM: a general model for
voltage-controlled memristors", IEEE Trans. Circuits and Systems II 62(8), 2015): a pulse changes
the state only when its amplitude exceeds the cell's own set (positive) or reset (negative)
threshold, and the change grows as a power of the relative overdrive. The state is the
log-position ``w`` of the conductance in the window, ``G = G_min (G_max/G_min)^w``; the
per-pulse change is soft-bounded toward ``w = 1`` (set) or ``w = 0`` (reset):

    set:   w += min(1, set_rate   ((V - Vset)/Vset)^alpha       xi) (1 - w)
    reset: w -= min(1, reset_rate ((|V| - Vreset)/Vreset)^alpha xi) w

with ``xi`` a lognormal cycle-to-cycle factor of mean 1 and spread ``cycle_variation``. Every cell
draws its thresholds once (device-to-device): ``Vth = mean (1 + threshold_variation z)``, ``z``
standard normal, clipped at ``min_threshold_fraction`` of the mean; ``threshold_variation`` is
the normalized variation sigma/mean that H. Kim, M. R. Mahmoodi, H. Nili, D. B. Strukov report
as about 26% in "4K-memristor analog-grade passive crossbar circuit", Nature Communications 12,
5198 (2021).

Write-verify (``write_verify``): the variation-tolerant algorithm of F. Alibart, L. Gao,
B. D. Hoskins, D. B. Strukov, "High precision tuning of state for memristive devices by adaptable
variation-tolerant algorithm", Nanotechnology 23, 075201 (2012), simplified: read (with verify
noise); stop when the read is within ``tolerance`` of the target (relative); otherwise pulse
toward the target, starting at ``v_set_start_v`` / ``v_reset_start_v`` whenever the direction
changes and raising the amplitude by ``v_step_v`` after every pulse that closed less than
``progress_fraction`` of the remaining (log) distance to the target, so each cell finds its own
threshold and its own useful overdrive; give up after ``max_pulses`` pulses and report the cell
as failed. Defaults (``set_rate = 8``, ``nonlinearity = 3``: a pulse 50% above threshold
switches the whole window, 10% above it moves 0.8% of the remaining window) are representative
of the strongly voltage-dependent switching of metal-oxide cells, not a fit to one device.

Passive crossbars (``program_passive``): cells are tuned one at a time in the given order. In
the V/2 scheme the selected row gets ``V``, the selected column 0 and all other lines ``V/2``:
the other cells of the selected row and column are half-selected at ``V/2``, the rest see 0. In
the V/3 scheme unselected rows sit at ``V/3`` and unselected columns at ``2V/3``: half-selected
cells see ``V/3`` and all others ``-V/3``. Every pulse applies the device response to every
cell with its own voltage, so half-selected cells whose thresholds are exceeded are disturbed,
including cells tuned earlier. The outcome is the programmed map with the failed, disturbed and
out-of-tolerance cells. Verify reads are assumed free of sneak currents (unselected lines held
at the read reference), so only the selected cell's conductance (plus verify noise) is read.
A tiled layer is several physical arrays, each with its own lines: they are programmed one after
the other (tiles row block major), and a pulse in one never reaches the cells of another.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field, fields
from typing import Callable, Literal, Optional

import numpy as np

from .._validate import check_positive, check_range
from ..circuit import Circuit, Layer

SCHEMES = ("v/2", "v/3")
ORDERS = ("row-major", "column-major", "random")
INITIAL_STATES = ("min", "max")


@dataclass(frozen=True)
class SwitchingDevice:
    """Threshold switching with per-cell thresholds and cycle-to-cycle spread (state: log-position w)."""

    v_set_v: float = 1.0
    v_reset_v: float = 1.2
    threshold_variation: float = 0.0
    set_rate: float = 8.0
    reset_rate: float = 8.0
    nonlinearity: float = 3.0
    cycle_variation: float = 0.3
    min_threshold_fraction: float = 0.1

    def __post_init__(self) -> None:
        check_positive("v_set_v", self.v_set_v, "mean set threshold in volts, e.g. 1.0")
        check_positive("v_reset_v", self.v_reset_v, "mean reset threshold magnitude in volts, e.g. 1.2")
        check_range("threshold_variation", self.threshold_variation, 0.0, 1.0,
                     "normalized sigma/mean of the switching thresholds, e.g. 0.25")
        check_positive("set_rate", self.set_rate, "fraction of the remaining window per pulse at 100% overdrive")
        check_positive("reset_rate", self.reset_rate, "fraction of the remaining window per pulse at 100% overdrive")
        check_range("nonlinearity", self.nonlinearity, 0.1, 10.0, "exponent alpha of the overdrive, e.g. 1")
        check_range("cycle_variation", self.cycle_variation, 0.0, 3.0, "lognormal sigma of the per-pulse change")
        check_range("min_threshold_fraction", self.min_threshold_fraction, 0.01, 1.0,
                     "lowest threshold as a fraction of its mean")

    def draw_thresholds(self, shape: tuple[int, ...], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Set and reset threshold magnitudes (V) of every cell."""
        z_set, z_reset = rng.standard_normal(shape), rng.standard_normal(shape)
        low = self.min_threshold_fraction
        v_set = self.v_set_v * np.maximum(1.0 + self.threshold_variation * z_set, low)
        v_reset = self.v_reset_v * np.maximum(1.0 + self.threshold_variation * z_reset, low)
        return v_set, v_reset

    def cycle_factor(self, rng: np.random.Generator, shape: tuple[int, ...] = ()) -> np.ndarray:
        """Lognormal cycle-to-cycle factors of mean 1."""
        s = self.cycle_variation
        return np.exp(s * rng.standard_normal(shape) - 0.5 * s * s)

    def response(self, w: np.ndarray, v: np.ndarray, v_set: np.ndarray, v_reset: np.ndarray,
                 xi: np.ndarray) -> np.ndarray:
        """New state of cells at state ``w`` after one pulse of signed amplitude ``v`` (V)."""
        over_set = np.maximum(v - v_set, 0.0) / v_set
        over_reset = np.maximum(-v - v_reset, 0.0) / v_reset
        r_set = np.minimum(self.set_rate * over_set**self.nonlinearity * xi, 1.0)
        r_reset = np.minimum(self.reset_rate * over_reset**self.nonlinearity * xi, 1.0)
        return w + r_set * (1.0 - w) - r_reset * w

    def response_scalar(self, w: float, v: float, v_set: float, v_reset: float, xi: float) -> float:
        """``response`` for one cell in plain Python (the sequential passive loop's hot path)."""
        if v > v_set:
            return w + min(self.set_rate * ((v - v_set) / v_set) ** self.nonlinearity * xi, 1.0) * (1.0 - w)
        if -v > v_reset:
            return w - min(self.reset_rate * ((-v - v_reset) / v_reset) ** self.nonlinearity * xi, 1.0) * w
        return w


@dataclass(frozen=True)
class WriteVerifyConfig:
    """Parameters of the write-verify loop."""

    tolerance: float = 0.02
    max_pulses: int = 100
    v_set_start_v: float = 0.5
    v_reset_start_v: float = 0.6
    v_step_v: float = 0.05
    v_max_v: float = 1.9
    verify_noise: float = 0.0
    progress_fraction: float = 0.25
    initial_state: Literal["min", "max"] = "min"

    def __post_init__(self) -> None:
        check_range("tolerance", self.tolerance, 1e-5, 1.0, "relative error |G/G_target - 1| accepted, e.g. 0.02")
        if isinstance(self.max_pulses, bool) or not isinstance(self.max_pulses, (int, np.integer)) or self.max_pulses < 0:
            raise ValueError(f"max_pulses={self.max_pulses!r} is not accepted: expected an integer >= 0")
        check_positive("v_set_start_v", self.v_set_start_v, "volts of the first set pulse")
        check_positive("v_reset_start_v", self.v_reset_start_v, "volts (magnitude) of the first reset pulse")
        check_positive("v_step_v", self.v_step_v, "volts added after a pulse that moved the cell too little")
        check_positive("v_max_v", self.v_max_v, "largest pulse amplitude in volts")
        if self.v_max_v < max(self.v_set_start_v, self.v_reset_start_v):
            raise ValueError(f"v_max_v={self.v_max_v:g} is below a start amplitude "
                             f"({self.v_set_start_v:g}, {self.v_reset_start_v:g})")
        check_range("verify_noise", self.verify_noise, 0.0, 1.0, "relative sigma of a verify read, e.g. 0.005")
        check_range("progress_fraction", self.progress_fraction, 0.0, 1.0,
                    "share of the remaining distance a pulse must close to keep its amplitude, e.g. 0.25")
        if self.initial_state not in INITIAL_STATES:
            raise ValueError(f"initial_state={self.initial_state!r} is not accepted: choose one of {list(INITIAL_STATES)}")


@dataclass(frozen=True, eq=False)
class ProgrammingResult:
    """Outcome of programming one array: achieved conductances and what went wrong where."""

    conductance: np.ndarray
    target: np.ndarray
    pulses: np.ndarray
    failed: np.ndarray
    v_set: np.ndarray
    v_reset: np.ndarray
    disturb_events: np.ndarray = field(default=None)  # type: ignore[assignment]
    disturbed_after_tuning: np.ndarray = field(default=None)  # type: ignore[assignment]
    tolerance: float = 0.0

    @property
    def relative_error(self) -> np.ndarray:
        """``G / G_target - 1`` of every cell."""
        return self.conductance / self.target - 1.0

    @property
    def out_of_tolerance(self) -> np.ndarray:
        """Cells whose final conductance misses the tolerance."""
        return np.abs(self.relative_error) > self.tolerance * (1.0 + 1e-9)

    def summary(self) -> dict:
        """Scalar statistics (JSON-friendly)."""
        err = self.relative_error
        out = {
            "cells": int(err.size),
            "pulses_total": int(self.pulses.sum()),
            "pulses_mean": float(self.pulses.mean()),
            "pulses_max": int(self.pulses.max()) if self.pulses.size else 0,
            "failed": int(self.failed.sum()),
            "failed_fraction": float(self.failed.mean()),
            "out_of_tolerance": int(self.out_of_tolerance.sum()),
            "relative_error_rms": float(np.sqrt(np.mean(err**2))),
            "relative_error_max": float(np.max(np.abs(err))),
        }
        if self.disturb_events is not None:
            out["disturbed"] = int((self.disturb_events > 0).sum())
            out["disturb_events"] = int(self.disturb_events.sum())
            out["disturbed_after_tuning"] = int(self.disturbed_after_tuning.sum())
        return out


def cell_thresholds(device: SwitchingDevice, shape: tuple[int, ...], rng: np.random.Generator,
                    given: Optional[tuple[np.ndarray, np.ndarray]] = None) -> tuple[np.ndarray, np.ndarray]:
    """Every cell's (set, reset) thresholds (V): ``given`` maps checked, else drawn from ``device``."""
    if given is None:
        return device.draw_thresholds(shape, rng)
    v_set, v_reset = (np.asarray(v, dtype=np.float64) for v in given)
    for name, v in (("set", v_set), ("reset", v_reset)):
        if v.shape != shape or not np.all(np.isfinite(v)) or np.any(v <= 0):
            raise ValueError(f"{name} thresholds must be positive finite volts of shape {shape}; got shape {v.shape}")
    return v_set, v_reset


def initial_state(shape: tuple[int, ...], config: WriteVerifyConfig) -> np.ndarray:
    """Log-position ``w`` of every cell before programming (``config.initial_state``)."""
    return np.full(shape, 1.0 if config.initial_state == "max" else 0.0)


def check_targets(targets: np.ndarray, g_min: float, g_max: float) -> np.ndarray:
    """Target conductances (S) as float64, refused outside the programmable window ``[g_min, g_max]``."""
    t = np.asarray(targets, dtype=np.float64)
    if not 0 < g_min < g_max:
        raise ValueError(f"the window g_min={g_min:g}, g_max={g_max:g} S must satisfy 0 < g_min < g_max")
    if np.any(~np.isfinite(t)) or np.any(t < g_min * (1 - 1e-9)) or np.any(t > g_max * (1 + 1e-9)):
        raise ValueError(f"targets must lie in the programmable window [{g_min:g}, {g_max:g}] S; "
                         f"got [{np.nanmin(t):g}, {np.nanmax(t):g}] S (program before applying temperature or drift)")
    return np.clip(t, g_min, g_max)


def write_verify(
    targets: np.ndarray,
    g_min: float,
    g_max: float,
    device: SwitchingDevice,
    config: WriteVerifyConfig,
    rng: np.random.Generator,
    thresholds: Optional[tuple[np.ndarray, np.ndarray]] = None,
) -> ProgrammingResult:
    """Tune independent cells (1T1R: no disturbance) to ``targets`` (S) in parallel.

    ``thresholds``: measured (set, reset) threshold maps in volts; drawn from ``device`` when None.
    """
    targets = check_targets(targets, g_min, g_max)
    shape = targets.shape
    v_set, v_reset = cell_thresholds(device, shape, rng, thresholds)
    log_span = math.log(g_max / g_min)
    log_target = np.log(targets)
    w = initial_state(shape, config)
    amplitude = np.zeros(shape)
    polarity = np.zeros(shape, dtype=np.int8)
    pulses = np.zeros(shape, dtype=np.int64)
    done = np.zeros(shape, dtype=bool)
    previous = np.full(shape, np.nan)
    for pulse in range(config.max_pulses + 1):
        log_read = math.log(g_min) + w * log_span
        if config.verify_noise > 0:
            log_read = log_read + np.log1p(np.maximum(config.verify_noise * rng.standard_normal(shape), -0.999))
        done |= np.abs(np.exp(log_read - log_target) - 1.0) <= config.tolerance
        active = ~done
        if pulse == config.max_pulses or not active.any():
            break
        direction = np.where(log_read < log_target, 1, -1).astype(np.int8)
        # Progress of the last pulse, as a fraction of the distance that remained before it.
        closed = (log_read - previous) * direction
        stalled = ~(closed >= config.progress_fraction * np.abs(log_target - previous))
        start = np.where(direction > 0, config.v_set_start_v, config.v_reset_start_v)
        amplitude = np.where(direction != polarity, start, np.where(stalled, amplitude + config.v_step_v, amplitude))
        amplitude = np.minimum(amplitude, config.v_max_v)
        polarity = direction
        xi = device.cycle_factor(rng, shape)
        w = np.where(active, device.response(w, direction * amplitude, v_set, v_reset, xi), w)
        pulses += active
        previous = log_read
    g = g_min * np.exp(w * log_span)
    return ProgrammingResult(conductance=g, target=targets, pulses=pulses, failed=~done, v_set=v_set, v_reset=v_reset,
                             tolerance=config.tolerance)


class _NormalStream:
    """Standard normal draws handed out one at a time from pre-drawn blocks (the loop is scalar)."""

    def __init__(self, rng: np.random.Generator, block: int = 65536) -> None:
        self.rng, self.block = rng, block
        self.buffer: list[float] = []
        self.position = 0

    def __call__(self) -> float:
        if self.position >= len(self.buffer):
            self.buffer = self.rng.standard_normal(self.block).tolist()
            self.position = 0
        self.position += 1
        return self.buffer[self.position - 1]


class _SortedLines:
    """Cells of every row, every column and the whole array, sorted by one threshold (plain lists)."""

    def __init__(self, thresholds: np.ndarray) -> None:
        n_rows, n_cols = thresholds.shape
        flat = np.arange(thresholds.size).reshape(thresholds.shape)
        self.rows, self.row_values, self.cols, self.col_values = [], [], [], []
        for i in range(n_rows):
            order = np.argsort(thresholds[i], kind="stable")
            self.rows.append(flat[i][order].tolist())
            self.row_values.append(thresholds[i][order].tolist())
        for j in range(n_cols):
            order = np.argsort(thresholds[:, j], kind="stable")
            self.cols.append(flat[:, j][order].tolist())
            self.col_values.append(thresholds[:, j][order].tolist())
        self.all = np.argsort(thresholds.ravel(), kind="stable")
        self.all_values = thresholds.ravel()[self.all]
        self.all_rows, self.all_cols = self.all // n_cols, self.all % n_cols
        self.global_min = float(self.all_values[0])
        self.n_cols = n_cols

    def half_selected(self, i: int, j: int, volts: float) -> list[int]:
        """Flat indices of the other cells of row ``i`` and column ``j`` whose threshold is below ``volts``."""
        k = i * self.n_cols + j
        cells = [c for c in self.rows[i][:bisect_left(self.row_values[i], volts)] if c != k]
        cells += [c for c in self.cols[j][:bisect_left(self.col_values[j], volts)] if c != k]
        return cells

    def unselected(self, i: int, j: int, volts: float) -> np.ndarray:
        """Flat indices of cells off row ``i`` and column ``j`` whose threshold is below ``volts``."""
        if volts <= self.global_min:
            return np.empty(0, dtype=np.int64)
        n = int(np.searchsorted(self.all_values, volts, side="left"))
        keep = (self.all_rows[:n] != i) & (self.all_cols[:n] != j)
        return self.all[:n][keep]


def program_passive(
    targets: np.ndarray,
    g_min: float,
    g_max: float,
    device: SwitchingDevice,
    config: WriteVerifyConfig,
    rng: np.random.Generator,
    scheme: str = "v/2",
    order: str = "row-major",
    passes: int = 1,
    thresholds: Optional[tuple[np.ndarray, np.ndarray]] = None,
) -> ProgrammingResult:
    """Tune a passive crossbar cell by cell with a half-select scheme; half-selected cells may switch.

    ``thresholds``: measured (set, reset) threshold maps in volts; drawn from ``device`` when None.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme={scheme!r} is not accepted: choose one of {list(SCHEMES)}")
    if order not in ORDERS:
        raise ValueError(f"order={order!r} is not accepted: choose one of {list(ORDERS)}")
    if isinstance(passes, bool) or not isinstance(passes, (int, np.integer)) or passes < 1:
        raise ValueError(f"passes={passes!r} is not accepted: expected an integer >= 1 (sweeps over the array)")
    targets = check_targets(targets, g_min, g_max)
    if targets.ndim != 2:
        raise ValueError(f"a passive crossbar is a [rows, columns] array; got shape {targets.shape}")
    n_rows, n_cols = targets.shape
    v_set, v_reset = cell_thresholds(device, targets.shape, rng, thresholds)
    set_lines, reset_lines = _SortedLines(v_set), _SortedLines(v_reset)
    divisor = 2.0 if scheme == "v/2" else 3.0
    log_span, log_g_min = math.log(g_max / g_min), math.log(g_min)
    # The loop is inherently sequential (each pulse may disturb cells tuned before) and touches one
    # cell plus a handful of half-selected ones per pulse: plain Python floats beat small NumPy calls.
    n_cells = targets.size
    w = initial_state(targets.shape, config).ravel()
    set_list, reset_list = v_set.ravel().tolist(), v_reset.ravel().tolist()
    log_targets = np.log(targets).ravel().tolist()
    pulses, failed = [0] * n_cells, [False] * n_cells
    events = np.zeros(n_cells, dtype=np.int64)
    tuned, after = np.zeros(n_cells, dtype=bool), np.zeros(n_cells, dtype=bool)
    flat_set, flat_reset = v_set.ravel(), v_reset.ravel()
    normal = _NormalStream(rng)
    tol, fraction, noise = config.tolerance, config.progress_fraction, config.verify_noise
    cycle = device.cycle_variation
    respond = device.response_scalar

    def disturb(cells: list[int], volts: float) -> None:
        bound = 1.0 if volts > 0 else 0.0  # a cell already at the bound the pulse pushes toward stays
        for c in cells:
            old = float(w[c])
            if old == bound:
                continue
            xi = math.exp(cycle * normal() - 0.5 * cycle * cycle)
            new = respond(old, volts, set_list[c], reset_list[c], xi)
            if new != old:
                w[c] = new
                events[c] += 1
                if tuned[c]:
                    after[c] = True

    def disturb_many(cells: np.ndarray, volts: float) -> None:
        # Unselected cells of the V/3 scheme: a whole-array region, handled as one vector step.
        if cells.size == 0:
            return
        old = w[cells]
        new = device.response(old, volts, flat_set[cells], flat_reset[cells], device.cycle_factor(rng, cells.shape))
        changed = new != old
        if changed.any():
            events[cells] += changed
            after[cells] |= changed & tuned[cells]
            w[cells] = new

    for _ in range(passes):
        for i, j in _cell_order(n_rows, n_cols, order, rng).tolist():
            k = i * n_cols + j
            log_target, vs, vr = log_targets[k], set_list[k], reset_list[k]
            amplitude, polarity, previous = 0.0, 0, math.nan
            ok = False
            for pulse in range(config.max_pulses + 1):
                state = float(w[k])
                log_read = log_g_min + state * log_span
                if noise > 0:
                    log_read += math.log1p(max(noise * normal(), -0.999))
                if abs(math.exp(log_read - log_target) - 1.0) <= tol:
                    ok = True
                    break
                if pulse == config.max_pulses:
                    break
                direction = 1 if log_read < log_target else -1
                if direction != polarity:
                    amplitude = config.v_set_start_v if direction > 0 else config.v_reset_start_v
                elif not (log_read - previous) * direction >= fraction * abs(log_target - previous):
                    amplitude += config.v_step_v
                amplitude = min(amplitude, config.v_max_v)
                polarity, previous = direction, log_read
                xi = math.exp(cycle * normal() - 0.5 * cycle * cycle)
                w[k] = respond(state, direction * amplitude, vs, vr, xi)
                pulses[k] += 1
                partial = amplitude / divisor
                same_lines, other_lines = (set_lines, reset_lines) if direction > 0 else (reset_lines, set_lines)
                disturb(same_lines.half_selected(i, j, partial), direction * partial)
                if scheme == "v/3":
                    disturb_many(other_lines.unselected(i, j, partial), -direction * partial)
            failed[k] = not ok
            tuned[k] = True
    shape = targets.shape
    g = g_min * np.exp(w.reshape(shape) * log_span)
    return ProgrammingResult(conductance=g, target=targets, pulses=np.array(pulses).reshape(shape),
                             failed=np.array(failed).reshape(shape), v_set=v_set, v_reset=v_reset,
                             disturb_events=events.reshape(shape), disturbed_after_tuning=after.reshape(shape),
                             tolerance=config.tolerance)


def _cell_order(n_rows: int, n_cols: int, order: str, rng: np.random.Generator) -> np.ndarray:
    rows, cols = np.meshgrid(np.arange(n_rows), np.arange(n_cols), indexing="ij")
    cells = np.stack([rows.ravel(), cols.ravel()], axis=1)
    if order == "column-major":
        cells = cells[np.lexsort((cells[:, 0], cells[:, 1]))]
    elif order == "random":
        cells = cells[rng.permutation(len(cells))]
    return cells


def layer_record(index: int, result: ProgrammingResult, masks: bool = False) -> dict:
    """Record of one programmed array: the scalar summary, plus the cell maps when ``masks``."""
    out = {"layer": index, **result.summary()}
    if masks:  # cell maps are large; study stores keep only the counts unless asked
        out.update({"failed_mask": result.failed, "out_of_tolerance_mask": result.out_of_tolerance,
                    "pulses_map": result.pulses})
        if result.disturb_events is not None:
            out["disturbed_mask"] = result.disturb_events > 0
            out["disturbed_after_tuning_mask"] = result.disturbed_after_tuning
    return out


def programming_totals(layers: list[dict]) -> dict:
    """Whole-circuit counts and error from the ``layer_record`` of every array."""
    cells = sum(r["cells"] for r in layers)
    total = {
        "cells": cells,
        "pulses_total": sum(r["pulses_total"] for r in layers),
        "failed": sum(r["failed"] for r in layers),
        "out_of_tolerance": sum(r["out_of_tolerance"] for r in layers),
        "relative_error_rms": float(math.sqrt(sum(r["relative_error_rms"] ** 2 * r["cells"] for r in layers) / cells)),
    }
    total["pulses_mean"] = total["pulses_total"] / cells
    total["failed_fraction"] = total["failed"] / cells
    if "disturbed" in layers[0]:
        total["disturbed"] = sum(r["disturbed"] for r in layers)
        total["disturbed_after_tuning"] = sum(r["disturbed_after_tuning"] for r in layers)
        total["disturbed_fraction"] = total["disturbed"] / cells
    return total


def apply_write_verify(circuit: Circuit, device: SwitchingDevice, config: WriteVerifyConfig,
                       rng: np.random.Generator, record_masks: bool = False) -> tuple[Circuit, dict]:
    """Program every array by write-verify (cells isolated by select transistors)."""
    results = [write_verify(g, circuit.cell.g_min, circuit.cell.g_max, device, config, rng) for g in circuit.conductances]
    layers = [layer_record(i, r, record_masks) for i, r in enumerate(results)]
    record = {"kind": "write_verify", "tolerance": config.tolerance, "max_pulses": int(config.max_pulses),
              "threshold_variation": device.threshold_variation, **programming_totals(layers), "layers": layers}
    return circuit.with_conductances([r.conductance for r in results]), record


def apply_passive_programming(circuit: Circuit, device: SwitchingDevice, config: WriteVerifyConfig,
                              rng: np.random.Generator, scheme: str = "v/2", order: str = "row-major",
                              passes: int = 1, record_masks: bool = False) -> tuple[Circuit, dict]:
    """Program every array as a passive crossbar with a V/2 or V/3 scheme (disturbance included)."""
    results = [program_per_tile(layer, lambda g: program_passive(g, circuit.cell.g_min, circuit.cell.g_max, device,
                                                                 config, rng, scheme, order, passes))
               for layer in circuit.layers]
    layers = [layer_record(i, r, record_masks) for i, r in enumerate(results)]
    record = {"kind": "passive_programming", "scheme": scheme, "order": order, "passes": int(passes),
              "tolerance": config.tolerance, "max_pulses": int(config.max_pulses),
              "threshold_variation": device.threshold_variation, **programming_totals(layers), "layers": layers}
    return circuit.with_conductances([r.conductance for r in results]), record


def program_per_tile(layer: Layer, program: Callable[[np.ndarray], ProgrammingResult]) -> ProgrammingResult:
    """Program each physical array (tile) of a layer on its own; the layer's result is their cell maps put together."""
    tiles = layer.tiles
    parts = [program(layer.conductance[t.rows, t.columns]) for t in tiles]
    if len(parts) == 1:
        return parts[0]
    maps = {}
    for f in fields(ProgrammingResult):
        if isinstance(getattr(parts[0], f.name), np.ndarray):
            whole = np.empty(layer.conductance.shape, dtype=getattr(parts[0], f.name).dtype)
            for t, part in zip(tiles, parts):
                whole[t.rows, t.columns] = getattr(part, f.name)
            maps[f.name] = whole
    return ProgrammingResult(**maps, tolerance=parts[0].tolerance)


__all__ = ["SwitchingDevice", "WriteVerifyConfig", "ProgrammingResult", "write_verify", "program_passive",
           "apply_write_verify", "apply_passive_programming", "SCHEMES", "ORDERS", "INITIAL_STATES",
           "cell_thresholds", "initial_state", "check_targets", "layer_record", "programming_totals",
           "program_per_tile"]
