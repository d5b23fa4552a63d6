"""Shared fixtures: the default dataset and network, trained once and cached inside the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("NEURODTCO_CACHE", str(Path(__file__).resolve().parents[1] / ".neurodtco-cache"))


@pytest.fixture(scope="session")
def digits():
    """The default 8x8 digits split (seed 0, 180 test images)."""
    from neurodtco.data import load_digits

    return load_digits(seed=0)


@pytest.fixture(scope="session")
def default_net(digits):
    """The default 64-8-8-8-10 network (cached across runs)."""
    from neurodtco.network import default_network

    return default_network(digits)


@pytest.fixture(scope="session")
def default_circuit(default_net):
    """The default network mapped with default settings (linear cells, 1 ohm wires)."""
    from neurodtco.mapping import map_network

    return map_network(default_net)
