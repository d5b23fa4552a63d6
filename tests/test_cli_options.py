"""The circuit and data options every command shares, plain flags in --help, and what --workers accepts."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from neurodtco.cli import app
from neurodtco.cli.circuit_options import FLAG_OF_FIELD, CircuitOptions
from neurodtco.cli.options import OptionGroup, with_options
from neurodtco.mapping import MappingConfig
from neurodtco.study.executors import LocalExecutor, SerialExecutor, make_executor

runner = CliRunner()
CIRCUIT_FLAGS = {"--cell", "--r-on", "--r-off", "--v-read", "--wire-ohm", "--gain", "--layout", "--encoding"}
CIRCUIT_COMMANDS = ["simulate", "netlist", "verify", "imperfect", "correct", "mitigate", "defects show", "energy",
                    "yield"]


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
    assert len(all_commands) == 15
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


def test_tile_option_parses_square_and_rectangular_sizes_and_names_itself_in_errors():
    from neurodtco.cli.circuit_options import CircuitOptions

    assert CircuitOptions(tile="").config.tile_rows is None
    square = CircuitOptions(tile="64").config
    assert (square.tile_rows, square.tile_cols) == (64, 64)
    rect = CircuitOptions(tile="128x64", tile_combine="summing").config
    assert (rect.tile_rows, rect.tile_cols, rect.tile_combine) == (128, 64, "summing")
    for bad, message in (("abc", "--tile 'abc' is not accepted"), ("1", "--tile=1 is not accepted"),
                         ("8x8x8", "--tile '8x8x8' is not accepted")):
        with pytest.raises(ValueError, match=re.escape(message)):
            CircuitOptions(tile=bad)


def test_simulate_reports_the_physical_arrays_of_a_tiled_chip():
    result = CliRunner().invoke(app, ["simulate", "--tile", "16", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    # 64-8-8-8-10: 65x16 -> 5x1 tiles of 16 rows, 9x16 -> 1, 9x16 -> 1, 9x20 -> 1x2 (8 pairs per 16 columns)
    assert payload["n_arrays"] == 5 + 1 + 1 + 2 and payload["tile"] == "16"
    assert payload["n_cells"] == 65 * 16 + 9 * 16 + 9 * 16 + 9 * 20
    assert payload["accuracy"] == payload["software_accuracy"]  # the ideal engine: tiles change nothing


# The data options every command shares.

DATA_DEFAULTS = {"--seed": 0, "--dataset": "digits", "--fold": None, "--folds": 10}


def described(param) -> tuple[str, object]:
    """An option's help text and value type."""
    return param.help, param.type_descriptor.annotation


def test_every_data_command_has_the_same_data_options_defaults_and_help():
    from test_data import DATA_COMMANDS

    all_commands = commands()
    with_data = {name for name, cmd in all_commands.items() if "--dataset" in options_of(cmd)}
    assert with_data == set(DATA_COMMANDS)
    reference = options_of(all_commands["simulate"])
    for name in DATA_COMMANDS:
        opts = options_of(all_commands[name])
        flags = set(DATA_DEFAULTS) | ({"--model"} if name != "train" else set())
        assert flags <= set(opts) and ("--model" in opts) == (name != "train"), name
        assert {flag: opts[flag].default for flag in DATA_DEFAULTS} == DATA_DEFAULTS, name
        for flag in flags:  # the same help and the same value type as simulate's
            assert described(opts[flag]) == described(reference[flag]), (name, flag)
    assert reference["--model"].default is None and "cached default network" in reference["--model"].help


def test_data_options_load_the_split_the_flags_name_and_refuse_by_flag():
    from neurodtco.cli.data_options import DataOptions, DatasetOptions
    from neurodtco.data import load_dataset

    folded = DatasetOptions(seed=2, fold=3, n_folds=5).dataset()
    expected = load_dataset("digits", seed=2, fold=3, n_folds=5)
    assert np.array_equal(folded.x_test, expected.x_test) and np.array_equal(folded.y_train, expected.y_train)
    with pytest.raises(ValueError, match=r"--fold 7 is not accepted") as info:
        DataOptions(fold=7, n_folds=5).load(quiet=True)
    assert "n_folds=" not in str(info.value)
    with pytest.raises(ValueError, match="'mnist' is not accepted"):
        DataOptions(dataset_name="mnist").load(quiet=True)


@dataclass(frozen=True)
class Window(OptionGroup):
    """A toy option group: an interval, refused by flag when empty."""

    OPTIONS = (("low", float, "--low", "Lower edge."), ("high", float, "--high", "Upper edge."))
    low: float = 0.0
    high: float = 1.0

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ValueError(f"--low {self.low} is not accepted: expected below --high {self.high}")


def test_option_groups_take_their_defaults_from_the_default_instance_and_refuse_by_flag():
    seen = []

    @with_options
    def command(window: Window = Window(high=5.0), as_json: bool = typer.Option(False, "--json")) -> None:
        seen.append((window, as_json))

    toy = typer.Typer()
    toy.command()(command)
    opts = options_of(typer.main.get_command(toy))
    assert {flag: (opts[flag].default, opts[flag].help) for flag in ("--low", "--high")} == {
        "--low": (0.0, "Lower edge."), "--high": (5.0, "Upper edge.")}
    assert runner.invoke(toy, ["--low", "2", "--json"]).exit_code == 0
    assert seen == [(Window(low=2.0, high=5.0), True)]
    refused = runner.invoke(toy, ["--low", "9"])
    assert refused.exit_code == 2 and refused.stderr.strip() == "error: --low 9.0 is not accepted: expected below --high 5.0"
    assert len(seen) == 1  # refused before the command ran

    def bad(window: Window = None) -> None:  # type: ignore[assignment]
        """A group parameter without its default instance."""

    with pytest.raises(TypeError, match=re.escape("bad: parameter 'window' needs a Window() default")):
        with_options(bad)


def test_every_option_group_gives_each_of_its_fields_one_flag():
    from dataclasses import fields

    from neurodtco.cli.data_options import DataOptions, DatasetOptions

    for group in (CircuitOptions, DatasetOptions, DataOptions, Window):
        named = [name for name, *_ in group.OPTIONS]
        assert sorted(named) == sorted(f.name for f in fields(group)), group.__name__
        assert len({flag for _, _, flag, _ in group.OPTIONS}) == len(named), group.__name__
