"""queue_top_up_sensor: keeps Label Studio supplied; the next batch is queued when open tasks run low."""

import time
from datetime import UTC, datetime

import dagster as dg

from labeling_assets import env
from labeling_assets.core import automation
from labeling_assets.core.consensus.auto_pause import ACTOR as GATE_ACTOR
from labeling_assets.core.store.human_loop import newest_pause_id
from labeling_assets.core.store.queries import unqueued_item_count
from labeling_assets.jobs import ingest_job, prelabel_job, queue_job
from labeling_assets.resources.labelstudio import LabelStudioError, LabelStudioResource
from labeling_assets.resources.store import LabelStoreResource
from labeling_assets.sensors import runs

QUEUE_POLL_SECONDS = 60
# How long new items of a successful ingest are left to intake_sensor (prelabels first, then the queue) before
# the top-up queues them as they are: a stopped intake sensor must not stall the queue for good.
INTAKE_GRACE_SECONDS = 90


def intake_pending(instance: dg.DagsterInstance) -> str | None:
    """Why new items are left to the intake chain now, or None. Queued before their prelabels, they would
    reach Label Studio without the champion's prediction and outside the uncertainty order."""
    for job in (ingest_job.name, prelabel_job.name):
        if flying := runs.in_flight(instance, job):
            return f"{job} run {flying[0]} is in flight: the intake chain queues new items after their prelabels"
    newest = instance.get_run_records(
        dg.RunsFilter(job_name=ingest_job.name, statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1
    )
    ended = newest[0].end_time if newest else None
    if ended is None or time.time() - ended > INTAKE_GRACE_SECONDS:
        return None
    metadata = runs.materialization_metadata(instance, newest[0].dagster_run.run_id, "raw_images")
    if not int(metadata.get("files_new") or 0) + int(metadata.get("files_changed") or 0):
        return None
    after = dg.RunsFilter(job_name=prelabel_job.name, created_after=datetime.fromtimestamp(ended, UTC))
    if instance.get_run_records(after, limit=1):
        return None
    return f"ingest run {newest[0].dagster_run.run_id} found new items: intake_sensor prelabels them first"


def queue_run_config(batch: int) -> dict[str, object]:
    """``labeling_tasks`` with ``max_new_tasks=batch``; every other option (uncertainty order, gold rate,
    overlap) keeps the asset's defaults."""
    return {"ops": {"labeling_tasks": {"config": {"max_new_tasks": batch}}}}


def queue_after_gate_pause(instance: dg.DagsterInstance, label_store: LabelStoreResource) -> dg.RunRequest | None:
    """A queue run with no new items after each automatic pause (labeler_stats' gold gate), so the paused
    labeler's tasks go to other labelers now instead of at the next batch (``labeling-assets labeler pause`` does
    that itself). One per pause event: the run's state tag names the event, a failed one is not retried here (the
    next queue run applies the same rule)."""
    pause_id = newest_pause_id(label_store.get_store(), actor=GATE_ACTOR)
    if pause_id is None:
        return None
    state = f"queue-after-pause-{pause_id}"
    if runs.past_runs(instance, queue_job.name, state).total:
        return None
    tags = {runs.TRIGGER_TAG: f"labeler_stats paused a labeler (pause event {pause_id}): their tasks go to others now",
            runs.STATE_TAG: state}  # fmt: skip
    return dg.RunRequest(run_key=state, run_config=queue_run_config(0), tags=tags)


@dg.sensor(
    job=queue_job,
    minimum_interval_seconds=QUEUE_POLL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After an automatic pause of a labeler, a queue run that sends their tasks to others; when open "
    "Label Studio tasks fall under the low-water mark "
    f"(${automation.QUEUE_LOW_WATER_VAR}, default {automation.Thresholds().queue_low_water}), queues the next "
    f"batch (${automation.QUEUE_BATCH_VAR}, default {automation.Thresholds().queue_batch}).",
)
def queue_top_up_sensor(
    context: dg.SensorEvaluationContext, label_studio: LabelStudioResource, label_store: LabelStoreResource
) -> dg.SensorResult | dg.SkipReason:
    """One request to Label Studio (the project's task counts) and one count in the store per tick; first, a queue
    run with no new items after an automatic pause that no queue run has followed (:func:`queue_after_gate_pause`).

    Nothing while a ``queue_job`` run is in flight (whoever launched it), nor while the intake chain has new
    items to prelabel first (:func:`intake_pending`); the run key is the observed state
    (tasks, finished tasks, items left), so a re-poll of an unchanged state never launches twice.
    """
    thresholds = automation.thresholds_from(env.variable)  # read now: a changed variable needs no restart
    if thresholds.queue_low_water == 0:
        return dg.SkipReason(f"queue top-up is off ({automation.QUEUE_LOW_WATER_VAR}=0)")
    flying = runs.in_flight(context.instance, queue_job.name)
    if flying:
        return dg.SkipReason(f"queue run {flying[0]} is in flight")
    if (pending := intake_pending(context.instance)) is not None:
        return dg.SkipReason(pending)
    if (after_pause := queue_after_gate_pause(context.instance, label_store)) is not None:
        return dg.SensorResult(run_requests=[after_pause])
    try:
        project_ids = label_studio.labeling_project_ids()  # the shared project, or every labeler's (blind mode)
        progress = [label_studio.get_client().task_progress(pid) for pid in project_ids]
    except LabelStudioError as exc:
        return dg.SkipReason(f"Label Studio unavailable at {label_studio.resolved_url}: {exc}")
    project_id = project_ids[0] if project_ids else None
    tasks, finished = sum(p[0] for p in progress), sum(p[1] for p in progress)
    unqueued = unqueued_item_count(label_store.get_store(), project_ids if label_studio.blind else project_id)
    state = automation.QueueState(project_id, tasks, finished, unqueued)
    decision = automation.queue_decision(
        state,
        thresholds,
        queue_in_flight=[],
        past=runs.past_runs(context.instance, queue_job.name, f"queue-{state.key()}"),
    )
    if not decision.launch:
        return dg.SkipReason(decision.reason)
    request = runs.run_request(
        decision, state=f"queue-{state.key()}", run_config=queue_run_config(min(thresholds.queue_batch, state.unqueued_items))
    )
    return dg.SensorResult(run_requests=[request], cursor=state.key())
