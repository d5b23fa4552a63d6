"""Instance ``i`` of a defect pattern: where it sits and which seed draws it, the same for every caller.

The rule (the study runner and the correction studies both follow it, so "ring, array 1,
instance 2, seed 0" is one chip everywhere):

* the instance's seed is ``instance_seed(seed, pattern, array, instance)``, a 31-bit SHA-256 hash
  of the four, identical in every process; it draws the instance's position and is the seed
  ``apply_defects`` draws random cells with. It ignores kind and density, so the stuck-on and
  stuck-off chips of one instance (and its chips at every density) hit the same places;
* instance 0 is the pattern at its default position (centre of the array, checkerboard phase 0);
* instances after the first move: discs and rings (``CENTRED_PATTERNS``) get a centre drawn
  uniformly in the middle half of the array (``[0.25, 0.75]`` in both directions, rounded to four
  digits) with the instance's seed, so that most of the shape stays on the chip; a checkerboard
  gets ``phase = instance`` (the phases cycle through every distinct shift before repeating);
  the other patterns differ through the seed alone.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..seeds import stable_seed
from .spec import Defect

#: Patterns whose position (a centre) is a free parameter; instances after the first move it.
CENTRED_PATTERNS = ("circular", "circular_complement", "ring")


def instance_seed(seed: int, pattern: str, array: int, instance: int) -> int:
    """The seed of one instance of ``pattern`` on ``array`` (a 31-bit hash, the same in every process)."""
    return stable_seed(seed, pattern, array, instance)


def instance_params(pattern: str, instance: int, seed: int) -> dict[str, Any]:
    """The position parameters of instance ``instance`` (``seed``: its ``instance_seed``); empty for instance 0."""
    if isinstance(instance, bool) or not isinstance(instance, (int, np.integer)) or instance < 0:
        raise ValueError(f"instance={instance!r} is not accepted: expected an integer >= 0")
    if instance == 0:
        return {}
    if pattern in CENTRED_PATTERNS:
        cy, cx = (float(round(v, 4)) for v in np.random.default_rng(seed).uniform(0.25, 0.75, size=2))
        return {"center": (cy, cx)}
    if pattern == "checkerboard":
        return {"phase": int(instance)}
    return {}


def defect_instance(pattern: str, array: int, instance: int, density: float, kind: str = "on",
                    seed: int = 0, params: Optional[dict[str, Any]] = None) -> tuple[Defect, int]:
    """Instance ``instance`` of ``pattern`` on ``array`` at ``density``, and the seed to apply it with.

    ``params`` adds the pattern's or the kind's own parameters; the instance's position wins.
    """
    own_seed = instance_seed(seed, pattern, array, instance)
    merged = {**(params or {}), **instance_params(pattern, instance, own_seed)}
    defect = Defect(pattern=pattern, layers=(int(array),), kind=kind, density=float(density), params=merged)
    return defect, own_seed


__all__ = ["CENTRED_PATTERNS", "defect_instance", "instance_params", "instance_seed"]
