"""Wafers of dies: a wafer-level defect field, defect-map files, and yield with Stapper's check.

>>> from neurodtco.wafer import DefectField, Wafer, wafer_yield
>>> result = wafer_yield(circuit, DefectField(d0_per_cell=3e-4, alpha=2.0), Wafer(), 1000, dataset,
...                      bound=0.9)   # doctest: +SKIP

Every die is a ``Circuit`` made by the defect machinery (``defects.apply.apply_stuck_map``) from
its ``DieMap``. See docs/yield.md for the model, the file format and the numbers.
"""

from .diemap import DieMap, die_circuit, die_circuits
from .field import DEFAULT_CELL_AREA_UM2, DefectField, cell_offsets_mm, draw_dies, draw_wafer, gaussian_field
from .geometry import Die, DieKey, Wafer, wafers_needed
from .maps import COLUMNS, KINDS, read_defect_maps, write_defect_maps
from .redundancy import repair
from .stapper import effective_alpha, field_stapper_yield, stapper_yield
from .yield_ import (CRITERIA, Mitigation, YieldResult, d0_at_yield, evaluate_dies, evaluate_mitigations, mean_defects,
                     plot_yield, wafer_yield, yield_table)

__all__ = [
    "COLUMNS", "CRITERIA", "DEFAULT_CELL_AREA_UM2", "DefectField", "Die", "DieKey", "DieMap", "KINDS", "Mitigation",
    "Wafer", "YieldResult", "cell_offsets_mm", "d0_at_yield", "die_circuit", "die_circuits", "draw_dies", "draw_wafer",
    "effective_alpha", "evaluate_dies", "evaluate_mitigations", "field_stapper_yield", "gaussian_field", "mean_defects",
    "plot_yield", "read_defect_maps", "repair", "stapper_yield", "wafer_yield", "wafers_needed", "write_defect_maps",
    "yield_table",
]
