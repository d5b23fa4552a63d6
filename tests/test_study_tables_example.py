"""examples/study_tables.py: the study tables of docs/studies.md, read from a finished results folder."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from neurodtco.report.data import headline_numbers, load_report_data
from neurodtco.study import SerialExecutor, parse_study, run_study

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import study_tables as example  # noqa: E402


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    # a small network trained for a few epochs: the tables' form does not depend on how good it is
    data = {"name": "tiny", "engine": "ideal", "network": {"widths": [64, 8, 10], "epochs": 5},
            "defects": {"patterns": ["random"], "kinds": ["on", "off"], "arrays": [1], "severities": [0.3],
                        "instances": 2},
            "correctors": {"hidden": [4], "baselines": ["affine"], "options": {"max_iter": 20}},
            "cross_defect": {"enabled": False}}
    out = tmp_path_factory.mktemp("study") / "tiny"
    run_study(parse_study(data), out, executor=SerialExecutor())
    return out


def test_tables_rest_on_the_folder(finished):
    d = load_report_data(finished)
    findings = example.findings_table(d).splitlines()
    assert len(findings) == 2 + len(headline_numbers(d))
    assert "| Defective circuits simulated | 4 |" in "\n".join(findings)  # 1 pattern x 2 kinds x 2 instances
    by_array = example.by_array_table(d).splitlines()
    assert len(by_array) == 3 and by_array[2].startswith("| 1 |")
    # every accuracy carries an interval that contains it
    for value, low, high in re.findall(r"(\d+\.\d)% \[(\d+\.\d), (\d+\.\d)\]", by_array[2]):
        assert float(low) <= float(value) <= float(high)
    throughput = example.throughput_table(d)
    # 5 circuits (4 defective and the healthy one), each read on all 1,797 digits
    assert "| circuits; circuit-inferences | 5; 8,985 |" in throughput


def test_an_unfinished_folder_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        example.main(["--results", str(tmp_path)])
    assert "holds no study" in capsys.readouterr().err


def test_prefixed_blocks_publish_a_second_study_beside_the_first(finished, tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    names = ("findings", "by_array", "throughput")
    (docs / "studies.md").write_text("".join(f"<!-- {p}{n}:start -->\n<!-- {p}{n}:end -->\n"
                                             for p in ("", "other-") for n in names))
    import _docblocks

    monkeypatch.setattr(example, "publish", lambda page, name, body, command: _docblocks.publish(
        page, name, body, command, docs=docs))
    example.main(["--results", str(finished), "--prefix", "other-", "--write-docs"])
    blocks = _docblocks.blocks((docs / "studies.md").read_text())
    assert all(blocks[n] == "" for n in names)  # the unprefixed blocks are untouched
    assert all("--prefix other- --write-docs" in blocks["other-" + n] for n in names)
    assert "| Defective circuits simulated | 4 |" in blocks["other-findings"]


def test_page_publishes_a_study_into_another_page(finished, tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    names = ("findings", "by_array", "throughput")
    (docs / "tiling.md").write_text("".join(f"<!-- cnn-{n}:start -->\n<!-- cnn-{n}:end -->\n" for n in names))
    (docs / "studies.md").write_text("no blocks here\n")
    import _docblocks

    monkeypatch.setattr(example, "publish", lambda page, name, body, command: _docblocks.publish(
        page, name, body, command, docs=docs))
    example.main(["--results", str(finished), "--prefix", "cnn-", "--page", "tiling.md", "--write-docs"])
    blocks = _docblocks.blocks((docs / "tiling.md").read_text())
    assert all("--prefix cnn- --page tiling.md --write-docs" in blocks["cnn-" + n] for n in names)
    assert (docs / "studies.md").read_text() == "no blocks here\n"
