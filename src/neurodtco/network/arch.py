"""Architectures as data: a frozen list of layer specs that builds a torch module and round-trips through plain dicts.

Sizes are inferred from the input shape, so a spec names only what it adds (``Linear(64)``,
``Conv2d(16, 5)``). Inputs always arrive flattened, ``[batch, C*H*W]``; an image architecture
starts by unflattening them, as the hardware stores every activation flattened.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from functools import partial
from math import prod
from typing import Callable, Optional, Union

from torch import nn

from ..ops import ConvGeometry, PoolGeometry
from .layers import RAILS, ResidualBlock, Saturate


def _check_ints(spec: object, **lows: int) -> None:
    for name, low in lows.items():
        value = getattr(spec, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{type(spec).__name__}.{name}={value!r} is not accepted: expected an integer >= {low}")


@dataclass(frozen=True)
class Linear:
    """A dense layer with ``out`` outputs."""

    out: int

    def __post_init__(self) -> None:
        _check_ints(self, out=1)


@dataclass(frozen=True)
class Conv2d:
    """A square convolution: ``out`` channels, ``kernel`` x ``kernel``, stride and zero padding."""

    out: int
    kernel: int
    stride: int = 1
    padding: int = 0

    def __post_init__(self) -> None:
        _check_ints(self, out=1, kernel=1, stride=1, padding=0)


@dataclass(frozen=True)
class Pool:
    """Max or average pooling over square windows (stride defaults to the window)."""

    kind: str
    kernel: int
    stride: Optional[int] = None

    def __post_init__(self) -> None:
        if self.kind not in ("max", "avg"):
            raise ValueError(f"Pool.kind={self.kind!r} is not accepted: choose 'max' or 'avg'")
        if self.stride is None:
            object.__setattr__(self, "stride", self.kernel)
        _check_ints(self, kernel=1, stride=1)


@dataclass(frozen=True)
class Flatten:
    """``[C, H, W]`` maps to a vector (moves no data: activations are stored flattened)."""


@dataclass(frozen=True)
class BatchNorm:
    """Batch normalisation (1-d after a dense layer, 2-d after a convolution), folded away when lowered."""


@dataclass(frozen=True)
class Activation:
    """A saturating activation: ``hardtanh`` (clamp to [-1, 1]) or ``relu`` (clamp to [0, 1])."""

    kind: str

    def __post_init__(self) -> None:
        if self.kind not in RAILS:
            raise ValueError(f"Activation.kind={self.kind!r} is not accepted: choose 'hardtanh' or 'relu' (clamped at 1)")


@dataclass(frozen=True)
class Residual:
    """A residual block of two same-size convolutions on the current channels, activated after the add."""

    kernel: int = 3
    batchnorm: bool = True
    activation: str = "relu"

    def __post_init__(self) -> None:
        _check_ints(self, kernel=1)
        if self.kernel % 2 == 0:
            raise ValueError(f"Residual.kernel={self.kernel} is not accepted: an odd size (e.g. 3) keeps the map's size")
        Activation(self.activation)


LayerSpec = Union[Linear, Conv2d, Pool, Flatten, BatchNorm, Activation, Residual]
SPECS: dict[str, type] = {cls.__name__.lower(): cls for cls in (Linear, Conv2d, Pool, Flatten, BatchNorm, Activation,
                                                                 Residual)}


@dataclass(frozen=True)
class Architecture:
    """A named network: the input shape (``(C, H, W)`` or ``(features,)``) and its layers in order."""

    name: str
    input_shape: tuple[int, ...]
    layers: tuple[LayerSpec, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        object.__setattr__(self, "layers", tuple(self.layers))
        if len(self.input_shape) not in (1, 3) or min(self.input_shape) < 1:
            raise ValueError(f"input_shape={self.input_shape} is not accepted: give (features,) or (channels, height, width)")
        for i, layer in enumerate(self.layers):
            if type(layer) not in SPECS.values():
                raise ValueError(f"layers[{i}]={layer!r} is not a layer spec: use one of {', '.join(SPECS)}")
        self._steps()  # every size must fit before the architecture exists

    @property
    def n_inputs(self) -> int:
        """Inputs per image (the flattened input shape)."""
        return prod(self.input_shape)

    def build(self) -> nn.Sequential:
        """A fresh ``nn.Sequential`` (PyTorch's default initialisation) taking flattened inputs ``[B, C*H*W]``."""
        first = [nn.Unflatten(1, self.input_shape)] if len(self.input_shape) == 3 else []
        return nn.Sequential(*first, *(make() for make, _ in self._steps()))

    def output_shape(self) -> tuple[int, ...]:
        """The shape of the network's output (``(classes,)`` for a classifier)."""
        return self._steps()[-1][1] if self.layers else self.input_shape

    def _steps(self) -> list[tuple[Callable[[], nn.Module], tuple[int, ...]]]:
        """For each layer: how to make its module, and its output shape."""
        shape, steps = self.input_shape, []
        for i, spec in enumerate(self.layers):
            try:
                steps.append(_step(spec, shape))
            except ValueError as exc:
                raise ValueError(f"{self.name}: layers[{i}] {spec} does not fit its input of shape {shape}: {exc}") from None
            shape = steps[-1][1]
        return steps

    def to_dict(self) -> dict:
        """Plain dicts, lists, numbers and strings (what a model file stores)."""
        return {"name": self.name, "input_shape": list(self.input_shape),
                "layers": [{"type": type(s).__name__.lower(), **asdict(s)} for s in self.layers]}

    @classmethod
    def from_dict(cls, data: dict) -> "Architecture":
        """The inverse of ``to_dict``."""
        layers = []
        for i, entry in enumerate(data["layers"]):
            entry = dict(entry)
            kind = entry.pop("type", None)
            if kind not in SPECS:
                raise ValueError(f"layers[{i}] type={kind!r} is not accepted: choose one of {', '.join(SPECS)}")
            known = {f.name for f in fields(SPECS[kind])}
            if set(entry) - known:
                raise ValueError(f"layers[{i}] ({kind}) has unknown keys {sorted(set(entry) - known)}; "
                                 f"known: {sorted(known)}")
            layers.append(SPECS[kind](**entry))
        return cls(str(data["name"]), tuple(data["input_shape"]), tuple(layers))


def _step(spec: LayerSpec, shape: tuple[int, ...]) -> tuple[Callable[[], nn.Module], tuple[int, ...]]:
    """How to make ``spec``'s module on an input of ``shape`` (later: it draws random weights), and its output shape."""
    if isinstance(spec, Linear):
        if len(shape) != 1:
            raise ValueError("a dense layer reads a vector: put a Flatten() before it")
        return partial(nn.Linear, shape[0], spec.out), (spec.out,)
    if isinstance(spec, Flatten):
        return nn.Flatten, (prod(shape),)
    if isinstance(spec, Activation):
        return partial(Saturate, spec.kind), shape
    if isinstance(spec, BatchNorm):
        return partial(nn.BatchNorm1d if len(shape) == 1 else nn.BatchNorm2d, shape[0]), shape
    if len(shape) != 3:
        raise ValueError("it reads (channels, height, width) maps, not a vector")
    if isinstance(spec, Conv2d):
        geometry = ConvGeometry(shape, (spec.kernel,) * 2, (spec.stride,) * 2, (spec.padding,) * 2)  # type: ignore[arg-type]
        return (partial(nn.Conv2d, shape[0], spec.out, spec.kernel, spec.stride, spec.padding),
                (spec.out, *geometry.out_hw))
    if isinstance(spec, Pool):
        out = PoolGeometry(spec.kind, shape, (spec.kernel,) * 2, (spec.stride,) * 2).out_shape  # type: ignore[arg-type]
        pool = nn.MaxPool2d if spec.kind == "max" else nn.AvgPool2d
        return partial(pool, spec.kernel, spec.stride), out
    return partial(ResidualBlock, shape[0], spec.kernel, spec.batchnorm, spec.activation), shape


def _cnn(n_classes: int) -> tuple[LayerSpec, ...]:
    # BatchNorm only in the dense layer: on CPU a 2-d BatchNorm more than doubles the epoch time
    return (Conv2d(8, 5, padding=2), Activation("relu"), Pool("max", 2),
            Conv2d(16, 5), Activation("relu"), Pool("max", 2),
            Flatten(), Linear(64), BatchNorm(), Activation("relu"), Linear(n_classes))


def _resnet_mini(n_classes: int) -> tuple[LayerSpec, ...]:
    return (Conv2d(8, 3, padding=1), BatchNorm(), Activation("relu"), Pool("max", 2),
            Residual(3), Residual(3), Pool("avg", 2),
            Flatten(), Linear(n_classes))


PRESETS = {"cnn": _cnn, "resnet-mini": _resnet_mini}
ARCH_HELP = "mlp:W0-W1-...-Wn (hard-tanh MLP, e.g. mlp:784-256-128-10), " + " or ".join(PRESETS)


def parse_arch(text: str, input_shape: tuple[int, ...], n_classes: int) -> Architecture:
    """The architecture an ``--arch`` string names, for inputs of ``input_shape`` and ``n_classes`` outputs."""
    text = text.strip()
    if text.startswith("mlp:"):
        widths = mlp_widths(text)
        if widths[0] != prod(input_shape):
            raise ValueError(f"--arch {text!r} reads {widths[0]} inputs, but the images have {prod(input_shape)} "
                             f"(shape {tuple(input_shape)}): start the widths with {prod(input_shape)}")
        layers: list[LayerSpec] = []
        for w in widths[1:-1]:
            layers += [Linear(w), Activation("hardtanh")]
        return Architecture(text, (widths[0],), (*layers, Linear(widths[-1])))
    if text not in PRESETS:
        raise ValueError(f"--arch {text!r} is not accepted: choose {ARCH_HELP}")
    return Architecture(text, tuple(input_shape), PRESETS[text](n_classes))


def mlp_widths(text: str) -> tuple[int, ...]:
    """The widths of ``mlp:W0-...-Wn``."""
    try:
        widths = tuple(int(w) for w in text.removeprefix("mlp:").split("-"))
    except ValueError:
        widths = ()
    if len(widths) < 2 or min(widths) < 1:
        raise ValueError(f"--arch {text!r} is not accepted: write mlp: then the widths from input to output, "
                         "all >= 1, e.g. mlp:784-256-128-10")
    return widths


@dataclass(frozen=True)
class ArchConfig:
    """An architecture with its training recipe (AdamW, cosine schedule, cross-entropy)."""

    arch: Architecture
    epochs: int = 10  # chosen on Fashion-MNIST validation for the cnn preset (docs/networks.md)
    batch_size: int = 128
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 2

    def __post_init__(self) -> None:
        _check_ints(self, epochs=1, batch_size=1, threads=1)
        if not self.learning_rate > 0 or not self.weight_decay >= 0:
            raise ValueError(f"learning_rate={self.learning_rate} must be > 0 and weight_decay={self.weight_decay} >= 0")

    @property
    def name(self) -> str:
        """The architecture's name."""
        return self.arch.name

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The input shape the architecture reads."""
        return self.arch.input_shape

    def to_dict(self) -> dict:
        """Plain values, as stored in a model file."""
        return {**{f.name: getattr(self, f.name) for f in fields(self) if f.name != "arch"}, "arch": self.arch.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> "ArchConfig":
        """The inverse of ``to_dict``."""
        return cls(**{**data, "arch": Architecture.from_dict(data["arch"])})
