"""Tables in docs/ equal the stored outputs of the scripts that made them."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import _docblocks as docblocks  # noqa: E402


def test_publish_splices_and_check_catches_drift(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("intro\n<!-- t:start -->\nold\n<!-- t:end -->\nafter\n")
    docblocks.publish("page.md", "t", "| a |\n|---|\n| 1 |", "python make.py", docs=tmp_path)
    text = page.read_text()
    assert "Made by `python make.py`" in text and "| 1 |" in text and "old" not in text
    assert text.startswith("intro\n") and text.endswith("after\n")
    assert docblocks.check(tmp_path) == []
    page.write_text(text.replace("| 1 |", "| 2 |"))  # someone edits the number by hand
    assert any("differs" in p for p in docblocks.check(tmp_path))
    page.write_text("no blocks left\n")
    assert any("shown in no page" in p for p in docblocks.check(tmp_path))


def test_a_quote_in_the_readme_follows_its_block(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "page.md").write_text("<!-- t:start -->\n<!-- t:end -->\n")
    readme = tmp_path / "README.md"
    readme.write_text("headline\n<!-- page.t:start -->\nstale\n<!-- page.t:end -->\n")
    docblocks.publish("page.md", "t", "| 1 |", "python make.py", docs=docs)
    assert "| 1 |" in readme.read_text() and "stale" not in readme.read_text()
    assert docblocks.check(docs) == []
    readme.write_text(readme.read_text().replace("| 1 |", "| 2 |"))  # a hand edit of the quote
    assert any("README.md" in p and "differs" in p for p in docblocks.check(docs))


def test_publish_needs_the_markers(tmp_path):
    (tmp_path / "page.md").write_text("no markers\n")
    with pytest.raises(KeyError, match="add the lines"):
        docblocks.publish("page.md", "t", "x", "cmd", docs=tmp_path)


def test_every_published_table_in_docs_equals_its_stored_copy():
    # A table edited by hand, or a script rerun without publishing, shows up here; `make reproduce` refreshes all.
    assert docblocks.check() == []


def test_command_line_names_the_script_from_the_root_and_quotes_its_arguments():
    script = docblocks.ROOT / "bench" / "engine.py"
    assert docblocks.command_line(str(script), ["--write-docs"]) == "python bench/engine.py --write-docs"
    assert docblocks.command_line(str(script), ["--defect", "row:p=0.1, kind=on"]) == \
        "python bench/engine.py --defect 'row:p=0.1, kind=on'"
