"""Stuck-at defects in spatial patterns on the physical arrays of a circuit.

>>> from neurodtco.defects import Defect, apply_defects, parse_defect
>>> d = parse_defect("ring:layer=1,inner=0.2,outer=0.4,kind=on")
>>> new_circuit, record = apply_defects(circuit, [d], seed=0)   # doctest: +SKIP

See docs/defects.md for the coordinates, the size parameters and the tolerances.
"""

from __future__ import annotations

from typing import Any

from .apply import DefectRecord, apply_defects, resolve_pattern, target_layers, target_tiles
from .instances import CENTRED_PATTERNS, defect_instance, instance_params, instance_seed
from .patterns import (checkerboard_mask, circle_mask, clustered_mask, exact_random_mask, line_mask, max_radius,
                       normalized_distance, ring_mask)
from .spec import (KINDS, PATTERN_PARAMS, PATTERNS, Defect, as_defect, collect_defects, defect_from_dict,
                   load_defects, parse_defect)


def plot_defect_maps(*args: Any, **kwargs: Any) -> Any:
    """Draw every array's conductance map with the hit cells marked (see ``plotting.plot_defect_maps``)."""
    # Imported lazily so that applying defects never pays for importing matplotlib.
    from .plotting import plot_defect_maps as _plot

    return _plot(*args, **kwargs)


__all__ = [
    "CENTRED_PATTERNS", "Defect", "DefectRecord", "KINDS", "PATTERNS", "PATTERN_PARAMS", "apply_defects", "as_defect",
    "checkerboard_mask", "circle_mask", "clustered_mask", "collect_defects", "defect_from_dict", "defect_instance",
    "exact_random_mask", "instance_params", "instance_seed", "line_mask", "load_defects", "max_radius",
    "normalized_distance", "parse_defect", "plot_defect_maps", "resolve_pattern", "ring_mask", "target_layers",
    "target_tiles",
]
