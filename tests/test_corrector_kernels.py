"""The fits' fused arithmetic against the textbook: the cross-entropy about a logit bound, the bound itself,
the objective's reused buffers and views, and the batched objective against one model at a time."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodtco.correction import BatchedMLPCorrector
from neurodtco.correction.base import cache_size_bytes
from neurodtco.correction.objective import (_SHIFT_LIMIT, Workspace, cross_entropy, loss_of, shift_of,
                                           softmax_cross_entropy_)


def _logits(scale: float, offset: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    logits = scale * torch.randn(3, 10, 40, generator=gen, dtype=torch.float64) + offset
    return logits, torch.randint(0, 10, (3, 1, 40), generator=gen)


def _consume(logits: torch.Tensor, labels: torch.Tensor, shifted: bool) -> tuple[torch.Tensor, torch.Tensor]:
    picked, total = logits.new_empty(labels.shape), logits.new_empty(labels.shape)
    grad = softmax_cross_entropy_(logits, labels, shifted, picked, total)
    return loss_of(total, picked), grad


@pytest.mark.parametrize("scale,offset,bound", [(3.0, 0.0, None), (3.0, 0.0, "true"), (3.0, 0.0, "loose"),
                                                (50.0, 0.0, "true"), (1.0, -250.0, "true"), (400.0, 0.0, "true")])
def test_the_cross_entropy_about_a_bound_is_the_textbook_one(scale, offset, bound):
    """Shifting by any valid bound (or falling back above the limit) changes nothing but rounding."""
    logits, labels = _logits(scale, offset)
    if bound is not None:
        top = logits.abs().flatten(1).amax(dim=1).reshape(3, 1, 1)
        bound = top if bound == "true" else 2.0 * top  # a loose bound (never below the logits) is as good
    leaf = logits.clone().requires_grad_(True)
    reference = torch.nn.functional.cross_entropy(leaf, labels.squeeze(1), reduction="none").mean(dim=1)
    (want_grad,) = torch.autograd.grad(reference.sum(), leaf)
    shift = shift_of(bound)
    assert (shift is None) == (bound is None or scale == 400.0)
    loss, grad = _consume(logits.clone() if shift is None else logits - shift, labels, shift is not None)
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    np.testing.assert_allclose(loss.numpy(), reference.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(grad.numpy(), want_grad.numpy(), rtol=1e-9, atol=1e-16)
    np.testing.assert_allclose(cross_entropy(logits, labels)[0].numpy(), loss.numpy(), rtol=1e-12)


def test_a_bound_above_the_limit_falls_back_to_the_largest_logit():
    """Logits around -1000 about a bound of 1000 would underflow every term: the limit refuses the shift."""
    logits, labels = _logits(1.0, -1000.0)
    bound = torch.full((3, 1, 1), 1001.0, dtype=torch.float64)
    assert float(bound.max()) > _SHIFT_LIMIT and shift_of(bound) is None
    assert shift_of(torch.full((3, 1, 1), _SHIFT_LIMIT, dtype=torch.float64)) is not None
    loss, _ = _consume(logits.clone(), labels, False)
    np.testing.assert_allclose(loss.numpy(), cross_entropy(logits, labels)[0].numpy(), rtol=1e-12)
    leaf = logits.clone()
    np.testing.assert_allclose(loss.numpy(), torch.nn.functional.cross_entropy(
        leaf, labels.squeeze(1), reduction="none").mean(dim=1).numpy(), rtol=1e-12)


@pytest.mark.parametrize("activation", ["tanh", "hardtanh"])
def test_the_mlp_logit_bound_holds_for_any_input(activation):
    """Saturating activations bound every logit by ``sum |w2| + |b2|``, whatever the inputs."""
    model = BatchedMLPCorrector(hidden=5, activation=activation)
    gen = torch.Generator().manual_seed(2)
    params = {name: 3.0 * torch.randn(4, *p.shape, generator=gen, dtype=torch.float64)
              for name, p in model._init_params(10, 10, gen).items()}
    x = 100.0 * torch.randn(4, 10, 500, generator=gen, dtype=torch.float64)
    logits = model._logits(params, x)
    bound = model._logit_bound(model._blocks(params))
    rows = params["w2"].abs().sum(dim=2, keepdim=True) + params["b2"].abs()
    torch.testing.assert_close(bound, rows.amax(dim=1, keepdim=True), rtol=1e-15, atol=0)
    assert bound.shape == (4, 1, 1)
    assert bool((logits.abs() <= bound).all())
    assert bool((logits.abs().flatten(1).amax(dim=1) > 0.5 * bound.flatten()).all())  # and it is not vacuous


def test_relu_has_no_logit_bound():
    model = BatchedMLPCorrector(hidden=3, activation="relu")
    params = model._init_params(10, 10, torch.Generator().manual_seed(0))
    assert model._logit_bound(model._blocks({name: p[None] for name, p in params.items()})) is None


@pytest.mark.parametrize("text,expected", [("2048K\n", 2 << 20), ("1M", 1 << 20), ("512k", 512 << 10), ("4096", 4096)])
def test_cache_sizes_are_read_as_linux_writes_them(text, expected):
    assert cache_size_bytes(text) == expected


def test_without_a_cache_size_the_default_is_used(monkeypatch, tmp_path):
    import neurodtco.correction.base as base

    monkeypatch.setattr(base, "_L2_SIZE_FILE", tmp_path / "absent")
    assert base._l2_bytes(12345) == 12345
    (tmp_path / "size").write_text("1024K\n")
    monkeypatch.setattr(base, "_L2_SIZE_FILE", tmp_path / "size")
    assert base._l2_bytes(12345) == 1 << 20


# ----- the batched objective: buffers, views, groups and subsets ------------------------------------

def test_a_workspace_hands_back_the_same_memory_and_leading_rows_to_smaller_groups():
    work = Workspace(4, torch.float64, torch.device("cpu"))
    calls = []
    full = work.take("a", (4, 3, 5), init=lambda b: calls.append(b.shape))
    part = work.take("a", (2, 3, 5), init=lambda b: calls.append(b.shape))
    assert calls == [(4, 3, 5)]  # prepared once, when allocated
    assert part.data_ptr() == full.data_ptr() and part.is_contiguous()
    assert work.take("a", (4, 3, 5)) is full  # the same view, not a new one
    wider = work.take("a", (4, 3, 6))  # another shape is other memory
    assert wider.shape == (4, 3, 6) and wider.data_ptr() != full.data_ptr()
    assert work.take("b", (6, 2)).shape == (6, 2)  # more models than a group: grown to fit


def _mlp_problem(k: int = 5, n: int = 60, h: int = 3):
    gen = torch.Generator().manual_seed(7)
    model = BatchedMLPCorrector(hidden=h)
    x = torch.randn(k, 4, n, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 3, (k, 1, n), generator=gen)
    params = {name: torch.randn(k, *p.shape, generator=gen, dtype=torch.float64)
              for name, p in model._init_params(4, 3, gen).items()}
    blocks = model._blocks(params)
    theta = torch.cat([b.flatten(1) for b in blocks], dim=1)
    return model, x, labels, params, [tuple(b.shape[1:]) for b in blocks], theta


def _textbook(params: dict, x: torch.Tensor, labels: torch.Tensor, weight_decay: float):
    """Loss and gradient by autograd of the written-out MLP, penalty on w1 and w2."""
    leaves = {name: p.clone().requires_grad_(True) for name, p in params.items()}
    z = leaves["w2"] @ torch.tanh(leaves["w1"] @ x + leaves["b1"]) + leaves["b2"]
    loss = torch.nn.functional.cross_entropy(z, labels.squeeze(1), reduction="none").mean(dim=1)
    loss = loss + 0.5 * weight_decay * (leaves["w1"].pow(2).sum(dim=(1, 2)) + leaves["w2"].pow(2).sum(dim=(1, 2)))
    grads = torch.autograd.grad(loss.sum(), list(leaves.values()))
    return loss.detach(), dict(zip(leaves, grads))


@pytest.mark.parametrize("group", [1, 2, 5])
def test_the_batched_objective_is_the_textbook_one_for_any_group_size_and_subset(group):
    """Groups of any size, and subsets of the models in any order and repeated, give each model its own
    loss and gradient (the reused buffers and the cached inputs of a subset never leak between calls)."""
    from neurodtco.correction.objective import batched_objective, unflatten, with_ones_row

    model, x, labels, params, shapes, theta = _mlp_problem()
    mask = torch.cat([torch.nn.functional.pad(torch.ones(r, c - 1, dtype=torch.float64), (0, 1)).flatten()
                      for r, c in shapes])
    objective = batched_objective(model, with_ones_row(x), labels, shapes, group, mask, 1e-2)
    want_loss, want_grads = _textbook(params, x, labels, 1e-2)
    for index in ([0, 1, 2, 3, 4], [3, 1], [4], [3, 1], [0, 1, 2, 3, 4], [2, 0, 4]):
        idx = torch.tensor(index)
        loss, grad = objective(theta[idx].clone(), idx)
        np.testing.assert_allclose(loss.numpy(), want_loss[idx].numpy(), rtol=1e-12)
        got = model._params(unflatten(grad, shapes))
        for name, want in want_grads.items():
            np.testing.assert_allclose(got[name].numpy(), want[idx].numpy(), rtol=1e-10, atol=1e-14, err_msg=name)


def test_the_objective_returns_fresh_tensors_that_later_calls_leave_alone():
    """The solver keeps a loss and gradient across evaluations: they must not be views of the reused buffers."""
    from neurodtco.correction.objective import batched_objective, with_ones_row

    model, x, labels, _, shapes, theta = _mlp_problem()
    objective = batched_objective(model, with_ones_row(x), labels, shapes, 2, None, 0.0)
    everyone = torch.arange(5)
    loss, grad = objective(theta, everyone)
    kept_loss, kept_grad = loss.clone(), grad.clone()
    objective(theta * 0.5, everyone)
    objective(theta[[1, 3]] * 2.0, torch.tensor([1, 3]))
    assert torch.equal(loss, kept_loss) and torch.equal(grad, kept_grad)
