"""`neurodtco energy`: settling times measured in ngspice, the energy parts and their JSON contract."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from neurodtco.cli import app
from neurodtco.periphery import pdk_available
from neurodtco.periphery.spice import ngspice_available

runner = CliRunner()
needs_pdk = pytest.mark.skipif(not (pdk_available() and ngspice_available()),
                               reason="needs ngspice and the FreePDK45 models (pip install c4m-pdk-freepdk45)")


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("energy") / "m.pt"
    result = runner.invoke(app, ["train", "--out", str(out), "--hidden", "3", "--epochs", "3", "--json"])
    assert result.exit_code == 0, result.output
    return out


@needs_pdk
def test_energy_json_reports_settling_parts_total_and_latency(small_model):
    result = runner.invoke(app, ["energy", "--model", str(small_model), "--n-images", "20", "--jobs", "2", "--json"])
    assert result.exit_code == 0, result.output
    payload = last_json(result.stdout)
    layers = payload["layers"]
    assert [(row["rows"], row["neurons"], row["opamps"]) for row in layers] == [(65, 3, 9), (4, 10, 30)]
    for row in layers:
        assert 0 < row["settling_s"] < row["stop_time_s"] / 2
        assert max(abs(f - d) for f, d in zip(row["final_v"], row["dc_v"])) <= 1e-4
    assert payload["latency_s"] == pytest.approx(sum(row["settling_s"] for row in layers))
    assert payload["total_j"] == pytest.approx(payload["opamps_j"] + payload["arrays_j"] + payload["drivers_j"])
    assert payload["opamps_j"] == pytest.approx(39 * payload["opamp_power_w"] * payload["latency_s"])
    # the arrays draw the same power for the measured latency instead of the fixed read time
    assert payload["arrays_j"] == pytest.approx(payload["arrays_j_at_default_read_time"] * payload["latency_s"]
                                                / payload["default_read_time_s"])
    assert 0.9 < payload["opamp_share"] < 1.0
    assert 5e-4 < payload["opamp_power_w"] < 7e-4  # the characterization's 0.62 mW at NOM 25 degC


def test_energy_refuses_bad_options_before_simulating(small_model):
    cases = [
        (["--image", "50", "--n-images", "20"], "--image 50 is not accepted: expected 0..19"),
        (["--temp-c", "150"], "outside the characterized range"),
        (["--cell-capacitance", "-1"], "cell_capacitance_f=-1.0 is not accepted"),
        (["--schedule", "sometimes"], "sometimes"),
    ]
    for args, fragment in cases:
        result = runner.invoke(app, ["energy", "--model", str(small_model), *args])
        assert result.exit_code == 2, (args, result.output)
        assert fragment in result.stderr.replace("\n", " "), (args, result.stderr)
