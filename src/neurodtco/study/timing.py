"""Where a study's time goes: the per-stage seconds of its tasks, added up the same way for a run and a store.

A circuits task reports ``build_s`` (defects and imperfections applied), ``factorize_s`` (the
nodal engine's one-off factorizations), ``simulate_s`` (the engine, factorizations included) and
``fit_s:NAME`` per corrector (``mlp-h8``, ``affine``, ...); a cross task reports ``fit_s`` under
``cross``. The runner adds ``setup_s`` (the network and the task list) and ``io_s`` (reading and
writing the store).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

FIT_PREFIX = "fit_s:"


def task_stages(info: Mapping[str, Any]) -> dict[str, float]:
    """One finished task's seconds per stage (wall seconds inside the worker)."""
    stages: dict[str, float] = {}
    if info.get("stage") == "cross":
        stages["fit: cross-defect"] = float(info.get("fit_s", 0.0))
        return stages
    factorize = float(info.get("factorize_s", 0.0) or 0.0)
    stages["build circuits"] = float(info.get("build_s", 0.0) or 0.0)
    stages["factorize"] = factorize
    stages["simulate"] = max(float(info.get("simulate_s", 0.0) or 0.0) - factorize, 0.0)
    for key, value in info.items():
        if key.startswith(FIT_PREFIX) and value == value:  # NaN: a task of another kind lacks this corrector
            stages[f"fit: {key[len(FIT_PREFIX):]}"] = float(value)
    return stages


def add_stages(total: dict[str, float], more: Mapping[str, float]) -> dict[str, float]:
    """``total`` with ``more`` added stage by stage (in place; returned for chaining)."""
    for key, value in more.items():
        total[key] = total.get(key, 0.0) + float(value)
    return total


def stage_breakdown(infos: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Seconds per stage over many tasks' infos (e.g. the rows of ``store.load_task_info``)."""
    total: dict[str, float] = {}
    for info in infos:
        add_stages(total, task_stages(info))
    return total
