"""The defect vocabulary: what a defect is, how it is written in one line, and what is refused.

A ``Defect`` names a spatial pattern, the arrays it hits, the stuck state of the hit cells, and the
pattern's size, either through the pattern's own parameters or as a target density. It is only a
description; ``apply_defects`` resolves it on a concrete circuit.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Union

import numpy as np
import yaml

from ..yamlfile import load_yaml
from .patterns import DEFAULT_CENTER, max_radius

PATTERNS: tuple[str, ...] = (
    "random", "circular", "circular_complement", "ring", "row", "column", "checkerboard", "clustered",
)
KINDS: tuple[str, ...] = ("on", "off", "at", "mix")

# The pattern's own parameters (its size and position); `density` may replace the size.
PATTERN_PARAMS: dict[str, tuple[str, ...]] = {
    "random": ("p", "count"),
    "circular": ("radius", "center"),
    "circular_complement": ("radius", "center"),
    "ring": ("inner", "outer", "center"),
    "row": ("indices", "count", "fraction"),
    "column": ("indices", "count", "fraction"),
    "checkerboard": ("block", "phase", "period", "width"),
    "clustered": ("count", "correlation_cells"),
}
KIND_PARAMS: dict[str, tuple[str, ...]] = {"on": (), "off": (), "at": ("conductance_s", "resistance_ohm"),
                                           "mix": ("on_fraction",)}
KIND_ALIASES = {"stuck_on": "on", "stuck_off": "off", "stuck_at": "at", "mixed": "mix"}
# Keys every one-liner accepts besides the pattern's and the kind's own.
COMMON_KEYS: tuple[str, ...] = ("layer", "layers", "tile", "tiles", "kind", "density")
DEFAULT_CORRELATION_CELLS = 2.0

Layers = Union[str, int, tuple[int, ...]]
Tiles = Union[str, int, tuple[int, ...]]


@dataclass(frozen=True)
class Defect:
    """One stuck-at defect: a spatial ``pattern`` on ``layers``, cells stuck as ``kind``.

    ``params`` holds the pattern's parameters (see ``PATTERN_PARAMS``) and the kind's (``conductance_s``
    or ``resistance_ohm`` for ``at``, ``on_fraction`` for ``mix``). ``density`` (a fraction of the
    array's physical cells, bias row and both columns of every pair included) replaces the pattern's
    size parameter. ``layers`` is an int, a tuple of ints, or ``"all"``; layers count from 0.
    ``tiles`` picks physical arrays of each targeted layer by their index in ``layer.tiles`` (row
    block major; an untiled layer is tile 0): an int, a tuple of ints, or ``"all"``.
    """

    pattern: str
    layers: Layers = "all"
    kind: str = "on"
    params: dict = field(default_factory=dict)
    density: Optional[float] = None
    tiles: Tiles = "all"

    def __post_init__(self) -> None:
        params = dict(self.params or {})
        if "density" in params:
            if self.density is not None:
                raise ValueError("density is given twice (as the Defect field and in params); give it once")
            object.__setattr__(self, "density", params.pop("density"))
        object.__setattr__(self, "pattern", _check_pattern(self.pattern))
        object.__setattr__(self, "kind", _check_kind(self.kind))
        object.__setattr__(self, "layers", _check_indices("layer", self.layers))
        object.__setattr__(self, "tiles", _check_indices("tile", self.tiles))
        if self.density is not None:
            object.__setattr__(self, "density", _fraction("density", self.density,
                                                          "a fraction of the array's cells"))
        _check_keys(self.pattern, self.kind, params)
        object.__setattr__(self, "params", _check_params(self.pattern, self.kind, params, self.density))

    @classmethod
    def make(cls, pattern: str, layers: Layers = "all", kind: str = "on", density: Optional[float] = None,
             tiles: Tiles = "all", **params: Any) -> "Defect":
        """Keyword form: ``Defect.make("ring", layers=1, tiles=2, inner=0.2, outer=0.4)``."""
        return cls(pattern=pattern, layers=layers, kind=kind, params=params, density=density, tiles=tiles)

    def replace(self, **changes: Any) -> "Defect":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def to_string(self) -> str:
        """The one-liner that ``parse_defect`` reads back into an equal ``Defect``."""
        items: list[tuple[str, Any]] = [_selector("layer", self.layers)]
        if self.tiles != "all":  # every tile is the default: one-liners of untiled circuits stay as they were
            items.append(_selector("tile", self.tiles))
        items.append(("kind", self.kind))
        if self.density is not None:
            items.append(("density", self.density))
        items.extend(sorted(self.params.items()))
        return f"{self.pattern}:" + ",".join(f"{k}={_format_value(v)}" for k, v in items)

    def to_dict(self) -> dict[str, Any]:
        """A plain mapping (YAML/JSON friendly) that ``defect_from_dict`` reads back."""
        out: dict[str, Any] = {"pattern": self.pattern,
                               "layers": self.layers if self.layers == "all" else list(self.layers),
                               "kind": self.kind}
        if self.tiles != "all":
            out["tiles"] = list(self.tiles)
        if self.density is not None:
            out["density"] = self.density
        out.update({k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()})
        return out

    def __str__(self) -> str:
        return self.to_string()


# ----------------------------------------------------------------------------- parsing

def parse_defect(text: str) -> Defect:
    """Read ``PATTERN:key=value,...`` (e.g. ``column:layer=0,fraction=0.3,kind=off``) into a ``Defect``.

    Lists go in brackets: ``row:layers=[0,2],indices=[0,5,-1]``, ``circular:center=[0.3,0.7],radius=0.5``.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"defect {text!r} is empty: expected PATTERN:key=value,... with PATTERN one of {', '.join(PATTERNS)}")
    pattern, _, rest = text.strip().partition(":")
    values: dict[str, Any] = {"pattern": pattern.strip()}
    for item in _split_top_level(rest):
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ValueError(f"defect {text!r}: {item.strip()!r} is not key=value (write e.g. {pattern.strip()}:layer=0,density=0.1)")
        if key in values:
            raise ValueError(f"defect {text!r}: key {key!r} is given twice")
        values[key] = _parse_value(raw)
    try:
        return defect_from_dict(values)
    except ValueError as exc:
        raise ValueError(f"defect {text!r}: {exc}") from None


def defect_from_dict(spec: Mapping[str, Any]) -> Defect:
    """Build a ``Defect`` from a mapping: ``pattern``, ``layer``/``layers``, ``tile``/``tiles``, ``kind``, ``density``, parameters.

    Parameters may sit at the top level or in a nested ``params`` mapping. YAML reads a bare
    ``on``/``off`` as true/false; for ``kind`` those are taken back as ``"on"``/``"off"``.
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"a defect must be a mapping or a PATTERN:key=value string; got {type(spec).__name__}")
    values = dict(spec)
    if "pattern" not in values:
        raise ValueError(f"a defect needs a 'pattern' (one of {', '.join(PATTERNS)}); got keys {sorted(values)}")
    pattern = values.pop("pattern")
    for one, many in (("layer", "layers"), ("tile", "tiles")):
        if one in values and many in values:
            raise ValueError(f"give either {one}= or {many}=, not both")
    layers = values.pop("layer", values.pop("layers", "all"))
    tiles = values.pop("tile", values.pop("tiles", "all"))
    kind = values.pop("kind", "on")
    if isinstance(kind, bool):
        kind = "on" if kind else "off"
    density = values.pop("density", None)
    params = dict(values.pop("params", None) or {})
    for key, value in values.items():
        if key in params:
            raise ValueError(f"parameter {key!r} is given twice (top level and in params)")
        params[key] = value
    return Defect(pattern=pattern, layers=layers, kind=kind, params=params, density=density, tiles=tiles)


def as_defect(item: Union[Defect, str, Mapping[str, Any]]) -> Defect:
    """A ``Defect`` from a ``Defect``, a one-liner or a mapping."""
    if isinstance(item, Defect):
        return item
    if isinstance(item, str):
        return parse_defect(item)
    return defect_from_dict(item)


def load_defects(path: Union[str, Path]) -> list[Defect]:
    """Read a YAML (or JSON) file: a list of one-liners and/or mappings, or ``{defects: [...]}``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"defects file {str(path)!r} does not exist")
    try:
        data = load_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"defects file {str(path)!r} is not valid YAML: {exc}") from None
    if isinstance(data, Mapping) and "defects" in data:
        data = data["defects"]
    if data is None:
        return []
    if not isinstance(data, list):
        raise ValueError(f"defects file {str(path)!r} must hold a list of defects (one-liners or mappings), "
                         f"or a mapping with a 'defects' list; got {type(data).__name__}")
    out = []
    for n, item in enumerate(data):
        try:
            out.append(as_defect(item))
        except ValueError as exc:
            raise ValueError(f"defects file {str(path)!r}, entry {n}: {exc}") from None
    return out


def collect_defects(items: Iterable[Union[Defect, str, Mapping[str, Any]]] = (),
                    path: Optional[Union[str, Path]] = None) -> list[Defect]:
    """Defects from one-liners/mappings and an optional file, file entries first."""
    out = load_defects(path) if path is not None else []
    return out + [as_defect(item) for item in items]


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside brackets."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced brackets in {text!r}")
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth != 0:
        raise ValueError(f"unbalanced brackets in {text!r}")
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _parse_value(raw: str) -> Any:
    text = raw.strip()
    if text[:1] in "[(" and text[-1:] in "])":
        inner = text[1:-1].strip()
        return tuple(_parse_scalar(t) for t in inner.split(",")) if inner else ()
    return _parse_scalar(text)


def _parse_scalar(text: str) -> Any:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _selector(name: str, value: Union[str, tuple[int, ...]]) -> tuple[str, Any]:
    """``layer=1`` / ``layers=[0,2]`` / ``layers=all`` (and the same for tiles) in a one-liner."""
    if value != "all" and len(value) == 1:
        return name, value[0]
    return name + "s", value


def _format_value(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(_format_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return str(value)


# ----------------------------------------------------------------------------- validation

def _check_pattern(pattern: Any) -> str:
    if isinstance(pattern, str) and pattern.strip().lower() in PATTERNS:
        return pattern.strip().lower()
    hint = difflib.get_close_matches(str(pattern), PATTERNS, n=1)
    extra = f" (did you mean {hint[0]!r}?)" if hint else ""
    raise ValueError(f"unknown defect pattern {pattern!r}{extra}; known patterns: {', '.join(PATTERNS)}")


def _check_kind(kind: Any) -> str:
    if isinstance(kind, str):
        name = KIND_ALIASES.get(kind.strip().lower(), kind.strip().lower())
        if name in KINDS:
            return name
    raise ValueError(f"unknown defect kind {kind!r}; known kinds: on (stuck at G_max), off (stuck at G_min), "
                     "at (stuck at conductance_s= or resistance_ohm=), mix (on with probability on_fraction=, else off)")


def _check_indices(what: str, value: Any) -> Union[str, tuple[int, ...]]:
    """``"all"`` or a tuple of distinct indices >= 0 (of layers, or of the tiles of a layer)."""
    expected = f"expected a {what} index, a list of indices, or 'all'"
    if isinstance(value, str):
        if value.strip().lower() == "all":
            return "all"
        raise ValueError(f"{what}s={value!r} is not accepted: {expected}")
    items = (value,) if isinstance(value, (int, np.integer)) else value
    try:
        items = tuple(items)
    except TypeError:
        raise ValueError(f"{what}s={value!r} is not accepted: {expected}") from None
    out: list[int] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)) or item < 0:
            raise ValueError(f"{what} {item!r} is not accepted: {what}s are indices counted from 0 (or 'all')")
        if int(item) not in out:
            out.append(int(item))
    if not out:
        raise ValueError(f"{what}s is empty: name at least one {what}, or 'all'")
    return tuple(out)


def _check_keys(pattern: str, kind: str, params: Mapping[str, Any]) -> None:
    accepted = PATTERN_PARAMS[pattern] + KIND_PARAMS[kind]
    for key in params:
        if key in accepted:
            continue
        if any(key in names for names in KIND_PARAMS.values()):
            owner = next(k for k, names in KIND_PARAMS.items() if key in names)
            raise ValueError(f"key {key!r} only applies to kind={owner}, but kind={kind}")
        hint = difflib.get_close_matches(key, accepted + COMMON_KEYS, n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ValueError(f"unknown key {key!r} for pattern {pattern!r}{extra}; accepted keys: "
                         f"{', '.join(accepted + COMMON_KEYS)}")


def _check_params(pattern: str, kind: str, params: dict, density: Optional[float]) -> dict:
    p = dict(params)
    size_keys = {"random": ("p", "count"), "circular": ("radius",), "circular_complement": ("radius",),
                 "row": ("indices", "count", "fraction"), "column": ("indices", "count", "fraction"),
                 "clustered": ("count",)}
    if pattern in size_keys:
        given = [k for k in size_keys[pattern] if k in p] + (["density"] if density is not None else [])
        if len(given) != 1:
            names = ", ".join(f"{k}=" for k in size_keys[pattern] + ("density",))
            what = "got none" if not given else f"got {', '.join(given)}"
            raise ValueError(f"pattern {pattern!r} needs exactly one size: one of {names} ({what})")
    if "p" in p:
        p["p"] = _fraction("p", p["p"], "the probability that each cell is hit")
    if "fraction" in p:
        p["fraction"] = _fraction("fraction", p["fraction"], f"the fraction of the array's {pattern}s hit")
    if "count" in p:
        p["count"] = _int_at_least("count", p["count"], 0, f"the number of {'cells' if pattern in ('random', 'clustered') else pattern + 's'} hit per array")
    if "indices" in p:
        raw = p["indices"]
        items = (raw,) if isinstance(raw, (int, np.integer)) else raw
        if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
            raise ValueError(f"indices={raw!r} is not accepted: expected a list of {pattern} indices, e.g. [0,3,-1]")
        idx = tuple(items)
        for k in idx:
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
                raise ValueError(f"indices={raw!r} is not accepted: {k!r} is not an integer {pattern} index")
        p["indices"] = tuple(int(k) for k in idx)
    if "center" in p:
        p["center"] = _center(p["center"])
    center = p.get("center", DEFAULT_CENTER)
    r_max = max_radius(center)
    for key in ("radius", "inner", "outer"):
        if key in p:
            p[key] = _radius(key, p[key], center, r_max)
    if pattern == "ring":
        if density is None and not ("inner" in p and "outer" in p):
            raise ValueError("pattern 'ring' needs inner= and outer= radii, or density= (optionally with one of them)")
        if density is not None and "inner" in p and "outer" in p:
            raise ValueError("pattern 'ring' takes density= with at most one of inner=/outer=; "
                             "with both radii given the density is already fixed")
        if "inner" in p and "outer" in p and p["inner"] >= p["outer"]:
            raise ValueError(f"ring inner={p['inner']:g} must be smaller than outer={p['outer']:g} "
                             "(radii in half-sizes of the array)")
    if pattern == "checkerboard":
        if density is not None and ("period" in p or "width" in p):
            raise ValueError("pattern 'checkerboard' takes density= instead of period=/width= (density picks them)")
        p["block"] = _int_at_least("block", p.get("block", 1), 1, "the side of each square, in cells")
        if density is None:  # with a density, apply_defects picks period and width
            p["period"] = _int_at_least("period", p.get("period", 2), 1,
                                        "squares per repeat along a diagonal; 2 is the classic checkerboard")
            p["width"] = _int_at_least("width", p.get("width", 1), 0,
                                       "hit squares per period; 1 of 2 is the classic checkerboard")
        if density is None and p["width"] > p["period"]:
            raise ValueError(f"checkerboard width={p['width']} must be <= period={p['period']}")
        p["phase"] = _int_at_least("phase", p.get("phase", 0), 0, "the shift of the pattern in squares (0 or 1 for the classic checkerboard)")
    if pattern == "clustered":
        p["correlation_cells"] = _positive("correlation_cells", p.get("correlation_cells", DEFAULT_CORRELATION_CELLS),
                                           "the correlation length of the clusters in cells, e.g. 2.0")
    if kind == "at":
        given = [k for k in ("conductance_s", "resistance_ohm") if k in p]
        if len(given) != 1:
            raise ValueError("kind=at needs exactly one of conductance_s= (siemens, >= 0) or resistance_ohm= (ohms, > 0)"
                             + (f"; got {', '.join(given)}" if given else ""))
        if "conductance_s" in p:
            g = p["conductance_s"]
            if not _is_real(g) or not math.isfinite(g) or g < 0:
                raise ValueError(f"conductance_s={g!r} is not accepted: expected a finite conductance >= 0 S (e.g. 5e-5)")
            p["conductance_s"] = float(g)
        else:
            r = p["resistance_ohm"]
            if not _is_real(r) or math.isnan(r) or r <= 0:
                raise ValueError(f"resistance_ohm={r!r} is not accepted: expected a resistance > 0 ohm (inf for an open cell)")
            p["resistance_ohm"] = float(r)
    if kind == "mix":
        p["on_fraction"] = _fraction("on_fraction", p.get("on_fraction", 0.5), "the probability that a hit cell is stuck on")
    return p


def _center(value: Any) -> tuple[float, float]:
    try:
        cy, cx = value
    except (TypeError, ValueError):
        raise ValueError(f"center={value!r} is not accepted: expected [row, column] fractions in [0, 1], e.g. [0.5, 0.5]") from None
    for name, v in (("row", cy), ("column", cx)):
        if not _is_real(v) or not 0.0 <= v <= 1.0:
            raise ValueError(f"center={value!r} is not accepted: the {name} fraction {v!r} must be in [0, 1] "
                             "(0 = first row/column, 1 = last, 0.5 = middle)")
    return float(cy), float(cx)


def _radius(name: str, value: Any, center: tuple[float, float], r_max: float) -> float:
    if not _is_real(value) or not 0.0 <= value <= r_max + 1e-12:
        raise ValueError(f"{name}={value!r} is outside the array: radii are in half-sizes of the array "
                         f"(1 = from the centre to the middle of an edge) and must be in [0, {r_max:.4g}], "
                         f"the distance from center={center} to the farthest corner")
    return float(value)


def _fraction(name: str, value: Any, accepted: str) -> float:
    if not _is_real(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={value!r} is not accepted: expected a number in [0, 1] ({accepted})")
    return float(value)


def _positive(name: str, value: Any, accepted: str) -> float:
    if not _is_real(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}={value!r} is not accepted: expected a positive number ({accepted})")
    return float(value)


def _int_at_least(name: str, value: Any, low: int, accepted: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}={value!r} is not accepted: expected an integer >= {low} ({accepted})")
    return int(value)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)

