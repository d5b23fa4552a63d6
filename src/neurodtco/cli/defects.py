"""The defect options the commands share, and `neurodtco defects show`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..mapping import map_network
from .circuit_options import CircuitOptions
from .common import JsonOpt, emit_json, user_errors
from .data_options import DataOptions
from .options import with_options

DefectArg = Annotated[Optional[list[str]], typer.Option("--defect", help="Stuck-at defect PATTERN:key=value,... (repeatable), e.g. ring:layer=1,inner=0.2,outer=0.4,kind=on; see docs/defects.md.")]
DefectsFileArg = Annotated[Optional[Path], typer.Option("--defects-file", help="YAML list of defects (one-liners or mappings), applied before the --defect ones.")]
DefectSeedArg = Annotated[int, typer.Option("--defect-seed", help="Seed of the random parts of the defect patterns.")]


@with_options
def show(
    defect: DefectArg = None,
    defects_file: DefectsFileArg = None,
    out: Annotated[Path, typer.Option("--out", help="Picture to write (.png, .svg or .pdf).")] = Path("defects.png"),
    defect_seed: DefectSeedArg = 0,
    circuit: CircuitOptions = CircuitOptions(),
    data: DataOptions = DataOptions(),
    as_json: bool = JsonOpt,
) -> None:
    """Draw every array's conductance map with the cells the defects hit marked (defect maps)."""
    # Subject packages load when their command runs, so that `neurodtco --help` stays fast.
    from ..defects import apply_defects, plot_defect_maps
    from ..defects.commands import defects_from_options

    with user_errors():
        defects = defects_from_options(defect, defects_file)  # refuse nonsense before loading anything
        if not defects:
            raise ValueError("no defect given: add --defect PATTERN:key=value,... or --defects-file FILE.yaml")
        _, net, _ = data.load(as_json)
        defective, record = apply_defects(map_network(net, circuit.config), defects, seed=defect_seed)
        path = plot_defect_maps(defective, record, out)
    if as_json:
        emit_json({"path": str(path), **record.summary()})
    else:
        typer.echo(f"wrote {path}: hit {', '.join(f'layer {i} {d:.1%}' for i, d in enumerate(record.density))}")
