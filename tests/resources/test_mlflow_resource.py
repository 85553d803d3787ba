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


def test_an_unconfigured_resource_keeps_its_artifacts_in_the_data_folder_once_mlflow_exported_its_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The definitions' resource has no data_dir. Its first module() call exports MLFLOW_TRACKING_URI (the local
    # SQLite store); the experiment it then creates must still put artifacts under the data folder, not in
    # ./mlruns of whatever folder the process runs in (the demo wrote model and plots into the checkout so).
    data, cwd = tmp_path / "data", tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.setenv("LABELING_ASSETS_HOME", str(data))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(cwd)
    resource = MLflowResource()
    with resource.start_run(run_name="artifacts"):
        resource.log_artifact_bytes("note.txt", b"kept in the data folder")
    assert list(cwd.iterdir()) == []
    assert [p.name for p in (data / "mlflow" / "artifacts").rglob("note.txt")] == ["note.txt"]


def test_a_database_tracking_uri_in_the_environment_keeps_artifacts_in_the_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABELING_ASSETS_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'team.db'}")
    resource = MLflowResource()
    assert resource.resolved_tracking_uri == f"sqlite:///{tmp_path / 'team.db'}"
    assert resource.resolved_artifact_location == (tmp_path / "mlflow" / "artifacts").resolve().as_uri()


def test_an_explicit_tracking_uri_wins_over_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    resource = MLflowResource(data_dir=str(tmp_path), tracking_uri="http://team-mlflow:5000")
    assert resource.resolved_tracking_uri == "http://team-mlflow:5000"


def _register_versions(resource: MLflowResource, n: int) -> None:
    """``n`` registered versions of the project's model, each from its own run (no training needed)."""
    client = resource.client()
    client.create_registered_model(resource.registered_model_name)
    for k in range(n):
        with resource.start_run(run_name=f"run-{k}") as run:
            client.create_model_version(
                resource.registered_model_name,
                f"runs:/{run.info.run_id}/model",
                run.info.run_id,
                tags={"dataset_version": f"v{k + 1}"},
            )


@pytest.mark.slow
def test_the_champion_is_the_version_its_alias_points_at_and_moves_with_it(tmp_path: Path) -> None:
    resource = MLflowResource(data_dir=str(tmp_path))
    assert resource.champion() is None  # no registered model at all
    _register_versions(resource, 2)
    assert resource.champion() is None  # registered, but no champion yet
    assert resource.alias_uri() == f"models:/{resource.registered_model_name}@champion"

    resource.set_alias("champion", 1)
    champion = resource.champion()
    assert champion is not None and champion.version == 1 and champion.is_champion
    assert champion.tags["dataset_version"] == "v1"  # the retrain trigger reads this tag

    resource.set_alias("challenger", 2)
    resource.set_alias("champion", 2)  # an alias names one version: it leaves version 1
    newest, oldest = resource.registered_versions()
    assert newest.aliases == ("challenger", "champion") and oldest.aliases == ()
    resource.delete_alias("challenger")
    resource.delete_alias("challenger")  # already gone: nothing to do
    champion = resource.champion()
    assert champion is not None and champion.version == 2 and champion.aliases == ("champion",)
