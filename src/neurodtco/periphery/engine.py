"""The ``transistor`` engine: the whole network in ngspice with FreePDK45 op-amp neurons.

A thin adapter of ``network.simulate_transistor_network`` to the engine interface, so that
``simulate(circuit, x, engine="transistor")`` and ``neurodtco simulate --engine transistor`` work.
The arrays, wires and resistors come from the circuit; the op-amps from the characterization's
design (FreePDK45, at ``corner`` and ``temp_c``). Use it on circuits mapped for that neuron
(``periphery.characterized_circuit``): the op-amps clamp at their own swing whatever
``saturation_v`` the circuit states.
"""

from __future__ import annotations

import numpy as np

from ..circuit import Circuit
from ..engines.base import SimulationResult
from . import pdk
from .characterize import Characterization
from .model import Source, load_characterization
from .network import Mode, simulate_transistor_network


class TransistorEngine:
    """Transistor-level neurons in ngspice (one operating point per layer and input vector)."""

    name = "transistor"

    def __init__(self, corner: str = "NOM", temp_c: float = 25.0, characterization: Source = None,
                 mode: Mode = "layerwise", jobs: int = 1, timeout_s: float = 600.0) -> None:
        self.corner = pdk.check_corner(corner)
        self.temp_c = float(temp_c)
        self.characterization: Characterization = load_characterization(characterization)
        self.characterization.point(self.corner, self.temp_c)  # refuse an uncharacterized point now
        if mode not in ("layerwise", "monolithic"):
            raise ValueError(f"mode={mode!r} is not accepted: choose 'layerwise' or 'monolithic'")
        self.mode = mode
        self.jobs = jobs
        self.timeout_s = timeout_s

    def run(self, circuit: Circuit, inputs_v: np.ndarray, *, return_hidden: bool = False,
            return_nodes: bool = False, return_power: bool = False) -> SimulationResult:
        """Simulate ``inputs_v`` ``[batch, n_inputs]``; node voltages and power are not available."""
        if return_nodes or return_power:
            raise ValueError("the transistor engine returns outputs and hidden activations only; "
                             "ask the nodal or ngspice engine for node voltages and array power")
        run = simulate_transistor_network(circuit, inputs_v, self.characterization.design, self.corner, self.temp_c,
                                          characterization=self.characterization, mode=self.mode, jobs=self.jobs,
                                          timeout_s=self.timeout_s)
        info = {**run.info, "n_transistors": run.n_transistors, "transistor_s": run.elapsed_s}
        return SimulationResult(outputs_v=run.outputs_v, engine=self.name,
                                hidden_v=run.hidden_v if return_hidden else None, info=info)

