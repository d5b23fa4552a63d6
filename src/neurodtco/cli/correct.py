"""`neurodtco correct`: fit a small corrector on a (defective) chip's output voltages."""

from __future__ import annotations

import math
from typing import Any, Optional

import typer

from ..mapping import map_network
from ..stats import format_accuracy, with_wilson
from .circuit_options import CircuitOptions
from .common import EngineHelp, JsonOpt, emit_json, user_errors
from .data_options import DataOptions
from .defects import DefectArg, DefectSeedArg, DefectsFileArg
from .options import with_options


@with_options
def correct(
    engine: str = typer.Option("nodal", "--engine", help=EngineHelp),
    circuit: CircuitOptions = CircuitOptions(),
    defect: DefectArg = None,
    defects_file: DefectsFileArg = None,
    defect_seed: DefectSeedArg = 0,
    corrector: str = typer.Option("mlp", "--corrector", help="mlp, affine, logistic or lastlayer."),
    hidden: int = typer.Option(8, "--hidden", help="Hidden neurons of the corrective MLP (10 -> H -> 10; H=8: 178 parameters)."),
    with_hidden: bool = typer.Option(False, "--with-hidden", help="Feed the hidden layers' voltages to the MLP or logistic corrector too."),
    n_calibration: Optional[int] = typer.Option(None, "--n-calibration", help="Labelled training images the corrector sees (class-balanced); default all."),
    max_iter: Optional[int] = typer.Option(None, "--max-iter", help="Most L-BFGS iterations of the corrector's full-batch fit; default 300 (1000 for an MLP with 1 or 2 hidden neurons)."),
    corrector_seed: int = typer.Option(0, "--corrector-seed", help="Seed of the corrector's initial weights and of the calibration subset."),
    data: DataOptions = DataOptions(),
    as_json: bool = JsonOpt,
) -> None:
    """Correct a (defective) chip: fit a small corrector on its training-image voltages, judge it on the test images."""
    # Subject packages load when their command runs, so that `neurodtco --help` stays fast.
    from ..correction import correct_circuit, make_corrector
    from ..defects.commands import apply_option_defects

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
        dataset, net, t_model = data.load(as_json)
        healthy = map_network(net, circuit.config)
        chip, record = apply_option_defects(healthy, defect, defects_file, defect_seed)
        result = correct_circuit(chip, dataset, fixer, engine=engine, healthy=healthy,
                                 n_calibration=n_calibration, seed=corrector_seed)
    payload = result.to_dict()
    # One name for the defect-free accuracy across the commands: accuracy_healthy, as simulate and mitigate say.
    payload["accuracy_healthy"] = payload.pop("healthy_accuracy")
    payload["accuracy_healthy_ci"] = payload.pop("healthy_accuracy_ci")
    payload.update({
        "hidden": hidden if corrector == "mlp" else None,
        "defect_density": record.density if record else [0.0] * chip.n_layers,
        "defects": [d.to_string() for d in record.requested] if record else [],
        "software_accuracy": net.accuracy(dataset.x_test, dataset.y_test),
        "dataset": dataset.name,
    })
    with_wilson(payload, ["software_accuracy"], len(dataset.y_test))
    payload["timings"] = {"model_s": t_model, **payload.get("timings", {})}
    payload = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in payload.items()}
    if as_json:
        emit_json(payload)
    else:
        recovered = result.recovered_fraction
        n = len(result.test_index)
        low, high = payload["difference_ci"]
        typer.echo(f"{engine} circuit on {n:,} test images: accuracy "
                   f"{format_accuracy(result.accuracy_before, payload['accuracy_before_ci'], n)} before, "
                   f"{format_accuracy(result.accuracy_after, payload['accuracy_after_ci'], n)} after a "
                   f"{result.n_parameters}-parameter {result.corrector_name} corrector fitted on {result.n_calibration} "
                   f"training images: {100 * payload['difference']:+.1f} points [{100 * low:+.1f}, {100 * high:+.1f}] "
                   f"on the same images (McNemar p = {payload['mcnemar_p']:.2g}); healthy "
                   f"{result.healthy_accuracy:.1%}, recovered {'n/a' if math.isnan(recovered) else f'{recovered:.0%}'} "
                   "of the loss")
