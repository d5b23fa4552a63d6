"""Running ngspice in batch mode, and saying in one line why a run failed.

The ngspice engine and the transistor-level periphery both run ngspice through here, so they share
one environment and one way of reporting a failure: what failed, ngspice's own reason (one line),
what to try, and the path of a file that keeps the full log and the netlist. A failing nonlinear
circuit can print thousands of warning lines; they belong in that file, not on the terminal.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

#: Words of lines that say why a run stopped, most telling first (ngspice 39's wording).
_REASONS = ("timestep too small", "singular matrix", "gmin stepping failed", "source stepping failed",
            "no convergence", "trouble with node", "unknown parameter", "error", "fatal", "aborted")
_NUMBER = re.compile(r"[-+]?\d[\d.]*(?:e[-+]?\d+)?", re.IGNORECASE)
_NETLIST = "circuit.cir"


class SpiceError(RuntimeError):
    """ngspice failed, did not converge or wrote no result; ``log_path`` keeps its full output."""

    def __init__(self, message: str, log_path: Optional[Path] = None) -> None:
        super().__init__(message)
        self.log_path = log_path


@dataclass(frozen=True)
class NgspiceRun:
    """A finished ngspice process: its exit code and its console output (stdout then stderr)."""

    returncode: int
    output: str
    netlist: str


def run_ngspice(binary: str, netlist: str, work: Path, *, timeout_s: Optional[float],
                args: Sequence[str] = ("-n", "-b")) -> NgspiceRun:
    """Write ``netlist`` into ``work`` and run ngspice on it there; a timeout is a ``SpiceError``."""
    (work / _NETLIST).write_text(netlist)
    env = dict(os.environ, LC_ALL="C")  # ngspice must print and read numbers with a '.'
    try:
        proc = subprocess.run([binary, *args, _NETLIST], cwd=work, capture_output=True, text=True,
                              timeout=timeout_s, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        run = NgspiceRun(-1, _text(exc.stdout) + "\n" + _text(exc.stderr), netlist)
        raise failure(f"ngspice did not finish within {timeout_s:g} s", run) from None
    return NgspiceRun(proc.returncode, proc.stdout + "\n" + proc.stderr, netlist)


def failure(what: str, run: NgspiceRun, hint: str = "", error: type[Exception] = SpiceError) -> Exception:
    """One line: what failed, ngspice's reason, what to try, and the file that keeps the full log."""
    log_path = keep_log(run)
    parts = [f"{what}: {reason(run.output)}"]
    repeated = _most_repeated(run.output)
    if repeated:
        parts.append(f"after {repeated[1]} messages like {repeated[0]!r}")
    if hint:
        parts.append(hint)
    message = "; ".join(parts) + f" (full ngspice log and netlist: {log_path})"
    return SpiceError(message, log_path) if error is SpiceError else error(message)


def reason(output: str) -> str:
    """The line of ngspice's output that best says why it stopped (else its last line)."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for words in _REASONS:
        telling = [ln for ln in lines if words in ln.lower()]
        if telling:
            return telling[-1]
    return lines[-1] if lines else "(no output)"


def keep_log(run: NgspiceRun) -> Path:
    """Save the netlist and ngspice's full output in the temporary folder; returns the log's path."""
    fd, name = tempfile.mkstemp(prefix="neurodtco-ngspice-", suffix=".log")
    log = Path(name)
    netlist = log.with_suffix(".cir")
    netlist.write_text(run.netlist)
    with os.fdopen(fd, "w") as f:
        f.write(f"* netlist: {netlist}\n* exit code: {run.returncode}\n{run.output}")
    return log


def _most_repeated(output: str, at_least: int = 5) -> Optional[tuple[str, int]]:
    """The most repeated error or warning (numbers aside: node names and values vary), if it repeats."""
    lines = [ln.strip() for ln in output.splitlines() if "error" in ln.lower() or "warning" in ln.lower()]
    shapes = [_NUMBER.sub("#", ln) for ln in lines]
    counts = Counter(shapes).most_common(1)
    if not counts or counts[0][1] < at_least:
        return None
    shape, n = counts[0]
    return lines[shapes.index(shape)], n


def _text(s: Optional[str | bytes]) -> str:
    if s is None:
        return ""
    return s.decode(errors="replace") if isinstance(s, bytes) else s
