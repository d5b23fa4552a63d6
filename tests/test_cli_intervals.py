"""Every accuracy the commands print carries its 95 % Wilson interval and the images behind it; --fold picks a fold."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from neurodtco.cli import app
from neurodtco.stats import wilson_interval

runner = CliRunner()


def last_json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_intervals(payload: dict, names, n: int) -> None:
    """Each accuracy lies inside its interval, which is Wilson's for that many correct of ``n`` images."""
    for name in names:
        value, (low, high) = payload[name], payload[f"{name}_ci"]
        assert low <= value <= high, name
        assert [low, high] == pytest.approx(list(wilson_interval(round(value * n), n)), abs=1e-12), name


def _commands() -> dict:
    group = typer.main.get_command(app)
    found = {}
    for name, cmd in group.commands.items():
        for sub, c in getattr(cmd, "commands", {name: cmd}).items():
            found[name if sub == name else f"{name} {sub}"] = c
    return found


def test_every_command_that_takes_a_dataset_takes_a_fold():
    for name, cmd in _commands().items():
        opts = {o for p in cmd.params for o in p.opts}
        if "--dataset" in opts:
            assert {"--fold", "--folds"} <= opts, name


def test_train_reports_test_and_training_accuracy_with_intervals(tmp_path):
    out = last_json(runner.invoke(app, ["train", "--out", str(tmp_path / "m.pt"), "--hidden", "4", "--epochs", "2",
                                        "--json"]))
    assert out["n_test"] == 180 and out["n_train"] == 1617 and out["n_validation"] == 0 and out["fold"] is None
    assert_intervals(out, ["software_accuracy"], 180)
    assert_intervals(out, ["train_accuracy"], 1617)


def test_simulate_with_defects_reports_intervals_and_the_paired_cost_of_the_defects(default_net):
    out = last_json(runner.invoke(app, ["simulate", "--defect", "column:layer=2,density=0.3,kind=on",
                                        "--defect-seed", "1", "--json"]))
    assert out["n_test"] == 180
    assert_intervals(out, ["accuracy", "accuracy_healthy", "software_accuracy"], 180)
    assert out["difference"] == pytest.approx(out["accuracy"] - out["accuracy_healthy"])
    assert out["difference_ci"][0] <= out["difference"] <= out["difference_ci"][1] < 0  # a clear loss
    assert out["mcnemar_p"] < 0.05
    text = runner.invoke(app, ["simulate", "--n-images", "40"])
    assert text.exit_code == 0 and "% [" in text.stdout and "40 images" in text.stdout


def test_imperfect_reports_intervals_over_its_test_images(default_net):
    out = last_json(runner.invoke(app, ["imperfect", "--engine", "ideal", "--read-noise", "0.05", "--repeats", "2",
                                        "--n-images", "50", "--json"]))
    assert out["n_test"] == 50
    for name in ("accuracy", "accuracy_min", "accuracy_without_imperfections", "software_accuracy"):
        low, high = out[f"{name}_ci"]
        assert low <= out[name] <= high
        assert [low, high] == pytest.approx(list(wilson_interval(out[name] * 50, 50)))
    assert min(out["accuracies"]) <= out["accuracy_draws_ci"][0] <= out["accuracy_draws_ci"][1] <= max(out["accuracies"])


def test_verify_reports_intervals_per_engine(default_net):
    import shutil

    if shutil.which("ngspice") is None:
        pytest.skip("ngspice is not installed")
    out = last_json(runner.invoke(app, ["verify", "--n-images", "5", "--json"]))
    assert out["n_test"] == 5
    for engine in ("nodal", "ngspice"):
        low, high = out["accuracy_ci"][engine]
        assert [low, high] == pytest.approx(list(wilson_interval(round(out["accuracy"][engine] * 5), 5)))


def test_fold_trains_and_judges_on_that_fold(tmp_path):
    model = tmp_path / "f3.pt"
    trained = last_json(runner.invoke(app, ["train", "--fold", "3", "--hidden", "4", "--epochs", "2",
                                            "--out", str(model), "--json"]))
    assert trained["dataset"] == "digits-fold3of10" and trained["n_train"] + trained["n_test"] == 1797
    assert trained["fold"] == 3 and trained["n_test"] in (179, 180)
    run = last_json(runner.invoke(app, ["simulate", "--model", str(model), "--fold", "3", "--json"]))
    assert run["n_test"] == trained["n_test"] and run["software_accuracy"] == trained["software_accuracy"]
    assert_intervals(run, ["accuracy"], run["n_test"])
    bad = runner.invoke(app, ["simulate", "--model", str(model), "--fold", "10"])
    assert bad.exit_code == 2 and "--fold 10 is not accepted: expected an integer in 0..9 (--folds 10)" in bad.stderr
    bad = runner.invoke(app, ["simulate", "--dataset", "fashion-mnist", "--model", str(model), "--fold", "1"])
    assert bad.exit_code == 2 and "does not take fold" in bad.stderr


def test_transistor_check_reports_intervals(default_net):
    import shutil

    if shutil.which("ngspice") is None:
        pytest.skip("ngspice is not installed")
    result = runner.invoke(app, ["transistor-check", "--n-images", "1", "--json"])
    out = last_json(result)
    assert out["n_test"] == 1
    assert_intervals(out, ["transistor_accuracy", "behavioural_accuracy"], 1)
