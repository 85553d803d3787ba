"""touched_tasks_sensor: each webhook event is asked for once, just its tasks (their sync and consensus: not the
splits and exports collect_job adds), and never while a webhook run waits to start;
without a receiver URL it skips at once."""

import dagster as dg
import pytest

from labeling_assets.core.store.schema import LabelStore
from labeling_assets.core.store.webhook_inbox import Touched, record_touched
from labeling_assets.jobs import collect_job, webhook_collect_job
from labeling_assets.resources.labelstudio import WEBHOOK_URL_VAR, LabelStudioResource
from labeling_assets.resources.store import LabelStoreResource
from labeling_assets.sensors import touched_tasks_sensor

RECEIVER = "http://127.0.0.1:8765/labelstudio"


def tick(
    instance: dg.DagsterInstance, store: LabelStore, cursor: str | None, webhook_url: str | None = RECEIVER
) -> dg.SensorResult | dg.SkipReason:
    resources = {"label_store": LabelStoreResource(url=store.url), "label_studio": LabelStudioResource(webhook_url=webhook_url)}
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
    result = touched_tasks_sensor(context)
    assert isinstance(result, dg.SensorResult | dg.SkipReason)
    return result


def test_new_events_request_one_collect_of_just_their_tasks_and_are_not_asked_for_twice(sqlite_store: LabelStore) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        assert isinstance(tick(instance, sqlite_store, None), dg.SkipReason)  # nothing received
        record_touched(sqlite_store, [Touched("ANNOTATION_CREATED", 1, ls_task_id=5), Touched("TASKS_DELETED", 1, ls_task_id=9)])
        first = tick(instance, sqlite_store, None)
        assert isinstance(first, dg.SensorResult) and first.run_requests
        (request,) = first.run_requests
        assert request.run_config == {"ops": {"annotations": {"config": {"task_ids": [5, 9], "inbox_through": 2}}}}
        assert request.run_key == "touched-2" and first.cursor == "2"
        # Not consumed yet (the run has not stored them), but already asked for: nothing new.
        assert isinstance(tick(instance, sqlite_store, first.cursor), dg.SkipReason)


def test_the_run_asked_for_is_the_sync_and_consensus_alone() -> None:
    from definitions import defs

    assert touched_tasks_sensor.job_name == webhook_collect_job.name
    assert {k.to_user_string() for k in defs.resolve_job_def(webhook_collect_job.name).asset_layer.executable_asset_keys} == {
        "annotations", "consensus_labels"
    }  # fmt: skip


def test_while_a_webhook_run_waits_to_start_nothing_is_launched_and_a_waiting_poll_does_not_hold_it(
    sqlite_store: LabelStore,
) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        from definitions import defs

        # A poll's collect_job waiting (behind the sync pool, say) does not hold the webhooks back.
        instance.create_run_for_job(job_def=defs.resolve_job_def(collect_job.name), status=dg.DagsterRunStatus.NOT_STARTED)
        record_touched(sqlite_store, [Touched("ANNOTATION_UPDATED", 1, ls_task_id=3)])
        first = tick(instance, sqlite_store, None)
        assert isinstance(first, dg.SensorResult) and first.run_requests
        instance.create_run_for_job(
            job_def=defs.resolve_job_def(webhook_collect_job.name), status=dg.DagsterRunStatus.NOT_STARTED
        )
        record_touched(sqlite_store, [Touched("ANNOTATION_UPDATED", 1, ls_task_id=4)])
        said = tick(instance, sqlite_store, first.cursor)
        assert isinstance(said, dg.SkipReason) and "has not started yet" in (said.skip_message or "")


def test_without_a_receiver_url_it_skips_before_reading_the_store(
    sqlite_store: LabelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No webhook is registered then (rows from an earlier one are the poll's): an idle daemon's tick is free."""
    monkeypatch.delenv(WEBHOOK_URL_VAR, raising=False)
    record_touched(sqlite_store, [Touched("ANNOTATION_CREATED", 1, ls_task_id=5)])  # e.g. a webhook from before
    with dg.DagsterInstance.ephemeral() as instance:
        said = tick(instance, sqlite_store, None, webhook_url=None)
        assert isinstance(said, dg.SkipReason) and WEBHOOK_URL_VAR in (said.skip_message or "")
        monkeypatch.setenv(WEBHOOK_URL_VAR, RECEIVER)  # the variable counts as the resource's field does
        assert isinstance(tick(instance, sqlite_store, None, webhook_url=None), dg.SensorResult)
