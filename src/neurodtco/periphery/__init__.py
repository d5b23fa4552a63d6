"""Transistor-level periphery in FreePDK45: the op-amp neuron, its characterization and the behavioural model.

Needs ngspice and the optional ``c4m-pdk-freepdk45`` models (``pip install 'neurodtco[pdk]'``) for
anything that simulates; reading a characterization file and building the behavioural model from
it needs neither. Importing this package registers the ``transistor`` engine
(``get_engine("transistor")``, ``simulate(..., engine="transistor")``).
"""

from ..engines import register_engine
from .characterize import (BenchConfig, Characterization, NeuronCharacteristics, activation_model, characterize,
                           characterize_point)
from .engine import TransistorEngine
from .model import (apply_characterization, builtin_characterization_path, characterized_circuit,
                    difference_stage_load_s, load_characterization, mapping_from_characterization,
                    neuron_from_characterization, with_difference_gain)
from .opamp import NeuronDesign, OpAmpDesign, neuron_subckt, opamp_subckt
from .pdk import CORNERS, model_library_path, pdk_available

register_engine("transistor", TransistorEngine)

__all__ = [
    "BenchConfig", "CORNERS", "Characterization", "NeuronCharacteristics", "NeuronDesign", "OpAmpDesign",
    "activation_model", "apply_characterization", "builtin_characterization_path", "characterize",
    "characterize_point", "characterized_circuit", "difference_stage_load_s", "load_characterization",
    "mapping_from_characterization", "model_library_path", "neuron_from_characterization", "neuron_subckt",
    "opamp_subckt", "pdk_available", "TransistorEngine", "with_difference_gain",
]
