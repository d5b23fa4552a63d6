"""Study files: an empty or non-mapping file is refused, YAML's on/off stay text, booleans get a quoting hint."""

from __future__ import annotations

import pytest
import yaml

from neurodtco.study import StudyFileError, load_study, parse_study
from neurodtco.study.schema import read_study_yaml

NEEDS = r"a study file is a mapping of settings .*built-in study \(demo, quick.*docs/studies\.md"


@pytest.mark.parametrize("name, text", [
    ("empty.yaml", ""),
    ("comments.yaml", "# nothing here yet\n"),
    ("empty.toml", ""),
    ("braces.yaml", "{}\n"),
])
def test_an_empty_study_file_is_refused_with_what_a_study_needs(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(StudyFileError, match=rf"{name}' is empty: {NEEDS}"):
        load_study(path)


@pytest.mark.parametrize("text, kind", [("- random\n- ring\n", "list"), ("demo\n", "str"), ("3\n", "int")])
def test_a_study_file_that_is_not_a_mapping_is_refused(tmp_path, text, kind):
    path = tmp_path / "study.yaml"
    path.write_text(text)
    with pytest.raises(StudyFileError, match=rf"study\.yaml' holds a {kind} at its top level, not a mapping of keys: {NEEDS}"):
        load_study(path)


def test_bare_on_off_kinds_are_the_kinds_and_true_false_stay_booleans(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("name: onoff\n"
                    "defects: {patterns: [random, ring], kinds: [on, off], random_position: false,\n"
                    "          include_healthy: FALSE}\n"
                    "cross_defect: {enabled: true}\n")
    study = load_study(path)
    assert study.defects.kinds == ["on", "off"]
    assert study.defects.random_position is False and study.defects.include_healthy is False
    assert study.cross_defect.enabled is True
    # The same file written with quotes is the same study (same hash, so the same results folder).
    quoted = tmp_path / "quoted.yaml"
    quoted.write_text(path.read_text().replace("[on, off]", '["on", "off"]'))
    assert load_study(quoted).hash() == study.hash()


def test_the_study_reader_keeps_yes_no_on_off_as_text_and_everything_else_as_safe_load():
    text = "a: [on, off, yes, no, On, NO, y, n]\nb: [true, false, True, FALSE]\nc: [1, 2.5, .inf, null, ~, text]\n"
    data = read_study_yaml(text)
    assert data["a"] == ["on", "off", "yes", "no", "On", "NO", "y", "n"]
    assert data["b"] == [True, False, True, False]
    reference = yaml.safe_load(text)
    assert data["c"] == reference["c"] and data["b"] == reference["b"]
    assert yaml.safe_load("a: on")["a"] is True  # the standard loader is left untouched


def test_a_boolean_where_text_is_expected_says_to_quote_it():
    # What yaml.safe_load makes of `kinds: [on, off]` when a study is built in Python.
    with pytest.raises(StudyFileError) as info:
        parse_study({"name": "x", "defects": {"kinds": [True, "off"]}})
    message = str(info.value)
    assert "defects.kinds.0: True: Input should be 'on', 'off', 'at' or 'mix'; a boolean where text is expected: " \
           "put the value in quotes" in message
    assert "defects.kinds.1" not in message


def test_a_wrong_value_for_a_boolean_field_gets_no_quoting_hint():
    with pytest.raises(StudyFileError) as info:
        parse_study({"defects": {"random_position": "sometimes"}})
    assert "defects.random_position" in str(info.value) and "quotes" not in str(info.value)
