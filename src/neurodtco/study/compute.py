"""What a worker does: build the circuits of a task, simulate them, fit the correctors.

Every function here is pure given its arguments (the study, the lowered network, the task), so
a task gives bit-identical rows in any process, on any executor, in any order. Workers return
their rows and arrays to the runner, which alone writes the store: a Dask worker on another
machine needs no shared file system.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from .. import correction
from ..correction import BatchedMLPCorrector, cross_defect
from ..data import to_voltages
from ..defects import Defect, apply_defects
from ..engines import get_engine, simulate
from ..imperfections import apply_imperfections
from ..mapping import map_ops
from ..network import cached_fit, default_network, load_network
from ..ops import Conv, Dense, Op
from ..seeds import stable_seed
from .schema import Study
from .tasks import CircuitPoint, Task
from .timing import FIT_PREFIX


@dataclass(frozen=True, eq=False)
class Setup:
    """What every task needs, small enough to ship to each worker: the study and the network's weights."""

    study: dict[str, Any]
    ops: tuple[Op, ...]
    fingerprint: str
    software_accuracy: float


@dataclass(eq=False)
class TaskOutput:
    """A finished task: its table rows, the arrays to keep beside them, and timing information."""

    table: pd.DataFrame
    arrays: Optional[dict[str, np.ndarray]] = None
    info: dict[str, Any] = field(default_factory=dict)


def ops_fingerprint(ops: Sequence[Op]) -> str:
    """SHA-256 (16 hex digits) of a lowered network: its parameters and its structure; the same network, the same tasks."""
    h = hashlib.sha256()
    for op in ops:
        arrays = (op.weight, op.bias) if isinstance(op, (Dense, Conv)) else ()
        h.update(repr((type(op).__name__, getattr(op, "geometry", None), getattr(op, "activation", None),
                       getattr(op, "slot", None))).encode())
        for a in arrays:
            a = np.ascontiguousarray(a, dtype=np.float64)
            h.update(str(a.shape).encode())
            h.update(a.tobytes())
    return h.hexdigest()[:16]


def prepare_setup(study: Study, progress: Optional[Callable[[int, int], None]] = None) -> Setup:
    """Load (or train and cache) the study's network once, in the runner, and pack it for the workers."""
    dataset = study.dataset.load()
    if study.network.model is not None:
        net = load_network(study.network.model)
        if net.n_inputs != dataset.n_features:
            raise ValueError(f"network.model {study.network.model!r} expects {net.n_inputs} inputs; "
                             f"the dataset has {dataset.n_features}")
    elif study.network.arch is not None:
        net = cached_fit(dataset, study.network.arch_config(dataset), data_seed=study.dataset.seed, progress=progress)
    else:
        config = study.network.to_config()
        if config.widths[0] != dataset.n_features or config.widths[-1] != dataset.n_classes:
            raise ValueError(f"network.widths {list(config.widths)} do not fit the {study.dataset.name} images: they "
                             f"need {dataset.n_features} inputs and {dataset.n_classes} outputs")
        net = default_network(dataset, config, data_seed=study.dataset.seed, progress=progress)
    ops = tuple(net.ops())
    if study.imperfection_items:
        # Fail here, once, on what only a circuit can refuse (a target outside the window, say),
        # rather than in every task on every worker.
        try:
            apply_imperfections(map_ops(list(ops), study.circuit.to_config()), study.imperfection_items, 0)
        except ValueError as exc:
            raise ValueError(f"imperfections: {exc}") from None
    return Setup(study=study.canonical(), ops=ops, fingerprint=ops_fingerprint(ops),
                 software_accuracy=net.accuracy(dataset.x_test, dataset.y_test))


@dataclass(frozen=True, eq=False)
class _Context:
    study: Study
    circuit: Any
    engine: Any
    x_all_v: np.ndarray
    y_all: np.ndarray
    n_train: int


_CONTEXTS: dict[str, _Context] = {}


def _context(setup: Setup) -> _Context:
    """The healthy circuit, the engine and the images, built once per worker process."""
    key = setup.fingerprint + hashlib.sha256(repr(sorted(setup.study.items())).encode()).hexdigest()
    ctx = _CONTEXTS.get(key)
    if ctx is not None:
        return ctx
    study = Study.model_validate(setup.study)
    dataset = study.dataset.for_correctors(study.dataset.load())
    mapping = study.circuit.to_config()
    circuit = map_ops(list(setup.ops), mapping)
    ctx = _Context(study=study, circuit=circuit, engine=get_engine(study.engine, **study.engine_options),
                   x_all_v=to_voltages(dataset.x_all, mapping.v_read_v), y_all=dataset.y_all,
                   n_train=len(dataset.y_train))
    _CONTEXTS.clear()  # one study at a time per worker; do not hoard circuits
    _CONTEXTS[key] = ctx
    return ctx


def execute_task(task: Task, setup: Setup, inputs: Optional[dict[str, np.ndarray]] = None) -> TaskOutput:
    """Run one task in the current process (the function every executor ships to its workers)."""
    start, cpu_start = time.perf_counter(), time.process_time()
    with threadpool_limits(limits=1):  # one BLAS thread per worker process: no oversubscription
        if task.stage == "circuits":
            out = _run_circuits(task, setup)
        elif task.stage == "cross":
            if inputs is None:
                raise ValueError(f"cross task {task.id} needs the stored voltages of its dependencies")
            out = _run_cross(task, setup, inputs)
        else:
            raise ValueError(f"unknown task stage {task.stage!r}; expected 'circuits' or 'cross'")
    # CPU seconds as well as wall seconds: on a shared machine the wall time measures the neighbours too.
    out.info.update({"task_id": task.id, "stage": task.stage, "elapsed_s": time.perf_counter() - start,
                     "cpu_s": time.process_time() - cpu_start, "pid": os.getpid(), "host": socket.gethostname()})
    return out


# ----------------------------------------------------------------------------- circuits tasks

def build_circuit(ctx_circuit: Any, study: Study, point: CircuitPoint) -> tuple[Any, Optional[np.ndarray], float, str]:
    """The circuit of one grid point: imperfections, then the defect; returns (circuit, mask, density, record)."""
    circuit = ctx_circuit
    record = ""
    if study.imperfection_items:
        circuit, rec = apply_imperfections(circuit, study.imperfection_items, point.imperfection_seed)
        record = _json_text(rec)
    if point.is_healthy:
        return circuit, None, 0.0, record
    params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in point.params}
    defect = Defect(pattern=point.pattern, layers=(point.array,), kind=point.kind, params=params,
                    density=point.severity)
    circuit, rec = apply_defects(circuit, [defect], seed=point.defect_seed)
    mask = np.asarray(rec.masks[point.array], dtype=bool)
    return circuit, mask, float(rec.density[point.array]), record


def _json_text(record: Any) -> str:
    if hasattr(record, "to_dict"):
        record = record.to_dict()
    elif hasattr(record, "__dataclass_fields__"):
        record = dataclasses.asdict(record)
    return json.dumps(record, sort_keys=True, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))


def _accuracy(pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Accuracy along the last axis (works for one circuit or a batch)."""
    return np.mean(np.asarray(pred) == np.asarray(labels), axis=-1)


def _run_circuits(task: Task, setup: Setup) -> TaskOutput:
    ctx = _context(setup)
    study = ctx.study
    t0 = time.perf_counter()
    outputs, hidden, masks, densities, records = [], [], [], [], []
    want_hidden = "lastlayer" in study.correctors.baselines  # the last-layer retrain reads the last hidden layer
    t_build = t_factorize = 0.0
    for point in task.circuits:
        start = time.perf_counter()
        circuit, mask, density, record = build_circuit(ctx.circuit, study, point)
        t_build += time.perf_counter() - start
        # Read noise is drawn per inference group at simulation time, from the circuit's own seed.
        result = simulate(circuit, ctx.x_all_v, engine=ctx.engine, read_noise=study.imperfection_items.read_noise,
                          seed=point.imperfection_seed, return_hidden=want_hidden)
        t_factorize += sum(layer.get("factorize_s", 0.0) for layer in result.info.get("layers", []))
        outputs.append(result.outputs_v)
        if want_hidden:
            hidden.append(result.hidden_v[-1])
        masks.append(mask)
        densities.append(density)
        records.append(record)
    t_sim = time.perf_counter() - t0 - t_build
    v = np.stack(outputs)  # [K, images, outputs], train images first
    n_tr = ctx.n_train
    y_tr, y_te = ctx.y_all[:n_tr], ctx.y_all[n_tr:]
    raw = np.argmax(v, axis=2)
    acc_before = _accuracy(raw[:, n_tr:], y_te)
    acc_train_before = _accuracy(raw[:, :n_tr], y_tr)
    acc_all_before = _accuracy(raw, ctx.y_all)

    results: list[tuple[str, int, int, np.ndarray, np.ndarray]] = [
        ("none", 0, 0, acc_before, acc_train_before)]
    t1 = time.perf_counter()
    fit_s: dict[str, float] = {}
    fit_flops: list[float] = []
    results.extend(_fit_correctors(study, v, y_tr, y_te, n_tr, np.stack(hidden) if hidden else None, fit_s,
                                   fit_flops))
    t_fit = time.perf_counter() - t1

    rows = []
    for k, point in enumerate(task.circuits):
        cells_hit = int(masks[k].sum()) if masks[k] is not None else 0
        for corrector, hidden, n_params, acc, acc_train in results:
            rows.append({
                "task_id": task.id, "circuit_id": point.circuit_id, "pattern": point.pattern, "kind": point.kind,
                "array": point.array, "severity": point.severity, "instance": point.instance,
                "defect_seed": point.defect_seed, "density": densities[k], "cells_hit": cells_hit,
                "corrector": corrector, "hidden": hidden, "n_parameters": n_params,
                "accuracy": float(acc[k]), "accuracy_train": float(acc_train[k]),
                "accuracy_before": float(acc_before[k]), "accuracy_all_before": float(acc_all_before[k]),
                "software_accuracy": setup.software_accuracy, "imperfections": records[k],
            })
    table = pd.DataFrame(rows, columns=CIRCUIT_COLUMNS)
    arrays: Optional[dict[str, np.ndarray]] = None
    if study.outputs.save_voltages or any(p.is_healthy for p in task.circuits):
        arrays = {"circuit_ids": np.array([p.circuit_id for p in task.circuits]),
                  "outputs_v": v.astype(np.float32)}
        if all(m is not None for m in masks):
            arrays["masks"] = np.stack(masks)
        if any(p.is_healthy for p in task.circuits):
            # The report draws defect maps on the programmed conductances and needs the labels.
            for i, layer in enumerate(ctx.circuit.layers):
                arrays[f"conductance_{i}"] = np.asarray(layer.conductance)
            arrays["labels"] = ctx.y_all.astype(np.int16)
            arrays["n_train"] = np.array(n_tr)
    info = {"n_circuits": len(task.circuits), "n_images": int(v.shape[1]),
            "n_inferences": int(v.shape[0] * v.shape[1]), "build_s": t_build, "factorize_s": t_factorize,
            "simulate_s": t_sim, "fit_s": t_fit, **{f"{FIT_PREFIX}{k}": v_s for k, v_s in fit_s.items()},
            "n_fits": len(task.circuits) * (len(results) - 1), "fit_flops": sum(fit_flops)}
    return TaskOutput(table=table, arrays=arrays, info=info)


CIRCUIT_COLUMNS = ["task_id", "circuit_id", "pattern", "kind", "array", "severity", "instance", "defect_seed",
                   "density", "cells_hit", "corrector", "hidden", "n_parameters", "accuracy", "accuracy_train",
                   "accuracy_before", "accuracy_all_before", "software_accuracy", "imperfections"]
CROSS_COLUMNS = ["task_id", "array", "kind", "severity", "instance", "train_pattern", "test_pattern", "hidden",
                 "n_parameters", "accuracy", "accuracy_before"]


def _fit_correctors(study: Study, v: np.ndarray, y_tr: np.ndarray, y_te: np.ndarray, n_tr: int,
                    last_hidden: Optional[np.ndarray] = None, fit_s: Optional[dict[str, float]] = None,
                    fit_flops: Optional[list[float]] = None) -> list[tuple[str, int, int, np.ndarray, np.ndarray]]:
    """Fit every corrector of the study on every circuit of the task, each kind in one batched fit.

    ``fit_s`` receives the wall seconds of each corrector's fit (``mlp-h8``, ``affine``, ...) and
    ``fit_flops`` the flops each fit's linear maps cost at the evaluations it ran (``study.floor``).
    """
    fit_s = {} if fit_s is None else fit_s
    fit_flops = [] if fit_flops is None else fit_flops
    out = []
    spec = study.correctors
    options = {**spec.options, "device": study.device}
    jobs: list[tuple[str, int, Any, np.ndarray]] = []
    for h in spec.hidden:
        seed = stable_seed(study.seeds.correctors, "mlp", h)
        jobs.append(("mlp", h, correction.BatchedMLPCorrector(hidden=h, seed=seed, **options), v))
    for name in spec.baselines:
        cls = {"affine": correction.BatchedAffineCalibration, "logistic": correction.BatchedLogisticCorrector,
               "lastlayer": correction.BatchedLastLayerRetrain}[name]
        features = last_hidden if name == "lastlayer" else v
        jobs.append((name, 0, cls(seed=stable_seed(study.seeds.correctors, name), **options), features))
    for name, h, model, x in jobs:
        start = time.perf_counter()
        model.fit(x[:, :n_tr], y_tr)
        fit_s[f"{name}-h{h}" if name == "mlp" else name] = time.perf_counter() - start
        fit_flops.append(model.fit_flops_)
        acc = _accuracy(model.predict(x[:, n_tr:]), y_te)
        acc_train = _accuracy(model.predict(x[:, :n_tr]), y_tr)
        out.append((name, h, int(model.n_parameters), acc, acc_train))
    return out


# ----------------------------------------------------------------------------- cross tasks

def _run_cross(task: Task, setup: Setup, inputs: dict[str, np.ndarray]) -> TaskOutput:
    """Correctors trained on a chip with pattern A, tested on the chip with pattern B at the same grid point."""
    ctx = _context(setup)
    study = ctx.study
    group = dict(task.group)
    n_tr = ctx.n_train
    y_tr, y_te = ctx.y_all[:n_tr], ctx.y_all[n_tr:]
    patterns = list(study.defects.patterns)
    keys = sorted({(p.severity, p.instance) for p in task.circuits})
    by_point = {(p.pattern, p.severity, p.instance): p.circuit_id for p in task.circuits}
    # [patterns, grid points, images, outputs]: the chips of one grid point are paired by position.
    volts = np.stack([np.stack([np.asarray(inputs[by_point[(a, *key)]], dtype=np.float64) for key in keys])
                      for a in patterns])
    h = study.cross_defect.hidden
    seed_names = {"type": "cross", "mixture": "cross-mixture"}

    made: list[BatchedMLPCorrector] = []

    def corrector(role: str) -> BatchedMLPCorrector:
        made.append(BatchedMLPCorrector(hidden=h, seed=stable_seed(study.seeds.correctors, seed_names[role], h),
                                        device=study.device, **study.correctors.options))
        return made[-1]

    t0 = time.perf_counter()
    result = cross_defect(volts[:, :, :n_tr], y_tr, volts[:, :, n_tr:], y_te, corrector, types=patterns,
                          before=_accuracy(np.argmax(volts[:, :, n_tr:], axis=3), y_te),
                          mixture=study.cross_defect.mixture)
    chips = pd.DataFrame({"array": int(group["array"]), "kind": str(group["kind"]),
                          "severity": [float(s) for s, _ in keys], "instance": [int(i) for _, i in keys]})
    table = result.to_table(chips).assign(task_id=task.id, hidden=h)[CROSS_COLUMNS]
    info = {"n_circuits": 0, "n_images": 0, "n_inferences": 0, "simulate_s": 0.0,
            "fit_s": time.perf_counter() - t0,
            "n_fits": len(patterns) * len(keys) + (len(keys) if study.cross_defect.mixture else 0),
            "fit_flops": sum(m.fit_flops_ for m in made if m.is_fitted)}
    return TaskOutput(table=table, arrays=None, info=info)
