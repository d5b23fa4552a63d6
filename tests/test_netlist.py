"""Netlist writers: the SPICE and Spectre texts describe the same, correct circuit.

Spectre cannot run here, so its netlist is read back by a parser written for these tests and
(1) compared element by element with the SPICE netlist read back the same way, and (2) solved
by a small Newton/MNA solver, independent of the package, whose answer must equal ngspice's
answer on the SPICE netlist of the same circuit.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from neurodtco import netlist as nl
from neurodtco.circuit import Circuit
from neurodtco.engines import simulate
from neurodtco.mapping import MappingConfig, map_weights

# --------------------------------------------------------------------------------------------
# Readers written for the tests: text -> {name: canonical element tuple}


def _float(text: str) -> float:
    return float(text)


def read_spice(text: str) -> dict[str, tuple]:
    """Canonical elements of a SPICE netlist written by ``write_spice`` (inputs as value tuples)."""
    lines: list[str] = []
    for raw in text.splitlines():
        if raw.startswith("+"):
            lines[-1] += " " + raw[1:].strip()
        else:
            lines.append(raw.strip())
    out: dict[str, tuple] = {}
    in_control = False
    for line in lines:
        if line.startswith(".control"):
            in_control = True
        if in_control or not line or line.startswith(("*", ".")):
            in_control = in_control and not line.startswith(".endc")
            continue
        name, rest = line.split(None, 1)
        if name == nl.INDEX_SOURCE:
            continue
        kind = name[0]
        if kind == "r":
            a, b, v = rest.split()
            out[name] = ("resistor", (a, b), _float(v))
        elif kind == "v":
            a, b, dc, v = rest.split()
            assert dc == "dc"
            out[name] = ("vsource", (a, b), _float(v))
        elif kind == "e":
            a, b, c, d, g = rest.split()
            out[name] = ("vcvs", (a, b, c, d), _float(g))
        elif kind == "h":
            a, b, ctl, r = rest.split()
            out[name] = ("ccvs", (a, b), ctl, _float(r))
        elif kind == "b":
            if m := re.fullmatch(r"(\S+) (\S+) i=(\S+)\*sinh\(v\(\1,\2\)/(\S+)\)", rest):
                out[name] = ("sinh", (m[1], m[2]), _float(m[3]), _float(m[4]))
            elif m := re.fullmatch(r"(\S+) (\S+) v=max\(-(\S+),min\(\3,v\((\S+)\)\)\)", rest):
                out[name] = ("clamp", (m[1], m[2]), _float(m[3]), m[4])
            elif m := re.fullmatch(r"(\S+) (\S+) v=pwl\(v\(idx\),(.*)\)", rest):
                numbers = [_float(t) for t in re.split(r"[,\s]+", m[3].strip())]
                assert numbers[0::2] == list(range(len(numbers) // 2))
                out[name] = ("input", (m[1], m[2]), tuple(numbers[1::2]))
            else:
                raise AssertionError(f"unreadable B-source: {line}")
        else:
            raise AssertionError(f"unexpected element: {line}")
    return out


def read_spectre(text: str) -> dict[str, tuple]:
    """Canonical elements of a Spectre netlist written by ``write_spectre``."""
    lines: list[str] = []
    for raw in text.splitlines():
        if raw.startswith("+"):
            lines[-1] += " " + raw[1:].strip()
        else:
            lines.append(raw.strip())
    table_start = lines.index("inputs paramset {")
    table_end = lines.index("}", table_start)
    header = lines[table_start + 1].split()
    rows = [[_float(t) for t in line.split()] for line in lines[table_start + 2:table_end]]
    columns = {p: tuple(r[k] for r in rows) for k, p in enumerate(header)}
    assert lines[table_end + 1:table_end + 4] == ["sweepinputs sweep paramset=inputs {", "dcop dc", "}"]
    out: dict[str, tuple] = {}
    for line in lines[:table_start]:
        m = re.fullmatch(r"(\w+) \(([^)]*)\) (\w+) (.*)", line)
        if not m:
            assert line.startswith(("//", "simulator ", "global ", "parameters ", "simulatorOptions ")) or not line
            continue
        name, nodes, prim, params = m[1], tuple(m[2].split()), m[3], m[4]
        if prim == "resistor":
            out[name] = ("resistor", nodes, _float(re.fullmatch(r"r=(\S+)", params)[1]))
        elif prim == "vsource":
            value = re.fullmatch(r"type=dc dc=(\S+)", params)[1]
            if value in columns:
                out[name] = ("input", nodes, columns[value])
            else:
                out[name] = ("vsource", nodes, _float(value))
        elif prim == "vcvs":
            out[name] = ("vcvs", nodes, _float(re.fullmatch(r"gain=(\S+)", params)[1]))
        elif prim == "ccvs":
            p = re.fullmatch(r"probe=(\S+) rm=(\S+)", params)
            out[name] = ("ccvs", nodes, p[1], _float(p[2]))
        elif prim == "bsource":
            if p := re.fullmatch(r"i=(\S+)\*sinh\(v\((\S+),(\S+)\)/(\S+)\)", params):
                assert (p[2], p[3]) == nodes
                out[name] = ("sinh", nodes, _float(p[1]), _float(p[4]))
            elif p := re.fullmatch(r"v=max\(-(\S+),min\(\1,v\((\S+)\)\)\)", params):
                out[name] = ("clamp", nodes, _float(p[1]), p[2])
            else:
                raise AssertionError(f"unreadable bsource: {line}")
        else:
            raise AssertionError(f"unexpected primitive: {line}")
    return out


# --------------------------------------------------------------------------------------------
# An independent Newton/MNA solve of canonical elements


def solve_elements(elements: dict[str, tuple], point: int, iterations: int = 60) -> dict[str, float]:
    """Node voltages of the canonical circuit at sweep point ``point`` (dense MNA, Newton)."""
    nodes = sorted({n for e in elements.values() for n in e[1]} - {"0"})
    index = {n: k for k, n in enumerate(nodes)}
    branch_names = [name for name, e in elements.items() if e[0] in ("vsource", "input", "vcvs", "ccvs", "clamp")]
    branch = {name: len(nodes) + k for k, name in enumerate(branch_names)}
    size = len(nodes) + len(branch_names)
    x = np.zeros(size)

    def v(node: str) -> float:
        return 0.0 if node == "0" else x[index[node]]

    def add(jac: np.ndarray, row: int | None, node: str, value: float) -> None:
        if row is not None and node != "0":
            jac[row, index[node]] += value

    for _ in range(iterations):
        f = np.zeros(size)
        jac = np.zeros((size, size))
        for name, e in elements.items():
            kind, pins = e[0], e[1]
            if kind in ("resistor", "sinh"):
                a, b = pins
                dv = v(a) - v(b)
                if kind == "resistor":
                    i, g = dv / e[2], 1.0 / e[2]
                else:
                    i, g = e[2] * np.sinh(dv / e[3]), e[2] / e[3] * np.cosh(dv / e[3])
                for node, sign in ((a, 1.0), (b, -1.0)):
                    if node != "0":
                        f[index[node]] += sign * i
                        add(jac, index[node], a, sign * g)
                        add(jac, index[node], b, -sign * g)
                continue
            p, n = pins[0], pins[1]
            k = branch[name]
            for node, sign in ((p, 1.0), (n, -1.0)):
                if node != "0":
                    f[index[node]] += sign * x[k]
                    jac[index[node], k] += sign
            f[k] = v(p) - v(n)
            add(jac, k, p, 1.0)
            add(jac, k, n, -1.0)
            if kind == "vsource":
                f[k] -= e[2]
            elif kind == "input":
                f[k] -= e[2][point]
            elif kind == "vcvs":
                f[k] -= e[2] * (v(pins[2]) - v(pins[3]))
                add(jac, k, pins[2], -e[2])
                add(jac, k, pins[3], e[2])
            elif kind == "ccvs":
                f[k] -= e[3] * x[branch[e[2]]]
                jac[k, branch[e[2]]] -= e[3]
            elif kind == "clamp":
                c = v(e[3])
                f[k] -= min(e[2], max(-e[2], c))
                if abs(c) < e[2]:
                    add(jac, k, e[3], -1.0)
        step = np.linalg.solve(jac, -f)
        x += step
        if np.max(np.abs(step)) < 1e-15:
            break
    return {n: x[index[n]] for n in nodes}


# --------------------------------------------------------------------------------------------


def small_circuit(cell: str, gain: float = 1e3, wire_ohm: float = 2.0, seed: int = 0) -> Circuit:
    """A 5-3-2 network with random weights, wires, finite gain, an offset and clamps on every layer."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0, 1.2, (3, 5)), rng.normal(0, 1.2, (2, 3))]
    biases = [rng.normal(0, 0.3, 3), rng.normal(0, 0.3, 2)]
    config = MappingConfig(cell=cell, r_word_ohm=wire_ohm, r_bit_ohm=1.5 * wire_ohm, open_loop_gain=gain,
                           offset_v=1e-3, output_swing_v=0.03)
    return map_weights(weights, biases, config)


def small_inputs(n: int = 3, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 0.2, (n, 5))


@pytest.mark.parametrize("cell", ["linear", "gap"])
@pytest.mark.parametrize("gain", [1e3, np.inf])
def test_spectre_and_spice_netlists_hold_the_same_elements(cell, gain):
    circuit = small_circuit(cell, gain)
    x = small_inputs()
    spice = read_spice(nl.write_spice(circuit, x))
    spectre_text = nl.write_spectre(circuit, x)
    spectre = read_spectre(spectre_text)
    assert spice == spectre
    # Spectre's own syntax: no SPICE '+' continuation lines, no SPICE dot commands
    assert not any(line.startswith(("+", ".")) for line in spectre_text.splitlines())
    # and both are exactly the element list the writers start from
    assert set(spice) == {e.name for e in nl.circuit_elements(circuit)}


def test_element_counts_follow_the_circuit_conventions():
    circuit = small_circuit("linear", 1e3)
    elements = read_spice(nl.write_spice(circuit, small_inputs()))
    for l, layer in enumerate(circuit.layers):
        cells = layer.n_rows * layer.n_columns
        word = [n for n in elements if re.fullmatch(rf"rw{l}_\d+_\d+", n)]
        bit = [n for n in elements if re.fullmatch(rf"rb{l}_\d+_\d+", n)]
        assert len(word) == len(bit) == cells  # R*C segments on each kind of line
        assert elements[f"rw{l}_0_0"][1] == (f"s{l}_0", f"w{l}_0_0")  # driver end, column 0 side
        last = layer.n_rows - 1
        assert elements[f"rb{l}_{last}_1"][1] == (f"b{l}_{last}_1", f"n{l}_1")  # bottom end into the neuron
        assert elements[f"vs{l}_{last}"] == ("vsource", (f"bias{l}", f"s{l}_{last}"), 0.0)
        assert elements[f"vbias{l}"][2] == layer.bias_voltage_v
    # the second array is driven by the first array's activations
    assert elements["vs1_2"][1] == ("a0_2", "s1_2")


def test_open_cells_and_zero_ohm_wires_are_exact():
    circuit = small_circuit("linear", np.inf, wire_ohm=0.0)
    g = circuit.layers[0].conductance.copy()
    g[1, 2] = 0.0
    circuit = circuit.replace_layer(0, conductance=g)
    elements = read_spice(nl.write_spice(circuit, small_inputs()))
    assert "rc0_1_2" not in elements and "rc0_1_1" in elements
    assert elements["vw0_1_2"] == ("vsource", ("w0_1_1", "w0_1_2"), 0.0)  # a short, not a tiny resistor
    assert not any(n.startswith(("rw", "rb")) for n in elements)


@pytest.mark.parametrize("cell", ["linear", "gap"])
@pytest.mark.parametrize("gain", [1e3, np.inf])
def test_spectre_netlist_solved_independently_equals_ngspice(cell, gain):
    circuit = small_circuit(cell, gain)
    x = small_inputs()
    elements = read_spectre(nl.write_spectre(circuit, x))
    ngspice = simulate(circuit, x, engine="ngspice", return_hidden=True, return_nodes=True)
    saturated = 0
    for point in range(len(x)):
        volts = solve_elements(elements, point)
        out = [volts[nl.activation_node(1, k)] for k in range(2)]
        hidden = [volts[nl.activation_node(0, k)] for k in range(3)]
        np.testing.assert_allclose(out, ngspice.outputs_v[point], rtol=0, atol=1e-9)
        np.testing.assert_allclose(hidden, ngspice.hidden_v[0][point], rtol=0, atol=1e-9)
        word = [[volts[nl.word_node(0, i, j)] for j in range(6)] for i in range(6)]
        np.testing.assert_allclose(word, ngspice.nodes[0]["word"][point], rtol=0, atol=1e-9)
        saturated += sum(abs(h) >= circuit.layers[0].neuron.saturation_v - 1e-12 for h in hidden)
    assert saturated > 0  # the clamp was exercised


def test_a_wrong_node_in_the_spectre_text_is_caught():
    circuit = small_circuit("linear", 1e3)
    x = small_inputs()
    text = nl.write_spectre(circuit, x)
    broken = text.replace("rw0_2_3 (w0_2_2 w0_2_3)", "rw0_2_3 (w0_2_2 w0_3_3)")
    assert broken != text
    good, bad = read_spectre(text), read_spectre(broken)
    assert good != bad
    assert read_spice(nl.write_spice(circuit, x)) != bad
    v_good, v_bad = solve_elements(good, 0), solve_elements(bad, 0)
    assert abs(v_good["a1_0"] - v_bad["a1_0"]) > 1e-6


def test_write_netlist_files_and_bad_input(tmp_path):
    circuit = small_circuit("gap", 1e3)
    x = small_inputs(1)
    spice = nl.write_netlist(circuit, x, tmp_path / "c.cir", "spice")
    assert "write c.raw" in spice.read_text()
    # one vector: the pwl still has two points, both the same value
    assert read_spice(spice.read_text())["bx0"][2] == (x[0, 0], x[0, 0])
    spectre = nl.write_netlist(circuit, x, tmp_path / "c.scs", "spectre")
    assert read_spectre(spectre.read_text())["bx4"][2] == (x[0, 4],)
    with pytest.raises(ValueError, match="'verilog'"):
        nl.write_netlist(circuit, x, tmp_path / "c.v", "verilog")
    with pytest.raises(ValueError, match="no input vector"):
        nl.write_spice(circuit, np.zeros((0, 5)))
    with pytest.raises(ValueError, match="shape"):
        nl.write_spectre(circuit, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="non-finite"):
        nl.write_spice(circuit, np.full((1, 5), np.nan))
    with pytest.raises(ValueError, match="reltol"):
        nl.write_spice(circuit, x, reltol=0.0)
