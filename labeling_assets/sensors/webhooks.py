"""touched_tasks_sensor: the tasks Label Studio's webhooks named -> a collect run that syncs just them, in seconds.

The receiver (``labeling-assets webhooks serve``) records the touched task ids in the store's ``webhook_inbox``;
this sensor reads the rows no sync has consumed yet (one small query, every 5 s: the daemon's shortest loop) and
asks collect_job for those tasks. ``annotation_sensor``'s poll stays as it was: a lost webhook (receiver down,
Label Studio restarted) costs latency, never an annotation, and any committed poll consumes the rows it covered.
"""

import dagster as dg

from labeling_assets.core.store.webhook_inbox import pending
from labeling_assets.jobs import collect_job
from labeling_assets.resources.store import LabelStoreResource
from labeling_assets.sensors import runs

WEBHOOK_CHECK_SECONDS = 5  # the daemon evaluates sensors at most every 5 s (dagster's MIN_INTERVAL_LOOP_TIME)


@dg.sensor(
    job=collect_job,
    minimum_interval_seconds=WEBHOOK_CHECK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Label Studio's webhooks named changed tasks: runs collect (+ downstream) for just those tasks.",
)
def touched_tasks_sensor(context: dg.SensorEvaluationContext, label_store: LabelStoreResource) -> dg.SensorResult | dg.SkipReason:
    """Cursor = the last inbox row already asked for: each row is asked for once (run key ``touched-<row>``).

    Rows whose run failed stay unconsumed; the poll's next committed collect consumes them (it reads every change),
    so a failure costs latency and never relaunches in a loop. While a collect run waits to start, nothing is
    launched: it will read a snapshot taken when it runs.
    """
    try:
        found = pending(label_store.get_store())
    except Exception as exc:  # a store outage: the poll (and the next tick) carry on
        return dg.SkipReason(f"label store unreadable: {str(exc)[:200]}")
    last = int(context.cursor or 0)
    if found is None or found.through_id <= last:
        return dg.SkipReason("no new webhook events")
    waiting = runs.in_flight(context.instance, collect_job.name, statuses=runs.WAITING)
    if waiting:
        return dg.SkipReason(f"collect run {waiting[0]} has not started yet: it will sync these tasks")
    if not found.task_ids:  # e.g. annotations deleted before any sync stored them: nothing of ours to read
        return dg.SensorResult(skip_reason=dg.SkipReason("webhook events name no stored task"), cursor=str(found.through_id))
    config = {"task_ids": list(found.task_ids), "inbox_through": found.through_id}
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"touched-{found.through_id}",
                run_config={"ops": {"annotations": {"config": config}}},
                tags={runs.TRIGGER_TAG: f"webhooks named {len(found.task_ids)} tasks ({found.rows} events)"[:200]},
            )
        ],
        cursor=str(found.through_id),
    )
