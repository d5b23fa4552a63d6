"""An ngspice failure is one line naming the reason, what to try and the file with the full log."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neurodtco.cli import app
from neurodtco.ngspice_run import SpiceError
from neurodtco.periphery.spice import Analysis, run_analyses

runner = CliRunner()

# What ngspice 39 prints when gap cells at 1 V read leave it without a solution (shortened).
FLOOD = "".join(f"Error: 1.7369e+{40 + k % 9} out of range for sinh\\n    in line bc3_8_{k}\\n" for k in range(40))
LAST = 'doAnalyses: DC:  Timestep too small;  vidx = 12: trouble with node "x1"'


def fake_ngspice(tmp_path: Path, monkeypatch) -> None:
    """An ``ngspice`` first on PATH that floods its output with errors and gives up."""
    folder = tmp_path / "bin"
    folder.mkdir()
    exe = folder / "ngspice"
    exe.write_text(f"#!/bin/sh\nprintf '{FLOOD}'\necho 'Error: Transient op failed, timestep too small'\n"
                   f"echo '{LAST}'\necho 'run simulation(s) aborted'\nexit 1\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


def test_simulate_reports_a_failing_ngspice_in_one_line_and_keeps_the_log(tmp_path, monkeypatch, default_net):
    fake_ngspice(tmp_path, monkeypatch)
    result = runner.invoke(app, ["simulate", "--engine", "ngspice", "--cell", "gap", "--v-read", "1.0",
                                 "--n-images", "3"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("error: ngspice exited with code 1: " + LAST)
    assert "after 40 messages like 'Error: 1.7369e+40 out of range for sinh'" in line
    assert "try a lower read voltage, or linear cells" in line
    log = Path(re.search(r"full ngspice log and netlist: (\S+)\)$", line).group(1))
    text = log.read_text()
    assert text.count("out of range for sinh") == 40 and LAST in text
    netlist = Path(re.search(r"\* netlist: (\S+)", text).group(1))
    assert netlist.read_text().lstrip().startswith("*")  # the circuit ngspice was given, to rerun by hand


def test_linear_cells_get_no_read_voltage_advice(tmp_path, monkeypatch, default_net):
    fake_ngspice(tmp_path, monkeypatch)
    result = runner.invoke(app, ["simulate", "--engine", "ngspice", "--n-images", "3"])
    assert result.exit_code == 2 and "read voltage" not in result.stderr


def test_the_periphery_reports_failures_the_same_way(tmp_path, monkeypatch):
    fake_ngspice(tmp_path, monkeypatch)
    with pytest.raises(SpiceError) as info:
        run_analyses("v1 a 0 1\nr1 a 0 1k\n", [Analysis("op", "op")])
    assert "\n" not in str(info.value) and LAST in str(info.value)
    assert info.value.log_path.read_text().count("out of range for sinh") == 40
