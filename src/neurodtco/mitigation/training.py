"""Training levers: defect-aware retraining in conductance space, and hardware-aware training.

Defect-aware retraining (the physical version). After fabrication the stuck cells of a chip are
measured (their mask and the conductance each is stuck at). The network is then retrained *on
the hardware's own parameters*: every layer is parametrized by its cells' conductances, the
stuck ones frozen at their measured values, the healthy ones free inside the programmable window
``[G_min, G_max]``; the signed weight is ``(G+ - G-) / k`` through the layer's fixed periphery
(feedback resistor, difference gain, rails). Training starts from the mapped healthy weights, so
it only has to route around the defects; the retrained conductances are written back into the
``Circuit``, which any engine then simulates.

Hardware-aware training. The software MLP is trained with the conductance imperfections the
chip will show injected into its forward pass: every weight is expanded into the conductance pair
the mapping will program, each conductance is multiplied by ``1 + sigma * N(0, 1)`` (fresh for
every minibatch, like a fresh chip) and by the temperature factor ``G(T)/G(T0)`` of a model
evaluated at a temperature drawn uniformly from the operating range, and the pair is folded back
into a weight. It runs through ``network.train`` via its ``forward`` hook, so with no noise it is
exactly plain training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..circuit import Circuit
from ..data import Dataset
from ..mapping import MappingConfig
from ..network import MLP, NetworkConfig, TrainedNetwork, train
from . import differentiable as diff
from .common import check_seed


# --------------------------------------------------------------------------------------------
# Defect-aware retraining
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetrainConfig:
    """Recipe of defect-aware retraining (Adam on conductances in window units, cosine schedule).

    ``learning_rate`` is in units of the window ``G_max - G_min`` per step. ``energy_weight``
    adds ``energy_weight * mean(G - G_min) / (G_max - G_min)`` to the loss, which keeps the free
    cells low (the array's read energy grows with the conductances); 0 disables it.
    ``change_weight`` adds ``change_weight * mean|G - G_start| / (G_max - G_min)``: an L1 pull
    toward the starting map, so that only the cells that matter move (fewer cells to reprogram,
    hence fewer programming pulses and less disturbance in a passive array); 0 disables it.
    """

    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 3e-3
    energy_weight: float = 0.0
    change_weight: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name}={value!r} is not accepted: expected an integer >= 1")
        if not (isinstance(self.learning_rate, (int, float)) and 0 < self.learning_rate < 1):
            raise ValueError(f"learning_rate={self.learning_rate!r} is not accepted: expected a number in (0, 1) "
                             "(fraction of the conductance window per step, e.g. 3e-3)")
        for name in ("energy_weight", "change_weight"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value >= 0):
                raise ValueError(f"{name}={value!r} is not accepted: expected a number >= 0")
        check_seed(self.seed)


def stuck_masks_of(record: Any) -> list[np.ndarray]:
    """Per-layer stuck masks from a ``DefectRecord`` (its ``masks``) or a list of bool arrays."""
    masks = getattr(record, "masks", record)
    return [np.asarray(m, dtype=bool) for m in masks]


def retrain_defect_aware(circuit: Circuit, stuck_masks: Any, dataset: Dataset,
                         config: RetrainConfig = RetrainConfig()) -> Circuit:
    """Retrain one defective chip around its measured stuck cells; returns the reprogrammed circuit.

    ``circuit`` holds the chip as measured (stuck cells at their stuck conductance, the others at
    the mapped healthy values); ``stuck_masks`` is the ``DefectRecord`` or its per-layer masks.
    Stuck cells keep their conductance exactly; every other cell ends inside ``[G_min, G_max]``.
    A chip without stuck cells is returned unchanged: the mapping is already the trained optimum.
    """
    return retrain_defect_aware_batch([circuit], [stuck_masks], dataset, config)[0]


def retrain_defect_aware_batch(circuits: Sequence[Circuit], stuck_masks: Sequence[Any], dataset: Dataset,
                               config: RetrainConfig = RetrainConfig()) -> list[Circuit]:
    """Retrain ``K`` chips of one design (different defect maps) at once, in one batched graph."""
    circuits = list(circuits)
    if len(stuck_masks) != len(circuits):
        raise ValueError(f"got {len(circuits)} circuits but {len(stuck_masks)} stuck-mask sets; give one per circuit")
    diff.check_same_architecture(circuits)
    masks = [stuck_masks_of(m) for m in stuck_masks]
    for k, (c, ms) in enumerate(zip(circuits, masks)):
        if len(ms) != c.n_layers or any(m.shape != layer.conductance.shape for m, layer in zip(ms, c.layers)):
            raise ValueError(f"circuit {k}: stuck masks must be one bool array per layer with the layer's shape "
                             f"{[layer.conductance.shape for layer in c.layers]}")
    active = [k for k, ms in enumerate(masks) if any(m.any() for m in ms)]
    out = list(circuits)
    if not active:
        return out
    batch = [circuits[k] for k in active]
    cell = batch[0].cell
    g_lo, span = cell.g_min, cell.g_max - cell.g_min
    g0 = diff.stack_conductances(batch)
    frozen = [torch.as_tensor(np.stack([masks[k][i] for k in active])) for i in range(len(g0))]
    # Free cells live in window units u = (G - G_min) / span, projected back into [0, 1] after each step.
    u = [torch.clamp((g - g_lo) / span, 0.0, 1.0).requires_grad_(True) for g in g0]
    u0 = [p.detach().clone() for p in u]

    def conductances() -> list[torch.Tensor]:
        return [torch.where(m, g, g_lo + span * p) for m, g, p in zip(frozen, g0, u)]

    x = torch.as_tensor(dataset.x_train * batch[0].input_scale_v, dtype=torch.float64)
    y = torch.as_tensor(dataset.y_train, dtype=torch.int64)
    opt = torch.optim.Adam(u, lr=config.learning_rate)
    steps_per_epoch = math.ceil(len(x) / config.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(config.seed)
    loss_fn = nn.CrossEntropyLoss()
    scale = batch[0].output_scale_v
    layers = diff.periphery(batch[0])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: one thread is faster and reproducible
    try:
        for _ in range(config.epochs):
            perm = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x), config.batch_size):
                idx = perm[start:start + config.batch_size]
                logits = diff.forward(batch[0], conductances(), x[idx], layers) / scale  # [K, b, classes]
                k, b, n = logits.shape
                # Summed over chips: each chip's parameters get exactly its own gradient.
                loss = loss_fn(logits.reshape(k * b, n), y[idx].repeat(k)) * k
                if config.energy_weight:
                    loss = loss + config.energy_weight * sum(
                        (torch.where(m, 0.0, p)).mean(dim=(1, 2)).sum() for m, p in zip(frozen, u))
                if config.change_weight:
                    loss = loss + config.change_weight * sum(
                        (torch.where(m, 0.0, (p - p0).abs())).mean(dim=(1, 2)).sum() for m, p, p0 in zip(frozen, u, u0))
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                with torch.no_grad():
                    for p in u:
                        p.clamp_(0.0, 1.0)
    finally:
        torch.set_num_threads(threads)
    with torch.no_grad():
        final = [g.numpy() for g in conductances()]
    for j, k in enumerate(active):
        new = [f[j].copy() for f in final]
        # Stuck cells keep the exact measured value (torch.where already copies it; this guards dtype paths).
        for g, m, layer in zip(new, masks[k], circuits[k].layers):
            g[m] = layer.conductance[m]
        out[k] = circuits[k].with_conductances(new).replace(
            metadata={**circuits[k].metadata, "mitigation": "defect-aware retraining"})
    return out


# --------------------------------------------------------------------------------------------
# Hardware-aware training
# --------------------------------------------------------------------------------------------

TemperatureFactor = Callable[[np.ndarray, float], np.ndarray]


@dataclass(frozen=True)
class HardwareNoise:
    """The conductance imperfections injected while training.

    ``sigma``: relative standard deviation of a multiplicative Gaussian on every conductance
    (read noise and tuning error lumped). ``temperature_factor(g_s, temperature_c) -> G(T)/G(T0)``
    with a range ``temperature_range_c`` (uniform draw per minibatch); None for no temperature.
    ``mapping`` gives the window and the bias-row voltage the weights will be mapped with.
    """

    sigma: float = 0.0
    temperature_factor: Optional[TemperatureFactor] = None
    temperature_range_c: tuple[float, float] = (25.0, 100.0)
    mapping: MappingConfig = field(default_factory=MappingConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        if not (isinstance(self.sigma, (int, float)) and 0 <= self.sigma < 1):
            raise ValueError(f"sigma={self.sigma!r} is not accepted: expected a relative deviation in [0, 1)")
        lo, hi = self.temperature_range_c
        if not lo <= hi:
            raise ValueError(f"temperature_range_c={self.temperature_range_c!r} must be (low, high) with low <= high")
        check_seed(self.seed)

    @property
    def is_null(self) -> bool:
        """True when nothing is injected (training is then plain training)."""
        return self.sigma == 0 and self.temperature_factor is None


def noisy_forward(noise: HardwareNoise, generator: torch.Generator) -> Callable[[MLP, torch.Tensor], torch.Tensor]:
    """A ``forward(model, x)`` for ``network.train`` that perturbs the mapped conductances."""
    cell = noise.mapping.make_cell()
    g_lo, g_hi = cell.g_min, cell.g_max
    span = g_hi - g_lo

    def forward(model: MLP, x: torch.Tensor) -> torch.Tensor:
        temperature = None
        if noise.temperature_factor is not None:
            lo, hi = noise.temperature_range_c
            temperature = lo + (hi - lo) * float(torch.rand((), generator=generator))
        v_in = noise.mapping.v_read_v
        n = len(model.linears)
        for i, linear in enumerate(model.linears):
            w, b = linear.weight, linear.bias
            v_bias = noise.mapping.bias_voltage_v if noise.mapping.bias_voltage_v is not None else v_in
            ratio = v_in / v_bias
            signed = torch.cat([w, (b * ratio)[:, None]], dim=1)
            peak = signed.detach().abs().max().clamp_min(1e-12)
            # The pair the mapping programs, in units of the window: u = G / (G_max - G_min).
            u_plus = g_lo / span + torch.relu(signed) / peak
            u_minus = g_lo / span + torch.relu(-signed) / peak
            f_plus = torch.zeros_like(u_plus)
            f_minus = torch.zeros_like(u_minus)
            if noise.sigma:
                f_plus = f_plus + noise.sigma * torch.randn(u_plus.shape, generator=generator, dtype=u_plus.dtype)
                f_minus = f_minus + noise.sigma * torch.randn(u_minus.shape, generator=generator, dtype=u_minus.dtype)
            if temperature is not None:
                for f, u in ((f_plus, u_plus), (f_minus, u_minus)):
                    g = (span * u.detach()).double().numpy()
                    factor = np.asarray(noise.temperature_factor(g, temperature), dtype=np.float64)
                    f.mul_(torch.as_tensor(factor, dtype=f.dtype)).add_(torch.as_tensor(factor - 1.0, dtype=f.dtype))
            # Added as a correction so that zero noise leaves the weights bit-identical.
            delta = peak * (u_plus * f_plus - u_minus * f_minus)
            x = nn.functional.linear(x, w + delta[:, :-1], b + delta[:, -1] / ratio)
            if i < n - 1:
                x = torch.clamp(x, -1.0, 1.0)
            v_in = noise.mapping.hidden_rail_v
        return x

    return forward


def train_hardware_aware(dataset: Dataset, noise: HardwareNoise = HardwareNoise(),
                         config: NetworkConfig = NetworkConfig(),
                         progress: Optional[Callable[[int, int], None]] = None) -> TrainedNetwork:
    """Train the MLP with ``noise`` injected into every forward pass (``network.train``'s loop)."""
    generator = torch.Generator().manual_seed(noise.seed)
    net = train(dataset, config, progress=progress, forward=noisy_forward(noise, generator))
    net.history["hardware_noise"] = {"sigma": noise.sigma, "temperature": noise.temperature_factor is not None,
                                     "temperature_range_c": list(noise.temperature_range_c)}
    return net
