"""Imperfect circuits: `imperfect` applies temperature, noise, programming and drift; `mitigate` counters them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..data import to_voltages
from ..mapping import map_network
from ..stats import format_accuracy, with_wilson
from .circuit_options import CircuitOptions
from .common import EngineHelp, JsonOpt, emit_json, first_test_images, json_default, user_errors
from .data_options import DataOptions
from .options import with_options


@with_options
def imperfect(
    engine: str = typer.Option("nodal", "--engine", help=EngineHelp),
    circuit: CircuitOptions = CircuitOptions(),
    temperature_c: Optional[float] = typer.Option(None, "--temperature-c", help="Operate at this temperature (C); cells were programmed at 25 C."),
    technology: str = typer.Option("reram", "--technology", help="How cells respond to temperature: reram or eflash."),
    read_noise: Optional[float] = typer.Option(None, "--read-noise", help="Relative read-noise sigma per cell, sampled per inference (plus thermal and shot noise)."),
    tuning_tolerance: Optional[float] = typer.Option(None, "--tuning-tolerance", help="Program every cell by write-verify to this relative tolerance, e.g. 0.02."),
    passive_scheme: Optional[str] = typer.Option(None, "--passive-scheme", help="Program as passive 0T1R crossbars with v/2 or v/3 half-select biasing."),
    threshold_variation: float = typer.Option(0.0, "--threshold-variation", help="Normalized sigma/mean of the cells' switching thresholds (with a programming option)."),
    max_pulses: int = typer.Option(100, "--max-pulses", help="Write-verify gives a cell up after this many pulses."),
    drift_time_s: Optional[float] = typer.Option(None, "--drift-time-s", help="Read this many seconds after programming (power-law drift)."),
    drift_nu: float = typer.Option(0.05, "--drift-nu", help="Drift exponent nu of G(t) = G0 (t/t0)^-nu."),
    spec_file: Optional[Path] = typer.Option(None, "--spec", help="YAML/JSON list of imperfection dicts (the study file's vocabulary), applied first."),
    read_time_s: float = typer.Option(1e-7, "--read-time-s", help="Seconds the inputs are held per inference (energy, noise bandwidth)."),
    repeats: int = typer.Option(1, "--repeats", help="Independent imperfection draws (seeds) to average."),
    imperfection_seed: int = typer.Option(0, "--imperfection-seed", help="Seed of the first draw."),
    n_images: Optional[int] = typer.Option(None, "--n-images", help="Use only the first N test images."),
    data: DataOptions = DataOptions(),
    as_json: bool = JsonOpt,
) -> None:
    """Map the network, apply temperature, noise, tuning, passive programming or drift; report accuracy and energy."""
    # Subject packages load when their command runs, so that `neurodtco --help` stays fast.
    from ..imperfections.commands import run_imperfect, specs_from_options

    with user_errors():
        specs = specs_from_options(spec_file, temperature_c, technology, read_noise, read_time_s, tuning_tolerance,
                                   passive_scheme, threshold_variation, max_pulses, drift_time_s, drift_nu)
        dataset, net, t_model = data.load(as_json)
        chip = map_network(net, circuit.config)
        x, y = first_test_images(dataset, n_images)
        payload = run_imperfect(chip, to_voltages(x, circuit.v_read_v), y, specs, engine=engine, repeats=repeats,
                                seed=imperfection_seed, read_time_s=read_time_s)
    payload["software_accuracy"] = net.accuracy(x, y)
    with_wilson(payload, ["software_accuracy"], len(y))
    payload["dataset"] = dataset.name
    payload["timings"]["model_s"] = t_model
    if as_json:
        emit_json(payload)
    else:
        kinds = ", ".join(s["kind"] for s in specs) or "none"
        typer.echo(f"{engine} circuit with imperfections ({kinds}): accuracy "
                   f"{format_accuracy(payload['accuracy'], payload['accuracy_ci'], len(y))} (+-{payload['accuracy_std']:.1%} "
                   f"over {repeats} draws; {payload['accuracy_without_imperfections']:.1%} without); arrays' energy {payload['energy_per_inference_j'] * 1e12:.3g} pJ per inference "
                   f"({payload['energy_without_imperfections_j'] * 1e12:.3g} pJ without) at {read_time_s:g} s reads")


def _floats(text: str, flag: str) -> list[float]:
    """Comma-separated numbers of an option."""
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{flag} {text!r} must be comma-separated numbers") from None


@with_options
def mitigate(
    lever: str = typer.Argument(..., help="retrain, tolerance, tune, states, circuit or compare (see docs/mitigation.md)."),
    engine: str = typer.Option("nodal", "--engine", help=EngineHelp),
    circuit: CircuitOptions = CircuitOptions(),
    defect: Annotated[Optional[list[str]], typer.Option("--defect", help="retrain: stuck-at defect PATTERN:key=value,... (repeatable), e.g. random:p=0.01,kind=mix.")] = None,
    defect_seed: int = typer.Option(0, "--defect-seed", help="Seed of the random parts of the defect patterns."),
    epochs: int = typer.Option(100, "--epochs", help="retrain/tolerance: epochs of defect-aware retraining."),
    densities: str = typer.Option("0.001,0.01,0.03,0.1", "--densities", help="tolerance: stuck-cell probabilities, comma separated."),
    instances: int = typer.Option(3, "--instances", help="tolerance: defect maps per density."),
    kind: str = typer.Option("mix", "--kind", help="tolerance: on, off or mix (half on, half off)."),
    threshold_variation: float = typer.Option(0.25, "--threshold-variation", help="tune: normalized sigma/mean of the switching thresholds."),
    scheme: str = typer.Option("v/2", "--scheme", help="tune: v/2 or v/3 half-select biasing."),
    retrain: bool = typer.Option(False, "--retrain", help="tune: also program, measure, retrain and touch up."),
    temperatures: str = typer.Option("25,50,75,100", "--temperatures", help="states/circuit: temperatures (C), comma separated."),
    arrangements: str = typer.Option("differential,shared-row,shared-uniform", "--arrangements", help="circuit: column arrangements."),
    scenario: Annotated[Optional[list[str]], typer.Option("--scenario", help="compare: scenario (repeatable; default all).")] = None,
    only_lever: Annotated[Optional[list[str]], typer.Option("--lever", help="compare: lever (repeatable; default all).")] = None,
    quick: bool = typer.Option(False, "--quick", help="compare: smoke run with few epochs (not for reported numbers)."),
    program_seed: int = typer.Option(0, "--program-seed", help="tune/tolerance/compare: seed of the programming draws and defect maps."),
    data: DataOptions = DataOptions(),
    as_json: bool = JsonOpt,
) -> None:
    """Mitigate imperfections: defect-aware retraining, tolerance, ordered tuning, memory states, circuit, comparison."""
    # Subject packages load when their command runs, so that `neurodtco --help` stays fast.
    from ..mitigation import commands as mc

    with user_errors():
        if lever not in mc.MITIGATE_LEVERS:
            raise ValueError(f"lever {lever!r} is not accepted: choose one of {list(mc.MITIGATE_LEVERS)}")
        dataset, net, t_model = data.load(as_json)
        config = circuit.config
        start = time.perf_counter()
        payload: dict[str, Any]
        if lever == "retrain":
            payload = mc.mitigate_retrain(net, dataset, config, defect or [], defect_seed, epochs, engine)
        elif lever == "tolerance":
            payload = mc.mitigate_tolerance(net, dataset, config, _floats(densities, "--densities"), instances, kind,
                                            epochs, engine, program_seed)
        elif lever == "tune":
            payload = mc.mitigate_tune(net, dataset, config, threshold_variation, scheme, retrain, engine, program_seed)
        elif lever == "states":
            payload = mc.mitigate_states(net, dataset, config, _floats(temperatures, "--temperatures"), engine)
        elif lever == "circuit":
            payload = mc.mitigate_circuit(net, dataset, config, [a.strip() for a in arrangements.split(",") if a.strip()],
                                          _floats(temperatures, "--temperatures"), engine)
        else:
            payload = mc.mitigate_compare(net, dataset, scenario or [], only_lever or [], quick, engine, program_seed)
    payload = {"lever": lever, "engine": engine, **payload}
    payload.setdefault("timings", {}).update({"model_s": t_model, "total_s": time.perf_counter() - start})
    if as_json:
        emit_json(payload)
    else:
        shown = {k: v for k, v in payload.items() if k not in ("rows", "candidates", "timings")}
        typer.echo(json.dumps(shown, indent=2, default=json_default))
        for row in payload.get("rows", []):
            typer.echo("  " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
