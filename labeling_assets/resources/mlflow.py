"""MLflow tracking and the model registry: where training runs, metrics and model versions live.

Default: a local SQLite tracking store under the data folder (``<data>/mlflow/mlflow.db``, artifacts in
``<data>/mlflow/artifacts``), so ``dagster dev`` needs no server; set ``tracking_uri`` (for example via
``dg.EnvVar("MLFLOW_TRACKING_URI")``) to use a team server. Runs are tagged with the Dagster run id.
"""

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

DEFAULT_EXPERIMENT = "labeling-assets"
DEFAULT_MODEL_NAME = "labeling-assets-classifier"
CHECKPOINT_ARTIFACT = "checkpoint/model.pt"


@dataclass(frozen=True)
class RegisteredModel:
    """One registered model version and what is needed to use it."""

    name: str
    version: int
    run_id: str
    tags: dict[str, str]

    @property
    def label(self) -> str:
        """``name/version``: the model_version written next to predictions."""
        return f"{self.name}/{self.version}"

    def tag_float(self, key: str) -> float | None:
        value = self.tags.get(key)
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


class MLflowResource(dg.ConfigurableResource):
    """MLflow tracking server (or local store) plus the registered model name of this project."""

    data_dir: str
    tracking_uri: str | None = None  # default: sqlite:///<data_dir>/mlflow/mlflow.db
    artifact_location: str | None = None  # default: <data_dir>/mlflow/artifacts (new experiments only)
    experiment_name: str = DEFAULT_EXPERIMENT
    registered_model_name: str = DEFAULT_MODEL_NAME

    @property
    def resolved_tracking_uri(self) -> str:
        if self.tracking_uri:
            return self.tracking_uri
        folder = Path(self.data_dir) / "mlflow"
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{folder / 'mlflow.db'}"

    @property
    def resolved_artifact_location(self) -> str | None:
        if self.artifact_location:
            return self.artifact_location
        if self.tracking_uri:
            return None  # a server decides where artifacts go
        return (Path(self.data_dir) / "mlflow" / "artifacts").resolve().as_uri()

    def module(self) -> Any:
        """The ``mlflow`` module, pointed at this tracking and registry URI (fluent API for logging)."""
        # No network at run time: MLflow 3 otherwise sends usage telemetry.
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        import mlflow

        # Every call, not once: the URI is process-global in MLflow and another resource (another
        # deployment, a test) may have pointed it elsewhere since.
        mlflow.set_tracking_uri(self.resolved_tracking_uri)
        mlflow.set_registry_uri(self.resolved_tracking_uri)
        return mlflow

    def client(self) -> Any:
        """An ``mlflow.MlflowClient`` bound to this tracking/registry URI."""
        mlflow = self.module()
        return mlflow.MlflowClient(
            tracking_uri=self.resolved_tracking_uri, registry_uri=self.resolved_tracking_uri
        )

    def experiment_id(self) -> str:
        """The project's experiment, created on first use with the configured artifact location."""
        client = self.client()
        experiment = client.get_experiment_by_name(self.experiment_name)
        if experiment is not None:
            return str(experiment.experiment_id)
        return str(
            client.create_experiment(self.experiment_name, artifact_location=self.resolved_artifact_location)
        )

    @contextmanager
    def start_run(self, *, run_name: str, tags: dict[str, str] | None = None) -> Iterator[Any]:
        """An active MLflow run (fluent API) in the project's experiment."""
        mlflow = self.module()
        with mlflow.start_run(experiment_id=self.experiment_id(), run_name=run_name, tags=tags or {}) as run:
            yield run

    def run_url(self, run_id: str) -> str:
        """A link to the run: the server's page, or the tracking URI for a local store."""
        uri = self.resolved_tracking_uri
        if uri.startswith(("http://", "https://")):
            return f"{uri.rstrip('/')}/#/experiments/{self.experiment_id()}/runs/{run_id}"
        return f"{uri}#run={run_id}"

    def registered_versions(self) -> list[RegisteredModel]:
        """Every version of the registered model, newest first (empty before the first registration)."""
        client = self.client()
        try:
            found = client.search_model_versions(f"name='{self.registered_model_name}'")
        except Exception as exc:  # a registry with no such model raises on some stores
            if "RESOURCE_DOES_NOT_EXIST" in str(exc):
                return []
            raise
        versions = [
            RegisteredModel(
                name=self.registered_model_name,
                version=int(v.version),
                run_id=v.run_id,
                tags=dict(v.tags or {}),
            )
            for v in found
        ]
        return sorted(versions, key=lambda v: v.version, reverse=True)

    def latest_version(self) -> RegisteredModel | None:
        versions = self.registered_versions()
        return versions[0] if versions else None

    def set_version_tags(self, version: int, tags: dict[str, Any]) -> None:
        client = self.client()
        for key, value in tags.items():
            text = value if isinstance(value, str) else json.dumps(value)
            client.set_model_version_tag(self.registered_model_name, str(version), key, text)

    def download_checkpoint(self, model: RegisteredModel, folder: str | None = None) -> Path:
        """The torch-only checkpoint logged with the version's run (see core.train.save_checkpoint)."""
        target = folder or tempfile.mkdtemp(prefix="labeling-assets-model-")
        path = self.client().download_artifacts(model.run_id, CHECKPOINT_ARTIFACT, target)
        return Path(path)
