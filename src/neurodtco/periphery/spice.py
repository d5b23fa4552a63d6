"""A minimal ngspice runner: write a netlist, run ``ngspice -b``, parse ASCII rawfiles.

Kept independent of the engines so that characterization needs nothing but ngspice and the
model files. Each analysis in a run writes its own rawfile, so a run returns one table of
vectors per analysis.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..ngspice_run import SpiceError, failure, run_ngspice

__all__ = ["Analysis", "SpiceError", "ngspice_available", "ngspice_path", "parse_ascii_raw", "run_analyses"]


@dataclass(frozen=True)
class Analysis:
    """One analysis line (``op``, ``dc vin 0 1 0.01``, ``ac dec 20 1 1e9``) and the vectors to keep."""

    name: str
    command: str
    vectors: tuple[str, ...] = ("all",)


def ngspice_path() -> str:
    """The ngspice executable, or a clear error naming how to install it."""
    exe = shutil.which("ngspice")
    if exe is None:
        raise FileNotFoundError("ngspice is not on PATH; install it (Debian: apt-get install ngspice)")
    return exe


def ngspice_available() -> bool:
    """True when an ngspice executable is on PATH."""
    return shutil.which("ngspice") is not None


def run_analyses(body: str, analyses: Sequence[Analysis], *, options: str = "", timeout_s: float = 600.0,
                 keep_dir: Optional[Path] = None, log: Optional[list] = None) -> dict[str, dict[str, np.ndarray]]:
    """Run ngspice on ``body`` (devices, models, nodesets) with the given analyses.

    Returns ``{analysis name: {vector name (lower case): values}}``; complex for AC analyses.
    ``log``: a list that receives ngspice's console output (to see e.g. whether it fell back to
    gmin stepping).
    """
    names = [a.name for a in analyses]
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"analysis names must be unique and non-empty; got {names}")
    control = ["set filetype=ascii"]
    if options:
        control.append(f"option {options}")
    for a in analyses:
        control.append(a.command)
        control.append(f"write {a.name}.raw {' '.join(a.vectors)}")
    netlist = "* neurodtco periphery\n" + body.rstrip() + "\n.control\n" + "\n".join(control) + "\nquit\n.endc\n.end\n"
    with tempfile.TemporaryDirectory(prefix="neurodtco-spice-") as tmp:
        work = Path(keep_dir) if keep_dir is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        run = run_ngspice(ngspice_path(), netlist, work, timeout_s=timeout_s, args=("-b",))
        if log is not None:
            log.append(run.output)
        results = {}
        for a in analyses:
            raw = work / f"{a.name}.raw"
            if not raw.is_file():
                raise failure(f"ngspice wrote no result for analysis {a.name!r} ({a.command}), exit code "
                              f"{run.returncode}", run)
            results[a.name] = parse_ascii_raw(raw.read_text())
        if run.returncode != 0:
            raise failure(f"ngspice exited with code {run.returncode}", run)
    return results


def parse_ascii_raw(text: str) -> dict[str, np.ndarray]:
    """Vectors of the first plot of an ASCII rawfile, keyed by lower-case name."""
    lines = text.splitlines()
    n_vars = n_points = None
    complex_values = False
    names: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        key = line.split(":", 1)[0].strip().lower()
        if key == "flags":
            complex_values = "complex" in line.lower()
        elif key == "no. variables":
            n_vars = int(line.split(":", 1)[1])
        elif key == "no. points":
            n_points = int(line.split(":", 1)[1])
        elif key == "variables":
            if n_vars is None:
                raise SpiceError("rawfile lists variables before their count")
            names = [lines[i + 1 + k].split()[1].lower() for k in range(n_vars)]
            i += n_vars
        elif key == "values":
            break
        i += 1
    if n_vars is None or n_points is None or not names:
        raise SpiceError("not an ASCII rawfile: header incomplete")
    tokens = " ".join(lines[i + 1:]).split()
    per_point = n_vars + 1  # each point starts with its index
    if len(tokens) < per_point * n_points:
        raise SpiceError(f"rawfile truncated: {len(tokens)} values for {n_points} points of {n_vars} vectors")
    table = np.array(tokens[:per_point * n_points], dtype=object).reshape(n_points, per_point)[:, 1:]
    if complex_values:
        values = np.array([[complex(*map(float, v.split(","))) for v in row] for row in table])
    else:
        values = table.astype(np.float64)
    return {name: values[:, k] for k, name in enumerate(names)}
