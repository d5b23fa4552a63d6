"""The study file's ``wafer:`` section: wafers of dies from a defect field, a pass criterion, mitigations.

Every (D0, alpha) pair of the section is one defect field; each field draws ``n_wafers`` wafers
(or as many as ``n_dies`` dies need) with ``neurodtco.wafer.draw_wafer`` and judges every die
under every mitigation, exactly as ``neurodtco.wafer.wafer_yield`` does for the same seed.
"""

from __future__ import annotations

import math
from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..wafer import DEFAULT_CELL_AREA_UM2, DefectField, Mitigation, Wafer


class _Strict(BaseModel):
    """Refuse unknown keys, as every section of a study does."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CriterionSpec(_Strict):
    """When a die passes: an accuracy bound (absolute, or within k points of healthy), or no stuck cell at all."""

    kind: Literal["accuracy", "any-defect"] = "accuracy"
    bound: Optional[float] = Field(None, ge=0.0, le=1.0, description="A die passes at this test accuracy or more.")
    within: Optional[float] = Field(None, ge=0.0, description="A die passes within this many percentage points of "
                                    "the healthy chip's test accuracy.")

    @model_validator(mode="after")
    def _one_bound(self) -> "CriterionSpec":
        if self.kind == "any-defect" and (self.bound is not None or self.within is not None):
            raise ValueError("kind any-defect takes no accuracy bound: drop bound/within, or use kind: accuracy")
        if self.kind == "accuracy" and (self.bound is None) == (self.within is None):
            raise ValueError("kind accuracy needs exactly one of bound (an accuracy in [0, 1], e.g. 0.9) or within "
                             "(percentage points below the healthy chip, e.g. 2)")
        return self


class MitigationSpec(_Strict):
    """The mitigations every die is judged under; each listed value is one mitigation of its own."""

    none: bool = Field(True, description="Judge the dies as drawn.")
    correct: list[int] = Field(default_factory=list, description="Per-die MLP correctors, one mitigation per number "
                               "of labelled training images k (several k give the calibration curve).")
    spares: list[int] = Field(default_factory=list, description="Spare rows and spare columns per array, one "
                              "mitigation per count.")
    retrain: bool = Field(False, description="Defect-aware retraining of every defective die (slow).")
    hidden: int = Field(8, ge=1, description="Hidden size of the per-die correctors.")

    @field_validator("correct", "spares")
    @classmethod
    def _counts(cls, value: list[int], info) -> list[int]:  # type: ignore[no-untyped-def]
        least = 1 if info.field_name == "correct" else 0
        for v in value:
            if v < least:
                raise ValueError(f"{v} is not accepted: expected integers >= {least}")
        if len(set(value)) != len(value):
            raise ValueError(f"{value} lists a value twice")
        return sorted(value)

    @model_validator(mode="after")
    def _some(self) -> "MitigationSpec":
        if not self.mitigations():
            raise ValueError("none is false and no other mitigation is listed: judge the dies under at least one")
        return self

    def mitigations(self) -> list[Mitigation]:
        """The mitigations in a fixed order: none, spares, correction by k, retraining."""
        out = [Mitigation()] if self.none else []
        out += [Mitigation(spare_rows=s, spare_cols=s) for s in self.spares if s > 0]
        out += [Mitigation(correct=k, hidden=self.hidden) for k in self.correct]
        if self.retrain:
            out.append(Mitigation(retrain=True))
        return out


class WaferSpec(_Strict):
    """Wafers of dies drawn from a defect field (``neurodtco.wafer``), judged for yield."""

    diameter_mm: float = Field(300.0, gt=0, description="Wafer diameter (mm).")
    die_width_mm: float = Field(10.0, gt=0, description="Die width (mm).")
    die_height_mm: float = Field(10.0, gt=0, description="Die height (mm).")
    edge_exclusion_mm: float = Field(3.0, ge=0, description="Edge band where no die is kept (mm).")
    d0: list[float] = Field(min_length=1, description="Mean stuck-defect densities, defects per cell (e.g. 1e-4 "
                            "to 1e-2); each value is one defect field.")
    alpha: list[Union[float, Literal["inf"]]] = Field(
        default_factory=lambda: ["inf"], min_length=1,
        description="Stapper's clustering parameters (small: strong clustering; 'inf': none), crossed with d0.")
    cluster_radius_mm: Optional[float] = Field(None, gt=0, description="Correlation length of the clustering field "
                                               "(mm); null: each die its own multiplier (Stapper's model).")
    edge_gradient: float = Field(0.0, gt=-1, description="The wafer edge has 1 + this times the centre's density.")
    on_fraction: float = Field(0.5, ge=0, le=1, description="Share of stuck cells stuck on (the rest stuck off).")
    cell_area_um2: float = Field(DEFAULT_CELL_AREA_UM2, gt=0, description="Area of one cell (um^2): the cell pitch.")
    n_wafers: Optional[int] = Field(None, ge=1, description="Whole wafers per defect field.")
    n_dies: Optional[int] = Field(None, ge=1, description="Dies per defect field, filled wafer by wafer (instead "
                                  "of n_wafers).")
    criterion: CriterionSpec = Field(..., description="When a die passes.")
    mitigations: MitigationSpec = MitigationSpec()
    seed: int = Field(0, ge=0, description="Seed of the defect field (the same seed, the same dies).")
    dies_per_task: Optional[int] = Field(
        None, ge=1, description="Dies per task (a part of one wafer); default a whole wafer, which keeps the "
        "per-die correctors' calibration subsets those of neurodtco.wafer.wafer_yield.")

    @field_validator("d0")
    @classmethod
    def _d0(cls, value: list[float]) -> list[float]:
        for v in value:
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{v!r} is not accepted: expected defects per cell >= 0 (e.g. 1e-3)")
        if len(set(value)) != len(value):
            raise ValueError(f"{value} lists a density twice")
        return sorted(value)

    @field_validator("alpha")
    @classmethod
    def _alpha(cls, value: list[Union[float, str]]) -> list[Union[float, str]]:
        out: list[Union[float, str]] = []
        for v in value:
            if v == "inf" or (isinstance(v, float) and math.isinf(v) and v > 0):
                out.append("inf")  # kept as text: JSON has no infinity, and the study's hash is taken on JSON
            elif not v > 0:  # type: ignore[operator]
                raise ValueError(f"{v!r} is not accepted: expected Stapper's alpha > 0, or 'inf' for no clustering")
            else:
                out.append(float(v))
        if len(set(out)) != len(out):
            raise ValueError(f"{value} lists a value twice")
        return out

    @model_validator(mode="after")
    def _check(self) -> "WaferSpec":
        if (self.n_wafers is None) == (self.n_dies is None):
            raise ValueError("give exactly one of n_wafers (whole wafers per defect field) or n_dies (dies per field)")
        if self.criterion.kind == "any-defect" and self.mitigations.correct:
            raise ValueError("mitigations.correct cannot change the any-defect criterion (a corrector repairs no "
                             "cell): use criterion kind accuracy, or drop correct")
        self.to_wafer()  # the wafer's own checks: a die that fits, an edge inside the radius
        return self

    @property
    def alphas(self) -> list[float]:
        """The clustering parameters as numbers (``inf`` for none)."""
        return [math.inf if a == "inf" else float(a) for a in self.alpha]

    def to_wafer(self) -> Wafer:
        """The ``Wafer`` these settings describe."""
        return Wafer(self.diameter_mm, self.die_width_mm, self.die_height_mm, self.edge_exclusion_mm)

    def field(self, d0: float, alpha: float) -> DefectField:
        """The defect field at one (D0, alpha) point."""
        return DefectField(d0_per_cell=d0, alpha=alpha, cluster_radius_mm=self.cluster_radius_mm,
                           edge_gradient=self.edge_gradient, on_fraction=self.on_fraction,
                           cell_area_um2=self.cell_area_um2)

    @property
    def wafers_per_field(self) -> int:
        """Wafers drawn per defect field."""
        if self.n_wafers is not None:
            return self.n_wafers
        return math.ceil(self.n_dies / self.to_wafer().n_dies)  # type: ignore[operator]

    def dies_on(self, wafer_index: int) -> int:
        """Dies judged on wafer ``wafer_index`` (all, except the last wafer of an ``n_dies`` count)."""
        per = self.to_wafer().n_dies
        if self.n_dies is None:
            return per
        return max(0, min(per, self.n_dies - wafer_index * per))
