"""Webhooks against the real Label Studio: the queue registers the project's webhook (once, however often it
runs), an annotation saved through the API reaches the receiver (a real uvicorn on a free port), and the
touched_tasks_sensor's run stores it and consumes the event. With the receiver stopped, the poll alone stores
every annotation; restarted, the webhooks work again.
"""

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest

from labeling_assets.assets import collect, queue
from labeling_assets.core.labelstudio.webhooks import SECRET_HEADER
from labeling_assets.core.store.schema import LabelStore, current_annotations_query, items_table, utcnow
from labeling_assets.core.store.webhook_inbox import pending, pending_count
from labeling_assets.jobs import collect_job, queue_job, webhook_collect_job
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from labeling_assets.sensors import annotation_sensor, touched_tasks_sensor
from labeling_assets.webhooks.serve import Running, start_in_thread
from tests.labelstudio_server import LabelStudioServer

pytestmark = pytest.mark.labelstudio
CLASSES = ["cat", "dog"]
SECRET = "webhook-test-secret"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LabelStore]:
    store = LabelStore(f"sqlite:///{tmp_path / 'labels.db'}")
    store.migrate()
    rows = [
        {"item_id": hashlib.sha256(f"wh-{i}".encode()).hexdigest(), "uri": str(tmp_path / f"{i}.png"),
         "source_path": f"{i}.png", "n_bytes": 1, "ingested_at": utcnow(), "status": "active"}
        for i in range(3)
    ]  # fmt: skip
    with store.begin() as conn:
        conn.execute(items_table.insert(), rows)
    yield store
    store.dispose()


@pytest.fixture
def receiver(store: LabelStore) -> Iterator[Running]:
    running = start_in_thread(store, SECRET, port=0)  # port 0: the kernel picks a free one, read back
    yield running
    running.stop()


def _project(
    label_studio: LabelStudioServer, store: LabelStore, receiver: Running, title: str, data: Path,
    sensors: list[dg.SensorDefinition],
) -> tuple[LabelStudioResource, dg.Definitions]:
    """A Label Studio project whose webhooks post to the receiver, and the queue and collect jobs with ``sensors``."""
    ls = LabelStudioResource(
        url=label_studio.url, api_key=label_studio.token, project_title=title,
        webhook_url=receiver.url, webhook_secret=SECRET,
    )  # fmt: skip
    resources = {
        "label_store": LabelStoreResource(url=store.url),
        "label_studio": ls,
        "project": ProjectSettings(data_dir=str(data), classes=CLASSES),
    }
    defs = dg.Definitions(
        assets=[queue.labeling_tasks, collect.annotations], jobs=[queue_job, collect_job, webhook_collect_job],
        sensors=sensors, resources=resources,
    )  # fmt: skip
    return ls, defs


def test_an_annotation_saved_in_label_studio_is_stored_by_the_webhook_run(
    label_studio: LabelStudioServer, store: LabelStore, receiver: Running, tmp_path: Path
) -> None:
    ls, defs = _project(label_studio, store, receiver, f"webhooks-{tmp_path.name}", tmp_path, [touched_tasks_sensor])
    config = {"ops": {"labeling_tasks": {"config": {"max_new_tasks": 10, "gold_rate": 0.0, "overlap": 1}}}}
    with dg.DagsterInstance.ephemeral() as instance:
        for _ in range(2):  # the second run registers nothing new
            queued = defs.resolve_job_def("queue_job").execute_in_process(instance=instance, run_config=config)
            assert queued.success
            said = queued.get_asset_materialization_events()[0].materialization.metadata["webhook"].value
            assert "registered" in str(said), said
        client = label_studio.client()
        project_id = ls.find_project_id()
        assert project_id is not None
        hooks = [w for w in client.request("GET", "/api/webhooks/", params={"project": project_id}) if w["url"] == receiver.url]
        assert len(hooks) == 1 and hooks[0]["headers"] == {SECRET_HEADER: SECRET}

        task_id = sorted(client.task_ids(project_id))[0]
        annotation_id = client.create_annotation(task_id, "dog", completed_by=int(client.whoami()["id"]))
        deadline = time.monotonic() + 30  # Label Studio posts while it answers the save (no worker queue)
        while pending(store) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        found = pending(store)
        assert found is not None and found.task_ids == (task_id,)

        tick = touched_tasks_sensor(dg.build_sensor_context(instance=instance, resources=defs.resources))
        assert isinstance(tick, dg.SensorResult) and tick.run_requests
        (request,) = tick.run_requests
        assert request.job_name in (None, webhook_collect_job.name)
        run = defs.resolve_job_def(webhook_collect_job.name).execute_in_process(instance=instance, run_config=request.run_config)
        assert run.success
        meta = {k: v.value for k, v in run.get_asset_materialization_events()[0].materialization.metadata.items()}
        assert (meta["sync_mode"], meta["new"], meta["webhook_events_consumed"]) == ("touched", 1, 1)
        stored = store.fetch(current_annotations_query())
        assert [(r["ls_annotation_id"], r["label"]) for r in stored] == [(annotation_id, "dog")]
        assert pending_count(store) == 0


def _wait_for(what: str, condition: Callable[[], object], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s:g} s: {what}"
        time.sleep(0.2)


def test_with_the_receiver_stopped_the_poll_stores_every_annotation_and_a_restarted_receiver_works_again(
    label_studio: LabelStudioServer, store: LabelStore, receiver: Running, tmp_path: Path
) -> None:
    ls, defs = _project(
        label_studio, store, receiver, f"webhooks-down-{tmp_path.name}", tmp_path, [annotation_sensor, touched_tasks_sensor]
    )
    config = {"ops": {"labeling_tasks": {"config": {"max_new_tasks": 10, "gold_rate": 0.0, "overlap": 1}}}}
    with dg.DagsterInstance.ephemeral() as instance:
        assert defs.resolve_job_def("queue_job").execute_in_process(instance=instance, run_config=config).success
        client = label_studio.client()
        project_id = ls.find_project_id()
        assert project_id is not None
        first, second, third = sorted(client.task_ids(project_id))
        me = int(client.whoami()["id"])
        poll = annotation_sensor(dg.build_sensor_context(instance=instance, resources=defs.resources))
        assert isinstance(poll, dg.SensorResult) and poll.run_requests  # the first poll: the queue's tasks

        receiver.stop()  # Label Studio's posts now find a closed port: its saves go on
        saved = [client.create_annotation(task, "cat", completed_by=me) for task in (first, second)]
        assert pending(store) is None  # nothing reached the store through the webhook
        tick = annotation_sensor(dg.build_sensor_context(instance=instance, cursor=poll.cursor, resources=defs.resources))
        assert isinstance(tick, dg.SensorResult) and tick.run_requests
        polled = defs.resolve_job_def(collect_job.name).execute_in_process(instance=instance, tags=tick.run_requests[0].tags)
        assert polled.success
        assert sorted(r["ls_annotation_id"] for r in store.fetch(current_annotations_query())) == sorted(saved)

        restarted = start_in_thread(store, SECRET, port=receiver.port)  # the URL Label Studio holds
        try:
            again = client.create_annotation(third, "dog", completed_by=me)
            _wait_for("the restarted receiver records the event", lambda: pending(store) is not None)
            touched = touched_tasks_sensor(dg.build_sensor_context(instance=instance, resources=defs.resources))
            assert isinstance(touched, dg.SensorResult) and touched.run_requests
            (request,) = touched.run_requests
            assert request.run_config["ops"]["annotations"]["config"]["task_ids"] == [third]
            run = defs.resolve_job_def(webhook_collect_job.name).execute_in_process(
                instance=instance, run_config=request.run_config
            )
            assert run.success
        finally:
            restarted.stop()
        stored = {r["ls_annotation_id"]: r["label"] for r in store.fetch(current_annotations_query())}
        assert stored == {saved[0]: "cat", saved[1]: "cat", again: "dog"}
        assert pending_count(store) == 0
