"""Walk a circuit's stages: the one loop every array-by-array engine shares.

An engine supplies ``run_layer(index, layer, rows_v) -> outputs_v``: the activated neuron outputs
``[vectors, n_outputs]`` of one layer for a batch of row-input vectors. This module does the rest:
the plain chain of layers, convolutions (inputs unrolled into one row vector per output position,
the layer read once per position, the outputs folded back into maps), pooling and residual sums,
and streaming the images in chunks so that unrolled convolutions never hold a whole data set.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..circuit import Circuit, Crossbar, Layer, Sum
from ..ops import Pool, Save

RunLayer = Callable[[int, Layer, np.ndarray], np.ndarray]

#: Largest unrolled input (doubles) one chunk of images may create: 8 M doubles, 64 MiB.
CHUNK_DOUBLES = 1 << 23


def is_plain(circuit: Circuit) -> bool:
    """True for the plain chain of untiled dense layers (what node and power reports cover)."""
    return circuit.stages is None and all(layer.tiling is None for layer in circuit.layers)


def refuse_reports(circuit: Circuit, engine: str) -> None:
    """Node voltages and array power are reported for plain chains of untiled dense layers only."""
    if not is_plain(circuit):
        raise ValueError(f"the {engine} engine reports node voltages and array power for plain chains of untiled "
                         "dense layers only; this circuit has tiles or convolution/pooling/residual stages: ask for "
                         "outputs (and hidden outputs) only")


def images_per_chunk(circuit: Circuit) -> int:
    """Images per chunk so that the largest unrolled convolution input stays under ``CHUNK_DOUBLES``."""
    widest = max([circuit.n_inputs] + [s.conv.n_positions * s.conv.patch_size
                                       for s in circuit.stage_list() if isinstance(s, Crossbar) and s.conv])
    return max(1, CHUNK_DOUBLES // widest)


def forward(circuit: Circuit, inputs_v: np.ndarray, run_layer: RunLayer,
            return_hidden: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
    """Outputs ``[batch, n_outputs]`` and (if asked) every hidden crossbar stage's outputs, in stage order."""
    step = images_per_chunk(circuit)
    if len(inputs_v) <= step:
        return _forward_chunk(circuit, inputs_v, run_layer, return_hidden)
    parts = [_forward_chunk(circuit, inputs_v[i:i + step], run_layer, return_hidden)
             for i in range(0, len(inputs_v), step)]
    outputs = np.concatenate([p[0] for p in parts])
    hidden = [np.concatenate([p[1][k] for p in parts]) for k in range(len(parts[0][1]))]
    return outputs, hidden


def _forward_chunk(circuit: Circuit, x: np.ndarray, run_layer: RunLayer,
                   return_hidden: bool) -> tuple[np.ndarray, list[np.ndarray]]:
    stages = circuit.stage_list()
    last = max(k for k, s in enumerate(stages) if isinstance(s, Crossbar))
    saved: dict[str, np.ndarray] = {}
    hidden: list[np.ndarray] = []
    for k, stage in enumerate(stages):
        if isinstance(stage, Crossbar):
            layer = circuit.layers[stage.layer]
            if stage.conv is None:
                x = run_layer(stage.layer, layer, x)
            else:
                x = stage.conv.fold(run_layer(stage.layer, layer, stage.conv.patches(x)), len(x))
            if return_hidden and k != last:
                hidden.append(x)
        elif isinstance(stage, Pool):
            x = stage.geometry.apply(x)
        elif isinstance(stage, Save):
            saved[stage.slot] = x
        elif isinstance(stage, Sum):
            x = stage.apply(x, saved[stage.slot])
    return x, hidden
