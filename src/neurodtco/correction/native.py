"""Corrector fits compiled for this machine: the whole L-BFGS fit of each model in C (``_fit.c``).

A study fits thousands of small correctors. In torch each evaluation of their loss is a dozen
operations over memory, each paying its dispatch, and float64 ``tanh`` and ``exp`` cost more than
the products; the C fit runs the same L-BFGS (``solvers.lbfgs``) and the same loss (``objective``)
with every pass over a block of images fused, and vector ``exp``/``tanh``/``log`` of its own.

The source ships with the package and is compiled on first use with the system's C compiler
(``$CC``, else ``cc``, ``gcc`` or ``clang``) for the machine it runs on, into the cache folder
(``$NEURODTCO_CACHE/native``, default ``~/.cache/neurodtco/native``), keyed by the source, the
compiler and the processor. Without a compiler the fits run in torch, with one warning that
says so; ``NEURODTCO_NATIVE=0`` asks for torch. ``fit`` takes the stacked inputs of
``BatchedCorrector.fit`` and returns what ``solvers.lbfgs`` returns, for the same models up to
rounding (the tests hold its objective to autograd and its L-BFGS to the torch one).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

SOURCE = Path(__file__).with_name("_fit.c")
#: what the C fit computes, by corrector: an affine calibration per output, one linear layer, or an MLP
KINDS = {"affine": 0, "linear": 1, "mlp": 2}
ACTIVATIONS = {"tanh": 0, "relu": 1, "hardtanh": 2}
_FLAGS = (["-O3", "-march=native"], ["-O3"])  # the second where the compiler has no -march=native
_HISTORY_EVERY = 50  # solvers.lbfgs keeps the loss every 50 iterations

_D = ctypes.POINTER(ctypes.c_double)
_L = ctypes.POINTER(ctypes.c_int64)
_I, _F = ctypes.c_int, ctypes.c_double


def _compiler() -> Optional[str]:
    for name in filter(None, (os.environ.get("CC"), "cc", "gcc", "clang")):
        path = shutil.which(name)
        if path:
            return path
    return None


def _processor() -> str:
    """What the compiled code depends on besides the source: the machine and its instruction sets."""
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = line
                break
    except OSError:
        pass
    return f"{platform.machine()}|{flags}"


def _cache() -> Path:
    root = Path(os.environ.get("NEURODTCO_CACHE", Path.home() / ".cache" / "neurodtco")) / "native"
    try:
        root.mkdir(parents=True, exist_ok=True)
        if os.access(root, os.W_OK):
            return root
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / "neurodtco-native"


def _build() -> tuple[Optional[ctypes.CDLL], str]:
    """The compiled library, or None and why not."""
    if os.environ.get("NEURODTCO_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None, "NEURODTCO_NATIVE=0 asks for the torch fits"
    cc = _compiler()
    if cc is None:
        return None, "no C compiler found (set CC, or install gcc or clang)"
    source = SOURCE.read_bytes()
    reasons = []
    for flags in _FLAGS:
        key = hashlib.sha256(source + "\0".join([cc, *flags, _processor()]).encode()).hexdigest()[:16]
        folder = _cache()
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"fit-{key}.so"
        if not target.exists():
            # Workers of one study may build at once: each writes its own file, then renames it into place.
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
            os.close(fd)
            try:
                done = subprocess.run([cc, *flags, "-shared", "-fPIC", "-o", tmp, str(SOURCE), "-lm"],
                                      capture_output=True, text=True, timeout=120)
                if done.returncode != 0:
                    reasons.append(f"{cc} {' '.join(flags)} failed: {done.stderr.strip()[-400:]}")
                    continue
                os.replace(tmp, target)
            except (OSError, subprocess.SubprocessError) as exc:
                reasons.append(f"{cc} {' '.join(flags)} failed: {exc}")
                continue
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        try:
            lib = ctypes.CDLL(str(target))
        except OSError as exc:
            reasons.append(f"loading {target} failed: {exc}")
            continue
        lib.neurodtco_fit.restype = _F
        lib.neurodtco_fit.argtypes = [_I, _I, _I, _I, _I, _I, _I, _D, _L, _D, _D, _F, _I, _F, _I, _D, _I, _L, _L, _D]
        lib.neurodtco_objective.restype = _F
        lib.neurodtco_objective.argtypes = [_I, _I, _I, _I, _I, _I, _D, _L, _D, _D, _F, _D, _I]
        return lib, ""
    return None, "; ".join(reasons)


@lru_cache(maxsize=1)
def _library() -> tuple[Optional[ctypes.CDLL], str]:
    lib, why = _build()
    if lib is None and not why.startswith("NEURODTCO_NATIVE"):
        warnings.warn(f"corrector fits run in torch, about 3x slower: {why}", RuntimeWarning, stacklevel=3)
    return lib, why


_torch_only = [0]  # depth of torch_fits blocks


@contextmanager
def torch_fits() -> Iterator[None]:
    """Within this block the corrector fits run in torch (as ``NEURODTCO_NATIVE=0`` asks), e.g. to compare the two."""
    _torch_only[0] += 1
    try:
        yield
    finally:
        _torch_only[0] -= 1


def available() -> bool:
    """True if the compiled fits can run here (a C compiler built them, NEURODTCO_NATIVE is not 0, not in torch_fits)."""
    return not _torch_only[0] and _library()[0] is not None


def unavailable_reason() -> str:
    """Why the compiled fits cannot run here ('' if they can)."""
    return _library()[1]


def _pointer(array: np.ndarray, kind=_D):
    return array.ctypes.data_as(kind)


def _shape(kind: str, f1: int, hidden: int, n_classes: int) -> int:
    """Parameters of one model, in ``objective.unflatten``'s order."""
    if kind == "mlp":
        return hidden * f1 + n_classes * (hidden + 1)
    return n_classes * (2 if kind == "affine" else f1)


def _check(kind: str, activation: str, f1: int, hidden: int, n_classes: int, p: int) -> None:
    if kind not in KINDS or activation not in ACTIVATIONS:
        raise ValueError(f"kind={kind!r}, activation={activation!r}: expected one of {tuple(KINDS)} and "
                         f"{tuple(ACTIVATIONS)}")
    if kind == "affine" and f1 - 1 != n_classes:
        raise ValueError(f"an affine calibration needs one input per class: got {f1 - 1} inputs for {n_classes} classes")
    if p != _shape(kind, f1, hidden, n_classes):
        raise ValueError(f"{p} parameters do not fit kind={kind!r} with {f1 - 1} inputs, {hidden} hidden and "
                         f"{n_classes} classes ({_shape(kind, f1, hidden, n_classes)} expected)")


def fit(kind: str, activation: str, x: np.ndarray, labels: np.ndarray, theta0: np.ndarray, n_classes: int,
        hidden: int, mask: Optional[np.ndarray], weight_decay: float, max_iter: int, tol: float,
        memory: int = 10, threads: int = 1) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, float]:
    """L-BFGS fits of ``K`` models: ``(theta [K, P], loss history, iterations [K], evaluations)`` as ``solvers.lbfgs``.

    ``x`` ``[K, F + 1, N]``: standardized inputs with a last row of ones; ``labels`` ``[K, N]``;
    ``theta0`` ``[K, P]``; ``mask`` ``[P]`` is 1 on the weights ``weight_decay`` shrinks (None: no
    penalty). ``threads`` > 1 fits slices of the models at once (the C code holds no Python lock).
    """
    lib = _library()[0]
    if lib is None:
        raise RuntimeError(f"the compiled corrector fits are not available: {unavailable_reason()}")
    x = np.ascontiguousarray(x, dtype=np.float64)
    k, f1, n = x.shape
    theta = np.array(theta0, dtype=np.float64, order="C", copy=True)
    _check(kind, activation, f1, hidden, n_classes, theta.shape[1])
    y = np.ascontiguousarray(np.broadcast_to(labels, (k, n)), dtype=np.int64)
    m = None if mask is None else np.ascontiguousarray(mask, dtype=np.float64)
    slots = 1 + -(-max_iter // _HISTORY_EVERY)  # the start, then every 50 iterations
    history = np.zeros((k, slots))
    iterations, stopped, final = np.zeros(k, np.int64), np.zeros(k, np.int64), np.zeros(k)

    def run(lo: int, hi: int) -> float:
        # One model per call: Python looks at its signals between calls, so Ctrl-C stops a long batch promptly.
        total = 0.0
        for i in range(lo, hi):
            spent = lib.neurodtco_fit(KINDS[kind], ACTIVATIONS[activation], 1, f1, n, hidden, n_classes,
                                      _pointer(x[i]), _pointer(y[i], _L), _pointer(theta[i]),
                                      None if m is None else _pointer(m), weight_decay, max_iter, tol, memory,
                                      _pointer(history[i]), slots, _pointer(iterations[i:], _L),
                                      _pointer(stopped[i:], _L), _pointer(final[i:]))
            if spent < 0:
                return spent
            total += spent
        return total

    bounds = np.linspace(0, k, max(1, min(threads, k)) + 1).astype(int)
    if len(bounds) == 2:
        totals = [run(0, k)]
    else:
        with ThreadPoolExecutor(len(bounds) - 1) as pool:
            totals = list(pool.map(run, bounds[:-1], bounds[1:]))
    if any(t < 0 for t in totals):
        raise MemoryError(f"the compiled fit could not allocate its buffers for {k} models of {n} images")
    # The batched torch loop runs until its last model stops, and records every 50 iterations until then.
    ran = int(stopped.max()) if k else 0
    records = [history[:, 0]] + [history[:, 1 + i] for i in range(-(-ran // _HISTORY_EVERY))] + [final]
    return theta, records, iterations, float(sum(totals)) / k


def objective(kind: str, activation: str, x: np.ndarray, labels: np.ndarray, theta: np.ndarray, n_classes: int,
              hidden: int, mask: Optional[np.ndarray] = None, weight_decay: float = 0.0,
              repeats: int = 1) -> tuple[float, np.ndarray]:
    """One model's loss and gradient ``[P]`` at ``theta`` ``[P]``, on ``x`` ``[F + 1, N]`` and ``labels`` ``[N]``.

    ``repeats`` > 1 evaluates it that many times (the same result), for timing one evaluation.
    """
    lib = _library()[0]
    if lib is None:
        raise RuntimeError(f"the compiled corrector fits are not available: {unavailable_reason()}")
    x = np.ascontiguousarray(x, dtype=np.float64)
    f1, n = x.shape
    theta = np.ascontiguousarray(theta, dtype=np.float64)
    _check(kind, activation, f1, hidden, n_classes, theta.shape[0])
    y = np.ascontiguousarray(labels, dtype=np.int64)
    m = None if mask is None else np.ascontiguousarray(mask, dtype=np.float64)
    grad = np.zeros_like(theta)
    value = lib.neurodtco_objective(KINDS[kind], ACTIVATIONS[activation], f1, n, hidden, n_classes, _pointer(x),
                                    _pointer(y, _L), _pointer(theta), None if m is None else _pointer(m),
                                    weight_decay, _pointer(grad), max(1, int(repeats)))
    if np.isnan(value):
        raise MemoryError(f"the compiled objective could not allocate its buffers for {n} images")
    return float(value), grad
