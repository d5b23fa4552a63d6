"""Correcting defect-induced errors with lightweight networks on a chip's voltages, and the baselines.

``MLPCorrector`` (10 -> h -> 10 on the output voltages), ``AffineCalibration`` (per-output gain
and offset), ``LogisticCorrector`` (multinomial logistic regression) and ``LastLayerRetrain``
(the last array retrained in software on the last hidden layer's voltages) follow
scikit-learn's habits; their ``Batched*`` twins fit thousands of chips at once.
``correct_circuit`` is the protocol for one chip; ``correct_circuits`` for many. ``cross_defect``
trains on chips of one defect type and judges on chips of another (``CrossDefectResult``).
``PopulationCorrector`` is trained on many simulated chips and adapted to each new chip from its
unlabelled outputs and a few labels (``population_study``: leave one pattern out, calibration curve).
"""

from .cross import CrossDefectResult, cross_defect, cross_defect_figure, plot_cross_defect
from .models import (ACTIVATIONS, CORRECTORS, FEATURE_SETS, AffineCalibration, BatchedAffineCalibration,
                     BatchedCorrector, BatchedLastLayerRetrain, BatchedLogisticCorrector, BatchedMLPCorrector,
                     LastLayerRetrain, LogisticCorrector, MLPCorrector, NotFittedError, make_corrector)
from .population import AdaptedChips, PopulationCorrector
from .protocol import (ChipVoltages, CorrectionResult, calibration_indices, correct_circuit, correct_circuits,
                       measure_chip)

__all__ = [
    "ACTIVATIONS", "CORRECTORS", "FEATURE_SETS", "AffineCalibration", "BatchedAffineCalibration", "BatchedCorrector",
    "BatchedLastLayerRetrain", "BatchedLogisticCorrector", "BatchedMLPCorrector", "LastLayerRetrain",
    "LogisticCorrector", "MLPCorrector", "NotFittedError", "make_corrector", "ChipVoltages", "CorrectionResult",
    "calibration_indices", "correct_circuit", "correct_circuits", "measure_chip", "CrossDefectResult", "cross_defect",
    "cross_defect_figure", "plot_cross_defect", "AdaptedChips", "PopulationCorrector",
]
