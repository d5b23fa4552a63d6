"""Small HTML pieces every section of the report uses: escaped text, and a figure with its caption."""

from __future__ import annotations

import html
from typing import Any, Optional


def escape(text: Any) -> str:
    """HTML-escaped text."""
    return html.escape(str(text))


def figure_html(uri: Optional[str], alt: str, caption: str) -> str:
    """A figure with its caption, or a line saying what it needs."""
    if uri is None:
        return f'<p class="missing">Not available: {escape(alt)} needs results this store does not hold yet.</p>'
    return f'<figure><img src="{uri}" alt="{escape(alt)}"><figcaption>{caption}</figcaption></figure>'
