"""The compiled corrector fits against independent truth: the loss and gradient of the written-out
models by autograd, the torch L-BFGS on the same problems, and the fallback where no compiler is."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neurodtco.correction import BatchedAffineCalibration, BatchedLogisticCorrector, BatchedMLPCorrector, native
from neurodtco.correction.objective import batched_objective, with_ones_row
from neurodtco.correction.solvers import lbfgs

pytestmark = pytest.mark.skipif(not native.available() and native._compiler() is None,
                                reason="no C compiler on this machine (the torch fits are tested elsewhere)")


def test_a_machine_with_a_compiler_builds_the_fits():
    """Where a compiler exists the compiled fits must be there: a broken build may not pass as a fallback."""
    assert native.available(), native.unavailable_reason()


def _reference(kind: str, activation: str, x: torch.Tensor, y: torch.Tensor, theta: torch.Tensor, c: int,
               hidden: int, decay: float) -> tuple[float, np.ndarray]:
    """The mean cross-entropy plus 0.5 decay |W|^2 of the written-out model, and its gradient by autograd."""
    theta = theta.clone().requires_grad_(True)
    f1 = x.shape[0]
    v = x[:-1].T  # [N, F] inputs without the ones row
    if kind == "mlp":
        w1 = theta[:hidden * f1].view(hidden, f1)
        w2 = theta[hidden * f1:].view(c, hidden + 1)
        pre = v @ w1[:, :-1].T + w1[:, -1]
        act = {"tanh": torch.tanh, "relu": torch.relu, "hardtanh": torch.nn.functional.hardtanh}[activation](pre)
        logits = act @ w2[:, :-1].T + w2[:, -1]
        weights = [w1[:, :-1], w2[:, :-1]]
    elif kind == "linear":
        w = theta.view(c, f1)
        logits = v @ w[:, :-1].T + w[:, -1]
        weights = [w[:, :-1]]
    else:
        g = theta.view(c, 2)
        logits = v * g[:, 0] + g[:, 1]
        weights = []
    loss = torch.nn.functional.cross_entropy(logits, y) + 0.5 * decay * sum((w ** 2).sum() for w in weights)
    (grad,) = torch.autograd.grad(loss, theta)
    return float(loss.detach()), grad.numpy()


def _problem(n: int, hidden: int, kind: str, scale: float, seed: int):
    gen = torch.Generator().manual_seed(seed)
    x = with_ones_row(torch.randn(1, 10, n, generator=gen, dtype=torch.float64))[0]
    y = torch.randint(0, 10, (n,), generator=gen)
    p = native._shape(kind, 11, hidden, 10)
    theta = scale * torch.randn(p, generator=gen, dtype=torch.float64)
    mask = None
    if kind == "mlp":
        mask = torch.cat([torch.nn.functional.pad(torch.ones(hidden, 10, dtype=torch.float64), (0, 1)).flatten(),
                          torch.nn.functional.pad(torch.ones(10, hidden, dtype=torch.float64), (0, 1)).flatten()])
    elif kind == "linear":
        mask = torch.nn.functional.pad(torch.ones(10, 10, dtype=torch.float64), (0, 1)).flatten()
    return x, y, theta, mask


@pytest.mark.parametrize("kind,activation,hidden", [("mlp", "tanh", 1), ("mlp", "tanh", 8), ("mlp", "tanh", 33),
                                                    ("mlp", "relu", 5), ("mlp", "hardtanh", 5), ("linear", "tanh", 0),
                                                    ("affine", "tanh", 0)])
@pytest.mark.parametrize("n", [1, 37, 64, 129])
@pytest.mark.parametrize("scale", [0.3, 30.0])
def test_the_compiled_loss_and_gradient_are_autograds(kind, activation, hidden, n, scale):
    """Any image count (whole blocks of 64 or not), small and saturating weights, with the penalty."""
    x, y, theta, mask = _problem(n, hidden, kind, scale, seed=n + hidden)
    decay = 1e-3
    want_loss, want_grad = _reference(kind, activation, x, y, theta, 10, hidden, decay if mask is not None else 0.0)
    loss, grad = native.objective(kind, activation, x.numpy(), y.numpy(), theta.numpy(), 10, hidden,
                                  None if mask is None else mask.numpy(), decay)
    assert math.isclose(loss, want_loss, rel_tol=1e-13, abs_tol=1e-15)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-11, atol=1e-14 * max(1.0, np.abs(want_grad).max()))


def test_tanh_keeps_its_relative_precision_near_zero():
    """A hidden layer of tiny pre-activations: tanh(x) ~ x must not lose digits to 1 - e^(-2x)."""
    x, y, theta, _ = _problem(64, 4, "mlp", 1e-9, seed=3)
    want_loss, want_grad = _reference("mlp", "tanh", x, y, theta, 10, 4, 0.0)
    loss, grad = native.objective("mlp", "tanh", x.numpy(), y.numpy(), theta.numpy(), 10, 4)
    assert math.isclose(loss, want_loss, rel_tol=1e-14)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-9, atol=1e-25)


def test_logits_a_thousand_apart_stay_finite():
    """Softmax about each image's largest logit: huge spreads underflow to zero weight, never to NaN."""
    x, y, theta, _ = _problem(70, 0, "linear", 300.0, seed=4)
    want_loss, want_grad = _reference("linear", "tanh", x, y, theta, 10, 0, 0.0)
    loss, grad = native.objective("linear", "tanh", x.numpy(), y.numpy(), theta.numpy(), 10, 0)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    assert math.isclose(loss, want_loss, rel_tol=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-9, atol=1e-12 * np.abs(want_grad).max())


def _torch_fit(model, x: np.ndarray, y: np.ndarray, max_iter: int):
    """The torch L-BFGS on the same standardized inputs, start and penalty as ``fit`` gives the C one."""
    k, n, f = x.shape
    xt = torch.as_tensor(x)
    xs = ((xt - xt.mean(1, keepdim=True)) / xt.std(1, keepdim=True, unbiased=False)).transpose(1, 2).contiguous()
    init = model._blocks(model._init_params(f, 10, torch.Generator().manual_seed(0)))
    shapes = [tuple(b.shape) for b in init]
    theta0 = torch.cat([b.reshape(1, -1) for b in init], dim=1).repeat(k, 1)
    mask = torch.cat([torch.nn.functional.pad(torch.full((r, cols - 1), float(w in model._penalised),
                                                         dtype=torch.float64), (0, 1)).flatten()
                      for (w, _), (r, cols) in zip(model._layers, shapes)])
    penalised = mask if model._penalised else None
    objective = batched_objective(model, with_ones_row(xs), torch.as_tensor(y).reshape(k, 1, n), shapes, k,
                                  penalised, model.weight_decay)
    return lbfgs(objective, theta0, max_iter, model.tol)


def _data(k: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Separable-ish classes: the voltages of class j lean towards output j."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, (k, n))
    x = rng.normal(size=(k, n, 10)) + 1.5 * np.eye(10)[y]
    return x, y


@pytest.mark.parametrize("make", [lambda: BatchedLogisticCorrector(max_iter=60),
                                  lambda: BatchedAffineCalibration(max_iter=60),
                                  lambda: BatchedMLPCorrector(hidden=3, max_iter=25)])
def test_the_compiled_lbfgs_follows_the_torch_one(make):
    """Same iterations, evaluations, loss history and parameters as solvers.lbfgs, up to rounding."""
    x, y = _data(3, 150, seed=5)
    model = make().fit(x, y)
    assert model.backend_ == "compiled"
    theta, history, iterations, evaluations = _torch_fit(make(), x, y, model.iterations)
    np.testing.assert_array_equal(model.n_iter_, iterations)
    assert model.n_evaluations_ == pytest.approx(evaluations)
    assert model.loss_history_.shape == np.stack(history).shape
    np.testing.assert_allclose(model.loss_history_, np.stack(history), rtol=1e-9)
    fitted = torch.cat([b.reshape(3, -1) for b in model._blocks(model.params_)], dim=1)
    np.testing.assert_allclose(fitted.numpy(), theta.numpy(), rtol=1e-6, atol=1e-8)


def test_a_converged_model_stops_and_is_recorded_as_torch_records_it():
    """A loose tolerance stops the models early, at different iterations: history and counts as solvers.lbfgs."""
    x, y = _data(4, 120, seed=6)
    model = BatchedLogisticCorrector(max_iter=300, tol=3e-3).fit(x, y)
    _, history, iterations, evaluations = _torch_fit(BatchedLogisticCorrector(max_iter=300, tol=3e-3), x, y, 300)
    assert int(iterations.max()) < 300 and len(set(iterations.tolist())) > 1
    np.testing.assert_array_equal(model.n_iter_, iterations)
    assert model.n_evaluations_ == pytest.approx(evaluations)
    np.testing.assert_allclose(model.loss_history_, np.stack(history), rtol=1e-9)


def test_threads_split_the_models_without_changing_them():
    x, y = _data(5, 100, seed=7)
    one = BatchedMLPCorrector(hidden=4, max_iter=40).fit(x, y)
    two = BatchedMLPCorrector(hidden=4, max_iter=40, n_threads=2).fit(x, y)
    for name in one.params_:
        np.testing.assert_array_equal(one.params_[name].numpy(), two.params_[name].numpy())
    np.testing.assert_array_equal(one.loss_history_, two.loss_history_)


def test_a_model_fitted_alone_is_the_model_fitted_in_a_batch():
    x, y = _data(3, 90, seed=8)
    batch = BatchedMLPCorrector(hidden=2, max_iter=50).fit(x, y)
    alone = BatchedMLPCorrector(hidden=2, max_iter=50).fit(x[1:2], y[1:2])
    for name in batch.params_:
        np.testing.assert_array_equal(batch.params_[name][1].numpy(), alone.params_[name][0].numpy())


def test_without_a_compiler_the_fits_run_in_torch_and_say_so(monkeypatch, tmp_path):
    monkeypatch.setenv("NEURODTCO_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setattr(native.shutil, "which", lambda name: None)
    native._library.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="no C compiler found"):
            assert not native.available()
        x, y = _data(2, 60, seed=9)
        model = BatchedLogisticCorrector(max_iter=20).fit(x, y)
        assert model.backend_ == "torch"
        with pytest.raises(RuntimeError, match="not available: no C compiler"):
            native.fit("linear", "tanh", np.zeros((1, 11, 4)), np.zeros((1, 4), np.int64), np.zeros((1, 110)), 10,
                       0, None, 0.0, 5, 1e-5)
    finally:
        native._library.cache_clear()  # the next caller builds (or finds) the library again


def test_a_compiler_that_fails_is_reported_with_its_message(monkeypatch, tmp_path):
    broken = tmp_path / "cc"
    broken.write_text("#!/bin/sh\necho 'cc: fatal error: out of licences' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("NEURODTCO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", str(broken))
    native._library.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="out of licences"):
            assert not native.available()
    finally:
        native._library.cache_clear()


def test_native_zero_asks_for_torch_without_a_warning(monkeypatch, recwarn):
    monkeypatch.setenv("NEURODTCO_NATIVE", "0")
    native._library.cache_clear()
    try:
        x, y = _data(2, 50, seed=10)
        assert BatchedMLPCorrector(hidden=2, max_iter=10).fit(x, y).backend_ == "torch"
        assert "NEURODTCO_NATIVE=0" in native.unavailable_reason()
        assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    finally:
        native._library.cache_clear()


@pytest.mark.parametrize("bad,match", [(dict(kind="conv"), "expected one of"),
                                       (dict(theta=np.zeros(7)), "7 parameters do not fit"),
                                       (dict(kind="affine", theta=np.zeros(20), f=4), "one input per class")])
def test_bad_shapes_are_refused_before_the_c_code_reads_them(bad, match):
    f = bad.get("f", 10)
    x = np.zeros((f + 1, 8))
    with pytest.raises(ValueError, match=match):
        native.objective(bad.get("kind", "mlp"), "tanh", x, np.zeros(8, np.int64), bad.get("theta", np.zeros(218)),
                         10, 8)


def test_the_portable_build_computes_the_same(monkeypatch, tmp_path):
    """Machines without AVX-512 compile the generic vector code (min, max, rounding and 2^k by hand)."""
    monkeypatch.setenv("NEURODTCO_CACHE", str(tmp_path))
    monkeypatch.setattr(native, "_FLAGS", (["-O2", "-DNEURODTCO_GENERIC"],))
    native._library.cache_clear()
    try:
        assert native.available(), native.unavailable_reason()
        assert list(tmp_path.glob("native/fit-*.so"))
        for kind, activation, hidden, scale in [("mlp", "tanh", 6, 0.3), ("mlp", "tanh", 6, 30.0),
                                                ("linear", "tanh", 0, 300.0), ("affine", "tanh", 0, 1.0)]:
            x, y, theta, mask = _problem(100, hidden, kind, scale, seed=11)
            want_loss, want_grad = _reference(kind, activation, x, y, theta, 10, hidden, 0.0)
            loss, grad = native.objective(kind, activation, x.numpy(), y.numpy(), theta.numpy(), 10, hidden)
            assert math.isclose(loss, want_loss, rel_tol=1e-12)
            np.testing.assert_allclose(grad, want_grad, rtol=1e-9, atol=1e-12 * max(1.0, np.abs(want_grad).max()))
    finally:
        native._library.cache_clear()
