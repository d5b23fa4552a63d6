"""The transistor-level neuron: a two-stage Miller op-amp in FreePDK45 and the stages built on it.

Supply and reference: one 1.0 V supply split as ``vdd_v = +0.5 V`` and ``vss_v = -0.5 V`` around
the circuit's ground, so the ground is mid-rail. That keeps every convention of ``circuit.py``
unchanged: word lines are driven relative to ground, the transimpedance stage holds its column
at (nearly) 0 V, and hidden activations swing symmetrically to both signs.

Topology (classic two-stage Miller op-amp)::

    M8  PMOS_VTG  diode, fed by the bias current: sets vb for the tail and the output source
    M5  PMOS_VTG  tail current source (vb)
    M1/M2 PMOS_VTL  input pair, bulk tied to its common source (no body effect), low-Vt
                    devices in weak inversion so the input common-mode range reaches around
                    the mid-rail ground at a 1 V supply
    M3/M4 NMOS_VTG  current-mirror load (first-stage output x2 at the drain of M4)
    M6  NMOS_VTG  common-source second stage (gate x2)
    M7  PMOS_VTG  second-stage current source (vb)
    Cc + Rz       Miller compensation with a nulling resistor (x2 -> out)

A PMOS input pair keeps the pair's drains near ``vss + V_GS(M3)`` so the input stays saturated
for common-mode voltages down to about -0.25 V and, with the pair in weak inversion and a
wide tail, up to about +0.2 V. ``M6``/``M4`` share a length and ``W6/W4 = 2 W7/W5`` so that the
first-stage output sits at the mirror's gate voltage at balance (no systematic offset to first
order). The second stage carries ~0.4 mA so that the output clamps at its devices' saturation
voltages (not at the load's current) when it drives a word line of the next array (the
default network's heaviest row is 0.59 mS).

The neuron (one per output of a layer) is two transimpedance stages (feedback resistor
``R_f``, non-inverting input at ground) and a difference stage (input resistors ``R1``, feedback
and ground resistors ``r R1``) whose own output swing is the saturating activation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from .._validate import check_positive

OPAMP_PORTS = ("inp", "inn", "out", "vdd", "vss")
INTERNAL_NODES = ("vb", "tail", "x1", "x2", "z")


@dataclass(frozen=True)
class OpAmpDesign:
    """Sizes (m), bias (A), compensation and supply of the two-stage Miller op-amp."""

    vdd_v: float = 0.5
    vss_v: float = -0.5
    bias_current_a: float = 10e-6
    w_bias_m: float = 8e-6
    l_bias_m: float = 1e-6
    w_tail_m: float = 16e-6
    l_tail_m: float = 1e-6
    w_input_m: float = 64e-6
    l_input_m: float = 1e-6
    w_load_m: float = 12e-6
    l_load_m: float = 1e-6
    w_stage2_m: float = 150e-6
    l_stage2_m: float = 0.2e-6
    w_source_m: float = 240e-6
    l_source_m: float = 0.5e-6
    c_comp_f: float = 1e-12
    r_zero_ohm: float = 1e3
    input_model: str = "PMOS_VTL"
    resistance_networks: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.vdd_v) and math.isfinite(self.vss_v) and self.vdd_v > self.vss_v):
            raise ValueError(f"vdd_v={self.vdd_v!r} must be above vss_v={self.vss_v!r} (default +0.5 and -0.5 V)")
        if not (self.vss_v < 0.0 < self.vdd_v):
            raise ValueError(f"the ground must lie between the rails: got vss_v={self.vss_v} V, vdd_v={self.vdd_v} V")
        for f in fields(self):
            if f.name.startswith(("w_", "l_")):
                value = getattr(self, f.name)
                check_positive(f.name, value, "metres, e.g. 1e-6")
                if f.name.startswith("l_") and value < 45e-9:
                    raise ValueError(f"{f.name}={value!r} is below the 45 nm minimum length")
        check_positive("bias_current_a", self.bias_current_a, "amperes, e.g. 10e-6")
        check_positive("c_comp_f", self.c_comp_f, "farads, e.g. 1e-12")
        check_positive("r_zero_ohm", self.r_zero_ohm, "ohms, e.g. 1e3")
        if self.input_model not in ("PMOS_VTL", "PMOS_VTG", "PMOS_VTH"):
            raise ValueError(f"input_model={self.input_model!r} is not accepted: choose PMOS_VTL, PMOS_VTG or PMOS_VTH")

    @property
    def supply_v(self) -> float:
        """Total supply voltage (V)."""
        return self.vdd_v - self.vss_v

    @property
    def n_transistors(self) -> int:
        """Transistors per op-amp."""
        return 8

    def to_dict(self) -> dict:
        """Plain dictionary (for the characterization file)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "OpAmpDesign":
        """Inverse of ``to_dict``; unknown keys are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown op-amp design keys {unknown}; known: {sorted(known)}")
        return cls(**data)


@dataclass(frozen=True)
class NeuronDesign:
    """The op-amp plus the neuron's own resistors: difference-stage ratio and input resistor."""

    opamp: OpAmpDesign = OpAmpDesign()
    difference_gain: float = 16.0
    r_difference_in_ohm: float = 20e3

    def __post_init__(self) -> None:
        check_positive("difference_gain", self.difference_gain, "a resistor ratio, e.g. 16")
        check_positive("r_difference_in_ohm", self.r_difference_in_ohm, "ohms, e.g. 20e3")

    def to_dict(self) -> dict:
        """Plain dictionary (for the characterization file)."""
        return {"opamp": self.opamp.to_dict(), "difference_gain": self.difference_gain,
                "r_difference_in_ohm": self.r_difference_in_ohm}

    @classmethod
    def from_dict(cls, data: dict) -> "NeuronDesign":
        """Inverse of ``to_dict``."""
        return cls(opamp=OpAmpDesign.from_dict(data["opamp"]), difference_gain=float(data["difference_gain"]),
                   r_difference_in_ohm=float(data["r_difference_in_ohm"]))


def _m(value: float) -> str:
    return f"{value:.6g}"


def opamp_subckt(design: OpAmpDesign, name: str = "opamp") -> str:
    """The op-amp as a SPICE subcircuit with ports ``inp inn out vdd vss``."""
    d = design
    # The cards enable BSIM4's gate and body resistance networks (rgatemod/rbodymod = 1). At DC
    # they carry only leakage currents, yet each adds internal nodes to every device, which
    # doubles the solve time of a whole network: off unless asked for.
    extra = "" if d.resistance_networks else " rgatemod=0 rbodymod=0"
    lines = [
        f".subckt {name} inp inn out vdd vss",
        f"ib vb vss dc {_m(d.bias_current_a)}",
        f"m8 vb vb vdd vdd PMOS_VTG w={_m(d.w_bias_m)} l={_m(d.l_bias_m)}{extra}",
        f"m5 tail vb vdd vdd PMOS_VTG w={_m(d.w_tail_m)} l={_m(d.l_tail_m)}{extra}",
        f"m1 x1 inn tail tail {d.input_model} w={_m(d.w_input_m)} l={_m(d.l_input_m)}{extra}",
        f"m2 x2 inp tail tail {d.input_model} w={_m(d.w_input_m)} l={_m(d.l_input_m)}{extra}",
        f"m3 x1 x1 vss vss NMOS_VTG w={_m(d.w_load_m)} l={_m(d.l_load_m)}{extra}",
        f"m4 x2 x1 vss vss NMOS_VTG w={_m(d.w_load_m)} l={_m(d.l_load_m)}{extra}",
        f"m6 out x2 vss vss NMOS_VTG w={_m(d.w_stage2_m)} l={_m(d.l_stage2_m)}{extra}",
        f"m7 out vb vdd vdd PMOS_VTG w={_m(d.w_source_m)} l={_m(d.l_source_m)}{extra}",
        f"cc x2 z {_m(d.c_comp_f)}",
        f"rz z out {_m(d.r_zero_ohm)}",
        f".ends {name}",
    ]
    return "\n".join(lines) + "\n"


def neuron_subckt(design: NeuronDesign, feedback_resistance_ohm: float, name: str, opamp_name: str = "opamp",
                  row_tiles: int = 1) -> str:
    """One neuron: a transimpedance stage per column input and the difference/activation stage.

    Ports ``cp cm out vdd vss``: ``cp``/``cm`` are the plus/minus column inputs (the op-amps'
    inverting inputs), ``out`` the activation output. Internal nodes: ``tp``/``tm`` (TIA outputs),
    ``dn``/``dp`` (difference-stage inputs). With ``row_tiles`` > 1 (tiles that sum) each column
    has one input per row tile, ports ``cp0 .. cpK-1 cm0 .. cmK-1 out vdd vss``, each with its own
    TIA (``tp0``.., ``tm0``..), and the difference stage adds them: every TIA output enters it
    through its own ``R1`` and the ``R2`` feedback and ground resistors stay, so
    ``out = (R2 / R1) (sum tm - sum tp)`` for any number of inputs.
    """
    check_positive("feedback_resistance_ohm", feedback_resistance_ohm, "ohms")
    if isinstance(row_tiles, bool) or not isinstance(row_tiles, int) or row_tiles < 1:
        raise ValueError(f"row_tiles={row_tiles!r} is not accepted: expected an integer >= 1")
    r1 = design.r_difference_in_ohm
    r2 = design.difference_gain * r1
    tags = [""] if row_tiles == 1 else [str(r) for r in range(row_tiles)]
    ports = [f"cp{t}" for t in tags] + [f"cm{t}" for t in tags]
    lines = [f".subckt {name} {' '.join(ports)} out vdd vss"]
    for t in tags:
        lines += [f"xtp{t} 0 cp{t} tp{t} vdd vss {opamp_name}", f"rfp{t} tp{t} cp{t} {_m(feedback_resistance_ohm)}",
                  f"xtm{t} 0 cm{t} tm{t} vdd vss {opamp_name}", f"rfm{t} tm{t} cm{t} {_m(feedback_resistance_ohm)}"]
    # d = r (t_minus - t_plus): t_minus drives the non-inverting side.
    lines += [f"r1n{t} tp{t} dn {_m(r1)}" for t in tags]
    lines.append(f"r2n dn out {_m(r2)}")
    lines += [f"r1p{t} tm{t} dp {_m(r1)}" for t in tags]
    lines += [f"r2p dp 0 {_m(r2)}", f"xd dp dn out vdd vss {opamp_name}", f".ends {name}"]
    return "\n".join(lines) + "\n"


def supply_lines(design: OpAmpDesign) -> str:
    """Sources of the split supply (nodes ``vdd`` and ``vss``)."""
    return f"vdd vdd 0 {_m(design.vdd_v)}\nvss vss 0 {_m(design.vss_v)}\n"
