"""Expanding a study into independent tasks, each with a stable id and its own seeds.

Granularity, chosen for throughput: one *circuits* task holds up to ``tasks.max_circuits`` circuits
of one (pattern, array) cell of the grid (its kinds, severities and instances). It builds each
defective circuit, simulates every image through it with the study's engine, and fits all the
correctors of all its circuits at once (one batched fit per hidden size), so the per-fit overhead
of a tiny network is paid once per task instead of once per circuit. One *cross* task per
(array, kind) builds the cross-defect matrix from the stored voltages of the circuits tasks it
depends on. A study's ``wafer:`` section adds one *dies* task per wafer (or slice of one) and
defect field (``wafer_tasks``).

A task's id is readable (``c-ring-a1-0``) plus a short hash of everything its result depends on
(the settings, the network's weights, its circuits, its dependencies), so a changed setting
gives new ids and a rerun never mistakes an old result for a new one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from ..defects.instances import instance_params, instance_seed
from ..seeds import stable_seed
from .schema import Study

@dataclass(frozen=True)
class CircuitPoint:
    """One circuit of the grid (``pattern == "none"`` is the healthy reference)."""

    pattern: str
    kind: str
    array: int
    severity: float
    instance: int
    defect_seed: int
    imperfection_seed: int
    params: tuple[tuple[str, Any], ...] = ()
    network_seed: Optional[int] = None  # set only when the study trains several networks

    @property
    def circuit_id(self) -> str:
        """Readable unique name, e.g. ``ring-on-a1-s0.2-i0`` (``n3-ring-on-a1-s0.2-i0`` for network seed 3)."""
        prefix = "" if self.network_seed is None else f"n{self.network_seed}-"
        if self.pattern == "none":
            return f"{prefix}healthy-i{self.instance}"
        return f"{prefix}{self.pattern}-{self.kind}-a{self.array}-s{self.severity:g}-i{self.instance}"

    @property
    def is_healthy(self) -> bool:
        """True for the undamaged reference circuit."""
        return self.pattern == "none"


@dataclass(frozen=True)
class Task:
    """One independent unit of work; ``depends_on`` lists task ids whose stored output it reads."""

    id: str
    stage: Literal["circuits", "cross", "dies"]
    circuits: tuple[CircuitPoint, ...]
    depends_on: tuple[str, ...] = ()
    group: tuple[tuple[str, Any], ...] = field(default=())

    @property
    def n_circuits(self) -> int:
        """Circuits this task simulates (its dies for a dies task; 0 for a cross task: it reads stored voltages)."""
        if self.stage == "dies":
            group = dict(self.group)
            return int(group["stop"]) - int(group["start"])
        return len(self.circuits) if self.stage == "circuits" else 0


def short_hash(payload: Any) -> str:
    """The first 10 hex digits of the SHA-256 of ``payload`` as canonical JSON: a task id's fingerprint."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _settings_for_circuits(study: Study) -> dict[str, Any]:
    """The parts of the study a circuits task's result depends on (the grid itself enters via its circuits)."""
    c = study.canonical()
    return {k: c[k] for k in ("dataset", "network", "circuit", "engine", "engine_options", "imperfections",
                              "correctors", "seeds", "outputs")}


def circuit_points(study: Study) -> list[CircuitPoint]:
    """Every circuit of the grid, healthy references first, in grid order (network seed outermost)."""
    if study.defects is None:
        return []
    seeds = study.network.network_seeds
    if study.network.seeds is None:
        return _points_of_network(study, None)
    healthy, defective = [], []
    for net_seed in seeds:
        points = _points_of_network(study, net_seed)
        healthy.extend(p for p in points if p.is_healthy)
        defective.extend(p for p in points if not p.is_healthy)
    return healthy + defective


def _points_of_network(study: Study, net_seed: Optional[int]) -> list[CircuitPoint]:
    """The grid of one network; the defect seeds do not depend on the network, so every network meets the same chips."""
    d, s = study.defects, study.seeds
    points = []
    if d.include_healthy:
        points.append(CircuitPoint("none", "none", -1, 0.0, 0, 0, stable_seed(s.imperfections, "healthy"),
                                   network_seed=net_seed))
    for pattern in d.patterns:
        for array in study.arrays:
            for kind in d.kinds:
                for severity in d.severities:
                    for instance in range(d.instances):
                        # The seed ignores kind and severity: stuck-on and stuck-off circuits of one
                        # instance hit the same places, which makes their comparison paired.
                        seed = instance_seed(s.defects, pattern, array, instance)
                        params = dict(d.params.get(pattern, {}))
                        params.update(d.params.get(kind, {}))
                        if d.random_position:
                            params.update(instance_params(pattern, instance, seed))
                        points.append(CircuitPoint(
                            pattern, kind, array, float(severity), instance, seed,
                            stable_seed(s.imperfections, pattern, array, instance),
                            tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items())),
                            network_seed=net_seed,
                        ))
    return points


def expand_tasks(study: Study, fingerprint: str = "") -> list[Task]:
    """The study's tasks in submission order; ``fingerprint`` identifies the network's weights."""
    settings = _settings_for_circuits(study)
    points = circuit_points(study)
    tasks: list[Task] = []
    healthy = [p for p in points if p.is_healthy]
    if healthy:
        tasks.append(_circuits_task("c-healthy", healthy, settings, fingerprint))
    by_cell: dict[tuple[Optional[int], str, int], list[CircuitPoint]] = {}
    for p in points:
        if not p.is_healthy:
            by_cell.setdefault((p.network_seed, p.pattern, p.array), []).append(p)
    step = study.tasks.max_circuits
    # Array-major order: the cross tasks of the first array become ready while the rest still run.
    order = sorted(by_cell, key=lambda k: (study.arrays.index(k[2]), study.defects.patterns.index(k[1]),
                                           -1 if k[0] is None else k[0]))
    for net_seed, pattern, array in order:
        cell = by_cell[(net_seed, pattern, array)]
        prefix = "" if net_seed is None else f"n{net_seed}-"
        for chunk, start in enumerate(range(0, len(cell), step)):
            tasks.append(_circuits_task(f"c-{prefix}{pattern}-a{array}-{chunk}", cell[start:start + step], settings,
                                        fingerprint))
    if study.cross_defect.enabled:
        cross = study.canonical()["cross_defect"]
        crossed = set(study.cross_defect.severities or study.defects.severities)

        def member(p: CircuitPoint, net_seed: Optional[int], array: int, kind: str) -> bool:
            return p.network_seed == net_seed and p.array == array and p.kind == kind and p.severity in crossed

        net_seeds = [None] if study.network.seeds is None else study.network.network_seeds
        for net_seed in net_seeds:
            prefix = "" if net_seed is None else f"n{net_seed}-"
            for array in study.arrays:
                for kind in study.defects.kinds:
                    deps = tuple(t.id for t in tasks if any(member(p, net_seed, array, kind) for p in t.circuits))
                    members = tuple(p for t in tasks for p in t.circuits if member(p, net_seed, array, kind))
                    payload = {"cross": cross, "options": settings["correctors"]["options"],
                               "seeds": settings["seeds"], "deps": deps, "patterns": study.defects.patterns}
                    tasks.append(Task(id=f"x-{prefix}a{array}-{kind}-{short_hash(payload)}", stage="cross",
                                      circuits=members, depends_on=deps,
                                      group=(("array", array), ("kind", kind), ("network_seed", net_seed))))
    if study.wafer is not None:
        from .wafer_tasks import wafer_tasks

        tasks.extend(wafer_tasks(study, fingerprint))
    return tasks


def _circuits_task(name: str, points: list[CircuitPoint], settings: dict[str, Any], fingerprint: str) -> Task:
    payload = {"settings": settings, "fingerprint": fingerprint,
               "circuits": [[p.circuit_id, p.defect_seed, p.imperfection_seed, list(p.params)] for p in points]}
    return Task(id=f"{name}-{short_hash(payload)}", stage="circuits", circuits=tuple(points))


def task_summary(tasks: list[Task]) -> dict[str, Optional[int]]:
    """Counts for progress displays: tasks, circuits and circuit-inferences per image."""
    return {"tasks": len(tasks), "circuits": sum(t.n_circuits for t in tasks)}
