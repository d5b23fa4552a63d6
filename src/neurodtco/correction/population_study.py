"""Judging the population corrector on chips it never saw: leave one pattern out, calibration curve, cross matrix.

* ``draw_chips``: a population of simulated chips (pattern, array, density, instance), each named
  by a ``ChipSpec`` whose ``chip_id`` is unique; instance ranges keep training, validation and test
  chips apart.
* ``leave_one_pattern_out``: for each pattern, a population corrector trained on the chips of the
  other patterns only (the chip ids it used are recorded and checked), its prior chosen
  on validation chips of the training patterns and validation images, then judged on the held-out
  pattern's test chips with ``k`` labelled images each, beside each chip's uncorrected accuracy and
  its per-chip oracle (an MLP h=8 fitted on all its training images).
* ``PopulationResult.table``: accuracy and share of the oracle's recovery per ``k``, with 95 % intervals
  bootstrapped over chips.
* ``population_cross_matrix``: the 7x7 cross-defect matrix with one population corrector per
  training pattern, plus the leave-one-pattern-out row, as a ``CrossDefectResult``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence, Union

import numpy as np

from ..circuit import Circuit
from ..data import Dataset
from ..engines import Engine, get_engine
from ..stats import bootstrap_ci
from .cross import POPULATION, CrossDefectResult
from .models import BatchedMLPCorrector
from .population import PopulationCorrector
from .protocol import ChipVoltages, calibration_indices, measure_chip
from .studies import make_defective

#: labelled images per chip of the calibration curve (None: every training image)
BUDGETS: tuple[Optional[int], ...] = (0, 10, 20, 50, 200, None)
#: strengths of the pull toward the identity head tried on validation chips, strongest first
PRIORS = (30.0, 10.0, 3.0, 1.0)
#: labelled images per chip the prior is chosen at (the prior scales as 1/n, so one choice serves every k)
TUNE_K = 20


@dataclass(frozen=True)
class ChipSpec:
    """One simulated chip: a defect pattern on one array at a density, instance ``instance``."""

    pattern: str
    layer: int
    density: float
    instance: int
    kind: str = "on"

    @property
    def chip_id(self) -> str:
        """A name unique to the chip."""
        return f"{self.pattern}/L{self.layer}/d{self.density:.4f}/i{self.instance}/{self.kind}"


@dataclass
class ChipSet:
    """Simulated chips and their measured voltages, aligned."""

    specs: list[ChipSpec]
    chips: list[ChipVoltages]

    def where(self, patterns: Sequence[str]) -> "ChipSet":
        """The chips whose pattern is in ``patterns``."""
        keep = [i for i, s in enumerate(self.specs) if s.pattern in patterns]
        return ChipSet([self.specs[i] for i in keep], [self.chips[i] for i in keep])

    def outputs(self, split: str) -> np.ndarray:
        """Output voltages ``[K, N, F]`` on the training or the test images."""
        return np.stack([c.features("outputs", split) for c in self.chips])


def draw_chips(circuit: Circuit, dataset: Dataset, patterns: Sequence[str], per_pattern: int, *,
               first_instance: int, densities: tuple[float, float] = (0.02, 0.5),
               accuracy_band: tuple[float, float] = (0.2, 0.88), engine: Union[str, Engine] = "nodal",
               seed: int = 0, max_tries: int = 100) -> ChipSet:
    """``per_pattern`` damaged chips per pattern, arrays in turn, densities log-uniform in ``densities``.

    A drawn chip is kept when its uncorrected accuracy on the *training* images lies in
    ``accuracy_band`` (damaged, not dead; the test images never choose); instances count up from
    ``first_instance``, so disjoint ranges give disjoint chips.
    """
    eng = get_engine(engine) if isinstance(engine, str) else engine
    rng = np.random.default_rng(seed)
    specs, chips = [], []
    for pattern in patterns:
        instance = first_instance
        for i in range(per_pattern):
            layer = i % circuit.n_layers
            for _ in range(max_tries):
                density = float(np.exp(rng.uniform(*np.log(densities))))
                spec = ChipSpec(pattern, layer, round(density, 4), instance)
                instance += 1
                try:
                    chip_circuit, _ = make_defective(circuit, pattern, layer, spec.density, spec.instance, seed=seed)
                except ValueError:  # a shape that cannot reach this density on this array
                    continue
                chip = measure_chip(chip_circuit, dataset, eng)
                if accuracy_band[0] <= chip.accuracy(dataset.y_train, "train") <= accuracy_band[1]:
                    specs.append(spec)
                    chips.append(chip)
                    break
            else:
                raise ValueError(f"pattern {pattern!r} array {layer}: no chip in {max_tries} draws had a training "
                                 f"accuracy in {accuracy_band}; widen densities={densities} or the band")
    return ChipSet(specs, chips)


def _calibration(chips: ChipSet, dataset: Dataset, pool: np.ndarray, k: Optional[int], n_unlabelled: int,
                 reference: Optional[ChipVoltages], seed: int) -> dict:
    """Per chip: ``n_unlabelled`` unlabelled images and ``k`` labelled ones, all drawn from ``pool`` (training
    images), and the defect-free design's outputs on the unlabelled ones when ``reference`` is given."""
    x = chips.outputs("train")
    rng = np.random.default_rng(seed)
    seen = np.stack([rng.choice(pool, min(n_unlabelled, len(pool)), replace=False) for _ in range(len(x))])
    out = {"unlabelled": np.stack([x[i, r] for i, r in enumerate(seen)])}
    if reference is not None:
        out["reference"] = reference.outputs_train[seen]
    if k != 0:
        rows = [pool[calibration_indices(dataset.y_train[pool], k, seed + i)] for i in range(len(x))]
        out["labelled"] = np.stack([x[i, r] for i, r in enumerate(rows)])
        out["labels"] = np.stack([dataset.y_train[r] for r in rows])
    return out


def _judge(model: PopulationCorrector, chips: ChipSet, dataset: Dataset, k: Optional[int], prior: float,
           x_judge: np.ndarray, y_judge: np.ndarray, pool: np.ndarray, n_unlabelled: int,
           reference: Optional[ChipVoltages], seed: int) -> np.ndarray:
    """Accuracy ``[K]`` of the model adapted to ``chips`` with ``k`` labelled images from ``pool``."""
    calibration = _calibration(chips, dataset, pool, k, n_unlabelled, reference, seed)
    return model.adapt(**calibration, prior=prior).score(x_judge, y_judge)


def choose_prior(model: PopulationCorrector, chips: ChipSet, dataset: Dataset, k: Optional[int], *,
                 priors: Sequence[float] = PRIORS, validation_share: float = 0.25, n_unlabelled: int = 200,
                 reference: Optional[ChipVoltages] = None, seed: int = 0) -> float:
    """The prior toward the identity head with the best mean accuracy on validation chips and images.

    ``chips`` are validation chips (never test chips); their training images are split, seeded, into
    a ``validation_share`` to judge on and a pool the calibration images come from, so no test image
    is read. ``k = 0`` without ``reference`` fits no head: the prior is irrelevant, the first is returned.
    """
    if k == 0 and reference is None:
        return float(priors[0])
    order = np.random.default_rng(seed).permutation(len(dataset.y_train))
    n_judge = int(round(validation_share * len(order)))
    if not 0 < n_judge < len(order):
        raise ValueError(f"validation_share={validation_share!r} leaves no images to judge on or to calibrate from; "
                         "use a share in (0, 1), e.g. 0.25")
    judge, pool = np.sort(order[:n_judge]), np.sort(order[n_judge:])
    x = chips.outputs("train")[:, judge]
    scores = [_judge(model, chips, dataset, k, p, x, dataset.y_train[judge], pool, n_unlabelled, reference,
                     seed).mean()
              for p in priors]
    return float(priors[int(np.argmax(scores))])


def _check_budgets(budgets: Sequence[Optional[int]], n_train: int) -> list[Optional[int]]:
    out = []
    for k in budgets:
        if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= n_train):
            raise ValueError(f"budget k={k!r} is not accepted: labelled images per chip must be an integer in "
                             f"[0, {n_train}] (the training images), or None for all of them")
        out.append(None if k is None else int(k))
    return out


@dataclass
class PopulationResult:
    """Test accuracy of population correctors on chips of patterns they never saw, per labelled budget ``k``.

    ``accuracy`` ``[budgets, chips]``; ``before``, ``oracle`` ``[chips]`` (uncorrected, and the per-chip
    MLP h=8 on all training images); ``priors`` ``[patterns]`` as chosen on validation;
    ``train_ids[pattern]`` the chips the corrector judged on ``pattern`` was trained on.
    """

    budgets: list[Optional[int]]
    specs: list[ChipSpec]
    accuracy: np.ndarray
    before: np.ndarray
    oracle: np.ndarray
    patterns: list[str]
    priors: np.ndarray
    train_ids: dict[str, list[str]] = field(default_factory=dict)
    n_parameters: int = 0

    def table(self, level: float = 0.95, seed: int = 0) -> list[dict]:
        """Per budget: mean accuracy and share of the oracle's recovery, each with a bootstrap interval over chips."""
        rows = []
        n = len(self.before)
        for b, k in enumerate(self.budgets):
            acc = self.accuracy[b]

            def share(idx: np.ndarray, axis: int = 1) -> np.ndarray:
                idx = idx.astype(int)
                gain = acc[idx].mean(axis=axis) - self.before[idx].mean(axis=axis)
                return gain / (self.oracle[idx].mean(axis=axis) - self.before[idx].mean(axis=axis))

            rows.append({"k": k, "accuracy": float(acc.mean()), "accuracy_ci": bootstrap_ci(acc, level=level, seed=seed),
                         "recovery": float(share(np.arange(n)[None])[0]),
                         "recovery_ci": bootstrap_ci(np.arange(n), share, level=level, seed=seed)})
        return rows

    def to_markdown(self) -> str:
        """The calibration curve as a Markdown table (percent, 95 % intervals)."""
        lines = ["| labelled images per chip | accuracy (%) | share of the oracle's recovery (%) |", "|---|---|---|"]
        for r in self.table():
            k = "all" if r["k"] is None else r["k"]
            lo, hi = r["accuracy_ci"]
            rlo, rhi = r["recovery_ci"]
            lines.append(f"| {k} | {100 * r['accuracy']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] | "
                         f"{100 * r['recovery']:.0f} [{100 * rlo:.0f}, {100 * rhi:.0f}] |")
        lines.append(f"| (no correction) | {100 * self.before.mean():.1f} | 0 |")
        lines.append(f"| (per-chip oracle, MLP h=8, all images) | {100 * self.oracle.mean():.1f} | 100 |")
        return "\n".join(lines)


def oracle_accuracy(chips: ChipSet, dataset: Dataset) -> np.ndarray:
    """Test accuracy ``[K]`` of the per-chip MLP h=8 fitted on all of each chip's training images."""
    model = BatchedMLPCorrector(8).fit(chips.outputs("train"), dataset.y_train, n_classes=dataset.n_classes)
    return np.asarray(model.score(chips.outputs("test"), dataset.y_test))


def evaluate_population(model: PopulationCorrector, validation: ChipSet, test: ChipSet, dataset: Dataset,
                        budgets: Sequence[Optional[int]], *, priors: Sequence[float] = PRIORS,
                        n_unlabelled: int = 200, reference: Optional[ChipVoltages] = None,
                        seed: int = 0) -> tuple[np.ndarray, float]:
    """Test accuracy ``[budgets, K]`` of a fitted model on ``test`` chips, and the prior chosen on ``validation``
    (at ``TUNE_K`` labelled images)."""
    budgets = _check_budgets(budgets, len(dataset.y_train))
    prior = choose_prior(model, validation, dataset, TUNE_K, priors=priors, n_unlabelled=n_unlabelled,
                         reference=reference, seed=seed)
    pool = np.arange(len(dataset.y_train))
    x_test = test.outputs("test")
    accuracy = np.stack([_judge(model, test, dataset, k, prior, x_test, dataset.y_test, pool, n_unlabelled, reference,
                                seed + 1)
                         for k in budgets])
    return accuracy, prior


def leave_one_pattern_out(train: ChipSet, validation: ChipSet, test: ChipSet, dataset: Dataset,
                          make_model: Callable[[], PopulationCorrector] = PopulationCorrector, *,
                          budgets: Sequence[Optional[int]] = BUDGETS, priors: Sequence[float] = PRIORS,
                          patterns: Optional[Sequence[str]] = None, n_unlabelled: int = 200,
                          reference: Optional[ChipVoltages] = None, seed: int = 0) -> PopulationResult:
    """For each pattern: a population corrector trained on the other patterns' chips, judged on its test chips.

    ``make_model()`` gives a fresh unfitted ``PopulationCorrector``; ``reference`` (the defect-free
    design's voltages) lends its decisions on the unlabelled images to the per-chip heads. Training and validation chips of
    the held-out pattern are never read for it (``train_ids`` records the chips each model saw).
    """
    patterns = list(dict.fromkeys(s.pattern for s in test.specs)) if patterns is None else list(patterns)
    budgets = _check_budgets(budgets, len(dataset.y_train))
    ids = {s.chip_id for s in train.specs} | {s.chip_id for s in validation.specs}
    clash = ids & {s.chip_id for s in test.specs}
    if clash:
        raise ValueError(f"chips {sorted(clash)[:3]} are both in training/validation and in test; use other instances")
    accuracy, priors_out, specs, chips, train_ids = [], [], [], [], {}
    n_parameters = 0
    for held in patterns:
        others = [p for p in dict.fromkeys(s.pattern for s in train.specs) if p != held]
        tr, val, te = train.where(others), validation.where(others), test.where([held])
        if not te.specs or not tr.specs:
            raise ValueError(f"pattern {held!r}: needs test chips of it and training chips of other patterns")
        model = make_model().fit(tr.outputs("train"), dataset.y_train, n_classes=dataset.n_classes)
        train_ids[held] = [s.chip_id for s in tr.specs]
        acc, chosen = evaluate_population(model, val, te, dataset, budgets, priors=priors, n_unlabelled=n_unlabelled,
                                          reference=reference, seed=seed)
        accuracy.append(acc)
        priors_out.append(chosen)
        specs += te.specs
        chips += te.chips
        n_parameters = model.n_parameters
    tested = ChipSet(specs, chips)
    return PopulationResult(budgets, specs, np.concatenate(accuracy, axis=1),
                            np.array([c.accuracy(dataset.y_test) for c in chips]), oracle_accuracy(tested, dataset),
                            patterns, np.array(priors_out), train_ids, n_parameters)


def population_cross_matrix(train: ChipSet, validation: ChipSet, test: ChipSet, dataset: Dataset,
                            lopo: PopulationResult, k: Optional[int],
                            make_model: Callable[[], PopulationCorrector] = PopulationCorrector, *,
                            priors: Sequence[float] = PRIORS, n_unlabelled: int = 200,
                            reference: Optional[ChipVoltages] = None, seed: int = 0) -> CrossDefectResult:
    """The cross-defect matrix of population correctors at ``k`` labelled images per chip.

    Row ``A``: a population corrector trained on the chips of pattern ``A`` only (its prior chosen on
    validation chips of ``A``), judged on the test chips of every pattern. The last row
    (``POPULATION``) is the leave-one-pattern-out corrector of ``lopo`` at the same ``k``.
    """
    if k not in lopo.budgets:
        raise ValueError(f"k={k!r} is not one of the leave-one-pattern-out budgets {lopo.budgets}")
    types = list(lopo.patterns)
    per = {t: [i for i, s in enumerate(lopo.specs) if s.pattern == t] for t in types}
    counts = {len(v) for v in per.values()}
    if len(counts) != 1:
        raise ValueError(f"every pattern needs the same number of test chips; got { {t: len(v) for t, v in per.items()} }")
    tests = {t: test.where([t]) for t in types}
    chip_accuracy = np.empty((len(types) + 1, len(types), counts.pop()))
    n_train = 0
    for a, row in enumerate(types):
        tr = train.where([row])
        n_train = len(tr.specs)
        model = make_model().fit(tr.outputs("train"), dataset.y_train, n_classes=dataset.n_classes)
        prior = choose_prior(model, validation.where([row]), dataset, TUNE_K, priors=priors, n_unlabelled=n_unlabelled,
                             reference=reference, seed=seed)
        for b, col in enumerate(types):
            chip_accuracy[a, b] = _judge(model, tests[col], dataset, k, prior, tests[col].outputs("test"),
                                         dataset.y_test, np.arange(len(dataset.y_train)), n_unlabelled, reference,
                                         seed + 1)
    chip_accuracy[-1] = lopo.accuracy[lopo.budgets.index(k)][np.array([per[t] for t in types])]
    before = lopo.before[np.array([per[t] for t in types])]
    return CrossDefectResult(types + [POPULATION], types, chip_accuracy.mean(axis=2), before.mean(axis=1),
                             lopo.n_parameters, n_train, chip_accuracy.shape[2], chip_accuracy, before)


__all__ = ["BUDGETS", "PRIORS", "TUNE_K", "ChipSet", "ChipSpec", "PopulationResult", "choose_prior", "draw_chips",
           "evaluate_population", "leave_one_pattern_out", "oracle_accuracy", "population_cross_matrix"]
