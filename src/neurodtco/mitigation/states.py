"""Memory-state lever: the conductance window (and eFlash operating point) with the least array energy
that still meets an accuracy bound over the whole temperature range.

The arrays' read energy scales with the conductances, so lower states save energy; what stops
the descent is physics that grows in relative terms at low conductance: thermally activated
transport (low ReRAM states move most with temperature; deep-subthreshold eFlash states move as
``(G/G_th)^(T_ref/T)``), thermal and shot read noise (relative size ``~ 1/sqrt(G)``), and, the
other way round, IR drop, which shrinks with the conductances. ``choose_memory_states``
evaluates each candidate window at every temperature of the range, with read noise drawn per
inference group and the exact engine, and keeps the cheapest candidate whose *worst*
temperature still meets the bound **on the validation images**; the test images only report the
chosen candidate's accuracy (with its Wilson interval). A candidate may build its TIA feedback from cells of the same
technology (``feedback="tracking"``, ``circuit_levers.track_temperature``), which cancels the
common Arrhenius factor of thermally activated states and opens the low windows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable, Optional, Sequence

import numpy as np
import pandas as pd

from ..data import Dataset, split_validation, to_voltages
from ..engines import simulate
from ..imperfections import apply_imperfections, evaluate, parse_imperfections
from ..imperfections.energy import energy_per_inference_j
from ..stats import wilson_interval
from ..mapping import MappingConfig, map_network
from ..network import TrainedNetwork
from .circuit_levers import track_temperature
from .common import resolve_engine

FEEDBACKS = ("fixed", "tracking")


@dataclass(frozen=True)
class StateCandidate:
    """One memory-state choice: the window, the pair encoding, and (eFlash) the threshold conductance."""

    r_on_ohm: float
    r_off_ohm: float
    pair_encoding: str = "low"
    technology: str = "reram"
    g_threshold_s: Optional[float] = None  # eFlash: conductance at Vg = Vt (None: the window's G_max)
    feedback: str = "fixed"  # "tracking": TIA feedback built from cells of the same technology

    def __post_init__(self) -> None:
        if self.feedback not in FEEDBACKS:
            raise ValueError(f"feedback={self.feedback!r} is not accepted: choose one of {list(FEEDBACKS)}")
        if self.technology not in ("reram", "eflash"):
            raise ValueError(f"technology={self.technology!r} is not accepted: choose 'reram' or 'eflash'")

    @property
    def label(self) -> str:
        """A short human-readable name."""
        g_lo, g_hi = 1e6 / self.r_off_ohm, 1e6 / self.r_on_ohm
        text = f"{self.technology} {g_lo:.3g}-{g_hi:.3g} uS {self.pair_encoding}"
        if self.technology == "eflash" and self.g_threshold_s is not None:
            text += f" G_th {self.g_threshold_s * 1e6:.3g} uS"
        if self.feedback == "tracking":
            text += " tracking R_f"
        return text


def window_grid(r_on_ohm: Iterable[float] = (10e3, 25e3, 50e3, 100e3, 250e3, 1e6), ratios: Iterable[float] = (100.0,),
                pair_encodings: Iterable[str] = ("low",), technology: str = "reram",
                threshold_factors: Iterable[Optional[float]] = (None,),
                feedbacks: Iterable[str] = ("fixed",)) -> list[StateCandidate]:
    """Candidates: every R_on with every on/off ratio, encoding and feedback (eFlash: G_th = factor x G_max)."""
    out = []
    for r_on in r_on_ohm:
        for ratio in ratios:
            for enc in pair_encodings:
                for factor in threshold_factors:
                    for feedback in feedbacks:
                        g_th = None if factor is None else factor / float(r_on)
                        out.append(StateCandidate(float(r_on), float(r_on) * float(ratio), enc, technology, g_th,
                                                  feedback))
    return out


def temperature_spec(candidate: StateCandidate, temperature_c: float) -> dict:
    """The ``apply_imperfections`` temperature item for a candidate."""
    spec = {"kind": "temperature", "temperature_c": float(temperature_c), "technology": candidate.technology}
    if candidate.technology == "eflash" and candidate.g_threshold_s is not None:
        spec["g_threshold_s"] = candidate.g_threshold_s
    return spec


def evaluate_candidates(network: TrainedNetwork, dataset: Dataset, candidates: Sequence[StateCandidate], *,
                        temperatures_c: Iterable[float] = (25.0, 50.0, 75.0, 100.0),
                        read_noise: Optional[dict] = None, base: MappingConfig = MappingConfig(),
                        engine: Any = "nodal", read_time_s: float = 1e-7, seeds: Sequence[int] = (0,),
                        programming: Optional[dict] = None, n_validation: int = 180,
                        per_image: bool = False) -> pd.DataFrame:
    """Test and validation accuracy and test energy per inference of every candidate at every temperature.

    Means over seeds. ``read_noise``: an ``apply_imperfections`` read-noise item (e.g. ``{"kind":
    "read_noise", "relative_sigma": 0.01, "group_size": 20}``), drawn per inference group;
    ``programming``: an optional programming item applied first (tuning error at 25 C). A dataset
    without a validation part has ``n_validation`` images held out of its training part for it.
    With ``per_image`` each row also carries ``correct``: per test image, the fraction of the
    seeds' reads that classified it correctly (its mean is ``accuracy``), for paired comparisons.
    """
    eng = resolve_engine(engine)
    if not dataset.has_validation:
        dataset = split_validation(dataset, n_validation, seed=0)
    x_val, y_val = dataset.validation()
    rows = []
    for cand in candidates:
        config = replace(base, r_on_ohm=cand.r_on_ohm, r_off_ohm=cand.r_off_ohm, pair_encoding=cand.pair_encoding)
        circuit = map_network(network, config)
        x = to_voltages(dataset.x_test, circuit.input_scale_v)
        xv = to_voltages(x_val, circuit.input_scale_v)
        for t in temperatures_c:
            accs, energies, vals, correct = [], [], [], []
            for seed in seeds:
                spec = parse_imperfections(([programming] if programming else []) + [temperature_spec(cand, t)]
                                           + ([read_noise] if read_noise else []))
                hot, _ = apply_imperfections(circuit, spec, seed=seed)
                if cand.feedback == "tracking":
                    params = {"g_threshold_s": cand.g_threshold_s} if cand.g_threshold_s is not None else {}
                    hot = track_temperature(circuit, hot, t, technology=cand.technology, **params)
                result = simulate(hot, x, engine=eng, read_noise=spec.read_noise, seed=seed, return_power=True)
                correct.append(result.predictions() == np.asarray(dataset.y_test))
                accs.append(float(np.mean(correct[-1])))
                energies.append(float(energy_per_inference_j(result, read_time_s).mean()))
                # A distinct seed: the validation read is another read of the chip, not the test read again.
                vals.append(evaluate(hot, xv, y_val, engine=eng, seed=seed + 1, read_time_s=read_time_s,
                                     read_noise=spec.read_noise)["accuracy"])
            rows.append({"candidate": cand.label, "technology": cand.technology, "r_on_ohm": cand.r_on_ohm,
                         "r_off_ohm": cand.r_off_ohm, "pair_encoding": cand.pair_encoding,
                         "g_threshold_s": cand.g_threshold_s, "feedback": cand.feedback, "temperature_c": float(t),
                         "accuracy": float(np.mean(accs)), "accuracy_validation": float(np.mean(vals)),
                         # The seeds' reads repeat the same images: the images are what the interval counts.
                         "n_test": int(len(dataset.y_test)), "n_reads": len(seeds),
                         "energy_j": float(np.mean(energies))})
            if per_image:
                rows[-1]["correct"] = np.mean(correct, axis=0)
    return pd.DataFrame(rows)


def choose_memory_states(table: pd.DataFrame, reference: str, max_drop: float = 0.01) -> pd.DataFrame:
    """Per candidate: worst accuracy over temperature, energy at 25 C, and whether it meets the bound.

    The bound and the test are on **validation** accuracy: the reference candidate's worst-case
    validation accuracy minus ``max_drop``. ``worst_accuracy`` (test, with ``worst_accuracy_ci``, a
    Wilson interval over the ``n_test`` images, however many reads were averaged) and ``accuracy_cost``
    (test) only report. The energy saving is the reference's
    energy at its reference temperature over the candidate's. Sorted by energy; the first row with
    ``meets_bound`` is the choice.
    """
    if reference not in set(table["candidate"]):
        raise ValueError(f"reference={reference!r} is not among the evaluated candidates: {sorted(set(table['candidate']))}")
    t_ref = float(table["temperature_c"].min())
    summary = table.groupby("candidate").agg(
        worst_accuracy=("accuracy", "min"), mean_accuracy=("accuracy", "mean"),
        worst_validation=("accuracy_validation", "min"), n_test=("n_test", "first"),
        r_on_ohm=("r_on_ohm", "first"), r_off_ohm=("r_off_ohm", "first"), pair_encoding=("pair_encoding", "first"),
        technology=("technology", "first"), feedback=("feedback", "first"))
    summary["energy_j"] = table[table["temperature_c"] == t_ref].set_index("candidate")["energy_j"]
    summary["accuracy_at_ref_t"] = table[table["temperature_c"] == t_ref].set_index("candidate")["accuracy"]
    bound = float(summary.loc[reference, "worst_validation"]) - max_drop
    summary["energy_saving"] = float(summary.loc[reference, "energy_j"]) / summary["energy_j"]
    summary["accuracy_cost"] = float(summary.loc[reference, "worst_accuracy"]) - summary["worst_accuracy"]
    summary["meets_bound"] = summary["worst_validation"] >= bound - 1e-12
    summary["worst_accuracy_ci"] = [list(wilson_interval(a * n, int(n)))
                                    for a, n in zip(summary["worst_accuracy"], summary["n_test"])]
    return summary.sort_values("energy_j").reset_index()
