"""Seeds derived from names: the same parts give the same seed in every process and Python version."""

from __future__ import annotations

import hashlib
from typing import Any


def stable_seed(*parts: Any) -> int:
    """A 31-bit seed from any printable parts (SHA-256 of ``"|".join(map(str, parts))``)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF
