"""A corrector trained on a population of simulated chips, adapted to each new chip with few labels.

A per-chip corrector learns its own chip's distortion and fails on any other chip. The population
corrector instead learns, from many simulated chips (patterns, densities, instances, arrays), how
a chip's distortion shows in its outputs, and reads it off each new chip:

* **signature** (no labels): each chip's outputs on ``signature_images`` unlabelled images give a
  per-output mean and standard deviation. The image's outputs are standardized with the chip's
  own statistics (so a shifted or rescaled output looks healthy again), and the statistics
  themselves (standardized over the population) enter the network beside them. So ``k = 0``
  labelled images already adapt the corrector to the chip.
* **head** (``k`` labelled images, and optionally the defect-free design's decisions on the
  unlabelled images, computed in software: free labels): a per-chip affine map ``z -> A z + b`` of the standardized
  outputs before the frozen population network, fitted by cross-entropy on the ``k`` images
  with the penalty ``prior / n * (|A - I|^2 + |b|^2)`` (``n`` images in the fit: a Gaussian prior
  on the head, so its pull toward the identity fades as images accumulate). ``prior`` is chosen on
  validation chips (``population_study.choose_prior``).

``PopulationCorrector.fit(voltages [K, N, F], labels)`` trains on ``K`` chips;
``adapt(unlabelled, labelled, labels)`` gives an ``AdaptedChips`` with ``predict``/``score`` for
those chips. The studies (leave one pattern out, the calibration curve, the cross-defect matrix of
population correctors) are in ``population_study``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import sklearn.base
import torch

from .base import NotFittedError, check_int, check_positive_float
from .solvers import autograd_objective, lbfgs

#: standard deviation below which an output counts as pinned (a rail): it is centred, not scaled
_PINNED_V = 1e-6


def _voltages(name: str, value: Any, n_features: Optional[int] = None) -> np.ndarray:
    """``value`` as a finite float64 ``[K, N, F]`` array, or a ValueError naming ``name``."""
    x = np.asarray(value, dtype=np.float64)
    if x.ndim != 3 or min(x.shape) < 1:
        raise ValueError(f"{name} must have shape [K chips, N images, F outputs] with no empty axis; got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} hold a non-finite value; every voltage must be finite")
    if n_features is not None and x.shape[2] != n_features:
        raise ValueError(f"{name} have {x.shape[2]} outputs per image but the corrector was fitted on {n_features}")
    return x


def _labels(value: Any, k: int, n: int, n_classes: Optional[int] = None) -> np.ndarray:
    """Labels ``[N]`` or ``[K, N]`` as an int ``[K, N]`` array of classes in range."""
    y = np.asarray(value)
    if y.shape not in ((n,), (k, n)) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integer classes of shape [{n}] or [{k}, {n}] for these voltages; got "
                         f"shape {y.shape}, dtype {y.dtype}")
    if (y < 0).any() or (n_classes is not None and (y >= n_classes).any()):
        raise ValueError(f"labels must lie in [0, {n_classes if n_classes is not None else 'n_classes'}); got "
                         f"{int(y.min())} to {int(y.max())}")
    return np.broadcast_to(y, (k, n)).astype(np.int64)


def chip_statistics(outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-chip mean and standard deviation ``[K, F]`` of outputs ``[K, U, F]`` on unlabelled images."""
    x = _voltages("outputs", outputs)
    return x.mean(axis=1), x.std(axis=1)


class PopulationCorrector(sklearn.base.BaseEstimator):
    """One MLP ``[chip-standardized outputs, chip signature] -> hidden -> classes`` trained on many chips.

    ``hidden``: neurons of its one tanh layer; ``signature_images``: unlabelled images a signature
    is computed from (in training, every chip gets ``draws`` signatures from random subsets, so that
    the network sees how much a signature varies); ``rows_per_chip``: labelled training rows taken
    from each chip (None: all; rounded down to a multiple of ``draws``); ``weight_decay``: L2 on the
    weight matrices; ``max_iter``: L-BFGS iterations. ``adapt`` makes the per-chip predictor.
    """

    def __init__(self, hidden: int = 64, *, signature_images: int = 200, draws: int = 4,
                 rows_per_chip: Optional[int] = 400, weight_decay: float = 1e-4, max_iter: int = 300,
                 seed: int = 0, n_threads: int = 1) -> None:
        self.hidden = hidden
        self.signature_images = signature_images
        self.draws = draws
        self.rows_per_chip = rows_per_chip
        self.weight_decay = weight_decay
        self.max_iter = max_iter
        self.seed = seed
        self.n_threads = n_threads
        self._settings()

    def _settings(self) -> dict[str, Any]:
        return {
            "hidden": check_int("hidden", self.hidden, 1, "neurons of the population network, e.g. 64"),
            "signature_images": check_int("signature_images", self.signature_images, 2,
                                          "unlabelled images per chip signature, e.g. 200"),
            "draws": check_int("draws", self.draws, 1, "signatures drawn per training chip, e.g. 4"),
            "rows_per_chip": None if self.rows_per_chip is None else check_int(
                "rows_per_chip", self.rows_per_chip, 1, "labelled rows per training chip, or None for all"),
            "weight_decay": check_positive_float("weight_decay", self.weight_decay, "L2 on the weights, e.g. 1e-4",
                                                 allow_zero=True),
            "max_iter": check_int("max_iter", self.max_iter, 1, "L-BFGS iterations, e.g. 300"),
            "seed": check_int("seed", self.seed, 0, "a non-negative integer seed"),
            "n_threads": check_int("n_threads", self.n_threads, 1, "torch CPU threads used inside fit"),
        }

    # ----- the network -----------------------------------------------------------------------
    def _inputs(self, x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Chip-standardized outputs ``[K, M, F]`` and standardized signatures ``[K, 2F]`` as tensors."""
        scale = np.where(std > _PINNED_V, std, 1.0)
        z = (x - mean[:, None, :]) / scale[:, None, :]
        sig = (np.concatenate([mean, std], axis=1) - self.signature_mean_) / self.signature_std_
        return torch.as_tensor(z), torch.as_tensor(sig)

    def _logits(self, theta: torch.Tensor, z: torch.Tensor, sig: torch.Tensor) -> torch.Tensor:
        """Logits ``[K, M, C]`` of the network with flat parameters ``theta`` ``[P]``."""
        f, h, c = self.n_features_in_, int(self.hidden), self.n_classes_
        s = 2 * f
        sizes = [h * f, h * s, h, c * h, c]
        w1, w1s, b1, w2, b2 = torch.split(theta, sizes)
        pre = z @ w1.reshape(h, f).T + (sig @ w1s.reshape(h, s).T + b1)[:, None, :]
        return torch.tanh(pre) @ w2.reshape(c, h).T + b2

    @property
    def n_parameters(self) -> int:
        """Trainable numbers of the population network (shared by every chip)."""
        self._check_fitted()
        return int(self.theta_.numel())

    def _check_fitted(self) -> None:
        if not hasattr(self, "theta_"):
            raise NotFittedError("this PopulationCorrector is not fitted yet: call fit(voltages, labels) first")

    # ----- fit --------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, n_classes: Optional[int] = None) -> "PopulationCorrector":
        """Train on ``K`` chips: ``X`` ``[K, N, F]`` output voltages, ``y`` ``[N]`` or ``[K, N]`` labels."""
        settings = self._settings()
        x = _voltages("voltages", X)
        k, n, f = x.shape
        labels = _labels(y, k, n, n_classes)
        c = int(labels.max()) + 1 if n_classes is None else check_int("n_classes", n_classes, 2, "number of classes")
        u = settings["signature_images"]
        if u > n:
            raise ValueError(f"signature_images={u} exceeds the {n} images per chip; lower it")
        rng = np.random.default_rng(settings["seed"])
        draws = settings["draws"]
        per = n if settings["rows_per_chip"] is None else min(settings["rows_per_chip"], n)
        per -= per % draws  # each signature draw gets as many rows
        if per == 0:
            raise ValueError(f"rows_per_chip={settings['rows_per_chip']} gives no row to each of the draws={draws} signatures; raise it")
        # Every chip gets `draws` signatures from random unlabelled subsets; its rows are split among them.
        sub = np.stack([np.stack([rng.choice(n, u, replace=False) for _ in range(draws)]) for _ in range(k)])
        means = np.stack([x[i, sub[i]].mean(axis=1) for i in range(k)])  # [K, D, F]
        stds = np.stack([x[i, sub[i]].std(axis=1) for i in range(k)])
        rows = np.stack([rng.choice(n, per, replace=False) for _ in range(k)])  # [K, per]
        group = np.arange(per) % draws
        sigs = np.concatenate([means, stds], axis=2).reshape(k * draws, 2 * f)
        self.signature_mean_ = sigs.mean(axis=0)
        self.signature_std_ = np.where(sigs.std(axis=0) > 0, sigs.std(axis=0), 1.0)
        self.n_features_in_, self.n_classes_ = f, c
        # One "chip" of the batch per (chip, draw): its rows and its signature.
        xr = np.stack([x[i, rows[i][group == d]] for i in range(k) for d in range(draws)])
        yr = np.stack([labels[i, rows[i][group == d]] for i in range(k) for d in range(draws)])
        z, sig = self._inputs(xr, means.reshape(k * draws, f), stds.reshape(k * draws, f))
        yt = torch.as_tensor(yr)
        gen = torch.Generator().manual_seed(settings["seed"])
        h, s = int(self.hidden), 2 * f
        bound1, bound2 = 1.0 / math.sqrt(f + s), 1.0 / math.sqrt(h)
        parts = [(h * (f + s) + h, bound1), (c * h + c, bound2)]
        theta0 = torch.cat([(torch.rand(m, generator=gen, dtype=torch.float64) * 2 - 1) * b for m, b in parts])
        # _logits splits theta as [w1 (h*f), w1s (h*s), b1, w2, b2]: the first block covers the first three.
        wd = settings["weight_decay"]
        n_w1 = h * (f + s)

        def objective(theta: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
            t = theta[0]
            logits = self._logits(t, z, sig)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, c), yt.reshape(-1))
            penalty = t[:n_w1].pow(2).sum() + t[n_w1 + h:n_w1 + h + c * h].pow(2).sum()
            return (loss + 0.5 * wd * penalty).reshape(1)

        threads = torch.get_num_threads()
        torch.set_num_threads(settings["n_threads"])
        try:
            theta, history, iterations, _ = lbfgs(autograd_objective(objective), theta0[None], settings["max_iter"],
                                                   1e-6)
        finally:
            torch.set_num_threads(threads)
        self.theta_ = theta[0].detach()
        self.loss_history_ = np.concatenate(history)
        self.n_iter_ = int(iterations[0])
        return self

    # ----- per-chip adaptation ----------------------------------------------------------------
    def adapt(self, unlabelled: Any, labelled: Any = None, labels: Any = None, *, reference: Any = None,
              prior: float = 3.0, max_iter: int = 100) -> "AdaptedChips":
        """The predictor of ``K`` new chips: signatures from ``unlabelled`` ``[K, U, F]``, and, given
        ``labelled`` ``[K, k, F]`` with ``labels`` ``[K, k]`` (or ``[k]``), a per-chip affine head
        pulled toward the identity with strength ``prior / n`` (``n`` images in its fit). No labelled
        images: the signature alone.

        ``reference`` ``[K, U, C]`` (or ``[U, C]``): the defect-free design's outputs on the unlabelled
        images, computed in software. Its decisions then serve as labels of the unlabelled images for
        the head, so even ``k = 0`` fits one.
        """
        self._check_fitted()
        xu = _voltages("unlabelled voltages", unlabelled, self.n_features_in_)
        k = xu.shape[0]
        mean, std = chip_statistics(xu)
        f = self.n_features_in_
        head = torch.zeros(k, f * f + f, dtype=torch.float64)
        if (labelled is None) != (labels is None):
            raise ValueError("give labelled voltages and their labels together, or neither (k = 0)")
        if reference is not None:
            ref = np.asarray(reference, dtype=np.float64)
            if ref.shape not in (xu.shape[1:2] + (self.n_classes_,), xu.shape[:2] + (self.n_classes_,)):
                raise ValueError(f"reference must hold the design's {self.n_classes_} outputs on each unlabelled "
                                 f"image, shape [{xu.shape[1]}, {self.n_classes_}] or [{k}, {xu.shape[1]}, "
                                 f"{self.n_classes_}]; got {ref.shape}")
            pseudo = np.broadcast_to(ref.argmax(axis=-1), xu.shape[:2])
            labelled = xu if labelled is None else np.concatenate([_voltages("labelled voltages", labelled, f), xu], 1)
            labels = pseudo if labels is None else np.concatenate(
                [np.broadcast_to(np.asarray(labels), (k, np.shape(labelled)[1] - xu.shape[1])), pseudo], axis=1)
        if labelled is not None:
            xl = _voltages("labelled voltages", labelled, f)
            if xl.shape[0] != k:
                raise ValueError(f"labelled voltages hold {xl.shape[0]} chips but unlabelled hold {k}; one each")
            yl = torch.as_tensor(_labels(labels, k, xl.shape[1], self.n_classes_))
            lam = check_positive_float("prior", prior, "strength of the pull toward the identity",
                                       allow_zero=True) / xl.shape[1]
            z, sig = self._inputs(xl, mean, std)
            theta = self.theta_
            c = self.n_classes_

            def objective(delta: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
                zz = _apply_head(delta, z[index], f)
                logits = self._logits(theta, zz, sig[index])
                ce = torch.nn.functional.cross_entropy(logits.reshape(-1, c), yl[index].reshape(-1),
                                                       reduction="none").reshape(len(index), -1).mean(dim=1)
                return ce + lam * delta.pow(2).sum(dim=1)

            head, _, _, _ = lbfgs(autograd_objective(objective), head, max_iter, 1e-6)
        return AdaptedChips(self, mean, std, head.detach(), labelled is not None)


def _apply_head(delta: torch.Tensor, z: torch.Tensor, f: int) -> torch.Tensor:
    """``(I + dA) z + b`` per chip: ``delta`` ``[K, F*F + F]`` holds ``dA`` then ``b``."""
    da = delta[:, :f * f].reshape(-1, f, f)
    return z + z @ da.transpose(1, 2) + delta[:, None, f * f:]


@dataclass
class AdaptedChips:
    """The population corrector adapted to ``K`` chips (their signatures and affine heads)."""

    model: PopulationCorrector
    mean: np.ndarray
    std: np.ndarray
    head: torch.Tensor
    has_head: bool

    @property
    def n_chips(self) -> int:
        """Chips this predictor serves."""
        return int(self.mean.shape[0])

    @property
    def n_parameters(self) -> int:
        """Numbers fitted per chip: the signature (2F) and, with labels, the affine head (F^2 + F)."""
        f = self.model.n_features_in_
        return 2 * f + (f * f + f if self.has_head else 0)

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits ``[K, M, C]`` of chip ``k``'s voltages ``X[k]``."""
        x = _voltages("voltages", X, self.model.n_features_in_)
        if x.shape[0] != self.n_chips:
            raise ValueError(f"voltages hold {x.shape[0]} chips but this predictor was adapted to {self.n_chips}")
        z, sig = self.model._inputs(x, self.mean, self.std)
        with torch.no_grad():
            return self.model._logits(self.model.theta_, _apply_head(self.head, z, x.shape[2]), sig).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Predicted classes ``[K, M]``."""
        return self.decision_function(X).argmax(axis=-1)

    def score(self, X: Any, y: Any) -> np.ndarray:
        """Accuracy of each chip ``[K]`` on ``X`` ``[K, M, F]`` with labels ``[M]`` or ``[K, M]``."""
        pred = self.predict(X)
        return (pred == _labels(y, *pred.shape, self.model.n_classes_)).mean(axis=1)


__all__ = ["AdaptedChips", "PopulationCorrector", "chip_statistics"]
