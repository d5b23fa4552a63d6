"""The corrector base class: scikit-learn's estimator contract, input checks, and the shared training loop.

Every corrector is trained the same way, so that their numbers are comparable: the mean
cross-entropy plus an L2 penalty ``weight_decay/2 * |W|^2`` on the weight matrices (biases and
calibration gains are not penalised) is minimised over the whole training set at once (full batch)
by L-BFGS with a backtracking line search (or Adam with a cosine step decay, ``solver="adam"``), on
inputs standardized per feature with the training set's mean and standard deviation. The
standardization is an affine map that folds into the first weight matrix, so it adds no
parameters to the count.

The estimator contract is scikit-learn's: the constructor stores its arguments unchanged (so
``get_params``, ``set_params`` and ``sklearn.base.clone`` work), settings are checked when they
are set, and ``fit``/``predict`` check their inputs (shape, finite values, labels in range).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import sklearn.base
import torch

from . import native
from .objective import Blocks, Workspace, batched_objective, unflatten, with_ones_row
from .solvers import adam, lbfgs

FEATURE_SETS = ("outputs", "outputs+hidden", "last_hidden")
ACTIVATIONS = ("tanh", "relu", "hardtanh")
SOLVERS = ("lbfgs", "adam")
_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_L2_SIZE_FILE = Path("/sys/devices/system/cpu/cpu0/cache/index2/size")


def cache_size_bytes(text: str) -> int:
    """Bytes of a Linux sysfs cache size such as ``2048K`` or ``1M``."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip()
    if text[-1:].upper() in units:
        return int(text[:-1]) * units[text[-1].upper()]
    return int(text)


def _l2_bytes(default: int = 1 << 21) -> int:
    """One core's L2 cache in bytes where Linux says it, else ``default``."""
    try:
        return cache_size_bytes(_L2_SIZE_FILE.read_text())
    except (OSError, ValueError):
        return default


#: bytes of a group's arrays alive at once in a CPU fit: one core's L2.
_GROUP_BYTES = _l2_bytes()


class NotFittedError(RuntimeError):
    """A corrector was used before ``fit``."""


def check_int(name: str, value: Any, low: int, accepted: str) -> int:
    """``value`` as an int >= ``low``, or a ValueError naming it and what is accepted."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}={value!r} is not accepted: expected an integer >= {low} ({accepted})")
    return int(value)


def check_positive_float(name: str, value: Any, accepted: str, allow_zero: bool = False) -> float:
    """``value`` as a finite float > 0 (or >= 0), or a ValueError naming it and what is accepted."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}={value!r} is not accepted: expected a finite number {bound} ({accepted})")
    return float(value)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, or a ValueError naming it and the choices."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}={value!r} is not accepted: choose one of {choices}")
    return value


def check_device(value: Any) -> str:
    """``value`` if torch can put tensors on that device here, or a ValueError naming it and how to fix it."""
    try:
        device = torch.device(value)
    except (TypeError, RuntimeError) as exc:
        raise ValueError(f"device={value!r} is not accepted: expected a torch device name such as 'cpu', 'cuda' "
                         f"or 'cuda:1' ({exc})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={value!r} is not available: this torch {torch.__version__} sees no CUDA GPU; use "
                         f"device='cpu' (the default), or run on a machine with a GPU and a CUDA build of torch")
    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as exc:
        raise ValueError(f"device={value!r} is not available to this torch {torch.__version__}: {exc}; use "
                         f"device='cpu' (the default)") from None
    return str(value)


class BatchedCorrector(sklearn.base.BaseEstimator):
    """Base of the batched correctors: ``K`` independent classifiers trained at once.

    ``fit(X [K, N, F], y [N] or [K, N])``, ``predict(X [K, M, F]) -> [K, M]``,
    ``predict_proba(X) -> [K, M, C]``, ``score(X, y) -> [K]`` accuracies; ``n_parameters`` counts
    one model's trainable numbers. Settings: ``features`` (which voltages it reads), ``seed`` (of
    the initial draw), ``solver`` (``lbfgs`` or ``adam``), ``max_iter`` (None: the class's default),
    ``learning_rate`` (Adam), ``weight_decay`` (L2 on weight matrices), ``tol`` (L-BFGS stops a
    model when its largest gradient entry is below), ``dtype``, ``n_threads`` (threads in fit: slices of
    the batch for the compiled fits, torch's CPU threads otherwise),
    ``device`` (the torch device the fit runs on, e.g. ``"cuda"``; the fitted models live on the CPU).
    After ``fit``, ``backend_`` says how it ran: ``"compiled"`` (the C fits of ``native``, on a CPU in
    float64 with L-BFGS) or ``"torch"``.
    """

    name = "base"
    #: True for the single-chip classes, which take ``[N, F]`` voltages
    single_chip = False
    #: names of the parameters that get the L2 penalty (weight matrices, not biases)
    _penalised: tuple[str, ...] = ()
    #: the layers as (weights, bias) parameter names: a fit stores each layer as one matrix
    #: ``[rows, columns + 1]``, the bias its last column, which meets a row of ones under the inputs
    _layers: tuple[tuple[str, str], ...] = ()

    def __init__(self, *, features: str = "outputs", seed: int = 0, solver: str = "lbfgs",
                 max_iter: Optional[int] = None, learning_rate: float = 0.05, weight_decay: float = 1e-4,
                 tol: float = 1e-5, dtype: str = "float64", n_threads: int = 1, device: str = "cpu") -> None:
        self.features = features
        self.seed = seed
        self.solver = solver
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.tol = tol
        self.dtype = dtype
        self.n_threads = n_threads
        self.device = device
        self._settings()

    def _settings(self) -> dict[str, Any]:
        """The checked settings (a bad one raises a ValueError naming it and what is accepted)."""
        return {
            "features": check_choice("features", self.features, FEATURE_SETS),
            "seed": check_int("seed", self.seed, 0, "a non-negative integer seed"),
            "solver": check_choice("solver", self.solver, SOLVERS),
            "max_iter": None if self.max_iter is None else check_int(
                "max_iter", self.max_iter, 1, "optimizer iterations, or None for the default"),
            "learning_rate": check_positive_float("learning_rate", self.learning_rate, "Adam step size, e.g. 0.05"),
            "weight_decay": check_positive_float("weight_decay", self.weight_decay,
                                                  "L2 penalty on the weight matrices, e.g. 1e-4", allow_zero=True),
            "tol": check_positive_float("tol", self.tol,
                                         "L-BFGS stops a model when its largest gradient entry is below"),
            "dtype": check_choice("dtype", self.dtype, tuple(_DTYPES)),
            "n_threads": check_int("n_threads", self.n_threads, 1,
                                    "threads used inside fit; the compiled fits give the same models on any number"),
            "device": check_device(self.device),
        }

    @property
    def iterations(self) -> int:
        """Optimizer iterations the fit will run at most (``max_iter``, or the solver's default)."""
        return int(self.max_iter) if self.max_iter is not None else 300

    # ----- what a subclass defines -------------------------------------------------------------
    def _init_params(self, n_features: int, n_classes: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """One model's initial parameters (no leading K axis)."""
        raise NotImplementedError

    def _forward(self, blocks: Blocks, x: torch.Tensor, work: Workspace) -> tuple[torch.Tensor, Any]:
        """Logits ``[K, C, M]`` of inputs ``x`` ``[K, F + 1, M]`` (standardized, features-major, a row of ones last)
        by the layers ``blocks`` (``_layers``, each ``[K, rows, columns + 1]``), and what ``_backward`` needs.

        The logits may live in ``work``: the fit's loss overwrites them with its gradient.
        """
        raise NotImplementedError

    def _backward(self, blocks: Blocks, x_t: torch.Tensor, cache: Any, dlogits: torch.Tensor, grads: Blocks,
                  work: Workspace) -> None:
        """Write into ``grads`` (shaped as ``blocks``) the gradient of a loss whose gradient in the logits is ``dlogits``.

        ``x_t`` ``[K, M, F + 1]``: ``_forward``'s inputs images-major (contiguous), the layout in which the
        products over the images that make the weight gradients run fastest.
        """
        raise NotImplementedError

    def _logit_bound(self, blocks: Blocks) -> Optional[torch.Tensor]:
        """A bound ``[K, 1, 1]`` of the magnitude of every logit of each model whatever its inputs, or None."""
        return None

    def flops_per_evaluation(self, n_features: int, n_classes: int, n_images: int) -> int:
        """Flops of the linear maps in one model's loss and gradient on ``n_images`` (the least a fit evaluation costs)."""
        raise NotImplementedError

    def _native(self) -> Optional[tuple[str, str, int]]:
        """What the compiled fit (``native``) computes for this corrector: (kind, activation, hidden), or None."""
        return None

    def _live_rows(self, n_features: int, n_classes: int) -> int:
        """Rows of one model's arrays alive at once in an evaluation (their columns are the images): inputs and logits."""
        return n_features + 1 + n_classes

    def _blocks(self, params: dict[str, torch.Tensor]) -> Blocks:
        """The layers ``[K, rows, columns + 1]`` of parameters by name (``_layers``)."""
        return [torch.cat([params[w], params[b]], dim=-1) for w, b in self._layers]

    def _params(self, blocks: Blocks) -> dict[str, torch.Tensor]:
        """Parameters by name of the layers ``blocks``."""
        out = {}
        for (w, b), block in zip(self._layers, blocks):
            out[w], out[b] = block[..., :-1].contiguous(), block[..., -1:].contiguous()
        return out

    def _logits(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Logits ``[K, C, M]`` of standardized inputs ``x`` ``[K, F, M]`` by parameters by name."""
        return self._forward(self._blocks(params), with_ones_row(x), Workspace(x.shape[0], x.dtype, x.device))[0]

    def count_parameters(self, n_features: int = 10, n_classes: int = 10) -> int:
        """Trainable numbers of one model for ``n_features`` inputs and ``n_classes`` classes."""
        gen = torch.Generator().manual_seed(0)
        return int(sum(p.numel() for p in self._init_params(n_features, n_classes, gen).values()))

    # ----- the estimator contract ----------------------------------------------------------------
    def set_params(self, **params: Any) -> "BatchedCorrector":
        """Change settings (returns self); an unknown name or a bad value is refused and nothing changes."""
        valid = self.get_params(deep=False)
        for key in params:
            if key not in valid:
                raise ValueError(f"{type(self).__name__} has no parameter {key!r}; valid parameters: "
                                 f"{', '.join(sorted(valid))}")
        type(self)(**{**valid, **params})  # checks the new settings together, before any is changed
        return super().set_params(**params)

    def clone(self) -> "BatchedCorrector":
        """An unfitted copy with the same settings (``sklearn.base.clone``)."""
        return sklearn.base.clone(self)

    def batched(self) -> "BatchedCorrector":
        """The unfitted batched twin of this corrector (same settings, fits ``K`` chips at once)."""
        return sklearn.base.clone(self)

    def __sklearn_is_fitted__(self) -> bool:
        """What ``sklearn.utils.validation.check_is_fitted`` asks."""
        return self.is_fitted

    @property
    def is_fitted(self) -> bool:
        """True once ``fit`` has run."""
        return hasattr(self, "params_")

    @property
    def n_parameters(self) -> int:
        """Trainable numbers of one fitted model (standardization folds into them)."""
        self._check_fitted()
        return self.count_parameters(self.n_features_in_, self.n_classes_)

    # ----- fit and predict ---------------------------------------------------------------------
    def fit(self, X: Any, y: Any, n_classes: Optional[int] = None) -> "BatchedCorrector":
        """Train ``K`` models on ``X`` ``[K, N, F]`` with labels ``y`` ``[N]`` (shared) or ``[K, N]``."""
        settings = self._settings()
        x = self._check_x(X, fitted=False)
        k, n, f = x.shape
        if n_classes is not None:
            c = check_int("n_classes", n_classes, 2, "number of classes")
        labels = self._check_y(y, k, n, n_classes=None if n_classes is None else c)
        if n_classes is None:
            c = int(labels.max()) + 1
            if c < 2:
                raise ValueError("labels hold only class 0: a classifier needs at least two classes; pass "
                                 "n_classes if the others are merely absent from this training set")
        dtype = _DTYPES[settings["dtype"]]
        device = torch.device(settings["device"])
        threads = torch.get_num_threads()
        torch.set_num_threads(settings["n_threads"])  # tiny matrices: one thread is as fast and bit-reproducible
        try:
            xt = torch.as_tensor(x, dtype=dtype, device=device)
            mean = xt.mean(dim=1, keepdim=True)
            std = xt.std(dim=1, keepdim=True, unbiased=False)
            # A feature that never moves (a neuron pinned at a rail) carries nothing: leave it unscaled.
            std = torch.where(std > 0, std, torch.ones_like(std))
            # Features-major layout [K, F, N]: the image axis is contiguous, which makes the batched
            # products and the elementwise work about twice as fast as [K, N, F] on a CPU.
            xs = ((xt - mean) / std).transpose(1, 2).contiguous()
            yt = torch.as_tensor(np.array(labels, dtype=np.int64), device=device).reshape(k, 1, n)
            gen = torch.Generator().manual_seed(settings["seed"])
            # Every model starts from the same draw: the fit of chip k then does not depend on K.
            init = self._blocks(self._init_params(f, c, gen))
            shapes = [tuple(block.shape) for block in init]
            theta0 = torch.cat([block.to(dtype).reshape(1, -1) for block in init], dim=1).repeat(k, 1).to(device)
            weight_decay = settings["weight_decay"]
            # 1 on the entries of the penalised weight matrices, 0 on biases and gains.
            mask = torch.cat([torch.nn.functional.pad(torch.full((rows, cols - 1), float(w in self._penalised),
                                                                 dtype=dtype), (0, 1)).flatten()
                              for (w, _), (rows, cols) in zip(self._layers, shapes)]).to(device)
            penalised = mask if self._penalised and weight_decay > 0 else None
            compiled = self._native()
            if (settings["solver"] == "lbfgs" and device.type == "cpu" and dtype == torch.float64
                    and compiled is not None and native.available()):
                kind, activation, hidden = compiled
                fitted, history, iterations, evaluations = native.fit(
                    kind, activation, with_ones_row(xs).numpy(), yt[:, 0].numpy(), theta0.numpy(), c, hidden,
                    None if penalised is None else penalised.numpy(), weight_decay, self.iterations, settings["tol"],
                    threads=settings["n_threads"])
                theta, self.backend_ = torch.from_numpy(fitted), "compiled"
            else:
                # On a CPU, models go through the loss in groups whose arrays alive at once ([models, rows, N])
                # stay in cache: the elementwise passes, not the products, bound these small models.
                group = (max(1, _GROUP_BYTES // (self._live_rows(f, c) * n * xs.element_size()))
                         if device.type == "cpu" else k)
                objective = batched_objective(self, with_ones_row(xs), yt, shapes, group, penalised, weight_decay)
                if settings["solver"] == "lbfgs":
                    theta, history, iterations, evaluations = lbfgs(objective, theta0, self.iterations,
                                                                    settings["tol"])
                else:
                    theta, history, iterations, evaluations = adam(objective, theta0, self.iterations,
                                                                   settings["learning_rate"])
                self.backend_ = "torch"
        finally:
            torch.set_num_threads(threads)
        self.params_ = {name: p.detach().cpu() for name, p in self._params(unflatten(theta, shapes)).items()}
        self.mean_, self.std_ = mean.cpu(), std.cpu()
        self.n_models_, self.n_features_in_, self.n_classes_ = k, f, c
        self.loss_history_ = np.stack(history)
        self.final_loss_ = self.loss_history_[-1]
        self.n_iter_ = iterations
        self.n_evaluations_ = evaluations  # objective + gradient passes over the whole batch
        # What the fit cost at least: the flops of its linear maps at the evaluations it ran.
        self.fit_flops_ = float(self.flops_per_evaluation(f, c, n)) * evaluations * k
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits ``[K, M, C]`` of the fitted models on ``X`` ``[K, M, F]`` (one chip: ``[M, C]`` of ``[M, F]``)."""
        self._check_fitted()
        x = self._check_x(X, fitted=True)
        xt = ((torch.as_tensor(x, dtype=_DTYPES[self.dtype]) - self.mean_) / self.std_).transpose(1, 2)
        with torch.no_grad():
            z = self._logits(self.params_, xt.contiguous()).transpose(1, 2).double().numpy()
        return z[0] if self.single_chip else z

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``[K, M, C]`` (one chip: ``[M, C]``)."""
        z = self.decision_function(X)
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        return z / z.sum(axis=-1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted classes ``[K, M]`` (one chip: ``[M]``)."""
        return self.decision_function(X).argmax(axis=-1)

    def score(self, X: Any, y: Any) -> Union[np.ndarray, float]:
        """Accuracy of each model ``[K]`` on ``X`` ``[K, M, F]`` with labels ``[M]`` or ``[K, M]`` (one chip: a float)."""
        pred = self.predict(X)
        if self.single_chip:
            pred = pred[None]
        labels = self._check_y(y, pred.shape[0], pred.shape[1], n_classes=self.n_classes_)
        accuracy = (pred == labels).mean(axis=1)
        return float(accuracy[0]) if self.single_chip else accuracy

    # ----- checks ------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(voltages, labels) first")

    def _shape_names(self, what: str) -> str:
        """The shape this class expects for ``what`` (``"voltages"`` or ``"labels"``), in words."""
        if self.single_chip:
            return "[N images, F features]" if what == "voltages" else "[N]"
        return "[K chips, N images, F features]" if what == "voltages" else "[N] or [K, N]"

    def _check_x(self, X: Any, fitted: bool) -> np.ndarray:
        """Voltages as a float64 ``[K, N, F]`` array (a copy: torch refuses read-only arrays)."""
        expected = self._shape_names("voltages")
        try:
            x = np.array(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"voltages must be a numeric array of shape {expected}; could not read them: {exc}") from None
        want = 2 if self.single_chip else 3
        if x.ndim != want or min(x.shape) < 1:
            raise ValueError(f"voltages must have shape {expected}; got {x.shape}")
        if not np.all(np.isfinite(x)):
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
            raise ValueError(f"voltages have a non-finite entry {x[where]} at index {where}; all values must be finite")
        if self.single_chip:
            x = x[None]
        if fitted and (x.shape[0] != self.n_models_ or x.shape[2] != self.n_features_in_):
            got = x.shape[1:] if self.single_chip else x.shape
            expected = (f"[M, {self.n_features_in_}]" if self.single_chip
                        else f"[{self.n_models_}, M, {self.n_features_in_}]")
            raise ValueError(f"voltages of shape {got} do not match the fitted model{'' if self.single_chip else 's'}: "
                             f"expected {expected}")
        return x

    def _check_y(self, y: Any, k: int, n: int, n_classes: Optional[int]) -> np.ndarray:
        """Labels as a ``[K, N]`` array of class indices in ``[0, n_classes)``."""
        labels = np.asarray(y)
        if self.single_chip:
            if labels.shape != (n,):
                raise ValueError(f"labels must have shape [N] with one label per image: the voltages hold {n} images, "
                                 f"the labels have shape {labels.shape}")
        elif labels.shape not in ((n,), (k, n)):
            raise ValueError(f"labels must have shape [N] or [K, N] with one label per image: the voltages hold "
                             f"{k} chips of {n} images, the labels have shape {labels.shape}")
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integer class indices; got dtype {labels.dtype} "
                             f"(first label {labels.flat[0]!r}); convert them with labels.astype(int)")
        bad = (labels < 0) | (labels >= n_classes) if n_classes is not None else labels < 0
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            accepted = f"in [0, {n_classes})" if n_classes is not None else "non-negative"
            raise ValueError(f"label {int(labels[where])} at index {where} is out of range: class indices must be "
                             f"{accepted}")
        return np.broadcast_to(labels, (k, n))
