"""Yield over dies: criteria, mitigations, the table and plot, and the `neurodtco yield` command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from neurodtco.cli import app
from neurodtco.correction import measure_chip
from neurodtco.stats import wilson_interval
from neurodtco.wafer import (DefectField, DieMap, Mitigation, Wafer, d0_at_yield, die_circuit, draw_dies,
                             evaluate_dies, evaluate_mitigations, plot_yield, stapper_yield, wafer_yield, yield_table)

SMALL = Wafer(diameter_mm=60.0, die_width_mm=10.0, die_height_mm=10.0, edge_exclusion_mm=0.0)


@pytest.fixture(scope="module")
def dies(default_circuit):
    """Twelve dies, one of them clean, the others with about 1 % stuck cells."""
    drawn = draw_dies(DefectField(0.01, alpha=2.0), SMALL, default_circuit, 12, seed=7)
    drawn[0] = DieMap.healthy(drawn[0].key, default_circuit)
    return drawn


def test_accuracy_criterion_judges_each_die_by_its_own_simulation(default_circuit, digits, dies) -> None:
    healthy = measure_chip(default_circuit, digits).accuracy(digits.y_test)
    result = evaluate_dies(default_circuit, dies, digits, bound=0.9)
    expected = [measure_chip(die_circuit(default_circuit, d)[0], digits).accuracy(digits.y_test) for d in dies]
    np.testing.assert_allclose(result.accuracies, expected)
    np.testing.assert_array_equal(result.passed, np.array(expected) >= 0.9)
    assert result.healthy_accuracy == healthy and result.accuracies[0] == healthy
    assert result.yield_ci == wilson_interval(result.n_pass, 12)
    within = evaluate_dies(default_circuit, dies, digits, within=2.0)
    assert within.threshold == pytest.approx(healthy - 0.02)
    np.testing.assert_array_equal(within.passed, np.array(expected) >= healthy - 0.02 - 1e-9)
    # The healthy chip sits exactly on a bound equal to its own accuracy, and passes.
    assert evaluate_dies(default_circuit, dies[:1], digits, bound=healthy).passed[0]


def test_any_defect_criterion_counts_clean_dies(default_circuit, dies) -> None:
    result = evaluate_dies(default_circuit, dies, criterion="any-defect")
    np.testing.assert_array_equal(result.passed, [d.n_stuck == 0 for d in dies])
    assert result.accuracies is None


def test_criteria_refuse_wrong_bounds(default_circuit, digits, dies) -> None:
    with pytest.raises(ValueError, match="exactly one of bound"):
        evaluate_dies(default_circuit, dies, digits)
    with pytest.raises(ValueError, match="bound=1.5"):
        evaluate_dies(default_circuit, dies, digits, bound=1.5)
    with pytest.raises(ValueError, match="takes no accuracy bound"):
        evaluate_dies(default_circuit, dies, criterion="any-defect", bound=0.9)
    with pytest.raises(ValueError, match="criterion='best'"):
        evaluate_dies(default_circuit, dies, digits, criterion="best", bound=0.9)
    with pytest.raises(ValueError, match="pass the dataset"):
        evaluate_dies(default_circuit, dies, bound=0.9)


def test_spares_never_lower_the_yield_and_repair_what_they_can(default_circuit, digits, dies) -> None:
    plain = evaluate_dies(default_circuit, dies, criterion="any-defect")
    spared = evaluate_dies(default_circuit, dies, criterion="any-defect", mitigation=Mitigation(spare_rows=2, spare_cols=2))
    assert spared.n_pass >= plain.n_pass
    assert np.all(spared.n_stuck <= plain.n_stuck) and spared.n_stuck.sum() < plain.n_stuck.sum()
    acc = evaluate_dies(default_circuit, dies, digits, bound=0.9, mitigation=Mitigation(spare_rows=8, spare_cols=8))
    assert acc.accuracies.mean() >= evaluate_dies(default_circuit, dies, digits, bound=0.9).accuracies.mean()


def test_mitigations_sharing_a_simulation_judge_as_one_at_a_time(default_circuit, digits) -> None:
    heavy = draw_dies(DefectField(0.02), SMALL, default_circuit, 6, seed=3)
    heavy[0] = DieMap.healthy(heavy[0].key, default_circuit)
    ms = [Mitigation(), Mitigation(correct=20), Mitigation(spare_rows=1, spare_cols=1), Mitigation(correct=200),
          Mitigation(correct=20, correct_clean=False)]
    together = evaluate_mitigations(default_circuit, heavy, digits, ms, within=1.0)
    for m, r in zip(ms, together):
        alone = evaluate_dies(default_circuit, heavy, digits, within=1.0, mitigation=m)
        assert r.mitigation == m and r.threshold == alone.threshold
        np.testing.assert_array_equal(r.accuracies, alone.accuracies)
        np.testing.assert_array_equal(r.n_stuck, alone.n_stuck)
    # The corrected results reuse the plain simulation: they share its timings, not a second one.
    assert together[1].timings["simulate_s"] == together[0].timings["simulate_s"]
    assert together[2].n_stuck.sum() < together[0].n_stuck.sum()
    # Leaving the clean die uncorrected keeps the healthy chip's accuracy there and changes no other die.
    assert together[4].mitigation.name == "correct20-defective"
    assert together[4].accuracies[0] == together[0].accuracies[0] == together[0].healthy_accuracy
    assert together[1].accuracies[0] != together[0].accuracies[0]
    np.testing.assert_array_equal(together[4].accuracies[1:], together[1].accuracies[1:])
    with pytest.raises(ValueError, match="mitigations is empty"):
        evaluate_mitigations(default_circuit, heavy, digits, [], within=1.0)


def test_per_die_correction_recovers_accuracy(default_circuit, digits) -> None:
    heavy = draw_dies(DefectField(0.05), SMALL, default_circuit, 8, seed=1)
    before = evaluate_dies(default_circuit, heavy, digits, bound=0.9)
    after = evaluate_dies(default_circuit, heavy, digits, bound=0.9, mitigation=Mitigation(correct=300))
    assert after.accuracies.mean() > before.accuracies.mean() + 0.05


def test_defect_aware_retraining_recovers_accuracy(default_circuit, digits) -> None:
    heavy = draw_dies(DefectField(0.05), SMALL, default_circuit, 2, seed=2)
    before = evaluate_dies(default_circuit, heavy, digits, bound=0.9)
    after = evaluate_dies(default_circuit, heavy, digits, bound=0.9, mitigation=Mitigation(retrain=True))
    assert after.accuracies.mean() > before.accuracies.mean()
    assert after.timings["retrain_s"] > 0


def test_wafer_yield_fills_wafers_and_reports_stapper(default_circuit) -> None:
    field = DefectField(0.5 / default_circuit.n_cells, alpha=1.0)
    result = wafer_yield(default_circuit, field, SMALL, 2 * SMALL.n_dies + 3, criterion="any-defect")
    assert result.n_dies == 2 * SMALL.n_dies + 3
    assert [k[0] for k in result.keys].count(2) == 3
    assert result.stapper_yield == pytest.approx(stapper_yield(0.5, 1.0))
    assert set(result.timings) >= {"draw_s", "simulate_s", "correct_s"}


def test_yield_table_and_plot(default_circuit, tmp_path) -> None:
    n = default_circuit.n_cells
    table = yield_table(default_circuit, SMALL, [0.2 / n, 2.0 / n], [1.0, math.inf], 60, criterion="any-defect",
                        mitigations=[Mitigation(), Mitigation(spare_rows=1, spare_cols=1)])
    assert len(table) == 8
    plain = table[table.mitigation == "none"]
    assert plain.groupby("alpha")["yield"].apply(lambda y: y.iloc[0] > y.iloc[1]).all()  # more defects, less yield
    np.testing.assert_allclose(plain.stapper_yield, [stapper_yield(0.2, 1.0), math.exp(-0.2),
                                                     stapper_yield(2.0, 1.0), math.exp(-2.0)])
    fig = plot_yield(table)
    fig.savefig(tmp_path / "yield.png")
    assert (tmp_path / "yield.png").stat().st_size > 0


def test_cli_yield_any_defect_matches_stapper(default_circuit) -> None:
    runner = CliRunner()
    d0 = 1.0 / default_circuit.n_cells
    out = runner.invoke(app, ["yield", "--dies", "1500", "--d0", str(d0), "--alpha", "2", "--criterion", "any-defect",
                              "--json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout.strip().splitlines()[-1])
    assert payload["n_dies"] == 1500
    low, high = payload["yield_ci"]
    assert low <= payload["stapper_yield"] <= high
    assert payload["stapper_yield"] == pytest.approx(stapper_yield(1.0, 2.0), rel=1e-6)


def test_cli_yield_reads_maps_and_refuses_bad_options(default_circuit, tmp_path) -> None:
    runner = CliRunner()
    path = tmp_path / "maps.csv"
    out = runner.invoke(app, ["yield", "--dies", "30", "--d0", "0.01", "--bound", "0.8", "--die-mm", "20",
                              "--write-maps", str(path), "--json"])
    assert out.exit_code == 0, out.output
    drawn = json.loads(out.stdout.strip().splitlines()[-1])
    assert drawn["yield_ci"] == pytest.approx(list(wilson_interval(drawn["n_pass"], 30)))
    assert drawn["n_test"] == 180
    assert drawn["healthy_accuracy_ci"] == pytest.approx(list(wilson_interval(round(drawn["healthy_accuracy"] * 180), 180)))
    low, high = drawn["mean_accuracy_ci"]
    assert low <= drawn["mean_accuracy"] <= high
    back = runner.invoke(app, ["yield", "--maps", str(path), "--bound", "0.8", "--die-mm", "20", "--json"])
    assert back.exit_code == 0, back.output
    read = json.loads(back.stdout.strip().splitlines()[-1])
    # The file's wafer holds more dies than were drawn: the clean ones pass, the drawn ones pass as before.
    per_wafer = read["dies_per_wafer"]
    assert read["n_dies"] == per_wafer and read["n_pass"] == drawn["n_pass"] + per_wafer - 30
    bad = runner.invoke(app, ["yield", "--dies", "10", "--criterion", "any-defect"])
    assert bad.exit_code == 2 and "exactly one of --d0" in bad.output
    # A bad value is reported under the option the user typed, not the API's parameter name.
    for option, value in (("--d0", "-1"), ("--alpha", "0"), ("--die-mm", "-2"), ("--spares", "-1")):
        extra = [] if option == "--d0" else ["--d0", "0.01"]
        bad = runner.invoke(app, ["yield", "--dies", "10", "--criterion", "any-defect", *extra, option, value])
        assert bad.exit_code == 2 and f"{option}:" in bad.output, (option, bad.output)


def test_d0_at_yield_inverts_stapper_and_widens_with_few_dies() -> None:
    n_cells, alpha = 1508, 2.0
    d0s = np.geomspace(1e-5, 1e-2, 61)
    exact = alpha * (0.9 ** (-1 / alpha) - 1) / n_cells           # Stapper's yield is 0.9 here
    y = np.array([stapper_yield(n_cells * d, alpha) for d in d0s])
    many = 10 ** 7
    est, low, high = d0_at_yield(d0s, np.round(y * many).astype(int), [many] * d0s.size)
    assert est == pytest.approx(exact, rel=2e-3) and low <= est <= high and high / low < 1.01
    few = 60
    est, low, high = d0_at_yield(d0s, np.round(y * few).astype(int), [few] * d0s.size)
    assert low < exact < high and high / low > 2
    # Off the grid: below its first D0 (0.0), beyond its last (inf).
    assert d0_at_yield([1e-3, 1e-2], [50, 40], [100, 100]) == (0.0, 0.0, 0.0)
    assert d0_at_yield([1e-3, 1e-2], [100, 100], [100, 100])[0] == math.inf
    with pytest.raises(ValueError, match="increasing"):
        d0_at_yield([1e-2, 1e-3], [1, 1], [1, 1])
    with pytest.raises(ValueError, match="one of each"):
        d0_at_yield([1e-3, 1e-2], [1], [1, 1])
