"""The device of a study's corrector fits: a study key, a CLI option, plumbed to every corrector; CPU by default."""

from __future__ import annotations

import pytest
import torch
import yaml

from neurodtco import correction
from neurodtco.study import SerialExecutor, StudyFileError, parse_study, run_study

TINY = {"name": "device", "engine": "nodal",
        "defects": {"patterns": ["random", "row"], "kinds": ["on"], "arrays": [3], "severities": [0.3]},
        "correctors": {"hidden": [2], "baselines": ["affine"], "options": {"max_iter": 5}},
        "cross_defect": {"enabled": True, "hidden": 2}}


def test_the_default_device_is_cpu_and_leaves_the_study_hash_as_it_was():
    study = parse_study(TINY)
    assert study.device == "cpu"
    assert "device" not in study.canonical()
    assert parse_study({**TINY, "device": "cpu"}).hash() == study.hash()
    other = parse_study({**TINY, "device": "cuda:1"})  # a name torch knows; whether it exists is the worker's matter
    assert other.canonical()["device"] == "cuda:1" and other.hash() != study.hash()


def test_a_bad_device_and_a_device_among_the_options_are_refused():
    with pytest.raises(StudyFileError, match="device 'gpu0' is not a torch device name"):
        parse_study({**TINY, "device": "gpu0"})
    with pytest.raises(StudyFileError, match="device='cuda' belongs at the top level of the study"):
        parse_study({**TINY, "correctors": {**TINY["correctors"], "options": {"device": "cuda"}}})


def test_every_corrector_fit_runs_on_the_study_device(tmp_path, monkeypatch):
    seen = []
    fit = correction.BatchedCorrector.fit

    def spy(self, *args, **kwargs):
        seen.append((type(self).__name__, self.device))
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(correction.BatchedCorrector, "fit", spy)
    run_study(parse_study({**TINY, "device": "cpu:0"}), tmp_path / "out", executor=SerialExecutor())
    assert {name for name, _ in seen} == {"BatchedMLPCorrector", "BatchedAffineCalibration"}
    assert len(seen) >= 3 and all(device == "cpu:0" for _, device in seen)  # circuits tasks and the cross matrix


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cli_refuses_a_device_torch_does_not_have_before_any_work(tmp_path):
    from typer.testing import CliRunner

    from neurodtco.cli import app

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    for command in (["run", str(path), "--out", str(tmp_path / "out")], ["demo", "--quick", "--out", str(tmp_path / "out")]):
        result = CliRunner().invoke(app, [*command, "--workers", "0", "--device", "cuda"])
        assert result.exit_code == 2, result.output
        assert "device='cuda' is not available" in result.output and "device='cpu'" in result.output
        assert not (tmp_path / "out").exists()


def test_cli_device_reaches_the_stored_study(tmp_path):
    import json

    from typer.testing import CliRunner

    from neurodtco.cli import app

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out"), "--workers", "0",
                                      "--device", "cpu:0"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "study.resolved.json").read_text())["study"]["device"] == "cpu:0"
