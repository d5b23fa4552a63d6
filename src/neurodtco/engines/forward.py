"""Walk a circuit's stages: the one loop every array-by-array engine shares.

An engine supplies ``run_layer(index, layer, rows_v) -> outputs_v``: the activated neuron outputs
``[vectors, n_outputs]`` of one layer for a batch of row-input vectors. This module does the rest:
the plain chain of layers, convolutions (inputs unrolled into one row vector per output position,
the layer read once per position, the outputs folded back into maps), pooling and residual sums,
and streaming the images in chunks so that unrolled convolutions never hold a whole data set.

Power (``walk(..., return_power=True)``): ``run_layer`` then returns ``(outputs, power_w)`` with the
power ``[vectors]`` its row drivers deliver for each vector, and the walk adds every read of an
image: a convolution's layer is read once per output position, so an image's power is the sum
over its reads (its arrays' energy per inference divided by one read time). Pooling and residual
sums draw no array power.

On a torch ``device`` (``torch_device``) the same walk runs in float64 on that device, each chunk
moved there and back; an engine then supplies a ``run_layer`` for tensors, such as
``affine_layers`` (a layer of linear cells is one affine map, computed once per run in NumPy) or
the nodal engine's chord Newton for gap cells.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Optional

import numpy as np

from ..circuit import Circuit, Crossbar, Layer, Sum
from ..ops import ConvGeometry, Pool, PoolGeometry, Save, torch_activate

if TYPE_CHECKING:
    import torch

RunLayer = Callable[[int, Layer, Any], Any]
LayerMap = Callable[[int, Layer], tuple[np.ndarray, np.ndarray]]

#: Largest unrolled input (doubles) one chunk of images may create: 8 M doubles, 64 MiB.
CHUNK_DOUBLES = 1 << 23
#: On a CUDA device the largest unrolled input may take this share of its free memory: the
#: products, their clamps and the folded maps of the same chunk take a few times more.
DEVICE_MEMORY_SHARE = 1 / 32


class _Kit(NamedTuple):
    """How one array type moves in and out of the walk and does its non-crossbar steps."""

    load: Callable[[np.ndarray], Any]
    unload: Callable[[Any], np.ndarray]
    patches: Callable[[ConvGeometry, Any], Any]
    fold: Callable[[ConvGeometry, Any, int], Any]
    pool: Callable[[PoolGeometry, Any], Any]
    add: Callable[[Sum, Any, Any], Any]


_NUMPY = _Kit(lambda a: a, lambda a: a, ConvGeometry.patches, ConvGeometry.fold, PoolGeometry.apply, Sum.apply)


def _torch_kit(device: "torch.device") -> _Kit:
    import torch

    return _Kit(lambda a: torch.tensor(np.ascontiguousarray(a), device=device),
                lambda t: t.cpu().numpy(), ConvGeometry.torch_patches, ConvGeometry.torch_fold, PoolGeometry.torch_apply,
                lambda stage, x, saved: torch_activate(x + saved, stage.activation, stage.rail_v))


def torch_device(device: Any) -> Optional["torch.device"]:
    """The torch device an engine runs on (``None``: NumPy on the CPU); a bad or absent device is refused."""
    if device is None:
        return None
    import torch

    available = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device={device!r} is not accepted: choose None (NumPy), 'cpu' or 'cuda[:N]' (torch, "
                         f"float64); available here: {available}")
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r} is not available: torch {torch.__version__} sees "
                             f"{torch.cuda.device_count()} CUDA device(s); available here: {available}")
        dev = torch.device("cuda", index)
    return dev


def runs_on_device(engine: str, device: Optional["torch.device"], circuit: Circuit, reports: bool,
                   nonlinear: bool = False) -> bool:
    """True when the run goes to ``device``; False for the NumPy path; a CUDA device is refused for the rest.

    ``nonlinear``: the engine also runs nonlinear (gap-model) cells there.
    """
    if device is None:
        return False
    if (circuit.cell.is_linear or nonlinear) and not reports:
        return True
    if device.type == "cpu":
        return False
    what = "node voltages and power reports" if reports else "gap-model (nonlinear) cells"
    cells = "circuits" if nonlinear else "linear-cell circuits"
    raise ValueError(f"the {engine} engine runs outputs and hidden outputs of {cells} on {device}; "
                     f"{what} run on the CPU only: pass device=None or 'cpu'")


def affine_layers(layer_map: LayerMap, device: "torch.device") -> RunLayer:
    """A ``run_layer`` for tensors on ``device``: each layer's map ``x @ W + c``, moved there once per run, clamped.

    ``layer_map`` computes the map in float64 NumPy; it is called once per layer and run.
    """
    import torch

    maps: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def run_layer(index: int, layer: Layer, rows_v: torch.Tensor) -> torch.Tensor:
        if index not in maps:
            maps[index] = tuple(torch.tensor(a, device=device) for a in layer_map(index, layer))
        weights, const = maps[index]
        neuron = layer.neuron
        z = rows_v @ weights + const
        return z if neuron.saturation_v is None else torch_activate(z, neuron.activation, neuron.saturation_v)

    return run_layer


def device_chunk_doubles(device: Optional["torch.device"]) -> int:
    """Largest unrolled input (doubles) per chunk: ``CHUNK_DOUBLES`` on the CPU, a share of free memory on CUDA."""
    if device is None or device.type == "cpu":
        return CHUNK_DOUBLES
    import torch

    free_bytes, _ = torch.cuda.mem_get_info(device)
    return max(CHUNK_DOUBLES, int(free_bytes * DEVICE_MEMORY_SHARE) // 8)


def is_plain(circuit: Circuit) -> bool:
    """True for the plain chain of untiled dense layers."""
    return circuit.stages is None and all(layer.tiling is None for layer in circuit.layers)


def refuse_reports(circuit: Circuit, engine: str) -> None:
    """Node voltages and array power are reported for plain chains of untiled dense layers only."""
    if not is_plain(circuit):
        raise ValueError(f"the {engine} engine reports node voltages and array power for plain chains of untiled "
                         "dense layers only; this circuit has tiles or convolution/pooling/residual stages: ask for "
                         "outputs (and hidden outputs) only")


def images_per_chunk(circuit: Circuit, budget_doubles: int = CHUNK_DOUBLES) -> int:
    """Images per chunk so that the largest unrolled convolution input stays under ``budget_doubles``."""
    widest = max([circuit.n_inputs] + [s.conv.n_positions * s.conv.patch_size
                                       for s in circuit.stage_list() if isinstance(s, Crossbar) and s.conv])
    return max(1, budget_doubles // widest)


class Walk(NamedTuple):
    """What a walk returns: outputs ``[batch, n_outputs]``, hidden stages' outputs, and (if asked) every
    layer's power summed over its reads ``[batch, n_layers]``."""

    outputs: np.ndarray
    hidden: list[np.ndarray]
    layer_power_w: Optional[np.ndarray]


def forward(circuit: Circuit, inputs_v: np.ndarray, run_layer: RunLayer, return_hidden: bool = False,
            device: Optional["torch.device"] = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """Outputs ``[batch, n_outputs]`` and (if asked) every hidden crossbar stage's outputs, in stage order.

    With a torch ``device`` every chunk is walked there (``run_layer`` then takes and returns
    tensors); the results come back as NumPy arrays.
    """
    return walk(circuit, inputs_v, run_layer, return_hidden, device)[:2]


def walk(circuit: Circuit, inputs_v: np.ndarray, run_layer: RunLayer, return_hidden: bool = False,
         device: Optional["torch.device"] = None, return_power: bool = False) -> Walk:
    """``forward``, and with ``return_power`` every image's array power per layer, summed over its reads (NumPy only)."""
    if return_power and device is not None:
        raise ValueError("power is walked in NumPy on the CPU: pass device=None")
    kit = _NUMPY if device is None else _torch_kit(device)
    step = images_per_chunk(circuit, device_chunk_doubles(device))
    if len(inputs_v) <= step:
        return _forward_chunk(circuit, inputs_v, run_layer, return_hidden, kit, return_power)
    parts = [_forward_chunk(circuit, inputs_v[i:i + step], run_layer, return_hidden, kit, return_power)
             for i in range(0, len(inputs_v), step)]
    outputs = np.concatenate([p.outputs for p in parts])
    hidden = [np.concatenate([p.hidden[k] for p in parts]) for k in range(len(parts[0].hidden))]
    power = np.concatenate([p.layer_power_w for p in parts]) if return_power else None
    return Walk(outputs, hidden, power)


def _forward_chunk(circuit: Circuit, inputs_v: np.ndarray, run_layer: RunLayer, return_hidden: bool,
                   kit: _Kit, return_power: bool = False) -> Walk:
    stages = circuit.stage_list()
    last = max(k for k, s in enumerate(stages) if isinstance(s, Crossbar))
    x = kit.load(inputs_v)
    saved: dict[str, Any] = {}
    hidden: list[Any] = []
    power = np.zeros((len(inputs_v), circuit.n_layers)) if return_power else None
    for k, stage in enumerate(stages):
        if isinstance(stage, Crossbar):
            layer = circuit.layers[stage.layer]
            rows_v = x if stage.conv is None else kit.patches(stage.conv, x)
            out = run_layer(stage.layer, layer, rows_v)
            if return_power:
                out, read_w = out
                power[:, stage.layer] += np.asarray(read_w).reshape(len(x), -1).sum(axis=1)  # conv reads: image major
            x = out if stage.conv is None else kit.fold(stage.conv, out, len(x))
            if return_hidden and k != last:
                hidden.append(kit.unload(x))
        elif isinstance(stage, Pool):
            x = kit.pool(stage.geometry, x)
        elif isinstance(stage, Save):
            saved[stage.slot] = x
        elif isinstance(stage, Sum):
            x = kit.add(stage, x, saved[stage.slot])
    return Walk(kit.unload(x), hidden, power)
