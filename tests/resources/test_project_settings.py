"""ProjectSettings: the task type comes from the resource config, else $LABELING_ASSETS_TASK_TYPE, else single-label."""

import pytest

from labeling_assets.core.errors import ConfigurationError
from labeling_assets.resources.project import ProjectSettings


def test_the_task_type_is_single_label_unless_the_environment_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LABELING_ASSETS_TASK_TYPE", raising=False)
    assert ProjectSettings().task_type == "single_label"
    monkeypatch.setenv("LABELING_ASSETS_TASK_TYPE", "multi-label")  # as the demo's flag spells it
    assert ProjectSettings().task_type == "multi_label"


def test_explicit_config_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABELING_ASSETS_TASK_TYPE", "multi_label")
    assert ProjectSettings(task_type="single_label").task_type == "single_label"


def test_an_unknown_task_type_in_the_environment_is_an_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LABELING_ASSETS_TASK_TYPE", "multiclass")
    with pytest.raises(ConfigurationError, match="LABELING_ASSETS_TASK_TYPE='multiclass'"):
        ProjectSettings()


def test_overlapping_spans_are_forbidden_unless_the_config_or_the_environment_allows_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LABELING_ASSETS_ALLOW_OVERLAPPING_SPANS", raising=False)
    assert ProjectSettings().allow_overlapping_spans is False
    monkeypatch.setenv("LABELING_ASSETS_ALLOW_OVERLAPPING_SPANS", "true")
    assert ProjectSettings().allow_overlapping_spans is True
    assert ProjectSettings(allow_overlapping_spans=False).allow_overlapping_spans is False
    monkeypatch.setenv("LABELING_ASSETS_ALLOW_OVERLAPPING_SPANS", "sometimes")
    with pytest.raises(ConfigurationError, match="LABELING_ASSETS_ALLOW_OVERLAPPING_SPANS='sometimes'"):
        ProjectSettings()


def test_the_allocation_comes_from_the_config_else_the_environment_else_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABELING_ASSETS_ALLOCATION", raising=False)
    assert ProjectSettings().allocation == "rules"
    monkeypatch.setenv("LABELING_ASSETS_ALLOCATION", "allocator")
    assert ProjectSettings().allocation == "allocator"
    assert ProjectSettings(allocation="rules").allocation == "rules"
    monkeypatch.setenv("LABELING_ASSETS_ALLOCATION", "greedy")
    with pytest.raises(ConfigurationError, match="LABELING_ASSETS_ALLOCATION='greedy'"):
        ProjectSettings()
