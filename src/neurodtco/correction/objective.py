"""The loss and gradient a corrector fit minimises, evaluated for a batch of models in cache-sized groups.

A fit evaluates its objective a few hundred times on the same inputs, so everything that does not
change between evaluations is prepared once: the inputs carry a row of ones (every layer stores its
bias as the last column of its weight matrix, and the bias rides in the product), the
intermediates live in buffers reused by every evaluation (fresh memory costs page faults and
cache misses), and each group's views of the parameters, gradients, inputs and buffers are made
once. An evaluation then copies the parameters in, runs a handful of operations per group (the
products, the activation, the softmax cross-entropy) and copies the gradient out: on models this
small the per-operation overhead, not the arithmetic, is what a careless evaluation spends.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Protocol

import torch

#: largest logit bound about which the log-sum-exp is taken: exp(-2 * 300) is still far above float64's tiny
_SHIFT_LIMIT = 300.0

Blocks = list[torch.Tensor]  # one tensor [K, rows, columns + 1] per layer: its weights, then its bias as the last column


def with_ones_row(x: torch.Tensor) -> torch.Tensor:
    """Inputs ``[K, F, M]`` with a row of ones appended, ``[K, F + 1, M]``: a layer's bias then rides in its product."""
    return torch.cat([x, x.new_ones(x.shape[0], 1, x.shape[2])], dim=1)


def shift_of(bound: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """``bound`` ``[K, 1, 1]`` if the log-sum-exp may be taken about it, else None (about each image's largest logit).

    Every logit lowered by a bound of its magnitude lies in ``[-2 bound, 0]``, so nothing overflows,
    and up to ``_SHIFT_LIMIT`` the largest term of a sum cannot underflow either.
    """
    return None if bound is None or float(bound.max()) > _SHIFT_LIMIT else bound


def softmax_cross_entropy_(logits: torch.Tensor, labels: torch.Tensor, shifted: bool, picked: torch.Tensor,
                           total: torch.Tensor) -> torch.Tensor:
    """The gradient ``(softmax - onehot) / N`` of the mean cross-entropy, computed in the memory of ``logits`` ``[K, C, N]``.

    ``shifted``: the logits were already lowered by a bound ``shift_of`` accepts (folded into the
    output bias), which saves the reduction over the classes for each image's maximum; otherwise
    that maximum is subtracted here. Writes each image's shifted logit of its label into ``picked``
    and its sum of exponentials into ``total`` (both ``[K, 1, N]``); ``loss_of`` turns them into the loss.
    """
    n = logits.shape[2]
    if not shifted:
        logits.sub_(logits.amax(dim=1, keepdim=True))
    torch.gather(logits, 1, labels, out=picked)
    e = logits.exp_()
    torch.sum(e, dim=1, keepdim=True, out=total)
    grad = e.mul_((1.0 / n) / total)
    return grad.scatter_add_(1, labels, grad.new_tensor(-1.0 / n).expand(labels.shape))


def loss_of(total: torch.Tensor, picked: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy ``[K]`` from the sums of exponentials and picked logits ``[K, 1, N]`` of ``softmax_cross_entropy_``.

    Computed in the memory of ``total`` (fresh memory of this size costs page faults on every evaluation).
    """
    return total.log_().sub_(picked).mean(dim=(1, 2))


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy ``[K]`` of logits ``[K, C, N]`` against labels ``[K, 1, N]``, and its gradient ``[K, C, N]``.

    The gradient is written by hand, ``(softmax - onehot) / N``: autograd's graph costs more than the
    arithmetic on these small matrices. ``logits`` is not modified.
    """
    picked, total = logits.new_empty(labels.shape), logits.new_empty(labels.shape)
    grad = softmax_cross_entropy_(logits.clone(), labels, False, picked, total)
    return loss_of(total, picked), grad


class Workspace:
    """Buffers of a model's loss and gradient, kept from one evaluation to the next.

    A buffer taken again under the same name is the same memory. Buffers hold ``rows`` models (a
    group); a smaller group gets the leading rows, which stay contiguous.
    """

    def __init__(self, rows: int, dtype: torch.dtype, device: torch.device) -> None:
        self.rows, self.dtype, self.device = rows, dtype, device
        self._buffers: dict[str, torch.Tensor] = {}
        self._views: dict[tuple[str, int], torch.Tensor] = {}

    def take(self, name: str, shape: tuple[int, ...],
             init: Optional[Callable[[torch.Tensor], Any]] = None) -> torch.Tensor:
        """The buffer ``name`` as a tensor of ``shape`` (models first); ``init`` prepares newly allocated memory."""
        view = self._views.get((name, shape[0]))
        if view is not None and view.shape == shape:
            return view
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape[1:] != shape[1:] or buffer.shape[0] < shape[0]:
            buffer = torch.empty((max(self.rows, shape[0]), *shape[1:]), dtype=self.dtype, device=self.device)
            if init is not None:
                init(buffer)
            self._buffers[name] = buffer
        self._views[(name, shape[0])] = view = buffer[:shape[0]]
        return view


class Model(Protocol):
    """What ``batched_objective`` needs of a corrector (``BatchedCorrector`` implements it)."""

    def _forward(self, blocks: Blocks, x: torch.Tensor, work: Workspace) -> tuple[torch.Tensor, Any]: ...

    def _backward(self, blocks: Blocks, x_t: torch.Tensor, cache: Any, dlogits: torch.Tensor, grads: Blocks,
                  work: Workspace) -> None: ...

    def _logit_bound(self, blocks: Blocks) -> Optional[torch.Tensor]: ...


def unflatten(theta: torch.Tensor, shapes: list[tuple[int, ...]]) -> Blocks:
    """Views ``[K, *shape]`` of flat parameters ``[K, P]``, one per layer of ``shapes``."""
    out, start = [], 0
    for shape in shapes:
        size = math.prod(shape)
        out.append(theta[:, start:start + size].view(theta.shape[0], *shape))
        start += size
    return out


def batched_objective(model: Model, x: torch.Tensor, labels: torch.Tensor, shapes: list[tuple[int, ...]],
                      group: int, penalised: Optional[torch.Tensor],
                      weight_decay: float) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """The objective ``(theta [K', P], index [K']) -> (loss [K'], grad [K', P])`` of the models ``index``.

    ``x`` ``[K, F + 1, N]``: every model's standardized inputs with a row of ones; ``labels``
    ``[K, 1, N]``; ``shapes``: the layers' ``[rows, columns + 1]``; models go through the loss
    ``group`` at a time; ``penalised`` ``[P]`` is 1 on the weights ``weight_decay`` shrinks.
    """
    k, p, n = x.shape[0], sum(math.prod(s) for s in shapes), x.shape[2]
    dtype, device = x.dtype, x.device
    work = Workspace(min(group, k), dtype, device)
    theta_in, grad_out = x.new_empty(k, p), x.new_empty(k, p)
    last = x.new_empty(k, *shapes[-1])  # the output layer with its bias lowered by the shift
    # The weight gradients are products over the images, which MKL runs fastest with images-major inputs.
    x_t = x.transpose(1, 2).contiguous()
    x_subset, x_t_subset, labels_subset = torch.empty_like(x), torch.empty_like(x_t), torch.empty_like(labels)
    picked, total = x.new_empty(k, 1, n), x.new_empty(k, 1, n)
    views: dict[tuple[int, int, bool, bool], tuple] = {}
    held: list[Optional[list[int]]] = [None]  # the subset of models whose inputs x_subset holds

    def group_views(start: int, stop: int, subset: bool, shifted: bool) -> tuple:
        key = (start, stop, subset, shifted)
        if key not in views:
            blocks = unflatten(theta_in[start:stop], shapes)
            if shifted:
                blocks[-1] = last[start:stop]
            sources = (x_subset, x_t_subset, labels_subset) if subset else (x, x_t, labels)
            views[key] = (blocks, unflatten(grad_out[start:stop], shapes), *(t[start:stop] for t in sources),
                          picked[start:stop], total[start:stop])
        return views[key]

    def objective(theta: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = len(index)
        subset = m < k
        if subset:  # a line search asks for the same models again and again: gather their inputs once
            wanted = index.tolist()
            if held[0] != wanted:
                torch.index_select(x, 0, index, out=x_subset[:m])
                torch.index_select(x_t, 0, index, out=x_t_subset[:m])
                torch.index_select(labels, 0, index, out=labels_subset[:m])
                held[0] = wanted
        theta_in[:m].copy_(theta)
        blocks = unflatten(theta_in[:m], shapes)
        shift = shift_of(model._logit_bound(blocks))
        if shift is not None:
            last[:m].copy_(blocks[-1])
            last[:m, :, -1:].sub_(shift)
        for start in range(0, m, group):
            blocks, grads, x_g, x_t_g, y_g, picked_g, total_g = group_views(start, min(start + group, m), subset,
                                                                            shift is not None)
            logits, cache = model._forward(blocks, x_g, work)
            dlogits = softmax_cross_entropy_(logits, y_g, shift is not None, picked_g, total_g)
            model._backward(blocks, x_t_g, cache, dlogits, grads, work)
        loss, grad = loss_of(total[:m], picked[:m]), grad_out[:m].clone()
        if penalised is not None:  # once over all models: per group it was a dozen tiny operations
            weights = theta * penalised
            loss += (0.5 * weight_decay) * torch.linalg.vecdot(weights, weights)
            grad.add_(weights, alpha=weight_decay)
        return loss, grad

    return objective
