"""The circuit options every command shares, declared once, and errors that name the flags.

With ``@with_options`` a command's ``circuit: CircuitOptions = CircuitOptions()`` parameter becomes the
``--cell``, ``--r-on``, ... options (``CircuitOptions(gain=1e4)``: another default gain), and the command
gets one validated ``CircuitOptions``.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, Literal, Optional

from ..mapping import MappingConfig, layer_neuron
from .options import OptionGroup

#: The MappingConfig field each flag sets (the wire resistance sets both line segments).
FLAG_OF_FIELD = {"cell": "--cell", "r_on_ohm": "--r-on", "r_off_ohm": "--r-off", "v_read_v": "--v-read",
                 "r_word_ohm": "--wire-ohm", "r_bit_ohm": "--wire-ohm", "open_loop_gain": "--gain",
                 "layout": "--layout", "pair_encoding": "--encoding", "tile_rows": "--tile", "tile_cols": "--tile",
                 "tile_combine": "--tile-combine"}
_FIELD = re.compile(r"\b(" + "|".join(FLAG_OF_FIELD) + r")\b")


@dataclass(frozen=True)
class CircuitOptions(OptionGroup):
    """The circuit the command-line options describe; invalid values are refused by flag name."""

    OPTIONS = (
        ("cell", Literal["linear", "gap"], "--cell", "Cell model: linear or gap (I0 exp(-g/g0) sinh(V/V0))."),
        ("r_on_ohm", float, "--r-on", "On-state resistance (ohm)."),
        ("r_off_ohm", float, "--r-off", "Off-state resistance (ohm)."),
        ("v_read_v", float, "--v-read", "Read voltage: a pixel of 1 drives this many volts."),
        ("wire_ohm", float, "--wire-ohm", "Resistance of one word-line or bit-line segment (ohm)."),
        ("gain", float, "--gain", "Op-amp open-loop gain (V/V); inf for ideal."),
        ("layout", Literal["interleaved", "split"], "--layout", "Differential pair columns: interleaved or split."),
        ("encoding", Literal["low", "balanced"], "--encoding",
         "Pair encoding: low (one cell of each pair at G_min) or balanced (both around mid-window)."),
        ("tile", str, "--tile", "Cut every layer into tiles of at most this size: 64 (64 x 64) or 128x64 "
         "(rows x columns); default one array per layer."),
        ("tile_combine", Literal["shared", "summing"], "--tile-combine",
         "How row tiles join: shared (one neuron input per column) or summing (a TIA per tile, then a summer)."),
    )

    cell: str = "linear"
    r_on_ohm: float = 10e3
    r_off_ohm: float = 1e6
    v_read_v: float = 0.2
    wire_ohm: float = 1.0
    gain: float = math.inf
    layout: str = "interleaved"
    encoding: str = "low"
    tile: str = ""
    tile_combine: str = "shared"

    def __post_init__(self) -> None:
        self.config  # noqa: B018 - validate now, before the command loads anything

    @cached_property
    def config(self) -> MappingConfig:
        """The mapping settings these options describe."""
        try:
            config = MappingConfig(cell=self.cell, r_on_ohm=self.r_on_ohm, r_off_ohm=self.r_off_ohm,  # type: ignore[arg-type]
                                   v_read_v=self.v_read_v, r_word_ohm=self.wire_ohm, r_bit_ohm=self.wire_ohm,
                                   layout=self.layout, open_loop_gain=self.gain,  # type: ignore[arg-type]
                                   pair_encoding=self.encoding, tile_rows=self.tile_shape[0],  # type: ignore[arg-type]
                                   tile_cols=self.tile_shape[1], tile_combine=self.tile_combine)  # type: ignore[arg-type]
            # The op-amp settings are checked when a layer is mapped: check them now, by their flag.
            layer_neuron(config, 1.0, config.v_read_v, last=True)
        except ValueError as exc:
            raise ValueError(_FIELD.sub(lambda m: FLAG_OF_FIELD[m.group(1)], str(exc))) from None
        return config

    @property
    def tile_shape(self) -> tuple[Optional[int], Optional[int]]:
        """``--tile 64`` (64 x 64) or ``--tile 128x64`` (rows x columns); empty: one array per layer."""
        text = self.tile.strip().lower()
        if not text:
            return None, None
        parts = text.split("x")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            values = []
        if len(values) not in (1, 2):
            raise ValueError(f"--tile {self.tile!r} is not accepted: expected a size such as 64 (64 x 64 cells) or "
                             "128x64 (rows x columns)")
        return (values[0], values[-1])

    def to_dict(self) -> dict[str, Any]:
        """The options as JSON keys."""
        return asdict(self)
