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
    rho = torch.zeros(memory, k, dtype=dtype, device=device)  # 0 marks a pair a model did not accept (no effect)
    gamma = torch.ones(k, dtype=dtype, device=device)
    active = torch.ones(k, dtype=torch.bool, device=device)
    iterations = torch.zeros(k, dtype=torch.int64, device=device)
    history = [_numpy(value)]
    for it in range(max_iter):
        active &= grad.abs().amax(dim=1) > tol
        if not bool(active.any()):
            break
        # Two-loop recursion over the stored pairs, newest first, then oldest first.
        slots = [(it - 1 - j) % memory for j in range(min(it, memory))]
        q = grad.clone()
        alphas = []
        for j in slots:  # fused products: the recursion is a few dozen tiny operations per iteration
            a = rho[j] * torch.linalg.vecdot(s_hist[j], q)
            q.addcmul_(a[:, None], y_hist[j], value=-1.0)
            alphas.append(a)
        r = gamma[:, None] * q
        for j, a in zip(reversed(slots), reversed(alphas)):
            b = rho[j] * torch.linalg.vecdot(y_hist[j], r)
            r.addcmul_(s_hist[j], (a - b)[:, None])
        direction = -r
        slope = (grad * direction).sum(dim=1)
        uphill = slope >= 0  # lost curvature information: fall back to steepest descent
        if bool(uphill.any()):
            direction[uphill] = -grad[uphill]
            slope = torch.where(uphill, -(grad * grad).sum(dim=1), slope)
        # First step scaled as in torch.optim.LBFGS (the gradient's size says nothing yet about curvature).
        t = torch.ones(k, dtype=dtype, device=device) if it else torch.clamp(1.0 / grad.abs().sum(dim=1), max=1.0)
        # Each trial point is evaluated with its gradient: the first trial (t = 1) is usually accepted,
        # so an iteration mostly costs one forward and one backward pass.
        step = torch.zeros(k, dtype=dtype, device=device)
        new_value, new_grad = value.clone(), grad.clone()
        waiting = active.clone()
        for _ in range(40):
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
        active &= step > 0  # no step lowers this model's loss: it is at its optimum within rounding
        new_theta = theta + step[:, None] * direction
        s_vec, y_vec = new_theta - theta, new_grad - grad
        sy = (s_vec * y_vec).sum(dim=1)
        accept = active & (sy > tiny)
        slot = it % memory
        s_hist[slot], y_hist[slot] = s_vec, y_vec
        rho[slot] = torch.where(accept, 1.0 / torch.where(accept, sy, torch.ones_like(sy)), torch.zeros_like(sy))
        gamma = torch.where(accept, sy / (y_vec * y_vec).sum(dim=1).clamp_min(tiny), gamma)
        theta = torch.where(active[:, None], new_theta, theta)
        value = torch.where(active, new_value, value)
        grad = torch.where(active[:, None], new_grad, grad)
        iterations += active
        if it % 50 == 0:
            history.append(_numpy(value))
    history.append(_numpy(value))
    return theta, history, iterations.cpu().numpy(), evaluations
