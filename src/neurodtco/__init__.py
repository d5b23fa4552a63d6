"""neurodtco: design-technology co-optimization of fully analog ReRAM inference circuits."""

from .circuit import Circuit, Layer, NeuronModel
from .engines.crossbar import solve_crossbar
from .data import (DATASETS, Dataset, load_dataset, load_digits, load_fashion_mnist, load_idx, load_idx_folder, load_npz,
                   split_arrays, split_validation, to_voltages)
from .devices import GapReRAMCell, LinearCell
from .engines import SimulationResult, get_engine, simulate
from .mapping import MappingConfig, map_network, map_weights
from .network import NetworkConfig, TrainedNetwork, default_network, load_network, train
from . import periphery  # noqa: E402,F401  (registers the transistor engine)

__version__ = "0.1.0"

__all__ = [
    "Circuit", "Layer", "NeuronModel", "DATASETS", "Dataset", "load_dataset", "load_digits", "load_fashion_mnist",
    "load_idx", "load_idx_folder", "load_npz", "split_arrays", "split_validation", "to_voltages",
    "GapReRAMCell", "LinearCell", "SimulationResult", "get_engine", "simulate", "MappingConfig", "map_network",
    "map_weights", "NetworkConfig", "TrainedNetwork", "default_network", "load_network", "train",
    "solve_crossbar",
]
