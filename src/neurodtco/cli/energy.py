"""`energy`: latency and energy per inference of the whole system, from settling times measured in ngspice."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Optional

import numpy as np
import typer

from ..data import to_voltages
from .circuit_options import CircuitOptions
from .common import JsonOpt, emit_json, first_test_images, user_errors
from .data_options import DataOptions
from .options import with_options
from .progress import progress

if TYPE_CHECKING:
    from ..periphery.characterize import Characterization


def opamp_power_w(char: "Characterization", corner: str, temp_c: float) -> float:
    """Supply power of one op-amp at a corner, linear in temperature between characterized points."""
    char.point(corner, temp_c)  # refuses an uncharacterized corner or temperature, naming the range
    points = sorted((p for p in char.points if p.corner == corner.upper()), key=lambda p: p.temp_c)
    return float(np.interp(temp_c, [p.temp_c for p in points], [p.details["power_w"] for p in points]))


@with_options
def energy(
    circuit: CircuitOptions = CircuitOptions(),
    characterization: Optional[Path] = typer.Option(None, "--characterization", help="File from `neurodtco characterize`; default: the shipped one."),
    corner: str = typer.Option("NOM", "--corner", help="Process corner: NOM, FF or SS."),
    temp_c: float = typer.Option(25.0, "--temp-c", help="Temperature (degC) inside the characterized range."),
    image: int = typer.Option(0, "--image", help="Test image whose inputs the settling step goes to (from 0 V)."),
    n_images: Optional[int] = typer.Option(None, "--n-images", help="Average the arrays' power and drivers over the first N test images (default all)."),
    cell_capacitance_f: float = typer.Option(1e-15, "--cell-capacitance", help="Capacitance of one cell (F); an assumption, see docs/energy.md."),
    wire_capacitance: float = typer.Option(0.2e-9, "--wire-capacitance", help="Word/bit-line capacitance per metre (F/m); 0.2 fF/um."),
    cell_pitch_m: float = typer.Option(0.2e-6, "--cell-pitch", help="Wire length per cell (m)."),
    output_load_f: float = typer.Option(50e-15, "--output-load", help="Capacitance on each output of the last layer (F)."),
    schedule: Literal["always_on", "per_layer"] = typer.Option("always_on", "--schedule", help="always_on (op-amps biased for the whole latency) or per_layer."),
    jobs: int = typer.Option(1, "--jobs", help="Layers settled at once (ngspice processes)."),
    data: DataOptions = DataOptions(),
    as_json: bool = JsonOpt,
) -> None:
    """Measure every layer's settling time (FreePDK45 neurons, ngspice) and the energy per inference of the system."""
    # The periphery (PDK models, ngspice benches) loads when its command runs, so that `neurodtco --help` stays fast.
    from ..engines import simulate
    from ..imperfections import DEFAULT_READ_TIME_S
    from ..imperfections.system_energy import ArrayParasitics, system_energy
    from ..periphery import load_characterization
    from ..periphery.model import characterized_circuit
    from ..periphery.settling import circuit_settling

    with user_errors():
        parasitics = ArrayParasitics(cell_capacitance_f=cell_capacitance_f, wire_capacitance_f_per_m=wire_capacitance,
                                     cell_pitch_m=cell_pitch_m, output_load_f=output_load_f)
        dataset, net, t_model = data.load(as_json)
        char = load_characterization(characterization)
        power = opamp_power_w(char, corner, temp_c)
        chip = characterized_circuit(net, char, corner, temp_c, base=circuit.config)
        pixels, _ = first_test_images(dataset, n_images)
        if not 0 <= image < len(pixels):
            raise ValueError(f"--image {image} is not accepted: expected 0..{len(pixels) - 1} (of the images used)")
        x = to_voltages(pixels, chip.input_scale_v)
        # every tile's drivers, with its wires and the coupling at shared neuron inputs (docs/energy.md)
        array_power = simulate(chip, x, engine="nodal", return_power=True).layer_power_w
        start = time.perf_counter()
        with progress("settling layers", chip.n_layers, "layers", quiet=as_json) as update:
            settled = circuit_settling(chip, x[image], char.design, parasitics, corner=corner, temp_c=temp_c,
                                       jobs=jobs, progress=update)
        t_settle = time.perf_counter() - start
        parts = system_energy(chip, array_power, x, [s.settling_s for s in settled], power, parasitics,
                              schedule=schedule)
    # every neuron of a layer is measured: "neurons" is their count, "neuron_settling_s" in their order
    layers = [{**settled[l].to_dict(), "layer": l, "rows": layer.n_rows, "columns": layer.n_columns,
               "tiles": len(layer.tiles), "neurons": layer.n_outputs, "opamps": parts.layer_opamps[l],
               "reads": parts.layer_reads[l], "difference_gain": layer.neuron.difference_gain,
               "feedback_resistance_ohm": layer.neuron.feedback_resistance_ohm}
              for l, layer in enumerate(chip.layers)]
    fixed = float(np.mean(array_power.sum(axis=1))) * DEFAULT_READ_TIME_S
    payload = {"corner": corner.upper(), "temp_c": temp_c, "image": image, "n_images": len(x),
               "circuit": circuit.to_dict(), "array_power": "nodal", "parasitics": parasitics.to_dict(), "layers": layers,
               **parts.to_dict(), "arrays_j_at_default_read_time": fixed, "default_read_time_s": DEFAULT_READ_TIME_S,
               "timings": {"model_s": t_model, "settling_s": t_settle}}
    if as_json:
        emit_json(payload)
        return
    typer.echo(f"{'layer':>5} {'rows x cols':>11} {'op-amps':>7} {'r':>4} {'settling/ns':>11}")
    for row in layers:
        typer.echo(f"{row['layer']:>5} {row['rows']:>5} x {row['columns']:<4} {row['opamps']:>7} "
                   f"{row['difference_gain']:>4g} {row['settling_s'] * 1e9:>11.1f}")
    typer.echo(f"latency {parts.latency_s * 1e9:.1f} ns; energy per inference {parts.total_j * 1e9:.4g} nJ: op-amps "
               f"{parts.opamps_j * 1e9:.4g} nJ ({parts.opamp_share:.1%}), arrays {parts.arrays_j * 1e12:.4g} pJ, "
               f"drivers {parts.drivers_j * 1e12:.4g} pJ ({corner.upper()} {temp_c:g} degC, {schedule})")
