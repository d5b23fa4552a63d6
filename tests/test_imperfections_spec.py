"""Typed imperfections: parsing the study file's dicts once, the round trip, the error messages."""

from __future__ import annotations

import numpy as np
import pytest

from neurodtco.imperfections import (KINDS, Drift, EFlashThermalModel, Imperfections, PassiveProgramming,
                                     PowerLawDrift, ReadNoise, ReadNoiseModel, ReRAMThermalModel, SwitchingDevice,
                                     Temperature, WriteVerify, WriteVerifyConfig, apply_imperfections,
                                     imperfection_kinds, parse_imperfection, parse_imperfections)
from neurodtco.mapping import map_weights

SPECS = [
    {"kind": "temperature", "temperature_c": 85.0},
    {"kind": "temperature", "temperature_c": 60.0, "technology": "eflash", "g_threshold_s": 2e-6,
     "feedback_tcr_per_k": 1e-3},
    {"kind": "read_noise", "relative_sigma": 0.02, "group_size": 10},
    {"kind": "write_verify", "tolerance": 0.05, "threshold_variation": 0.1, "record_masks": True},
    {"kind": "passive_programming", "scheme": "v/3", "order": "column-major", "passes": 2, "max_pulses": 20},
    {"kind": "drift", "time_s": 3600.0, "nu": 0.02, "nu_sigma": 0.005},
]


def small_circuit():
    rng = np.random.default_rng(3)
    return map_weights([rng.normal(size=(3, 4)), rng.normal(size=(2, 3))], [rng.normal(size=3), rng.normal(size=2)])


@pytest.mark.parametrize("spec", SPECS, ids=[s["kind"] for s in SPECS])
def test_every_kind_round_trips_through_its_plain_dict(spec):
    item = parse_imperfection(spec)
    assert type(item) is KINDS[spec["kind"]]
    plain = item.to_dict()
    assert parse_imperfection(plain) == item
    # The plain form states every parameter: what the spec gave, and the defaults it left out.
    assert {k: plain[k] for k in spec} == spec
    assert parse_imperfection(dict(plain)).to_dict() == plain


def test_items_hold_the_model_objects_of_their_modules():
    hot, eflash, noise, wv, passive, drift = (parse_imperfection(s) for s in SPECS)
    assert hot == Temperature(85.0, ReRAMThermalModel())
    assert isinstance(eflash.cell, EFlashThermalModel) and eflash.cell.g_threshold_s == 2e-6
    assert eflash.technology == "eflash" and eflash.feedback_tcr_per_k == 1e-3
    assert noise == ReadNoise(ReadNoiseModel(relative_sigma=0.02, group_size=10))
    assert wv == WriteVerify(SwitchingDevice(threshold_variation=0.1), WriteVerifyConfig(tolerance=0.05), True)
    assert passive == PassiveProgramming(config=WriteVerifyConfig(max_pulses=20), scheme="v/3", order="column-major",
                                         passes=2)
    assert drift == Drift(PowerLawDrift(time_s=3600.0, nu=0.02, nu_sigma=0.005))
    assert imperfection_kinds() == ["temperature", "read_noise", "write_verify", "passive_programming", "drift"]


def test_typed_items_and_plain_dicts_apply_identically():
    circuit = small_circuit()
    plain = [SPECS[4], SPECS[5], SPECS[0], SPECS[2]]
    a, rec_a = apply_imperfections(circuit, plain, seed=9)
    b, rec_b = apply_imperfections(circuit, parse_imperfections(plain), seed=9)
    c, _ = apply_imperfections(circuit, [parse_imperfection(s) for s in plain], seed=9)
    for x, y in ((a, b), (a, c)):
        for g, h in zip(x.conductances, y.conductances):
            np.testing.assert_array_equal(g, h)
    assert [r["kind"] for r in rec_a["items"]] == [r["kind"] for r in rec_b["items"]] == [s["kind"] for s in plain]
    one, record = apply_imperfections(circuit, parse_imperfection(SPECS[5]), seed=9)
    same, _ = apply_imperfections(circuit, SPECS[5], seed=9)
    np.testing.assert_array_equal(one.conductances[0], same.conductances[0])
    assert record["kind"] == "drift"


def test_the_parsed_list_hands_over_its_read_noise_model():
    items = parse_imperfections(SPECS[:3])
    assert isinstance(items, Imperfections) and len(items) == 3
    assert items.read_noise == ReadNoiseModel(relative_sigma=0.02, group_size=10)
    assert parse_imperfections(SPECS[:2]).read_noise is None
    assert parse_imperfections(items) is items
    assert items.to_dicts() == [i.to_dict() for i in items]


@pytest.mark.parametrize("spec, message", [
    ({"kind": "no_such"}, r"unknown imperfection kind 'no_such'; choose one of \['temperature', 'read_noise'"),
    ({"temperature_c": 85}, "needs a 'kind' key"),
    ({"kind": "temperature"}, "temperature: temperature_c is required"),
    ({"kind": "temperature", "temperature_c": 85, "colour": 1}, r"temperature: unknown parameter\(s\) \['colour'\]; "
                                                                 r"accepted: \['activation_energy_ev'"),
    ({"kind": "temperature", "temperature_c": 85, "technology": "pcm"}, "technology='pcm' is not accepted"),
    ({"kind": "temperature", "temperature_c": 85, "feedback_tcr_per_k": 1.0}, "feedback_tcr_per_k"),
    ({"kind": "drift"}, "drift: time_s is required"),
    ({"kind": "read_noise", "sigma": 0.1}, r"read_noise: unknown parameter\(s\) \['sigma'\]; accepted: \['group_size'"),
    ({"kind": "write_verify", "scheme": "v/2"}, r"write_verify: unknown parameter\(s\) \['scheme'\]"),
    ({"kind": "passive_programming", "passes": 0}, "passes=0 is not accepted"),
])
def test_bad_specs_are_refused_with_the_accepted_values(spec, message):
    with pytest.raises(ValueError, match=message) as single:
        parse_imperfection(spec)
    with pytest.raises(ValueError) as listed:  # in a list, the message names the item
        parse_imperfections([SPECS[0], spec])
    assert str(listed.value) == f"imperfection 1: {single.value}"


def test_a_spec_that_is_neither_a_dict_nor_a_list_is_refused():
    with pytest.raises(ValueError, match="must be a dict with a 'kind' key or a list of them; got str"):
        apply_imperfections(small_circuit(), "temperature")
    with pytest.raises(ValueError, match="seed=-1 is not accepted"):
        apply_imperfections(small_circuit(), SPECS[0], seed=-1)
