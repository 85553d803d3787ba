"""touched_tasks_sensor: the tasks Label Studio's webhooks named -> a run that syncs just them, in seconds.

The receiver (``labeling-assets webhooks serve``) records the touched task ids in the store's ``webhook_inbox``;
this sensor reads the rows no sync has consumed yet (one small query on each of the daemon's 5 s loops) and asks
webhook_collect_job for those tasks: their sync and consensus only (expert reviews, splits and exports follow on
the poll's collect_job). ``annotation_sensor``'s poll stays as it was: a lost webhook (receiver down, Label Studio
restarted) costs latency, never an annotation, and any committed poll consumes the rows it covered.
Without a receiver URL (the default) no webhook is registered, and the sensor skips at once without opening the
store: every tick of an unconfigured daemon (and of every test that runs one) paid for that query. Rows a
webhook registered earlier still brings in are consumed by the poll.
"""

import dagster as dg

from labeling_assets.core.store.webhook_inbox import pending
from labeling_assets.jobs import webhook_collect_job
from labeling_assets.resources.labelstudio import WEBHOOK_URL_VAR, LabelStudioResource
from labeling_assets.resources.store import LabelStoreResource
from labeling_assets.sensors import runs

# Under the daemon's 5 s loop (dagster's MIN_INTERVAL_LOOP_TIME), so the sensor is evaluated on every loop: the loop
# shuffles its sensors, and with an interval of 5 a tick that came 4.9 s after the last one waited a loop more.
WEBHOOK_CHECK_SECONDS = 1


@dg.sensor(
    job=webhook_collect_job,
    minimum_interval_seconds=WEBHOOK_CHECK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Label Studio's webhooks named changed tasks: syncs just those tasks and refreshes consensus.",
)
def touched_tasks_sensor(
    context: dg.SensorEvaluationContext, label_store: LabelStoreResource, label_studio: LabelStudioResource
) -> dg.SensorResult | dg.SkipReason:
    """Cursor = the last inbox row already asked for: each row is asked for once (run key ``touched-<row>``).

    Rows whose run failed stay unconsumed; the poll's next committed collect consumes them (it reads every change),
    so a failure costs latency and never relaunches in a loop. While a webhook run waits to start, nothing is
    launched (runs would pile up behind the sync pool): the next tick after it starts asks for what came since.
    """
    if not label_studio.resolved_webhook_url:
        return dg.SkipReason(f"no webhook (${WEBHOOK_URL_VAR} unset): annotations arrive by polling")
    try:
        found = pending(label_store.get_store())
    except Exception as exc:  # a store outage: the poll (and the next tick) carry on
        return dg.SkipReason(f"label store unreadable: {str(exc)[:200]}")
    last = int(context.cursor or 0)
    if found is None or found.through_id <= last:
        return dg.SkipReason("no new webhook events")
    waiting = runs.in_flight(context.instance, webhook_collect_job.name, statuses=runs.WAITING)
    if waiting:
        return dg.SkipReason(f"webhook run {waiting[0]} has not started yet: these tasks follow once it has")
    if not found.task_ids:  # e.g. annotations deleted before any sync stored them: nothing of ours to read
        return dg.SensorResult(skip_reason=dg.SkipReason("webhook events name no stored task"), cursor=str(found.through_id))
    config = {"task_ids": list(found.task_ids), "inbox_through": found.through_id}
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"touched-{found.through_id}",
                run_config={"ops": {"annotations": {"config": config}}},
                # Ahead of other queued runs (Dagster's run queue launches higher priorities first): a labeler waits.
                tags={runs.TRIGGER_TAG: f"webhooks named {len(found.task_ids)} tasks ({found.rows} events)"[:200],
                      "dagster/priority": "1"},
            )
        ],
        cursor=str(found.through_id),
    )
