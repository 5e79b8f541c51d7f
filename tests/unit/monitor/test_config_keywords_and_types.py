"""MonitoringConfig and NotificationConfig: a typo in a keyword is named with the closest
field; a value of the wrong type is refused naming the field, never kept."""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from pathlib import Path
from typing import Any, Union

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_botmon.monitor import MonitoringConfig
from otel_botmon.notify import NotificationConfig

CONFIGS = (MonitoringConfig, NotificationConfig)


def _field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.init]


@st.composite
def typos(draw: st.DrawFn, cls: type) -> tuple[str, str]:
    """A field name with one character deleted, doubled, swapped or replaced."""
    name = draw(st.sampled_from(_field_names(cls)))
    i = draw(st.integers(0, len(name) - 1))
    edit = draw(st.sampled_from(["delete", "double", "swap", "replace"]))
    if edit == "delete":
        typo = name[:i] + name[i + 1:]
    elif edit == "double":
        typo = name[:i] + name[i] + name[i:]
    elif edit == "swap" and i + 1 < len(name):
        typo = name[:i] + name[i + 1] + name[i] + name[i + 2:]
    else:
        typo = name[:i] + draw(st.sampled_from("aeiourstx")) + name[i + 1:]
    return name, typo


@pytest.mark.parametrize("cls", CONFIGS)
@given(data=st.data())
def test_a_keyword_typo_is_named_with_the_closest_field(cls: type, data: st.DataObject) -> None:
    field, typo = data.draw(typos(cls))
    if typo in _field_names(cls):
        return  # the edit made another real field
    with pytest.raises(TypeError) as info:
        cls(**{typo: "value-that-must-not-show"})
    message = str(info.value)
    assert f"{cls.__name__}() got an unknown keyword {typo!r}" in message
    suggested = message.split("did you mean '", 1)[1].split("'", 1)[0]
    assert suggested in _field_names(cls)
    ratio = difflib.SequenceMatcher(None, typo, suggested).ratio()
    assert ratio >= difflib.SequenceMatcher(None, typo, field).ratio()
    assert "value-that-must-not-show" not in message


def test_the_seed_example_typo_and_a_secrets_typo() -> None:
    with pytest.raises(TypeError, match=r"'smtp_sever' \(did you mean 'smtp_server'\?\)"):
        NotificationConfig(smtp_sever="smtp.example.com")
    with pytest.raises(TypeError, match="did you mean 'smtp_password'") as info:
        NotificationConfig(smtp_pasword="app-password-123")
    assert "app-password-123" not in str(info.value)
    with pytest.raises(TypeError, match="'nothing_like_a_field'; known: health_check_interval"):
        MonitoringConfig(nothing_like_a_field=1)


def _conforms(value: object, hint: Any) -> bool:
    """Whether ``value`` is of the annotated type ``hint`` (bool is not a number here)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(_conforms(value, a) for a in args)
    if origin is list:
        return isinstance(value, list) and all(_conforms(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            _conforms(k, args[0]) and _conforms(v, args[1]) for k, v in value.items())
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, localns={"NotificationConfig": NotificationConfig})


ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 70000), st.floats(allow_nan=True),
    st.text(max_size=8), st.sampled_from(["a@b.c", "https://h.example/x", "slack", "critical"]),
    st.binary(max_size=4), st.lists(st.sampled_from(["a@b.c", 1, None, "email"]), max_size=2),
    st.dictionaries(st.sampled_from(["slack", "critical", "x"]),
                    st.one_of(st.floats(0.1, 5), st.lists(st.sampled_from(["slack", "y"]))),
                    max_size=2),
    st.builds(Path, st.sampled_from(["alerts.db", "x/y.log"])), st.builds(object),
)


@pytest.mark.parametrize("cls", CONFIGS)
@given(data=st.data())
def test_every_field_refuses_a_wrong_type_naming_it_or_holds_its_declared_type(
    cls: type, data: st.DataObject,
) -> None:
    name = data.draw(st.sampled_from(_field_names(cls)))
    value = data.draw(ANY_VALUE)
    try:
        config = cls(**{name: value})
    except ValueError as exc:
        assert cls.__name__ in str(exc) and name in str(exc), (name, value, exc)
        return
    assert _conforms(getattr(config, name), _hints(cls)[name]), (name, value)


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"alert_store_path": 5}, "alert_store_path"),
    ({"alert_store_path": ""}, "alert_store_path"),
    ({"notification_config": {"email_to": ["a@b.c"]}}, "notification_config"),
    ({"default_alert_rules": "no"}, "default_alert_rules"),
    ({"default_health_checks": 0}, "default_health_checks"),
    ({"service_name": 5}, "service_name"),
])
def test_monitoring_config_names_the_wrongly_typed_field(
    kwargs: dict[str, object], named: str,
) -> None:
    with pytest.raises(ValueError, match=f"MonitoringConfig.{named} must be"):
        MonitoringConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"email_to": None}, "email_to"), ({"webhook_urls": 5}, "webhook_urls"),
    ({"rate_limits": None}, "rate_limits"), ({"severity_channels": "slack"}, "severity_channels"),
    ({"severity_channels": {"critical": "slack"}}, "severity_channels"),
    ({"smtp_port": True}, "smtp_port"), ({"storm_threshold": True}, "storm_threshold"),
])
def test_notification_config_names_the_wrongly_typed_container(
    kwargs: dict[str, object], named: str,
) -> None:
    with pytest.raises(ValueError, match=f"NotificationConfig.{named}"):
        NotificationConfig(**kwargs)  # type: ignore[arg-type]


def test_a_path_is_a_store_file_name() -> None:
    config = MonitoringConfig(alert_store_path=Path("alerts.db"))  # type: ignore[arg-type]
    assert config.alert_store_path == os.fspath(Path("alerts.db"))
