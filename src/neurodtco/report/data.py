"""The report's data: the results store loaded into frames, and the tables and numbers drawn from them.

Everything here reads only the store (``ResultStore``, ``load_results``) and copes with a partial
one: a function whose results are not there yet returns None or an empty frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import pandas as pd

from ..correction import MLPCorrector
from ..correction.cross import MIXTURE, CrossDefectResult
from ..store import ResultStore, load_results, load_task_info
from ..study.timing import add_stages, stage_breakdown

MAX_CORRECTOR_PARAMS = 200  # the published budget of a "lightweight" corrector


def fit_recipe(study: dict[str, Any]) -> str:
    """How the study fitted its correctors: solver and L-BFGS iterations per hidden size, caps named."""
    options = dict(study["correctors"].get("options") or {})
    hidden = list(study["correctors"]["hidden"])
    solver = options.get("solver", "lbfgs")
    used = {h: MLPCorrector(hidden=h, **options).iterations for h in hidden}
    default = {h: MLPCorrector(hidden=h).iterations for h in hidden}
    text = f"{solver.upper() if solver == 'adam' else 'L-BFGS'}, at most " + ", ".join(
        f"{used[h]} iterations for h={h}" for h in hidden)
    capped = [h for h in hidden if used[h] < default[h]]
    if capped:
        # A cap changes the numbers (most for h <= 2, which needs long fits): say so beside them.
        text += (" (capped by this study's correctors.options; the library's defaults are "
                 + ", ".join(f"{default[h]} for h={h}" for h in capped) + ")")
    return text


@dataclass
class ReportData:
    """A results store as the report reads it: the study, the circuits and cross tables, the task info."""

    root: Path
    study: dict[str, Any]
    circuits: pd.DataFrame
    cross: pd.DataFrame
    info: pd.DataFrame
    store: ResultStore

    @property
    def raw(self) -> pd.DataFrame:
        """One row per circuit: its own accuracy, no corrector."""
        if self.circuits.empty:
            return self.circuits
        return self.circuits[self.circuits["corrector"] == "none"]

    @property
    def defective(self) -> pd.DataFrame:
        """Defective circuits only (no corrector)."""
        raw = self.raw
        return raw[raw["pattern"] != "none"] if not raw.empty else raw

    @property
    def healthy_accuracy(self) -> Optional[float]:
        """Test accuracy of the undamaged circuit."""
        raw = self.raw
        if raw.empty:
            return None
        h = raw[raw["pattern"] == "none"]
        return float(h["accuracy"].mean()) if len(h) else None

    @property
    def n_test(self) -> int:
        """Test images per circuit: from the healthy circuit's stored labels, else from the study settings."""
        healthy = [t for t in self.store.finished() if t.startswith("c-healthy")]
        if healthy:
            arrays = self.store.read_arrays(healthy[0])
            if "labels" in arrays and "n_train" in arrays:
                return int(len(arrays["labels"]) - int(arrays["n_train"]))
        return int(self.study["dataset"].get("n_test", 0))

    @property
    def software_accuracy(self) -> Optional[float]:
        """Test accuracy of the software network."""
        return float(self.circuits["software_accuracy"].iloc[0]) if not self.circuits.empty else None

    def patterns(self) -> list[str]:
        """Patterns in study order (those with results)."""
        present = set(self.defective["pattern"]) if not self.defective.empty else set()
        return [p for p in self.study["defects"]["patterns"] if p in present]


def load_report_data(root: Union[str, Path]) -> ReportData:
    """Everything the report draws from the store at ``root``."""
    root = Path(root)
    store = ResultStore(root)
    study = store.stored_study()
    circuits = load_results(root, "circuits")
    cross = load_results(root, "cross")
    info = load_task_info(root)
    return ReportData(root, study, circuits, cross, info, store)


def time_breakdown(d: ReportData) -> list[tuple[str, float]]:
    """Seconds per stage over every finished task (inside the workers) plus the runs' setup and store I/O."""
    stages = stage_breakdown(d.info.to_dict("records")) if not d.info.empty else {}
    runs = d.root / "runs.jsonl"
    if runs.is_file():
        for line in runs.read_text().splitlines():
            record = json.loads(line) if line.strip() else {}
            add_stages(stages, {k: v for k, v in record.get("stages_s", {}).items() if k in ("setup", "io")})
    return sorted(stages.items(), key=lambda kv: -kv[1])


def parse_circuit_id(cid: str) -> tuple[str, str, int, float, int]:
    """``ring-on-a1-s0.2-i0`` -> (pattern, kind, array, severity, instance)."""
    parts = cid.split("-")
    instance = int(parts[-1][1:])
    severity = float(parts[-2][1:])
    array = int(parts[-3][1:])
    kind = parts[-4]
    pattern = "-".join(parts[:-4])
    return pattern, kind, array, severity, instance



def correction_frame(d: ReportData) -> pd.DataFrame:
    """Corrected rows of defective circuits, with the healthy reference for the recovered fraction."""
    c = d.circuits
    if c.empty:
        return c
    c = c[(c["pattern"] != "none") & (c["corrector"] != "none")].copy()
    ref = d.healthy_accuracy if d.healthy_accuracy is not None else d.software_accuracy
    lost = ref - c["accuracy_before"]
    c["recovered"] = np.where(lost > 0, (c["accuracy"] - c["accuracy_before"]) / lost.where(lost > 0, 1.0), np.nan)
    c["lost"] = lost
    return c



def cross_result(d: ReportData) -> Optional[CrossDefectResult]:
    """The cross-defect matrix rebuilt from the stored cross rows (every array, kind, density and instance)."""
    if d.cross.empty:
        return None
    present = set(d.cross["test_pattern"])
    return CrossDefectResult.from_table(d.cross, types=[p for p in d.study["defects"]["patterns"] if p in present])


def headline_numbers(d: ReportData) -> list[tuple[str, str, str]]:
    """(quantity, value, note) rows for the headline table."""
    rows: list[tuple[str, str, str]] = []
    pct = lambda v: f"{v * 100:.1f}%"  # noqa: E731
    study = d.study
    if d.software_accuracy is not None:
        rows.append(("Software network, test accuracy", pct(d.software_accuracy),
                     f"{d.n_test:,} held-out test images ({study['dataset']['name']})"))
    if d.healthy_accuracy is not None:
        rows.append(("Healthy circuit, test accuracy", pct(d.healthy_accuracy),
                     f"engine {study['engine']}, wire segments {study['circuit']['r_word_ohm']:g} ohm"))
    df = d.defective
    if not df.empty:
        rows.append(("Defective circuits simulated", f"{df['circuit_id'].nunique():,}",
                     f"{len(d.patterns())} patterns, {df['array'].nunique()} arrays, {df['kind'].nunique()} kinds, "
                     f"{df['severity'].nunique()} densities, {plural(df['instance'].nunique(), 'instance')}"))
        rows.append(("Mean accuracy of the defective circuits", pct(df["accuracy"].mean()),
                     f"median {pct(df['accuracy'].median())}"))
        worst = df.loc[df["accuracy"].idxmin()]
        rows.append(("Worst defective circuit", pct(worst["accuracy"]), str(worst["circuit_id"])))
        cell = df.groupby(["pattern", "array"])["accuracy"].mean()
        (wp, wa), wv = cell.idxmin(), cell.min()
        rows.append(("Most harmful pattern and array", f"{wp}, array {wa}", f"mean accuracy {pct(wv)}"))
        if {"on", "off"} <= set(df["kind"]):
            on, off = df[df["kind"] == "on"]["accuracy"].mean(), df[df["kind"] == "off"]["accuracy"].mean()
            rows.append(("Stuck-on vs stuck-off, mean accuracy", f"{pct(on)} vs {pct(off)}",
                         "same cells hit in each pair"))
    c = correction_frame(d)
    if not c.empty:
        small = c[(c["n_parameters"] <= MAX_CORRECTOR_PARAMS)]
        if len(small):
            best = small.groupby(["corrector", "hidden", "n_parameters"])["accuracy"].mean().idxmax()
            name = f"MLP h={best[1]}" if best[0] == "mlp" else best[0]
            sel = small[(small["corrector"] == best[0]) & (small["hidden"] == best[1])]
            damaged = sel[sel["lost"] >= 0.05]
            note = f"{best[2]} parameters; median recovered share {pct(damaged['recovered'].median())}" \
                if len(damaged) else f"{best[2]} parameters"
            rows.append((f"Best corrector with <= {MAX_CORRECTOR_PARAMS} parameters ({name})",
                         f"{pct(df['accuracy'].mean())} -> {pct(sel['accuracy'].mean())}", note))
            low = small[small["accuracy_before"] <= 0.55]
            if len(low):
                top = low.loc[(low["accuracy"] - low["accuracy_before"]).idxmax()]
                label = f"MLP h={top['hidden']}" if top["corrector"] == "mlp" else top["corrector"]
                rows.append(("Largest recovery of a circuit at <= 55%",
                             f"{pct(top['accuracy_before'])} -> {pct(top['accuracy'])}",
                             f"{top['circuit_id']}, {label} ({top['n_parameters']} parameters)"))
        tiny = c[(c["corrector"] == "mlp") & (c["hidden"] == 1)]
        if len(tiny):
            delta = (tiny["accuracy"] - tiny["accuracy_before"]).mean()
            rows.append((f"Smallest corrector (h=1, {tiny['n_parameters'].iloc[0]} parameters)",
                         f"{delta * 100:+.1f} points", "mean change of test accuracy: " +
                         ("it helps on average" if delta > 0 else "it harms on average") +
                         f"; {MLPCorrector(hidden=1, **(d.study['correctors'].get('options') or {})).iterations} "
                         "L-BFGS iterations"))
    cross = cross_result(d)
    if cross is not None:
        types = cross.test_types
        single = cross.accuracy[[cross.train_types.index(t) for t in types]]  # rows in the columns' order
        same = np.eye(len(types), dtype=bool)
        off = f"{pct(single[~same].mean())}" if len(types) > 1 else "n/a"
        rows.append(("Cross-defect: same pattern vs other patterns", f"{pct(single[same].mean())} vs {off}",
                     f"corrector h={study['cross_defect']['hidden']}; uncorrected {pct(cross.before.mean())}"))
        if MIXTURE in cross.train_types:
            rows.append(("Cross-defect: corrector trained on the mixture",
                         pct(cross.accuracy[cross.train_types.index(MIXTURE)].mean()), "mean over test patterns"))
    runs = d.store.runs()
    if runs:
        wall = sum(r.get("wall_s", 0.0) for r in runs)
        inf = sum(r.get("n_inferences", 0) for r in runs)
        last = runs[-1].get("executor", {})
        rows.append(("Circuit-inferences simulated", f"{inf:,}", f"in {wall:.0f} s over {len(runs)} run(s): "
                     f"{inf / wall if wall else 0:,.0f} per second ({last.get('workers')} {last.get('executor')} workers)"))
    return rows


def plural(n: int, word: str) -> str:
    """``1 instance``, ``3 instances``."""
    return f"{n} {word}" + ("" if n == 1 else "s")


def severity_table(d: ReportData) -> Optional[pd.DataFrame]:
    """Mean accuracy per pattern (rows) and array (columns) at the highest density, both kinds pooled."""
    df = d.defective
    if df.empty:
        return None
    smax = df["severity"].max()
    t = df[df["severity"] == smax].pivot_table(index="pattern", columns="array", values="accuracy", aggfunc="mean")
    return t.reindex(d.patterns())




def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, or an empty one where the file is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}

