"""The batched L-BFGS against analytic minima, and a model's path independent of the batch it runs in."""

from __future__ import annotations

import numpy as np
import torch

from neurodtco.correction.solvers import lbfgs


def _quadratics(k: int, p: int, seed: int):
    """``k`` strictly convex quadratics ``1/2 (t - c)^T A (t - c)`` with known minimisers ``c``."""
    gen = torch.Generator().manual_seed(seed)
    m = torch.randn(k, p, p, generator=gen, dtype=torch.float64)
    a = m @ m.transpose(1, 2) + 0.5 * torch.eye(p, dtype=torch.float64)
    c = torch.randn(k, p, generator=gen, dtype=torch.float64)

    def objective(theta: torch.Tensor, index: torch.Tensor):
        d = theta - c[index]
        g = torch.einsum("kij,kj->ki", a[index], d)
        return 0.5 * (d * g).sum(dim=1), g

    return objective, c


def _rosenbrocks(scales: torch.Tensor):
    """Non-convex valleys ``sum s (t[i+1] - t[i]^2)^2 + (1 - t[i])^2``, one scale per model (minimum at all ones)."""

    def objective(theta: torch.Tensor, index: torch.Tensor):
        s = scales[index, None]
        u, v = theta[:, :-1], theta[:, 1:]
        r = v - u * u
        loss = (s * r * r + (1 - u) ** 2).sum(dim=1)
        grad = torch.zeros_like(theta)
        grad[:, :-1] = -4 * s * r * u - 2 * (1 - u)
        grad[:, 1:] += 2 * s * r
        return loss, grad

    return objective


def test_lbfgs_reaches_each_quadratics_minimum_and_freezes_a_model_already_there():
    objective, c = _quadratics(4, 6, seed=0)
    theta0 = torch.zeros(4, 6, dtype=torch.float64)
    theta0[2] = c[2]  # this model starts at its optimum: zero gradient, zero iterations
    theta, history, iterations, evaluations = lbfgs(objective, theta0, max_iter=200, tol=1e-10)
    np.testing.assert_allclose(theta.numpy(), c.numpy(), atol=1e-8)
    assert iterations[2] == 0 and torch.equal(theta[2], c[2])
    assert all(0 < iterations[i] < 200 for i in (0, 1, 3))
    assert history[-1].max() < 1e-15
    # evaluations count whole batches: at least the first one, then one model-evaluation per model-iteration
    assert evaluations * 4 >= 4 + iterations.sum()


def test_a_models_path_is_the_same_alone_and_in_a_batch_where_others_stop_early():
    """In the batch, models stop at different iterations (the line search then runs on subsets); alone,
    each model is always the whole batch. The paths must be the same."""
    scales = torch.tensor([1.0, 100.0, 10.0], dtype=torch.float64)
    objective = _rosenbrocks(scales)
    theta0 = torch.tensor([[-1.2, 1.0, 0.5, -0.3]] * 3, dtype=torch.float64)
    theta, _, iterations, _ = lbfgs(objective, theta0, max_iter=150, tol=1e-9)
    assert len(set(iterations.tolist())) > 1  # the models did stop at different iterations
    for k in range(3):
        alone = _rosenbrocks(scales[k:k + 1])
        single, _, its, _ = lbfgs(alone, theta0[k:k + 1], max_iter=150, tol=1e-9)
        assert its[0] == iterations[k]
        np.testing.assert_allclose(single[0].numpy(), theta[k].numpy(), rtol=0, atol=1e-12)
