"""The circuit options every command shares, plain flags in --help, and what --workers accepts."""

from __future__ import annotations

import json
import math

import pytest
import typer
from typer.testing import CliRunner

from neurodtco.cli import app
from neurodtco.cli.circuit_options import FLAG_OF_FIELD, CircuitOptions
from neurodtco.mapping import MappingConfig
from neurodtco.study.executors import LocalExecutor, SerialExecutor, make_executor

runner = CliRunner()
CIRCUIT_FLAGS = {"--cell", "--r-on", "--r-off", "--v-read", "--wire-ohm", "--gain", "--layout", "--encoding"}
CIRCUIT_COMMANDS = ["simulate", "netlist", "verify", "imperfect", "correct", "mitigate", "defects show"]


def commands() -> dict[str, typer.main.TyperCommand]:
    """Every command of the CLI by its full name ('defects show' for the subcommand)."""
    group = typer.main.get_command(app)
    found = {}
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            found.update({f"{name} {sub}": subcmd for sub, subcmd in cmd.commands.items()})
        else:
            found[name] = cmd
    return found


def options_of(cmd) -> dict[str, object]:
    return {opt: p for p in cmd.params for opt in p.opts}


def test_every_circuit_command_has_the_same_circuit_options_and_defaults():
    all_commands = commands()
    assert len(all_commands) == 13
    for name in CIRCUIT_COMMANDS:
        opts = options_of(all_commands[name])
        assert CIRCUIT_FLAGS <= set(opts), name
        defaults = {flag: opts[flag].default for flag in CIRCUIT_FLAGS}
        assert defaults == {"--cell": "linear", "--r-on": 10e3, "--r-off": 1e6, "--v-read": 0.2, "--wire-ohm": 1.0,
                            "--gain": 1e4 if name == "verify" else math.inf, "--layout": "interleaved",
                            "--encoding": "low"}, name


def test_circuit_options_build_the_mapping_config_field_by_field():
    opts = CircuitOptions(cell="gap", r_on_ohm=20e3, r_off_ohm=2e6, v_read_v=0.1, wire_ohm=2.5, gain=1e4,
                          layout="split", encoding="balanced")
    assert opts.config == MappingConfig(cell="gap", r_on_ohm=20e3, r_off_ohm=2e6, v_read_v=0.1, r_word_ohm=2.5,
                                        r_bit_ohm=2.5, layout="split", open_loop_gain=1e4, pair_encoding="balanced")
    assert CircuitOptions().config == MappingConfig()


@pytest.mark.parametrize("field, value, flag", [
    ("r_on_ohm", -1.0, "--r-on"), ("r_off_ohm", 0.0, "--r-off"), ("v_read_v", 7.0, "--v-read"),
    ("wire_ohm", -1.0, "--wire-ohm"), ("gain", 1.0, "--gain"), ("layout", "diagonal", "--layout"),
    ("encoding", "high", "--encoding"), ("cell", "pcm", "--cell"),
])
def test_a_bad_circuit_option_is_refused_by_its_flag(field, value, flag):
    with pytest.raises(ValueError) as info:
        CircuitOptions(**{field: value})
    message = str(info.value)
    assert flag in message or value in message  # the cell error names the bad model and the choices
    assert not any(name in message for name in FLAG_OF_FIELD if name not in ("cell", "layout"))


def test_every_command_refuses_a_bad_circuit_option_before_loading_anything(tmp_path):
    for name in CIRCUIT_COMMANDS:
        args = name.split() + ["--wire-ohm", "-1"]
        if name == "netlist":
            args += ["--out", str(tmp_path / "x.cir")]
        if name == "mitigate":
            args.insert(1, "states")
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (name, result.output)
        assert result.stderr.strip() == ("error: --wire-ohm=-1.0 is not accepted: expected a finite number >= 0 "
                                         "(ohms per word-line segment)"), name


def test_choices_are_checked_by_the_parser():
    result = runner.invoke(app, ["simulate", "--cell", "pcm"])
    assert result.exit_code == 2 and "--cell" in result.output and "linear" in result.output


def test_encoding_reaches_the_circuit(default_net):
    result = runner.invoke(app, ["simulate", "--encoding", "balanced", "--n-images", "40", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    # The ideal circuit reproduces the software network whatever the pair encoding.
    assert payload["accuracy"] == payload["software_accuracy"]


def test_boolean_flags_show_no_type_in_help():
    for name in ["", *commands()]:
        result = runner.invoke(app, [*name.split(), "--help"])
        assert result.exit_code == 0, name
        assert "<bool>" not in result.output, name
        assert "--help" in result.output


def help_text(*args: str) -> str:
    """A command's help as plain words (rich wraps it in a box at the terminal's width)."""
    return " ".join(runner.invoke(app, [*args, "--help"]).output.replace("│", " ").split())


def test_max_iter_help_names_the_solver():
    text = help_text("correct")
    assert "L-BFGS" in text and "Adam" not in text


def test_workers_zero_runs_here_and_negative_numbers_are_refused():
    assert isinstance(make_executor(workers=0), SerialExecutor)
    local = make_executor(workers=1)
    assert isinstance(local, LocalExecutor) and local.workers == 1
    local.close()
    with pytest.raises(ValueError, match=r"--workers -1 is not accepted: expected 0 \(run the tasks in this process\)"):
        make_executor(workers=-1)
    with pytest.raises(ValueError, match="--dask-workers 0 is not accepted"):
        make_executor(dask_workers=0)
    for name in ("run", "demo"):
        assert "0 runs the tasks in this process" in help_text(name), name
