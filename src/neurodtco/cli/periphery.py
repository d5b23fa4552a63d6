"""Transistor-level neurons: `characterize` extracts their behaviour, `transistor-check` runs the network with them."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer

from ..data import to_voltages
from ..stats import format_accuracy, with_wilson
from .common import JsonOpt, emit_json, first_test_images, user_errors
from .data_options import DataOptions
from .options import with_options
from .progress import progress


def characterize(
    corner: Optional[list[str]] = typer.Option(None, "--corner", help="Process corner NOM, FF or SS; repeat for several (default NOM)."),
    temp_c: Optional[list[float]] = typer.Option(None, "--temp-c", help="Temperature in degC; repeat for several (default 25)."),
    out: Path = typer.Option(..., "--out", help="JSON file to write (the characterization a Circuit can reference)."),
    difference_gain: float = typer.Option(16.0, "--difference-gain", help="Resistor ratio r of the difference stage."),
    bias_current_a: float = typer.Option(10e-6, "--bias-current", help="Op-amp reference bias current (A)."),
    load_ohm: float = typer.Option(2e3, "--load-ohm", help="Nominal output load of the benches (ohm)."),
    as_json: bool = JsonOpt,
) -> None:
    """Run the transistor-level neuron (FreePDK45) in ngspice and extract its behavioural parameters."""
    # The periphery (PDK models, benches) loads when its command runs, so that `neurodtco --help` stays fast.
    from ..periphery import BenchConfig, NeuronDesign, OpAmpDesign
    from ..periphery import characterize as run_characterization

    with user_errors():
        corners = corner or ["NOM"]
        temps = temp_c or [25.0]
        design = NeuronDesign(opamp=replace(OpAmpDesign(), bias_current_a=bias_current_a), difference_gain=difference_gain)
        bench = BenchConfig(nominal_load_ohm=load_ohm)
        start = time.perf_counter()
        with progress("characterizing", len(corners) * len(temps), "points", quiet=as_json) as update:
            char = run_characterization(corners, temps, design, bench, progress=update)
        elapsed = time.perf_counter() - start
        char.save(out)
    rows = [{"corner": p.corner, "temp_c": p.temp_c, "open_loop_gain": p.open_loop_gain, "offset_v": p.offset_v,
             "swing_positive_v": p.swing_positive_v, "swing_negative_v": p.swing_negative_v,
             "saturation_v": p.saturation_v, "phase_margin_deg": p.details["loop"]["phase_margin_deg"],
             "power_w": p.details["power_w"],
             "activation_model_max_error_v": p.details["activation"]["model_max_error_v"]} for p in char.points]
    if as_json:
        emit_json({"out": str(out), "activation_v": char.activation_v, "points": rows,
                   "timings": {"characterize_s": elapsed, "per_point_s": elapsed / len(rows)}})
        return
    typer.echo(f"activation rail {char.activation_v:.3f} V; wrote {out} in {elapsed:.1f} s")
    typer.echo(f"{'corner':6} {'T/C':>5} {'A':>7} {'offset/uV':>9} {'swing+/V':>8} {'swing-/V':>8} {'PM/deg':>6} "
               f"{'P/uW':>6} {'act.err/mV':>10}")
    for r in rows:
        typer.echo(f"{r['corner']:6} {r['temp_c']:5.0f} {r['open_loop_gain']:7.0f} {r['offset_v'] * 1e6:9.1f} "
                   f"{r['swing_positive_v']:8.3f} {r['swing_negative_v']:8.3f} {r['phase_margin_deg']:6.1f} "
                   f"{r['power_w'] * 1e6:6.0f} {r['activation_model_max_error_v'] * 1e3:10.1f}")


@with_options
def transistor_check(
    characterization: Optional[Path] = typer.Option(None, "--characterization", help="File from `neurodtco characterize`; default: the shipped one."),
    corner: str = typer.Option("NOM", "--corner", help="Process corner: NOM, FF or SS."),
    temp_c: float = typer.Option(25.0, "--temp-c", help="Temperature (degC) inside the characterized range."),
    n_images: int = typer.Option(10, "--n-images", help="Simulate the first N test images (about 1-3 s each per core)."),
    mode: str = typer.Option("layerwise", "--mode", help="layerwise (one operating point per layer) or monolithic."),
    jobs: int = typer.Option(1, "--jobs", help="ngspice processes at once."),
    data: DataOptions = DataOptions(),
    as_json: bool = JsonOpt,
) -> None:
    """Run the network with transistor-level neurons (ngspice, FreePDK45) and compare it with nodal."""
    from ..periphery import load_characterization
    from ..periphery.model import characterized_circuit
    from ..periphery.network import compare_with_behavioural

    with user_errors():
        dataset, net, t_model = data.load(as_json)
        char = load_characterization(characterization)
        circuit = characterized_circuit(net, char, corner, temp_c)
        pixels, y = first_test_images(dataset, n_images)
        x = to_voltages(pixels, circuit.input_scale_v)
        with progress("transistor-level layers", circuit.n_layers, "layers", quiet=as_json) as update:
            agreement = compare_with_behavioural(circuit, x, char, corner, temp_c, labels=y, mode=mode, jobs=jobs,
                                                 progress=update)
    payload = {"corner": corner.upper(), "temp_c": temp_c, **agreement.summary(), "n_test": len(y),
               "timings": {"model_s": t_model}}
    with_wilson(payload, ["transistor_accuracy", "behavioural_accuracy"], len(y))
    if as_json:
        emit_json(payload)
    else:
        typer.echo(f"{corner.upper()} {temp_c:g} degC, {n_images} images, {agreement.transistor.n_transistors} transistors: "
                   f"same class {payload['same_class']}/{n_images}; outputs max |diff| {payload['outputs_max_v'] * 1e3:.2f} mV "
                   f"(rms {payload['outputs_rms_v'] * 1e3:.2f} mV; tolerance {payload['tolerance_v'] * 1e3:.0f} mV); "
                   f"accuracy transistor {format_accuracy(payload['transistor_accuracy'], payload['transistor_accuracy_ci'], len(y))}, "
                   f"nodal {payload['behavioural_accuracy']:.1%}; "
                   f"{payload['per_image_s']:.2f} s per image")
    if not (agreement.all_same_class and agreement.within_tolerance):
        raise typer.Exit(code=1)
