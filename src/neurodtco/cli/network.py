"""Commands on one network and its circuit: train, simulate, netlist, verify."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from ..data import to_voltages
from ..engines import simulate as run_engine
from ..mapping import map_network
from ..netlist import circuit_elements, write_netlist
from ..network import ARCH_HELP, fit, make_config
from ..stats import format_accuracy, paired_accuracy_comparison, wilson_interval, with_wilson
from .circuit_options import CircuitOptions
from .common import EngineHelp, JsonOpt, emit_json, first_test_images, user_errors
from .data_options import DataOptions, DatasetOptions
from .defects import DefectArg, DefectSeedArg, DefectsFileArg
from .options import with_options
from .progress import progress


@with_options
def train(
    out: Path = typer.Option(Path("model.pt"), "--out", help="Where to save the trained network."),
    hidden: str = typer.Option("8,8,8", "--hidden", help="Hidden widths of the MLP, comma separated."),
    arch: Optional[str] = typer.Option(None, "--arch", help=f"Architecture, instead of --hidden: {ARCH_HELP}."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Training epochs (default: 300 for an MLP, "
                                         "the architecture's recipe otherwise)."),
    data: DatasetOptions = DatasetOptions(),
    as_json: bool = JsonOpt,
) -> None:
    """Train a network (the MLP, or --arch) on a dataset (by default the 8x8 digits) and save it with its architecture."""
    with user_errors():
        dataset = data.dataset()
        if arch is None:
            try:
                widths = tuple(int(h) for h in hidden.split(",") if h.strip())
            except ValueError:
                raise ValueError(f"--hidden {hidden!r} must be comma-separated integers, e.g. 8,8,8") from None
            arch = "mlp:" + "-".join(map(str, (dataset.n_features, *widths, dataset.n_classes)))
        config = make_config(arch, dataset, epochs=epochs, seed=data.seed)
        start = time.perf_counter()
        with progress("training", config.epochs, "epochs", quiet=as_json) as update:
            net = fit(dataset, config, progress=update)
        elapsed = time.perf_counter() - start
        net.save(out)
    acc = net.history["test_accuracy"]
    n_test = len(dataset.y_test)
    payload = with_wilson({"software_accuracy": acc}, ["software_accuracy"], n_test)
    payload["train_accuracy"] = net.history["train_accuracy"]
    with_wilson(payload, ["train_accuracy"], len(dataset.y_train))
    if dataset.has_validation:
        payload["validation_accuracy"] = net.accuracy(dataset.x_val, dataset.y_val)
        with_wilson(payload, ["validation_accuracy"], len(dataset.y_val))
    if as_json:
        emit_json({**payload, "model": str(out), "arch": net.arch,
                   **({"widths": list(config.widths)} if hasattr(config, "widths") else {}), "dataset": dataset.name,
                   "seed": data.seed, "fold": data.fold, "n_train": len(dataset.y_train),
                   "n_validation": len(dataset.y_val) if dataset.has_validation else 0, "n_test": n_test,
                   "timings": {"train_s": elapsed}})
    else:
        typer.echo(f"trained {net.arch.removeprefix('mlp:')} in {elapsed:.1f} s: test accuracy "
                   f"{format_accuracy(acc, payload['software_accuracy_ci'], n_test)}; saved to {out}")


@with_options
def simulate(
    engine: str = typer.Option("ideal", "--engine", help=EngineHelp),
    circuit: CircuitOptions = CircuitOptions(),
    n_images: Optional[int] = typer.Option(None, "--n-images", help="Simulate only the first N test images."),
    data: DataOptions = DataOptions(),
    as_json: bool = JsonOpt,
    defect: DefectArg = None,
    defects_file: DefectsFileArg = None,
    defect_seed: DefectSeedArg = 0,
) -> None:
    """Map the network onto the circuit and report its accuracy on the test images (with and without defects)."""
    # Subject packages load when their command runs, so that `neurodtco --help` stays fast.
    from ..defects.commands import apply_option_defects

    with user_errors():
        dataset, net, t_model = data.load(as_json)
        x, y = first_test_images(dataset, n_images)
        start = time.perf_counter()
        healthy = map_network(net, circuit.config)
        t_map = time.perf_counter() - start
        chip, defect_record = apply_option_defects(healthy, defect, defects_file, defect_seed)
        voltages = to_voltages(x, circuit.v_read_v)
        start = time.perf_counter()
        result = run_engine(chip, voltages, engine=engine)
        t_sim = time.perf_counter() - start
        result_healthy = result if defect_record is None else run_engine(healthy, voltages, engine=engine)
    payload = {
        "accuracy": result.accuracy(y),
        "accuracy_healthy": result_healthy.accuracy(y),
        "defect_density": defect_record.density if defect_record else [0.0] * chip.n_layers,
        "defects": [d.to_string() for d in defect_record.requested] if defect_record else [],
        "software_accuracy": net.accuracy(x, y),
        "engine": engine,
        "n_test": int(len(y)),
        "cell": circuit.cell,
        "wire_ohm": circuit.wire_ohm,
        "tile": circuit.tile or None,
        "n_arrays": chip.n_arrays,
        "n_cells": chip.n_cells,
        "dataset": dataset.name,
        "timings": {"model_s": t_model, "map_s": t_map, "simulate_s": t_sim, "per_image_s": t_sim / len(y)},
    }
    with_wilson(payload, ["accuracy", "accuracy_healthy", "software_accuracy"], len(y))
    if defect_record is not None:  # the defects' cost, paired on the same images
        paired = paired_accuracy_comparison(result.predictions() == y, result_healthy.predictions() == y)
        payload.update({key: paired[key] for key in ("difference", "difference_ci", "mcnemar_p")})
    if as_json:
        emit_json(payload)
        return
    typer.echo(f"{engine} circuit ({chip.n_arrays} arrays, {chip.n_cells:,} cells): accuracy "
               f"{format_accuracy(payload['accuracy'], payload['accuracy_ci'], len(y))} (software "
               f"{payload['software_accuracy']:.1%}); simulated in {t_sim:.3g} s")
    if defect_record is not None:
        typer.echo(f"with {len(defect_record.requested)} defect(s), densities per layer "
                   f"{', '.join(f'{d:.1%}' for d in defect_record.density)}: accuracy {payload['accuracy']:.1%} vs "
                   f"{format_accuracy(payload['accuracy_healthy'], payload['accuracy_healthy_ci'], len(y))} without; "
                   f"difference {100 * payload['difference']:+.1f} points "
                   f"[{100 * payload['difference_ci'][0]:+.1f}, {100 * payload['difference_ci'][1]:+.1f}]")


@with_options
def netlist(
    fmt: str = typer.Option("spice", "--format", help="spice (ngspice) or spectre."),
    out: Path = typer.Option(..., "--out", help="Netlist file to write."),
    n_images: int = typer.Option(1, "--n-images", help="Sweep the first N test images as input vectors."),
    circuit: CircuitOptions = CircuitOptions(),
    data: DataOptions = DataOptions(),
    as_json: bool = JsonOpt,
) -> None:
    """Write the whole circuit (all arrays, wires and neurons) as an ngspice or Spectre netlist."""
    with user_errors():
        if fmt not in ("spice", "spectre"):
            raise ValueError(f"--format {fmt!r} is not accepted: choose spice or spectre")
        dataset, net, _ = data.load(as_json)
        chip = map_network(net, circuit.config)
        x, _ = first_test_images(dataset, n_images)
        path = write_netlist(chip, to_voltages(x, circuit.v_read_v), out, fmt)  # type: ignore[arg-type]
    n_elements = len(circuit_elements(chip))
    payload = {"path": str(path), "format": fmt, "n_images": n_images, "n_elements": n_elements,
               "bytes": path.stat().st_size, "cell": circuit.cell, "wire_ohm": circuit.wire_ohm, "gain": circuit.gain}
    if as_json:
        emit_json(payload)
    else:
        run_hint = f"ngspice -b {path}" if fmt == "spice" else f"spectre {path}"
        typer.echo(f"wrote {fmt} netlist {path}: {n_elements} elements, {n_images} input vector(s); run: {run_hint}")


@with_options
def verify(
    n_images: int = typer.Option(20, "--n-images", help="Compare on the first N test images."),
    circuit: CircuitOptions = CircuitOptions(gain=1e4),
    tolerance_v: float = typer.Option(1e-6, "--tolerance", help="Largest accepted output difference (V)."),
    data: DataOptions = DataOptions(),
    as_json: bool = JsonOpt,
) -> None:
    """Run the nodal engine and ngspice on the same circuit and images; report their largest difference."""
    with user_errors():
        if not tolerance_v > 0:
            raise ValueError(f"--tolerance {tolerance_v} is not accepted: expected volts > 0")
        dataset, net, _ = data.load(as_json)
        chip = map_network(net, circuit.config)
        x, y = first_test_images(dataset, n_images)
        voltages = to_voltages(x, circuit.v_read_v)
        timings = {}
        results = {}
        for name in ("nodal", "ngspice"):
            start = time.perf_counter()
            try:
                results[name] = run_engine(chip, voltages, engine=name, return_hidden=True)
            except RuntimeError as exc:  # ngspice's failures included
                raise ValueError(f"the {name} engine failed: {exc}") from None
            timings[f"{name}_s"] = time.perf_counter() - start
            timings[f"{name}_per_image_s"] = timings[f"{name}_s"] / n_images
    a, b = results["nodal"], results["ngspice"]
    diff = float(np.max(np.abs(a.outputs_v - b.outputs_v)))
    hidden_diff = max((float(np.max(np.abs(p - q))) for p, q in zip(a.hidden_v or [], b.hidden_v or [])), default=0.0)
    same_class = a.predictions() == b.predictions()
    payload = {
        "max_abs_difference_v": diff,
        "max_abs_hidden_difference_v": hidden_diff,
        "n_images": n_images,
        "tolerance_v": tolerance_v,
        "agree": diff <= tolerance_v,
        "predictions_agree": bool(np.all(same_class)),
        "n_prediction_mismatches": int(np.sum(~same_class)),
        "accuracy": {"nodal": a.accuracy(y), "ngspice": b.accuracy(y)},
        "accuracy_ci": {name: list(wilson_interval(r.accuracy(y) * n_images, n_images)) for name, r in results.items()},
        "n_test": n_images,
        "cell": circuit.cell, "wire_ohm": circuit.wire_ohm, "gain": circuit.gain,
        "timings": {**timings, "speedup": timings["ngspice_s"] / max(timings["nodal_s"], 1e-12)},
    }
    if as_json:
        emit_json(payload)
    else:
        verdict = "agree" if payload["agree"] else "DISAGREE"
        typer.echo(f"nodal and ngspice {verdict}: largest output difference {diff:.3g} V over {n_images} images "
                   f"(tolerance {tolerance_v:g} V); same class for {n_images - payload['n_prediction_mismatches']}"
                   f"/{n_images}; nodal {timings['nodal_per_image_s'] * 1e3:.3g} ms/image, ngspice "
                   f"{timings['ngspice_per_image_s'] * 1e3:.3g} ms/image")
    if not payload["agree"]:
        raise typer.Exit(code=1)
