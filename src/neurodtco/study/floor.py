"""The floor of a study: the seconds its arithmetic needs on this machine, to compare a run against.

The corrector fits dominate a study. Their least cost is the flops of their linear maps (the
matrix products of each model's loss and gradient, ``flops_per_evaluation``) at the evaluations
the fits actually ran, which every fitted corrector reports as ``fit_flops_`` and every task as
``fit_flops``. At the rate a core of this machine multiplies matrices of the fits' shapes
(measured by ``gemm_rate`` in the same run as the study, in CPU seconds), those flops take
``fit_flops / rate`` seconds. The simulations are counted at their measured
engine seconds: they are a few percent of a study and their own floor is the engine's concern.
Spread over ``workers`` cores, that is the wall-time floor; ``wall / floor`` says how far a run is
from the speed of its arithmetic on an otherwise idle machine, and ``task CPU / (workers * floor)``
says the same of the tasks' own CPU seconds, which other processes disturb far less.
"""

from __future__ import annotations

import time
from typing import Iterable, Mapping

import torch

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def gemm_rate(n_images: int, n_features: int, hidden: int, dtype: str = "float64", seconds: float = 0.2) -> float:
    """Flops per second of one core multiplying ``[n_images, n_features] x [n_features, hidden]`` in ``dtype``.

    Timed in the thread's CPU seconds, the best of five timings of about ``seconds / 5`` each: the
    floor is what a core does, not how much of it the neighbours on a shared machine left.
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype={dtype!r} is not accepted: choose one of {tuple(_DTYPES)}")
    for name, value in (("n_images", n_images), ("n_features", n_features), ("hidden", hidden)):
        if value < 1:
            raise ValueError(f"{name}={value} is not accepted: a matrix dimension must be >= 1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a study's workers each run one thread
    try:
        gen = torch.Generator().manual_seed(0)
        a = torch.randn(n_images, n_features, generator=gen, dtype=_DTYPES[dtype])
        b = torch.randn(n_features, hidden, generator=gen, dtype=_DTYPES[dtype])
        out = torch.empty(n_images, hidden, dtype=_DTYPES[dtype])
        flops = 2.0 * n_images * n_features * hidden
        repeats = 1
        while True:  # enough products that one timing lasts about seconds / 5
            start = time.thread_time()
            for _ in range(repeats):
                torch.matmul(a, b, out=out)
            elapsed = time.thread_time() - start
            if elapsed >= seconds / 5:
                break
            repeats *= 2
        best = elapsed
        for _ in range(4):
            start = time.thread_time()
            for _ in range(repeats):
                torch.matmul(a, b, out=out)
            best = min(best, time.thread_time() - start)
    finally:
        torch.set_num_threads(threads)
    return flops * repeats / best


def floor_seconds(fit_flops: float, rate: float, simulate_s: float = 0.0, workers: int = 1) -> float:
    """Wall seconds of ``fit_flops`` at ``rate`` flops/s plus ``simulate_s`` engine seconds, spread over ``workers``."""
    if rate <= 0 or workers < 1 or fit_flops < 0 or simulate_s < 0:
        raise ValueError(f"floor_seconds needs fit_flops >= 0, rate > 0, simulate_s >= 0 and workers >= 1; got "
                         f"fit_flops={fit_flops}, rate={rate}, simulate_s={simulate_s}, workers={workers}")
    return (fit_flops / rate + simulate_s) / workers


def study_floor(infos: Iterable[Mapping[str, float]], rate: float, workers: int = 1) -> dict[str, float]:
    """The floor of a run from its tasks' infos (``fit_flops`` and ``simulate_s`` of each): seconds and their parts."""
    flops = simulate = 0.0
    for info in infos:
        flops += _number(info.get("fit_flops"))
        simulate += _number(info.get("simulate_s"))
    return {"floor_s": floor_seconds(flops, rate, simulate, workers), "fit_flops": flops,
            "fit_floor_s": flops / rate, "simulate_s": simulate, "gemm_flops_per_s": rate}


def _number(value: object) -> float:
    """A task's figure, 0 where the task has none (``None``, or NaN in a table of tasks of other kinds)."""
    return 0.0 if value is None or value != value else float(value)  # type: ignore[arg-type]
