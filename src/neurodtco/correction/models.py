"""Small classifiers that read a defective chip's voltages and give back the class it meant.

Every corrector here is trained the same way, so that their numbers are comparable: the mean
cross-entropy plus an L2 penalty ``weight_decay/2 * |W|^2`` on the weight matrices (biases and
calibration gains are not penalised) is minimised over the whole training set at once (full batch)
by L-BFGS with a backtracking line search (or Adam with a cosine step decay, ``solver="adam"``), on
inputs standardized per feature with the training set's mean and standard deviation. The
standardization is an affine map that folds into the first weight matrix, so it adds no
parameters to the count.

The batched classes train ``K`` independent models in one pass: their parameters are stacked along
a leading axis and the objective is evaluated for all of them with batched matrix products. Each
model keeps its own L-BFGS memory, step length and stopping test (Adam is elementwise anyway), so
its path never depends on the others: the single-chip classes (``MLPCorrector`` ...) are the
batched ones with ``K = 1``, and fitting ``K`` chips batched or one by one gives the same models
(up to float rounding in the matrix products).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np
import torch

FEATURE_SETS = ("outputs", "outputs+hidden", "last_hidden")
ACTIVATIONS = ("tanh", "relu", "hardtanh")
SOLVERS = ("lbfgs", "adam")
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class NotFittedError(RuntimeError):
    """A corrector was used before ``fit``."""


def _check_int(name: str, value: Any, low: int, accepted: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}={value!r} is not accepted: expected an integer >= {low} ({accepted})")
    return int(value)


def _check_positive_float(name: str, value: Any, accepted: str, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}={value!r} is not accepted: expected a finite number {bound} ({accepted})")
    return float(value)


class BatchedCorrector:
    """Base of the batched correctors: ``K`` independent classifiers trained at once.

    ``fit(X [K, N, F], y [N] or [K, N])``, ``predict(X [K, M, F]) -> [K, M]``,
    ``predict_proba(X) -> [K, M, C]``, ``score(X, y) -> [K]`` accuracies; ``n_parameters`` counts
    one model's trainable numbers.
    """

    name = "base"
    #: True for the single-chip classes, which take ``[N, F]`` voltages
    single_chip = False
    #: names of the parameters that get the L2 penalty (weight matrices, not biases)
    _penalised: tuple[str, ...] = ()

    def __init__(self, *, features: str = "outputs", seed: int = 0, solver: str = "lbfgs",
                 max_iter: Optional[int] = None, learning_rate: float = 0.05, weight_decay: float = 1e-4,
                 tol: float = 1e-5, dtype: str = "float64", n_threads: int = 1) -> None:
        if features not in FEATURE_SETS:
            raise ValueError(f"features={features!r} is not accepted: choose one of {FEATURE_SETS}")
        self.features = features
        self.seed = _check_int("seed", seed, 0, "a non-negative integer seed")
        if solver not in SOLVERS:
            raise ValueError(f"solver={solver!r} is not accepted: choose one of {SOLVERS}")
        self.solver = solver
        self.max_iter = None if max_iter is None else _check_int("max_iter", max_iter, 1,
                                                                 "optimizer iterations, or None for the default")
        self.learning_rate = _check_positive_float("learning_rate", learning_rate, "Adam step size, e.g. 0.05")
        self.weight_decay = _check_positive_float("weight_decay", weight_decay,
                                                  "L2 penalty on the weight matrices, e.g. 1e-4", allow_zero=True)
        self.tol = _check_positive_float("tol", tol, "L-BFGS stops a model when its largest gradient entry is below")
        if dtype not in _DTYPES:
            raise ValueError(f"dtype={dtype!r} is not accepted: choose one of {tuple(_DTYPES)}")
        self.dtype = dtype
        self.n_threads = _check_int("n_threads", n_threads, 1, "torch CPU threads used inside fit; 1 is reproducible")
        self.params_: Optional[dict[str, torch.Tensor]] = None

    @property
    def iterations(self) -> int:
        """Optimizer iterations the fit will run at most (``max_iter``, or the solver's default)."""
        return self.max_iter if self.max_iter is not None else 300

    # ----- what a subclass defines -------------------------------------------------------------
    def _init_params(self, n_features: int, n_classes: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """One model's initial parameters (no leading K axis)."""
        raise NotImplementedError

    def _logits(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Logits ``[K, C, M]`` of standardized inputs ``x`` ``[K, F, M]`` (features-major)."""
        raise NotImplementedError

    def count_parameters(self, n_features: int = 10, n_classes: int = 10) -> int:
        """Trainable numbers of one model for ``n_features`` inputs and ``n_classes`` classes."""
        gen = torch.Generator().manual_seed(0)
        return int(sum(p.numel() for p in self._init_params(n_features, n_classes, gen).values()))

    # ----- scikit-learn habits -----------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The constructor arguments (enough to build an unfitted twin)."""
        keys = ("features", "seed", "solver", "max_iter", "learning_rate", "weight_decay", "tol", "dtype", "n_threads")
        return {k: getattr(self, k) for k in keys}

    def clone(self) -> "BatchedCorrector":
        """An unfitted copy with the same settings."""
        return type(self)(**self.get_params())

    def batched(self) -> "BatchedCorrector":
        """The unfitted batched twin of this corrector (same settings, fits ``K`` chips at once)."""
        return _BATCHED_TWIN.get(type(self), type(self))(**self.get_params())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    @property
    def is_fitted(self) -> bool:
        """True once ``fit`` has run."""
        return self.params_ is not None

    @property
    def n_parameters(self) -> int:
        """Trainable numbers of one fitted model (standardization folds into them)."""
        self._check_fitted()
        return self.count_parameters(self.n_features_in_, self.n_classes_)

    def fit(self, X: Any, y: Any, n_classes: Optional[int] = None) -> "BatchedCorrector":
        """Train ``K`` models on ``X`` ``[K, N, F]`` with labels ``y`` ``[N]`` (shared) or ``[K, N]``."""
        x = self._check_x(X, fitted=False)
        labels = self._check_y(y, x.shape[0], x.shape[1])
        k, n, f = x.shape
        c = int(labels.max()) + 1 if n_classes is None else _check_int("n_classes", n_classes, 2, "number of classes")
        if labels.max() >= c:
            raise ValueError(f"labels go up to {int(labels.max())} but n_classes={c}; labels must be in [0, n_classes)")
        dtype = _DTYPES[self.dtype]
        threads = torch.get_num_threads()
        torch.set_num_threads(self.n_threads)  # tiny matrices: one thread is as fast and bit-reproducible
        try:
            xt = torch.as_tensor(x, dtype=dtype)
            mean = xt.mean(dim=1, keepdim=True)
            std = xt.std(dim=1, keepdim=True, unbiased=False)
            # A feature that never moves (a neuron pinned at a rail) carries nothing: leave it unscaled.
            std = torch.where(std > 0, std, torch.ones_like(std))
            # Features-major layout [K, F, N]: the image axis is contiguous, which makes the batched
            # products and the elementwise work about twice as fast as [K, N, F] on a CPU.
            xs = ((xt - mean) / std).transpose(1, 2).contiguous()
            yt = torch.as_tensor(np.array(labels, dtype=np.int64)).reshape(k, 1, n)
            gen = torch.Generator().manual_seed(self.seed)
            # Every model starts from the same draw: the fit of chip k then does not depend on K.
            init = self._init_params(f, c, gen)
            shapes = {name: tuple(p.shape) for name, p in init.items()}
            theta0 = torch.cat([p.to(dtype).reshape(1, -1) for p in init.values()], dim=1).expand(k, -1).clone()

            def unflatten(theta: torch.Tensor) -> dict[str, torch.Tensor]:
                out, start = {}, 0
                for name, shape in shapes.items():
                    size = math.prod(shape)
                    out[name] = theta[:, start:start + size].reshape(theta.shape[0], *shape)
                    start += size
                return out

            def objective(theta: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
                """Loss of the models ``index``: mean cross-entropy plus the L2 penalty on weight matrices."""
                params = unflatten(theta)
                x_sub, y_sub = (xs, yt) if len(index) == k else (xs[index], yt[index])
                logits = self._logits(params, x_sub)  # [K', C, N]
                peak = logits.detach().amax(dim=1, keepdim=True)  # log-sum-exp without overflow
                lse = (logits - peak).exp().sum(dim=1).log() + peak.squeeze(1)
                loss = (lse - logits.gather(1, y_sub).squeeze(1)).mean(dim=1)
                for name in self._penalised:
                    loss = loss + 0.5 * self.weight_decay * params[name].pow(2).flatten(1).sum(dim=1)
                return loss

            train = _lbfgs if self.solver == "lbfgs" else _adam
            theta, history, iterations, evaluations = train(objective, theta0, self)
        finally:
            torch.set_num_threads(threads)
        params = unflatten(theta)
        self.params_ = {name: p.detach() for name, p in params.items()}
        self.mean_, self.std_ = mean, std
        self.n_models_, self.n_features_in_, self.n_classes_ = k, f, c
        self.loss_history_ = np.stack(history)
        self.final_loss_ = self.loss_history_[-1]
        self.n_iter_ = iterations
        self.n_evaluations_ = evaluations  # objective + gradient passes over the whole batch
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits ``[K, M, C]`` of the fitted models on ``X`` ``[K, M, F]``."""
        x = self._check_x(X, fitted=True)
        xt = ((torch.as_tensor(x, dtype=_DTYPES[self.dtype]) - self.mean_) / self.std_).transpose(1, 2)
        with torch.no_grad():
            return self._logits(self.params_, xt.contiguous()).transpose(1, 2).double().numpy()

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``[K, M, C]``."""
        z = self.decision_function(X)
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        return z / z.sum(axis=-1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted classes ``[K, M]``."""
        return self.decision_function(X).argmax(axis=-1)

    def score(self, X: Any, y: Any) -> np.ndarray:
        """Accuracy of each model ``[K]`` on ``X`` with labels ``[M]`` or ``[K, M]``."""
        x = np.asarray(X)
        pred = self.predict(x)
        labels = self._check_y(y, pred.shape[0], pred.shape[1])
        return (pred == labels).mean(axis=1)

    # ----- checks ------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self.params_ is None:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(voltages, labels) first")

    def _check_x(self, X: Any, fitted: bool) -> np.ndarray:
        if fitted:
            self._check_fitted()
        x = np.array(X, dtype=np.float64)  # a copy: torch refuses read-only (broadcast) arrays
        if x.ndim != 3 or x.shape[1] < 1 or x.shape[2] < 1:
            raise ValueError(f"voltages must have shape [K chips, N images, F features]; got {np.shape(X)}")
        if not np.all(np.isfinite(x)):
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
            raise ValueError(f"voltages have a non-finite entry at index {where}; all values must be finite")
        if fitted and (x.shape[0] != self.n_models_ or x.shape[2] != self.n_features_in_):
            raise ValueError(f"voltages of shape {x.shape} do not match the fitted models: expected "
                             f"[{self.n_models_}, M, {self.n_features_in_}]")
        return x

    @staticmethod
    def _check_y(y: Any, k: int, n: int) -> np.ndarray:
        labels = np.asarray(y)
        if labels.ndim == 1:
            labels = np.broadcast_to(labels, (k, labels.shape[0]))
        if labels.shape != (k, n):
            raise ValueError(f"labels must have shape [{n}] or [{k}, {n}]; got {np.shape(y)}")
        if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
            raise ValueError("labels must be non-negative integer class indices")
        return labels


#: per-model loss ``[K']`` of the parameters ``[K', P]`` of the models ``index`` ``[K']``
Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _adam(objective: Objective, theta0: torch.Tensor, model: "BatchedCorrector"
          ) -> tuple[torch.Tensor, list[np.ndarray], np.ndarray, float]:
    """Full-batch Adam with a cosine decay of the step to zero; every model runs every step."""
    theta = theta0.clone().requires_grad_(True)
    everyone = torch.arange(theta0.shape[0])
    steps = model.iterations
    opt = torch.optim.Adam([theta], lr=model.learning_rate)
    history = []
    for step in range(steps):
        for group in opt.param_groups:  # the last, small steps settle each model near its optimum
            group["lr"] = 0.5 * model.learning_rate * (1.0 + math.cos(math.pi * step / steps))
        opt.zero_grad(set_to_none=True)
        loss = objective(theta, everyone)
        loss.sum().backward()  # the sum keeps each model's gradient its own
        opt.step()
        if step % 50 == 0:
            history.append(loss.detach().double().numpy())
    with torch.no_grad():
        history.append(objective(theta, everyone).double().numpy())
    return theta.detach(), history, np.full(theta0.shape[0], steps), steps + 1


def _lbfgs(objective: Objective, theta0: torch.Tensor, model: "BatchedCorrector", memory: int = 10
           ) -> tuple[torch.Tensor, list[np.ndarray], np.ndarray, float]:
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

    def value_and_grad(theta: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal evaluations
        evaluations += len(index) / k
        theta = theta.detach().requires_grad_(True)
        value = objective(theta, index)
        (grad,) = torch.autograd.grad(value.sum(), theta)
        return value.detach(), grad

    everyone = torch.arange(k)
    theta = theta0.clone()
    value, grad = value_and_grad(theta, everyone)
    s_hist = torch.zeros(memory, k, p, dtype=dtype)
    y_hist = torch.zeros(memory, k, p, dtype=dtype)
    rho = torch.zeros(memory, k, dtype=dtype)  # 0 marks a pair a model did not accept (it then has no effect)
    gamma = torch.ones(k, dtype=dtype)
    active = torch.ones(k, dtype=torch.bool)
    iterations = np.zeros(k, dtype=np.int64)
    history = [value.double().numpy()]
    for it in range(model.iterations):
        active &= grad.abs().amax(dim=1) > model.tol
        if not bool(active.any()):
            break
        # Two-loop recursion over the stored pairs, newest first, then oldest first.
        slots = [(it - 1 - j) % memory for j in range(min(it, memory))]
        q = grad.clone()
        alphas = []
        for j in slots:
            a = rho[j] * (s_hist[j] * q).sum(dim=1)
            q -= a[:, None] * y_hist[j]
            alphas.append(a)
        r = gamma[:, None] * q
        for j, a in zip(reversed(slots), reversed(alphas)):
            b = rho[j] * (y_hist[j] * r).sum(dim=1)
            r += s_hist[j] * (a - b)[:, None]
        direction = -r
        slope = (grad * direction).sum(dim=1)
        uphill = slope >= 0  # lost curvature information: fall back to steepest descent
        if bool(uphill.any()):
            direction[uphill] = -grad[uphill]
            slope = torch.where(uphill, -(grad * grad).sum(dim=1), slope)
        # First step scaled as in torch.optim.LBFGS (the gradient's size says nothing yet about curvature).
        t = torch.full((k,), 1.0, dtype=dtype) if it else torch.clamp(1.0 / grad.abs().sum(dim=1), max=1.0)
        # Each trial point is evaluated with its gradient: the first trial (t = 1) is usually accepted,
        # so an iteration mostly costs one forward and one backward pass.
        step = torch.zeros(k, dtype=dtype)
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
        iterations += active.numpy()
        if it % 50 == 0:
            history.append(value.double().numpy())
    history.append(value.double().numpy())
    return theta, history, iterations, evaluations


def _uniform(shape: tuple[int, ...], fan_in: int, generator: torch.Generator) -> torch.Tensor:
    """PyTorch's default ``nn.Linear`` draw: uniform in +-1/sqrt(fan_in), from our own generator."""
    bound = 1.0 / math.sqrt(fan_in)
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2.0 - 1.0) * bound


class BatchedMLPCorrector(BatchedCorrector):
    """``K`` corrective MLPs ``F -> hidden -> C`` (10 -> 8 -> 10 has 178 parameters)."""

    name = "mlp"
    _penalised = ("w1", "w2")

    def __init__(self, hidden: int = 8, *, activation: str = "tanh", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden = _check_int("hidden", hidden, 1, "neurons in the corrector's hidden layer, e.g. 8")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r} is not accepted: choose one of {ACTIVATIONS}")
        self.activation = activation

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments (enough to build an unfitted twin)."""
        return {"hidden": self.hidden, "activation": self.activation, **super().get_params()}

    @property
    def iterations(self) -> int:
        """``max_iter``, or by default 300, and 1000 for one or two hidden neurons.

        Measured on 12 defective chips: with h >= 4 the test accuracy after 300 L-BFGS iterations is
        that of 1000; a one- or two-neuron bottleneck has long plateaus and needs about 1000 (3000
        gives the same loss).
        """
        if self.max_iter is not None:
            return self.max_iter
        return 1000 if self.hidden <= 2 else 300

    def _init_params(self, n_features: int, n_classes: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        h = self.hidden
        return {"w1": _uniform((h, n_features), n_features, generator), "b1": _uniform((h, 1), n_features, generator),
                "w2": _uniform((n_classes, h), h, generator), "b2": _uniform((n_classes, 1), h, generator)}

    def _logits(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        a = torch.baddbmm(params["b1"], params["w1"], x)
        if self.activation == "tanh":
            a = torch.tanh(a)
        elif self.activation == "relu":
            a = torch.relu(a)
        else:
            a = torch.clamp(a, -1.0, 1.0)
        return torch.baddbmm(params["b2"], params["w2"], a)


class BatchedAffineCalibration(BatchedCorrector):
    """``K`` per-output calibrations: logit ``j`` = gain_j * v_j + offset_j (20 parameters for 10 outputs)."""

    name = "affine"
    _penalised = ()  # a gain is not a weight to shrink: shrinking all gains only softens the softmax

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def _init_params(self, n_features: int, n_classes: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        if n_features != n_classes:
            raise ValueError(f"affine calibration needs one input per class: got {n_features} features for "
                             f"{n_classes} classes; use features='outputs' (the output voltages)")
        # Start from the identity on standardized voltages: the chip's own decision, rescaled.
        return {"gain": torch.ones(n_features, 1, dtype=torch.float64),
                "offset": torch.zeros(n_features, 1, dtype=torch.float64)}

    def _logits(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return x * params["gain"] + params["offset"]


class BatchedLogisticCorrector(BatchedCorrector):
    """``K`` multinomial logistic regressions on the voltages (10 inputs, 10 classes: 110 parameters)."""

    name = "logistic"
    _penalised = ("w",)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def _init_params(self, n_features: int, n_classes: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return {"w": torch.zeros(n_classes, n_features, dtype=torch.float64),
                "b": torch.zeros(n_classes, 1, dtype=torch.float64)}  # convex: zero start is fine

    def _logits(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(params["b"], params["w"], x)


class BatchedLastLayerRetrain(BatchedLogisticCorrector):
    """``K`` last arrays retrained in software on the defective chip's last hidden-layer voltages.

    What reprogramming the last array would achieve if every one of its cells could take any
    weight: a linear layer (weights plus the bias row) from the last hidden layer to the classes,
    fitted by cross-entropy. Its parameter count is the last layer's: 8 x 10 + 10 = 90 by default.
    """

    name = "lastlayer"

    def __init__(self, **kwargs: Any) -> None:
        features = kwargs.pop("features", "last_hidden")
        if features != "last_hidden":
            raise ValueError(f"features={features!r} is not accepted: the last-layer retrain reads 'last_hidden'")
        super().__init__(features="last_hidden", **kwargs)


class _OneChip:
    """Mixin: the batched corrector with ``K = 1``, taking ``[N, F]`` voltages and ``[N]`` labels."""

    single_chip = True

    def fit(self, X: Any, y: Any, n_classes: Optional[int] = None) -> Any:
        """Train on voltages ``[N, F]`` with labels ``[N]``."""
        x = np.asarray(X, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"voltages must have shape [N images, F features]; got {np.shape(X)}")
        labels = np.asarray(y)
        if labels.ndim != 1:
            raise ValueError(f"labels must have shape [N]; got {np.shape(y)}")
        return super().fit(x[None], labels[None], n_classes=n_classes)  # type: ignore[misc]

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits ``[M, C]``."""
        x = np.asarray(X, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"voltages must have shape [M images, F features]; got {np.shape(X)}")
        return super().decision_function(x[None])[0]  # type: ignore[misc]

    def score(self, X: Any, y: Any) -> float:
        """Accuracy on ``X`` ``[M, F]`` with labels ``[M]``."""
        return float(np.mean(self.predict(X) == np.asarray(y)))  # type: ignore[attr-defined]

    @property
    def final_loss(self) -> float:
        """Training loss (cross-entropy + penalty) at the last step."""
        return float(self.final_loss_[0])  # type: ignore[attr-defined]


class MLPCorrector(_OneChip, BatchedMLPCorrector):
    """The corrective MLP ``F -> hidden -> C`` for one chip (h = 1: 31 parameters, h = 8: 178)."""


class AffineCalibration(_OneChip, BatchedAffineCalibration):
    """Per-output gain and offset for one chip (20 parameters)."""


class LogisticCorrector(_OneChip, BatchedLogisticCorrector):
    """Multinomial logistic regression on one chip's voltages (110 parameters)."""


class LastLayerRetrain(_OneChip, BatchedLastLayerRetrain):
    """The last array retrained in software on one chip's last hidden-layer voltages (90 parameters)."""


_BATCHED_TWIN = {
    MLPCorrector: BatchedMLPCorrector,
    AffineCalibration: BatchedAffineCalibration,
    LogisticCorrector: BatchedLogisticCorrector,
    LastLayerRetrain: BatchedLastLayerRetrain,
}

CORRECTORS = {"mlp": MLPCorrector, "affine": AffineCalibration, "logistic": LogisticCorrector,
              "lastlayer": LastLayerRetrain}


def make_corrector(name: str, hidden: int = 8, **kwargs: Any) -> BatchedCorrector:
    """A single-chip corrector by name (``mlp``, ``affine``, ``logistic``, ``lastlayer``)."""
    if name not in CORRECTORS:
        raise ValueError(f"corrector {name!r} is not known: choose one of {tuple(CORRECTORS)}")
    if name == "mlp":
        return MLPCorrector(hidden=hidden, **kwargs)
    return CORRECTORS[name](**kwargs)
