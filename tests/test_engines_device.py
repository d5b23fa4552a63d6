"""The engines on a torch device: the same numbers as the NumPy path, and clear refusals of what does not run there.

Every test runs on the CPU (``device="cpu"`` walks the same torch code a GPU runs).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodtco import simulate
from neurodtco.engines import device_engine_names, get_engine
from neurodtco.engines import forward as forward_module
from neurodtco.engines.forward import runs_on_device
from neurodtco.mapping import MappingConfig, map_network, map_ops
from neurodtco.ops import Add, Conv, ConvGeometry, Dense, Pool, PoolGeometry, Save, activate, torch_activate

ENGINES = ["ideal", "nodal"]


def assert_same(device_v: np.ndarray, numpy_v: np.ndarray) -> None:
    """Equal to 1e-12 of the largest output: the sums run in another order, nothing else differs."""
    assert isinstance(device_v, np.ndarray) and device_v.dtype == np.float64
    np.testing.assert_allclose(device_v, numpy_v, rtol=1e-12, atol=1e-12 * np.abs(numpy_v).max())


def small_cnn(rng):
    """conv 1->3 (3x3, stride 2, pad 1) on 7x7, residual conv 3->3, sum, max pool, avg pool, dense 12->5, dense 5->4."""
    c1 = ConvGeometry((1, 7, 7), (3, 3), (2, 2), (1, 1))
    c2 = ConvGeometry((3, 4, 4), (3, 3), (1, 1), (1, 1))
    return [
        Conv(rng.normal(size=(3, 1, 3, 3)), rng.normal(size=3) * 0.1, c1, "relu"),
        Save("r"),
        Conv(rng.normal(size=(3, 3, 3, 3)) * 0.3, rng.normal(size=3) * 0.1, c2, None),
        Add("r", "relu"),
        Pool(PoolGeometry("max", (3, 4, 4), (2, 2), (1, 1))),
        Pool(PoolGeometry("avg", (3, 3, 3), (2, 2), (1, 1))),
        Dense(rng.normal(size=(5, 12)), rng.normal(size=5) * 0.1, "hardtanh"),
        Dense(rng.normal(size=(4, 5)), rng.normal(size=4) * 0.1, None),
    ]


def cnn_circuit(tile=(8, 4), cell="linear"):
    """The small residual CNN, tiled, with 1 ohm wires and op-amp gain 1e4."""
    config = MappingConfig(cell=cell, r_word_ohm=1.0, r_bit_ohm=1.0, open_loop_gain=1e4,
                           tile_rows=tile and tile[0], tile_cols=tile and tile[1])
    return map_ops(small_cnn(np.random.default_rng(0)), config), config


def test_the_torch_twins_of_unrolling_folding_pooling_and_clamping_are_the_numpy_ones():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 2 * 7 * 6))
    conv = ConvGeometry((2, 7, 6), (3, 2), (2, 1), (1, 2))
    patches = conv.patches(x)
    np.testing.assert_array_equal(conv.torch_patches(torch.from_numpy(x)).numpy(), patches)
    y = rng.normal(size=(len(patches), 5))
    np.testing.assert_array_equal(conv.torch_fold(torch.from_numpy(y), 3).numpy(), conv.fold(y, 3))
    for kind in ("max", "avg"):
        pool = PoolGeometry(kind, (2, 7, 6), (3, 2), (2, 3))
        np.testing.assert_allclose(pool.torch_apply(torch.from_numpy(x)).numpy(), pool.apply(x), rtol=1e-15)
    for activation in ("hardtanh", "relu", None):
        np.testing.assert_array_equal(torch_activate(torch.from_numpy(x), activation, 0.5).numpy(),
                                      activate(x, activation, 0.5))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("tile", [(8, 4), None])
def test_a_tiled_residual_cnn_on_the_torch_device_gives_the_numpy_outputs_and_hidden_maps(engine, tile):
    circuit, config = cnn_circuit(tile)
    x = np.random.default_rng(1).uniform(0, 1, (40, 49)) * config.v_read_v
    on_numpy = simulate(circuit, x, engine=engine, return_hidden=True)
    on_device = simulate(circuit, x, engine=engine, device="cpu", return_hidden=True)
    assert on_device.info["device"] == "cpu" and "device" not in on_numpy.info  # the torch path really ran
    assert_same(on_device.outputs_v, on_numpy.outputs_v)
    assert len(on_device.hidden_v) == len(on_numpy.hidden_v) == 3
    for h_device, h_numpy in zip(on_device.hidden_v, on_numpy.hidden_v):
        assert_same(h_device, h_numpy)
    # the outputs are not trivial: they vary between images
    assert np.ptp(on_numpy.outputs_v, axis=0).min() > 0


@pytest.mark.parametrize("engine", ENGINES)
def test_images_streamed_in_many_chunks_on_the_device_give_the_same_outputs(engine, monkeypatch):
    circuit, config = cnn_circuit()
    x = np.random.default_rng(2).uniform(0, 1, (23, 49)) * config.v_read_v
    whole = simulate(circuit, x, engine=engine).outputs_v
    # 16 positions x 27 inputs per image in the widest unrolled convolution: 3 images per chunk
    monkeypatch.setattr(forward_module, "CHUNK_DOUBLES", 3 * 16 * 27)
    assert forward_module.images_per_chunk(circuit, forward_module.device_chunk_doubles(torch.device("cpu"))) == 3
    assert_same(simulate(circuit, x, engine=engine, device="cpu").outputs_v, whole)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_default_digits_mlp_on_the_device_gives_the_numpy_outputs(engine, default_net, digits):
    for config in (MappingConfig(), MappingConfig(open_loop_gain=1e4, tile_rows=16, tile_cols=6)):
        circuit = map_network(default_net, config)
        x = digits.x_test * config.v_read_v
        on_numpy = simulate(circuit, x, engine=engine, return_hidden=True)
        on_device = simulate(circuit, x, engine=engine, device="cpu", return_hidden=True)
        assert_same(on_device.outputs_v, on_numpy.outputs_v)
        for h_device, h_numpy in zip(on_device.hidden_v, on_numpy.hidden_v, strict=True):
            assert_same(h_device, h_numpy)


def test_torch_inputs_give_torch_outputs_on_the_device(default_circuit, digits):
    x = torch.from_numpy(digits.x_test[:9] * 0.2)
    result = simulate(default_circuit, x, engine="nodal", device=torch.device("cpu"), return_hidden=True)
    assert isinstance(result.outputs_v, torch.Tensor) and result.outputs_v.dtype == torch.float64
    assert all(isinstance(h, torch.Tensor) for h in result.hidden_v)
    assert_same(result.outputs_v.numpy(), simulate(default_circuit, x.numpy(), engine="nodal").outputs_v)


@pytest.mark.parametrize("tile, combine, gain", [((8, 4), "shared", 1e4), ((8, 4), "shared", 30.0),
                                                 ((8, 4), "summing", 1e4), (None, "shared", 1e4),
                                                 ((8, 4), "shared", float("inf"))])
def test_gap_cells_on_the_device_give_the_numpy_outputs(tile, combine, gain):
    """Newton on the device (dense chord maps) against the NumPy path (chord on the factorizations),
    tiled and untiled, with shared inputs strongly coupled (low gain), summing tiles and ideal op-amps."""
    config = MappingConfig(cell="gap", r_word_ohm=1.0, r_bit_ohm=1.0, open_loop_gain=gain,
                           tile_rows=tile and tile[0], tile_cols=tile and tile[1], tile_combine=combine)
    circuit = map_ops(small_cnn(np.random.default_rng(0)), config)
    x = np.random.default_rng(3).uniform(0, 1, (6, 49)) * config.v_read_v
    on_numpy = simulate(circuit, x, engine="nodal", return_hidden=True)
    on_device = simulate(circuit, x, engine="nodal", device="cpu", return_hidden=True)
    assert on_device.info["device"] == "cpu" and "device" not in on_numpy.info
    assert all(layer["method"] == "chord" for layer in on_device.info["layers"])
    np.testing.assert_allclose(on_device.outputs_v, on_numpy.outputs_v, rtol=0, atol=1e-11)
    for h_device, h_numpy in zip(on_device.hidden_v, on_numpy.hidden_v, strict=True):
        np.testing.assert_allclose(h_device, h_numpy, rtol=0, atol=1e-11)
    assert np.ptp(on_numpy.outputs_v, axis=0).min() > 0


@pytest.mark.parametrize("tiles, gain", [(3, 1e4), (3, 30.0), (1, 1e4), (1, float("inf"))])
def test_dense_chord_maps_give_the_factorized_chord_solve(tiles, gain, monkeypatch):
    """A group read by more vectors than it has unit sources goes through the dense maps; fewer
    vectors stay on the factorizations (the same numbers, no map built)."""
    from neurodtco.devices import GapReRAMCell
    from neurodtco.engines._nodal import chord, device_chord
    from neurodtco.engines._nodal.newton import NewtonSettings

    rng = np.random.default_rng(11)
    cell = GapReRAMCell()
    blocks = [rng.uniform(cell.g_min, cell.g_max, (4, 3)) for _ in range(tiles)]
    neuron_g = None if np.isinf(gain) else np.full(3, (1 + gain) / 2e3)
    inject = None if neuron_g is None else np.full((1, 3), -1e-6)
    for batch, dense in ((80, True), (10, False)):
        drives = [rng.uniform(0.0, 0.2, (batch, 4)) for _ in blocks]
        built = []
        monkeypatch.setattr(device_chord, "_dense_tile", lambda *a, f=device_chord._dense_tile: built.append(1) or f(*a))
        n, total, info = device_chord.device_group_cells(cell, blocks, [torch.from_numpy(d) for d in drives], 1.0, 2.0,
                                                         neuron_g, inject, NewtonSettings(), "group")
        assert bool(built) == dense and info["method"] == "chord"
        n_ref, total_ref, _ = chord.group_cells(cell, blocks, drives, 1.0, 2.0, neuron_g, inject, NewtonSettings(),
                                                "group")
        np.testing.assert_allclose(n.numpy(), n_ref, rtol=0, atol=1e-14)
        np.testing.assert_allclose(total.numpy(), total_ref, rtol=1e-11, atol=1e-18)


def test_reports_on_the_cpu_device_run_the_numpy_path():
    circuit, config = cnn_circuit(tile=None, cell="gap")
    assert not runs_on_device("nodal", torch.device("cpu"), circuit, reports=True, nonlinear=True)
    assert runs_on_device("nodal", torch.device("cpu"), circuit, reports=False, nonlinear=True)


def test_a_tile_too_large_for_a_dense_chord_map_is_solved_on_its_factorization(monkeypatch):
    from neurodtco.engines._nodal import device_chord

    circuit, config = cnn_circuit(tile=(8, 4), cell="gap")
    x = np.random.default_rng(5).uniform(0, 1, (6, 49)) * config.v_read_v
    monkeypatch.setattr(device_chord, "DENSE_MAX_DOUBLES", 0)  # no map fits
    monkeypatch.setattr(device_chord, "_dense_tile", lambda *a: pytest.fail("a map was built"))
    np.testing.assert_allclose(simulate(circuit, x, engine="nodal", device="cpu").outputs_v,
                               simulate(circuit, x, engine="nodal").outputs_v, rtol=0, atol=1e-11)


def test_a_cuda_device_refuses_gap_cells_and_reports_naming_what_runs_there(default_circuit):
    cuda = torch.device("cuda", 0)
    assert runs_on_device("nodal", cuda, default_circuit, reports=False)
    with pytest.raises(ValueError, match=r"linear-cell circuits on cuda:0; node voltages and power reports run "
                                         r"on the CPU only: pass device=None or 'cpu'"):
        runs_on_device("nodal", cuda, default_circuit, reports=True)
    gap, _ = cnn_circuit(cell="gap")
    with pytest.raises(ValueError, match=r"the ideal engine runs outputs and hidden outputs of linear-cell circuits "
                                         r"on cuda:0; gap-model \(nonlinear\) cells run on the CPU only"):
        runs_on_device("ideal", cuda, gap, reports=False)
    assert runs_on_device("nodal", cuda, gap, reports=False, nonlinear=True)
    assert not runs_on_device("nodal", torch.device("cpu"), gap, reports=True)
    assert not runs_on_device("nodal", None, default_circuit, reports=False)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_bad_or_absent_device_is_refused_naming_it_and_what_is_available(engine, default_circuit):
    x = np.zeros((1, default_circuit.n_inputs))
    with pytest.raises(ValueError, match=r"device='tpu' is not accepted: choose None \(NumPy\), 'cpu' or "
                                         r"'cuda\[:N\]'.*available here: \['cpu'"):
        simulate(default_circuit, x, engine=engine, device="tpu")
    with pytest.raises(ValueError, match=r"device='mps' is not accepted"):
        get_engine(engine, device="mps")
    absent = f"cuda:{torch.cuda.device_count()}"  # one past the last CUDA device, on any machine
    with pytest.raises(ValueError, match=rf"device='{absent}' is not available: torch .* sees "
                                         rf"{torch.cuda.device_count()} CUDA device\(s\); available here: \['cpu'"):
        simulate(default_circuit, x, engine=engine, device=absent)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this torch has CUDA")
def test_cuda_without_cuda_is_refused(default_circuit):
    with pytest.raises(ValueError, match=r"device='cuda' is not available: torch .* sees 0 CUDA device\(s\); "
                                         r"available here: \['cpu'\]"):
        simulate(default_circuit, np.zeros((1, 64)), engine="nodal", device="cuda")


def test_a_device_for_a_cpu_only_engine_or_an_engine_instance_is_refused(default_circuit):
    x = np.zeros((1, default_circuit.n_inputs))
    assert {"ideal", "nodal"} <= set(device_engine_names()) and "ngspice" not in device_engine_names()
    with pytest.raises(ValueError, match=r"engine 'ngspice' runs on the CPU only; device='cpu' is accepted by "
                                         r"\['ideal', 'nodal'"):
        simulate(default_circuit, x, engine="ngspice", device="cpu")
    with pytest.raises(ValueError, match=r"an engine instance carries its own device: build it with "
                                         r"get_engine\(name, device=...\)"):
        simulate(default_circuit, x, engine=get_engine("nodal"), device="cpu")
