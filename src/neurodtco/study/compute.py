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
from ..data import Dataset, to_voltages
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
    """What every task needs, small enough to ship to each worker: the study and its networks' weights.

    ``networks`` maps a network seed to its lowered network; a study with one network (no
    ``network.seeds``) keys it by None, as its circuit points are.
    """

    study: dict[str, Any]
    networks: dict[Optional[int], tuple[Op, ...]]
    fingerprint: str
    software_accuracy: dict[Optional[int], float]


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


def _train_network(study: Study, dataset: Dataset, seed: Optional[int],
                   progress: Optional[Callable[[int, int], None]]) -> Any:
    """The study's network with training seed ``seed`` (None: the study's own ``network.seed``), cached."""
    if study.network.model is not None:
        net = load_network(study.network.model)
        if net.n_inputs != dataset.n_features:
            raise ValueError(f"network.model {study.network.model!r} expects {net.n_inputs} inputs; "
                             f"the dataset has {dataset.n_features}")
        return net
    if study.network.arch is not None:
        return cached_fit(dataset, study.network.arch_config(dataset, seed), data_seed=study.dataset.seed,
                          progress=progress)
    config = study.network.to_config(seed)
    if config.widths[0] != dataset.n_features or config.widths[-1] != dataset.n_classes:
        raise ValueError(f"network.widths {list(config.widths)} do not fit the {study.dataset.name} images: they "
                         f"need {dataset.n_features} inputs and {dataset.n_classes} outputs")
    return default_network(dataset, config, data_seed=study.dataset.seed, progress=progress)


def prepare_setup(study: Study, progress: Optional[Callable[[int, int], None]] = None) -> Setup:
    """Load (or train and cache) the study's networks once, in the runner, and pack them for the workers."""
    dataset = study.dataset.load()
    keys: list[Optional[int]] = [None] if study.network.seeds is None else list(study.network.seeds)
    networks, software = {}, {}
    for key in keys:
        net = _train_network(study, dataset, key, progress)
        networks[key] = tuple(net.ops())
        software[key] = net.accuracy(dataset.x_test, dataset.y_test)
    if study.imperfection_items:
        # Fail here, once, on what only a circuit can refuse (a target outside the window, say),
        # rather than in every task on every worker.
        try:
            apply_imperfections(map_ops(list(networks[keys[0]]), study.circuit.to_config()), study.imperfection_items, 0)
        except ValueError as exc:
            raise ValueError(f"imperfections: {exc}") from None
    prints = [ops_fingerprint(ops) for ops in networks.values()]
    fingerprint = prints[0] if len(prints) == 1 else hashlib.sha256("".join(prints).encode()).hexdigest()[:16]
    return Setup(study=study.canonical(), networks=networks, fingerprint=fingerprint, software_accuracy=software)


@dataclass(frozen=True, eq=False)
class _Context:
    study: Study
    circuits: dict[Optional[int], Any]  # the healthy circuit of each network seed
    engine: Any
    x_all_v: np.ndarray  # training, then validation, then test images
    y_all: np.ndarray
    n_train: int
    n_validation: int

    @property
    def n_test(self) -> int:
        """Test images (the last part of ``x_all_v``)."""
        return len(self.y_all) - self.n_train - self.n_validation

    def parts(self) -> tuple[slice, slice, slice]:
        """Slices of the training, validation and test images along the image axis."""
        a, b = self.n_train, self.n_train + self.n_validation
        return slice(0, a), slice(a, b), slice(b, None)


_CONTEXTS: dict[str, _Context] = {}


def _context(setup: Setup) -> _Context:
    """The healthy circuits, the engine and the images, built once per worker process."""
    key = setup.fingerprint + hashlib.sha256(repr(sorted(setup.study.items())).encode()).hexdigest()
    ctx = _CONTEXTS.get(key)
    if ctx is not None:
        return ctx
    study = Study.model_validate(setup.study)
    dataset = study.dataset.for_correctors(study.dataset.load())
    x_val, y_val = dataset.validation()
    mapping = study.circuit.to_config()
    circuits = {seed: map_ops(list(ops), mapping) for seed, ops in setup.networks.items()}
    x_all = np.concatenate([dataset.x_train, x_val, dataset.x_test])
    ctx = _Context(study=study, circuits=circuits, engine=get_engine(study.engine, **study.engine_options),
                   x_all_v=to_voltages(x_all, mapping.v_read_v),
                   y_all=np.concatenate([dataset.y_train, y_val, dataset.y_test]),
                   n_train=len(dataset.y_train), n_validation=len(y_val))
    _CONTEXTS.clear()  # one study at a time per worker; do not hoard circuits
    _CONTEXTS[key] = ctx
    return ctx


def execute_task(task: Task, setup: Setup, inputs: Optional[dict[str, np.ndarray]] = None) -> TaskOutput:
    """Run one task in the current process (the function every executor ships to its workers)."""
    start, cpu_start = time.perf_counter(), time.process_time()
    with threadpool_limits(limits=1):  # one BLAS thread per worker process: no oversubscription
        if task.stage == "circuits":
            out = _run_circuits(task, setup)
        elif task.stage == "dies":
            out = _run_dies(task, setup)
        elif task.stage == "cross":
            if inputs is None:
                raise ValueError(f"cross task {task.id} needs the stored voltages of its dependencies")
            out = _run_cross(task, setup, inputs)
        else:
            raise ValueError(f"unknown task stage {task.stage!r}; expected 'circuits', 'cross' or 'dies'")
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
        circuit, mask, density, record = build_circuit(ctx.circuits[point.network_seed], study, point)
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
    v = np.stack(outputs)  # [K, images, outputs]: training, validation, then test images
    n_tr = ctx.n_train
    train, val, test = ctx.parts()
    y_tr, y_held = ctx.y_all[train], ctx.y_all[n_tr:]
    raw = np.argmax(v, axis=2)
    acc_before = _accuracy(raw[:, test], ctx.y_all[test])
    acc_all_before = _accuracy(raw, ctx.y_all)

    # Per corrector: per-image correctness on the held-out images (validation then test), which the
    # rows below split into the validation accuracy (for choosing) and the test count (for reporting).
    results: list[tuple[str, int, int, np.ndarray, np.ndarray]] = [
        ("none", 0, 0, raw[:, n_tr:] == y_held, _accuracy(raw[:, train], y_tr))]
    t1 = time.perf_counter()
    fit_s: dict[str, float] = {}
    fit_flops: list[float] = []
    backends: list[str] = []
    results.extend(_fit_correctors(study, v, y_tr, y_held, n_tr, np.stack(hidden) if hidden else None, fit_s,
                                   fit_flops, backends))
    t_fit = time.perf_counter() - t1

    n_val, n_test = ctx.n_validation, ctx.n_test
    rows = []
    for k, point in enumerate(task.circuits):
        cells_hit = int(masks[k].sum()) if masks[k] is not None else 0
        net_seed = study.network.seed if point.network_seed is None else point.network_seed
        for corrector, hidden, n_params, correct, acc_train in results:
            n_correct = int(correct[k, n_val:].sum())
            rows.append({
                "task_id": task.id, "circuit_id": point.circuit_id, "network_seed": net_seed,
                "pattern": point.pattern, "kind": point.kind,
                "array": point.array, "severity": point.severity, "instance": point.instance,
                "defect_seed": point.defect_seed, "density": densities[k], "cells_hit": cells_hit,
                "corrector": corrector, "hidden": hidden, "n_parameters": n_params,
                "accuracy": n_correct / n_test, "n_correct": n_correct, "n_test": n_test,
                "accuracy_validation": float(correct[k, :n_val].mean()), "n_validation": n_val,
                "accuracy_train": float(acc_train[k]),
                "accuracy_before": float(acc_before[k]), "accuracy_all_before": float(acc_all_before[k]),
                "software_accuracy": setup.software_accuracy[point.network_seed], "imperfections": records[k],
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
            for i, layer in enumerate(ctx.circuits[task.circuits[0].network_seed].layers):
                arrays[f"conductance_{i}"] = np.asarray(layer.conductance)
            arrays["labels"] = ctx.y_all.astype(np.int16)
            arrays["n_train"] = np.array(n_tr)
            arrays["n_validation"] = np.array(n_val)
    info = {"n_circuits": len(task.circuits), "n_images": int(v.shape[1]),
            "n_inferences": int(v.shape[0] * v.shape[1]), "build_s": t_build, "factorize_s": t_factorize,
            "simulate_s": t_sim, "fit_s": t_fit, **{f"{FIT_PREFIX}{k}": v_s for k, v_s in fit_s.items()},
            "n_fits": len(task.circuits) * (len(results) - 1), "fit_flops": sum(fit_flops),
            "fits": fits_backend(backends)}
    return TaskOutput(table=table, arrays=arrays, info=info)


def fits_backend(backends: list[str]) -> str:
    """How correctors were fitted: ``compiled`` (C), ``torch``, both joined by ``+``, or '' if none were.

    ``backends`` may hold joined values already (a run's tasks): each part counts once.
    """
    return "+".join(sorted({part for b in backends for part in b.split("+") if part}))


CIRCUIT_COLUMNS = ["task_id", "circuit_id", "network_seed", "pattern", "kind", "array", "severity", "instance",
                   "defect_seed", "density", "cells_hit", "corrector", "hidden", "n_parameters", "accuracy", "n_correct",
                   "n_test", "accuracy_validation", "n_validation", "accuracy_train", "accuracy_before",
                   "accuracy_all_before", "software_accuracy", "imperfections"]
CROSS_COLUMNS = ["task_id", "network_seed", "array", "kind", "severity", "instance", "train_pattern", "test_pattern",
                 "hidden", "n_parameters", "accuracy", "accuracy_before"]


def _fit_correctors(study: Study, v: np.ndarray, y_tr: np.ndarray, y_te: np.ndarray, n_tr: int,
                    last_hidden: Optional[np.ndarray] = None, fit_s: Optional[dict[str, float]] = None,
                    fit_flops: Optional[list[float]] = None,
                    backends: Optional[list[str]] = None) -> list[tuple[str, int, int, np.ndarray, np.ndarray]]:
    """Fit every corrector of the study on every circuit of the task, each kind in one batched fit.

    Returns per corrector its per-image correctness ``[K, images]`` on the held-out images
    ``x[:, n_tr:]`` (labels ``y_te``) and its training accuracy ``[K]``. ``fit_s`` receives the wall
    seconds of each corrector's fit (``mlp-h8``, ``affine``, ...), ``fit_flops`` the flops each
    fit's linear maps cost at the evaluations it ran (``study.floor``), and ``backends`` how each was
    fitted (``compiled`` or ``torch``).
    """
    fit_s = {} if fit_s is None else fit_s
    fit_flops = [] if fit_flops is None else fit_flops
    backends = [] if backends is None else backends
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
        backends.append(model.backend_)
        correct = np.asarray(model.predict(x[:, n_tr:])) == y_te
        acc_train = _accuracy(model.predict(x[:, :n_tr]), y_tr)
        out.append((name, h, int(model.n_parameters), correct, acc_train))
    return out


# ----------------------------------------------------------------------------- dies tasks

def _run_dies(task: Task, setup: Setup) -> TaskOutput:
    """The dies of one wafer (or part of one) judged under every mitigation (``wafer_tasks.run_dies``)."""
    from .wafer_tasks import run_dies

    ctx = _context(setup)
    table, info = run_dies(task, ctx, ctx.study.dataset.for_correctors(ctx.study.dataset.load()), setup.fingerprint)
    return TaskOutput(table=table, arrays=None, info=info)


# ----------------------------------------------------------------------------- cross tasks

def _run_cross(task: Task, setup: Setup, inputs: dict[str, np.ndarray]) -> TaskOutput:
    """Correctors trained on a chip with pattern A, tested on the chip with pattern B at the same grid point."""
    ctx = _context(setup)
    study = ctx.study
    group = dict(task.group)
    train, _, test = ctx.parts()
    y_tr, y_te = ctx.y_all[train], ctx.y_all[test]
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
    result = cross_defect(volts[:, :, train], y_tr, volts[:, :, test], y_te, corrector, types=patterns,
                          before=_accuracy(np.argmax(volts[:, :, test], axis=3), y_te),
                          mixture=study.cross_defect.mixture)
    net_seed = group.get("network_seed")
    chips = pd.DataFrame({"network_seed": study.network.seed if net_seed is None else int(net_seed),
                          "array": int(group["array"]), "kind": str(group["kind"]),
                          "severity": [float(s) for s, _ in keys], "instance": [int(i) for _, i in keys]})
    table = result.to_table(chips).assign(task_id=task.id, hidden=h)[CROSS_COLUMNS]
    info = {"n_circuits": 0, "n_images": 0, "n_inferences": 0, "simulate_s": 0.0,
            "fit_s": time.perf_counter() - t0,
            "n_fits": len(patterns) * len(keys) + (len(keys) if study.cross_defect.mixture else 0),
            "fit_flops": sum(m.fit_flops_ for m in made if m.is_fitted),
            "fits": fits_backend([m.backend_ for m in made if m.is_fitted])}
    return TaskOutput(table=table, arrays=None, info=info)
