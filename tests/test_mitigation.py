"""Mitigation levers checked against independent truths: the ideal engine, the software network,
plain training, analytic noise statistics and the physical window."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neurodtco.data import to_voltages
from neurodtco.engines import simulate
from neurodtco.mapping import MappingConfig, map_network
from neurodtco.network import NetworkConfig, train


# ---------------------------------------------------------------- differentiable circuit


@pytest.mark.parametrize("cell", ["linear", "gap"])
def test_torch_forward_equals_ideal_engine(default_net, digits, cell):
    from neurodtco.mitigation import differentiable as diff

    circuit = map_network(default_net, MappingConfig(cell=cell))
    x = to_voltages(digits.x_test[:50], circuit.input_scale_v)
    ours = diff.forward(circuit, diff.stack_conductances([circuit]), torch.as_tensor(x))[0].numpy()
    ref = simulate(circuit, x, engine="ideal").outputs_v
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12 * np.abs(ref).max())


# ---------------------------------------------------------------- defect-aware retraining


@pytest.fixture(scope="module")
def defective(default_circuit):
    from neurodtco.defects import Defect, apply_defects

    return [apply_defects(default_circuit, [Defect(pattern="random", layers="all", kind="mix", density=0.02)], seed=s)
            for s in range(2)]


@pytest.fixture(scope="module")
def retrained(defective, digits):
    from neurodtco.mitigation import RetrainConfig, retrain_defect_aware_batch

    config = RetrainConfig(epochs=12, batch_size=256, learning_rate=2e-2)
    return retrain_defect_aware_batch([c for c, _ in defective], [r for _, r in defective], digits, config)


def test_retraining_never_moves_a_stuck_cell_and_keeps_the_rest_in_the_window(defective, retrained):
    for (chip, record), new in zip(defective, retrained):
        g_min, g_max = chip.cell.g_min, chip.cell.g_max
        assert sum(record.n_hit) > 0
        for old_g, mask, new_g in zip(chip.conductances, record.masks, new.conductances):
            np.testing.assert_array_equal(new_g[mask], old_g[mask])
            free = new_g[~mask]
            assert free.min() >= g_min and free.max() <= g_max
        # It did reprogram the healthy cells (otherwise the test below would be vacuous).
        assert any(np.abs(a - b).max() > 1e-3 * g_max for a, b in zip(chip.conductances, new.conductances))


def test_retraining_recovers_accuracy_in_the_exact_engine(defective, retrained, default_circuit, digits):
    from neurodtco.mitigation import circuit_accuracy

    healthy = circuit_accuracy(default_circuit, digits, "nodal")
    for (chip, _), new in zip(defective, retrained):
        before = circuit_accuracy(chip, digits, "nodal")
        after = circuit_accuracy(new, digits, "nodal")
        # 2% random stuck cells wreck the unmitigated chip; retraining brings it near the healthy one.
        assert before < healthy - 0.2
        assert after > healthy - 0.05


def test_retraining_without_defects_returns_the_healthy_circuit(default_circuit, digits):
    from neurodtco.mitigation import circuit_accuracy, retrain_defect_aware

    masks = [np.zeros(g.shape, dtype=bool) for g in default_circuit.conductances]
    same = retrain_defect_aware(default_circuit, masks, digits)
    for a, b in zip(same.conductances, default_circuit.conductances):
        np.testing.assert_array_equal(a, b)
    assert circuit_accuracy(same, digits) == circuit_accuracy(default_circuit, digits)


def test_retraining_refuses_masks_of_the_wrong_shape(default_circuit, digits):
    from neurodtco.mitigation import retrain_defect_aware

    with pytest.raises(ValueError, match="one bool array per layer"):
        retrain_defect_aware(default_circuit, [np.zeros((2, 2), dtype=bool)] * 4, digits)


# ---------------------------------------------------------------- hardware-aware training


def test_hardware_aware_training_without_noise_is_plain_training(digits):
    from neurodtco.mitigation import HardwareNoise, train_hardware_aware

    config = NetworkConfig(epochs=2)
    plain = train(digits, config)
    aware = train_hardware_aware(digits, HardwareNoise(sigma=0.0), config)
    for a, b in zip(plain.weights + plain.biases, aware.weights + aware.biases):
        np.testing.assert_array_equal(a, b)


def test_injected_conductance_noise_has_the_analytic_mean_and_variance():
    """A one-layer model read with unit inputs: the noisy weight is (G+ e+ - G- e-)/k, e ~ 1 + sigma N(0,1)."""
    from neurodtco.mitigation import HardwareNoise, noisy_forward
    from neurodtco.network import MLP

    torch.manual_seed(0)
    model = MLP((3, 2))
    sigma = 0.1
    mapping = MappingConfig()
    forward = noisy_forward(HardwareNoise(sigma=sigma, mapping=mapping), torch.Generator().manual_seed(1))
    w = model.linears[0].weight.detach().double().numpy()
    b = model.linears[0].bias.detach().double().numpy()
    x = torch.cat([torch.eye(3), torch.zeros(1, 3)])  # one batch, one noise sample: unit inputs and no input

    def noisy_weights() -> np.ndarray:
        out = forward(model, x).detach().double().numpy()
        return out[:3] - out[3]  # [3 inputs, 2 outputs] = noisy W^T (the noisy bias cancels)

    draws = np.stack([noisy_weights() for _ in range(4000)])
    signed = np.concatenate([w, b[:, None]], axis=1)
    peak = np.abs(signed).max()
    cell = mapping.make_cell()
    rel_min = cell.g_min / (cell.g_max - cell.g_min)
    u_plus = rel_min + np.maximum(w, 0) / peak
    u_minus = rel_min + np.maximum(-w, 0) / peak
    var = (sigma * peak) ** 2 * (u_plus**2 + u_minus**2).T
    n = draws.shape[0]
    np.testing.assert_allclose(draws.mean(axis=0), w.T, atol=5 * np.sqrt(var.max() / n))
    np.testing.assert_allclose(draws.var(axis=0), var, rtol=0.1)


# ---------------------------------------------------------------- circuit levers


@pytest.mark.parametrize("reference", ["row", "uniform"])
def test_shared_reference_mapping_reproduces_the_software_network(default_net, digits, reference):
    from neurodtco.mitigation.circuit_levers import map_shared_reference

    circuit = map_shared_reference(default_net.weights, default_net.biases, MappingConfig(), reference=reference)
    for layer in circuit.layers:
        ref = layer.n_columns - 1
        assert layer.n_columns == layer.n_outputs + 1
        assert np.all(layer.minus_columns == ref) and np.array_equal(layer.plus_columns, np.arange(layer.n_outputs))
        assert layer.conductance.min() >= circuit.cell.g_min and layer.conductance.max() <= circuit.cell.g_max
        if reference == "uniform":
            assert np.ptp(layer.conductance[:-1, ref]) == 0  # one value on every input row
    x = to_voltages(digits.x_test, circuit.input_scale_v)
    out = simulate(circuit, x, engine="ideal").outputs_v
    expected = circuit.output_scale_v * default_net.logits(digits.x_test)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
    assert np.array_equal(out.argmax(axis=1), default_net.predict(digits.x_test))


def test_shared_reference_uses_the_window_fully(default_net):
    """The scale k is the largest that fits: some row spans exactly G_min..G_max."""
    from neurodtco.mitigation.circuit_levers import map_shared_reference

    circuit = map_shared_reference(default_net.weights, default_net.biases, MappingConfig(), reference="row")
    for layer in circuit.layers:
        spans = layer.conductance.max(axis=1) - layer.conductance.min(axis=1)
        assert math.isclose(spans.max(), circuit.cell.g_max - circuit.cell.g_min, rel_tol=1e-12)


# ---------------------------------------------------------------- helpers


def test_drop_crossing_interpolates_log_linearly():
    from neurodtco.mitigation import drop_crossing

    # Value 1.0 at 0.01 and 0.0 at 0.1: 0.5 is crossed at the geometric mean.
    assert math.isclose(drop_crossing([0.001, 0.01, 0.1], [1.0, 1.0, 0.0], 0.5), math.sqrt(0.01 * 0.1))
    assert drop_crossing([0.1, 0.2], [1.0, 1.0], 0.5) == math.inf
    assert math.isnan(drop_crossing([0.1, 0.2], [0.0, 0.0], 0.5))


# ---------------------------------------------------------------- tuning lever


def _targets(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(1e-6, 1e-4, (n, n))


def test_ordered_tuning_without_variation_disturbs_nothing_and_hits_every_target():
    """Thresholds all at the mean (1.0 V) and pulses at most 1.9 V: half-select stays at 0.95 V < 1.0 V."""
    from neurodtco.imperfections import SwitchingDevice, WriteVerifyConfig
    from neurodtco.mitigation.tuning import program_passive_ordered

    config = WriteVerifyConfig()
    result = program_passive_ordered(_targets(10), 1e-6, 1e-4, SwitchingDevice(threshold_variation=0.0), config,
                                     np.random.default_rng(0))
    assert result.disturb_events.sum() == 0
    assert not result.failed.any()
    assert np.all(np.abs(result.relative_error) <= config.tolerance)


def test_ordered_tuning_programs_the_same_devices_as_the_basic_algorithm():
    from neurodtco.imperfections import SwitchingDevice, WriteVerifyConfig, program_passive
    from neurodtco.mitigation.tuning import program_passive_ordered

    device, config = SwitchingDevice(threshold_variation=0.25), WriteVerifyConfig()
    a = program_passive(_targets(8), 1e-6, 1e-4, device, config, np.random.default_rng(3))
    b = program_passive_ordered(_targets(8), 1e-6, 1e-4, device, config, np.random.default_rng(3))
    np.testing.assert_array_equal(a.v_set, b.v_set)
    np.testing.assert_array_equal(a.v_reset, b.v_reset)


@pytest.mark.slow
def test_ordered_tuning_leaves_fewer_cells_off_target_at_25_percent_variation():
    from neurodtco.imperfections import SwitchingDevice, WriteVerifyConfig, program_passive
    from neurodtco.mitigation.tuning import program_passive_ordered

    device, config = SwitchingDevice(threshold_variation=0.25), WriteVerifyConfig()
    basic = ordered = 0
    for seed in range(3):
        basic += program_passive(_targets(16, seed), 1e-6, 1e-4, device, config,
                                 np.random.default_rng(seed)).out_of_tolerance.sum()
        result = program_passive_ordered(_targets(16, seed), 1e-6, 1e-4, device, config, np.random.default_rng(seed))
        # Every cell it does not report as failed is inside the tolerance band.
        assert np.all(np.abs(result.relative_error[~result.failed]) <= config.tolerance * (1 + 1e-9))
        ordered += result.out_of_tolerance.sum()
    assert ordered < 0.7 * basic


def test_touch_up_toward_the_current_state_costs_no_pulse():
    from neurodtco.imperfections import SwitchingDevice, WriteVerifyConfig
    from neurodtco.mitigation.tuning import program_passive_session

    device, config = SwitchingDevice(threshold_variation=0.1), WriteVerifyConfig()
    first, memory = program_passive_session(_targets(8), 1e-6, 1e-4, device, config, np.random.default_rng(0))
    again, _ = program_passive_session(memory.conductance, 1e-6, 1e-4, device, config, np.random.default_rng(1),
                                       memory=memory)
    assert again.pulses.sum() == 0
    np.testing.assert_array_equal(again.conductance, first.conductance)


def test_adaptive_1t1r_write_verify_needs_fewer_pulses_and_disturbs_nothing():
    from neurodtco.imperfections import SwitchingDevice, WriteVerifyConfig, write_verify
    from neurodtco.mitigation.tuning import program_passive_session

    device, config = SwitchingDevice(threshold_variation=0.1), WriteVerifyConfig(tolerance=0.02)
    targets = _targets(20)
    basic = write_verify(targets, 1e-6, 1e-4, device, config, np.random.default_rng(0))
    adaptive, _ = program_passive_session(targets, 1e-6, 1e-4, device, config, np.random.default_rng(0), scheme="1t1r")
    assert adaptive.disturb_events.sum() == 0
    assert np.all(np.abs(adaptive.relative_error[~adaptive.failed]) <= config.tolerance * (1 + 1e-9))
    assert adaptive.failed.sum() <= basic.failed.sum()
    assert adaptive.pulses.mean() < 0.95 * basic.pulses.mean()


def _small_circuit(tiles: bool):
    from neurodtco.mapping import MappingConfig, map_weights

    rng = np.random.default_rng(4)
    weights = [rng.normal(0, 0.5, (4, 9)), rng.normal(0, 0.5, (3, 4))]
    biases = [rng.normal(0, 0.1, 4), rng.normal(0, 0.1, 3)]
    config = MappingConfig(tile_rows=4, tile_cols=4) if tiles else MappingConfig()
    return map_weights(weights, biases, config)


@pytest.mark.parametrize("lever", ["ordered", "1t1r"])
@pytest.mark.parametrize("tiles", [False, True])
def test_circuit_tuning_programs_each_tile_as_its_own_array(lever, tiles):
    """Tiles one after the other, each tuned alone from the same random stream; an untiled layer is
    one array, as before tiles existed."""
    from neurodtco.imperfections import SwitchingDevice, WriteVerifyConfig
    from neurodtco.mitigation.tuning import (apply_ordered_programming, program_circuit_1t1r, program_passive_ordered,
                                             program_passive_session)

    circuit = _small_circuit(tiles)
    assert (circuit.layers[0].tiling is not None) == tiles
    device, config = SwitchingDevice(threshold_variation=0.25), WriteVerifyConfig()
    g_min, g_max = circuit.cell.g_min, circuit.cell.g_max
    if lever == "ordered":
        programmed, record = apply_ordered_programming(circuit, device, config, np.random.default_rng(2))

        def one(g, rng):
            return program_passive_ordered(g, g_min, g_max, device, config, rng)
    else:
        programmed, record = program_circuit_1t1r(circuit, device, config, np.random.default_rng(2))

        def one(g, rng):
            return program_passive_session(g, g_min, g_max, device, config, rng, scheme="1t1r")[0]
    rng = np.random.default_rng(2)
    for layer, got in zip(circuit.layers, programmed.conductances):
        expected = np.empty_like(layer.conductance)
        for tile in layer.tiles:
            expected[tile.rows, tile.columns] = one(layer.conductance[tile.rows, tile.columns], rng).conductance
        np.testing.assert_array_equal(got, expected)
    assert record["cells"] == sum(layer.conductance.size for layer in circuit.layers)
    if tiles and lever == "ordered":
        # programmed as whole layers instead, the half-selected lines would cross the tiles
        rng = np.random.default_rng(2)
        whole = [one(layer.conductance, rng).conductance for layer in circuit.layers]
        assert any(not np.array_equal(a, b) for a, b in zip(whole, programmed.conductances))


def test_retraining_touches_up_each_tile_with_its_own_memory(monkeypatch):
    """With retraining that keeps the measured map, the touch-up pass finds every tile where it left it."""
    from types import SimpleNamespace

    from neurodtco.imperfections import SwitchingDevice, WriteVerifyConfig
    from neurodtco.mitigation import tuning

    circuit = _small_circuit(tiles=True)
    monkeypatch.setattr(tuning, "retrain_defect_aware",
                        lambda measured, stuck, dataset, config: SimpleNamespace(conductances=measured.conductances))
    programmed, record = tuning.program_with_retraining(circuit, None, SwitchingDevice(threshold_variation=0.1),
                                                        WriteVerifyConfig(), np.random.default_rng(0))
    assert record["history"][0]["pulses"] > 0 and record["history"][1]["pulses"] == 0
    first, _ = tuning.apply_ordered_programming(circuit, SwitchingDevice(threshold_variation=0.1), WriteVerifyConfig(),
                                                np.random.default_rng(0))
    for a, b in zip(programmed.conductances, first.conductances):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- memory states and circuit


def test_tracking_feedback_cancels_temperature_in_the_activated_regime(default_net, digits):
    """Below g_activated_s every state has the same Arrhenius factor; an R_f of the same cells divides it out."""
    from neurodtco.imperfections import apply_imperfections
    from neurodtco.mitigation.circuit_levers import track_temperature

    circuit = map_network(default_net, MappingConfig(r_on_ohm=1e6, r_off_ohm=1e8, r_word_ohm=0.0, r_bit_ohm=0.0))
    x = to_voltages(digits.x_test[:40], circuit.input_scale_v)
    cold = simulate(circuit, x, engine="ideal").outputs_v
    hot, record = apply_imperfections(circuit, {"kind": "temperature", "temperature_c": 100.0})
    assert record["conductance_factor_min"] > 1.5  # the uncompensated change is large
    tracked = simulate(track_temperature(circuit, hot, 100.0), x, engine="ideal").outputs_v
    np.testing.assert_allclose(tracked, cold, rtol=1e-12, atol=1e-15)


def test_choose_memory_states_takes_the_cheapest_candidate_within_the_bound():
    import pandas as pd

    from neurodtco.mitigation.states import choose_memory_states

    rows = []
    # Validation decides; the test accuracies are set to the opposite verdict, which must not matter.
    for name, energy, vals, tests in (("ref", 10.0, (0.93, 0.92), (0.93, 0.92)),
                                      ("cheap-bad", 1.0, (0.93, 0.85), (0.93, 0.95)),
                                      ("cheap-ok", 2.0, (0.93, 0.915), (0.93, 0.80)),
                                      ("costly", 20.0, (0.94, 0.94), (0.94, 0.94))):
        for t, v, a in zip((25.0, 100.0), vals, tests):
            rows.append({"candidate": name, "temperature_c": t, "accuracy": a, "accuracy_validation": v,
                         "n_test": 200, "energy_j": energy, "r_on_ohm": 1.0, "r_off_ohm": 2.0,
                         "pair_encoding": "low", "technology": "reram", "feedback": "fixed"})
    choice = choose_memory_states(pd.DataFrame(rows), "ref", max_drop=0.01)
    best = choice[choice["meets_bound"]].iloc[0]
    assert best["candidate"] == "cheap-ok" and best["energy_saving"] == 5.0
    assert not choice.set_index("candidate").loc["cheap-bad", "meets_bound"]
    assert best["worst_accuracy"] == 0.80 and best["worst_accuracy_ci"][0] < 0.80 < best["worst_accuracy_ci"][1]
    from neurodtco.stats import wilson_interval

    assert best["worst_accuracy_ci"] == pytest.approx(list(wilson_interval(160, 200)))  # over the 200 images


# ---------------------------------------------------------------- tolerance


def test_single_fault_scan_agrees_with_applying_that_one_defect(default_circuit, digits):
    from neurodtco.defects import Defect, apply_defects
    from neurodtco.mitigation import circuit_accuracy
    from neurodtco.mitigation.tolerance import single_fault_tolerance

    single = single_fault_tolerance(default_circuit, digits, engine="ideal")
    healthy = circuit_accuracy(default_circuit, digits)
    for seed in range(3):
        chip, record = apply_defects(default_circuit, [Defect(pattern="random", layers=(0,), kind="on",
                                                               params={"count": 1})], seed=seed)
        r, c = np.argwhere(record.masks[0])[0]
        assert math.isclose(single.drop_on[0][r, c], healthy - circuit_accuracy(chip, digits), abs_tol=1e-12)
    assert 0 < single.tolerance_density < 0.01


@pytest.mark.slow
def test_defect_aware_retraining_raises_the_defect_tolerance(default_circuit, digits):
    from neurodtco.mitigation import RetrainConfig
    from neurodtco.mitigation.tolerance import defect_tolerance

    grid = [0.003, 0.03]
    plain = defect_tolerance(default_circuit, digits, grid, instances=3)
    fixed = defect_tolerance(default_circuit, digits, grid, instances=3,
                             retrain=RetrainConfig(epochs=10, batch_size=256, learning_rate=2e-2))
    assert math.isnan(plain.tolerance_density) or plain.tolerance_density < 0.003  # already lost at 0.3%
    assert fixed.mean_accuracy()[0.03] > plain.mean_accuracy()[0.03] + 0.2
    ci = fixed.mean_accuracy_ci()
    assert (ci["low"] <= ci["mean"]).all() and (ci["mean"] <= ci["high"]).all() and (ci["instances"] == 3).all()
    assert ci.loc[0.03, "low"] > plain.mean_accuracy_ci().loc[0.03, "high"]  # the gain is beyond both intervals


# ---------------------------------------------------------------- comparison and CLI


def test_mitigation_table_round_trips_and_renders(tmp_path):
    import pandas as pd

    from neurodtco.mitigation.compare import mitigation_table, to_markdown

    table = pd.DataFrame([{"scenario": "temperature", "lever": "none", "accuracy": 0.9, "energy_j": 3e-11,
                           "gain_points": 0.0, "detail": "x"},
                          {"scenario": "temperature", "lever": "combined", "accuracy": 0.93, "energy_j": 3e-13,
                           "gain_points": 3.0, "pulses_per_cell": 12.0, "detail": "y"}])
    path = tmp_path / "mitigation.csv"
    table.to_csv(path, index=False)
    again = mitigation_table(path)
    assert list(again["lever"]) == ["none", "combined"]
    text = to_markdown(again)
    assert "| temperature | combined | 93.0% |  | +3.0 | 0.3 | 12.0 | y |" in text
    from neurodtco.mitigation.compare import to_html

    assert "<td>combined</td><td>93.0%</td><td></td><td>+3.0</td><td>0.3</td><td>12.0</td>" in to_html(again)
    # With the intervals run_comparison writes: the Wilson interval and the paired gain's interval beside them.
    full = again.assign(accuracy_ci_low=[0.85, 0.88], accuracy_ci_high=[0.94, 0.96], accuracy_validation=[0.9, 0.95],
                        gain_ci_low=[0.0, 1.0], gain_ci_high=[0.0, 5.5])
    assert "| temperature | combined | 93.0% [88.0, 96.0] | 95.0% | +3.0 [+1.0, +5.5] | 0.3 | 12.0 | y |" in to_markdown(full)
    with pytest.raises(FileNotFoundError, match="mitigation_comparison"):
        mitigation_table(tmp_path / "missing.csv")


def test_the_combined_lever_chooses_on_validation_and_reports_test():
    import numpy as np

    from neurodtco.mitigation.compare import Accuracy, _accuracy_columns, _best

    good_test = {"accuracy": Accuracy(np.array([True] * 9 + [False]), validation=0.70), "energy_j": 1e-12,
                 "detail": "a; test winner"}
    good_val = {"accuracy": Accuracy(np.array([True] * 8 + [False] * 2), validation=0.90), "energy_j": 1e-12,
                "detail": "b; validation winner"}
    chosen = _best([good_test, good_val])
    assert chosen["accuracy"] == 0.8 and chosen["detail"].startswith("b; validation winner (chosen on validation")
    baseline = np.array([True] * 5 + [False] * 5)
    cols = _accuracy_columns(chosen["accuracy"], baseline)
    assert cols["n_correct"] == 8 and cols["n_test"] == 10 and cols["accuracy_validation"] == 0.9
    assert cols["accuracy_ci_low"] < 0.8 < cols["accuracy_ci_high"]
    assert cols["gain_points"] == pytest.approx(30.0) and cols["gain_ci_low"] <= 30.0 <= cols["gain_ci_high"]
    assert cols["gain_mcnemar_p"] == pytest.approx(0.25)  # 3 discordant images, all one way: 2 * 0.5**3


@pytest.mark.slow
def test_cli_mitigate_retrain_reports_recovery(tmp_path):
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "neurodtco", "mitigate", "retrain", "--defect",
                          "random:p=0.02,kind=mix", "--epochs", "10", "--engine", "ideal", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout.strip().splitlines()[-1])
    assert payload["stuck_cells"] > 0
    assert payload["accuracy_after"] > payload["accuracy_before"] + 0.2
    # Each accuracy carries its Wilson interval over the test images, and the recovery is paired.
    for name in ("healthy", "before", "after"):
        low, high = payload[f"accuracy_{name}_ci"]
        assert low < payload[f"accuracy_{name}"] < high
    assert payload["difference"] == pytest.approx(payload["accuracy_after"] - payload["accuracy_before"])
    assert payload["difference_ci"][0] > 0 and payload["mcnemar_p"] < 1e-3
    assert payload["n_test"] == 180


def test_cli_mitigate_refuses_an_unknown_lever():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "neurodtco", "mitigate", "magic"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 2 and "retrain" in out.stderr


def test_cli_mitigate_circuit_prints_strict_json():
    """An ideal op-amp (infinite gain) must not leak 'Infinity' into the JSON line."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "neurodtco", "mitigate", "circuit", "--arrangements",
                          "differential,shared-row", "--temperatures", "25", "--engine", "ideal", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr

    def refuse(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    payload = json.loads(out.stdout.strip().splitlines()[-1], parse_constant=refuse)
    rows = {r["arrangement"]: r for r in payload["rows"]}
    assert rows["differential"]["open_loop_gain"] is None
    assert rows["differential"]["columns"] == 68 and rows["shared-row"]["columns"] == 38
    assert rows["differential"]["accuracy"] == rows["shared-row"]["accuracy"]  # both exact in the ideal engine


def test_tolerance_intervals_are_wilson_for_one_instance_and_bootstrap_over_several():
    import pandas as pd

    from neurodtco.mitigation.tolerance import ToleranceResult
    from neurodtco.stats import bootstrap_ci, wilson_interval

    table = pd.DataFrame({"density": [0.01, 0.1, 0.1, 0.1], "instance": [0, 0, 1, 2],
                          "accuracy": [0.9, 0.5, 0.6, 0.7], "n_test": 200})
    ci = ToleranceResult(table, 0.93, 0.01, 0.01, False).mean_accuracy_ci()
    assert (ci.loc[0.01, "low"], ci.loc[0.01, "high"]) == pytest.approx(wilson_interval(180, 200))
    assert (ci.loc[0.1, "low"], ci.loc[0.1, "high"]) == pytest.approx(bootstrap_ci([0.5, 0.6, 0.7]))
    assert ci.loc[0.1, "mean"] == pytest.approx(0.6) and ci.loc[0.1, "instances"] == 3


def test_memory_state_candidates_are_read_on_held_out_validation_images(default_net, digits):
    import dataclasses

    from neurodtco.data import split_validation
    from neurodtco.mitigation.common import circuit_accuracy
    from neurodtco.mitigation.states import StateCandidate, evaluate_candidates

    table = evaluate_candidates(default_net, digits, [StateCandidate(r_on_ohm=10e3, r_off_ohm=1e6)],
                                temperatures_c=(25.0,), engine="ideal")
    row = table.iloc[0]
    held = split_validation(digits, 180, seed=0)
    x_val, y_val = held.validation()
    circuit = map_network(default_net)
    as_test = dataclasses.replace(held, x_test=x_val, y_test=y_val)
    # The ideal engine without noise: the validation column is exactly the circuit's accuracy on the held-out part.
    assert row["accuracy_validation"] == pytest.approx(circuit_accuracy(circuit, as_test))
    assert row["accuracy"] == pytest.approx(circuit_accuracy(circuit, digits)) and row["n_test"] == 180


def test_mitigate_tune_pairs_each_programming_with_ideal_programming(default_net, digits):
    """The JSON of ``mitigate tune``: Wilson intervals, and paired differences that are the accuracies' difference."""
    from neurodtco.mitigation.commands import mitigate_tune

    out = mitigate_tune(default_net, digits, MappingConfig(), threshold_variation=0.25, scheme="v/2", retrain=False,
                        engine="ideal", seed=0)
    ideal = out["accuracy_ideal_programming"]
    assert out["n_test"] == len(digits.y_test)
    for name in ("basic", "ordered"):
        row = out[name]
        assert row["accuracy_ci"][0] <= row["accuracy"] <= row["accuracy_ci"][1]
        assert row["difference"] == pytest.approx(row["accuracy"] - ideal)
        assert row["difference_ci"][0] <= row["difference"] <= row["difference_ci"][1]
        assert 0.0 <= row["mcnemar_p"] <= 1.0
    # 25 % threshold variation costs the basic scheme clearly (a paired test, not two intervals).
    assert out["basic"]["difference_ci"][1] < 0 and out["basic"]["mcnemar_p"] < 1e-3
