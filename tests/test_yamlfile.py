"""The package's YAML reading: YAML 1.2 booleans, so on/off/yes/no stay words."""

from __future__ import annotations

import yaml

from neurodtco.defects import load_defects
from neurodtco.yamlfile import load_yaml


def test_only_true_and_false_are_booleans():
    text = "kinds: [on, off, yes, no, On, OFF]\nflag: true\nother: False\nn: 3\nx: 0.5\nnothing: null\n"
    assert yaml.safe_load(text)["kinds"] == [True, False, True, False, True, False]  # what YAML 1.1 does
    data = load_yaml(text)
    assert data["kinds"] == ["on", "off", "yes", "no", "On", "OFF"]
    assert data["flag"] is True and data["other"] is False
    assert data["n"] == 3 and data["x"] == 0.5 and data["nothing"] is None


def test_the_plain_safe_loader_is_left_as_it_was():
    load_yaml("a: on")
    assert yaml.safe_load("a: on") == {"a": True}


def test_a_defects_file_reads_bare_on_as_the_stuck_on_kind(tmp_path):
    path = tmp_path / "defects.yaml"
    path.write_text("- {pattern: random, layer: 1, kind: on, p: 0.1}\n")
    assert load_defects(path)[0].kind == "on"
