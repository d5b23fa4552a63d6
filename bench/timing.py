"""What every benchmark here times with (scripts in this folder import it as ``timing``)."""

from __future__ import annotations

import time
from typing import Callable


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Shortest wall time of ``repeats`` calls (the machine is shared: the minimum is the signal)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def duration(value: float) -> str:
    """A time in seconds, milliseconds or microseconds, whichever gives it two or three significant digits."""
    unit, scale = next(((u, k) for u, k in (("s", 1.0), ("ms", 1e-3)) if value >= k), ("us", 1e-6))
    return f"{value / scale:.3g} {unit}"
