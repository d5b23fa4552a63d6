"""A tiled CNN on all 10,000 Fashion-MNIST test images: in the ideal-wire, infinite-gain limit the
exact engine is the software network (same class on every image, voltages = logits x output scale)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodtco import simulate
from neurodtco.data import load_fashion_mnist, to_voltages
from neurodtco.mapping import MappingConfig, map_network
from neurodtco.network import TrainedNetwork, make_config


@pytest.fixture(scope="module")
def data():
    return load_fashion_mnist(seed=0)


@pytest.fixture(scope="module")
def cnn(data):
    """The cnn preset with seeded random weights and non-trivial BatchNorm statistics (folded when mapped)."""
    config = make_config("cnn", data, seed=0)
    torch.manual_seed(0)
    model = config.arch.build().double()
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    return TrainedNetwork(config, model.eval().float())


def test_every_test_image_gets_the_software_class_and_voltages_in_the_ideal_limit(data, cnn):
    config = MappingConfig(r_word_ohm=0.0, r_bit_ohm=0.0, tile_rows=64, tile_cols=64)
    circuit = map_network(cnn, config)
    assert circuit.n_arrays > len(circuit.layers)  # really tiled: several arrays per layer
    # The reference is PyTorch itself, in float64: independent of the lowering the circuit is built from.
    with torch.no_grad():
        model = cnn.sequential().double()
        logits = model(torch.from_numpy(data.x_test)).numpy()
    expected = config.output_scale_v * logits
    scale = np.abs(expected).max()
    x = to_voltages(data.x_test, config.v_read_v)
    for engine in ("ideal", "nodal"):
        out = simulate(circuit, x, engine=engine).outputs_v
        assert len(out) == 10_000
        assert np.max(np.abs(out - expected)) / scale < 1e-9, engine
        assert np.array_equal(np.argmax(out, axis=1), np.argmax(logits, axis=1)), engine
