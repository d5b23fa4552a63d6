"""The whole network with transistor-level neurons, in ngspice, checked against the behavioural model.

The netlist starts from the behavioural one that ``neurodtco.netlist`` writes for the same
``Circuit`` (every array, wire segment and row driver), removes its behavioural neuron elements
(transimpedance VCVS/CCVS and ``R_f``, difference VCVS, clamp) and puts in their place one
transistor-level neuron subcircuit per neuron: two transimpedance op-amps with the layer's
``R_f``, a difference stage with the layer's resistor ratio, whose own output swing is the
activation. Node names are unchanged, so a neuron reads the column nodes ``n{l}_{j}`` and drives
the activation node ``a{l}_{k}`` that the next array's row drivers use.

Convergence (measured, ngspice 39): a DC sweep from one input vector to the next, or one
operating point of the whole network, makes ngspice fall back to gmin stepping (Newton alone does
not converge once saturated neurons drive the next array), which costs 13-19 gmin steps per
point. One operating point per layer and per input vector, started from ``.nodeset`` hints of
the behavioural solution for exactly those inputs, converges directly. So the default
``mode="layerwise"`` solves layer ``l`` with its inputs set to layer ``l-1``'s transistor-level
outputs, and loads every neuron output with the next array's row conductance to ground (its
cells end on bit lines held within microvolts of ground by the next layer's op-amps).
``mode="monolithic"`` solves the whole network in one operating point per input vector (exact
loading; slower, through gmin stepping) to check that approximation.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Sequence

import numpy as np

from .. import netlist as nl
from ..circuit import Circuit, Layer
from ..engines import simulate
from ..engines.base import SimulationResult
from . import pdk
from .characterize import Characterization
from .opamp import NeuronDesign, neuron_subckt, opamp_subckt, supply_lines
from .spice import Analysis, run_analyses

#: Tolerances for the BSIM4 networks: microvolt agreement is far below the model's own errors.
NETWORK_OPTIONS = "reltol=1e-6 vntol=1e-9 abstol=1e-14"

# Behavioural neuron elements of neurodtco.netlist, by name: TIA (vg/ht or et + rf, one per row tile
# when tiles sum), the summing stage (bs), difference stage (ed), activation (ba clamp, or ea unity
# buffer); the number after the prefix is the layer.
_NEURON_ELEMENT = re.compile(r"^(vg|ht|et|rf|ed|ea|ba|bs)(\d+)_\d+(?:_\d+)?$")

Mode = Literal["layerwise", "monolithic"]


def neuron_instance(layer: int, neuron: int) -> str:
    """Instance name of a transistor-level neuron."""
    return f"xn{layer}_{neuron}"


def summed_row_tiles(layer: Layer) -> int:
    """Transimpedance stages per column: one per row tile when tiles sum (``combine="summing"``), else one."""
    if layer.tiling is None or layer.tiling.combine != "summing":
        return 1
    return layer.tiling.grid_shape[0]


def _tags(layer: Layer) -> list[str]:
    """Suffixes of a neuron's TIA nodes and stages (``tp``, or ``tp0``, ``tp1``, ... when tiles sum)."""
    k = summed_row_tiles(layer)
    return [""] if k == 1 else [str(r) for r in range(k)]


def n_opamps(circuit: Circuit, layers: Optional[Sequence[int]] = None) -> int:
    """Op-amps of the transistor-level neurons: a TIA per column input and a difference stage per neuron."""
    layers = range(circuit.n_layers) if layers is None else layers
    return sum((2 * summed_row_tiles(circuit.layers[l]) + 1) * circuit.layers[l].n_outputs for l in layers)


def hint_circuit(circuit: Circuit) -> Circuit:
    """The circuit whose behavioural node voltages start the transistor-level solves: tiles joined again.

    Node voltages are reported for untiled layers only; the same cells in one array differ from
    the tiles only by the wires at the tile edges and the summing stage, close enough for hints.
    """
    return circuit.map_layers(lambda index, layer: layer if layer.tiling is None else layer.replace(tiling=None))


def _behavioural_elements(text: str, layers: Sequence[int]) -> list[str]:
    """Element lines of a behavioural netlist, without the neurons of ``layers`` nor its analysis."""
    lines = text.splitlines()
    cut = next(k for k, line in enumerate(lines) if line.startswith(".options"))
    body, removed = [], 0
    skipping = False
    for line in lines[:cut]:
        if line.startswith("+"):
            if not skipping:
                body.append(line)
            continue
        token = line.split(maxsplit=1)[0] if line.strip() else ""
        match = _NEURON_ELEMENT.match(token)
        skipping = bool(match) and int(match.group(2)) in layers
        if skipping:
            removed += 1
            continue
        body.append(line)
    if layers and removed == 0:
        raise RuntimeError("no behavioural neuron elements found in the netlist: neurodtco.netlist changed its names")
    return body


def transistor_netlist(circuit: Circuit, inputs_v: np.ndarray, design: NeuronDesign = NeuronDesign(),
                       corner: str = "NOM", temp_c: float = 25.0, *, nodeset: Optional[dict[str, float]] = None,
                       layers: Optional[Sequence[int]] = None,
                       output_loads_s: Optional[Sequence[float]] = None) -> str:
    """Netlist body (no analysis) of ``circuit`` with transistor-level neurons, for one input vector.

    ``layers``: the layers whose neurons are transistor-level (default: all; the others stay
    behavioural). ``output_loads_s``: conductances to ground on the last layer's outputs (what the
    next array would draw).
    """
    x = circuit.check_inputs(inputs_v)
    if len(x) != 1:
        raise ValueError(f"transistor_netlist takes one input vector (an operating point); got {len(x)}")
    layers = list(range(circuit.n_layers)) if layers is None else sorted({int(l) for l in layers})
    for l in layers:
        circuit.check_layer_index(l)
    text = nl.write_spice(circuit, x, title="neurodtco network with transistor-level neurons")
    body = _behavioural_elements(text, layers)
    opamps = n_opamps(circuit, layers)
    out = [body[0], f"* FreePDK45 {pdk.check_corner(corner)} at {temp_c:g} degC: {opamps} op-amps of "
           f"{design.opamp.n_transistors} transistors", pdk.lib_line(corner), f".temp {temp_c:.9g}",
           opamp_subckt(design.opamp).rstrip(), supply_lines(design.opamp).rstrip()]
    for l in layers:
        neuron = circuit.layers[l].neuron
        sub = NeuronDesign(design.opamp, neuron.difference_gain, design.r_difference_in_ohm)
        out.append(neuron_subckt(sub, neuron.feedback_resistance_ohm, f"neuron{l}",
                                 row_tiles=summed_row_tiles(circuit.layers[l])).rstrip())
    out += body[1:]
    for l in layers:
        layer = circuit.layers[l]
        row_tiles = [None] if summed_row_tiles(layer) == 1 else list(range(summed_row_tiles(layer)))
        for k in range(layer.n_outputs):
            plus, minus = int(layer.plus_columns[k]), int(layer.minus_columns[k])
            inputs = [nl.neuron_in_node(l, c, r) for c in (plus, minus) for r in row_tiles]
            out.append(f"{neuron_instance(l, k)} {' '.join(inputs)} {nl.activation_node(l, k)} vdd vss neuron{l}")
    if output_loads_s is not None:
        last = circuit.n_layers - 1
        if len(output_loads_s) != circuit.layers[last].n_outputs:
            raise ValueError(f"output_loads_s needs one conductance per output ({circuit.layers[last].n_outputs})")
        for k, g in enumerate(output_loads_s):
            if g > 0:
                out.append(f"rload{k} {nl.activation_node(last, k)} 0 {1.0 / g:.12g}")
    if nodeset:
        keep = {neuron_instance(l, k) for l in layers for k in range(circuit.layers[l].n_outputs)}
        # hints inside behavioural neurons would name nodes that do not exist
        items = [f"v({name})={value:.6g}" for name, value in nodeset.items()
                 if "." not in name or name.split(".")[0] in keep]
        out += [".nodeset " + " ".join(items[k:k + 8]) for k in range(0, len(items), 8)]
    return "\n".join(out) + "\n"


def nodeset_hints(circuit: Circuit, behavioural: SimulationResult, characterization: Optional[Characterization],
                  corner: str, temp_c: float, index: int = 0) -> dict[str, float]:
    """Initial guesses for input vector ``index``: behavioural node voltages and the op-amps' bias nodes.

    ``behavioural`` is of ``hint_circuit(circuit)`` (node voltages of untiled layers); when tiles
    sum, every row tile's TIA is guessed at an equal share of the column's total.
    """
    internal: dict[str, float] = {}
    if characterization is not None:
        nearest = min(characterization.temperatures(corner), key=lambda t: abs(t - temp_c))
        internal = dict(characterization.point(corner, nearest).details.get("internal_nodes_v", {}))
    nodes = behavioural.nodes
    if nodes is None:
        raise ValueError("the behavioural result needs node voltages (return_nodes=True)")
    outputs = list(behavioural.hidden_v or []) + [behavioural.outputs_v]
    if len(outputs) != circuit.n_layers:
        raise ValueError("the behavioural result needs hidden outputs (return_hidden=True)")
    hints: dict[str, float] = {}
    for l, layer in enumerate(circuit.layers):
        lay = nodes[l]
        tags = _tags(layer)
        row_tiles = [None] if tags == [""] else list(range(len(tags)))
        for j in range(layer.n_columns):
            for r in row_tiles:
                hints[nl.neuron_in_node(l, j, r)] = float(lay["neuron_in"][index, j])
        r = layer.neuron.difference_gain
        sat = layer.neuron.saturation_v
        for k in range(layer.n_outputs):
            inst = neuron_instance(l, k)
            plus, minus = int(layer.plus_columns[k]), int(layer.minus_columns[k])
            tp, tm = float(lay["tia_out"][index, plus]), float(lay["tia_out"][index, minus])
            d = float(lay["difference_out"][index, k])
            act = float(outputs[l][index, k])
            for t in tags:
                hints[f"{inst}.tp{t}"], hints[f"{inst}.tm{t}"] = tp / len(tags), tm / len(tags)
            # Kirchhoff at the difference stage's inputs, each TIA output through R1, R2 = r R1
            hints[f"{inst}.dp"] = tm * r / (1 + len(tags) * r)
            hints[f"{inst}.dn"] = (r * tp + act) / (1 + len(tags) * r)
            hints[nl.activation_node(l, k)] = act
            linear = sat is None or abs(d) < 0.95 * sat
            for stage in [f"xtp{t}" for t in tags] + [f"xtm{t}" for t in tags] + ["xd"]:
                for name, value in internal.items():
                    # a saturated stage's first-stage output sits near a rail: no hint beats a wrong one
                    if name == "x2" and stage == "xd" and not linear:
                        continue
                    hints[f"{inst}.{stage}.{name}"] = value
    return hints


@dataclass
class TransistorRun:
    """Outputs of the network with transistor-level neurons, and what the runs cost."""

    outputs_v: np.ndarray
    hidden_v: list[np.ndarray]
    tia_out_v: list[np.ndarray]
    elapsed_s: float
    n_transistors: int
    info: dict = field(default_factory=dict)

    def predictions(self) -> np.ndarray:
        """Class chosen for each input: the neuron with the highest output voltage."""
        return np.argmax(self.outputs_v, axis=1)


def _layer_circuit(circuit: Circuit, index: int) -> Circuit:
    layer = circuit.layers[index]
    return Circuit(layers=(layer,), cell=circuit.cell, input_scale_v=layer.input_scale_v,
                   output_scale_v=circuit.output_scale_v)


def next_row_loads_s(circuit: Circuit, index: int) -> Optional[np.ndarray]:
    """Conductance each output of layer ``index`` drives: the next array's input rows (None for the last)."""
    if index == circuit.n_layers - 1:
        return None
    return circuit.layers[index + 1].conductance[:-1].sum(axis=1)


def _solve_op(circuit: Circuit, x: np.ndarray, design: NeuronDesign, corner: str, temp_c: float,
              characterization: Optional[Characterization], behavioural: SimulationResult, index: int,
              loads: Optional[np.ndarray], timeout_s: float) -> tuple[list[np.ndarray], list[np.ndarray], bool]:
    hints = nodeset_hints(circuit, behavioural, characterization, corner, temp_c, index)
    body = transistor_netlist(circuit, x[index:index + 1], design, corner, temp_c, nodeset=hints, output_loads_s=loads)
    vectors = [f"v({nl.activation_node(l, k)})" for l, layer in enumerate(circuit.layers) for k in range(layer.n_outputs)]
    vectors += [f"v({neuron_instance(l, k)}.{side}{t})" for l, layer in enumerate(circuit.layers)
                for k in range(layer.n_outputs) for side in ("tp", "tm") for t in _tags(layer)]
    log: list[str] = []
    op = run_analyses(body, [Analysis("op", "op", tuple(vectors))], options=NETWORK_OPTIONS,
                      timeout_s=timeout_s, log=log)["op"]
    acts, tias = [], []
    for l, layer in enumerate(circuit.layers):
        acts.append(np.array([op[f"v({nl.activation_node(l, k)})"][0] for k in range(layer.n_outputs)]))
        t = np.zeros(layer.n_columns)
        for k in range(layer.n_outputs):  # a column's TIA output: the sum over its row tiles' when they sum
            for side, column in (("tp", layer.plus_columns[k]), ("tm", layer.minus_columns[k])):
                t[int(column)] = sum(op[f"v({neuron_instance(l, k)}.{side}{tag})"][0] for tag in _tags(layer))
        tias.append(t)
    return acts, tias, "gmin stepping" in log[0]


def simulate_transistor_network(circuit: Circuit, inputs_v: Any, design: NeuronDesign = NeuronDesign(),
                                corner: str = "NOM", temp_c: float = 25.0, *,
                                characterization: Optional[Characterization] = None, mode: Mode = "layerwise",
                                jobs: int = 1, timeout_s: float = 600.0, progress: Any = None) -> TransistorRun:
    """Every input vector through the network with transistor-level neurons (ngspice, FreePDK45).

    ``circuit`` should carry the characterized behavioural neurons (``apply_characterization``):
    they only provide the starting point of each solve, not its result.
    """
    if mode not in ("layerwise", "monolithic"):
        raise ValueError(f"mode={mode!r} is not accepted: choose 'layerwise' or 'monolithic'")
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs={jobs!r} is not accepted: expected an integer >= 1 (ngspice processes at once)")
    x = circuit.check_inputs(inputs_v)
    n = len(x)
    engine = "nodal"
    start = time.perf_counter()
    fallbacks = 0
    done = 0
    pool = ThreadPoolExecutor(max_workers=jobs) if jobs > 1 else None

    def run_all(fn: Any) -> list:
        return list(pool.map(fn, range(n))) if pool is not None else [fn(i) for i in range(n)]

    try:
        if mode == "monolithic":
            beh = simulate(hint_circuit(circuit), x, engine=engine, return_nodes=True, return_hidden=True)

            def one(i: int) -> tuple:
                return _solve_op(circuit, x, design, corner, temp_c, characterization, beh, i, None, timeout_s)

            solved = run_all(one)
            acts = [np.stack([s[0][l] for s in solved]) for l in range(circuit.n_layers)]
            tias = [np.stack([s[1][l] for s in solved]) for l in range(circuit.n_layers)]
            fallbacks = sum(s[2] for s in solved)
        else:
            acts, tias = [], []
            inputs = x
            for l in range(circuit.n_layers):
                sub = _layer_circuit(circuit, l)
                beh = simulate(hint_circuit(sub), inputs, engine=engine, return_nodes=True, return_hidden=True)
                loads = next_row_loads_s(circuit, l)

                def one(i: int, sub: Circuit = sub, inputs: np.ndarray = inputs, beh: Any = beh,
                        loads: Any = loads) -> tuple:
                    return _solve_op(sub, inputs, design, corner, temp_c, characterization, beh, i, loads, timeout_s)

                solved = run_all(one)
                acts.append(np.stack([s[0][0] for s in solved]))
                tias.append(np.stack([s[1][0] for s in solved]))
                fallbacks += sum(s[2] for s in solved)
                inputs = acts[-1]
                done += 1
                if progress is not None:
                    progress(done, circuit.n_layers)
    finally:
        if pool is not None:
            pool.shutdown()
    elapsed = time.perf_counter() - start
    n_transistors = design.opamp.n_transistors * n_opamps(circuit)
    return TransistorRun(outputs_v=acts[-1], hidden_v=acts[:-1], tia_out_v=tias, elapsed_s=elapsed,
                         n_transistors=n_transistors,
                         info={"mode": mode, "corner": pdk.check_corner(corner), "temp_c": float(temp_c),
                               "gmin_fallbacks": int(fallbacks), "per_image_s": elapsed / n, "jobs": jobs})


@dataclass
class Agreement:
    """Transistor-level network against the behavioural model with the extracted parameters.

    ``local_max_v[l]``: layer ``l``'s largest output difference when both models get the same
    inputs (layer ``l-1``'s transistor-level outputs): the behavioural neuron's own error.
    ``end_to_end_max_v[l]``: the difference when each model runs the whole network on its own,
    which adds the earlier layers' errors as the weights propagate them.
    """

    n_images: int
    same_class: np.ndarray
    outputs_max_v: float
    outputs_rms_v: float
    local_max_v: list[float]
    end_to_end_max_v: list[float]
    tolerance_v: float
    transistor: TransistorRun
    behavioural_outputs_v: np.ndarray
    labels_accuracy: Optional[dict] = None

    @property
    def all_same_class(self) -> bool:
        """True when both predict the same class for every image."""
        return bool(np.all(self.same_class))

    @property
    def within_tolerance(self) -> bool:
        """True when every output agrees within ``tolerance_v``."""
        return self.outputs_max_v <= self.tolerance_v

    def summary(self) -> dict:
        """Numbers for a report or a JSON line."""
        return {"n_images": self.n_images, "same_class": int(self.same_class.sum()), "all_same_class": self.all_same_class,
                "outputs_max_v": self.outputs_max_v, "outputs_rms_v": self.outputs_rms_v,
                "local_max_v": self.local_max_v, "end_to_end_max_v": self.end_to_end_max_v,
                "tolerance_v": self.tolerance_v, "within_tolerance": self.within_tolerance,
                "mode": self.transistor.info["mode"], "gmin_fallbacks": self.transistor.info["gmin_fallbacks"],
                "transistor_s": self.transistor.elapsed_s, "per_image_s": self.transistor.info["per_image_s"],
                "n_transistors": self.transistor.n_transistors, **(self.labels_accuracy or {})}


def output_tolerance_v(circuit: Circuit) -> float:
    """Stated tolerance on the output voltages: one unit of the software logits (``output_scale_v``).

    Why this size: the behavioural clamp is the mean of the measured positive and negative swings,
    so a saturated hidden neuron sits about half their difference (~12 mV at the rows' loads)
    from it, and the soft knee adds up to ~10 mV for neurons near the rail: a ~2.5 % error of the
    rail per hidden layer. Such errors reach the outputs through the output layer's voltage gain
    (``r R_f sum|G+ - G-|``, 0.68 for the default network) and through hidden layers whose neurons
    mostly saturate (and then pass no error on). A worst-case bound that multiplies the hidden
    layers' gains (6-54 in the default network) gives 0.5 V, which says nothing; one logit unit
    is what decides a close call between two classes, and it is 1.4-1.6 x the largest differences
    observed (12.3 and 14.5 mV on 60 test images of the default network at NOM 25 and FF 100 degC).
    """
    return float(circuit.output_scale_v)


def compare_with_behavioural(circuit: Circuit, inputs_v: Any, characterization: Characterization,
                             corner: str = "NOM", temp_c: float = 25.0, *, labels: Optional[np.ndarray] = None,
                             design: Optional[NeuronDesign] = None, mode: Mode = "layerwise", jobs: int = 1,
                             progress: Any = None) -> Agreement:
    """Run the transistor-level network and the behavioural one (nodal) on the same inputs and compare."""
    x = circuit.check_inputs(inputs_v)
    design = characterization.design if design is None else design
    run = simulate_transistor_network(circuit, x, design, corner, temp_c, characterization=characterization,
                                      mode=mode, jobs=jobs, progress=progress)
    engine = "nodal"
    beh = simulate(circuit, x, engine=engine, return_hidden=True)
    beh_layers = list(beh.hidden_v) + [beh.outputs_v]
    tr_layers = list(run.hidden_v) + [run.outputs_v]
    local, end_to_end = [], []
    inputs = x
    for l in range(circuit.n_layers):
        single = simulate(_layer_circuit(circuit, l), inputs, engine=engine).outputs_v
        local.append(float(np.max(np.abs(single - tr_layers[l]))))
        end_to_end.append(float(np.max(np.abs(beh_layers[l] - tr_layers[l]))))
        inputs = tr_layers[l]
    diff = run.outputs_v - beh.outputs_v
    acc = None
    if labels is not None:
        y = np.asarray(labels)
        acc = {"transistor_accuracy": float(np.mean(run.predictions() == y)),
               "behavioural_accuracy": float(np.mean(beh.predictions() == y))}
    return Agreement(n_images=len(x), same_class=run.predictions() == beh.predictions(),
                     outputs_max_v=float(np.max(np.abs(diff))), outputs_rms_v=float(np.sqrt(np.mean(diff ** 2))),
                     local_max_v=local, end_to_end_max_v=end_to_end,
                     tolerance_v=output_tolerance_v(circuit),
                     transistor=run, behavioural_outputs_v=beh.outputs_v, labels_accuracy=acc)
