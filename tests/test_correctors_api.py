"""Correctors follow scikit-learn's estimator contract: get_params/set_params/clone, checked inputs, unchanged fits."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import sklearn.base
import torch
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.validation import check_is_fitted

from neurodtco.correction import (CORRECTORS, AffineCalibration, BatchedAffineCalibration, BatchedLastLayerRetrain,
                                  BatchedLogisticCorrector, BatchedMLPCorrector, LastLayerRetrain, LogisticCorrector,
                                  MLPCorrector, NotFittedError)
from neurodtco.correction.objective import Workspace, cross_entropy, with_ones_row

ALL = [MLPCorrector, AffineCalibration, LogisticCorrector, LastLayerRetrain, BatchedMLPCorrector,
       BatchedAffineCalibration, BatchedLogisticCorrector, BatchedLastLayerRetrain]
BASE_PARAMS = {"features", "seed", "solver", "max_iter", "learning_rate", "weight_decay", "tol", "dtype", "n_threads",
               "device"}


def data(n: int, f: int, c: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Voltage-like features and labels from a noisy linear rule (learnable, not separable)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(f, c))
    x = rng.normal(size=(n, f))
    return x, (x @ w + 0.8 * rng.normal(size=(n, c))).argmax(axis=1)


X, Y = data(90, 10, 10, 0)
XT, _ = data(30, 10, 10, 1)
H, _ = data(90, 8, 10, 0)
HT, _ = data(30, 8, 10, 1)

# Recorded with the correctors as they were before they took on scikit-learn's contract (the values
# were bit-identical after it on the recording machine); other CPUs may round the last digits differently.
# Since then the gradients are written by hand instead of taken by autograd: equal to rounding
# (test_hand_written_gradients_are_autograds), which the 80 non-convex L-BFGS steps of mlp_h4_lbfgs
# amplify to a few 1e-4 in its logits and 2e-6 in its loss; the other fits still agree to 1e-9. Since the
# fits carry biases in their products and take the weight gradients from images-major inputs, whose
# sums MKL rounds differently, the 50 steps of batched_mlp_h3 move its logits by a few 1e-9.
TOLERANCE = {"mlp_h4_lbfgs": 1e-3, "batched_mlp_h3": 1e-7}
REFERENCE = {
    "mlp_h4_lbfgs": {
        "predict": "917593201145111099375154025491",
        "logits_row0":
            [1.3842276265590048, -1.8213752526996903, -1.0993743384347603, -9.57399280076947, -10.703086926001424,
             3.3029841614352167, 9.566141207693713, 7.445136406957177, -10.795749501647828, 11.342685963486206],
        "final_loss": 0.555776617493402,
    },
    "mlp_h2_adam_relu": {
        "predict": "299992269191911199296111622291",
        "logits_row0":
            [-0.8625266869568015, -1.0650168428798492, 0.12406158741343154, -0.2765920491416213, -0.1198365007280987,
             -0.7338637559115878, -0.25739495911605237, -0.03572581975752498, -1.0811402733142088, -0.05922306191013671],
        "final_loss": 1.4207488325513284,
    },
    "affine": {
        "predict": "112912613119191112916121191411",
        "logits_row0":
            [0.11353486761242036, 1.6044038366875277, 0.24747558815950393, 0.1050999731240535, -0.08088676534862027,
             0.0455075404748252, -0.8896304702234406, -1.3206226326635737, -2.5681835045525583, 0.6671783424322859],
        "final_loss": 2.027132489281345,
    },
    "logistic": {
        "predict": "947893658191991978896114526291",
        "logits_row0":
            [-2.255400611514929, -1.9017510576258918, -7.138567854532348, -2.171667012810361, -8.08436239395786,
             5.2344891051010185, 0.42194041218666056, 6.124525503503845, -0.010906670902650406, 9.781700580552585],
        "final_loss": 0.3063096039690347,
    },
    "lastlayer": {
        "predict": "149115391311699101991139541069",
        "logits_row0":
            [0.038636685893198464, 2.2490987214989713, 0.8369607915239362, -1.7120422554556658, -0.9879930090531687,
             0.3832737256866794, -1.3664562234021824, -0.7586388782965742, -0.16896310146500065, 1.4861235430698252],
        "final_loss": 1.6317968100810138,
    },
    "batched_mlp_h3": {
        "predict": ["593990251195991944297111452691", "593990251195991944297111452691", "390997221496991944297141422291"],
        "logits_row0": [
            [5.519914296148683, -28.397715168403067, 5.756033420774992, 6.925394353743194, -3.4902272912257857,
             7.190521717727448, -6.160030265989272, 1.4947845978402756, 4.9813563928055995, 6.383543925063438],
            [5.5199142959256235, -28.397715168555663, 5.756033420705384, 6.925394353371987, -3.49022729124684,
             7.190521717388559, -6.160030265572056, 1.4947845987987085, 4.981356392763199, 6.383543924910188],
            [5.518591925635411, -26.902742049087358, 4.825988762575545, 6.866293907011173, -2.788603690313498,
             6.0452311613494585, -6.64335849809317, 1.6730798216096296, 5.090569874101308, 6.553638910821005]],
        "final_loss": [0.8664819140046083, 0.8664819140087172, 0.86648191400841],
    },
}

CASES = {
    "mlp_h4_lbfgs": (lambda: MLPCorrector(hidden=4, seed=3, max_iter=80), X, XT),
    "mlp_h2_adam_relu": (lambda: MLPCorrector(hidden=2, seed=1, solver="adam", max_iter=60, activation="relu"), X, XT),
    "affine": (lambda: AffineCalibration(seed=0), X, XT),
    "logistic": (lambda: LogisticCorrector(weight_decay=1e-3), X, XT),
    "lastlayer": (lambda: LastLayerRetrain(max_iter=50), H, HT),
}


# ----- fits are what they were -------------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(CASES))
def test_single_chip_fits_reproduce_the_recorded_predictions(case):
    make, x, xt = CASES[case]
    model = make().fit(x, Y, n_classes=10)
    ref = REFERENCE[case]
    assert "".join(map(str, model.predict(xt))) == ref["predict"]
    tol = TOLERANCE.get(case, 1e-9)
    np.testing.assert_allclose(model.decision_function(xt)[0], ref["logits_row0"], rtol=tol, atol=tol)
    assert model.final_loss == pytest.approx(ref["final_loss"], rel=tol / 100)


def test_batched_fits_reproduce_the_recorded_predictions():
    model = BatchedMLPCorrector(hidden=3, seed=2, max_iter=50)
    model.fit(np.stack([X, X[::-1], X * 1.5]), np.stack([Y, Y[::-1], Y]), n_classes=10)
    z = model.decision_function(np.stack([XT] * 3))
    ref = REFERENCE["batched_mlp_h3"]
    assert ["".join(map(str, p)) for p in z.argmax(-1)] == ref["predict"]
    tol = TOLERANCE["batched_mlp_h3"]
    np.testing.assert_allclose(z[:, 0], ref["logits_row0"], rtol=tol, atol=tol)
    np.testing.assert_allclose(model.final_loss_, ref["final_loss"], rtol=tol / 100)


@pytest.mark.parametrize("model", [BatchedMLPCorrector(hidden=4), BatchedMLPCorrector(hidden=3, activation="relu"),
                                   BatchedMLPCorrector(hidden=3, activation="hardtanh"), BatchedAffineCalibration(),
                                   BatchedLogisticCorrector()], ids=lambda m: f"{m.name}-{getattr(m, 'activation', '')}")
def test_hand_written_gradients_are_autograds(model):
    """The fit's loss and gradient equal autograd's on the textbook cross-entropy, at a random point."""
    gen = torch.Generator().manual_seed(0)
    k, f, c, n = 3, 10, 10, 50
    x = torch.randn(k, f, n, generator=gen, dtype=torch.float64)
    y = torch.randint(0, c, (k, 1, n), generator=gen)
    params = {name: (1.5 * torch.randn(k, *p.shape, generator=gen, dtype=torch.float64)).requires_grad_(True)
              for name, p in model._init_params(f, c, gen).items()}
    blocks = model._blocks({name: p.detach() for name, p in params.items()})
    work = Workspace(k, torch.float64, torch.device("cpu"))
    logits, cache = model._forward(blocks, with_ones_row(x), work)
    loss, dlogits = cross_entropy(logits, y)
    grads = [torch.full_like(block, float("nan")) for block in blocks]  # every entry must be written
    model._backward(blocks, with_ones_row(x).transpose(1, 2).contiguous(), cache, dlogits, grads, work)
    # The textbook model, written out by name, differentiated by autograd.
    if model.name == "affine":
        textbook = x * params["gain"] + params["offset"]
    elif model.name == "logistic":
        textbook = params["w"] @ x + params["b"]
    else:
        pre = params["w1"] @ x + params["b1"]
        act = {"tanh": torch.tanh, "relu": torch.relu, "hardtanh": lambda v: v.clamp(-1.0, 1.0)}[model.activation]
        textbook = params["w2"] @ act(pre) + params["b2"]
    reference = torch.nn.functional.cross_entropy(textbook, y.squeeze(1), reduction="none").mean(dim=1)
    expected = torch.autograd.grad(reference.sum(), list(params.values()))
    np.testing.assert_allclose(logits.numpy(), textbook.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(loss.numpy(), reference.detach().numpy(), rtol=1e-12)
    for name, value in model._params(grads).items():
        want = expected[list(params).index(name)]
        np.testing.assert_allclose(value.numpy(), want.numpy(), rtol=1e-10, atol=1e-14, err_msg=name)


# ----- the device the fit runs on -----------------------------------------------------------------

def test_device_cpu_fits_exactly_as_the_default():
    default = BatchedMLPCorrector(hidden=3, seed=2, max_iter=30).fit(np.stack([X, X[::-1]]), Y, n_classes=10)
    on_cpu = BatchedMLPCorrector(hidden=3, seed=2, max_iter=30, device="cpu").fit(np.stack([X, X[::-1]]), Y,
                                                                                  n_classes=10)
    np.testing.assert_array_equal(on_cpu.decision_function(np.stack([XT, XT])),
                                  default.decision_function(np.stack([XT, XT])))
    assert all(p.device.type == "cpu" for p in on_cpu.params_.values())


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_a_device_torch_does_not_have_is_refused_with_how_to_fix_it():
    with pytest.raises(ValueError, match=r"device='cuda' is not available: .*no CUDA GPU; use device='cpu'"):
        MLPCorrector(device="cuda")


def test_a_device_name_torch_does_not_know_is_refused():
    with pytest.raises(ValueError, match=r"device='gpu0' is not accepted: expected a torch device name"):
        BatchedAffineCalibration(device="gpu0")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_cuda_fit_matches_the_cpu_fit():
    x = np.stack([X, X[::-1], X * 1.5])
    cpu = BatchedMLPCorrector(hidden=8, seed=1, max_iter=100).fit(x, Y, n_classes=10)
    gpu = BatchedMLPCorrector(hidden=8, seed=1, max_iter=100, device="cuda").fit(x, Y, n_classes=10)
    assert np.mean(cpu.predict(np.stack([XT] * 3)) == gpu.predict(np.stack([XT] * 3))) >= 0.97
    np.testing.assert_allclose(gpu.final_loss_, cpu.final_loss_, rtol=1e-3)


# ----- get_params, set_params, clone -------------------------------------------------------------

@pytest.mark.parametrize("cls", ALL)
def test_get_params_are_the_constructor_arguments(cls):
    expected = BASE_PARAMS | ({"hidden", "activation"} if issubclass(cls, BatchedMLPCorrector) else set())
    model = cls()
    defaults = {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items() if k != "self"}
    assert set(model.get_params(deep=True)) == expected == set(defaults)
    assert model.get_params(deep=True) == model.get_params(deep=False) == defaults  # nothing nested
    changed = cls(seed=5, max_iter=7, weight_decay=0.0)
    assert {k: changed.get_params()[k] for k in ("seed", "max_iter", "weight_decay")} == \
        {"seed": 5, "max_iter": 7, "weight_decay": 0.0}


def test_set_params_changes_settings_and_returns_the_corrector():
    model = MLPCorrector()
    assert model.set_params(hidden=3, solver="adam", learning_rate=0.1) is model
    assert (model.hidden, model.solver, model.learning_rate) == (3, "adam", 0.1)
    assert repr(model) == "MLPCorrector(hidden=3, learning_rate=0.1, solver='adam')"


def test_set_params_refuses_an_unknown_name_with_the_valid_ones():
    model = LogisticCorrector()
    with pytest.raises(ValueError, match="LogisticCorrector has no parameter 'hidden'; valid parameters: device, "
                                         "dtype, features, learning_rate, max_iter, n_threads, seed, solver, tol, weight_decay"):
        model.set_params(seed=4, hidden=8)
    assert model.seed == 0  # nothing changed


@pytest.mark.parametrize("cls, change, message", [
    (MLPCorrector, {"hidden": 0}, "hidden=0 is not accepted"),
    (MLPCorrector, {"activation": "sigmoid"}, "activation='sigmoid' is not accepted: choose one of"),
    (LogisticCorrector, {"solver": "sgd"}, "solver='sgd' is not accepted"),
    (AffineCalibration, {"learning_rate": -1.0}, "learning_rate=-1.0 is not accepted"),
    (LastLayerRetrain, {"features": "outputs"}, "features='outputs' is not accepted: the last-layer retrain reads"),
])
def test_set_params_refuses_a_bad_value_and_changes_nothing(cls, change, message):
    model = cls()
    before = model.get_params()
    with pytest.raises(ValueError, match=message):
        model.set_params(seed=9, **change)
    assert model.get_params() == before
    with pytest.raises(ValueError, match=message):  # the constructor says the same
        cls(**change)


@pytest.mark.parametrize("cls", ALL)
def test_sklearn_clone_gives_an_unfitted_twin_that_fits_identically(cls):
    kwargs = {"hidden": 3} if issubclass(cls, BatchedMLPCorrector) else {}
    model = cls(seed=4, max_iter=30, **kwargs)
    single = cls in CORRECTORS.values()
    x = (H if "LastLayer" in cls.__name__ else X)
    x = x if single else np.stack([x, x[::-1]])
    y = Y if single else np.stack([Y, Y[::-1]])
    model.fit(x, y, n_classes=10)
    twin = sklearn.base.clone(model)
    assert type(twin) is cls and twin is not model and twin.get_params() == model.get_params()
    assert not twin.is_fitted
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(twin)
    check_is_fitted(model)
    twin.fit(x, y, n_classes=10)
    np.testing.assert_array_equal(twin.decision_function(x), model.decision_function(x))
    assert model.clone().get_params() == model.get_params()


def test_the_batched_twin_keeps_the_settings():
    twin = MLPCorrector(hidden=3, seed=2, activation="relu").batched()
    assert type(twin) is BatchedMLPCorrector
    assert twin.get_params() == MLPCorrector(hidden=3, seed=2, activation="relu").get_params()


# ----- checked inputs ------------------------------------------------------------------------------

def _fitted_single() -> MLPCorrector:
    return MLPCorrector(hidden=2, max_iter=5).fit(X, Y, n_classes=10)


def _fitted_batched() -> BatchedLogisticCorrector:
    return BatchedLogisticCorrector(max_iter=5).fit(np.stack([X, X]), Y, n_classes=10)


@pytest.mark.parametrize("call, message", [
    (lambda: MLPCorrector().fit(X[None], Y), r"voltages must have shape \[N images, F features\]; got \(1, 90, 10\)"),
    (lambda: MLPCorrector().fit(X[:0], Y[:0]), r"voltages must have shape \[N images, F features\]; got \(0, 10\)"),
    (lambda: BatchedMLPCorrector().fit(X, Y),
     r"voltages must have shape \[K chips, N images, F features\]; got \(90, 10\)"),
    (lambda: MLPCorrector().fit(X, Y[:80]),
     r"labels must have shape \[N\] with one label per image: the voltages hold 90 images, the labels have shape \(80,\)"),
    (lambda: MLPCorrector().fit(X, Y[None]), r"the labels have shape \(1, 90\)"),
    (lambda: BatchedMLPCorrector().fit(np.stack([X, X]), np.stack([Y, Y, Y])),
     r"labels must have shape \[N\] or \[K, N\].*2 chips of 90 images, the labels have shape \(3, 90\)"),
    (lambda: MLPCorrector().fit(np.where(np.arange(10) == 4, np.inf, X), Y),
     r"voltages have a non-finite entry inf at index \(0, 4\)"),
    (lambda: MLPCorrector().fit([["a"] * 10] * 90, Y), r"voltages must be a numeric array of shape \[N images"),
    (lambda: MLPCorrector().fit(X, Y.astype(float)), r"labels must be integer class indices; got dtype float64"),
    (lambda: MLPCorrector().fit(X, np.where(np.arange(90) == 7, -1, Y)),
     r"label -1 at index \(7,\) is out of range: class indices must be non-negative"),
    (lambda: MLPCorrector().fit(X, np.where(np.arange(90) == 3, 10, Y), n_classes=10),
     r"label 10 at index \(3,\) is out of range: class indices must be in \[0, 10\)"),
    (lambda: MLPCorrector().fit(X, Y, n_classes=1), r"n_classes=1 is not accepted: expected an integer >= 2"),
    (lambda: MLPCorrector().fit(X, np.zeros(90, dtype=int)), r"labels hold only class 0.*pass n_classes"),
    (lambda: _fitted_single().predict(X[:, :8]),
     r"voltages of shape \(90, 8\) do not match the fitted model: expected \[M, 10\]"),
    (lambda: _fitted_batched().predict(np.stack([X, X, X])),
     r"voltages of shape \(3, 90, 10\) do not match the fitted models: expected \[2, M, 10\]"),
    (lambda: _fitted_single().score(X, Y[:5]), r"the voltages hold 90 images, the labels have shape \(5,\)"),
    (lambda: _fitted_batched().score(np.stack([X, X]), np.full(90, 12)), r"label 12 at index \(0,\) is out of range"),
])
def test_bad_inputs_are_refused_with_the_value_and_the_expected_shape(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_predicting_before_fit_is_a_not_fitted_error():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        MLPCorrector().predict(X)
    with pytest.raises(NotFittedError):
        BatchedAffineCalibration().predict_proba(X[None])


def test_a_corrector_can_be_refitted_on_other_shapes():
    model = _fitted_single()
    model.fit(X[:, :6], Y, n_classes=10)  # a refit is not checked against the previous fit
    assert model.predict(XT[:, :6]).shape == (30,) and model.n_features_in_ == 6
    assert isinstance(model.score(XT[:, :6], Y[:30]), float)
