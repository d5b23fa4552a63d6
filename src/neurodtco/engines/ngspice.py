"""The ngspice engine: write the netlist, run Debian's ngspice 39 in batch mode, read the rawfile.

It is the reference the nodal engine is checked against, so it aims at exactness, not speed:
tight tolerances (see ``netlist.DEFAULT_RELTOL``), one ``.dc`` sweep per chunk of input vectors
(ngspice orders its sparse matrix once per run, and that ordering dominates the cost), and an
ASCII rawfile with 16 significant digits. Tiled layers are written tile by tile (see
``netlist``); circuits with convolution, pooling or residual stages are refused (use ``nodal``).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .. import netlist as nl
from ..circuit import Circuit
from ..ngspice_run import failure, run_ngspice
from .base import SimulationResult
from .forward import refuse_reports

#: The rawfile name every netlist run by this engine must write (relative to its working directory).
RAWFILE = "out.raw"
_NETLIST = "circuit.cir"


class NgspiceEngine:
    """Runs the whole circuit in ngspice (subprocess, ASCII rawfile); same results as ``nodal``."""

    name = "ngspice"

    def __init__(
        self,
        executable: str = "ngspice",
        chunk_size: int = 250,
        reltol: float = nl.DEFAULT_RELTOL,
        vntol_v: float = nl.DEFAULT_VNTOL_V,
        abstol_a: float = nl.DEFAULT_ABSTOL_A,
        timeout_s: Optional[float] = None,
        keep_dir: Optional[str | Path] = None,
        jobs: int = 1,
    ) -> None:
        if not isinstance(jobs, int) or jobs < 1:
            raise ValueError(f"jobs={jobs!r} is not accepted: expected an integer >= 1 (ngspice processes at once)")
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size={chunk_size!r} is not accepted: expected an integer >= 1 (input vectors per ngspice run)")
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"timeout_s={timeout_s!r} is not accepted: expected seconds > 0, or None for no limit")
        self.executable = executable
        self.chunk_size = chunk_size
        self.reltol = reltol
        self.vntol_v = vntol_v
        self.abstol_a = abstol_a
        self.timeout_s = timeout_s
        self.keep_dir = Path(keep_dir) if keep_dir is not None else None
        self.jobs = jobs

    def run(self, circuit: Circuit, inputs_v: np.ndarray, *, return_hidden: bool = False,
            return_nodes: bool = False, return_power: bool = False) -> SimulationResult:
        """Simulate ``inputs_v`` ``[batch, n_inputs]`` through the whole circuit in ngspice."""
        x = circuit.check_inputs(inputs_v)
        nl.check_chain(circuit)
        if return_nodes or return_power:
            refuse_reports(circuit, self.name)
        binary = self._binary()
        vectors = nl.node_vectors(circuit, hidden=return_hidden, nodes=return_nodes, power=return_power)
        columns: dict[str, list[np.ndarray]] = {name: [] for name in vectors}
        start = time.perf_counter()
        chunks = [x[first:first + self.chunk_size] for first in range(0, len(x), self.chunk_size)]

        def solve(k: int) -> dict[str, np.ndarray]:
            text = nl.write_spice(circuit, chunks[k], save=vectors, rawfile=RAWFILE, reltol=self.reltol,
                                  vntol_v=self.vntol_v, abstol_a=self.abstol_a)
            return self.run_netlist(text, len(chunks[k]), vectors, tag=f"chunk{k}", binary=binary, hint=hint)

        hint = _hint(circuit)

        if self.jobs > 1 and len(chunks) > 1:
            # Each ngspice process is single-threaded: separate chunks can use separate cores.
            with ThreadPoolExecutor(max_workers=self.jobs) as pool:
                solved = list(pool.map(solve, range(len(chunks))))
        else:
            solved = [solve(k) for k in range(len(chunks))]
        n_runs = len(chunks)
        for values in solved:
            for name in vectors:
                columns[name].append(values[name])
        elapsed = time.perf_counter() - start

        def vec(name: str) -> np.ndarray:
            return np.concatenate(columns[name]) if columns[name] else np.zeros(0)

        def stack(names: list[str]) -> np.ndarray:
            return np.stack([vec(n) for n in names], axis=1) if names else np.zeros((len(x), 0))

        hidden, nodes = [], []
        power = np.zeros(len(x))
        outputs = None
        for l, layer in enumerate(circuit.layers):
            last = l == circuit.n_layers - 1
            acts = None
            if last or return_hidden or return_power:
                acts = stack([f"v({nl.activation_node(l, k)})" for k in range(layer.n_outputs)])
            if last:
                outputs = acts
            elif return_hidden:
                hidden.append(acts)
            if return_nodes:
                rows, cols = layer.n_rows, layer.n_columns
                word = np.stack([stack([f"v({nl.word_node(l, i, j)})" for j in range(cols)]) for i in range(rows)], axis=1)
                bit = np.stack([stack([f"v({nl.bit_node(l, i, j)})" for j in range(cols)]) for i in range(rows)], axis=1)
                nodes.append({
                    "word": word,
                    "bit": bit,
                    "neuron_in": stack([f"v({nl.neuron_in_node(l, j)})" for j in range(cols)]),
                    "tia_out": stack([f"v({nl.tia_out_node(l, j)})" for j in range(cols)]),
                    "difference_out": stack([f"v({nl.difference_node(l, k)})" for k in range(layer.n_outputs)]),
                })
            if return_power:
                drivers = nl.row_drivers(l, layer)
                v_rows = stack([f"v({start})" for _, _, start, _ in drivers])
                i_rows = stack([f"i({meter})" for _, _, _, meter in drivers])
                power += np.sum(v_rows * i_rows, axis=1)
        info = {"ngspice_s": elapsed, "ngspice_runs": n_runs, "chunk_size": self.chunk_size,
                "per_image_s": elapsed / max(len(x), 1), "reltol": self.reltol, "jobs": self.jobs}
        return SimulationResult(outputs_v=outputs, engine=self.name, hidden_v=hidden if return_hidden else None,
                                nodes=nodes if return_nodes else None, power_w=power if return_power else None,
                                info=info)

    def _binary(self) -> str:
        found = shutil.which(self.executable)
        if found is None:
            raise RuntimeError(
                f"ngspice executable {self.executable!r} was not found on PATH; install it "
                "(Debian/Ubuntu: apt-get install ngspice, or `make system-tools`) or pass executable=<path>"
            )
        return found

    def run_netlist(self, text: str, n_points: int, vectors: Sequence[str] = (), *, tag: str = "run",
                    binary: Optional[str] = None, hint: str = "") -> dict[str, np.ndarray]:
        """Run one netlist that sweeps ``n_points`` DC points and writes ``out.raw``; returns its vectors.

        Raises ``SpiceError`` (a ``RuntimeError``) when ngspice fails or stops before the last point,
        and ``ValueError`` when its rawfile cannot be read or lacks one of ``vectors``. Both say in one
        line ngspice's own reason and ``hint``, and name the file that keeps its full output.
        """
        binary = binary or self._binary()
        with tempfile.TemporaryDirectory(prefix="neurodtco-ngspice-") as tmp:
            work = Path(tmp)
            # -n: no user .spiceinit, whose settings (e.g. ngbehavior=hsa) would change how the netlist reads.
            run = run_ngspice(binary, text, work, timeout_s=self.timeout_s)
            if self.keep_dir is not None:
                self.keep_dir.mkdir(parents=True, exist_ok=True)
                for name in (_NETLIST, RAWFILE):
                    if (work / name).exists():
                        shutil.copy(work / name, self.keep_dir / f"{tag}_{name}")
            if run.returncode != 0:
                raise failure(f"ngspice exited with code {run.returncode}", run, hint)
            raw = work / RAWFILE
            if not raw.exists():
                raise failure("ngspice wrote no results (the simulation did not run or did not converge)", run, hint)
            try:
                data = read_rawfile(raw.read_text())
            except ValueError as exc:
                raise failure(f"cannot read ngspice's rawfile ({exc})", run, error=ValueError) from None
        sweep = data.get("v(v-sweep)")
        if sweep is None or len(sweep) != n_points or not np.array_equal(sweep, np.arange(n_points, dtype=float)):
            got = 0 if sweep is None else len(sweep)
            raise failure(f"ngspice solved {got} of {n_points} input vectors (the sweep stopped early)", run, hint)
        missing = [v for v in vectors if v not in data]
        if missing:
            raise failure(f"ngspice's rawfile lacks {len(missing)} saved vectors, e.g. {missing[:3]}", run,
                          error=ValueError)
        return data


def read_rawfile(text: str) -> dict[str, np.ndarray]:
    """Parse an ngspice ASCII rawfile (one real plot) into ``{vector name: values}``."""
    header, sep, body = text.partition("\nValues:\n")
    if not sep:
        raise ValueError("no 'Values:' section (is it a binary or an empty rawfile?)")
    fields: dict[str, str] = {}
    names: list[str] = []
    in_vars = False
    for line in header.splitlines():
        if in_vars:
            parts = line.split()
            if len(parts) >= 2 and parts[0].isdigit():
                names.append(parts[1].lower())
                continue
            in_vars = False
        key, colon, value = line.partition(":")
        if colon:
            fields[key.strip().lower()] = value.strip()
            if key.strip().lower() == "variables":
                in_vars = True
    try:
        n_vars = int(fields["no. variables"])
        n_points = int(fields["no. points"])
    except (KeyError, ValueError):
        raise ValueError("header lacks 'No. Variables' or 'No. Points'") from None
    if "complex" in fields.get("flags", "").lower():
        raise ValueError("complex data: expected a real DC sweep")
    if len(names) != n_vars:
        raise ValueError(f"header lists {len(names)} variables but says {n_vars}")
    tokens = body.split()
    per_point = n_vars + 1  # the point index precedes each point's values
    if len(tokens) < n_points * per_point:
        # A run cut short leaves a header that promises more points than the body holds.
        n_points = len(tokens) // per_point
    try:
        values = np.array(tokens[:n_points * per_point], dtype=np.float64).reshape(n_points, per_point)
    except ValueError as exc:
        raise ValueError(f"non-numeric value in the data section ({exc})") from None
    return {name: values[:, k + 1].copy() for k, name in enumerate(names)}



def _hint(circuit: Circuit) -> str:
    """What to try when ngspice fails on this circuit."""
    if not circuit.cell.is_linear:
        # The gap model's sinh grows so fast that large read voltages leave ngspice without a solution.
        return "nonlinear cells may not converge at this read voltage: try a lower read voltage, or linear cells"
    return "check the netlist in the log"
