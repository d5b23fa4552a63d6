"""`neurodtco correct`: fit a small corrector on a (defective) chip's output voltages."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import typer

from ..mapping import map_network
from .circuit_options import CircuitOptions, with_circuit_options
from .common import DatasetOpt, EngineHelp, JsonOpt, ModelOpt, SeedOpt, emit_json, load_or_train, user_errors
from .defects import DefectArg, DefectSeedArg, DefectsFileArg


@with_circuit_options()
def correct(
    model: Optional[Path] = ModelOpt,
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
    seed: int = SeedOpt,
    dataset_name: str = DatasetOpt,
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
        dataset, net, t_model = load_or_train(model, seed, as_json, dataset_name)
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
