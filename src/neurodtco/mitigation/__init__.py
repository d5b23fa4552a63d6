"""Holistic mitigation of analog-memory imperfections: training, tuning, memory-state and circuit levers.

See docs/mitigation.md for the levers, the measured numbers and the commands that reproduce them.
"""

from __future__ import annotations

from .common import circuit_accuracy, drop_crossing
from .training import (HardwareNoise, RetrainConfig, noisy_forward, retrain_defect_aware,
                       retrain_defect_aware_batch, stuck_masks_of, train_hardware_aware)

__all__ = [
    "HardwareNoise", "RetrainConfig", "circuit_accuracy", "drop_crossing", "noisy_forward",
    "retrain_defect_aware", "retrain_defect_aware_batch", "stuck_masks_of", "train_hardware_aware",
]
