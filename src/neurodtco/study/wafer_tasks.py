"""The wafer section as tasks: one *dies* task per wafer (or part of one) and defect field, and what it computes.

A dies task draws its wafer with ``neurodtco.wafer.draw_wafer`` (the same field, seed and wafer
index give the same dies in any process), keeps its slice of the dies and judges them under every
mitigation of the study with ``neurodtco.wafer.evaluate_mitigations``: with a whole wafer per task (the
default) the rows give exactly the yield ``neurodtco.wafer.wafer_yield`` gives for the same seed.
Its rows go to the store's ``dies`` table, one per die and mitigation.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import numpy as np
import pandas as pd

from ..correction import measure_chip
from ..wafer import DieMap, draw_wafer, evaluate_mitigations
from .schema import Study
from .tasks import Task, short_hash
from .timing import FIT_PREFIX

DIES_COLUMNS = ["task_id", "d0", "alpha", "wafer", "die_x", "die_y", "x_mm", "y_mm", "r_mm", "n_stuck", "mitigation",
                "n_stuck_left", "accuracy", "accuracy_validation", "passed", "threshold", "healthy_accuracy", "n_test",
                "n_validation"]


def _alpha_name(alpha: float) -> str:
    return "inf" if np.isinf(alpha) else f"{alpha:g}"


def wafer_tasks(study: Study, fingerprint: str) -> list[Task]:
    """The dies tasks of the study's wafer section: D0 outermost, then alpha, wafer and slice of dies."""
    spec = study.wafer
    assert spec is not None
    c = study.canonical()
    # What a dies task's rows depend on besides its own field, wafer and slice of dies.
    settings = {k: c[k] for k in ("dataset", "network", "circuit", "engine", "engine_options")}
    settings["wafer"] = {k: v for k, v in c["wafer"].items() if k not in ("d0", "alpha", "n_wafers", "n_dies",
                                                                          "dies_per_task")}
    per_wafer = spec.to_wafer().n_dies
    step = spec.dies_per_task or per_wafer
    tasks = []
    for d0 in spec.d0:
        for alpha in spec.alphas:
            for w in range(spec.wafers_per_field):
                n = spec.dies_on(w)
                for start in range(0, n, step):
                    stop = min(n, start + step)
                    group = (("d0", d0), ("alpha", alpha), ("wafer", w), ("start", start), ("stop", stop))
                    payload = {"settings": settings, "fingerprint": fingerprint, "group": [list(g) for g in group]}
                    name = f"w-d{d0:g}-a{_alpha_name(alpha)}-w{w}" + (f"-{start}" if step < n else "")
                    tasks.append(Task(id=f"{name}-{short_hash(payload)}", stage="dies", circuits=(), group=group))
    return tasks


_CHIPS: dict[str, Any] = {}


def _healthy_chip(key: str, healthy: Any, dataset: Any, engine: Any) -> Any:
    """The healthy chip's voltages, measured once per worker process and study."""
    if key not in _CHIPS:
        _CHIPS.clear()
        _CHIPS[key] = measure_chip(healthy, dataset, engine)
    return _CHIPS[key]


def run_dies(task: Task, ctx: Any, dataset: Any, fingerprint: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Judge one dies task's dies under every mitigation; returns its rows and its timing info."""
    study: Study = ctx.study
    spec = study.wafer
    assert spec is not None
    g = dict(task.group)
    wafer = spec.to_wafer()
    healthy = ctx.circuits[next(iter(ctx.circuits))]
    start = time.perf_counter()
    dies: list[DieMap] = draw_wafer(spec.field(g["d0"], g["alpha"]), wafer, healthy, int(g["wafer"]),
                                    spec.seed)[int(g["start"]):int(g["stop"])]
    draw_s = time.perf_counter() - start
    chip = _healthy_chip(fingerprint + hashlib.sha256(repr(study.canonical()).encode()).hexdigest(), healthy, dataset,
                         ctx.engine)
    centres = {(d.die_x, d.die_y): d.center_mm for d in wafer.dies}
    drawn = [d.n_stuck for d in dies]
    crit = spec.criterion
    rows = []
    timings: dict[str, float] = {"draw_s": draw_s}
    n_val = 0 if dataset.y_val is None else len(dataset.y_val)
    mitigations = spec.mitigations.mitigations()
    # Mitigations that leave the dies as drawn (none, correction) share one simulation per die.
    judged = evaluate_mitigations(healthy, dies, dataset, mitigations, criterion=crit.kind, bound=crit.bound,
                                  within=crit.within, engine=ctx.engine, seed=spec.seed, healthy_chip=chip)
    groups = {(m.spare_rows, m.spare_cols, m.retrain) for m, r in zip(mitigations, judged) if r.accuracies is not None}
    simulated = len(groups) * sum(1 for n in drawn if n)
    for k in ("repair_s", "simulate_s", "retrain_s"):  # the shared simulation counts once per group
        timings[k] = sum({(m.spare_rows, m.spare_cols, m.retrain): r.timings.get(k, 0.0)
                          for m, r in zip(mitigations, judged)}.values())
    timings["correct_s"] = sum(r.timings.get("correct_s", 0.0) for r in judged)
    for m, r in zip(mitigations, judged):
        for i, die in enumerate(dies):
            x, y = centres[(die.key[1], die.key[2])]
            rows.append({
                "task_id": task.id, "d0": float(g["d0"]), "alpha": float(g["alpha"]), "wafer": die.key[0],
                "die_x": die.key[1], "die_y": die.key[2], "x_mm": x, "y_mm": y, "r_mm": float(np.hypot(x, y)),
                "n_stuck": drawn[i], "mitigation": m.name, "n_stuck_left": int(r.n_stuck[i]),
                "accuracy": np.nan if r.accuracies is None else float(r.accuracies[i]),
                "accuracy_validation": (np.nan if r.accuracies_validation is None
                                        else float(r.accuracies_validation[i])),
                "passed": bool(r.passed[i]), "threshold": np.nan if r.threshold is None else r.threshold,
                "healthy_accuracy": np.nan if r.healthy_accuracy is None else r.healthy_accuracy,
                "n_test": len(dataset.y_test), "n_validation": n_val,
            })
    table = pd.DataFrame(rows, columns=DIES_COLUMNS)
    n_images = len(dataset.y_train) + len(dataset.y_test) + n_val
    info = {"n_circuits": len(dies), "n_images": n_images, "n_inferences": simulated * n_images,
            "simulate_s": timings.get("simulate_s", 0.0), "build_s": draw_s + timings.get("repair_s", 0.0),
            "n_fits": 0, "fit_flops": 0.0}
    # Only the fits this study runs: a stage of zero seconds would read as free work in the breakdown.
    levers = spec.mitigations
    if levers.correct:
        info[f"{FIT_PREFIX}per-die correctors"] = timings.get("correct_s", 0.0)
    if levers.retrain:
        info[f"{FIT_PREFIX}defect-aware retraining"] = timings.get("retrain_s", 0.0)
    return table, info


__all__ = ["DIES_COLUMNS", "run_dies", "wafer_tasks"]
