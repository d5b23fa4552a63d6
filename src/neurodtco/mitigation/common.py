"""Small shared helpers: circuit accuracy through an engine, seeds; ``drop_crossing`` is ``stats.first_crossing``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..circuit import Circuit
from ..data import Dataset, to_voltages
from ..engines import get_engine
from ..stats import first_crossing

#: the level where an accuracy curve first drops below a threshold (the name mitigation code imports)
drop_crossing = first_crossing


def resolve_engine(engine: Any) -> Any:
    """An engine instance from a name or an instance."""
    return get_engine(engine) if isinstance(engine, str) else engine


def circuit_accuracy(circuit: Circuit, dataset: Dataset, engine: Any = "ideal", split: str = "test",
                     return_power: bool = False, per_image: bool = False) -> Any:
    """Accuracy of ``circuit`` simulated by ``engine`` on the test (or train) images.

    With ``return_power`` it returns ``(accuracy, mean array power in W)``: the power drawn from the
    row drivers of every array, averaged over the images (the engines' ``power_w``). With
    ``per_image`` the accuracy is replaced by the boolean correctness of each image (for
    intervals and paired comparisons); its mean is the accuracy.
    """
    if split not in ("test", "train"):
        raise ValueError(f"split={split!r} is not accepted: choose 'test' or 'train'")
    x, y = (dataset.x_test, dataset.y_test) if split == "test" else (dataset.x_train, dataset.y_train)
    result = resolve_engine(engine).run(circuit, to_voltages(x, circuit.input_scale_v), return_power=return_power)
    acc = result.predictions() == np.asarray(y) if per_image else result.accuracy(y)
    if return_power:
        return acc, float(np.mean(result.power_w))
    return acc


def check_seed(seed: Any) -> int:
    """Refuse a seed that is not a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} is not accepted: expected an integer >= 0")
    return int(seed)
