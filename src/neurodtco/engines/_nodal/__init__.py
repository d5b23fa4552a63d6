"""The nodal solver's steps: assemble (``network``), ``factorize``, ``solve``, ``newton``."""

from .factorize import Factorization, factorize
from .network import ArrayNetwork, wire_conductance
from .solve import ArraySolution, solve, unit_drives

__all__ = ["ArrayNetwork", "ArraySolution", "Factorization", "factorize", "solve", "unit_drives", "wire_conductance"]
