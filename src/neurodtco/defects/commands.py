"""The small pieces the command line needs: defects from options and files, applied to a circuit."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from ..circuit import Circuit
from .apply import DefectRecord, apply_defects
from .spec import Defect, collect_defects


def defects_from_options(defect: Optional[Sequence[str]], defects_file: Optional[Path]) -> list[Defect]:
    """The defects named by ``--defects-file`` and the repeated ``--defect`` options, file first."""
    return collect_defects(list(defect or []), defects_file)


def apply_option_defects(circuit: Circuit, defect: Optional[Sequence[str]], defects_file: Optional[Path],
                         seed: int) -> tuple[Circuit, Optional[DefectRecord]]:
    """Apply the command line's defects; with none given, the circuit itself and no record."""
    defects = defects_from_options(defect, defects_file)
    if not defects:
        return circuit, None
    return apply_defects(circuit, defects, seed=seed)
