"""From a characterization to the behavioural model: ``NeuronModel``, ``MappingConfig``, ``Circuit``.

The behavioural neuron of ``circuit.py`` has one open-loop gain, one offset and one symmetric
clamp per layer. The transistor op-amp's gain and swing depend on what it drives, so a layer's
values are read at the load its difference stage sees: the next array's word lines (the mean
row conductance of its input rows, every cell ending on a column held near 0 V) plus the
stage's own feedback resistor ``r R1``. The clamp is the mean of the positive and negative swing
there; the half-difference of the two is the model's clamp error (see ``docs/periphery.md``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ..circuit import Circuit, NeuronModel
from ..mapping import MappingConfig, map_network
from .characterize import Characterization

BUILTIN = "freepdk45_opamp.json"
Source = Union[Characterization, str, Path, None]


def builtin_characterization_path() -> Path:
    """The characterization shipped with the package (default design, NOM/FF/SS, 25-100 degC)."""
    return Path(str(resources.files("neurodtco") / "data" / BUILTIN))


def load_characterization(source: Source = None) -> Characterization:
    """A characterization from a JSON file (``None``: the built-in one), or the object itself."""
    if isinstance(source, Characterization):
        return source
    path = builtin_characterization_path() if source is None else Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"characterization file {str(path)!r} does not exist; write one with "
                                "`neurodtco characterize --out FILE.json`")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{str(path)!r} is not JSON: {exc}") from None
    return Characterization.from_dict(data)


def _source_name(source: Source) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return "builtin:" + BUILTIN if source is None else "in-memory"


def difference_stage_load_s(char: Characterization, circuit: Circuit, layer_index: int,
                            output_load_s: float = 0.0) -> float:
    """Conductance the difference stage of layer ``layer_index`` drives (S)."""
    circuit.check_layer_index(layer_index)
    layer = circuit.layers[layer_index]
    g_feedback = 1.0 / (layer.neuron.difference_gain * char.design.r_difference_in_ohm)
    if layer_index == circuit.n_layers - 1:
        return g_feedback + output_load_s
    following = circuit.layers[layer_index + 1]
    rows = following.conductance[:-1]  # input rows only; the bias row has its own driver
    return g_feedback + float(np.mean(rows.sum(axis=1)))


def neuron_from_characterization(source: Source = None, corner: str = "NOM", temp_c: float = 25.0, *,
                                 feedback_resistance_ohm: float, difference_gain: Optional[float] = None,
                                 load_conductance_s: Optional[float] = None, clamp: bool = True) -> NeuronModel:
    """The behavioural ``NeuronModel`` of the characterized neuron at one corner and temperature.

    ``load_conductance_s``: what the difference stage drives (default: the characterization's
    nominal load); ``difference_gain`` defaults to the characterized design's ratio.
    """
    char = load_characterization(source)
    point = char.point(corner, temp_c)
    r = char.design.difference_gain if difference_gain is None else float(difference_gain)
    g = (1.0 / char.bench.nominal_load_ohm + 1.0 / (r * char.design.r_difference_in_ohm)
         if load_conductance_s is None else float(load_conductance_s))
    return NeuronModel(feedback_resistance_ohm=feedback_resistance_ohm, difference_gain=r,
                       open_loop_gain=point.open_loop_gain_at(g), offset_v=point.offset_at(g),
                       saturation_v=point.saturation_at(g) if clamp else None)


def mapping_from_characterization(source: Source = None, corner: str = "NOM", temp_c: float = 25.0, *,
                                  base: MappingConfig = MappingConfig(), output_scale_v: float = 0.02) -> MappingConfig:
    """Mapping settings for the characterized neuron: its activation rail, resistor ratio, gain and offset.

    ``output_scale_v`` (volts per logit) is lowered from the default 0.05 so that the default
    network's largest logits (about 16) stay inside the op-amp's swing.
    """
    char = load_characterization(source)
    point = char.point(corner, temp_c)
    r = char.design.difference_gain
    g = 1.0 / char.bench.nominal_load_ohm + 1.0 / (r * char.design.r_difference_in_ohm)
    return replace(base, activation_v=char.activation_v, difference_gain=r, open_loop_gain=point.open_loop_gain_at(g),
                   offset_v=point.offset_at(g), output_swing_v=point.saturation_at(g), output_scale_v=output_scale_v)


def apply_characterization(circuit: Circuit, source: Source = None, corner: str = "NOM", temp_c: float = 25.0, *,
                           output_load_s: float = 0.0) -> Circuit:
    """A copy of ``circuit`` whose neurons carry the characterized gain, offset and clamp.

    Resistors (``R_f``, the difference ratio) stay as mapped: a corner or a temperature changes
    the transistors, not the design. Each layer's parameters are read at its own load; the last
    layer clamps too (its op-amp has the same swing). The circuit's metadata records the source.
    """
    char = load_characterization(source)
    point = char.point(corner, temp_c)

    def update(index: int, layer: Any) -> Any:
        g = difference_stage_load_s(char, circuit, index, output_load_s)
        neuron = replace(layer.neuron, open_loop_gain=point.open_loop_gain_at(g), offset_v=point.offset_at(g),
                         saturation_v=point.saturation_at(g))
        return layer.replace(neuron=neuron)

    out = circuit.map_layers(update)
    meta = {**circuit.metadata, "periphery": {"characterization": _source_name(source), "corner": point.corner,
                                              "temp_c": float(temp_c)}}
    return out.replace(metadata=meta)


def with_difference_gain(circuit: Circuit, layer_index: int, difference_gain: float) -> Circuit:
    """A copy whose layer uses another difference-stage ratio, ``R_f`` rescaled so the ideal transfer is unchanged.

    The ideal neuron computes ``r R_f (I_plus - I_minus)``; keeping ``r R_f`` fixed keeps every ideal
    output while moving signal between the transimpedance stages (``R_f``) and the difference stage
    (``r``). A large ``r`` keeps transimpedance outputs small; a small one keeps ``R_f`` large enough
    for the op-amp to drive.
    """
    circuit.check_layer_index(layer_index)
    if not (isinstance(difference_gain, (int, float)) and difference_gain > 0):
        raise ValueError(f"difference_gain={difference_gain!r} is not accepted: expected a positive resistor ratio")
    layer = circuit.layers[layer_index]
    old = layer.neuron
    neuron = replace(old, difference_gain=float(difference_gain),
                     feedback_resistance_ohm=old.feedback_resistance_ohm * old.difference_gain / difference_gain)
    return circuit.replace_layer(layer_index, neuron=neuron)


def characterized_circuit(network: Any, source: Source = None, corner: str = "NOM", temp_c: float = 25.0, *,
                          base: MappingConfig = MappingConfig(), output_scale_v: float = 0.02,
                          output_difference_gain: float = 1.0) -> Circuit:
    """Map a trained network for the characterized neuron and attach its parameters at one corner/temperature.

    The mapping (resistors, rails) is the design: it uses the characterization's reference point
    whatever the corner, and only the neurons' gain, offset and clamp follow ``corner``/``temp_c``.
    The output layer's difference ratio is lowered to ``output_difference_gain`` (``R_f`` raised to
    match) because its small output scale would otherwise ask for a ``R_f`` of about 100 ohm.
    """
    char = load_characterization(source)
    ref_corner, ref_temp = char.provenance.get("reference_point", [char.points[0].corner, char.points[0].temp_c])
    config = mapping_from_characterization(char, ref_corner, float(ref_temp), base=base, output_scale_v=output_scale_v)
    circuit = map_network(network, config)
    circuit = with_difference_gain(circuit, circuit.n_layers - 1, output_difference_gain)
    out = apply_characterization(circuit, char, corner, temp_c)
    meta = dict(out.metadata)
    meta["periphery"] = {**meta["periphery"], "characterization": _source_name(source)}
    return out.replace(metadata=meta)
