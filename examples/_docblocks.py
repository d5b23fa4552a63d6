"""Tables in docs/ come from scripts: each is a marked block whose stored copy lives in docs/results/.

A page marks a table as ``<!-- NAME:start -->`` ... ``<!-- NAME:end -->``. The script that makes it
calls ``publish(page, NAME, body, command)``: the block (the command's line, then the table) is
written to ``docs/results/PAGE.NAME.md`` and spliced into the page. ``check()`` lists every block
that differs from its stored copy and every stored copy without a block, so prose cannot drift
from what the scripts printed (``tests/test_docs_tables.py`` runs it).

Another page (README.md, or a page of docs/) may *quote* a block: ``<!-- PAGE_STEM.NAME:start -->``
(e.g. ``defects.stuck-at-balanced``) shows the stored copy of block NAME of docs/PAGE_STEM.md;
``publish`` refreshes every quote with the block, and ``check`` holds quotes to the same copy.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RESULTS = DOCS / "results"
_BLOCK = re.compile(r"<!-- ([\w.-]+):start -->\n(.*?)<!-- \1:end -->", re.S)


def command_line(script: str, argv: Optional[Sequence[str]] = None) -> str:
    """The command that ran ``script`` (pass ``__file__``) with ``argv`` (default: this process's), as a block names it."""
    path = Path(script).resolve()
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return shlex.join(["python", str(shown), *(sys.argv[1:] if argv is None else argv)])


def blocks(text: str) -> dict[str, str]:
    """The marked blocks of a page, by name."""
    return {m.group(1): m.group(2) for m in _BLOCK.finditer(text)}


def render(body: str, command: str) -> str:
    """A block as stored and shown: the command that made it, then the body."""
    return f"Made by `{command}`:\n\n{body.strip()}\n"


def stored_path(page: str, name: str, results: Path = RESULTS) -> Path:
    """Where the stored copy of block ``name`` of ``page`` (e.g. ``mitigation.md``) lives; a quote names its own."""
    return results / (f"{name}.md" if "." in name else f"{Path(page).stem}.{name}.md")


def pages(docs: Path = DOCS) -> list[Path]:
    """The pages that hold or quote blocks: docs/*.md and the README.md beside docs/."""
    readme = docs.parent / "README.md"
    return sorted(docs.glob("*.md")) + ([readme] if readme.is_file() else [])


def splice(text: str, name: str, block: str) -> str:
    """``text`` with the body of block ``name`` replaced by ``block``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text or end not in text:
        raise KeyError(f"no block {name!r}: add the lines {start} and {end} around the table first")
    a, b = text.index(start) + len(start), text.index(end)
    return text[:a] + "\n" + block + text[b:]


def publish(page: str, name: str, body: str, command: str, docs: Path = DOCS) -> None:
    """Store the block ``name`` of ``docs/page`` and splice it into the page."""
    block = render(body, command)
    path = docs / page
    target = stored_path(page, name, docs / "results")
    target.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(splice(path.read_text(), name, block))
    target.write_text(block)
    quote = f"{Path(page).stem}.{name}"
    for other in pages(docs):
        if quote in blocks(other.read_text()):
            other.write_text(splice(other.read_text(), quote, block))


def check(docs: Path = DOCS) -> list[str]:
    """Every disagreement between the pages' blocks and their stored copies (empty when all agree)."""
    problems, seen = [], set()
    for page in pages(docs):
        for name, body in blocks(page.read_text()).items():
            stored = stored_path(page.name, name, docs / "results")
            seen.add(stored.name)
            if not stored.exists():
                problems.append(f"{page.name}: block {name!r} has no stored copy {stored.relative_to(docs)}")
            elif stored.read_text() != body:
                problems.append(f"{page.name}: block {name!r} differs from {stored.relative_to(docs)}; rerun its command")
    for stored in sorted((docs / "results").glob("*.md")):
        if stored.name not in seen:
            problems.append(f"{stored.relative_to(docs)} is shown in no page")
    return problems
