"""System accuracy against process corner and temperature, from the characterized neurons.

The chip is designed once (mapping at the characterization's reference point); each corner and
temperature changes only the op-amps' gain, offset and clamp (``apply_characterization``). A
defect case is applied to the designed circuit first, so it is the same defect at every corner.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional, Sequence

import numpy as np

from ..data import to_voltages
from ..defects import apply_defects, parse_defect
from ..engines import simulate
from .characterize import Characterization
from .model import apply_characterization, characterized_circuit

DEFAULT_DEFECT = "ring:layers=1,kind=on,density=0.1"


@dataclass(frozen=True)
class CornerRow:
    """Accuracy at one corner and temperature, with the neuron parameters that produced it."""

    corner: str
    temp_c: float
    case: str
    accuracy: float
    open_loop_gain: float
    saturation_v: float
    offset_v: float


def corner_temperature_table(network: Any, dataset: Any, characterization: Characterization,
                             corners: Optional[Sequence[str]] = None, temps_c: Optional[Sequence[float]] = None,
                             defect: Optional[str] = DEFAULT_DEFECT, engine: str = "nodal",
                             seed: int = 0) -> list[CornerRow]:
    """Test accuracy of ``network`` on ``dataset`` for every (corner, temperature), healthy and with ``defect``."""
    corners = list(corners) if corners is not None else list(characterization.corners)
    design = characterized_circuit(network, characterization)
    x = to_voltages(dataset.x_test, design.input_scale_v)
    y = dataset.y_test
    cases = [("healthy", design)]
    if defect:
        damaged, _ = apply_defects(design, [parse_defect(defect)], seed=seed)
        cases.append((defect, damaged))
    rows = []
    for corner in corners:
        temps = list(temps_c) if temps_c is not None else list(characterization.temperatures(corner))
        for temp in temps:
            for name, circuit in cases:
                c = apply_characterization(circuit, characterization, corner, temp)
                acc = simulate(c, x, engine=engine).accuracy(y)
                hidden = c.layers[:-1] if c.n_layers > 1 else c.layers
                rows.append(CornerRow(corner=corner, temp_c=float(temp), case=name, accuracy=float(acc),
                                      open_loop_gain=float(np.mean([l.neuron.open_loop_gain for l in hidden])),
                                      saturation_v=float(np.mean([l.neuron.saturation_v for l in hidden])),
                                      offset_v=float(np.mean([l.neuron.offset_v for l in hidden]))))
    return rows


def markdown_table(rows: Sequence[CornerRow]) -> str:
    """Accuracy table: one line per corner and temperature, one column per case."""
    cases = list(dict.fromkeys(r.case for r in rows))
    keys = list(dict.fromkeys((r.corner, r.temp_c) for r in rows))
    by = {(r.corner, r.temp_c, r.case): r for r in rows}
    head = "| corner | T (degC) | A (hidden, mean) | clamp (V) | " + " | ".join(f"accuracy: {c}" for c in cases) + " |"
    lines = [head, "|" + "---|" * (4 + len(cases))]
    for corner, temp in keys:
        first = by[(corner, temp, cases[0])]
        accs = " | ".join(f"{by[(corner, temp, c)].accuracy:.2%}" for c in cases)
        lines.append(f"| {corner} | {temp:.0f} | {first.open_loop_gain:.0f} | {first.saturation_v:.3f} | {accs} |")
    return "\n".join(lines)


@dataclass(frozen=True)
class SensitivityRow:
    """Accuracy when one behavioural neuron parameter is forced to a value (all layers at once)."""

    parameter: str
    value: float
    accuracy: float


def sensitivity_table(network: Any, dataset: Any, characterization: Characterization,
                      gains: Sequence[float] = (3000.0, 300.0, 100.0, 30.0),
                      clamp_scales: Sequence[float] = (1.1, 0.9, 0.8, 0.6),
                      offsets_v: Sequence[float] = (1e-4, 1e-3, 5e-3), engine: str = "nodal") -> list[SensitivityRow]:
    """How far each op-amp parameter must move before accuracy does (the design's margins).

    Starts from the characterized circuit at the reference point and overrides one parameter in
    every layer: the open-loop gain, the clamp (a fraction of each layer's characterized swing),
    or the input offset.
    """
    base = characterized_circuit(network, characterization)
    x = to_voltages(dataset.x_test, base.input_scale_v)
    y = dataset.y_test

    def accuracy(**changes: Any) -> float:
        def update(_: int, layer: Any) -> Any:
            fields = {k: (v(layer.neuron) if callable(v) else v) for k, v in changes.items()}
            return layer.replace(neuron=replace(layer.neuron, **fields))

        return float(simulate(base.map_layers(update), x, engine=engine).accuracy(y))

    rows = [SensitivityRow("reference", float("nan"), float(simulate(base, x, engine=engine).accuracy(y)))]
    rows += [SensitivityRow("open_loop_gain", g, accuracy(open_loop_gain=g)) for g in gains]
    rows += [SensitivityRow("clamp_scale", s, accuracy(saturation_v=lambda n, s=s: n.saturation_v * s))
             for s in clamp_scales]
    rows += [SensitivityRow("offset_v", o, accuracy(offset_v=o)) for o in offsets_v]
    return rows
