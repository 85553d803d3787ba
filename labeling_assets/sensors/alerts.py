"""Alert sensors: they post one-line notices with a link (core/alerts) and launch nothing.

- ``alerts_sensor``: drift alarms, automatic pauses and a stalled queue, read from the label store.
- ``run_failure_alert_sensor``: a failed run, naming the blocking check that stopped it when one did.

Both skip at once while alerts are off (no webhook, no SMTP server): an unconfigured project pays nothing. A
delivery failure is one warning line (secrets masked) and is retried next tick; it never fails a run or a tick.
"""

import datetime as dt

import dagster as dg

from labeling_assets.core.alerts.delivery import Alert, Channels
from labeling_assets.core.alerts.notices import Links, drift_notices, pause_notices, stalled_queue_notice
from labeling_assets.core.alerts.outbox import Outcome, send_new
from labeling_assets.core.errors import one_line
from labeling_assets.core.store.schema import utcnow
from labeling_assets.resources.alerts import SMTP_VARS, WEBHOOK_VAR, AlertsResource
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

ALERTS_POLL_SECONDS = 300
RUN_LOOKBACK = dt.timedelta(days=1)  # failed runs re-offered by alerts_sensor: a failed delivery is retried
OFF = f"alerts are off: set ${WEBHOOK_VAR} and/or ${SMTP_VARS['smtp_host']} with ${SMTP_VARS['smtp_to']}"
DRIFT_KINDS = ("single_label", "multi_label")  # kinds whose answers are class names (drift reads class use)


def _summary(outcome: Outcome) -> str:
    return (f"{len(outcome.sent)} alert(s) sent, {outcome.already} sent before, {len(outcome.failed)} delivery "
            "failure(s) (retried next tick)")  # fmt: skip


def _label_studio_url(label_studio: LabelStudioResource) -> str | None:
    try:
        return label_studio.resolved_url
    except Exception:  # noqa: BLE001 (no Label Studio configured: alerts go out without its link)
        return None


@dg.sensor(
    minimum_interval_seconds=ALERTS_POLL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts drift alarms (gold accuracy, speed, class use per labeler; model-vs-consensus disagreement "
    "per class), automatic pauses and a stalled queue to the alerts webhook and/or e-mail, each once. Off "
    "until the resource `alerts` names a destination (docs/operations.md, 'Alerts').",
)
def alerts_sensor(
    context: dg.SensorEvaluationContext, alerts: AlertsResource, label_store: LabelStoreResource,
    label_studio: LabelStudioResource, project: ProjectSettings,
) -> dg.SkipReason:  # fmt: skip
    """One read of the store per tick; every notice the store holds is offered, the outbox sends the new ones."""
    channels = alerts.channels()
    if not channels.names:
        return dg.SkipReason(OFF)
    store = label_store.get_store()
    links = alerts.links(_label_studio_url(label_studio))
    notices = pause_notices(store, links)
    stalled = stalled_queue_notice(store, links, stall_after=dt.timedelta(hours=alerts.stall_after_hours), now=utcnow())
    notices += [stalled] if stalled else []
    notices += recent_failures(context.instance, links)
    if project.task_type in DRIFT_KINDS:
        try:
            notices += drift_notices(store, project.classes, links, task_type=project.task_type)
        except (ValueError, KeyError, TypeError) as exc:  # one unreadable series must not silence pauses and stalls
            context.log.warning(one_line(f"drift alarms skipped this tick: {type(exc).__name__}: {exc}"))
    return dg.SkipReason(_summary(send_new(store, channels, notices, log=context.log.warning)))


def failure_alert(instance: dg.DagsterInstance, run: dg.DagsterRun, message: str, links: Links) -> Alert:
    """The line for a failed run: the blocking check that stopped it when one failed, else the failure message."""
    checks = []
    for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        data = record.get_dagster_event().event_specific_data
        if isinstance(data, dg.AssetCheckEvaluation) and not data.passed and data.blocking:
            checks.append(f"{data.asset_key.to_user_string()}:{data.check_name}")
    if checks:
        text = (f"Blocking check failed in run of {run.job_name}: {', '.join(checks)}; nothing downstream of it ran. "
                "Open the check's result, fix the data, then rerun the job.")  # fmt: skip
    else:
        text = f"Run failed: {run.job_name}: {one_line(message, 300)} Open the run's logs, fix the cause, then rerun."
    return Alert(f"run:{run.run_id}", text, links.run(run.run_id))


def recent_failures(instance: dg.DagsterInstance, links: Links) -> list[Alert]:
    """Failed runs of the last day: ``run_failure_alert_sensor`` sees each failure once, so a delivery that
    failed there is retried here (the outbox skips those already sent)."""
    since = dt.datetime.now(dt.UTC) - RUN_LOOKBACK
    records = instance.get_run_records(
        dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE], updated_after=since), limit=20
    )
    return [failure_alert(instance, r.dagster_run, "see the run's logs.", links) for r in records]


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Posts each failed run (and the blocking check that stopped it) to the alerts webhook and/or "
    "e-mail, with the run's link in the Dagster UI. Off until the resource `alerts` names a destination.",
)
def run_failure_alert_sensor(
    context: dg.RunFailureSensorContext, alerts: AlertsResource, label_store: LabelStoreResource
) -> None:
    """A delivery failure is logged; ``alerts_sensor`` offers the failure again on its ticks for a day."""
    channels: Channels = alerts.channels()
    if not channels.names:
        return
    alert = failure_alert(context.instance, context.dagster_run, context.failure_event.message or "", alerts.links())
    outcome = send_new(label_store.get_store(), channels, [alert], log=context.log.warning)
    context.log.info(_summary(outcome))
