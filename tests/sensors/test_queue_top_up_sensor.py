"""queue_top_up_sensor: the next batch is queued when open Label Studio tasks fall under the low-water mark.

The counts come from a real Label Studio (started once for this module) and a real SQLite store; without a
server the sensor skips with the cause.
"""

import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from labeling_assets.core.automation import QUEUE_BATCH_VAR, QUEUE_LOW_WATER_VAR
from labeling_assets.core.consensus.auto_pause import ACTOR as GATE_ACTOR
from labeling_assets.core.store.human_loop import PAUSE, record_pause_event
from labeling_assets.core.store.schema import LabelStore, items_table, utcnow
from labeling_assets.local.labelstudio import free_port
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.store import LabelStoreResource
from labeling_assets.sensors import queue_top_up_sensor
from labeling_assets.sensors.runs import STATE_TAG
from tests.labelstudio_server import LabelStudioServer, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioServer]:
    handle = start_server(tmp_path_factory.mktemp("ls-top-up"))
    try:
        yield handle
    finally:
        handle.stop()


def store_with_items(tmp_path: Path, n: int) -> LabelStoreResource:
    resource = LabelStoreResource(url=f"sqlite:///{tmp_path / 'labels.db'}")
    store: LabelStore = resource.get_store()
    with store.begin() as conn:
        conn.execute(
            items_table.insert(),
            [{"item_id": f"{k:064x}", "uri": f"/raw/{k}.png", "source_path": f"{k}.png", "n_bytes": 10,
              "ingested_at": utcnow(), "status": "active"} for k in range(n)],  # fmt: skip
        )
    return resource


def tick(instance: dg.DagsterInstance, label_studio: LabelStudioResource, store: LabelStoreResource,
         cursor: str | None = None) -> dg.SensorResult | dg.SkipReason:  # fmt: skip
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"label_studio": label_studio, "label_store": store}
    )
    return queue_top_up_sensor(context)


def skip_message(result: dg.SensorResult | dg.SkipReason) -> str:
    assert isinstance(result, dg.SkipReason), result
    return result.skip_message or ""


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.mark.slow
def test_without_label_studio_the_sensor_skips_with_the_cause(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    resource = LabelStudioResource(url=f"http://127.0.0.1:{free_port()}", api_key="unused", timeout_s=2)
    message = skip_message(tick(instance, resource, store_with_items(tmp_path, 3)))
    assert message.startswith(f"Label Studio unavailable at {resource.url}") and "unreachable" in message


def test_a_queue_run_in_flight_means_no_second_launch(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    from definitions import defs

    queued = instance.create_run_for_job(job_def=defs.resolve_job_def("queue_job"))
    resource = LabelStudioResource(url=f"http://127.0.0.1:{free_port()}", api_key="unused", timeout_s=2)
    assert skip_message(tick(instance, resource, store_with_items(tmp_path, 3))) == f"queue run {queued.run_id} is in flight"


def test_a_low_water_mark_of_zero_turns_the_top_up_off(
    tmp_path: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(QUEUE_LOW_WATER_VAR, "0")
    resource = LabelStudioResource(url=f"http://127.0.0.1:{free_port()}", api_key="unused", timeout_s=2)
    assert "queue top-up is off" in skip_message(tick(instance, resource, store_with_items(tmp_path, 3)))


@pytest.mark.labelstudio
def test_open_tasks_under_the_low_water_mark_queue_the_next_batch_once(
    server: LabelStudioServer, tmp_path: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(QUEUE_LOW_WATER_VAR, "3")
    monkeypatch.setenv(QUEUE_BATCH_VAR, "4")
    label_studio = server.resource(f"top-up-{uuid.uuid4().hex[:8]}")
    store = store_with_items(tmp_path, 10)
    client = server.client()

    # No project yet: nothing is open, so the first batch is due (the queue run creates the project).
    first = tick(instance, label_studio, store)
    assert isinstance(first, dg.SensorResult) and first.run_requests
    assert first.run_requests[0].run_config == {"ops": {"labeling_tasks": {"config": {"max_new_tasks": 4}}}}

    # Three open tasks (overlap 1): not under the mark of 3.
    project_id = label_studio.ensure_project(classes=["a", "b"], overlap=1)
    client.import_tasks(project_id, [{"data": {"image": f"/x/{k}.png", "item_id": f"ls-{k}"}} for k in range(3)])
    assert skip_message(tick(instance, label_studio, store)) == (
        "3 open tasks in Label Studio, not under the low-water mark 3"
    )

    # A labeler finishes one task: 2 open < 3, the next 4 of the 10 waiting items are queued.
    task_id = next(iter(client.task_ids_by_item(project_id).values()))
    client.create_annotation(task_id, "a", completed_by=int(client.whoami()["id"]))
    result = tick(instance, label_studio, store)
    assert isinstance(result, dg.SensorResult) and result.run_requests
    request = result.run_requests[0]
    assert request.tags["labeling-assets/trigger"] == "2 open tasks < low-water mark 3: queue the next 4 of 10 items"
    assert request.run_key == f"queue-top-up-{project_id}-3-1-10-attempt-1"
    assert result.cursor == f"{project_id}-3-1-10"

    # The same state again: the same run key (Dagster launches a run key once); and once a run for this
    # state succeeded without changing it, the sensor stops asking.
    again = tick(instance, label_studio, store, cursor=result.cursor)
    assert isinstance(again, dg.SensorResult) and again.run_requests[0].run_key == request.run_key
    from definitions import defs

    instance.create_run_for_job(
        job_def=defs.resolve_job_def("queue_job"),
        tags={STATE_TAG: request.tags[STATE_TAG]},
        status=dg.DagsterRunStatus.SUCCESS,
    )
    assert "a run for this state already ended (SUCCESS)" in skip_message(tick(instance, label_studio, store))


def test_an_automatic_pause_gets_one_queue_run_with_no_new_items_and_a_manual_one_none(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    from definitions import defs

    store = store_with_items(tmp_path, 3)
    unreachable = LabelStudioResource(url=f"http://127.0.0.1:{free_port()}", api_key="unused", timeout_s=2)
    # A pause from the CLI acted already (it raised the overlaps itself): nothing for the sensor to add.
    record_pause_event(store.get_store(), "7", PAUSE, reason="spot check", actor="alice", label_studio_effect="kept")
    assert skip_message(tick(instance, unreachable, store)).startswith("Label Studio unavailable")

    record_pause_event(store.get_store(), "8", PAUSE, reason="gold 0.41", actor=GATE_ACTOR, label_studio_effect="kept")
    result = tick(instance, unreachable, store)  # no Label Studio request is needed to ask for it
    assert isinstance(result, dg.SensorResult) and len(result.run_requests) == 1
    request = result.run_requests[0]
    assert request.run_config == {"ops": {"labeling_tasks": {"config": {"max_new_tasks": 0}}}}
    assert "labeler_stats paused a labeler" in request.tags["labeling-assets/trigger"]

    # Once a queue run followed that pause (whatever its outcome), the sensor goes back to its top-up.
    instance.create_run_for_job(job_def=defs.resolve_job_def("queue_job"), tags={STATE_TAG: request.tags[STATE_TAG]},
                                status=dg.DagsterRunStatus.FAILURE)  # fmt: skip
    assert skip_message(tick(instance, unreachable, store)).startswith("Label Studio unavailable")
