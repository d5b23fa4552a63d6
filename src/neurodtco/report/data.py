"""The report's data: the results store loaded into frames, and the tables and numbers drawn from them.

Everything here reads only the store (``ResultStore``, ``load_results``) and copes with a partial
one: a function whose results are not there yet returns None or an empty frame.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import pandas as pd

from ..correction import MLPCorrector
from ..correction.cross import MIXTURE, CrossDefectResult
from ..store import ResultStore, load_results, load_task_info
from ..study.timing import add_stages, stage_breakdown
from ..stats import paired_bootstrap_ci, wilson_interval
from .uncertainty import Estimate, mean_accuracy, paired_difference

MAX_CORRECTOR_PARAMS = 200  # the published budget of a "lightweight" corrector
#: Measured stuck-cell fractions of a 4-Mb HfO2 RRAM test chip (Chen et al., IEEE Trans. Computers
#: 64(1), 2015, as cited for SA0 / SA1): stuck at the high-resistance state (off) and at the
#: low-resistance state (on). docs/defects.md says how sure the assignment of state to number is.
MEASURED_STUCK = {"off": 0.0175, "on": 0.0904}
MEASURED_SOURCE = "Chen et al. 2015, 4-Mb HfO2 RRAM chip"


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
    """A results store as the report reads it: the study, the circuits, cross and dies tables, the task info."""

    root: Path
    study: dict[str, Any]
    circuits: pd.DataFrame
    cross: pd.DataFrame
    info: pd.DataFrame
    store: ResultStore
    dies: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per die and mitigation (the wafer section)

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
        """Test images per circuit: from the rows, else the healthy circuit's stored labels, else the settings."""
        if "n_test" in self.circuits and not self.circuits.empty:
            return int(self.circuits["n_test"].iloc[0])
        healthy = [t for t in self.store.finished() if t.startswith("c-healthy")]
        if healthy:
            arrays = self.store.read_arrays(healthy[0])
            if "labels" in arrays and "n_train" in arrays:
                return int(len(arrays["labels"]) - int(arrays["n_train"]) - int(arrays.get("n_validation", 0)))
        return int(self.study["dataset"].get("n_test", 0))

    @property
    def n_networks(self) -> int:
        """Trained networks (network seeds) behind the rows."""
        if "network_seed" not in self.circuits or self.circuits.empty:
            return 1
        return int(self.circuits["network_seed"].nunique())

    def healthy_estimate(self) -> Optional[Estimate]:
        """Test accuracy of the undamaged circuit(s): Wilson for one network, bootstrap over several."""
        raw = self.raw
        h = raw[raw["pattern"] == "none"] if not raw.empty else raw
        return mean_accuracy(h) if len(h) else None

    @property
    def software_accuracy(self) -> Optional[float]:
        """Test accuracy of the software network (the mean over the networks of a study with several seeds)."""
        if self.circuits.empty:
            return None
        if "network_seed" not in self.circuits:
            return float(self.circuits["software_accuracy"].iloc[0])
        return float(self.circuits.groupby("network_seed")["software_accuracy"].first().mean())

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
    return ReportData(root, study, circuits, cross, info, store, load_results(root, "dies"))


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
    """``ring-on-a1-s0.2-i0`` (or ``n3-ring-on-a1-s0.2-i0``, network seed 3) -> (pattern, kind, array, severity, instance)."""
    parts = cid.split("-")
    if len(parts) > 5 and re.fullmatch(r"n\d+", parts[0]):
        parts = parts[1:]
    instance = int(parts[-1][1:])
    severity = float(parts[-2][1:])
    array = int(parts[-3][1:])
    kind = parts[-4]
    pattern = "-".join(parts[:-4])
    return pattern, kind, array, severity, instance



def correction_frame(d: ReportData) -> pd.DataFrame:
    """Corrected rows of defective circuits, with the uncorrected validation accuracy and the recovered fraction.

    The recovered fraction measures the loss against the healthy circuit of the same network.
    """
    c = d.circuits
    if c.empty:
        return c
    c = c[(c["pattern"] != "none") & (c["corrector"] != "none")].copy()
    raw = d.raw.set_index("circuit_id")
    if "accuracy_validation" in raw:
        c["before_validation"] = c["circuit_id"].map(raw["accuracy_validation"])
    healthy = raw[raw["pattern"] == "none"]
    if "network_seed" in c and len(healthy):
        ref = c["network_seed"].map(healthy.groupby("network_seed")["accuracy"].mean())
    else:
        ref = pd.Series(d.healthy_accuracy if d.healthy_accuracy is not None else d.software_accuracy, index=c.index)
    lost = ref - c["accuracy_before"]
    c["recovered"] = np.where(lost > 0, (c["accuracy"] - c["accuracy_before"]) / lost.where(lost > 0, 1.0), np.nan)
    c["lost"] = lost
    return c


def corrector_label(corrector: str, hidden: int) -> str:
    """``MLP h=8`` or the baseline's name."""
    return f"MLP h={hidden}" if corrector == "mlp" else corrector


def choose_corrector(c: pd.DataFrame, max_parameters: int = MAX_CORRECTOR_PARAMS) -> Optional[tuple[str, int, int]]:
    """The corrector (name, hidden, parameters) within the budget of highest mean **validation** accuracy.

    The test accuracy plays no part: the choice is reported on test afterwards, once.
    """
    small = c[c["n_parameters"] <= max_parameters]
    if small.empty or "accuracy_validation" not in small:
        return None
    return small.groupby(["corrector", "hidden", "n_parameters"])["accuracy_validation"].mean().idxmax()


def _rows_of(c: pd.DataFrame, choice: tuple[str, int, int]) -> pd.DataFrame:
    return c[(c["corrector"] == choice[0]) & (c["hidden"] == choice[1])]


def correction_by_array(d: ReportData) -> pd.DataFrame:
    """Per array (layer): the corrector chosen on that array's validation images and its test result.

    Columns: array, corrector, parameters, uncorrected and corrected mean test accuracy with their
    intervals, the paired difference (same chips) with its interval, chips and networks.
    """
    c = correction_frame(d)
    if c.empty or "accuracy_validation" not in c:
        return pd.DataFrame()
    out = []
    for array, rows in c.groupby("array", sort=True):
        choice = choose_corrector(rows)
        if choice is None:
            continue
        sel = _rows_of(rows, choice).set_index("circuit_id")
        before = mean_accuracy(sel.assign(accuracy=sel["accuracy_before"],
                                          n_correct=(sel["accuracy_before"] * sel["n_test"]).round().astype(int)))
        after = mean_accuracy(sel)
        gain = paired_difference(sel["accuracy"], sel["accuracy_before"], sel.get("network_seed"))
        out.append({"array": int(array), "corrector": corrector_label(choice[0], choice[1]),
                    "parameters": int(choice[2]), "uncorrected": before.text(), "corrected": after.text(),
                    "gain": gain.text(points=True), "basis": after.basis(),
                    "gain_value": gain.value, "gain_low": gain.low, "gain_high": gain.high})
    return pd.DataFrame(out)



def cross_result(d: ReportData) -> Optional[CrossDefectResult]:
    """The cross-defect matrix rebuilt from the stored cross rows (every array, kind, density and instance)."""
    if d.cross.empty:
        return None
    present = set(d.cross["test_pattern"])
    return CrossDefectResult.from_table(d.cross, types=[p for p in d.study["defects"]["patterns"] if p in present])


def _paired_kinds(df: pd.DataFrame, a: str, b: str, column: str, by: str = "kind") -> Optional[Estimate]:
    """Paired difference of mean test accuracy, ``by == a`` minus ``by == b``, on the chips both hold."""
    keys = [k for k in ("network_seed", "pattern", "kind", "array", "severity", "instance") if k in df and k != by]
    left = df[df[by] == a].set_index(keys)
    right = df[df[by] == b].set_index(keys)
    if left.empty or right.empty:
        return None
    nets = (pd.Series(left.index.get_level_values("network_seed"), index=left.index)
            if "network_seed" in keys else None)
    try:
        return paired_difference(left[column], right[column], nets)
    except ValueError:
        return None


def headline_numbers(d: ReportData) -> list[tuple[str, str, str]]:
    """(quantity, value, note) rows for the headline table; every accuracy with its 95 % interval and basis."""
    rows: list[tuple[str, str, str]] = []
    pct = lambda v: f"{v * 100:.1f}%"  # noqa: E731
    study = d.study
    if d.software_accuracy is not None:
        note = f"{d.n_test:,} held-out test images ({study['dataset']['name']})"
        if d.n_networks > 1:
            per = d.circuits.groupby("network_seed")["software_accuracy"].first()
            note += f"; mean of {d.n_networks} networks (seeds), from {pct(per.min())} to {pct(per.max())}"
        value = pct(d.software_accuracy)
        if d.n_networks == 1 and d.n_test:
            low, high = wilson_interval(int(round(d.software_accuracy * d.n_test)), d.n_test)
            value += f" [{low * 100:.1f}, {high * 100:.1f}]"
        rows.append(("Software network, test accuracy", value, note))
    healthy = d.healthy_estimate()
    if healthy is not None:
        rows.append(("Healthy circuit, test accuracy", healthy.text(),
                     f"engine {study['engine']}, wire segments {study['circuit']['r_word_ohm']:g} ohm; "
                     + ("Wilson 95 % interval" if healthy.n_chips == 1 else "bootstrap 95 % interval") + "; "
                     + healthy.basis()))
    df = d.defective
    if not df.empty:
        rows.append(("Defective circuits simulated", f"{df['circuit_id'].nunique():,}",
                     f"{len(d.patterns())} patterns, {df['array'].nunique()} arrays, {df['kind'].nunique()} kinds, "
                     f"{df['severity'].nunique()} densities, {plural(df['instance'].nunique(), 'instance')}, "
                     f"{plural(d.n_networks, 'network')}"))
        mean = mean_accuracy(df)
        rows.append(("Mean accuracy of the defective circuits", mean.text(),
                     f"median {pct(df['accuracy'].median())}; bootstrap over {mean.basis()}"))
        worst = df.loc[df["accuracy"].idxmin()]
        rows.append(("Worst defective circuit", mean_accuracy(df.loc[[worst.name]]).text(),
                     f"{worst['circuit_id']}; Wilson interval over its {d.n_test:,} test images"))
        cell = df.groupby(["pattern", "array"])["accuracy"].mean()
        wp, wa = cell.idxmin()
        worst_cell = mean_accuracy(df[(df["pattern"] == wp) & (df["array"] == wa)])
        rows.append(("Most harmful pattern and array", f"{wp}, array {wa}",
                     f"mean accuracy {worst_cell.text()} over {worst_cell.basis()}"))
        onoff = _paired_kinds(df, "on", "off", "accuracy")
        if onoff is not None:
            rows.append(("Stuck-on minus stuck-off, mean test accuracy", onoff.text(points=True),
                         f"paired: the same cells hit each way; {onoff.n_chips} chip pairs over "
                         f"{plural(onoff.n_networks, 'network')}"))
        rowcol = _paired_kinds(df, "row", "column", "accuracy", by="pattern")
        if rowcol is not None:
            rows.append(("Row minus column pattern, mean test accuracy", rowcol.text(points=True),
                         f"paired by network, array, kind, density and instance; {rowcol.n_chips} pairs"))
    c = correction_frame(d)
    if not c.empty:
        best = choose_corrector(c)
        if best is not None:
            sel = _rows_of(c, best).set_index("circuit_id")
            after = mean_accuracy(sel)
            gain = paired_difference(sel["accuracy"], sel["accuracy_before"], sel.get("network_seed"))
            damaged = sel[sel["lost"] >= 0.05]
            note = (f"{best[2]} parameters, chosen on the validation images among the correctors with <= "
                    f"{MAX_CORRECTOR_PARAMS}; paired gain {gain.text(points=True)}; {after.basis()}")
            if len(damaged):
                note += f"; median recovered share {pct(damaged['recovered'].median())}"
            rows.append((f"Best corrector with <= {MAX_CORRECTOR_PARAMS} parameters "
                         f"({corrector_label(best[0], best[1])})",
                         f"{pct(sel['accuracy_before'].mean())} -> {after.text()}", note))
            low = c[(c["n_parameters"] <= MAX_CORRECTOR_PARAMS)]
            if "before_validation" in low:
                low = low[low["before_validation"] <= 0.55]
                if len(low):
                    top = low.loc[(low["accuracy_validation"] - low["before_validation"]).idxmax()]
                    before_est = mean_accuracy(d.raw[d.raw["circuit_id"] == top["circuit_id"]])
                    after_est = mean_accuracy(low.loc[[top.name]])
                    rows.append(("Largest recovery of a circuit at <= 55% (chosen on validation)",
                                 f"{before_est.text()} -> {after_est.text()}",
                                 f"{top['circuit_id']}, {corrector_label(top['corrector'], top['hidden'])} "
                                 f"({top['n_parameters']} parameters); picked by its validation gain, reported on "
                                 f"its {d.n_test:,} test images (Wilson intervals)"))
        tiny = c[(c["corrector"] == "mlp") & (c["hidden"] == 1)]
        if len(tiny):
            delta = paired_difference(tiny.set_index("circuit_id")["accuracy"],
                                      tiny.set_index("circuit_id")["accuracy_before"],
                                      tiny.set_index("circuit_id").get("network_seed"))
            rows.append((f"Smallest corrector (h=1, {tiny['n_parameters'].iloc[0]} parameters)",
                         delta.text(points=True), "mean paired change of test accuracy: " +
                         ("it helps on average" if delta.value > 0 else "it harms on average") +
                         f"; {MLPCorrector(hidden=1, **(d.study['correctors'].get('options') or {})).iterations} "
                         "L-BFGS iterations"))
    cross = cross_result(d)
    if cross is not None:
        types = cross.test_types
        single = cross.accuracy[[cross.train_types.index(t) for t in types]]  # rows in the columns' order
        same = np.eye(len(types), dtype=bool)
        off = f"{pct(single[~same].mean())}" if len(types) > 1 else "n/a"
        note = (f"corrector h={study['cross_defect']['hidden']}; uncorrected {pct(cross.before.mean())}; "
                f"{cross.n_test_chips} chips per column")
        if len(types) > 1 and cross.chip_accuracy is not None:
            # Paired per test chip: its own-pattern corrector minus the mean of the other patterns' correctors.
            chips = cross.chip_accuracy[[cross.train_types.index(t) for t in types]]  # [train, test, chip]
            own = np.stack([chips[j, j] for j in range(len(types))])
            others = np.stack([np.delete(chips[:, j], j, axis=0).mean(axis=0) for j in range(len(types))])
            gap, (low, high) = paired_bootstrap_ci(own.ravel(), others.ravel())
            note += f"; paired difference {gap * 100:+.1f} [{low * 100:+.1f}, {high * 100:+.1f}] points"
        rows.append(("Cross-defect: same pattern vs other patterns", f"{pct(single[same].mean())} vs {off}", note))
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

