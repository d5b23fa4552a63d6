"""Holistic mitigation of analog-memory imperfections: training, tuning, memory-state and circuit levers.

* ``training``: hardware-aware training (``train_hardware_aware``) and defect-aware retraining in
  conductance space (``retrain_defect_aware``, batched: ``retrain_defect_aware_batch``);
* ``tolerance``: defect tolerance with and without retraining (Monte Carlo and single-fault), measured
  at several accuracy drops with intervals (``tolerance_thresholds``, ``tolerance_ratio_ci``);
* ``tuning``: ordered, threshold-learning, adaptive write-verify for passive and 1T1R arrays, and
  program-measure-retrain (``program_with_retraining``);
* ``states``: the memory-state choice (window, pair encoding, eFlash operating point) under an
  accuracy bound over a temperature range;
* ``circuit_levers``: shared reference column, temperature-tracking feedback, circuit sweeps;
* ``compare``: the side-by-side table (``run_comparison``, ``mitigation_table``, ``to_markdown``).

See docs/mitigation.md for the levers, the measured numbers and the commands that reproduce them.
"""

from __future__ import annotations

from typing import Any

from .common import circuit_accuracy, drop_crossing
from .training import (HardwareNoise, RetrainConfig, noisy_forward, retrain_defect_aware,
                       retrain_defect_aware_batch, stuck_masks_of, train_hardware_aware)


def mitigation_table(results: Any = None, **kwargs: Any) -> Any:
    """The comparison table (``compare.mitigation_table``; imported lazily to keep this package light)."""
    from .compare import mitigation_table as _table

    return _table(results, **kwargs)


__all__ = [
    "HardwareNoise", "RetrainConfig", "circuit_accuracy", "drop_crossing", "mitigation_table", "noisy_forward",
    "retrain_defect_aware", "retrain_defect_aware_batch", "stuck_masks_of", "train_hardware_aware",
]
