"""Characterize the transistor-level neuron in ngspice and extract its behavioural parameters.

For each (corner, temperature) one ngspice run holds four small test benches, each driven by
its own source so that one DC sweep moves one bench only:

* ``gain``: the op-amp as an inverting amplifier (input and feedback resistors ``R``) loaded by
  ``R_L`` at each of several loads. A straight-line fit of ``out`` against the differential input
  ``v(inn) - v(inp)`` over the linear output range gives the open-loop gain ``A`` (slope) and the
  input offset (the differential input at zero output), in exactly the form the behavioural model
  uses: ``out = A (offset_v - v(inn))`` with ``inp`` at ground.
* ``common_mode``: a unity-gain follower swept over the input common-mode range: the offset
  as a function of common-mode voltage (what the difference stage sees).
* ``activation``: the neuron's difference stage (resistors ``R1`` and ``r R1``) driving ``R_L``,
  swept over a differential input ``x = t_minus - t_plus``: the activation's transfer curve,
  its small-signal gain and its clamp levels (the op-amp's output swing).
* ``loop`` (AC): open-loop gain and phase with a DC-closed loop, for the unity-gain frequency and
  phase margin of the default compensation (a sanity check of the design, not used by the model).
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from .._validate import check_positive
from . import pdk
from .opamp import NeuronDesign, opamp_subckt, supply_lines
from .spice import Analysis, ngspice_path, run_analyses

FORMAT = "neurodtco-periphery/1"
SPICE_OPTIONS = "reltol=1e-6 vntol=1e-9 abstol=1e-14"


@dataclass(frozen=True)
class BenchConfig:
    """Test-bench settings: resistors, loads, sweep ranges and resolution."""

    gain_resistance_ohm: float = 10e3
    load_resistances_ohm: tuple[float, ...] = (1e3, 2e3, 5e3, 20e3, 1e9)
    nominal_load_ohm: float = 2e3
    fit_range_v: float = 0.25
    sweep_step_v: float = 5e-3
    common_mode_range_v: float = 0.3
    activation_points: int = 161
    load_capacitance_f: float = 1e-12

    def __post_init__(self) -> None:
        check_positive("gain_resistance_ohm", self.gain_resistance_ohm, "ohms")
        if not self.load_resistances_ohm:
            raise ValueError("load_resistances_ohm needs at least one load")
        for r in self.load_resistances_ohm:
            check_positive("load_resistances_ohm", r, "ohms")
        check_positive("nominal_load_ohm", self.nominal_load_ohm, "ohms")
        check_positive("fit_range_v", self.fit_range_v, "volts of output around 0")
        check_positive("sweep_step_v", self.sweep_step_v, "volts")
        check_positive("common_mode_range_v", self.common_mode_range_v, "volts")
        if self.activation_points < 11:
            raise ValueError(f"activation_points={self.activation_points} must be >= 11")
        check_positive("load_capacitance_f", self.load_capacitance_f, "farads")


def _v(value: float) -> str:
    return f"{value:.9g}"


def bench_netlists(neuron: NeuronDesign, corner: str, temp_c: float,
                   bench: BenchConfig = BenchConfig()) -> list[tuple[str, list[Analysis]]]:
    """The netlist bodies and analyses (one ngspice run each) that characterize one (corner, temperature).

    Benches run separately because every sweep point solves the whole netlist: a bench that
    does not move would only cost time.
    """
    corner = pdk.check_corner(corner)
    if not (isinstance(temp_c, (int, float)) and not isinstance(temp_c, bool) and -55.0 <= temp_c <= 150.0):
        raise ValueError(f"temp_c={temp_c!r} is not accepted: expected a temperature in [-55, 150] degC")
    opamp = neuron.opamp
    r1 = neuron.r_difference_in_ohm
    r2 = neuron.difference_gain * r1
    r_nom = bench.nominal_load_ohm
    head = [pdk.lib_line(corner), f".temp {_v(temp_c)}", opamp_subckt(opamp), supply_lines(opamp)]
    rail = max(opamp.vdd_v, -opamp.vss_v)

    # Gain benches: one inverting amplifier per load, all driven by vg.
    gain = head + ["vg vg 0 0"]
    for k, r_load in enumerate(bench.load_resistances_ohm):
        gain += [f"rgi{k} vg gn{k} {_v(bench.gain_resistance_ohm)}",
                 f"rgf{k} gn{k} go{k} {_v(bench.gain_resistance_ohm)}",
                 f"rgl{k} go{k} 0 {_v(r_load)}",
                 f"xg{k} 0 gn{k} go{k} vdd vss opamp"]
    g_sweep = 1.4 * rail
    gain_vectors = tuple(f"v(gn{k}) v(go{k})" for k in range(len(bench.load_resistances_ohm)))
    # Start the sweep at 0 V (where the nodeset hints hold) and go out to each rail.
    gain_analyses = [Analysis("gain_up", f"dc vg 0 {_v(g_sweep)} {_v(bench.sweep_step_v)}", gain_vectors),
                     Analysis("gain_down", f"dc vg 0 {_v(-g_sweep)} {_v(-bench.sweep_step_v)}", gain_vectors)]
    gain.append(".nodeset " + " ".join(f"v(go{k})=0" for k in range(len(bench.load_resistances_ohm))))

    # Follower over the input common-mode range.
    cm_step = bench.common_mode_range_v / 30
    common = head + ["vf vf 0 0", f"rfl fo 0 {_v(r_nom)}", "xf vf fo fo vdd vss opamp", ".nodeset v(fo)=0"]
    common_analyses = [Analysis("common_mode", f"dc vf {_v(-bench.common_mode_range_v)} "
                                f"{_v(bench.common_mode_range_v + cm_step / 2)} {_v(cm_step)}", ("v(fo)",))]

    # Difference/activation stage, driven differentially around ground by vx.
    act = head + ["vx vx 0 0", "etp tp 0 vx 0 -0.5", "etm tm 0 vx 0 0.5",
                  f"r1n tp dn {_v(r1)}", f"r2n dn ao {_v(r2)}", f"r1p tm dp {_v(r1)}", f"r2p dp 0 {_v(r2)}",
                  f"ral ao 0 {_v(r_nom)}", "xa dp dn ao vdd vss opamp", ".nodeset v(ao)=0"]
    x_range = 3.0 * rail / neuron.difference_gain
    x_step = 2 * x_range / (bench.activation_points - 1)
    act_analyses = [Analysis("activation", f"dc vx {_v(-x_range)} {_v(x_range + x_step / 2)} {_v(x_step)}",
                             ("v(ao)",))]

    # Open loop in AC, closed at DC through a huge inductor; its op point gives the supply current.
    loop = head + ["vac ain 0 dc 0 ac 1", "cac ain ln 1", "lac lo ln 1e6",
                   f"rll lo 0 {_v(r_nom)}", f"cll lo 0 {_v(bench.load_capacitance_f)}",
                   "xq 0 ln lo vdd vss opamp", ".nodeset v(lo)=0"]
    loop_analyses = [Analysis("op", "op", ("all",)), Analysis("loop", "ac dec 20 1 100g", ("v(lo)",))]
    return [("\n".join(gain) + "\n", gain_analyses), ("\n".join(common) + "\n", common_analyses),
            ("\n".join(act) + "\n", act_analyses), ("\n".join(loop) + "\n", loop_analyses)]


def _sweep(table: dict[str, np.ndarray]) -> np.ndarray:
    for key in ("v(v-sweep)", "v-sweep", "i(i-sweep)", "i-sweep"):
        if key in table:
            return np.real(table[key])
    raise KeyError(f"no sweep vector among {sorted(table)}")


def fit_gain_offset(v_inn: np.ndarray, out: np.ndarray, fit_range_v: float) -> tuple[float, float, float]:
    """Open-loop gain ``A``, offset and fit residual (RMS, V) of ``out = A (offset - v_inn)``."""
    sel = np.abs(out) <= fit_range_v
    if sel.sum() < 5:
        raise ValueError(f"only {int(sel.sum())} sweep points have |out| <= {fit_range_v} V; widen fit_range_v")
    slope, intercept = np.polyfit(v_inn[sel], out[sel], 1)
    gain = -slope
    if gain <= 1:
        raise ValueError(f"extracted open-loop gain {gain:.3g} <= 1: the op-amp does not amplify")
    residual = out[sel] - (slope * v_inn[sel] + intercept)
    return float(gain), float(intercept / gain), float(np.sqrt(np.mean(residual ** 2)))


def activation_model(x: np.ndarray, difference_gain: float, open_loop_gain: float,
                     saturation_v: Optional[float]) -> np.ndarray:
    """The behavioural difference stage and clamp, exactly as ``circuit.py`` states it."""
    d = difference_gain / (1.0 + (1.0 + difference_gain) / open_loop_gain) * np.asarray(x)
    return d if saturation_v is None else np.clip(d, -saturation_v, saturation_v)


def _unity_gain(freq: np.ndarray, h: np.ndarray) -> tuple[float, float, float]:
    """DC gain, unity-gain frequency and phase margin of an open-loop response ``A(f)``."""
    mag = np.abs(h)
    phase = np.unwrap(np.angle(h))
    phase = phase - 2 * np.pi * np.round(phase[0] / (2 * np.pi))
    below = np.nonzero(mag < 1.0)[0]
    if below.size == 0 or below[0] == 0:
        return float(mag[0]), math.nan, math.nan
    k = below[0]
    # interpolate in log-frequency between the points around |A| = 1
    t = (0.0 - np.log(mag[k - 1])) / (np.log(mag[k]) - np.log(mag[k - 1]))
    f_u = float(np.exp(np.log(freq[k - 1]) + t * (np.log(freq[k]) - np.log(freq[k - 1]))))
    ph = float(phase[k - 1] + t * (phase[k] - phase[k - 1]))
    return float(mag[0]), f_u, 180.0 + math.degrees(ph)


def _sig(value: float, digits: int = 6) -> float:
    return float(f"{value:.{digits}g}") if math.isfinite(value) else value


@dataclass(frozen=True)
class NeuronCharacteristics:
    """What the behavioural model needs from the transistor neuron at one corner and temperature.

    ``load_conductance_s`` lists the effective loads the gain benches put on the op-amp output
    (load resistor plus the feedback resistor to the virtual ground); ``gain_at_load`` and the
    swings are measured there, so a layer's parameters can be read at the load its stages see.
    The scalar fields are at the nominal load. ``activation_*`` is the difference stage's sampled
    transfer curve (differential input ``x = t_minus - t_plus``, output ``d``).
    """

    corner: str
    temp_c: float
    open_loop_gain: float
    offset_v: float
    saturation_v: float
    swing_positive_v: float
    swing_negative_v: float
    load_conductance_s: tuple[float, ...]
    gain_at_load: tuple[float, ...]
    offset_at_load_v: tuple[float, ...]
    swing_positive_at_load_v: tuple[float, ...]
    swing_negative_at_load_v: tuple[float, ...]
    activation_x_v: tuple[float, ...] = ()
    activation_out_v: tuple[float, ...] = ()
    details: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        n = len(self.load_conductance_s)
        for name in ("gain_at_load", "offset_at_load_v", "swing_positive_at_load_v", "swing_negative_at_load_v"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} needs one value per load ({n}); got {len(getattr(self, name))}")
        if n == 0 or list(self.load_conductance_s) != sorted(self.load_conductance_s):
            raise ValueError("load_conductance_s must be a non-empty increasing sequence")
        if self.open_loop_gain <= 1 or self.saturation_v <= 0:
            raise ValueError(f"open_loop_gain={self.open_loop_gain} must be > 1 and saturation_v={self.saturation_v} > 0")

    def _interp(self, g_load_s: float, values: Sequence[float]) -> float:
        # Between measured loads: linear in the load conductance (outside: the nearest load).
        return float(np.interp(g_load_s, self.load_conductance_s, values))

    def open_loop_gain_at(self, g_load_s: float) -> float:
        """Open-loop gain with an output load of ``g_load_s`` siemens (1/A is linear in the load)."""
        inverse = self._interp(g_load_s, [1.0 / a for a in self.gain_at_load])
        return 1.0 / inverse

    def offset_at(self, g_load_s: float) -> float:
        """Input offset (V) with an output load of ``g_load_s``."""
        return self._interp(g_load_s, self.offset_at_load_v)

    def swings_at(self, g_load_s: float) -> tuple[float, float]:
        """Positive and negative output swing magnitudes (V) with an output load of ``g_load_s``."""
        return (self._interp(g_load_s, self.swing_positive_at_load_v),
                self._interp(g_load_s, self.swing_negative_at_load_v))

    def saturation_at(self, g_load_s: float) -> float:
        """Symmetric clamp level for the behavioural model: the mean of the two swings."""
        pos, neg = self.swings_at(g_load_s)
        return 0.5 * (pos + neg)

    def to_dict(self) -> dict:
        """JSON-ready dictionary (6 significant digits)."""
        out: dict[str, Any] = {"corner": self.corner, "temp_c": self.temp_c}
        for name in ("open_loop_gain", "offset_v", "saturation_v", "swing_positive_v", "swing_negative_v"):
            out[name] = _sig(getattr(self, name))
        out["loads"] = [
            {"load_conductance_s": _sig(g), "open_loop_gain": _sig(a), "offset_v": _sig(o),
             "swing_positive_v": _sig(p), "swing_negative_v": _sig(n)}
            for g, a, o, p, n in zip(self.load_conductance_s, self.gain_at_load, self.offset_at_load_v,
                                     self.swing_positive_at_load_v, self.swing_negative_at_load_v)]
        out["activation"] = {"x_v": [_sig(v) for v in self.activation_x_v],
                             "out_v": [_sig(v) for v in self.activation_out_v]}
        out["details"] = _round_tree(self.details)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "NeuronCharacteristics":
        """Inverse of ``to_dict``."""
        loads = data["loads"]
        return cls(
            corner=pdk.check_corner(data["corner"]), temp_c=float(data["temp_c"]),
            open_loop_gain=float(data["open_loop_gain"]), offset_v=float(data["offset_v"]),
            saturation_v=float(data["saturation_v"]), swing_positive_v=float(data["swing_positive_v"]),
            swing_negative_v=float(data["swing_negative_v"]),
            load_conductance_s=tuple(float(r["load_conductance_s"]) for r in loads),
            gain_at_load=tuple(float(r["open_loop_gain"]) for r in loads),
            offset_at_load_v=tuple(float(r["offset_v"]) for r in loads),
            swing_positive_at_load_v=tuple(float(r["swing_positive_v"]) for r in loads),
            swing_negative_at_load_v=tuple(float(r["swing_negative_v"]) for r in loads),
            activation_x_v=tuple(float(v) for v in data.get("activation", {}).get("x_v", ())),
            activation_out_v=tuple(float(v) for v in data.get("activation", {}).get("out_v", ())),
            details=dict(data.get("details", {})),
        )


def _round_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _round_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_round_tree(v) for v in value]
    if isinstance(value, float):
        return _sig(value)
    return value


def bench_load_conductance(bench: BenchConfig) -> np.ndarray:
    """Effective output load of each gain bench: its load resistor plus the feedback resistor.

    The feedback resistor ends at the inverting input, a virtual ground, so to the output it is
    one more resistor to ground.
    """
    return np.array([1.0 / r + 1.0 / bench.gain_resistance_ohm for r in bench.load_resistances_ohm])


def extract_point(results: dict[str, dict[str, np.ndarray]], neuron: NeuronDesign, corner: str, temp_c: float,
                  bench: BenchConfig = BenchConfig()) -> NeuronCharacteristics:
    """Behavioural parameters of one (corner, temperature) from the benches' raw results."""
    up, down = results["gain_up"], results["gain_down"]
    g_loads = bench_load_conductance(bench)
    rows = []
    for k in range(len(bench.load_resistances_ohm)):
        v_inn = np.concatenate([np.real(down[f"v(gn{k})"])[::-1], np.real(up[f"v(gn{k})"])[1:]])
        out = np.concatenate([np.real(down[f"v(go{k})"])[::-1], np.real(up[f"v(go{k})"])[1:]])
        a, vos, rms = fit_gain_offset(v_inn, out, bench.fit_range_v)
        rows.append((g_loads[k], a, vos, float(out.max()), float(-out.min()), rms))
    rows.sort(key=lambda row: row[0])
    g_sorted = tuple(float(r[0]) for r in rows)
    proto = NeuronCharacteristics(
        corner=corner, temp_c=float(temp_c), open_loop_gain=rows[0][1], offset_v=rows[0][2], saturation_v=1.0,
        swing_positive_v=rows[0][3], swing_negative_v=rows[0][4], load_conductance_s=g_sorted,
        gain_at_load=tuple(r[1] for r in rows), offset_at_load_v=tuple(r[2] for r in rows),
        swing_positive_at_load_v=tuple(r[3] for r in rows), swing_negative_at_load_v=tuple(r[4] for r in rows))
    g_nominal = 1.0 / bench.nominal_load_ohm + 1.0 / bench.gain_resistance_ohm
    gain = proto.open_loop_gain_at(g_nominal)
    offset = proto.offset_at(g_nominal)
    pos, neg = proto.swings_at(g_nominal)

    cm = results["common_mode"]
    vcm = _sweep(cm)
    fo = np.real(cm["v(fo)"])
    # follower: out = A (vcm + offset - out)  =>  offset = out (1 + 1/A) - vcm
    cm_offset = fo * (1.0 + 1.0 / gain) - vcm
    inside = np.abs(vcm) <= 0.2 + 1e-9

    act = results["activation"]
    x = _sweep(act)
    d = np.real(act["v(ao)"])
    r = neuron.difference_gain
    # The behavioural model reads its parameters at the load the difference stage sees here.
    g_act = 1.0 / bench.nominal_load_ohm + 1.0 / (r * neuron.r_difference_in_ohm)
    a_act, sat_act = proto.open_loop_gain_at(g_act), proto.saturation_at(g_act)
    model = activation_model(x, r, a_act, sat_act)
    err = d - model
    linear = np.abs(model) < 0.9 * sat_act
    near = np.abs(d) <= 0.25 * min(d.max(), -d.min())
    small_signal = float(np.polyfit(x[near], d[near], 1)[0]) if near.sum() >= 3 else math.nan

    loop = results["loop"]
    freq = np.real(loop["frequency"])
    a_dc, f_u, pm = _unity_gain(freq, -loop["v(lo)"])
    op = results["op"]
    supply_current = float(-np.real(op["i(vdd)"])[0]) if "i(vdd)" in op else math.nan

    details = {
        "fit_rms_v": [r[5] for r in rows],
        "common_mode": {"vcm_v": _decimate(vcm, 31), "offset_v": _decimate(cm_offset, 31),
                        "max_offset_shift_within_0p2v_v": float(np.max(np.abs(cm_offset[inside] - offset)))},
        "activation": {
            "load_conductance_s": g_act, "open_loop_gain": a_act, "saturation_v": sat_act,
            "swing_positive_v": float(d.max()), "swing_negative_v": float(-d.min()),
            "small_signal_gain": small_signal, "model_gain": r / (1 + (1 + r) / a_act),
            "output_offset_v": float(np.interp(0.0, x, d)),
            "model_max_error_v": float(np.max(np.abs(err))),
            "model_rms_error_v": float(np.sqrt(np.mean(err ** 2))),
            "model_max_error_linear_v": float(np.max(np.abs(err[linear]))) if linear.any() else math.nan,
        },
        "loop": {"dc_gain": a_dc, "unity_gain_hz": f_u, "phase_margin_deg": pm,
                 "load_ohm": bench.nominal_load_ohm, "load_capacitance_f": bench.load_capacitance_f},
        "supply_current_a": supply_current,
        "power_w": supply_current * neuron.opamp.supply_v,
        "internal_nodes_v": {name: float(np.real(op[f"v(xq.{name})"])[0]) for name in ("vb", "tail", "x1", "x2")
                             if f"v(xq.{name})" in op},
    }
    return NeuronCharacteristics(
        corner=corner, temp_c=float(temp_c), open_loop_gain=gain, offset_v=offset, saturation_v=0.5 * (pos + neg),
        swing_positive_v=pos, swing_negative_v=neg, load_conductance_s=g_sorted,
        gain_at_load=proto.gain_at_load, offset_at_load_v=proto.offset_at_load_v,
        swing_positive_at_load_v=proto.swing_positive_at_load_v,
        swing_negative_at_load_v=proto.swing_negative_at_load_v,
        activation_x_v=tuple(float(v) for v in x), activation_out_v=tuple(float(v) for v in d), details=details)


def _decimate(values: np.ndarray, n: int) -> list[float]:
    idx = np.unique(np.linspace(0, len(values) - 1, n).round().astype(int))
    return [float(v) for v in np.asarray(values)[idx]]


def characterize_point(neuron: NeuronDesign = NeuronDesign(), corner: str = "NOM", temp_c: float = 25.0,
                       bench: BenchConfig = BenchConfig()) -> NeuronCharacteristics:
    """Run the benches in ngspice at one corner and temperature and extract the parameters."""
    results: dict[str, dict[str, np.ndarray]] = {}
    for body, analyses in bench_netlists(neuron, corner, temp_c, bench):
        results.update(run_analyses(body, analyses, options=SPICE_OPTIONS, timeout_s=300))
    return extract_point(results, neuron, pdk.check_corner(corner), temp_c, bench)


@dataclass(frozen=True)
class Characterization:
    """A characterized neuron design: its sizes, the benches, and one point per (corner, temperature).

    ``activation_v`` is the design's activation rail: the symmetric clamp level at the nominal
    corner and temperature (``NOM``, the lowest characterized temperature) and nominal load. A
    mapping uses it to scale the hidden layers; the other corners keep those resistors and
    clamp at their own swing.
    """

    design: NeuronDesign
    bench: BenchConfig
    points: tuple[NeuronCharacteristics, ...]
    activation_v: float
    provenance: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "points", tuple(self.points))
        if not self.points:
            raise ValueError("a characterization needs at least one (corner, temperature) point")
        keys = [(p.corner, p.temp_c) for p in self.points]
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate (corner, temperature) points: {keys}")
        check_positive("activation_v", self.activation_v, "volts")

    @property
    def corners(self) -> tuple[str, ...]:
        """Characterized corners, in the order of ``pdk.CORNERS``."""
        present = {p.corner for p in self.points}
        return tuple(c for c in pdk.CORNERS if c in present)

    def temperatures(self, corner: str) -> tuple[float, ...]:
        """Characterized temperatures (degC) of one corner, ascending."""
        corner = pdk.check_corner(corner)
        return tuple(sorted(p.temp_c for p in self.points if p.corner == corner))

    def point(self, corner: str = "NOM", temp_c: float = 25.0) -> NeuronCharacteristics:
        """The point at a corner and temperature; between characterized temperatures, linear interpolation."""
        corner = pdk.check_corner(corner)
        if corner not in self.corners:
            raise ValueError(f"corner {corner!r} was not characterized; this file has {list(self.corners)}")
        temps = self.temperatures(corner)
        by_temp = {p.temp_c: p for p in self.points if p.corner == corner}
        t = float(temp_c)
        if t in by_temp:
            return by_temp[t]
        if not temps[0] <= t <= temps[-1]:
            raise ValueError(f"temp_c={temp_c!r} is outside the characterized range {temps[0]:g}..{temps[-1]:g} degC "
                             f"of corner {corner}; characterize it (neurodtco characterize --temp-c {temp_c:g})")
        hi = next(k for k, v in enumerate(temps) if v > t)
        return _interpolate(by_temp[temps[hi - 1]], by_temp[temps[hi]], t)

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return {"format": FORMAT, "provenance": self.provenance, "design": self.design.to_dict(),
                "bench": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.bench.__dict__.items()},
                "activation_v": _sig(self.activation_v), "points": [p.to_dict() for p in self.points]}

    def save(self, path: str | Path) -> Path:
        """Write the characterization as JSON; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(_dumps(self.to_dict()) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def from_dict(cls, data: dict) -> "Characterization":
        """Inverse of ``to_dict``; refuses other formats."""
        if data.get("format") != FORMAT:
            raise ValueError(f"not a neurodtco periphery characterization (format {data.get('format')!r}, "
                             f"expected {FORMAT!r})")
        bench = BenchConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data["bench"].items()})
        return cls(design=NeuronDesign.from_dict(data["design"]), bench=bench,
                   points=tuple(NeuronCharacteristics.from_dict(p) for p in data["points"]),
                   activation_v=float(data["activation_v"]), provenance=dict(data.get("provenance", {})))


def _dumps(data: dict) -> str:
    """Indented JSON with every list of numbers on one line (the sampled curves stay compact)."""
    text = json.dumps(data, indent=1)
    return re.sub(r"\[\s+([-+0-9.eE,\s]+?)\s+\]",
                  lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text)


def _interpolate(a: NeuronCharacteristics, b: NeuronCharacteristics, temp_c: float) -> NeuronCharacteristics:
    w = (temp_c - a.temp_c) / (b.temp_c - a.temp_c)

    def mix(x: Any, y: Any) -> Any:
        if isinstance(x, tuple):
            return tuple((1 - w) * np.asarray(x) + w * np.asarray(y))
        return (1 - w) * x + w * y

    nearest = a if w < 0.5 else b
    return NeuronCharacteristics(
        corner=a.corner, temp_c=float(temp_c),
        open_loop_gain=1.0 / mix(1.0 / a.open_loop_gain, 1.0 / b.open_loop_gain),
        offset_v=mix(a.offset_v, b.offset_v), saturation_v=mix(a.saturation_v, b.saturation_v),
        swing_positive_v=mix(a.swing_positive_v, b.swing_positive_v),
        swing_negative_v=mix(a.swing_negative_v, b.swing_negative_v),
        load_conductance_s=a.load_conductance_s,
        gain_at_load=tuple(1.0 / np.asarray(mix(tuple(1.0 / np.asarray(a.gain_at_load)),
                                                tuple(1.0 / np.asarray(b.gain_at_load))))),
        offset_at_load_v=mix(a.offset_at_load_v, b.offset_at_load_v),
        swing_positive_at_load_v=mix(a.swing_positive_at_load_v, b.swing_positive_at_load_v),
        swing_negative_at_load_v=mix(a.swing_negative_at_load_v, b.swing_negative_at_load_v),
        activation_x_v=nearest.activation_x_v, activation_out_v=nearest.activation_out_v,
        details={"interpolated_between_c": [a.temp_c, b.temp_c]})


def _provenance() -> dict:
    try:
        version = importlib.metadata.version(pdk.DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    try:
        banner = subprocess.run([ngspice_path(), "-v"], capture_output=True, text=True, timeout=30).stdout
        ngspice = next((line.strip("* ").strip() for line in banner.splitlines() if "ngspice-" in line), "ngspice")
    except (OSError, subprocess.SubprocessError):
        ngspice = "ngspice"
    return {"pdk": f"FreePDK45 BSIM4 cards from {pdk.DISTRIBUTION} {version}", "simulator": ngspice}


def characterize(corners: Sequence[str] = ("NOM",), temps_c: Sequence[float] = (25.0,),
                 design: NeuronDesign = NeuronDesign(), bench: BenchConfig = BenchConfig(),
                 progress: Any = None) -> Characterization:
    """Characterize the neuron at every (corner, temperature); ``progress(done, total)`` is optional."""
    corners = [pdk.check_corner(c) for c in corners]
    temps = [float(t) for t in temps_c]
    if not corners or not temps:
        raise ValueError("give at least one corner and one temperature")
    if len(set(corners)) != len(corners) or len(set(temps)) != len(temps):
        raise ValueError(f"corners {corners} and temperatures {temps} must not repeat")
    jobs = [(c, t) for c in corners for t in temps]
    points = []
    for k, (corner, temp) in enumerate(jobs):
        points.append(characterize_point(design, corner, temp, bench))
        if progress is not None:
            progress(k + 1, len(jobs))
    reference = next((p for p in points if p.corner == "NOM"), points[0])
    reference = min((p for p in points if p.corner == reference.corner), key=lambda p: abs(p.temp_c - 25.0))
    g_nominal = 1.0 / bench.nominal_load_ohm + 1.0 / (design.difference_gain * design.r_difference_in_ohm)
    activation_v = round(reference.saturation_at(g_nominal), 3)
    provenance = {**_provenance(), "reference_point": [reference.corner, reference.temp_c]}
    return Characterization(design=design, bench=bench, points=tuple(points), activation_v=activation_v,
                            provenance=provenance)
