"""The shipped ExportConfig and the validation of variables."""

from __future__ import annotations

import json
from datetime import date

import pytest

from exporthub.errors import InvalidVariable
from exporthub.export_config import ConfigError, VarType, load_config, parse_config, validate_variables
from exporthub.settings import get_settings

EIGHT = {"backup", "publish", "scans", "users", "zones", "sessions", "cost", "statistics"}


@pytest.fixture
def config():
    return load_config(get_settings().export_config_path)


def test_shipped_config_has_the_eight_types_in_their_groups(config):
    assert set(config) >= EIGHT
    groups = {t: d.group for t, d in config.items()}
    assert groups["backup"] == groups["publish"] == "System"
    assert {groups[t] for t in ("scans", "users", "zones", "sessions")} == {"Data Exports"}
    assert groups["cost"] == groups["statistics"] == "Financial Reports"
    assert [t for t in EIGHT if not config[t].allow_when_project_not_closed] == ["publish"]


def test_defaults_are_filled_in(config):
    values = validate_variables(config["scans"], {}, dynamic_options={"zones": ["A", "B"]})
    assert values["format"] == "csv" and values["dateRange"] == "all"
    assert values["zones"] == [] and values["includeDeleted"] is False


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"format": "docx"}, "format"),
        ({"includeDeleted": "maybe"}, "includeDeleted"),
        ({"dateRange": "custom", "dateFrom": "2026-13-01", "dateTo": "2026-01-01"}, "dateFrom"),
        ({"dateRange": "custom", "dateFrom": "2026-02-01", "dateTo": "2026-01-01"}, "dateTo"),
        ({"dateRange": "custom", "dateFrom": "2026-02-01"}, "dateTo"),
        ({"zones": ["A", "Z"]}, "zones"),
        ({"surprise": 1}, "surprise"),
        ({"format": ["csv"]}, "format"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(config, raw, key):
    with pytest.raises(InvalidVariable) as err:
        validate_variables(config["scans"], raw, dynamic_options={"zones": ["A", "B"]})
    assert err.value.key == key and f"'{key}'" in str(err.value)


def test_cli_strings_are_parsed_like_typed_values(config):
    values = validate_variables(
        config["scans"],
        {"includeDeleted": "true", "zones": "B,A", "dateRange": "custom", "dateFrom": "2026-01-01",
         "dateTo": date(2026, 1, 31)},
        dynamic_options={"zones": ["A", "B"]},
    )
    assert values["includeDeleted"] is True and values["zones"] == ["A", "B"]
    assert (values["dateFrom"], values["dateTo"]) == ("2026-01-01", "2026-01-31")


def test_number_range_and_type_inference():
    definitions = parse_config({
        "t": {"title": "T", "group": "G", "exportVariables": [
            {"key": "n", "title": "N", "value": 5, "min": 1, "max": 10},
            {"key": "flag", "value": True},
            {"key": "when", "value": "2026-01-01"},
            {"key": "name", "value": "x"},
        ]},
    })
    t = definitions["t"]
    assert [v.type for v in t.variables] == [VarType.NUMBER, VarType.BOOLEAN, VarType.DATE, VarType.STRING]
    assert validate_variables(t, {"n": "7"})["n"] == 7
    for bad in ("11", "0", "nan", True, "seven"):
        with pytest.raises(InvalidVariable, match="'n'"):
            validate_variables(t, {"n": bad})


def test_override_by_path_and_malformed_config(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"scans": {"title": "Only scans", "group": "Data Exports", "exportVariables": []}}))
    assert load_config(path)["scans"].title == "Only scans"
    path.write_text("{not json")
    with pytest.raises(ConfigError):
        load_config(path)
    with pytest.raises(ConfigError, match="missing group"):
        parse_config({"x": {"title": "X"}})
