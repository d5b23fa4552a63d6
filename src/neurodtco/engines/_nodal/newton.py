"""Nonlinear cells: Newton's method on the whole batch, built on the linear factorization.

Each Newton step replaces every cell by its companion model at the present voltages: a
conductance ``D`` in parallel with the current source ``I(v) - D v``. The companion network is
linear and is solved by ``factorize`` + ``solve`` with those sources injected at each cell's word
and bit nodes. At the fixed point the companion currents are the cells' true currents.

* Chord Newton (the default) keeps one ``D`` for every step and every input vector: the cells'
  slopes at the batch's mean row voltage. One factorization serves the whole solve, and the
  error shrinks by a constant factor ``rho`` per step (about 1e-3 for 1 ohm wires and 10 kohm
  cells: the wires barely move the cells' voltages, so the slopes barely matter).
* True Newton takes each vector's own slopes every step: quadratic convergence, one
  factorization per vector and step. It is the fallback when chord steps stall.

Vectors are solved in chunks that stay in cache; each chunk stops when its estimated remaining
error (``rho / (1 - rho)`` times the last step) is below ``rtol`` on the cell voltages (relative
to the largest drive) and on the collected currents (relative to the largest one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .factorize import Factorization, factorize
from .network import ArrayNetwork
from .solve import ArraySolution, solve

#: Vectors per chunk: node arrays of about this many doubles stay in the CPU's cache.
_CHUNK_DOUBLES = 1 << 17
#: Doubles per true-Newton factorization stack (one C x C block per row and vector).
_FULL_NEWTON_DOUBLES = 1 << 21
#: Chord steps that shrink by less than this factor count as stalled.
_STALL_RATIO = 0.5


class ConvergenceError(RuntimeError):
    """Newton's method did not reach the tolerance for a nonlinear array."""


@dataclass(frozen=True)
class NewtonSettings:
    """Tolerance and iteration limits of the nonlinear solve."""

    rtol: float = 1e-12
    max_iterations: int = 100
    method: str = "chord"

    def __post_init__(self) -> None:
        if not (isinstance(self.rtol, (int, float)) and 0 < self.rtol < 1e-3):
            raise ValueError(f"rtol={self.rtol!r} is not accepted: expected a relative tolerance in (0, 1e-3), e.g. 1e-12")
        if not (isinstance(self.max_iterations, int) and self.max_iterations >= 2):
            raise ValueError(f"max_iterations={self.max_iterations!r} is not accepted: expected an integer >= 2")
        if self.method not in ("chord", "full"):
            raise ValueError(f"newton={self.method!r} is not accepted: choose 'chord' (one factorization, "
                             "true Newton as fallback) or 'full' (true Newton every step)")


@dataclass(frozen=True, eq=False)
class _Problem:
    """What stays fixed while Newton runs: the cells, the wires, the neuron inputs, the tolerance."""

    cell: Any
    g_rows: np.ndarray                  # [R, 1, C] read conductances
    g_word_s: float
    g_bit_s: float
    neuron_g_s: Optional[np.ndarray]
    settings: NewtonSettings
    scale_v: float
    label: str

    def current(self, v: np.ndarray) -> np.ndarray:
        """Cell currents at cell voltages ``v`` (rows first)."""
        return cell_current(self.cell, self.g_rows, v)

    def factorize(self, slopes: np.ndarray) -> Factorization:
        """Factorization for cell slopes ``[R, S, C]`` (rows first)."""
        return factorize(ArrayNetwork(np.swapaxes(slopes, 0, 1), self.g_word_s, self.g_bit_s, self.neuron_g_s))


@dataclass
class _State:
    """The iterate for a chunk of vectors (rows first, volts from the reference)."""

    drive_v: np.ndarray          # [B, R]
    inject_neuron: Optional[np.ndarray]  # [B or 1, C]: current into the neuron inputs
    word_v: np.ndarray           # [R, B, C]
    bit_v: np.ndarray            # [R, B, C]
    cell_v: np.ndarray           # [R, B, C]: word_v - bit_v
    solution: Optional[ArraySolution] = None
    steps: list = field(default_factory=list)
    iterations: int = 0


def solve_cells(cell: Any, g_read: np.ndarray, g_word_s: float, g_bit_s: float, neuron_g_s: Optional[np.ndarray],
                drive_v: np.ndarray, inject_neuron: Optional[np.ndarray], settings: NewtonSettings,
                label: str = "array", nodes: bool = False, drivers: bool = False) -> tuple[ArraySolution, dict]:
    """Solve an array of nonlinear cells for every drive vector ``[B, R]``.

    ``inject_neuron`` ``[1 or B, C]`` is a current into the neuron inputs (shared by every vector,
    or one row per vector). Returns the collected currents and neuron inputs (node voltages, rows first, if ``nodes``;
    driver currents if ``drivers``) and a dict saying how it converged.
    """
    batch, rows = drive_v.shape
    cols = g_read.shape[1]
    scale_v = max(float(np.max(np.abs(drive_v), initial=0.0)), 1e-3)
    prob = _Problem(cell, g_read[:, None, :], g_word_s, g_bit_s, neuron_g_s, settings, scale_v, label)
    chord = None
    if settings.method == "chord":
        mean_v = drive_v.mean(axis=0)[:, None] if batch else np.zeros((rows, 1))  # any slope serves no vectors
        slopes = cell.differential_conductance(g_read, mean_v)[:, None, :]
        chord = (prob.factorize(slopes), slopes)
    chunk = max(1, _CHUNK_DOUBLES // (rows * cols))
    out = _Output(batch, rows, cols, nodes, drivers)
    info = {"method": settings.method, "iterations": 0, "full_newton_vectors": 0}
    for first in range(0, batch, chunk):
        state = _start(drive_v[first:first + chunk], _rows(inject_neuron, slice(first, first + chunk)))
        if chord is None or not _chord(prob, state, *chord):
            info["full_newton_vectors"] += state.drive_v.shape[0]
            if not _progressed(state.steps):
                # diverging chord steps leave nothing worth keeping: start again from the ideal voltages
                iterations = state.iterations
                state = _start(state.drive_v, state.inject_neuron)
                state.iterations = iterations
            _full(prob, state, first)
        info["iterations"] = max(info["iterations"], state.iterations)
        out.store(first, prob, state)
    if chord is not None and info["full_newton_vectors"]:
        info["method"] = "chord, then full"
    return out.solution(), info


class _Output:
    """Results gathered chunk by chunk into preallocated arrays (only what was asked for)."""

    def __init__(self, batch: int, rows: int, cols: int, nodes: bool, drivers: bool) -> None:
        self.collected = np.empty((batch, cols))
        self.neuron = np.empty((batch, cols))
        self.word = np.empty((rows, batch, cols)) if nodes else None
        self.bit = np.empty((rows, batch, cols)) if nodes else None
        self.driver = np.empty((batch, rows)) if drivers else None

    def store(self, first: int, prob: _Problem, state: _State) -> None:
        """Copy a converged chunk's results in place."""
        part = slice(first, first + state.drive_v.shape[0])
        self.collected[part] = state.solution.collected_a
        self.neuron[part] = state.solution.neuron_v
        if self.word is not None:
            self.word[:, part] = state.word_v
            self.bit[:, part] = state.bit_v
        if self.driver is not None:
            # Kirchhoff on each word line: the driver feeds the row's cells (exact, no small differences)
            self.driver[part] = prob.current(state.cell_v).sum(axis=2).T

    def solution(self) -> ArraySolution:
        """Everything gathered."""
        return ArraySolution(self.collected, self.neuron, self.word, self.bit, self.driver)


def _start(drive_v: np.ndarray, inject_neuron: Optional[np.ndarray]) -> _State:
    """Ideal-wire voltages: every word node at its driver, every bit node at the reference."""
    word = np.repeat(drive_v.T[:, :, None], 1, axis=2)
    return _State(drive_v, inject_neuron, word, np.zeros_like(word), word.copy())


def _rows(inject_neuron: Optional[np.ndarray], part: slice) -> Optional[np.ndarray]:
    """The injection of some vectors: one shared row, or one row per vector."""
    if inject_neuron is None or inject_neuron.shape[0] == 1:
        return inject_neuron
    return inject_neuron[part]


def _chord(prob: _Problem, state: _State, fact: Factorization, slopes: np.ndarray) -> bool:
    """Chord steps with the shared factorization; False when they stall (state kept)."""
    for _ in range(prob.settings.max_iterations):
        if _step(prob, state, fact, slopes):
            return True
        if not math.isfinite(state.steps[-1][0]) or _stalled(state.steps):
            return False
    return False


def _full(prob: _Problem, state: _State, first: int) -> None:
    """True Newton from the present state, in sub-chunks whose factorizations fit in memory."""
    rows, batch, cols = state.word_v.shape
    size = max(1, _FULL_NEWTON_DOUBLES // (rows * cols * cols))
    if batch > size:
        subs = [_State(state.drive_v[k:k + size], _rows(state.inject_neuron, slice(k, k + size)),
                       state.word_v[:, k:k + size], state.bit_v[:, k:k + size], state.cell_v[:, k:k + size])
                for k in range(0, batch, size)]
        for k, sub in enumerate(subs):
            _full(prob, sub, first + k * size)
        _merge(state, subs)
        return
    state.steps = []
    for _ in range(prob.settings.max_iterations):
        slopes = prob.cell.differential_conductance(prob.g_rows, state.cell_v)
        if _step(prob, state, prob.factorize(slopes), slopes, damp=True):
            return
        if not math.isfinite(state.steps[-1][0]):
            break
    tol = prob.settings.rtol * prob.scale_v
    raise ConvergenceError(
        f"{prob.label}: Newton's method did not converge for input vectors {first}..{first + batch - 1} "
        f"after {len(state.steps)} full steps (last cell-voltage step {state.steps[-1][0]:.3g} V, tolerance "
        f"{tol:.3g} V); check that conductances, wire resistances and input voltages are physical, or raise "
        "max_iterations"
    )


def _step(prob: _Problem, state: _State, fact: Factorization, slopes: np.ndarray, damp: bool = False) -> bool:
    """One companion-model solve; updates ``state``; True when the remaining error is below tolerance.

    With ``damp``, a step that moves some cell voltage by more than the largest drive voltage
    (no cell can see more than that) is shortened to that size: it keeps true Newton on the
    exponential cell law from overshooting into overflow.
    """
    v = state.cell_v
    with np.errstate(over="ignore", invalid="ignore"):  # divergence shows up as a non-finite step
        companion = prob.current(v)
        companion -= slopes * v
        sol = solve(fact, state.drive_v, inject_word=-companion, inject_bit=companion,
                    inject_neuron=state.inject_neuron, nodes=True, drivers=False)
        new_v = sol.word_v - sol.bit_v
        step_v = _max_abs(new_v - v)
    old = state.solution
    if damp and step_v > prob.scale_v and old is not None:
        sol, new_v = _toward(old, state, sol, prob.scale_v / step_v)
    step_a = math.inf if old is None else _max_abs(sol.collected_a - old.collected_a)
    state.word_v, state.bit_v, state.cell_v = sol.word_v, sol.bit_v, new_v
    state.solution = sol
    state.steps.append((step_v, step_a))
    state.iterations += 1
    if not math.isfinite(step_v):
        return False
    # the error left after a step of a contraction with factor rho is at most rho / (1 - rho) times it
    rho = _rate(state.steps)
    left = rho / (1.0 - rho) if rho < 0.5 else 1.0
    # the collected current is a small difference across the last bit segment: it must settle to the
    # same relative tolerance as the cell voltages
    return (step_v * left <= prob.settings.rtol * prob.scale_v
            and step_a * left <= prob.settings.rtol * _max_abs(sol.collected_a) + 1e-300)


def _toward(old: ArraySolution, state: _State, new: ArraySolution, fraction: float):
    """The point ``fraction`` of the way from the present iterate to the new solution."""
    def mix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a + fraction * (b - a)

    word, bit = mix(state.word_v, new.word_v), mix(state.bit_v, new.bit_v)
    sol = ArraySolution(mix(old.collected_a, new.collected_a), mix(old.neuron_v, new.neuron_v), word, bit)
    return sol, word - bit


def _progressed(steps: list) -> bool:
    """True when chord steps shrank overall (their iterate is a better start than the ideal one)."""
    return bool(steps) and all(math.isfinite(s[0]) for s in steps) and steps[-1][0] < steps[0][0]


def _rate(steps: list) -> float:
    """Contraction factor of the last step (1 when unknown)."""
    if len(steps) < 2 or steps[-2][0] == 0:
        return 1.0 if len(steps) < 2 or steps[-1][0] > 0 else 0.0
    return min(1.0, steps[-1][0] / steps[-2][0])


def _stalled(steps: list) -> bool:
    """Chord steps that shrank by less than ``_STALL_RATIO`` twice in a row."""
    if len(steps) < 4:
        return False
    return steps[-1][0] > _STALL_RATIO * steps[-2][0] and steps[-2][0] > _STALL_RATIO * steps[-3][0]


def _merge(state: _State, subs: list[_State]) -> None:
    """Gather sub-chunks back into one state."""
    state.word_v = np.concatenate([s.word_v for s in subs], axis=1)
    state.bit_v = np.concatenate([s.bit_v for s in subs], axis=1)
    state.cell_v = np.concatenate([s.cell_v for s in subs], axis=1)
    state.solution = _concat([s.solution for s in subs])
    state.iterations += max(s.iterations for s in subs)


def cell_current(cell: Any, g_read: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Currents of cells of read conductance ``g_read`` at voltages ``v`` (broadcasting)."""
    return cell.current(g_read, v)


def _max_abs(a: np.ndarray) -> float:
    return float(np.max(np.abs(a), initial=0.0))


def _concat(parts: list[ArraySolution]) -> ArraySolution:
    def cat(name: str, axis: int = 0) -> Optional[np.ndarray]:
        items = [getattr(p, name) for p in parts]
        return None if any(i is None for i in items) else np.concatenate(items, axis=axis)

    return ArraySolution(cat("collected_a"), cat("neuron_v"), cat("word_v", 1), cat("bit_v", 1), cat("driver_a"))
