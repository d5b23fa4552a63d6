"""The study report: one self-contained HTML file built from the results store alone.

``data`` loads the store into frames and computes the tables and headline numbers, ``figures``
draws them (PNG data URIs), ``html`` assembles the page; ``build_report`` and ``write_report`` are
the entry points.
"""

from .html import build_report, write_report

__all__ = ["build_report", "write_report"]
