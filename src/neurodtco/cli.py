"""Command-line interface: a thin layer over the Python API.

Every command that takes ``--json`` prints one JSON object on the last line of standard output;
progress and tables go to standard error so that line stays machine-readable.
"""

from __future__ import annotations

import json
import math
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Design-technology co-optimization of fully analog ReRAM inference circuits.")
err = Console(stderr=True)


def emit_json(payload: dict[str, Any]) -> None:
    """Print the machine-readable result as one JSON object on the last line of stdout."""
    sys.stdout.write(json.dumps(payload, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def fail(message: str) -> None:
    """Stop with a clear message and exit code 2."""
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(code=2)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the API's validation errors into one-line CLI errors."""
    try:
        yield
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))


@contextmanager
def progress_bar(description: str, total: int, quiet: bool = False) -> Iterator[Any]:
    """A rich progress bar on stderr; yields ``advance(n_done)``."""
    if quiet:
        yield lambda done, total_=None: None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda done, total_=None: bar.update(task, completed=done)


def load_or_train(model: Optional[Path], seed: int, quiet: bool) -> tuple[Any, Any, float]:
    """The dataset and the network (a model file, or the cached default); returns the time spent."""
    from .data import load_digits
    from .network import NetworkConfig, default_network, load_network

    start = time.perf_counter()
    dataset = load_digits(seed=seed)
    if model is not None:
        net = load_network(model)
        if net.config.widths[0] != dataset.n_features:
            raise ValueError(f"model {str(model)!r} expects {net.config.widths[0]} inputs; the digits have {dataset.n_features}")
    else:
        config = NetworkConfig()
        with progress_bar("training the default network", config.epochs, quiet) as advance:
            net = default_network(dataset, config, data_seed=seed, progress=lambda done, total: advance(done))
    return dataset, net, time.perf_counter() - start


def circuit_options(cell: str, r_on_ohm: float, r_off_ohm: float, v_read_v: float, wire_ohm: float,
                    gain: float, layout: str) -> Any:
    """The mapping settings the CLI options describe."""
    from .mapping import MappingConfig

    return MappingConfig(cell=cell, r_on_ohm=r_on_ohm, r_off_ohm=r_off_ohm, v_read_v=v_read_v,
                         r_word_ohm=wire_ohm, r_bit_ohm=wire_ohm, layout=layout, open_loop_gain=gain)


ModelOpt = typer.Option(None, "--model", help="Model file from `neurodtco train`; default: the cached default network.")
SeedOpt = typer.Option(0, "--seed", help="Seed of the data split (and of training for `train`).")
JsonOpt = typer.Option(False, "--json", help="Print one JSON object on the last line of stdout.")
CellOpt = typer.Option("linear", "--cell", help="Cell model: linear or gap (I0 exp(-g/g0) sinh(V/V0)).")
RonOpt = typer.Option(10e3, "--r-on", help="On-state resistance (ohm).")
RoffOpt = typer.Option(1e6, "--r-off", help="Off-state resistance (ohm).")
VreadOpt = typer.Option(0.2, "--v-read", help="Read voltage: a pixel of 1 drives this many volts.")
WireOpt = typer.Option(1.0, "--wire-ohm", help="Resistance of one word-line or bit-line segment (ohm).")
GainOpt = typer.Option(math.inf, "--gain", help="Op-amp open-loop gain (V/V); inf for ideal.")
LayoutOpt = typer.Option("interleaved", "--layout", help="Differential pair columns: interleaved or split.")
DefectArg = Annotated[Optional[list[str]], typer.Option("--defect", help="Stuck-at defect PATTERN:key=value,... (repeatable), e.g. ring:layer=1,inner=0.2,outer=0.4,kind=on; see docs/defects.md.")]
DefectsFileArg = Annotated[Optional[Path], typer.Option("--defects-file", help="YAML list of defects (one-liners or mappings), applied before the --defect ones.")]
DefectSeedArg = Annotated[int, typer.Option("--defect-seed", help="Seed of the random parts of the defect patterns.")]


@app.command()
def train(
    out: Path = typer.Option(Path("model.pt"), "--out", help="Where to save the trained network."),
    hidden: str = typer.Option("8,8,8", "--hidden", help="Hidden widths, comma separated."),
    epochs: int = typer.Option(300, "--epochs", help="Training epochs."),
    seed: int = SeedOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Train the MLP on the 8x8 digits and save it with its configuration."""
    from .data import load_digits
    from .network import NetworkConfig
    from .network import train as train_network

    with user_errors():
        try:
            widths = tuple(int(h) for h in hidden.split(",") if h.strip())
        except ValueError:
            raise ValueError(f"--hidden {hidden!r} must be comma-separated integers, e.g. 8,8,8") from None
        dataset = load_digits(seed=seed)
        config = NetworkConfig(widths=(dataset.n_features, *widths, dataset.n_classes), epochs=epochs, seed=seed)
        start = time.perf_counter()
        with progress_bar("training", epochs, as_json) as advance:
            net = train_network(dataset, config, progress=lambda done, total: advance(done))
        elapsed = time.perf_counter() - start
        net.save(out)
    acc = net.history["test_accuracy"]
    if as_json:
        emit_json({"software_accuracy": acc, "train_accuracy": net.history["train_accuracy"], "model": str(out),
                   "widths": list(config.widths), "seed": seed, "n_test": len(dataset.y_test),
                   "timings": {"train_s": elapsed}})
    else:
        typer.echo(f"trained {'-'.join(map(str, config.widths))} in {elapsed:.1f} s: "
                   f"test accuracy {acc:.2%} on {len(dataset.y_test)} images; saved to {out}")


@app.command()
def simulate(
    model: Optional[Path] = ModelOpt,
    engine: str = typer.Option("ideal", "--engine", help="ideal, nodal or ngspice."),
    cell: str = CellOpt,
    r_on_ohm: float = RonOpt,
    r_off_ohm: float = RoffOpt,
    v_read_v: float = VreadOpt,
    wire_ohm: float = WireOpt,
    gain: float = GainOpt,
    layout: str = LayoutOpt,
    n_images: Optional[int] = typer.Option(None, "--n-images", help="Simulate only the first N test images."),
    seed: int = SeedOpt,
    as_json: bool = JsonOpt,
    defect: DefectArg = None,
    defects_file: DefectsFileArg = None,
    defect_seed: DefectSeedArg = 0,
) -> None:
    """Map the network onto the circuit and report its accuracy on the test images (with and without defects)."""
    from .data import to_voltages
    from .defects.commands import apply_option_defects
    from .engines import simulate as run_engine
    from .mapping import map_network

    with user_errors():
        dataset, net, t_model = load_or_train(model, seed, as_json)
        config = circuit_options(cell, r_on_ohm, r_off_ohm, v_read_v, wire_ohm, gain, layout)
        start = time.perf_counter()
        circuit = map_network(net, config)
        t_map = time.perf_counter() - start
        healthy = circuit
        circuit, defect_record = apply_option_defects(healthy, defect, defects_file, defect_seed)
        x, y = dataset.x_test, dataset.y_test
        if n_images is not None:
            if n_images < 1:
                raise ValueError(f"--n-images {n_images} must be >= 1")
            x, y = x[:n_images], y[:n_images]
        start = time.perf_counter()
        result = run_engine(circuit, to_voltages(x, v_read_v), engine=engine)
        t_sim = time.perf_counter() - start
        result_healthy = result if defect_record is None else run_engine(healthy, to_voltages(x, v_read_v), engine=engine)
    payload = {
        "accuracy": result.accuracy(y),
        "accuracy_healthy": result_healthy.accuracy(y),
        "defect_density": defect_record.density if defect_record else [0.0] * circuit.n_layers,
        "defects": [d.to_string() for d in defect_record.requested] if defect_record else [],
        "software_accuracy": net.accuracy(x, y),
        "engine": engine,
        "n_test": int(len(y)),
        "cell": cell,
        "wire_ohm": wire_ohm,
        "timings": {"model_s": t_model, "map_s": t_map, "simulate_s": t_sim,
                    "per_image_s": t_sim / len(y)},
    }
    if as_json:
        emit_json(payload)
    else:
        typer.echo(f"{engine} circuit: accuracy {payload['accuracy']:.2%} on {len(y)} test images "
                   f"(software {payload['software_accuracy']:.2%}); simulated in {t_sim:.3g} s")
        if defect_record is not None:
            typer.echo(f"with {len(defect_record.requested)} defect(s), densities per layer "
                       f"{', '.join(f'{d:.1%}' for d in defect_record.density)}: accuracy {payload['accuracy']:.2%} "
                       f"vs {payload['accuracy_healthy']:.2%} without")


@app.command()
def demo(
    quick: bool = typer.Option(False, "--quick", help="The small built-in study (under a minute) instead of the full one."),
    out: Optional[Path] = typer.Option(None, "--out", help="Results folder; default results/demo (results/quick)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Local worker processes; default: one per core."),
    force: bool = typer.Option(False, "--force", help="Rerun what changed if the folder holds an older study."),
    as_json: bool = JsonOpt,
) -> None:
    """The main job: run the built-in stuck-at study on the exact engine, then write its HTML report."""
    name = "quick" if quick else "demo"
    _run_and_report(name, out or Path("results") / name, workers, None, None, force, as_json, report_after=True)


# Further commands are registered below this line.


def _first_test_images(dataset: Any, n_images: int, v_read_v: float) -> tuple[Any, Any]:
    """Input voltages and labels of the first ``n_images`` test images."""
    from .data import to_voltages

    if n_images < 1 or n_images > len(dataset.y_test):
        raise ValueError(f"--n-images {n_images} is not accepted: expected 1..{len(dataset.y_test)} (test images)")
    return to_voltages(dataset.x_test[:n_images], v_read_v), dataset.y_test[:n_images]


@app.command()
def netlist(
    fmt: str = typer.Option("spice", "--format", help="spice (ngspice) or spectre."),
    out: Path = typer.Option(..., "--out", help="Netlist file to write."),
    n_images: int = typer.Option(1, "--n-images", help="Sweep the first N test images as input vectors."),
    model: Optional[Path] = ModelOpt,
    cell: str = CellOpt,
    r_on_ohm: float = RonOpt,
    r_off_ohm: float = RoffOpt,
    v_read_v: float = VreadOpt,
    wire_ohm: float = WireOpt,
    gain: float = GainOpt,
    layout: str = LayoutOpt,
    seed: int = SeedOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Write the whole circuit (all arrays, wires and neurons) as an ngspice or Spectre netlist."""
    from .mapping import map_network
    from .netlist import circuit_elements, write_netlist

    with user_errors():
        if fmt not in ("spice", "spectre"):
            raise ValueError(f"--format {fmt!r} is not accepted: choose spice or spectre")
        dataset, net, _ = load_or_train(model, seed, as_json)
        circuit = map_network(net, circuit_options(cell, r_on_ohm, r_off_ohm, v_read_v, wire_ohm, gain, layout))
        x, _ = _first_test_images(dataset, n_images, v_read_v)
        path = write_netlist(circuit, x, out, fmt)  # type: ignore[arg-type]
    n_elements = len(circuit_elements(circuit))
    payload = {"path": str(path), "format": fmt, "n_images": n_images, "n_elements": n_elements,
               "bytes": path.stat().st_size, "cell": cell, "wire_ohm": wire_ohm, "gain": gain}
    if as_json:
        emit_json(payload)
    else:
        run_hint = f"ngspice -b {path}" if fmt == "spice" else f"spectre {path}"
        typer.echo(f"wrote {fmt} netlist {path}: {n_elements} elements, {n_images} input vector(s); run: {run_hint}")


@app.command()
def verify(
    n_images: int = typer.Option(20, "--n-images", help="Compare on the first N test images."),
    model: Optional[Path] = ModelOpt,
    cell: str = CellOpt,
    r_on_ohm: float = RonOpt,
    r_off_ohm: float = RoffOpt,
    v_read_v: float = VreadOpt,
    wire_ohm: float = WireOpt,
    gain: float = typer.Option(1e4, "--gain", help="Op-amp open-loop gain (V/V); inf for ideal."),
    layout: str = LayoutOpt,
    tolerance_v: float = typer.Option(1e-6, "--tolerance", help="Largest accepted output difference (V)."),
    seed: int = SeedOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Run the nodal engine and ngspice on the same circuit and images; report their largest difference."""
    import numpy as np

    from .engines import simulate as run_engine
    from .mapping import map_network

    with user_errors():
        if not tolerance_v > 0:
            raise ValueError(f"--tolerance {tolerance_v} is not accepted: expected volts > 0")
        dataset, net, _ = load_or_train(model, seed, as_json)
        circuit = map_network(net, circuit_options(cell, r_on_ohm, r_off_ohm, v_read_v, wire_ohm, gain, layout))
        x, y = _first_test_images(dataset, n_images, v_read_v)
        timings = {}
        results = {}
        for name in ("nodal", "ngspice"):
            start = time.perf_counter()
            try:
                results[name] = run_engine(circuit, x, engine=name, return_hidden=True)
            except RuntimeError as exc:
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
        "cell": cell, "wire_ohm": wire_ohm, "gain": gain,
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


@app.command()
def run(
    study: Path = typer.Argument(..., help="Study file (YAML or TOML), or a built-in study name: demo, quick."),
    out: Path = typer.Option(..., "--out", help="Results folder (created; a rerun resumes it)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Local worker processes (default: one per core; 0 runs in this process)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Address of a running Dask scheduler, e.g. tcp://host:8786."),
    dask_workers: Optional[int] = typer.Option(None, "--dask-workers", help="Start a local Dask cluster with N worker processes."),
    force: bool = typer.Option(False, "--force", help="Accept a changed study file: rerun the tasks it changes."),
    report: bool = typer.Option(False, "--report", help="Write DIR/report.html when the run finishes."),
    as_json: bool = JsonOpt,
) -> None:
    """Run a study: expand its grid into tasks, run the unfinished ones, store each result atomically."""
    _run_and_report(str(study), out, workers, scheduler, dask_workers, force, as_json, report_after=report)


@app.command()
def report(
    results: Path = typer.Argument(..., help="Results folder written by `neurodtco run`."),
    out: Optional[Path] = typer.Option(None, "--out", help="HTML file to write; default DIR/report.html."),
    as_json: bool = JsonOpt,
) -> None:
    """Write the self-contained HTML report (figures embedded) of a study's results."""
    from .report import write_report

    with user_errors():
        start = time.perf_counter()
        path = write_report(results, out)
    if as_json:
        emit_json({"report": str(path), "elapsed_s": time.perf_counter() - start})
    else:
        typer.echo(f"report written to {path}")


def _run_and_report(study: str, out: Path, workers: Optional[int], scheduler: Optional[str],
                    dask_workers: Optional[int], force: bool, as_json: bool, report_after: bool) -> None:
    """Run a study with a progress bar, optionally write its report, and print the summary."""
    import signal

    from rich.progress import MofNCompleteColumn, TimeElapsedColumn

    from .study import StudyRunError, load_study, make_executor, run_study

    with user_errors():
        spec = load_study(study)
        executor = make_executor(workers=workers, scheduler=scheduler, dask_workers=dask_workers)
    state: dict[str, Any] = {}

    def show(p: Any) -> None:
        if "bar" not in state:
            return
        if "task" not in state:
            # Start at the tasks a previous run finished, so that they do not count towards the rate and ETA.
            state["task"] = state["bar"].add_task(f"study {spec.name}", total=p.total, completed=p.done, rate="")
        rate = p.inferences / max(p.elapsed_s, 1e-9) if p.inferences else 0.0
        state["bar"].update(state["task"], completed=p.done, total=p.total,
                            rate=f"{rate:,.0f} inferences/s" if rate else "")

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # a terminated run stops its workers too (finished tasks stay stored)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("tasks"),
                   TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
        with Progress(*columns, console=err, transient=True, disable=as_json) as bar:
            state["bar"] = bar
            try:
                summary = run_study(study, out, executor=executor, force=force, progress=show)
            except StudyRunError as exc:
                fail(str(exc))
            except (ValueError, FileNotFoundError) as exc:
                fail(str(exc))
    except BaseException:
        executor.close(cancel=True)
        raise
    else:
        executor.close()
    finally:
        signal.signal(signal.SIGTERM, previous)
    payload = summary.to_dict()
    if report_after:
        from .report import write_report

        with user_errors():
            start = time.perf_counter()
            payload["report"] = str(write_report(out))
            payload["report_s"] = time.perf_counter() - start
    payload["total_s"] = summary.wall_s + payload.get("report_s", 0.0)
    if as_json:
        emit_json(payload)
        return
    if summary.n_run == 0:
        typer.echo(f"study {spec.name}: all {summary.n_tasks} tasks already finished in {out}")
    else:
        typer.echo(f"study {spec.name}: ran {summary.n_run} of {summary.n_tasks} tasks ({summary.n_skipped} were already "
                   f"done), {summary.n_circuits} circuits, {summary.n_inferences:,} circuit-inferences in "
                   f"{summary.wall_s:.1f} s ({summary.throughput:,.0f} inferences/s) with "
                   f"{summary.executor.get('executor')} workers: {summary.executor.get('workers')}")
    if report_after:
        typer.echo(f"report: {payload['report']} ({payload['report_s']:.1f} s); total {payload['total_s']:.1f} s")


defects_app = typer.Typer(no_args_is_help=True, help="Stuck-at defects in spatial patterns: see what they hit.")
app.add_typer(defects_app, name="defects")


@defects_app.command("show")
def defects_show(
    defect: DefectArg = None,
    defects_file: DefectsFileArg = None,
    out: Annotated[Path, typer.Option("--out", help="Picture to write (.png, .svg or .pdf).")] = Path("defects.png"),
    defect_seed: DefectSeedArg = 0,
    model: Optional[Path] = ModelOpt,
    cell: str = CellOpt,
    layout: str = LayoutOpt,
    seed: int = SeedOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Draw every array's conductance map with the cells the defects hit marked (defect maps)."""
    from .defects import apply_defects, plot_defect_maps
    from .defects.commands import defects_from_options
    from .mapping import map_network

    with user_errors():
        defects = defects_from_options(defect, defects_file)  # refuse nonsense before loading anything
        if not defects:
            raise ValueError("no defect given: add --defect PATTERN:key=value,... or --defects-file FILE.yaml")
        _, net, _ = load_or_train(model, seed, as_json)
        circuit = map_network(net, circuit_options(cell, 10e3, 1e6, 0.2, 1.0, math.inf, layout))
        defective, record = apply_defects(circuit, defects, seed=defect_seed)
        path = plot_defect_maps(defective, record, out)
    if as_json:
        emit_json({"path": str(path), **record.summary()})
    else:
        typer.echo(f"wrote {path}: hit {', '.join(f'layer {i} {d:.1%}' for i, d in enumerate(record.density))}")


@app.command()
def imperfect(
    model: Optional[Path] = ModelOpt,
    engine: str = typer.Option("nodal", "--engine", help="ideal, nodal or ngspice."),
    cell: str = CellOpt,
    r_on_ohm: float = RonOpt,
    r_off_ohm: float = RoffOpt,
    v_read_v: float = VreadOpt,
    wire_ohm: float = WireOpt,
    gain: float = GainOpt,
    layout: str = LayoutOpt,
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
    seed: int = SeedOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Map the network, apply temperature, noise, tuning, passive programming or drift; report accuracy and energy."""
    from .data import to_voltages
    from .imperfections.commands import run_imperfect, specs_from_options
    from .mapping import map_network

    with user_errors():
        specs = specs_from_options(spec_file, temperature_c, technology, read_noise, read_time_s, tuning_tolerance,
                                   passive_scheme, threshold_variation, max_pulses, drift_time_s, drift_nu)
        dataset, net, t_model = load_or_train(model, seed, as_json)
        circuit = map_network(net, circuit_options(cell, r_on_ohm, r_off_ohm, v_read_v, wire_ohm, gain, layout))
        x, y = dataset.x_test, dataset.y_test
        if n_images is not None:
            if n_images < 1:
                raise ValueError(f"--n-images {n_images} must be >= 1")
            x, y = x[:n_images], y[:n_images]
        payload = run_imperfect(circuit, to_voltages(x, v_read_v), y, specs, engine=engine, repeats=repeats,
                                seed=imperfection_seed, read_time_s=read_time_s)
    payload["software_accuracy"] = net.accuracy(x, y)
    payload["timings"]["model_s"] = t_model
    if as_json:
        emit_json(payload)
    else:
        kinds = ", ".join(s["kind"] for s in specs) or "none"
        typer.echo(f"{engine} circuit with imperfections ({kinds}): accuracy {payload['accuracy']:.2%} "
                   f"(+-{payload['accuracy_std']:.2%} over {repeats} draws; {payload['accuracy_without_imperfections']:.2%} "
                   f"without); arrays' energy {payload['energy_per_inference_j'] * 1e12:.3g} pJ per inference "
                   f"({payload['energy_without_imperfections_j'] * 1e12:.3g} pJ without) at {read_time_s:g} s reads")


@app.command()
def correct(
    model: Optional[Path] = ModelOpt,
    engine: str = typer.Option("nodal", "--engine", help="ideal, nodal or ngspice."),
    cell: str = CellOpt,
    r_on_ohm: float = RonOpt,
    r_off_ohm: float = RoffOpt,
    v_read_v: float = VreadOpt,
    wire_ohm: float = WireOpt,
    gain: float = GainOpt,
    layout: str = LayoutOpt,
    defect: DefectArg = None,
    defects_file: DefectsFileArg = None,
    defect_seed: DefectSeedArg = 0,
    corrector: str = typer.Option("mlp", "--corrector", help="mlp, affine, logistic or lastlayer."),
    hidden: int = typer.Option(8, "--hidden", help="Hidden neurons of the corrective MLP (10 -> H -> 10; H=8: 178 parameters)."),
    with_hidden: bool = typer.Option(False, "--with-hidden", help="Feed the hidden layers' voltages to the MLP or logistic corrector too."),
    n_calibration: Optional[int] = typer.Option(None, "--n-calibration", help="Labelled training images the corrector sees (class-balanced); default all."),
    max_iter: int = typer.Option(300, "--max-iter", help="Full-batch Adam steps of the corrector's training."),
    corrector_seed: int = typer.Option(0, "--corrector-seed", help="Seed of the corrector's initial weights and of the calibration subset."),
    seed: int = SeedOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Correct a (defective) chip: fit a small corrector on its training-image voltages, judge it on the test images."""
    from .correction import correct_circuit, make_corrector
    from .defects.commands import apply_option_defects
    from .mapping import map_network

    with user_errors():
        features = "outputs"
        if with_hidden:
            if corrector not in ("mlp", "logistic"):
                raise ValueError(f"--with-hidden works with --corrector mlp or logistic, not {corrector!r}")
            features = "outputs+hidden"
        kwargs: dict[str, Any] = {"seed": corrector_seed, "max_iter": max_iter}
        if corrector != "lastlayer":
            kwargs["features"] = features
        fixer = make_corrector(corrector, hidden=hidden, **kwargs)
        dataset, net, t_model = load_or_train(model, seed, as_json)
        healthy = map_network(net, circuit_options(cell, r_on_ohm, r_off_ohm, v_read_v, wire_ohm, gain, layout))
        circuit, record = apply_option_defects(healthy, defect, defects_file, defect_seed)
        result = correct_circuit(circuit, dataset, fixer, engine=engine, healthy=healthy,
                                 n_calibration=n_calibration, seed=corrector_seed)
    payload = result.to_dict()
    payload.update({
        "accuracy_healthy": result.healthy_accuracy,
        "hidden": hidden if corrector == "mlp" else None,
        "defect_density": record.density if record else [0.0] * circuit.n_layers,
        "defects": [d.to_string() for d in record.requested] if record else [],
        "software_accuracy": net.accuracy(dataset.x_test, dataset.y_test),
    })
    payload["timings"] = {"model_s": t_model, **payload.get("timings", {})}
    payload = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in payload.items()}
    if as_json:
        emit_json(payload)
    else:
        recovered = result.recovered_fraction
        typer.echo(f"{engine} circuit: accuracy {result.accuracy_before:.2%} before, {result.accuracy_after:.2%} after "
                   f"a {result.n_parameters}-parameter {result.corrector_name} corrector (healthy "
                   f"{result.healthy_accuracy:.2%}; recovered "
                   f"{'n/a' if math.isnan(recovered) else f'{recovered:.0%}'} of the loss), fitted on "
                   f"{result.n_calibration} training images, judged on {len(result.test_index)} test images")


@app.command()
def mitigate(
    lever: str = typer.Argument(..., help="retrain, tolerance, tune, states, circuit or compare (see docs/mitigation.md)."),
    model: Optional[Path] = ModelOpt,
    engine: str = typer.Option("nodal", "--engine", help="ideal, nodal or ngspice."),
    cell: str = CellOpt,
    r_on_ohm: float = RonOpt,
    r_off_ohm: float = RoffOpt,
    v_read_v: float = VreadOpt,
    wire_ohm: float = WireOpt,
    gain: float = GainOpt,
    layout: str = LayoutOpt,
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
    seed: int = SeedOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Mitigate imperfections: defect-aware retraining, tolerance, ordered tuning, memory states, circuit, comparison."""
    from .mitigation import commands as mc

    def floats(text: str, name: str) -> list[float]:
        try:
            return [float(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"{name} {text!r} must be comma-separated numbers") from None

    with user_errors():
        if lever not in mc.MITIGATE_LEVERS:
            raise ValueError(f"lever {lever!r} is not accepted: choose one of {list(mc.MITIGATE_LEVERS)}")
        dataset, net, t_model = load_or_train(model, seed, as_json)
        config = circuit_options(cell, r_on_ohm, r_off_ohm, v_read_v, wire_ohm, gain, layout)
        start = time.perf_counter()
        if lever == "retrain":
            payload = mc.mitigate_retrain(net, dataset, config, defect or [], defect_seed, epochs, engine)
        elif lever == "tolerance":
            payload = mc.mitigate_tolerance(net, dataset, config, floats(densities, "--densities"), instances, kind,
                                            epochs, engine, program_seed)
        elif lever == "tune":
            payload = mc.mitigate_tune(net, dataset, config, threshold_variation, scheme, retrain, engine, program_seed)
        elif lever == "states":
            payload = mc.mitigate_states(net, dataset, config, floats(temperatures, "--temperatures"), engine)
        elif lever == "circuit":
            payload = mc.mitigate_circuit(net, dataset, config, [a.strip() for a in arrangements.split(",") if a.strip()],
                                          floats(temperatures, "--temperatures"), engine)
        else:
            payload = mc.mitigate_compare(net, dataset, scenario or [], only_lever or [], quick, engine, program_seed)
    payload = {"lever": lever, "engine": engine, **payload}
    payload.setdefault("timings", {}).update({"model_s": t_model, "total_s": time.perf_counter() - start})
    if as_json:
        emit_json(payload)
    else:
        shown = {k: v for k, v in payload.items() if k not in ("rows", "candidates", "timings")}
        typer.echo(json.dumps(shown, indent=2, default=_json_default))
        for row in payload.get("rows", []):
            typer.echo("  " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))


@app.command()
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
    from dataclasses import replace as _replace

    from .periphery import BenchConfig, NeuronDesign, OpAmpDesign, characterize as run_characterization

    with user_errors():
        corners = corner or ["NOM"]
        temps = temp_c or [25.0]
        design = NeuronDesign(opamp=_replace(OpAmpDesign(), bias_current_a=bias_current_a), difference_gain=difference_gain)
        bench = BenchConfig(nominal_load_ohm=load_ohm)
        start = time.perf_counter()
        with progress_bar("characterizing", len(corners) * len(temps), as_json) as advance:
            char = run_characterization(corners, temps, design, bench, progress=lambda done, total: advance(done))
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
    else:
        typer.echo(f"activation rail {char.activation_v:.3f} V; wrote {out} in {elapsed:.1f} s")
        typer.echo(f"{'corner':6} {'T/C':>5} {'A':>7} {'offset/uV':>9} {'swing+/V':>8} {'swing-/V':>8} {'PM/deg':>6} "
                   f"{'P/uW':>6} {'act.err/mV':>10}")
        for r in rows:
            typer.echo(f"{r['corner']:6} {r['temp_c']:5.0f} {r['open_loop_gain']:7.0f} {r['offset_v'] * 1e6:9.1f} "
                       f"{r['swing_positive_v']:8.3f} {r['swing_negative_v']:8.3f} {r['phase_margin_deg']:6.1f} "
                       f"{r['power_w'] * 1e6:6.0f} {r['activation_model_max_error_v'] * 1e3:10.1f}")


@app.command("transistor-check")
def transistor_check(
    model: Optional[Path] = ModelOpt,
    characterization: Optional[Path] = typer.Option(None, "--characterization", help="File from `neurodtco characterize`; default: the shipped one."),
    corner: str = typer.Option("NOM", "--corner", help="Process corner: NOM, FF or SS."),
    temp_c: float = typer.Option(25.0, "--temp-c", help="Temperature (degC) inside the characterized range."),
    n_images: int = typer.Option(10, "--n-images", help="Simulate the first N test images (about 1-3 s each per core)."),
    mode: str = typer.Option("layerwise", "--mode", help="layerwise (one operating point per layer) or monolithic."),
    jobs: int = typer.Option(1, "--jobs", help="ngspice processes at once."),
    seed: int = SeedOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Run the network with transistor-level neurons (ngspice, FreePDK45) and compare it with nodal."""
    from .data import to_voltages
    from .periphery import load_characterization
    from .periphery.model import characterized_circuit
    from .periphery.network import compare_with_behavioural

    with user_errors():
        if n_images < 1:
            raise ValueError(f"--n-images {n_images} must be >= 1")
        dataset, net, t_model = load_or_train(model, seed, as_json)
        char = load_characterization(characterization)
        circuit = characterized_circuit(net, char, corner, temp_c)
        x = to_voltages(dataset.x_test[:n_images], circuit.input_scale_v)
        y = dataset.y_test[:n_images]
        with progress_bar("transistor-level layers", circuit.n_layers, as_json) as advance:
            agreement = compare_with_behavioural(circuit, x, char, corner, temp_c, labels=y, mode=mode, jobs=jobs,
                                                 progress=lambda done, total: advance(done))
    payload = {"corner": corner.upper(), "temp_c": temp_c, **agreement.summary(), "timings": {"model_s": t_model}}
    if as_json:
        emit_json(payload)
    else:
        typer.echo(f"{corner.upper()} {temp_c:g} degC, {n_images} images, {agreement.transistor.n_transistors} transistors: "
                   f"same class {payload['same_class']}/{n_images}; outputs max |diff| {payload['outputs_max_v'] * 1e3:.2f} mV "
                   f"(rms {payload['outputs_rms_v'] * 1e3:.2f} mV; tolerance {payload['tolerance_v'] * 1e3:.0f} mV); "
                   f"accuracy transistor {payload['transistor_accuracy']:.2%}, nodal {payload['behavioural_accuracy']:.2%}; "
                   f"{payload['per_image_s']:.2f} s per image")
    if not (agreement.all_same_class and agreement.within_tolerance):
        raise typer.Exit(code=1)


def main() -> None:
    """Entry point for ``python -m neurodtco``."""
    app()
