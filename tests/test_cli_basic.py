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


def test_a_model_is_judged_only_on_the_test_part_it_was_trained_beside(tmp_path, digits):
    out = tmp_path / "m.pt"
    assert runner.invoke(app, ["train", "--out", str(out), "--hidden", "4", "--epochs", "2", "--json"]).exit_code == 0
    # The same split passes; another seed's test images were partly training images of this model.
    assert runner.invoke(app, ["simulate", "--model", str(out), "--json", "--n-images", "10"]).exit_code == 0
    result = runner.invoke(app, ["simulate", "--model", str(out), "--seed", "1", "--json"])
    assert result.exit_code == 2, result.output
    assert "another test part" in result.stderr.replace("\n", " ")
    result = runner.invoke(app, ["simulate", "--model", str(out), "--fold", "0", "--json"])
    assert result.exit_code == 2 and "train a model on this one" in result.stderr.replace("\n", " ")


def test_bad_values_stop_with_a_message(tmp_path):
    cases = [
        (["simulate", "--r-on", "-1"], "--r-on=-1.0 is not accepted"),
        (["simulate", "--r-on", "2e6"], "must be below --r-off"),
        (["simulate", "--v-read", "0"], "--v-read=0.0"),
        (["simulate", "--wire-ohm", "-1"], "--wire-ohm=-1.0 is not accepted"),
        (["simulate", "--gain", "0.5"], "--gain=0.5 is not accepted"),
        (["simulate", "--n-images", "0"], "--n-images 0 is not accepted: expected 1..180"),
        (["simulate", "--engine", "hspice"], "unknown engine"),
        (["train", "--hidden", "8,0,8", "--out", str(tmp_path / "x.pt")], "widths"),
        (["simulate", "--model", str(tmp_path / "none.pt")], "does not exist"),
        (["run", "quick", "--out", str(tmp_path / "r"), "--workers", "-1"], "expected 0 (run the tasks in this process)"),
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


def test_a_file_that_is_not_a_model_is_refused_in_one_line(tmp_path):
    text = tmp_path / "notes.md"
    text.write_text("# not a model\n")
    result = runner.invoke(app, ["simulate", "--model", str(text)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {str(text)!r} is not a neurodtco model file: it cannot be read as one "
        "(write one with `neurodtco train --out FILE`)"]
    assert "weights_only" not in result.stderr


def test_a_run_without_json_writes_nothing_to_stderr(default_net):
    result = runner.invoke(app, ["simulate", "--n-images", "5"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.startswith("ideal circuit (4 arrays, 1,508 cells): accuracy")
