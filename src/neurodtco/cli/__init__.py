"""Command-line interface: a thin layer over the Python API.

Every command that takes ``--json`` prints one JSON object on the last line of standard output;
progress and tables go to standard error so that line stays machine-readable. This module is the
table of contents: each command lives in the module of its subject, and is registered here in the
order ``neurodtco --help`` lists it.
"""

from __future__ import annotations

import typer

from . import correct, defects, energy, imperfections, network, periphery, study, yield_cmd
from .common import Command, Group

app = typer.Typer(cls=Group, add_completion=False, no_args_is_help=True,
                  help="Design-technology co-optimization of fully analog ReRAM inference circuits.")
for command in (network.train, network.simulate, study.demo, network.netlist, network.verify, study.run,
                study.report):
    app.command(cls=Command)(command)

defects_app = typer.Typer(cls=Group, no_args_is_help=True, help="Stuck-at defects in spatial patterns: see what they hit.")
defects_app.command("show", cls=Command)(defects.show)
app.add_typer(defects_app, name="defects")

for command in (imperfections.imperfect, correct.correct, imperfections.mitigate, periphery.characterize):
    app.command(cls=Command)(command)
app.command("transistor-check", cls=Command)(periphery.transistor_check)
app.command(cls=Command)(energy.energy)
app.command("yield", cls=Command)(yield_cmd.yield_)


def main() -> None:
    """Entry point for ``python -m neurodtco``."""
    app()


__all__ = ["app", "main"]
