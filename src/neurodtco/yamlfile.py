"""YAML as this package's files mean it: only ``true``/``false`` are booleans (as in YAML 1.2).

PyYAML follows YAML 1.1, where a bare ``on``, ``off``, ``yes`` or ``no`` is a boolean, so
``kinds: [on, off]`` or ``kind: on`` would silently become ``True``/``False``. Study files and
defect files are read with this loader instead.
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class _Loader(yaml.SafeLoader):
    """A SafeLoader whose boolean resolver matches true/false only."""


_BOOL_TAG = "tag:yaml.org,2002:bool"
# New lists, not the SafeLoader's own: add_implicit_resolver copies the dict but shares the lists.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def load_yaml(text: str) -> Any:
    """Parse YAML like ``yaml.safe_load``, except that on/off/yes/no stay strings."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
