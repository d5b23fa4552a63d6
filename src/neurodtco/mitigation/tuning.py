"""Tuning lever: a write-verify variant for passive crossbars that tolerates threshold variation.

Why the basic algorithm fails. In a passive (0T1R) crossbar programmed with the V/2 scheme,
tuning a cell with a pulse of amplitude ``V`` puts ``V/2`` across every other cell of its row
and column. With a normalized threshold variation of 25%, the cells that need the largest
pulses (high thresholds, ~1.5x the mean) half-select their neighbours at ~0.75x the mean, above
the thresholds of the weakest neighbours: cells tuned earlier are knocked out of tolerance
after they were verified (``imperfections.programming.program_passive`` measures this).

The variant (``program_passive_ordered``) uses only pulses and verify reads, as a real programmer
would:

1. *Probe.* Ramp set pulses on every cell until a verify read shows it moved: an estimate of
   its set threshold (within one amplitude step). Nothing is tuned yet, so the disturbance of
   this pass is harmless. Reset thresholds are learned the same way during the reset approaches.
2. *Ordered one-polarity phases.* An upward phase visits every cell in *descending* order of its
   learned set threshold, verifies it and, if it is below its band, approaches it with set pulses
   only; a downward phase does the same with reset pulses for the cells above their band.
   A cell's pulses stay just above its own threshold, so its half-select stays below the
   thresholds of the stronger cells verified before it; the weaker cells it may push are
   verified later, and are pushed in the phase's own direction, i.e. to the side the next phase
   fixes. Phases alternate for up to ``rounds`` rounds.
3. *Adaptive amplitude.* Each approach starts one step below the learned threshold (no blind
   ramp from the start amplitude), rises after a pulse that closed less than
   ``progress_fraction`` of the remaining distance and *falls* after one that closed more than
   60%, so cells converge geometrically instead of overshooting; a cell that does not move at
   the largest amplitude for ``patience`` pulses is given up instead of hammering its lines.

``program_passive_session`` also continues on a chip programmed before (same devices, its state,
the learned thresholds: a touch-up), and ``program_with_retraining`` uses that to combine tuning
and training: program, read the map back, retrain the network around the cells that missed,
touch up. ``scheme="1t1r"`` runs the same approaches on cells isolated by select transistors
(``program_circuit_1t1r``: fewer pulses than the basic write-verify for the same tolerance).
The device, the verify loop and the pulse/half-select physics are those of
``imperfections.programming`` (same ``SwitchingDevice``, same ``WriteVerifyConfig``; with the same
seed the same thresholds are drawn), so the comparison with ``program_passive`` is like for like.
A tiled layer is several arrays, each with its own row and column drivers: every tile is probed,
tuned and touched up on its own (a pulse in one tile never reaches another), tiles one after the
other, as ``imperfections.programming`` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from ..circuit import Circuit, Layer
from ..imperfections.programming import SCHEMES as PASSIVE_SCHEMES
from ..imperfections.programming import (ProgrammingResult, SwitchingDevice, WriteVerifyConfig, cell_thresholds,
                                         check_targets, initial_state, layer_record, program_per_tile,
                                         programming_totals)
from .training import RetrainConfig, retrain_defect_aware

#: The passive schemes of ``imperfections.programming`` plus 1T1R write-verify (one selected cell at a time).
SCHEMES = (*PASSIVE_SCHEMES, "1t1r")


@dataclass
class _State:
    w: np.ndarray  # [rows, cols] log-position of every cell
    v_set: np.ndarray
    v_reset: np.ndarray
    pulses: np.ndarray
    events: np.ndarray
    tuned: np.ndarray
    after: np.ndarray
    learned_set: np.ndarray  # amplitude of the first set pulse that moved the cell (nan: unknown)
    learned_reset: np.ndarray


@dataclass(frozen=True, eq=False)
class ChipMemory:
    """What a programmer knows about (and what is physically on) one passive array after programming.

    ``v_set``/``v_reset``: the devices' true thresholds (the simulated chip, not known to the
    algorithm); ``learned_set``/``learned_reset``: the algorithm's estimates (NaN: never seen
    moving); ``conductance``: the state the array was left in.
    """

    v_set: np.ndarray
    v_reset: np.ndarray
    learned_set: np.ndarray
    learned_reset: np.ndarray
    conductance: np.ndarray


def program_passive_ordered(targets: np.ndarray, g_min: float, g_max: float, device: SwitchingDevice,
                            config: WriteVerifyConfig, rng: np.random.Generator, scheme: str = "v/2", rounds: int = 4,
                            patience: Optional[int] = 3) -> ProgrammingResult:
    """Tune a passive crossbar: probe set thresholds, then one-polarity approaches in threshold order.

    ``device`` is an ``imperfections.SwitchingDevice``, ``config`` a ``WriteVerifyConfig`` (its
    tolerance, step, start and largest amplitudes, verify noise and pulse budget per approach are
    honoured). ``rounds``: alternations of an upward (set) phase and a downward (reset) phase over
    the cells still out of tolerance. ``patience``: pulses at the largest amplitude without any
    movement after which a cell is given up. Returns an ``imperfections.ProgrammingResult`` with
    every pulse counted (probing included).
    """
    return program_passive_session(targets, g_min, g_max, device, config, rng, scheme=scheme, rounds=rounds,
                                   patience=patience)[0]


def program_passive_session(targets: np.ndarray, g_min: float, g_max: float, device: SwitchingDevice,
                            config: WriteVerifyConfig, rng: np.random.Generator, scheme: str = "v/2", rounds: int = 4,
                            patience: Optional[int] = 3, memory: Optional[ChipMemory] = None,
                            probe: Optional[bool] = None) -> tuple[ProgrammingResult, ChipMemory]:
    """``program_passive_ordered`` that can continue on a chip programmed before (``memory``).

    Without ``memory`` the devices are drawn (as ``program_passive`` does: same seed, same devices),
    the cells start at the configured initial state and the set thresholds are probed first. With
    it, the same devices start from the state they were left in and the learned thresholds are
    reused (no probing): a touch-up pass toward new targets. ``scheme="1t1r"``: cells isolated by
    select transistors (no half-select); ``probe`` (default: only for a fresh passive array) runs
    the threshold-probing pass, else thresholds are learned during the approaches.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme={scheme!r} is not accepted: choose one of {list(SCHEMES)}")
    if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 1:
        raise ValueError(f"rounds={rounds!r} is not accepted: expected an integer >= 1 (up/down phase pairs)")
    targets = check_targets(targets, g_min, g_max)
    if targets.ndim != 2:
        raise ValueError(f"a passive crossbar is a [rows, columns] array; got shape {targets.shape}")
    shape = targets.shape
    log_span = math.log(g_max / g_min)
    if memory is None:
        # Drawn first, exactly as program_passive does: the same seed gives the same devices.
        v_set, v_reset = cell_thresholds(device, shape, rng)
        w0 = initial_state(shape, config)
        learned_set, learned_reset = np.full(shape, np.nan), np.full(shape, np.nan)
    else:
        if memory.conductance.shape != shape:
            raise ValueError(f"memory is of a {memory.conductance.shape} array, targets are {shape}")
        v_set, v_reset = memory.v_set, memory.v_reset
        w0 = np.clip(np.log(memory.conductance / g_min) / log_span, 0.0, 1.0)
        learned_set, learned_reset = memory.learned_set.copy(), memory.learned_reset.copy()
    state = _State(w=w0, v_set=v_set, v_reset=v_reset,
                   pulses=np.zeros(shape, dtype=np.int64), events=np.zeros(shape, dtype=np.int64),
                   tuned=np.zeros(shape, dtype=bool), after=np.zeros(shape, dtype=bool),
                   learned_set=learned_set, learned_reset=learned_reset)
    ctx = _Context(state=state, log_targets=np.log(targets), log_g_min=math.log(g_min),
                   log_span=log_span, device=device, config=config, rng=rng,
                   divisor={"v/2": 2.0, "v/3": 3.0, "1t1r": math.inf}[scheme], scheme=scheme, patience=patience)
    given_up = np.zeros(shape, dtype=bool)
    if probe is None:
        probe = memory is None and scheme != "1t1r"
    if probe:
        # Probe: learn every cell's set threshold before anything is tuned (its disturbance is harmless now).
        for i, j in np.ndindex(*shape):
            _probe(ctx, i, j, direction=1)
    for _ in range(rounds):
        for direction in (1, -1):
            learned = state.learned_set if direction > 0 else state.learned_reset
            key = np.where(np.isnan(learned), np.inf, learned)
            # Strongest first: later (weaker) cells' half-select pulses stay below their thresholds.
            # Every cell is verified at its own turn, after all stronger cells have pulsed, and
            # approached if it is on this phase's side of its target.
            for k in np.argsort(-key.ravel(), kind="stable").tolist():
                i, j = divmod(k, shape[1])
                if not given_up[i, j] and _approach(ctx, i, j, direction) == "gave up":
                    given_up[i, j] = True
        if not _out_of_tolerance(ctx).any():
            break
    failed = _out_of_tolerance(ctx)
    g = g_min * np.exp(state.w * ctx.log_span)
    result = ProgrammingResult(conductance=g, target=targets, pulses=state.pulses, failed=failed, v_set=v_set,
                               v_reset=v_reset, disturb_events=state.events, disturbed_after_tuning=state.after,
                               tolerance=config.tolerance)
    return result, ChipMemory(v_set=v_set, v_reset=v_reset, learned_set=state.learned_set,
                              learned_reset=state.learned_reset, conductance=g)


@dataclass
class _Context:
    state: _State
    log_targets: np.ndarray
    log_g_min: float
    log_span: float
    device: SwitchingDevice
    config: WriteVerifyConfig
    rng: np.random.Generator
    divisor: float
    scheme: str
    patience: Optional[int]

    def read(self, i: int, j: int) -> float:
        """A verify read of one cell (log conductance, with verify noise)."""
        return _read(self.state, i, j, self.log_g_min, self.log_span, self.config, self.rng)

    def reads(self) -> np.ndarray:
        """Noise-free log conductance of every cell (phase bookkeeping; each cell is re-read at its turn)."""
        return self.log_g_min + self.state.w * self.log_span

    def pulse(self, i: int, j: int, volts: float) -> None:
        """One pulse on cell (i, j) with its half-select disturbance."""
        _pulse(self.state, i, j, volts, self.device, self.rng, self.divisor, self.scheme)


def _out_of_tolerance(ctx: _Context) -> np.ndarray:
    return np.abs(np.exp(ctx.reads() - ctx.log_targets) - 1.0) > ctx.config.tolerance * (1.0 + 1e-9)


def _approach(ctx: _Context, i: int, j: int, direction: int) -> str:
    """Move one cell toward its target with pulses of one polarity only; returns ok/overshoot/gave up/budget.

    The amplitude adapts both ways: it starts one step below the learned threshold, rises after a
    pulse that closed less than ``progress_fraction`` of the remaining distance and falls after one
    that closed more than 60%, so the cell converges geometrically without jumping over the band.
    """
    config, state = ctx.config, ctx.state
    log_target = float(ctx.log_targets[i, j])
    learned = (state.learned_set if direction > 0 else state.learned_reset)[i, j]
    nominal = config.v_set_start_v if direction > 0 else config.v_reset_start_v
    amplitude = nominal if np.isnan(learned) else max(config.v_step_v, learned - config.v_step_v)
    previous = ctx.read(i, j)
    idle_at_max = 0
    for _ in range(config.max_pulses):
        remaining = (log_target - previous) * direction
        if abs(math.exp(previous - log_target) - 1.0) <= config.tolerance:
            state.tuned[i, j] = True
            return "ok"
        if remaining < 0:
            state.tuned[i, j] = True
            return "overshoot"
        ctx.pulse(i, j, direction * amplitude)
        now = ctx.read(i, j)
        closed = (now - previous) * direction
        if closed > _noise_floor(config):
            _learn(state, i, j, direction, amplitude)
            idle_at_max = 0
        elif amplitude >= config.v_max_v:
            idle_at_max += 1
            if ctx.patience is not None and idle_at_max >= ctx.patience:
                return "gave up"
        if closed < config.progress_fraction * remaining:
            amplitude = min(amplitude + config.v_step_v, config.v_max_v)
        elif closed > 0.6 * remaining:
            amplitude = max(amplitude - config.v_step_v, config.v_step_v)
        previous = now
    state.tuned[i, j] = True
    return "budget"


def _probe(ctx: _Context, i: int, j: int, direction: int) -> None:
    """Ramp pulses of one polarity from the start amplitude until the cell moves: learns that threshold."""
    config = ctx.config
    amplitude = config.v_set_start_v if direction > 0 else config.v_reset_start_v
    before = ctx.read(i, j)
    while amplitude <= config.v_max_v + 1e-12:
        ctx.pulse(i, j, direction * amplitude)
        after = ctx.read(i, j)
        if (after - before) * direction > _noise_floor(config):
            _learn(ctx.state, i, j, direction, amplitude)
            return
        before = after
        amplitude += config.v_step_v


def _read(state: _State, i: int, j: int, log_g_min: float, log_span: float, config: WriteVerifyConfig,
          rng: np.random.Generator) -> float:
    log_read = log_g_min + float(state.w[i, j]) * log_span
    if config.verify_noise > 0:
        log_read += math.log1p(max(config.verify_noise * float(rng.standard_normal()), -0.999))
    return log_read


def _pulse(state: _State, i: int, j: int, volts: float, device: SwitchingDevice, rng: np.random.Generator,
           divisor: float, scheme: str) -> None:
    """One programming pulse on cell (i, j), with the half-select disturbance it causes."""
    xi = float(device.cycle_factor(rng))
    state.w[i, j] = device.response_scalar(float(state.w[i, j]), volts, float(state.v_set[i, j]),
                                           float(state.v_reset[i, j]), xi)
    state.pulses[i, j] += 1
    if scheme == "1t1r":
        return  # select transistors isolate every other cell
    partial = volts / divisor
    thresholds = state.v_set if partial > 0 else state.v_reset
    _disturb(state, (i, slice(None)), partial, thresholds, device, rng, skip=j)
    _disturb(state, (slice(None), j), partial, thresholds, device, rng, skip=i)
    if scheme == "v/3":
        # Every unselected cell sees -V/3: opposite polarity, compared with the other threshold.
        other = state.v_reset if partial > 0 else state.v_set
        mask = other < abs(partial)
        mask[i, :] = False
        mask[:, j] = False
        if mask.any():
            old = state.w[mask]
            new = device.response(old, -partial, state.v_set[mask], state.v_reset[mask],
                                  device.cycle_factor(rng, old.shape))
            changed = new != old
            state.events[mask] += changed
            state.after[mask] |= changed & state.tuned[mask]
            state.w[mask] = new


def _disturb(state: _State, line: tuple, volts: float, thresholds: np.ndarray, device: SwitchingDevice,
             rng: np.random.Generator, skip: int) -> None:
    exposed = np.abs(volts) > thresholds[line]
    exposed[skip] = False
    if not exposed.any():
        return
    idx = np.flatnonzero(exposed)
    w_line = state.w[line]
    old = w_line[idx]
    sub = (line[0], idx) if isinstance(line[0], int) else (idx, line[1])
    new = device.response(old, volts, state.v_set[sub], state.v_reset[sub], device.cycle_factor(rng, old.shape))
    changed = new != old
    state.events[sub] += changed
    state.after[sub] |= changed & state.tuned[sub]
    state.w[sub] = new


def _noise_floor(config: WriteVerifyConfig) -> float:
    """Smallest change of a log read that counts as movement (three verify-noise sigmas, or any)."""
    return 3.0 * config.verify_noise if config.verify_noise > 0 else 1e-12


def _learn(state: _State, i: int, j: int, direction: int, amplitude: float) -> None:
    learned = state.learned_set if direction > 0 else state.learned_reset
    if np.isnan(learned[i, j]) or amplitude < learned[i, j]:
        learned[i, j] = amplitude


def apply_ordered_programming(circuit: Circuit, device: SwitchingDevice, config: WriteVerifyConfig,
                              rng: np.random.Generator, scheme: str = "v/2", rounds: int = 4,
                              patience: Optional[int] = 3) -> tuple[Circuit, dict]:
    """Program every array as a passive crossbar with ``program_passive_ordered``; returns the circuit and a record.

    Every tile of a tiled layer is its own array with its own drivers: it is probed and tuned on
    its own, tiles one after the other (row block major). The record has the fields of
    ``imperfections.apply_passive_programming``'s, so the two compare line by line.
    """
    g_min, g_max = circuit.cell.g_min, circuit.cell.g_max
    results = [program_per_tile(layer, lambda g: program_passive_ordered(g, g_min, g_max, device, config, rng,
                                                                         scheme=scheme, rounds=rounds,
                                                                         patience=patience))
               for layer in circuit.layers]
    layers = [layer_record(i, r) for i, r in enumerate(results)]
    record = {"kind": "passive_programming_ordered", "scheme": scheme, "rounds": int(rounds),
              "tolerance": config.tolerance, "max_pulses": int(config.max_pulses),
              "threshold_variation": device.threshold_variation, **programming_totals(layers), "layers": layers}
    return circuit.with_conductances([r.conductance for r in results]), record


Session = Callable[[np.ndarray, Optional[ChipMemory]], tuple[ProgrammingResult, ChipMemory]]


def _layer_session(layer: Layer, targets: np.ndarray, session: Session,
                   memories: Optional[list[ChipMemory]] = None) -> tuple[ProgrammingResult, list[ChipMemory]]:
    """One programming session on each tile of a layer (each its own array): the layer's result, each tile's memory."""
    chips = iter(memories if memories is not None else [None] * len(layer.tiles))
    left: list[ChipMemory] = []

    def one(tile_targets: np.ndarray) -> ProgrammingResult:
        result, memory = session(tile_targets, next(chips))
        left.append(memory)
        return result

    return program_per_tile(layer.replace(conductance=targets), one), left


def program_with_retraining(circuit: Circuit, dataset: Any, device: SwitchingDevice, config: WriteVerifyConfig,
                            rng: np.random.Generator, scheme: str = "v/2", retrain: Any = None, iterations: int = 1,
                            rounds: int = 4, patience: Optional[int] = 3) -> tuple[Circuit, dict]:
    """Program passively, measure, retrain around the cells that missed, and touch up: tuning + training.

    1. every array (every tile of a tiled layer) is programmed with ``program_passive_session``
       (probe, ordered approaches);
    2. the whole map is read back (verify reads are free of sneak paths) and every cell outside
       the tolerance is treated as stuck at its measured value;
    3. defect-aware retraining (``training.retrain_defect_aware``) moves the other cells' targets
       to compensate, starting from the measured map;
    4. the same chip is touched up toward the new targets (same devices, learned thresholds, no
       probing); steps 2-4 repeat ``iterations`` times.
    Returns the programmed circuit and a record (pulses over all passes, cells still off target).
    """

    retrain = retrain if retrain is not None else RetrainConfig(epochs=40, batch_size=256, learning_rate=5e-3,
                                                                change_weight=0.3)
    g_min, g_max = circuit.cell.g_min, circuit.cell.g_max

    def session(targets: np.ndarray, memory: Optional[ChipMemory]) -> tuple[ProgrammingResult, ChipMemory]:
        return program_passive_session(targets, g_min, g_max, device, config, rng, scheme, rounds, patience,
                                       memory=memory)

    sessions = [_layer_session(layer, layer.conductance, session) for layer in circuit.layers]
    pulses = [r.pulses.copy() for r, _ in sessions]
    history = [_session_counts(sessions)]
    for _ in range(iterations):
        measured = circuit.with_conductances([r.conductance for r, _ in sessions])
        stuck = [r.failed for r, _ in sessions]
        targets = retrain_defect_aware(measured, stuck, dataset, retrain).conductances
        sessions = [_layer_session(layer, np.clip(t, g_min, g_max), session, memories)
                    for layer, t, (_, memories) in zip(circuit.layers, targets, sessions)]
        pulses = [p + r.pulses for p, (r, _) in zip(pulses, sessions)]
        history.append(_session_counts(sessions))
    cells = sum(p.size for p in pulses)
    record = {"kind": "passive_programming_retrained", "scheme": scheme, "iterations": int(iterations),
              "threshold_variation": device.threshold_variation, "tolerance": config.tolerance,
              "pulses_total": int(sum(p.sum() for p in pulses)),
              "pulses_mean": float(sum(p.sum() for p in pulses) / cells),
              "out_of_tolerance": history[-1]["out_of_tolerance"], "history": history}
    return circuit.with_conductances([r.conductance for r, _ in sessions]), record


def _session_counts(sessions: list) -> dict:
    return {"out_of_tolerance": int(sum(r.failed.sum() for r, _ in sessions)),
            "disturbed_after_tuning": int(sum(r.disturbed_after_tuning.sum() for r, _ in sessions)),
            "pulses": int(sum(r.pulses.sum() for r, _ in sessions))}


def program_circuit_1t1r(circuit: Circuit, device: SwitchingDevice, config: WriteVerifyConfig,
                         rng: np.random.Generator, rounds: int = 4) -> tuple[Circuit, dict]:
    """Program every array cell by cell with the adaptive algorithm on 1T1R cells (no disturbance).

    The comparison partner is ``imperfections.apply_write_verify``: same device and config; the
    adaptive variant approaches from one side with amplitudes that fall as well as rise, and
    restarts from the learned threshold instead of the start amplitude after an overshoot.
    Tiles are programmed one after the other, each on its own.
    """
    g_min, g_max = circuit.cell.g_min, circuit.cell.g_max
    results = [program_per_tile(layer, lambda g: program_passive_session(g, g_min, g_max, device, config, rng,
                                                                         scheme="1t1r", rounds=rounds)[0])
               for layer in circuit.layers]
    layers = [layer_record(i, r) for i, r in enumerate(results)]
    record = {"kind": "write_verify_adaptive", "tolerance": config.tolerance, "max_pulses": int(config.max_pulses),
              "threshold_variation": device.threshold_variation, **programming_totals(layers), "layers": layers}
    return circuit.with_conductances([r.conductance for r in results]), record
