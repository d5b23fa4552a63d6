"""The `neurodtco imperfect` command: JSON contract, option mapping and clear errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from neurodtco.cli import app
from neurodtco.imperfections.commands import specs_from_options

runner = CliRunner()


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_imperfect_reports_accuracy_and_energy_next_to_the_clean_circuit(default_net):
    result = runner.invoke(app, ["imperfect", "--engine", "ideal", "--temperature-c", "25", "--n-images", "40",
                                 "--json"])
    assert result.exit_code == 0, result.output
    out = last_json(result.stdout)
    # At the reference temperature the circuit is unchanged: same accuracy and energy.
    assert out["accuracy"] == out["accuracy_without_imperfections"]
    assert out["energy_per_inference_j"] == out["energy_without_imperfections_j"] > 0
    assert out["imperfections"] == [{"kind": "temperature", "temperature_c": 25.0, "technology": "reram"}]
    assert out["n_test"] == 40 and out["engine"] == "ideal"


def test_imperfect_programming_options_and_repeats(default_net, tmp_path):
    spec = tmp_path / "imp.yaml"
    spec.write_text("- {kind: read_noise, relative_sigma: 0.01}\n")
    result = runner.invoke(app, ["imperfect", "--engine", "ideal", "--tuning-tolerance", "0.05", "--spec", str(spec),
                                 "--repeats", "2", "--n-images", "30", "--json"])
    assert result.exit_code == 0, result.output
    out = last_json(result.stdout)
    assert [s["kind"] for s in out["imperfections"]] == ["read_noise", "write_verify"]
    assert len(out["accuracies"]) == 2 and out["records"][0][1]["kind"] == "write_verify"
    assert out["records"][0][1]["failed"] == 0


def test_imperfect_refuses_a_threshold_variation_without_a_programming_model():
    result = runner.invoke(app, ["imperfect", "--threshold-variation", "0.25", "--json"])
    assert result.exit_code == 2
    assert "--passive-scheme" in result.output


def test_options_map_to_specs_in_physical_order():
    specs = specs_from_options(temperature_c=85.0, read_noise=0.01, passive_scheme="v/3", threshold_variation=0.25,
                               drift_time_s=3600.0)
    assert [s["kind"] for s in specs] == ["passive_programming", "drift", "temperature", "read_noise"]
    assert specs[0]["scheme"] == "v/3" and specs[0]["tolerance"] == 0.02
