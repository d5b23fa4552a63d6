"""The cross-defect matrix: correctors trained on chips with one defect type, judged on chips of another.

One computation serves every caller (the correction studies, the study runner's cross tasks):
``cross_defect`` takes the stacked voltages of every chip, ``[types, chips, images, features]``,
and fits one batched corrector per *training group* of each type:

* ``pairing="position"``: chip ``i`` of every type forms group ``i`` (e.g. instance ``i`` on the
  same array). The corrector fitted on chip ``(A, i)`` is judged on chip ``(B, i)``; the diagonal is
  the per-chip protocol (same chip, held-out images). The mixture corrector ``i`` is fitted on the
  training images of chip ``i`` of every type together.
* ``pairing="pooled"``: one group holds every training chip. The corrector of type ``A`` is fitted
  on the pooled training images of all its chips and judged on every test chip (other chips: unseen
  instances). The mixture corrector sees as many rows as each single-type one, drawn (seeded) from
  all types' chips, so that it is not favoured by more data.

``CrossDefectResult`` keeps the matrix and, per test chip, the entries it averages, so that an
aggregate can carry an interval; ``from_table``/``to_table`` convert it to and from the long table
the study stores. ``cross_defect_figure`` draws it (the report and the example use the same one).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Sequence, Union

import numpy as np
import pandas as pd

from .models import BatchedCorrector

MIXTURE = "mixture"
#: the row of a corrector trained on a population of chips of every other type (``population_study``)
POPULATION = "population"
PAIRINGS = ("position", "pooled")
#: columns of the long table that hold the entries; every other column names the test chip
TABLE_VALUES = ("train_pattern", "test_pattern", "n_parameters", "accuracy", "accuracy_before")

#: ``make_corrector(role)`` gives a fresh batched corrector; ``role`` is ``"type"`` or ``"mixture"``
CorrectorFactory = Callable[[str], BatchedCorrector]


@dataclass
class CrossDefectResult:
    """Accuracy of correctors trained on one defect type (rows) on chips of another (columns).

    ``chip_accuracy`` ``[rows, columns, test chips]`` and ``chip_before`` ``[columns, test chips]``
    hold the entries that ``accuracy`` and ``before`` average (None for an average of matrices
    whose chips differ in number).
    """

    train_types: list[str]
    test_types: list[str]
    accuracy: np.ndarray
    before: np.ndarray
    n_parameters: int
    n_train_chips: int
    n_test_chips: int
    chip_accuracy: Optional[np.ndarray] = None
    chip_before: Optional[np.ndarray] = None

    def to_markdown(self, digits: int = 1) -> str:
        """The matrix as a Markdown table (percent), with the uncorrected accuracy as the last row."""
        head = "| trained on \\ tested on | " + " | ".join(self.test_types) + " |"
        lines = [head, "|" + "---|" * (len(self.test_types) + 1)]
        for name, row in zip(self.train_types, self.accuracy):
            lines.append(f"| {name} | " + " | ".join(f"{100 * v:.{digits}f}" for v in row) + " |")
        lines.append("| (no correction) | " + " | ".join(f"{100 * v:.{digits}f}" for v in self.before) + " |")
        return "\n".join(lines)

    @staticmethod
    def average(results: Sequence["CrossDefectResult"]) -> "CrossDefectResult":
        """Entry-wise mean of matrices over the same defect types (e.g. one matrix per array)."""
        if not results:
            raise ValueError("nothing to average: give at least one CrossDefectResult")
        first = results[0]
        for r in results[1:]:
            if r.train_types != first.train_types or r.test_types != first.test_types:
                raise ValueError("matrices to average must have the same rows and columns")
        chips = [r.chip_accuracy for r in results]
        counts = {None if c is None else c.shape[2] for c in chips}
        same_chips = len(counts) == 1 and None not in counts
        return CrossDefectResult(
            first.train_types, first.test_types, np.mean([r.accuracy for r in results], axis=0),
            np.mean([r.before for r in results], axis=0), first.n_parameters, first.n_train_chips,
            sum(r.n_test_chips for r in results),
            # Only equal chip counts keep the entry-wise mean equal to the mean over the pooled chips.
            np.concatenate(chips, axis=2) if same_chips else None,  # type: ignore[arg-type]
            np.concatenate([r.chip_before for r in results], axis=1) if same_chips else None)  # type: ignore[misc]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CrossDefectResult":
        """Inverse of ``to_dict``."""
        chip_accuracy, chip_before = data.get("chip_accuracy"), data.get("chip_before")
        return cls(list(data["train_types"]), list(data["test_types"]), np.asarray(data["accuracy"]),
                   np.asarray(data["before"]), int(data["n_parameters"]), int(data["n_train_chips"]),
                   int(data["n_test_chips"]), None if chip_accuracy is None else np.asarray(chip_accuracy),
                   None if chip_before is None else np.asarray(chip_before))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out: dict[str, Any] = {
            "train_types": self.train_types, "test_types": self.test_types, "accuracy": self.accuracy.tolist(),
            "before": self.before.tolist(), "n_parameters": self.n_parameters, "n_train_chips": self.n_train_chips,
            "n_test_chips": self.n_test_chips}
        if self.chip_accuracy is not None and self.chip_before is not None:
            out["chip_accuracy"] = self.chip_accuracy.tolist()
            out["chip_before"] = self.chip_before.tolist()
        return out

    def to_table(self, chips: Optional[pd.DataFrame] = None) -> pd.DataFrame:
        """One row per (test type, train row, test chip); ``chips`` names the test chips (default: numbers)."""
        if self.chip_accuracy is None or self.chip_before is None:
            raise ValueError("this result has no per-chip entries (an average over different chip counts); "
                             "build the table from the results it averages")
        n = self.chip_accuracy.shape[2]
        chips = pd.DataFrame({"chip": np.arange(n)}) if chips is None else chips.reset_index(drop=True)
        if len(chips) != n:
            raise ValueError(f"chips has {len(chips)} rows but the result has {n} test chips; give one row per chip")
        clash = set(chips.columns) & set(TABLE_VALUES)
        if clash:
            raise ValueError(f"chips columns {sorted(clash)} clash with the table's own columns {TABLE_VALUES}")
        test, train, chip = (g.ravel() for g in np.meshgrid(np.arange(len(self.test_types)),
                                                            np.arange(len(self.train_types)), np.arange(n),
                                                            indexing="ij"))
        table = chips.iloc[chip].reset_index(drop=True)
        table["train_pattern"] = np.asarray(self.train_types, dtype=object)[train]
        table["test_pattern"] = np.asarray(self.test_types, dtype=object)[test]
        table["n_parameters"] = int(self.n_parameters)
        table["accuracy"] = self.chip_accuracy[train, test, chip]
        table["accuracy_before"] = self.chip_before[test, chip]
        return table

    @classmethod
    def from_table(cls, table: pd.DataFrame, types: Optional[Sequence[str]] = None,
                   n_train_chips: int = 1) -> "CrossDefectResult":
        """The result behind a long table (``to_table``'s, or the study's cross rows).

        Every column besides ``TABLE_VALUES`` names the test chip; ``types`` orders the test types
        (default: as they first appear), and the rows follow them, the mixture and the population last.
        """
        missing = [c for c in TABLE_VALUES if c not in table.columns]
        if missing:
            raise ValueError(f"the table lacks the columns {missing}; it needs {list(TABLE_VALUES)} and chip columns")
        keys = [c for c in table.columns if c not in TABLE_VALUES]
        if not keys or table.empty:
            raise ValueError(f"the table needs rows and at least one column naming the test chip; got columns "
                             f"{list(table.columns)} and {len(table)} rows")
        types = list(dict.fromkeys(table["test_pattern"])) if types is None else list(types)
        trained = set(table["train_pattern"])
        rows = [t for t in types if t in trained] + [r for r in (MIXTURE, POPULATION) if r in trained]
        table = table[table["test_pattern"].isin(types) & table["train_pattern"].isin(rows)]
        params = sorted(set(table["n_parameters"]))
        if len(params) != 1:
            raise ValueError(f"the table mixes correctors of {params} parameters; give the rows of one corrector")
        chip = table.groupby(keys, sort=True).ngroup().to_numpy()
        n = int(chip.max()) + 1
        r = table["train_pattern"].map({t: i for i, t in enumerate(rows)}).to_numpy()
        c = table["test_pattern"].map({t: j for j, t in enumerate(types)}).to_numpy()
        accuracy = np.full((len(rows), len(types), n), np.nan)
        before = np.full((len(types), n), np.nan)
        accuracy[r, c, chip] = table["accuracy"].to_numpy(dtype=float)
        before[c, chip] = table["accuracy_before"].to_numpy(dtype=float)
        if np.isnan(accuracy).any():
            i, j, k = (int(v[0]) for v in np.nonzero(np.isnan(accuracy)))
            raise ValueError(f"the table misses {int(np.isnan(accuracy).sum())} entries, e.g. trained on {rows[i]!r}, "
                             f"tested on {types[j]!r}, chip {k}; every chip needs every (train, test) pair")
        return cls(rows, types, accuracy.mean(axis=2), before.mean(axis=1), int(params[0]), int(n_train_chips), n,
                   accuracy, before)


def cross_defect(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                 make_corrector: CorrectorFactory, *, types: Sequence[str], before: np.ndarray,
                 mixture: bool = True, pairing: Literal["position", "pooled"] = "position", seed: int = 0,
                 n_classes: Optional[int] = None) -> CrossDefectResult:
    """Train on chips of each defect type, judge on chips of every type (see the module doc for ``pairing``).

    ``train_x`` ``[T, C, N, F]`` and ``test_x`` ``[T, C', M, F]`` are the corrector inputs of chip
    ``c`` of type ``t`` on the (shared) training and test images, ``train_y`` ``[N]`` and ``test_y``
    ``[M]`` their labels, ``before`` ``[T, C']`` each test chip's uncorrected accuracy. ``seed``
    draws the pooled mixture's rows.
    """
    train_x, test_x = np.asarray(train_x, dtype=np.float64), np.asarray(test_x, dtype=np.float64)
    train_y, test_y, before = np.asarray(train_y), np.asarray(test_y), np.asarray(before, dtype=np.float64)
    types = list(types)
    if pairing not in PAIRINGS:
        raise ValueError(f"pairing={pairing!r} is not accepted: choose one of {PAIRINGS}")
    if train_x.ndim != 4 or test_x.ndim != 4 or 0 in train_x.shape or 0 in test_x.shape:
        raise ValueError(f"voltages must have shape [types, chips, images, features] with no empty axis; got "
                         f"train {train_x.shape} and test {test_x.shape}")
    t, c, n, f = train_x.shape
    ct, m = test_x.shape[1:3]
    if test_x.shape[0] != t or test_x.shape[3] != f or len(types) != t:
        raise ValueError(f"train {train_x.shape}, test {test_x.shape} and types {types} disagree: the same types "
                         "(first axis) and features (last axis) are needed on both sides, and one name per type")
    if train_y.shape != (n,) or test_y.shape != (m,) or before.shape != (t, ct):
        raise ValueError(f"labels {train_y.shape} / {test_y.shape} and before {before.shape} must be [{n}], [{m}] "
                         f"and [{t}, {ct}] for these voltages")
    if pairing == "position" and c != ct:
        raise ValueError(f"pairing='position' pairs chip i of the training side with chip i of the test side, but "
                         f"there are {c} and {ct} chips per type; give the same number, or use pairing='pooled'")
    groups = c if pairing == "position" else 1
    per_train, per_test = c // groups, ct // groups

    def judge(model: BatchedCorrector, k: int, chips: np.ndarray) -> np.ndarray:
        """Accuracy ``[k, C']``: model ``(row, g)`` reads the test chips of group ``g``."""
        x = np.broadcast_to(chips.reshape(1, groups, per_test * m, f), (k, groups, per_test * m, f))
        pred = model.predict(x.reshape(k * groups, per_test * m, f))
        return (pred.reshape(k, groups, per_test, m) == test_y).mean(axis=-1).reshape(k, ct)

    accuracy = np.empty((t + int(mixture), t, ct))
    model = make_corrector("type")
    model.fit(train_x.reshape(t * groups, per_train * n, f), np.tile(train_y, per_train), n_classes=n_classes)
    for b in range(t):
        accuracy[:t, b] = judge(model, t, test_x[b])
    if mixture:
        x_mix = train_x.reshape(t, groups, per_train * n, f).transpose(1, 0, 2, 3).reshape(groups, -1, f)
        y_mix = np.tile(train_y, t * per_train)
        if pairing == "pooled":
            rows = np.sort(np.random.default_rng(seed).choice(x_mix.shape[1], per_train * n, replace=False))
            x_mix, y_mix = x_mix[:, rows], y_mix[rows]
        mix = make_corrector("mixture")
        mix.fit(x_mix, y_mix, n_classes=n_classes)
        for b in range(t):
            accuracy[t, b] = judge(mix, 1, test_x[b])[0]
    return CrossDefectResult(train_types=types + ([MIXTURE] if mixture else []), test_types=types,
                             accuracy=accuracy.mean(axis=2), before=before.mean(axis=1),
                             n_parameters=int(model.n_parameters), n_train_chips=per_train, n_test_chips=ct,
                             chip_accuracy=accuracy, chip_before=before)


def cross_defect_figure(result: CrossDefectResult, title: Optional[str] = None) -> Any:
    """Heatmap of the matrix (accuracy in percent, the uncorrected row last, the diagonal bold): a matplotlib Figure."""
    # matplotlib is imported here: computing a matrix never pays for it. A bare Figure (no pyplot)
    # leaves the caller's backend and open figures alone.
    from matplotlib.figure import Figure

    rows = [*result.train_types, "uncorrected"]
    values = 100 * np.vstack([result.accuracy, result.before[None]])
    fig = Figure(figsize=(1.0 * len(result.test_types) + 2.6, 0.55 * len(rows) + 1.6))
    ax = fig.subplots()
    ax.grid(False)
    image = ax.imshow(values, cmap="viridis", vmin=max(0, np.nanmin(values) - 5),
                      vmax=min(100, np.nanmax(values) + 2), aspect="auto")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if np.isfinite(values[i, j]):
                bright = image.norm(values[i, j]) > 0.6
                ax.text(j, i, f"{values[i, j]:.0f}", ha="center", va="center", fontsize=8.5,
                        color="#111827" if bright else "white",
                        fontweight="bold" if rows[i] == result.test_types[j] else None)
    ax.axhline(len(rows) - 1.5, color="white", lw=3)
    for shared in (MIXTURE, POPULATION):  # rows of one corrector for every type stand apart
        if shared in result.train_types:
            ax.axhline(result.train_types.index(shared) - 0.5, color="white", lw=3)
    ax.set_xticks(range(len(result.test_types)), [c.replace("_", "\n") for c in result.test_types], fontsize=8)
    ax.set_yticks(range(len(rows)), [r.replace("_", " ") for r in rows], fontsize=8.5)
    ax.set_xlabel("tested on a chip with this defect type")
    ax.set_ylabel("corrector trained on a chip with")
    ax.set_title(title or f"test accuracy (%) after a {result.n_parameters}-parameter corrector")
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    colorbar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    colorbar.set_label("mean test accuracy (%)")
    fig.tight_layout()
    return fig


def plot_cross_defect(result: CrossDefectResult, path: Union[str, Path], title: Optional[str] = None) -> Path:
    """Write ``cross_defect_figure`` to ``path`` (PNG, or what the suffix says); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cross_defect_figure(result, title).savefig(path, dpi=130, bbox_inches="tight", facecolor="white")
    return path


__all__ = ["MIXTURE", "PAIRINGS", "POPULATION", "TABLE_VALUES", "CorrectorFactory", "CrossDefectResult", "cross_defect",
           "cross_defect_figure", "plot_cross_defect"]
