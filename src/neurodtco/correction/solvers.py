"""The full-batch optimizers of the correctors, batched over ``K`` independent models.

Both take the per-model objective and the stacked initial parameters ``[K, P]`` and return the
final parameters, the loss history (every 50 steps, and the last), the iterations each model ran
and the number of whole-batch objective evaluations.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

#: per-model loss ``[K']`` and its gradient ``[K', P]`` at the parameters ``[K', P]`` of the models ``index`` ``[K']``
Objective = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
#: final parameters ``[K, P]``, loss history, iterations per model ``[K]``, whole-batch evaluations
Fit = tuple[torch.Tensor, list[np.ndarray], np.ndarray, float]


def autograd_objective(loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Objective:
    """An ``Objective`` from a per-model loss ``[K']`` alone, its gradient by autograd (for models without a hand gradient)."""

    def objective(theta: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            theta = theta.detach().requires_grad_(True)
            value = loss(theta, index)
            (grad,) = torch.autograd.grad(value.sum(), theta)  # the sum keeps each model's gradient its own
        return value.detach(), grad

    return objective


def adam(objective: Objective, theta0: torch.Tensor, steps: int, learning_rate: float) -> Fit:
    """Full-batch Adam with a cosine decay of the step to zero; every model runs every step."""
    theta = theta0.clone()
    everyone = torch.arange(theta0.shape[0], device=theta0.device)
    opt = torch.optim.Adam([theta], lr=learning_rate)
    history = []
    for step in range(steps):
        for group in opt.param_groups:  # the last, small steps settle each model near its optimum
            group["lr"] = 0.5 * learning_rate * (1.0 + math.cos(math.pi * step / steps))
        loss, theta.grad = objective(theta, everyone)  # each model's gradient is its own
        opt.step()
        if step % 50 == 0:
            history.append(_numpy(loss))
    history.append(_numpy(objective(theta, everyone)[0]))
    return theta, history, np.full(theta0.shape[0], steps), steps + 1


def _numpy(values: torch.Tensor) -> np.ndarray:
    return values.detach().double().cpu().numpy()


def lbfgs(objective: Objective, theta0: torch.Tensor, max_iter: int, tol: float, memory: int = 10) -> Fit:
    """L-BFGS with a backtracking (Armijo) line search, batched over independent models.

    Every model keeps its own curvature pairs, its own step length and its own stopping test
    (largest gradient entry below ``tol``, or no step that lowers its loss); a stopped model is frozen.
    So a model's path never depends on the others in the batch: fitting it alone gives the same model.
    Only the models still moving (and, in a line search, still backtracking) are evaluated.
    """
    k, p = theta0.shape
    dtype = theta0.dtype
    tiny = torch.finfo(dtype).tiny
    evaluations = 0.0

    device = theta0.device

    def value_and_grad(theta: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal evaluations
        evaluations += len(index) / k
        return objective(theta, index)

    everyone = torch.arange(k, device=device)
    theta = theta0.clone()
    value, grad = value_and_grad(theta, everyone)
    s_hist = torch.zeros(memory, k, p, dtype=dtype, device=device)
    y_hist = torch.zeros(memory, k, p, dtype=dtype, device=device)
    rho = torch.zeros(memory, k, 1, dtype=dtype, device=device)  # 0 marks a pair a model did not accept (no effect)
    # Views of each stored pair, made once: the recursion below is a few dozen tiny operations per
    # iteration, and on models this small each operation costs its dispatch, not its arithmetic.
    s_slot, y_slot, rho_slot = list(s_hist.unbind(0)), list(y_hist.unbind(0)), list(rho.unbind(0))
    gamma = torch.ones(k, 1, dtype=dtype, device=device)
    active = torch.ones(k, dtype=torch.bool, device=device)
    iterations = torch.zeros(k, dtype=torch.int64, device=device)
    history = [_numpy(value)]
    for it in range(max_iter):
        active &= grad.abs().amax(dim=1) > tol
        if not bool(active.any()):
            break
        everyone_moves = bool(active.all())
        # Two-loop recursion over the stored pairs, newest first, then oldest first.
        slots = [(it - 1 - j) % memory for j in range(min(it, memory))]
        q = grad.clone()
        alphas = []
        for j in slots:
            a = torch.linalg.vecdot(s_slot[j], q).unsqueeze_(1).mul_(rho_slot[j])
            q.addcmul_(a, y_slot[j], value=-1.0)
            alphas.append(a)
        direction = q.mul_(gamma)
        for j, a in zip(reversed(slots), reversed(alphas)):
            b = torch.linalg.vecdot(y_slot[j], direction).unsqueeze_(1).mul_(rho_slot[j])
            direction.addcmul_(s_slot[j], a.sub_(b))
        direction.neg_()
        slope = torch.linalg.vecdot(grad, direction)
        uphill = slope >= 0  # lost curvature information: fall back to steepest descent
        if bool(uphill.any()):
            direction[uphill] = -grad[uphill]
            slope = torch.where(uphill, -torch.linalg.vecdot(grad, grad), slope)
        # First step scaled as in torch.optim.LBFGS (the gradient's size says nothing yet about curvature).
        t = torch.ones(k, dtype=dtype, device=device) if it else torch.clamp(1.0 / grad.abs().sum(dim=1), max=1.0)
        step, new_value, new_grad = _line_search(value_and_grad, theta, value, grad, direction, slope, t, active,
                                                 everyone if everyone_moves else None)
        active &= step > 0  # no step lowers this model's loss: it is at its optimum within rounding
        slot = it % memory
        new_theta = torch.addcmul(theta, step[:, None], direction)
        s_vec = torch.sub(new_theta, theta, out=s_slot[slot])
        y_vec = torch.sub(new_grad, grad, out=y_slot[slot])
        sy = torch.linalg.vecdot(s_vec, y_vec).unsqueeze_(1)
        accept = active[:, None] & (sy > tiny)
        rho_slot[slot].copy_(torch.where(accept, sy.reciprocal(), 0.0))
        gamma = torch.where(accept, sy / torch.linalg.vecdot(y_vec, y_vec).unsqueeze_(1).clamp_min_(tiny), gamma)
        if bool(active.all()):
            theta, value, grad = new_theta, new_value, new_grad
        else:
            theta = torch.where(active[:, None], new_theta, theta)
            value = torch.where(active, new_value, value)
            grad = torch.where(active[:, None], new_grad, grad)
        iterations += active
        if it % 50 == 0:
            history.append(_numpy(value))
    history.append(_numpy(value))
    return theta, history, iterations.cpu().numpy(), evaluations


def _line_search(value_and_grad: Objective, theta: torch.Tensor, value: torch.Tensor, grad: torch.Tensor,
                 direction: torch.Tensor, slope: torch.Tensor, t: torch.Tensor, active: torch.Tensor,
                 everyone: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backtracking (Armijo) steps ``[K]`` of the ``active`` models from trial steps ``t``, halved until accepted.

    Each trial point is evaluated with its gradient: the first trial (t = 1) is usually accepted, so an
    iteration mostly costs one forward and one backward pass; ``everyone`` (all model indices, when
    all are active) lets that common case skip the gathers and scatters of a subset. Returns the steps
    (0 where none lowered a model's loss within 40 halvings) and the loss and gradient there.
    """
    if everyone is not None:
        trial_value, trial_grad = value_and_grad(torch.addcmul(theta, t[:, None], direction), everyone)
        ok = trial_value <= value + 1e-4 * t * slope
        if bool(ok.all()):
            return t, trial_value, trial_grad
        first = (everyone, trial_value, trial_grad, ok)
    else:
        first = None
    step = torch.zeros_like(value)
    new_value, new_grad = value.clone(), grad.clone()
    waiting = active.clone()
    for _ in range(40):
        if first is not None:
            idx, trial_value, trial_grad, ok = first
            first = None
        else:
            idx = waiting.nonzero().squeeze(1)
            trial_value, trial_grad = value_and_grad(theta[idx] + t[idx, None] * direction[idx], idx)
            ok = trial_value <= value[idx] + 1e-4 * t[idx] * slope[idx]
        done = idx[ok]
        step[done] = t[done]
        new_value[done] = trial_value[ok]
        new_grad[done] = trial_grad[ok]
        waiting[done] = False
        if not bool(waiting.any()):
            break
        t = torch.where(waiting, 0.5 * t, t)
    return step, new_value, new_grad
