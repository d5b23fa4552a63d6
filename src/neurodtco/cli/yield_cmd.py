"""`neurodtco yield`: the share of dies of a wafer-level defect field (or of a defect-map file) that pass."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..mapping import map_network
from .circuit_options import CircuitOptions
from .common import EngineHelp, JsonOpt, emit_json, user_errors
from .data_options import DataOptions
from .options import with_options


#: the API's parameter names, as this command's options (so that an error names what the user typed)
_OPTION_OF = {"d0_per_cell": "--d0", "d0_per_cm2": "--d0-cm2", "cell_area_um2": "--cell-area-um2", "alpha": "--alpha",
              "cluster_radius_mm": "--cluster-radius-mm", "edge_gradient": "--edge-gradient",
              "on_fraction": "--on-fraction", "criterion": "--criterion", "bound": "--bound", "within": "--within",
              "correct": "--correct", "spare_rows": "--spares", "spare_cols": "--spares", "n_dies": "--dies",
              "diameter_mm": "--wafer-mm", "die_width_mm": "--die-mm", "die_height_mm": "--die-mm",
              "edge_exclusion_mm": "--edge-mm", "seed": "--field-seed"}


@with_options
def yield_(
    dies: Annotated[int, typer.Option("--dies", help="Dies to draw (filled wafer by wafer).")] = 1000,
    d0: Annotated[Optional[float], typer.Option("--d0", help="Mean defect density per cell (e.g. 3e-4).")] = None,
    d0_cm2: Annotated[Optional[float], typer.Option("--d0-cm2", help="Mean defect density per cm^2 of cell area, instead of --d0.")] = None,
    cell_area_um2: Annotated[float, typer.Option("--cell-area-um2", help="Area of one cell (um^2): converts --d0-cm2, sets the cell pitch.")] = 0.01,
    alpha: Annotated[float, typer.Option("--alpha", help="Stapper's clustering parameter (small: strong clustering; inf: Poisson).")] = float("inf"),
    cluster_radius_mm: Annotated[Optional[float], typer.Option("--cluster-radius-mm", help="Correlation length of the clustering field (mm); default: each die its own multiplier.")] = None,
    edge_gradient: Annotated[float, typer.Option("--edge-gradient", help="The wafer edge has 1 + G times the centre's density (mean kept).")] = 0.0,
    on_fraction: Annotated[float, typer.Option("--on-fraction", help="Share of stuck cells stuck on (the rest stuck off).")] = 0.5,
    criterion: Annotated[str, typer.Option("--criterion", help="accuracy (needs --bound or --within) or any-defect.")] = "accuracy",
    bound: Annotated[Optional[float], typer.Option("--bound", help="A die passes at this test accuracy or more (e.g. 0.9).")] = None,
    within: Annotated[Optional[float], typer.Option("--within", help="A die passes within this many percentage points of the healthy chip.")] = None,
    correct: Annotated[Optional[int], typer.Option("--correct", help="Fit a per-die MLP corrector on this many labelled images.")] = None,
    spares: Annotated[int, typer.Option("--spares", help="Spare rows and spare columns per array (worst lines remapped).")] = 0,
    retrain: Annotated[bool, typer.Option("--retrain", help="Defect-aware retraining of every defective die (slow).")] = False,
    wafer_mm: Annotated[float, typer.Option("--wafer-mm", help="Wafer diameter (mm).")] = 300.0,
    die_mm: Annotated[float, typer.Option("--die-mm", help="Die edge (mm), square dies.")] = 10.0,
    edge_mm: Annotated[float, typer.Option("--edge-mm", help="Edge exclusion (mm).")] = 3.0,
    maps: Annotated[Optional[Path], typer.Option("--maps", help="Judge the dies of this defect-map file (CSV or Parquet) instead of drawing.")] = None,
    write_maps: Annotated[Optional[Path], typer.Option("--write-maps", help="Also write the drawn dies' defect maps here.")] = None,
    field_seed: Annotated[int, typer.Option("--field-seed", help="Seed of the defect field.")] = 0,
    engine: Annotated[str, typer.Option("--engine", help=EngineHelp)] = "nodal",
    circuit: CircuitOptions = CircuitOptions(),
    data: DataOptions = DataOptions(),
    as_json: bool = JsonOpt,
) -> None:
    """Yield of a wafer-level defect field: the share of dies that pass, with its Wilson interval."""
    # Subject packages load when their command runs, so that `neurodtco --help` stays fast.
    from ..wafer import (DefectField, Mitigation, Wafer, draw_dies, evaluate_dies, field_stapper_yield,
                         read_defect_maps, wafer_yield, write_defect_maps)

    with user_errors(_OPTION_OF):
        wafer = Wafer(diameter_mm=wafer_mm, die_width_mm=die_mm, die_height_mm=die_mm, edge_exclusion_mm=edge_mm)
        mitigation = Mitigation(spare_rows=spares, spare_cols=spares, retrain=retrain, correct=correct)
        field = None
        if maps is None:
            if (d0 is None) == (d0_cm2 is None):
                raise ValueError("give exactly one of --d0 (defects per cell) or --d0-cm2 (defects per cm^2)")
            common = {"alpha": alpha, "cluster_radius_mm": cluster_radius_mm, "edge_gradient": edge_gradient,
                      "on_fraction": on_fraction}
            field = (DefectField(d0_per_cell=d0, cell_area_um2=cell_area_um2, **common) if d0 is not None  # type: ignore[arg-type]
                     else DefectField.from_d0_per_cm2(d0_cm2, cell_area_um2, **common))  # type: ignore[arg-type]
        elif write_maps is not None:
            raise ValueError("--write-maps writes drawn dies; it cannot be combined with --maps")
        dataset, net, _ = data.load(as_json)
        healthy = map_network(net, circuit.config)
        judge: dict[str, Any] = {"criterion": criterion, "bound": bound, "within": within, "mitigation": mitigation,
                                 "engine": engine, "seed": field_seed}
        if maps is not None:
            present = sorted({d.key[0] for d in read_defect_maps(maps, healthy)})
            keys = [die.key(w) for w in present for die in wafer.dies]
            result = evaluate_dies(healthy, read_defect_maps(maps, healthy, dies=keys), dataset, **judge)
        elif write_maps is not None:
            start = time.perf_counter()
            drawn = draw_dies(field, wafer, healthy, dies, seed=field_seed)  # type: ignore[arg-type]
            draw_s = time.perf_counter() - start
            write_defect_maps(write_maps, drawn, healthy)
            result = evaluate_dies(healthy, drawn, dataset, **judge)
            result.timings = {"draw_s": draw_s, **result.timings}
        else:
            result = wafer_yield(healthy, field, wafer, dies, dataset, **judge)  # type: ignore[arg-type]
        if criterion == "any-defect" and field is not None:
            result.stapper_yield = field_stapper_yield(field, healthy, wafer)
    payload = result.to_dict()
    payload.update({"dies_per_wafer": wafer.n_dies, "maps": str(maps) if maps else None,
                    "written_maps": str(write_maps) if write_maps else None})
    if field is not None:
        payload.update({"d0_per_cell": field.d0_per_cell, "d0_per_cm2": field.d0_per_cm2, "alpha": None if math.isinf(field.alpha) else field.alpha,
                        "cluster_radius_mm": field.cluster_radius_mm, "mean_defects_per_die":
                        field.d0_per_cell * healthy.n_cells})
    if as_json:
        emit_json(payload)
    else:
        low, high = result.yield_ci
        extra = f"; Stapper {result.stapper_yield:.2%}" if result.stapper_yield is not None else ""
        typer.echo(f"yield {result.yield_:.2%} [{low:.2%}, {high:.2%}] over {result.n_dies} dies "
                   f"({criterion}, mitigation {mitigation.name}){extra}")
