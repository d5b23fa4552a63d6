"""examples/imperfections_baselines.py: its tables on a few images, their intervals, and what it publishes."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from neurodtco.data import load_digits, to_voltages
from neurodtco.mapping import map_network
from neurodtco.network import default_network

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import imperfections_baselines as ib  # noqa: E402

N = 40


@pytest.fixture(scope="module")
def setup():
    dataset = load_digits(seed=0)
    net = default_network(dataset)
    return net, map_network(net), to_voltages(dataset.x_test[:N], 0.2), dataset.y_test[:N], dataset.x_test[:N]


def rows_of(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("|") and not line.startswith("|---")][1:]


def numbers(cell: str) -> list[float]:
    return [float(v) for v in cell.replace("%", "").replace("[", " ").replace("]", " ").replace(",", " ").split()]


def test_accuracy_pools_the_draws_and_its_interval_holds_the_mean() -> None:
    a, b = np.array([1, 1, 0, 1], bool), np.array([1, 0, 0, 1], bool)
    value, low, high = numbers(ib.accuracy([a, b]))
    assert value == 62.5 and low < value < high
    assert ib.per_seed([a, b]) == "75.0, 50.0"
    assert numbers(ib.change(a, a)) == [0.0, 0.0, 0.0]


def test_temperature_rows_start_from_their_own_25_c(setup) -> None:
    _, circuit, x, y, _ = setup
    text, data = ib.temperature_rows(circuit, x, y, "ideal")
    rows = rows_of(text)
    assert [r[0] for r in rows] == ["25", "40", "55", "70", "85", "100"]
    assert rows[0][2] == rows[0][5] == "+0.0 [+0.0, +0.0]" and rows[0][-1] == "0 (p = 1.00)"
    for r, d in zip(rows, data[::2]):  # ReRAM accuracy shown equals the one measured
        value, low, high = numbers(r[1])
        assert value == pytest.approx(100 * d["accuracy"], abs=0.05) and low <= value <= high
    assert "ReRAM" in text.split("\n\n")[-1]


def test_zero_threshold_variation_disturbs_nothing(setup) -> None:
    _, circuit, x, y, _ = setup
    text, data = ib.passive_rows({"default": circuit}, x, y, "ideal", 1, "v/2", (0.0,))
    ((sigma, acc, seeds, disturbed, out),) = rows_of(text)
    assert (sigma, disturbed, out) == ("0.0%", "0.0%", "0.0%") and data[0]["disturbed_fraction"] == 0.0
    assert numbers(acc)[0] == pytest.approx(float(seeds))


def test_noise_note_is_the_thermal_and_shot_budget(setup) -> None:
    _, circuit, x, y, _ = setup
    text, data = ib.noise_rows(circuit, x, y, "ideal", 1)
    assert len(rows_of(text)) == len(data) == 6
    k, q, t, v, df = 1.380649e-23, 1.602176634e-19, 298.15, 0.2, 0.5 / ib.READ_TIME_S
    relative = math.sqrt((4 * k * t * 1e-6 + 2 * q * 1e-6 * v) * df / v**2) / 1e-6  # hand formula at 1 uS
    assert f"{100 * relative:.2f} % of G at 1 µS" in text


def test_write_docs_publishes_each_table_under_its_name_with_the_command(monkeypatch, capsys) -> None:
    calls = []
    monkeypatch.setattr(ib, "publish", lambda *a: calls.append(a))
    ib.main(["--only", "window", "--engine", "ideal", "--write-docs"])
    ((page, name, body, command),) = calls
    assert (page, name) == ("imperfections.md", "baselines-window")
    assert command == "python examples/imperfections_baselines.py --only window --engine ideal --write-docs"
    assert len(rows_of(body)) == 6 and body.split("\n\n")[1] in capsys.readouterr().out
