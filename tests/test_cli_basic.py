"""The CLI's train and simulate commands, their JSON contract and their errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from neurodtco.cli import app

runner = CliRunner()


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_simulate_json_reports_accuracy_of_the_ideal_circuit(default_net):
    result = runner.invoke(app, ["simulate", "--json"])
    assert result.exit_code == 0, result.output
    payload = last_json(result.stdout)
    assert payload["engine"] == "ideal" and payload["n_test"] == 180
    assert payload["accuracy"] == payload["software_accuracy"] >= 0.92
    assert payload["timings"]["simulate_s"] >= 0


def test_train_then_simulate_the_saved_model(tmp_path, digits):
    out = tmp_path / "m.pt"
    result = runner.invoke(app, ["train", "--out", str(out), "--hidden", "4", "--epochs", "3", "--json"])
    assert result.exit_code == 0, result.output
    trained = last_json(result.stdout)
    assert trained["widths"] == [64, 4, 10] and out.is_file()
    result = runner.invoke(app, ["simulate", "--model", str(out), "--json", "--n-images", "30"])
    payload = last_json(result.stdout)
    assert payload["n_test"] == 30 and payload["accuracy"] == payload["software_accuracy"]


def test_bad_values_stop_with_a_message(tmp_path):
    cases = [
        (["simulate", "--r-on", "-1"], "r_on_ohm"),
        (["simulate", "--r-on", "2e6"], "must be below r_off_ohm"),
        (["simulate", "--v-read", "0"], "v_read_v"),
        (["simulate", "--engine", "hspice"], "unknown engine"),
        (["train", "--hidden", "8,0,8", "--out", str(tmp_path / "x.pt")], "widths"),
        (["simulate", "--model", str(tmp_path / "none.pt")], "does not exist"),
    ]
    for args, fragment in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert fragment in result.stderr.replace("\n", " "), (args, result.stderr)


def test_model_of_another_architecture_is_refused(tmp_path):
    from neurodtco.network import MLP, NetworkConfig, TrainedNetwork

    bad = tmp_path / "wrong.pt"
    config = NetworkConfig(widths=(10, 4, 10))
    TrainedNetwork(config, MLP(config.widths)).save(bad)
    result = runner.invoke(app, ["simulate", "--model", str(bad)])
    assert result.exit_code == 2
    assert "expects 10 inputs" in result.stderr.replace("\n", " ")
