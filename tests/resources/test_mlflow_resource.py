"""Where the MLflow resource sends runs: explicit config first, then the environment, then the data folder."""

from pathlib import Path

import pytest

from labeling_assets.resources.mlflow import MLflowResource


def test_a_resource_with_its_own_data_folder_ignores_a_tracking_uri_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # mlflow.set_tracking_uri() exports this variable process-wide: another resource's store must not leak in.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    own = MLflowResource(data_dir=str(tmp_path))
    assert own.resolved_tracking_uri == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    assert own.resolved_artifact_location == (tmp_path / "mlflow" / "artifacts").resolve().as_uri()


def test_an_unconfigured_resource_follows_the_environment_at_run_time(monkeypatch: pytest.MonkeyPatch) -> None:
    resource = MLflowResource()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert resource.resolved_tracking_uri == "http://mlflow.example:5000"
    assert resource.resolved_artifact_location is None  # the server decides


def test_an_explicit_tracking_uri_wins_over_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    resource = MLflowResource(data_dir=str(tmp_path), tracking_uri="http://team-mlflow:5000")
    assert resource.resolved_tracking_uri == "http://team-mlflow:5000"
