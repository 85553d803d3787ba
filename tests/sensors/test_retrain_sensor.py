"""retrain_sensor: train_job runs when the current dataset version has enough new training labels since the
champion's, never on a version whose blocking checks failed, one training at a time.

Real parts: an ephemeral Dagster instance holding the dataset_splits materialization and check results, a
SQLite label store holding the dataset versions' manifests, a local MLflow registry with a champion alias.
"""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from labeling_assets.core.automation import RETRAIN_MIN_NEW_VAR
from labeling_assets.core.dataset.splits import manifest_to_json
from labeling_assets.core.store.schema import dataset_versions_table, utcnow
from labeling_assets.resources.mlflow import CHAMPION_ALIAS, MLflowResource
from labeling_assets.resources.store import LabelStoreResource
from labeling_assets.sensors import retrain_sensor


def manifest(train: dict[str, str], n_test: int = 20) -> dict[str, object]:
    rows = [(item, label, "train") for item, label in train.items()]
    rows += [(f"test{k}", "a", "test") for k in range(n_test)]
    frame = pd.DataFrame(rows, columns=["item_id", "label", "split"])
    return manifest_to_json(frame, previous_version=None, extra={})


def labels(n: int, start: int = 0, label: str = "a") -> dict[str, str]:
    return {f"i{k}": label for k in range(start, start + n)}


class Setup:
    def __init__(self, tmp_path: Path, instance: dg.DagsterInstance, mlflow: MLflowResource) -> None:
        self.instance = instance
        self.store = LabelStoreResource(url=f"sqlite:///{tmp_path / 'labels.db'}")
        self.mlflow = mlflow

    def version(self, name: str, train: dict[str, str], *, current: bool = True) -> None:
        with self.store.get_store().begin() as conn:
            conn.execute(dataset_versions_table.insert().values(
                dataset_version=name, created_at=utcnow(), n_items=len(train), manifest=manifest(train)))  # fmt: skip
        if current:
            self.instance.report_runless_asset_event(
                dg.AssetMaterialization("dataset_splits", metadata={"dataset_version": name})
            )

    def tick(self) -> dg.SensorResult | dg.SkipReason:
        context = dg.build_sensor_context(
            instance=self.instance, resources={"label_store": self.store, "mlflow": self.mlflow}
        )
        return retrain_sensor(context)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> MLflowResource:
    return MLflowResource(data_dir=str(tmp_path_factory.mktemp("mlflow")))


def register(mlflow: MLflowResource, dataset_version: str, *, champion: bool) -> int:
    client = mlflow.client()
    if not mlflow.registered_versions():
        client.create_registered_model(mlflow.registered_model_name)
    made = client.create_model_version(
        mlflow.registered_model_name, source=mlflow.resolved_artifact_location, tags={"dataset_version": dataset_version}
    )
    if champion:
        mlflow.set_alias(CHAMPION_ALIAS, int(made.version))
    return int(made.version)


@pytest.fixture
def setup(tmp_path: Path, registry: MLflowResource) -> Iterator[Setup]:
    # Each test gets its own registered model name in the module's registry (MLflow imports once).
    mlflow = MLflowResource(data_dir=registry.data_dir, registered_model_name=f"model-{tmp_path.name}")
    with dg.DagsterInstance.ephemeral() as instance:
        yield Setup(tmp_path, instance, mlflow)


def skip_message(result: dg.SensorResult | dg.SkipReason) -> str:
    assert isinstance(result, dg.SkipReason), result
    return result.skip_message or ""


def launched(result: dg.SensorResult | dg.SkipReason) -> dg.RunRequest:
    assert isinstance(result, dg.SensorResult) and result.run_requests, result
    return result.run_requests[0]


def test_before_any_dataset_version_nothing_trains(setup: Setup) -> None:
    assert "no dataset version yet" in skip_message(setup.tick())


@pytest.mark.slow
def test_without_a_champion_k_training_items_start_the_first_training(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RETRAIN_MIN_NEW_VAR, "30")
    setup.version("v1", labels(30))
    request = launched(setup.tick())
    assert request.run_key == "train-v1-attempt-1"
    assert request.tags["labeling-assets/trigger"] == "30 new training items (no champion yet)"


@pytest.mark.slow
def test_enough_new_training_items_since_the_champion_start_training(setup: Setup) -> None:
    setup.version("v1", labels(100), current=False)
    register(setup.mlflow, "v1", champion=True)
    setup.version("v2", {**labels(100), **labels(50, start=100)})
    request = launched(setup.tick())
    assert request.tags["labeling-assets/trigger"] == f"50 new training items than the champion {setup.mlflow.registered_model_name}/1"


def test_a_few_new_items_are_not_enough_but_a_share_of_changed_labels_is(setup: Setup) -> None:
    setup.version("v1", labels(100), current=False)
    register(setup.mlflow, "v1", champion=True)
    setup.version("v2", {**labels(100), **labels(49, start=100)})
    assert skip_message(setup.tick()).startswith("49 new training items than the champion")
    setup.version("v3", {**labels(90), **labels(10, start=90, label="b")})
    assert "10 of the champion's 100 training items changed label" in launched(setup.tick()).tags["labeling-assets/trigger"]


def test_a_version_already_trained_on_is_not_trained_again_even_when_it_lost(setup: Setup) -> None:
    setup.version("v1", labels(100), current=False)
    register(setup.mlflow, "v1", champion=True)
    setup.version("v2", labels(200))
    version = register(setup.mlflow, "v2", champion=False)  # the challenger that did not beat the champion
    assert skip_message(setup.tick()) == (
        f"{setup.mlflow.registered_model_name}/{version} was already trained on dataset version v2"
    )


def test_a_version_whose_blocking_checks_failed_is_never_trained(setup: Setup) -> None:
    setup.version("v1", labels(200))
    setup.instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("dataset_splits"), check_name="dataset_splits_no_hash_in_two_splits", passed=False
        )
    )
    message = skip_message(setup.tick())
    assert "dataset version v1 failed blocking checks dataset_splits_no_hash_in_two_splits" in message


def test_one_training_at_a_time(setup: Setup) -> None:
    from definitions import defs

    setup.version("v1", labels(200))
    running = setup.instance.create_run_for_job(
        job_def=defs.resolve_job_def("train_job"), status=dg.DagsterRunStatus.STARTED
    )
    assert skip_message(setup.tick()) == f"train run {running.run_id} is in flight: one training at a time"


def test_the_sensor_runs_by_itself() -> None:
    assert retrain_sensor.job_name == "train_job"
    assert retrain_sensor.default_status == dg.DefaultSensorStatus.RUNNING
