"""MLflow tracking and the model registry: where training runs, metrics and model versions live.

Default: a local SQLite tracking store under the data folder (``<data>/mlflow/mlflow.db``, artifacts in
``<data>/mlflow/artifacts``), so ``dagster dev`` needs no server; set ``tracking_uri`` (for example via
``dg.EnvVar("MLFLOW_TRACKING_URI")``) to use a team server. Runs are tagged with the Dagster run id.
"""

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

import dagster as dg
import requests
from pydantic import PrivateAttr

from labeling_assets import env
from labeling_assets.core.errors import connection_reason, display_url
from labeling_assets.resources.errors import ServiceFailure

if TYPE_CHECKING:  # torch loads only when a model is saved or loaded, not with the definitions
    from labeling_assets.core.training.config import TrainConfig
    from labeling_assets.core.training.loop import FitResult

DEFAULT_EXPERIMENT = "labeling-assets"
DEFAULT_MODEL_NAME = "labeling-assets-classifier"
CHECKPOINT_ARTIFACT = "checkpoint/model.pt"
# Registry aliases: prelabels and evaluation use the champion; a model that lost to it is the challenger.
CHAMPION_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"


@dataclass(frozen=True)
class RegisteredModel:
    """One registered model version and what is needed to use it."""

    name: str
    version: int
    run_id: str
    tags: dict[str, str]
    aliases: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``name/version``: the model_version written next to predictions."""
        return f"{self.name}/{self.version}"

    @property
    def is_champion(self) -> bool:
        return CHAMPION_ALIAS in self.aliases

    def tag_float(self, key: str) -> float | None:
        value = self.tags.get(key)
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


# A registered version's tag naming its task kind (every version of a trainer kind has it; a classifier's checkpoint
# says its kind itself).
TASK_TYPE_TAG = "task_type"


@dataclass(frozen=True)
class LoadedModel:
    """A registered version rebuilt from its torch-only checkpoint, on the CPU in eval mode: the image classifier
    (``config`` its training settings) or the model of a kind with its own trainer (``model`` a ``FittedModel``,
    ``config`` None)."""

    registered: RegisteredModel
    model: Any  # core.training.models.Classifier, or a trainer kind's FittedModel
    config: "TrainConfig | None"
    classes: list[str]
    thresholds: list[float] | None = None  # multi-label: per-class decision thresholds chosen on val
    task_kind: str = "single_label"

    def predict(self, uris: list[str], *, device: str = "auto") -> tuple[Any, list[int]]:
        """(the model's ``probs`` per file: class probabilities (n, K), or a trainer kind's other outputs as a 1-d
        object array, None where a file failed (``kind.model_outputs``); the indices of the files that failed)."""
        if self.config is None:  # a kind's own model: its trainer predicts
            from dataclasses import replace

            from labeling_assets.core.tasks import task_kind
            from labeling_assets.core.tasks.kind import model_outputs

            trainer = task_kind(self.task_kind).trainer
            assert trainer is not None
            outputs, failed = trainer.predict(replace(self.model, device=device), uris)
            return model_outputs(outputs, self.classes), failed
        from labeling_assets.core.training.predict import (
            predict_files,  # torch: loaded by the runs that predict
        )

        return predict_files(
            self.model,
            uris,
            image_size=self.config.image_size,
            channels=self.config.channels,
            num_classes=len(self.classes),
            device=device,
            task_kind=self.task_kind,  # its head's probabilities (multi-label: per-class sigmoids)
        )


class MLflowResource(dg.ConfigurableResource["MLflowResource"]):  # the resource is its own value
    """MLflow tracking server (or local store) plus the registered model name of this project."""

    # Unset fields are resolved when a run uses the resource, never at import (labeling_assets.env).
    data_dir: str | None = None  # default: $LABELING_ASSETS_HOME or <repo>/data
    # default: $MLFLOW_TRACKING_URI when data_dir is unset too, else sqlite:///<data_dir>/mlflow/mlflow.db
    tracking_uri: str | None = None
    artifact_location: str | None = None  # default: <data_dir>/mlflow/artifacts (new experiments only)
    experiment_name: str = DEFAULT_EXPERIMENT
    registered_model_name: str = DEFAULT_MODEL_NAME

    def _server_uri(self) -> str | None:
        if self.tracking_uri or self.data_dir:
            # Explicit config wins over the environment. mlflow.set_tracking_uri() exports
            # MLFLOW_TRACKING_URI process-wide, so reading it here would send this resource's runs to
            # whichever store another resource in the same process used last.
            return self.tracking_uri
        return env.mlflow_tracking_uri()

    def _local_folder(self) -> Path:
        return (Path(self.data_dir) if self.data_dir else env.data_dir()) / "mlflow"

    @property
    def resolved_tracking_uri(self) -> str:
        server = self._server_uri()
        if server:
            return server
        folder = self._local_folder()
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{folder / 'mlflow.db'}"

    @property
    def resolved_artifact_location(self) -> str | None:
        if self.artifact_location:
            return self.artifact_location
        if (self._server_uri() or "").startswith(("http://", "https://")):
            return None  # a tracking server decides where artifacts go
        # A database store (the local SQLite one, whose URI mlflow.set_tracking_uri has exported, or a URI from
        # the environment) has no server to decide: MLflow would put them in ./mlruns of the working folder.
        return (self._local_folder() / "artifacts").resolve().as_uri()

    _reachable: bool = PrivateAttr(default=False)

    def check(self) -> str:
        """A tracking server must answer before MLflow's client is used: that client retries an unreachable
        server with backoff for minutes and then fails with a long trace. Raises ServiceFailure (a
        ``dg.Failure``: the run fails with this one line); returns the URI without credentials."""
        uri = self.resolved_tracking_uri
        if self._reachable or not uri.startswith(("http://", "https://")):
            return display_url(uri)
        try:
            requests.get(f"{uri.rstrip('/')}/health", timeout=10)  # any HTTP answer: a server is there
        except requests.RequestException as exc:
            raise ServiceFailure(
                f"MLflow tracking server at {display_url(uri)} is unreachable ({connection_reason(exc)}): "
                "start it or fix MLFLOW_TRACKING_URI"
            ) from exc
        self._reachable = True
        return display_url(uri)

    def _client_uri(self) -> str:
        """The URI MLflow's client is given: a server's without its credentials.

        MLflow prints its tracking URI ("View run ... at: http://user:PASSWORD@host/...", on stdout, so into
        Dagster's compute logs) and puts it in error messages; a password in the URI would go with it. The
        user and password go to MLflow's own basic-auth variables instead, which it reads on each request.
        """
        uri = self.resolved_tracking_uri
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or "@" not in parts.netloc:
            return uri  # a database URI: its driver needs the password, and MLflow prints no link for it
        env.use_mlflow_credentials(unquote(parts.username or ""), unquote(parts.password or ""))
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))

    def module(self) -> Any:
        """The ``mlflow`` module, pointed at this tracking and registry URI (fluent API for logging)."""
        self.check()
        env.disable_mlflow_telemetry()  # no network at run time: MLflow 3 otherwise sends usage telemetry
        import mlflow

        # Every call, not once: the URI is process-global in MLflow and another resource (another
        # deployment, a test) may have pointed it elsewhere since.
        uri = self._client_uri()
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        return mlflow

    def client(self) -> Any:
        """An ``mlflow.MlflowClient`` bound to this tracking/registry URI."""
        mlflow = self.module()
        uri = self._client_uri()
        return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)

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
        """A link to the run: the server's page, or the tracking URI for a local store (never its password:
        the link lands in asset metadata)."""
        uri = display_url(self.resolved_tracking_uri)
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
        if not found:
            return []
        # Search results carry no aliases on every store; the registered model lists them all.
        aliases: dict[int, list[str]] = {}
        for alias, number in (client.get_registered_model(self.registered_model_name).aliases or {}).items():
            aliases.setdefault(int(number), []).append(str(alias))
        versions = [self._registered(v, aliases.get(int(v.version), [])) for v in found]
        return sorted(versions, key=lambda v: v.version, reverse=True)

    def _registered(self, version: Any, aliases: list[str] | None = None) -> RegisteredModel:
        return RegisteredModel(
            name=self.registered_model_name,
            version=int(version.version),
            run_id=version.run_id,
            tags=dict(version.tags or {}),
            aliases=tuple(sorted((version.aliases or ()) if aliases is None else aliases)),
        )

    def latest_version(self) -> RegisteredModel | None:
        versions = self.registered_versions()
        return versions[0] if versions else None

    def alias_uri(self, alias: str = CHAMPION_ALIAS) -> str:
        """``models:/<name>@<alias>``: the registry URI that follows the alias as it moves."""
        return f"models:/{self.registered_model_name}@{alias}"

    def version_by_alias(self, alias: str) -> RegisteredModel | None:
        """The version ``alias`` points at (with its tags and aliases), or None when it points nowhere."""
        try:
            found = self.client().get_model_version_by_alias(self.registered_model_name, alias)
        except Exception as exc:  # no such model, or no such alias
            if getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise
        return self._registered(found)

    def champion(self) -> RegisteredModel | None:
        """The model ``models:/<name>@champion`` resolves to now, or None before the first champion.

        Its tags include ``dataset_version`` (the version it was trained on) and, once evaluated,
        ``test_macro_f1`` and ``test_dataset_version``.
        """
        return self.version_by_alias(CHAMPION_ALIAS)

    def set_alias(self, alias: str, version: int) -> None:
        """Point ``alias`` at ``version`` (an alias names one version: it moves off the previous one)."""
        self.client().set_registered_model_alias(self.registered_model_name, alias, str(version))

    def delete_alias(self, alias: str) -> None:
        """Remove ``alias`` (no-op when it points nowhere)."""
        if self.version_by_alias(alias) is not None:
            self.client().delete_registered_model_alias(self.registered_model_name, alias)

    def set_version_tags(self, version: int, tags: dict[str, Any]) -> None:
        client = self.client()
        for key, value in tags.items():
            text = value if isinstance(value, str) else json.dumps(value)
            client.set_model_version_tag(self.registered_model_name, str(version), key, text)

    def download_checkpoint(self, model: RegisteredModel, folder: str | None = None) -> Path:
        """The torch-only checkpoint logged with the version's run (see core.training.checkpoint)."""
        target = folder or tempfile.mkdtemp(prefix="labeling-assets-model-")
        path = self.client().download_artifacts(model.run_id, CHECKPOINT_ARTIFACT, target)
        return Path(path)

    def load_model(self, registered: RegisteredModel) -> LoadedModel:
        """A registered version rebuilt from its checkpoint (no pickled code is executed): by its kind's trainer
        when its ``task_type`` tag names a kind with one, else as the image classifier."""
        from labeling_assets.core.tasks import KINDS, task_kind

        named = registered.tags.get(TASK_TYPE_TAG)
        trainer = task_kind(named).trainer if named in KINDS else None
        with tempfile.TemporaryDirectory() as tmp:
            path = self.download_checkpoint(registered, tmp)
            if trainer is not None:
                fitted = trainer.load(path)
                return LoadedModel(registered=registered, model=fitted, config=None, classes=list(fitted.classes),
                                   task_kind=str(named))  # fmt: skip
            from labeling_assets.core.training.checkpoint import load_checkpoint, load_thresholds

            model, config, classes = load_checkpoint(path)
            thresholds = load_thresholds(path)
        return LoadedModel(registered=registered, model=model, config=config, classes=classes,
                           thresholds=thresholds, task_kind=config.task_kind)  # fmt: skip

    def log_artifact_bytes(self, filename: str, data: bytes, artifact_path: str | None = None) -> None:
        """Log ``data`` as the file ``filename`` of the active run."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / filename
            path.write_bytes(data)
            self.module().log_artifact(str(path), artifact_path=artifact_path)

    def register_model(
        self, result: "FitResult", config: "TrainConfig", classes: list[str], version_tags: dict[str, Any]
    ) -> int:
        """Log the model with the active run, register it as a new version and tag it; returns the version.

        Args:
            result: the training result (best weights, normalisation, resolved backbone).
            config: the run's settings, stored in the checkpoint to rebuild the model.
            classes: the class list, in the model's output order.
            version_tags: tags of the new registered version (non-strings are stored as JSON).
        """
        import torch

        from labeling_assets.core.training.checkpoint import save_checkpoint

        ml = self.module()
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = Path(tmp) / Path(CHECKPOINT_ARTIFACT).name
            save_checkpoint(checkpoint, result, config, classes)
            ml.log_artifact(str(checkpoint), artifact_path=str(Path(CHECKPOINT_ARTIFACT).parent))
        info = ml.pytorch.log_model(
            result.model.cpu(),
            name="model",
            registered_model_name=self.registered_model_name,
            # The checkpoint above is the torch-only artifact we load; this copy is for MLflow users.
            serialization_format="pickle",
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
        )
        version = int(info.registered_model_version)
        self.set_version_tags(version, version_tags)
        return version

    def register_checkpoint(self, checkpoint: Path, version_tags: dict[str, Any]) -> int:
        """Log ``checkpoint`` (a trainer kind's torch-only file) with the active run as :data:`CHECKPOINT_ARTIFACT`,
        register it as a new version of the registered model and tag it; returns the version. No pickled copy
        of the model is logged (there is no class to unpickle it with outside this package)."""
        from mlflow.exceptions import MlflowException

        ml = self.module()
        folder = str(Path(CHECKPOINT_ARTIFACT).parent)
        with tempfile.TemporaryDirectory() as tmp:
            named = Path(tmp) / Path(CHECKPOINT_ARTIFACT).name
            named.write_bytes(checkpoint.read_bytes())
            ml.log_artifact(str(named), artifact_path=folder)
        run = ml.active_run()
        client = self.client()
        try:
            client.create_registered_model(self.registered_model_name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        version = client.create_model_version(
            self.registered_model_name, source=f"{run.info.artifact_uri}/{folder}", run_id=run.info.run_id
        )
        number = int(version.version)
        self.set_version_tags(number, version_tags)
        return number

    def log_to_run(
        self,
        run_id: str,
        *,
        metrics: dict[str, float],
        params: dict[str, Any],
        files: dict[str, bytes],
        texts: dict[str, str],
    ) -> None:
        """Add metrics, params, files (``folder/name`` -> bytes) and texts to an existing run."""
        ml = self.module()
        with ml.start_run(run_id=run_id):
            ml.log_metrics(metrics)
            ml.log_params(params)
            for name, data in files.items():
                folder, _, filename = name.rpartition("/")
                self.log_artifact_bytes(filename, data, artifact_path=folder or None)
            for name, text in texts.items():
                ml.log_text(text, name)
