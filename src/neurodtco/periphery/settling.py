"""Settling time of a layer, measured by an ngspice transient of its neurons with their real loads.

The bench of layer ``l`` holds, for every tile of the layer, each word line as a chain of wire
segments (``r_word_ohm``) with one cell per column, and each bit line as a chain of segments
(``r_bit_ohm``) ending on the neuron's input; every cell is its conductance in parallel with its
capacitance (between its word-line and bit-line nodes) and every wire node has one segment's
capacitance to ground (``ArrayParasitics``). The measured neurons are the FreePDK45 neuron of
``opamp.py`` (two transimpedance stages with the layer's ``R_f``, a difference stage with its
ratio), or a behavioural one; other columns end on an ideal virtual ground. Each neuron output
drives what it drives in the network: its row of the next layer's word lines (one chain per
column tile, every cell to a bit line held at ground), or the read-out's ``output_load_f`` for
the last layer and for a convolution (whose outputs go to the ideal sample-and-hold). A
convolution's bench is one of its reads: the output position whose patch drives hardest
(``layer_reads``); the network's latency counts that time once per position.

At ``t = 0`` the input rows step (ramp over ``rise_time_s``) from ``initial_v`` (default 0 V) to
the layer's input voltages; the bias row holds its voltage. The settling time of a neuron is
the time after which its output stays within ``tolerance_v`` (1 mV) of its final value; the
final value is the transient's last point, checked against a DC operating point of the same
netlist at the final inputs. The layer's settling time is its slowest neuron's. Each layer's
bench steps its inputs ideally, so summing the layers' times over-estimates a network in which
layer ``l`` starts moving while ``l-1`` still settles: an upper bound on the latency.
"""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union

import numpy as np

from .._validate import check_positive
from ..circuit import Circuit, Crossbar, Layer
from ..ops import Pool
from ..engines import simulate
from ..imperfections.system_energy import ArrayParasitics
from . import pdk
from .opamp import NeuronDesign, neuron_subckt, opamp_subckt, supply_lines
from .spice import Analysis, SpiceError, run_analyses

#: Tolerances that keep the transient's error (1e-4 of a 0.5 V swing: 50 uV) well inside the 1 mV band;
#: tighter ones (reltol 1e-5) moved the default network's settling times by under 0.2 ns and took 3x longer.
SETTLING_OPTIONS = "reltol=1e-4 vntol=1e-6 abstol=1e-12"
#: Largest time step: this fraction of the stop time (a 2 us run resolves the settling time to ~5 ns).
TIME_POINTS = 400


@dataclass(frozen=True)
class BehaviouralNeuron:
    """A behavioural neuron: transimpedance stages of gain ``open_loop_gain``, an ideal difference stage.

    ``output_resistance_ohm`` sits between the difference stage and the output node (0: an ideal
    source), so that the output and its load form a plain RC. No clamp.
    """

    open_loop_gain: float = 1e6
    output_resistance_ohm: float = 0.0

    def __post_init__(self) -> None:
        check_positive("open_loop_gain", self.open_loop_gain, "V/V, e.g. 1e6")
        if not (math.isfinite(self.output_resistance_ohm) and self.output_resistance_ohm >= 0):
            raise ValueError(f"output_resistance_ohm={self.output_resistance_ohm!r} is not accepted: expected ohms >= 0")


Amplifier = Union[NeuronDesign, BehaviouralNeuron]


@dataclass(frozen=True)
class Settling:
    """Measured settling of one layer's neurons: times (s), final and DC values (V), the waveforms."""

    neurons: tuple[int, ...]
    neuron_settling_s: tuple[float, ...]
    final_v: tuple[float, ...]
    dc_v: tuple[float, ...]
    stop_time_s: float
    elapsed_s: float
    time_s: np.ndarray = field(repr=False, compare=False)
    outputs_v: np.ndarray = field(repr=False, compare=False)

    @property
    def settling_s(self) -> float:
        """The layer's settling time: its slowest neuron's."""
        return max(self.neuron_settling_s)

    def to_dict(self) -> dict:
        """JSON-ready summary (no waveforms)."""
        return {"settling_s": self.settling_s, "neurons": list(self.neurons),
                "neuron_settling_s": list(self.neuron_settling_s), "final_v": list(self.final_v),
                "dc_v": list(self.dc_v), "stop_time_s": self.stop_time_s, "elapsed_s": self.elapsed_s}


def settling_time(time_s: np.ndarray, v: np.ndarray, final_v: float, tolerance_v: float) -> float:
    """Time after which ``v`` stays within ``tolerance_v`` of ``final_v`` (linear between samples; inf if never)."""
    err = np.abs(np.asarray(v, dtype=np.float64) - final_v)
    outside = np.flatnonzero(err > tolerance_v)
    if outside.size == 0:
        return float(time_s[0])
    k = int(outside[-1])
    if k == len(err) - 1:
        return math.inf
    frac = (err[k] - tolerance_v) / (err[k] - err[k + 1])
    return float(time_s[k] + frac * (time_s[k + 1] - time_s[k]))


def _v(value: float) -> str:
    return f"{value:.9g}"


def _behavioural_subckt(neuron: BehaviouralNeuron, r_f: float, r: float, name: str) -> str:
    a = _v(neuron.open_loop_gain)
    out = "d" if neuron.output_resistance_ohm > 0 else "out"
    lines = [f".subckt {name} cp cm out vdd vss",
             f"etp tp 0 0 cp {a}", f"rfp tp cp {_v(r_f)}", f"etm tm 0 0 cm {a}", f"rfm tm cm {_v(r_f)}",
             f"ed {out} 0 tm tp {_v(r)}"]
    if neuron.output_resistance_ohm > 0:
        lines.append(f"rout d out {_v(neuron.output_resistance_ohm)}")
    return "\n".join(lines + [f".ends {name}"])


def _word_line(lines: list[str], tag: str, driver: str, conductance: np.ndarray, cell_ends: Sequence[str],
               r_word: float, par: ArrayParasitics) -> None:
    """One word line from ``driver``: a segment, a cell (to ``cell_ends[j]``) and a wire capacitance per column."""
    node = driver
    for j, (g, end) in enumerate(zip(conductance, cell_ends)):
        if r_word > 0:
            lines.append(f"rw{tag}_{j} {node} w{tag}_{j} {_v(r_word)}")
            node = f"w{tag}_{j}"
            if par.segment_capacitance_f > 0:
                lines.append(f"cw{tag}_{j} {node} 0 {_v(par.segment_capacitance_f)}")
        if g > 0:
            lines.append(f"rc{tag}_{j} {node} {end} {_v(1.0 / g)}")
        if par.cell_capacitance_f > 0:
            lines.append(f"cc{tag}_{j} {node} {end} {_v(par.cell_capacitance_f)}")
    if r_word == 0 and par.segment_capacitance_f > 0:
        lines.append(f"cw{tag} {driver} 0 {_v(par.segment_capacitance_f * len(conductance))}")


def layer_bench(layer: Layer, inputs_v: Any, next_layer: Optional[Layer] = None,
                parasitics: ArrayParasitics = ArrayParasitics(), amplifier: Amplifier = NeuronDesign(),
                neurons: Optional[Sequence[int]] = None, initial_v: Any = None, rise_time_s: float = 1e-9,
                corner: str = "NOM", temp_c: float = 25.0) -> str:
    """Netlist body (no analysis) of one layer's settling bench; outputs on nodes ``a{k}``."""
    x = np.asarray(inputs_v, dtype=np.float64).reshape(-1)
    x0 = np.zeros_like(x) if initial_v is None else np.asarray(initial_v, dtype=np.float64).reshape(-1)
    if x.shape != (layer.n_inputs,) or x0.shape != x.shape or not np.all(np.isfinite(np.r_[x, x0])):
        raise ValueError(f"inputs_v and initial_v must be {layer.n_inputs} finite voltages (one per input row); "
                         f"got shapes {np.shape(inputs_v)} and {np.shape(initial_v)}")
    check_positive("rise_time_s", rise_time_s, "seconds of the input ramp, e.g. 1e-9")
    measured = list(range(layer.n_outputs)) if neurons is None else sorted({int(k) for k in neurons})
    if not measured or measured[0] < 0 or measured[-1] >= layer.n_outputs:
        raise ValueError(f"neurons={neurons!r} is not accepted: expected indices in 0..{layer.n_outputs - 1}")
    if layer.tiling is not None and layer.tiling.combine == "summing":
        raise ValueError("the settling bench joins row tiles on one neuron input (tile_combine 'shared'); "
                         "'summing' tiles are not modelled: map with --tile-combine shared")
    r_f, r = layer.neuron.feedback_resistance_ohm, layer.neuron.difference_gain
    lines: list[str] = []
    if isinstance(amplifier, NeuronDesign):
        sub = NeuronDesign(amplifier.opamp, r, amplifier.r_difference_in_ohm)
        lines += [pdk.lib_line(corner), f".temp {_v(temp_c)}", opamp_subckt(amplifier.opamp).rstrip(),
                  neuron_subckt(sub, r_f, "neuron").rstrip(), supply_lines(amplifier.opamp).rstrip()]
    else:
        lines += [_behavioural_subckt(amplifier, r_f, r, "neuron"), "vdd vdd 0 1", "vss vss 0 -1"]
    # Row drivers: input rows ramp from x0 to x, the bias row holds its voltage.
    for i in range(layer.n_inputs):
        lines.append(f"vr{i} in{i} 0 dc {_v(x[i])} pwl(0 {_v(x0[i])} {_v(rise_time_s)} {_v(x[i])})")
    bias = layer.n_rows - 1
    lines.append(f"vr{bias} in{bias} 0 dc {_v(layer.bias_voltage_v)}")
    g = layer.conductance
    for t, tile in enumerate(layer.tiles):
        rows = range(tile.rows.start, tile.rows.stop)
        cols = list(range(tile.columns.start, tile.columns.stop))
        for i in rows:
            ends = [f"b{t}_{i}_{j}" if layer.r_bit_ohm > 0 else f"n{j}" for j in cols]
            _word_line(lines, f"{t}_{i}", f"in{i}", g[i, cols], ends, layer.r_word_ohm, parasitics)
        if layer.r_bit_ohm > 0:
            for j in cols:
                chain = [f"b{t}_{i}_{j}" for i in rows] + [f"n{j}"]
                for a, b in zip(chain, chain[1:]):
                    lines.append(f"rb{a[1:]} {a} {b} {_v(layer.r_bit_ohm)}")
                    if parasitics.segment_capacitance_f > 0:
                        lines.append(f"cb{a[1:]} {a} 0 {_v(parasitics.segment_capacitance_f)}")
        elif parasitics.segment_capacitance_f > 0:
            for j in cols:
                lines.append(f"cb{t}_{j} n{j} 0 {_v(parasitics.segment_capacitance_f * len(rows))}")
    measured_columns = set()
    for k in measured:
        p, m = int(layer.plus_columns[k]), int(layer.minus_columns[k])
        measured_columns |= {p, m}
        lines.append(f"xn{k} n{p} n{m} a{k} vdd vss neuron")
    for j in range(layer.n_columns):
        if j not in measured_columns:
            lines.append(f"vg{j} n{j} 0 0")
    for k in measured:
        if next_layer is None:
            if parasitics.output_load_f > 0:
                lines.append(f"cl{k} a{k} 0 {_v(parasitics.output_load_f)}")
            continue
        for t, tile in enumerate(next_layer.tiles):
            if tile.rows.start <= k < tile.rows.stop:
                cols = range(tile.columns.start, tile.columns.stop)
                _word_line(lines, f"o{k}_{t}", f"a{k}", next_layer.conductance[k, cols], ["0"] * len(cols),
                           next_layer.r_word_ohm, parasitics)
    return "\n".join(lines) + "\n"


def measure_settling(body: str, neurons: Sequence[int], stop_time_s: float, tolerance_v: float = 1e-3,
                     dc_tolerance_v: Optional[float] = None, max_doublings: int = 5,
                     timeout_s: float = 600.0) -> Settling:
    """Run ``.op`` and ``.tran`` on a bench and extract every neuron's settling time.

    The stop time doubles until every output settles in its first half and its last value
    agrees with the DC operating point within ``dc_tolerance_v`` (default a tenth of the band).
    """
    check_positive("stop_time_s", stop_time_s, "seconds, e.g. 2e-6")
    check_positive("tolerance_v", tolerance_v, "volts, e.g. 1e-3")
    dc_tol = tolerance_v / 10 if dc_tolerance_v is None else dc_tolerance_v
    vectors = tuple(f"v(a{k})" for k in neurons)
    start = time.perf_counter()
    stop = float(stop_time_s)
    for _ in range(max_doublings + 1):
        step = stop / TIME_POINTS
        res = run_analyses(body, [Analysis("op", "op", vectors), Analysis("tran", f"tran {_v(step)} {_v(stop)} 0 {_v(step)}",
                                                                          ("time",) + vectors)],
                           options=SETTLING_OPTIONS, timeout_s=timeout_s)
        t = np.real(res["tran"]["time"])
        out = np.stack([np.real(res["tran"][v]) for v in vectors], axis=1)
        dc = np.array([float(np.real(res["op"][v][0])) for v in vectors])
        final = out[-1]
        times = [settling_time(t, out[:, n], final[n], tolerance_v) for n in range(len(vectors))]
        if max(times) <= stop / 2 and np.all(np.abs(final - dc) <= dc_tol):
            return Settling(neurons=tuple(int(k) for k in neurons), neuron_settling_s=tuple(times),
                            final_v=tuple(float(v) for v in final), dc_v=tuple(float(v) for v in dc), stop_time_s=stop,
                            elapsed_s=time.perf_counter() - start, time_s=t, outputs_v=out)
        stop *= 2
    raise SpiceError(f"the outputs did not settle within {tolerance_v * 1e3:g} mV of the DC solution in {stop / 2:g} s "
                     f"(final {final.tolist()} V, DC {dc.tolist()} V): the stage may oscillate; "
                     "give a longer stop_time_s or check the load")


def layer_reads(circuit: Circuit, inputs_v: Any) -> tuple[list[np.ndarray], list[Optional[int]]]:
    """Each layer's row voltages for one read of one image, and the layer its outputs drive (``None``: a hold or the read-out).

    A dense layer reads its input vector; a convolution is read once per output position, and its
    bench steps to the position whose patch drives the rows hardest (largest sum of squared
    voltages). Outputs wired straight into a dense layer drive its word lines; a convolution's
    outputs go to the ideal sample-and-hold (and pooling) between layers, which the bench loads
    with ``output_load_f`` like the read-out. Voltages come from the nodal solution.
    """
    stages = circuit.stage_list()
    if any(not isinstance(s, (Crossbar, Pool)) for s in stages):
        raise ValueError("settling benches take dense layers, convolutions and pooling; this circuit has residual "
                         "stages")
    x = circuit.check_inputs(inputs_v)
    if len(x) != 1:
        raise ValueError(f"give one input vector (the step's final value); got {len(x)}")
    res = simulate(circuit, x, engine="nodal", return_hidden=True)
    hidden = iter(res.hidden_v or [])
    rows: list[np.ndarray] = [np.empty(0)] * circuit.n_layers
    following: list[Optional[int]] = [None] * circuit.n_layers
    current = x
    for k, stage in enumerate(stages):
        if isinstance(stage, Pool):
            current = stage.geometry.apply(current)
            continue
        if stage.conv is None:
            rows[stage.layer] = current[0]
        else:
            patches = stage.conv.patches(current)
            rows[stage.layer] = patches[int(np.argmax(np.sum(patches ** 2, axis=1)))]
        after = stages[k + 1] if k + 1 < len(stages) else None
        if stage.conv is None and isinstance(after, Crossbar) and after.conv is None:
            following[stage.layer] = after.layer
        current = next(hidden, res.outputs_v)
    return rows, following


def circuit_settling(circuit: Circuit, inputs_v: Any, amplifier: Amplifier = NeuronDesign(),
                     parasitics: ArrayParasitics = ArrayParasitics(), *, corner: str = "NOM", temp_c: float = 25.0,
                     tolerance_v: float = 1e-3, stop_time_s: float = 2e-6, rise_time_s: float = 1e-9, jobs: int = 1,
                     progress: Any = None) -> list[Settling]:
    """Settling of every layer of ``circuit`` for one input vector (the step from 0 V to it).

    Layer ``l`` steps to its own inputs for that image (the behavioural solution of the layers
    before it; for a convolution, one read: ``layer_reads``), so the layers' benches are
    independent: ``jobs`` runs that many at once.
    """
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs={jobs!r} is not accepted: expected an integer >= 1 (ngspice processes at once)")
    per_layer, following = layer_reads(circuit, inputs_v)
    done = [0]
    lock = threading.Lock()

    def one(l: int) -> Settling:
        layer = circuit.layers[l]
        load = None if following[l] is None else circuit.layers[following[l]]
        body = layer_bench(layer, per_layer[l], load, parasitics, amplifier, rise_time_s=rise_time_s,
                           corner=corner, temp_c=temp_c)
        result = measure_settling(body, list(range(layer.n_outputs)), stop_time_s, tolerance_v)
        with lock:
            done[0] += 1
            if progress is not None:
                progress(done[0], circuit.n_layers)
        return result

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, range(circuit.n_layers)))


__all__ = ["Amplifier", "BehaviouralNeuron", "Settling", "circuit_settling", "layer_bench", "layer_reads",
           "measure_settling", "settling_time"]
