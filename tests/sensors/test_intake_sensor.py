"""intake_sensor: a successful ingest with new items launches prelabels, and those prelabels the queue.

Real runs on a real (ephemeral) instance: ingest_job and prelabel_job execute in process against a SQLite
store, an image folder and a local MLflow store; the sensor is evaluated on their run-success events.
"""

from pathlib import Path

import dagster as dg
import pytest
from PIL import Image

from labeling_assets.assets.ingest import raw_images
from labeling_assets.assets.prelabel import prelabels
from labeling_assets.core.automation import QUEUE_BATCH_VAR
from labeling_assets.jobs import ingest_job, prelabel_job
from labeling_assets.resources.image_source import ImageSourceResource
from labeling_assets.resources.mlflow import MLflowResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from labeling_assets.sensors import intake_sensor
from labeling_assets.sensors.runs import AFTER_TAG, RETRY_IF_KILLED


@pytest.fixture
def defs(tmp_path: Path) -> dg.Definitions:
    source = tmp_path / "images"
    source.mkdir()
    for k in range(4):
        Image.new("L", (8, 8), color=k * 50).save(source / f"img_{k}.png")
    return dg.Definitions(
        assets=[raw_images, prelabels],
        jobs=[ingest_job, prelabel_job],
        resources={
            "label_store": LabelStoreResource(url=f"sqlite:///{tmp_path / 'labels.db'}"),
            "image_source": ImageSourceResource(uri=str(source)),
            "project": ProjectSettings(data_dir=str(tmp_path / "data")),
            "mlflow": MLflowResource(data_dir=str(tmp_path / "data")),
        },
    )


def evaluate(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> dg.RunRequest | dg.SkipReason:
    context = dg.build_run_status_sensor_context(
        sensor_name=intake_sensor.name,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_success_event(),
    )
    outcome = intake_sensor(context)
    assert isinstance(outcome, dg.RunRequest | dg.SkipReason)
    return outcome


@pytest.mark.slow
def test_an_ingest_with_new_items_launches_prelabels_then_the_queue(
    defs: dg.Definitions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(QUEUE_BATCH_VAR, "25")
    with dg.DagsterInstance.ephemeral() as instance:
        ingest = defs.resolve_job_def("ingest_job").execute_in_process(instance=instance)
        request = evaluate(instance, ingest)
        assert isinstance(request, dg.RunRequest)
        assert request.job_name == "prelabel_job" and request.run_key == f"prelabel-after-{ingest.run_id}"
        assert request.tags[AFTER_TAG] == "ingest"
        assert RETRY_IF_KILLED.items() <= request.tags.items()  # re-executed by the daemon if its process dies

        prelabel = defs.resolve_job_def("prelabel_job").execute_in_process(instance=instance, tags=request.tags)
        queue = evaluate(instance, prelabel)
        assert isinstance(queue, dg.RunRequest)
        assert queue.job_name == "queue_job" and queue.run_key == f"queue-after-{prelabel.run_id}"
        assert queue.run_config == {"ops": {"labeling_tasks": {"config": {"max_new_tasks": 25}}}}
        assert RETRY_IF_KILLED.items() <= queue.tags.items()


def test_an_ingest_that_found_nothing_new_launches_nothing(defs: dg.Definitions) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        job = defs.resolve_job_def("ingest_job")
        job.execute_in_process(instance=instance)
        again = job.execute_in_process(instance=instance)  # every file unchanged
        skipped = evaluate(instance, again)
    assert isinstance(skipped, dg.SkipReason)
    assert f"ingest run {again.run_id} found no new or changed file" in (skipped.skip_message or "")


@pytest.mark.slow
def test_a_prelabel_run_that_did_not_follow_an_ingest_queues_nothing(defs: dg.Definitions) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        prelabel = defs.resolve_job_def("prelabel_job").execute_in_process(instance=instance)
        skipped = evaluate(instance, prelabel)
    assert isinstance(skipped, dg.SkipReason) and "the queue top-up decides" in (skipped.skip_message or "")


def _train_run(instance: dg.DagsterInstance, promoted: bool) -> dg.ExecuteInProcessResult:
    """A successful train_job run whose model_evaluation says whether it promoted a new champion."""

    @dg.asset(name="model_evaluation")
    def planted() -> dg.MaterializeResult[None]:
        return dg.MaterializeResult(metadata={"promoted": promoted, "model_version": "digits/2"})

    job = dg.define_asset_job("train_job", selection=[planted])
    return dg.Definitions(assets=[planted], jobs=[job]).resolve_job_def("train_job").execute_in_process(instance=instance)


@pytest.mark.slow
def test_a_new_champion_launches_its_prelabels_then_a_queue_run_that_attaches_them(defs: dg.Definitions) -> None:
    """Issue 26: a champion existed from the 11th minute and no labeler ever saw its pre-labels (they were
    recomputed only after an ingest with new files)."""
    with dg.DagsterInstance.ephemeral() as instance:
        kept = evaluate(instance, _train_run(instance, promoted=False))
        assert isinstance(kept, dg.SkipReason) and "promoted no new champion" in (kept.skip_message or "")

        train = _train_run(instance, promoted=True)
        request = evaluate(instance, train)
        assert isinstance(request, dg.RunRequest)
        assert request.job_name == "prelabel_job" and request.run_key == f"prelabel-after-{train.run_id}"
        assert request.tags[AFTER_TAG] == "champion" and "digits/2" in request.tags["labeling-assets/trigger"]

        prelabel = defs.resolve_job_def("prelabel_job").execute_in_process(instance=instance, tags=request.tags)
        queue = evaluate(instance, prelabel)
        assert isinstance(queue, dg.RunRequest)
        assert queue.job_name == "queue_job" and queue.run_key == f"queue-after-{prelabel.run_id}"
        # No new items: the run attaches the new pre-labels to the open tasks (labeling_tasks' refresh).
        assert queue.run_config == {"ops": {"labeling_tasks": {"config": {"max_new_tasks": 0}}}}


def test_the_sensor_watches_ingest_and_prelabel_successes_by_default() -> None:
    assert intake_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sorted(j.name for j in intake_sensor.jobs) == ["prelabel_job", "queue_job"]
