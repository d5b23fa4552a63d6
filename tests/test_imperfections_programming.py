"""Write-verify and passive V/2, V/3 programming: tolerance, failures, disturbance by hand and in trend."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neurodtco.imperfections import (SwitchingDevice, WriteVerifyConfig, apply_imperfections, program_passive,
                                     write_verify)
from neurodtco.mapping import map_weights

G_MIN, G_MAX = 1e-6, 1e-4


def targets(shape, seed=0, share_at_min=0.5):
    """Targets like a differential mapping: about half the cells at G_min, the rest log-uniform."""
    rng = np.random.default_rng(seed)
    t = np.exp(rng.uniform(np.log(G_MIN), np.log(G_MAX), shape))
    t[rng.random(shape) < share_at_min] = G_MIN
    return t


def test_device_does_not_switch_below_its_thresholds_and_scalar_equals_vector():
    device = SwitchingDevice(cycle_variation=0.0)
    w = np.array([0.0, 0.3, 0.7, 1.0])
    for v in (0.99, -1.19, 0.0, 0.5):
        np.testing.assert_array_equal(device.response(w, v, 1.0, 1.2, 1.0), w)
    rng = np.random.default_rng(0)
    w, v = rng.random(500), rng.uniform(-2.5, 2.5, 500)
    vs, vr, xi = rng.uniform(0.5, 1.5, 500), rng.uniform(0.5, 1.5, 500), rng.lognormal(0, 0.3, 500)
    vector = device.response(w, v, vs, vr, xi)
    scalar = [device.response_scalar(*args) for args in zip(w, v, vs, vr, xi)]
    np.testing.assert_allclose(vector, scalar, rtol=1e-14)
    assert np.all((vector >= 0) & (vector <= 1))
    # Soft bounds: 50% overdrive at set_rate 8 and alpha 3 moves the full remaining window.
    assert device.response_scalar(0.2, 1.5, 1.0, 1.2, 1.0) == pytest.approx(1.0)


def test_thresholds_have_the_requested_normalized_variation():
    v_set, v_reset = SwitchingDevice(threshold_variation=0.2).draw_thresholds((400, 400), np.random.default_rng(1))
    assert v_set.mean() == pytest.approx(1.0, rel=5e-3) and v_reset.mean() == pytest.approx(1.2, rel=5e-3)
    assert v_set.std() / v_set.mean() == pytest.approx(0.2, rel=0.02)


def test_write_verify_error_stays_inside_the_tolerance_except_for_reported_failures():
    t = targets((40, 50), seed=1)
    device = SwitchingDevice(threshold_variation=0.3)
    for tol, max_pulses in ((0.005, 30), (0.02, 100), (0.1, 100)):
        result = write_verify(t, G_MIN, G_MAX, device, WriteVerifyConfig(tolerance=tol, max_pulses=max_pulses),
                              np.random.default_rng(2))
        error = np.abs(result.conductance / t - 1.0)
        assert np.all(error[~result.failed] <= tol)
        np.testing.assert_array_equal(result.out_of_tolerance, result.failed)
        assert result.pulses.max() <= max_pulses
    assert result.failed.any()  # at 30% variation some thresholds lie beyond the largest pulse
    uniform = write_verify(t, G_MIN, G_MAX, SwitchingDevice(), WriteVerifyConfig(tolerance=0.1),
                           np.random.default_rng(2))
    assert not uniform.failed.any()


def test_tighter_tolerance_costs_more_pulses():
    t = targets((30, 30), seed=2)
    device = SwitchingDevice(threshold_variation=0.1)
    means = [write_verify(t, G_MIN, G_MAX, device, WriteVerifyConfig(tolerance=tol, max_pulses=300),
                          np.random.default_rng(3)).pulses.mean() for tol in (0.1, 0.03, 0.01, 0.003)]
    assert all(a < b for a, b in zip(means, means[1:]))


def test_failed_cells_are_exactly_those_that_ran_out_of_pulses():
    t = targets((20, 20), seed=3)
    result = write_verify(t, G_MIN, G_MAX, SwitchingDevice(), WriteVerifyConfig(max_pulses=0), np.random.default_rng(0))
    np.testing.assert_array_equal(result.failed, np.abs(t / G_MIN - 1) > 0.02)
    assert result.pulses.sum() == 0
    # Cells whose threshold exceeds the largest pulse can never move.
    stiff = write_verify(t, G_MIN, G_MAX, SwitchingDevice(v_set_v=2.5), WriteVerifyConfig(), np.random.default_rng(0))
    np.testing.assert_array_equal(stiff.failed, t > G_MIN * 1.02)


def test_verify_noise_lets_true_errors_exceed_the_tolerance_only_by_the_read_error():
    t = targets((30, 30), seed=4)
    result = write_verify(t, G_MIN, G_MAX, SwitchingDevice(), WriteVerifyConfig(tolerance=0.02, verify_noise=0.005),
                          np.random.default_rng(5))
    error = np.abs(result.conductance / t - 1.0)[~result.failed]
    assert np.all(error <= 0.02 + 5 * 0.005 * 1.03)
    assert np.mean(error > 0.02) > 0  # the read noise does let some cells pass outside the band


def test_passive_v2_without_variation_and_thresholds_above_half_select_disturbs_nothing():
    t = targets((16, 12), seed=5)
    device = SwitchingDevice(threshold_variation=0.0, v_set_v=1.0, v_reset_v=1.2)
    config = WriteVerifyConfig(v_max_v=1.9)  # V/2 <= 0.95 V < every threshold
    for scheme in ("v/2", "v/3"):
        result = program_passive(t, G_MIN, G_MAX, device, config, np.random.default_rng(6), scheme=scheme)
        assert result.disturb_events.sum() == 0 and not result.disturbed_after_tuning.any()
        assert not result.failed.any()
        assert np.all(np.abs(result.conductance / t - 1) <= 0.02)


def test_half_selected_cells_with_low_thresholds_are_disturbed_by_hand():
    # 2x2 array, tuned row by row; only cell (1,1), the last, must move. Cell (1,0) shares its row,
    # (0,1) its column, (0,0) neither. Cell (0,1) has a 0.3 V set threshold, the others hold.
    t = np.array([[G_MIN, G_MIN], [G_MIN, 3e-5]])
    v_set = np.array([[2.0, 0.3], [2.0, 1.0]])
    v_reset = np.full((2, 2), 1.2)
    device = SwitchingDevice(cycle_variation=0.0)
    config = WriteVerifyConfig(initial_state="min")
    v2 = program_passive(t, G_MIN, G_MAX, device, config, np.random.default_rng(0), scheme="v/2",
                         thresholds=(v_set, v_reset))
    assert v2.pulses[1, 1] > 0 and v2.pulses[0].sum() == v2.pulses[1, 0] == 0
    assert v2.disturb_events[0, 1] > 0  # half-selected with a 0.3 V threshold: set-disturbed
    assert v2.disturb_events[1, 0] == 0  # half-selected but its 2 V threshold holds
    assert v2.disturb_events[0, 0] == 0  # off the selected lines: 0 V in the V/2 scheme
    assert v2.conductance[0, 1] > G_MIN * 1.02 and v2.disturbed_after_tuning[0, 1]
    # In V/3 cell (0,0) sees -V/3 (and +V/3 during reset pulses: it holds) and (0,1) only V/3.
    v3 = program_passive(t, G_MIN, G_MAX, device, config, np.random.default_rng(0), scheme="v/3",
                         thresholds=(v_set, v_reset))
    assert v3.disturb_events[0, 0] == 0 and 0 < v3.disturb_events[0, 1]
    assert v3.conductance[0, 1] < v2.conductance[0, 1]


def test_disturbance_grows_with_threshold_variation_and_v3_disturbs_less_than_v2():
    t = targets((24, 24), seed=6)
    config = WriteVerifyConfig()
    disturbed = []
    for sigma in (0.0, 0.1, 0.2, 0.3):
        counts = [program_passive(t, G_MIN, G_MAX, SwitchingDevice(threshold_variation=sigma), config,
                                  np.random.default_rng(seed)).summary()["disturbed"] for seed in range(3)]
        disturbed.append(np.mean(counts))
    assert disturbed[0] == 0
    assert all(a < b for a, b in zip(disturbed, disturbed[1:]))
    device = SwitchingDevice(threshold_variation=0.2)
    v2 = program_passive(t, G_MIN, G_MAX, device, config, np.random.default_rng(0), scheme="v/2")
    v3 = program_passive(t, G_MIN, G_MAX, device, config, np.random.default_rng(0), scheme="v/3")
    assert v3.summary()["disturbed"] < v2.summary()["disturbed"]


def test_cells_out_of_tolerance_were_either_failed_or_disturbed_after_tuning():
    t = targets((20, 20), seed=7)
    result = program_passive(t, G_MIN, G_MAX, SwitchingDevice(threshold_variation=0.25), WriteVerifyConfig(),
                             np.random.default_rng(8))
    assert result.out_of_tolerance.any()
    assert not np.any(result.out_of_tolerance & ~(result.failed | result.disturbed_after_tuning))


def test_more_passes_retune_disturbed_cells():
    t = targets((20, 20), seed=8)
    device = SwitchingDevice(threshold_variation=0.15)
    one = program_passive(t, G_MIN, G_MAX, device, WriteVerifyConfig(), np.random.default_rng(9), passes=1)
    three = program_passive(t, G_MIN, G_MAX, device, WriteVerifyConfig(), np.random.default_rng(9), passes=3)
    assert three.out_of_tolerance.sum() < one.out_of_tolerance.sum()


def test_specs_program_the_circuit_and_records_are_json_friendly():
    rng = np.random.default_rng(0)
    circuit = map_weights([rng.normal(size=(3, 5)), rng.normal(size=(2, 3))], [rng.normal(size=3), rng.normal(size=2)])
    wv, record = apply_imperfections(circuit, {"kind": "write_verify", "tolerance": 0.05}, seed=1)
    assert record["cells"] == sum(g.size for g in circuit.conductances) and record["failed"] == 0
    for g, g0 in zip(wv.conductances, circuit.conductances):
        assert np.all(np.abs(g / g0 - 1) <= 0.05)
    json.dumps(record)
    pp, record = apply_imperfections(circuit, {"kind": "passive_programming", "threshold_variation": 0.25,
                                               "scheme": "V/3", "record_masks": True}, seed=1)
    assert record["scheme"] == "v/3" and record["layers"][0]["disturbed_mask"].shape == (6, 6)
    again, _ = apply_imperfections(circuit, {"kind": "passive_programming", "threshold_variation": 0.25,
                                             "scheme": "V/3"}, seed=1)
    np.testing.assert_array_equal(again.layers[0].conductance, pp.layers[0].conductance)


@pytest.mark.parametrize("spec, message", [
    ({"kind": "write_verify", "tolerance": 0}, "tolerance"),
    ({"kind": "write_verify", "max_pulses": 2.5}, "max_pulses"),
    ({"kind": "passive_programming", "scheme": "v/4"}, "scheme"),
    ({"kind": "passive_programming", "threshold_variation": 1.5}, "threshold_variation"),
    ({"kind": "passive_programming", "order": "spiral"}, "order"),
    ({"kind": "write_verify", "pulse_width_s": 1e-6}, "unknown parameter"),
    ({"kind": "tuning"}, "unknown imperfection kind"),
])
def test_bad_programming_specs_are_refused(spec, message):
    rng = np.random.default_rng(0)
    circuit = map_weights([rng.normal(size=(2, 3))], [rng.normal(size=2)])
    with pytest.raises(ValueError, match=message):
        apply_imperfections(circuit, spec)


def test_parsing_checks_every_item_without_a_circuit():
    from neurodtco.imperfections import PassiveProgramming, Temperature, parse_imperfections

    good = [{"kind": "temperature", "temperature_c": 85}, {"kind": "passive_programming", "scheme": "v/3"}]
    items = parse_imperfections(good)
    assert [type(i) for i in items] == [Temperature, PassiveProgramming] and items[1].scheme == "v/3"
    with pytest.raises(ValueError, match="imperfection 1: .*scheme"):
        parse_imperfections([good[0], {"kind": "passive_programming", "scheme": "v/5"}])
    with pytest.raises(ValueError, match="imperfection 0: .*temperature_c"):
        parse_imperfections({"kind": "temperature", "temperature_c": "hot"})


def test_public_programming_primitives_add_up_the_layer_records():
    from neurodtco.imperfections import (cell_thresholds, check_targets, initial_state, layer_record,
                                         programming_totals)

    rng = np.random.default_rng(4)
    device, config = SwitchingDevice(threshold_variation=0.1), WriteVerifyConfig(tolerance=0.05, max_pulses=30)
    results = [write_verify(targets(shape, seed), G_MIN, G_MAX, device, config, rng)
               for seed, shape in enumerate([(5, 6), (3, 4)])]
    layers = [layer_record(i, r) for i, r in enumerate(results)]
    total = programming_totals(layers)
    errors = np.concatenate([r.relative_error.ravel() for r in results])
    assert total["cells"] == errors.size == 42
    assert total["pulses_total"] == sum(int(r.pulses.sum()) for r in results)
    assert total["failed"] == sum(int(r.failed.sum()) for r in results)
    assert total["relative_error_rms"] == pytest.approx(np.sqrt(np.mean(errors**2)), rel=1e-12)
    assert "failed_mask" not in layers[0] and layer_record(0, results[0], masks=True)["failed_mask"] is results[0].failed
    np.testing.assert_array_equal(initial_state((2, 2), WriteVerifyConfig(initial_state="max")), np.ones((2, 2)))
    v_set, _ = cell_thresholds(device, (3, 4), np.random.default_rng(1))
    np.testing.assert_array_equal(v_set, device.draw_thresholds((3, 4), np.random.default_rng(1))[0])
    with pytest.raises(ValueError, match=r"set thresholds must be positive finite volts of shape \(3, 4\)"):
        cell_thresholds(device, (3, 4), rng, given=(np.ones((2, 2)), np.ones((3, 4))))
    with pytest.raises(ValueError, match=r"targets must lie in the programmable window \[1e-06, 0.0001\] S"):
        check_targets(np.array([2e-4]), G_MIN, G_MAX)
