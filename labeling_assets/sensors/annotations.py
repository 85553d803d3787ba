"""annotation_sensor: polls Label Studio, the external boundary, and runs collect + downstream on a change."""

import hashlib

import dagster as dg

from labeling_assets.jobs import collect_job
from labeling_assets.resources.labelstudio import (
    LabelStudioError,
    LabelStudioNotConfigured,
    LabelStudioResource,
)
from labeling_assets.sensors import runs

ANNOTATION_POLL_SECONDS = 30


@dg.sensor(
    job=collect_job,
    minimum_interval_seconds=ANNOTATION_POLL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Polls Label Studio; when annotations were created, edited or deleted, runs collect + downstream.",
)
def annotation_sensor(
    context: dg.SensorEvaluationContext, label_studio: LabelStudioResource
) -> dg.SensorResult | dg.SkipReason:
    """Cursor = Label Studio's change marker (annotation total + newest task update): cheap to poll.

    The collect run syncs a full snapshot, so one run per observed change is enough and a change seen
    while a run is in flight is caught by the next tick; the run key makes a re-poll launch nothing twice.
    While a collect run waits to start, no other is launched (it will sync the change; runs would pile up
    behind the sync pool otherwise). A failed collect of the last change is launched again (attempt in the
    run key) up to ``MAX_ATTEMPTS``: when the crowd has stopped, no later change would bring its labels in.
    The server is looked up on every tick: one started after ``dagster dev`` is found without a restart.
    """
    try:
        project_ids = label_studio.labeling_project_ids()  # the shared project, or every labeler's (blind mode)
        if not project_ids:
            return dg.SkipReason(f"Label Studio project {label_studio.resolved_project_title!r} does not exist yet")
        client = label_studio.get_client()
        markers = [client.change_marker(project_id) for project_id in project_ids]
    except LabelStudioNotConfigured as exc:
        return dg.SkipReason(f"Label Studio not configured: {exc}")
    except LabelStudioError as exc:
        cause = "unreachable" if exc.unreachable else "error"
        return dg.SkipReason(f"Label Studio {cause} at {label_studio.resolved_url}: {exc}")
    project_id: int | str = project_ids[0]
    marker = markers[0]
    if label_studio.blind:  # one marker for all the labelers' projects, short enough for a run key
        project_id = "blind"
        marker = f"{len(project_ids)} projects|" + hashlib.sha256("/".join(markers).encode()).hexdigest()[:20]
    past = runs.past_runs(context.instance, collect_job.name, marker)
    if marker == context.cursor and not past.retry_allowed():
        return dg.SkipReason(f"no annotation change in project {project_id} since {marker.split('|')[-1]}")
    waiting = runs.in_flight(context.instance, collect_job.name, statuses=runs.WAITING)
    if waiting:  # it syncs a snapshot taken when it runs: this change too (the cursor stays, so none is lost)
        return dg.SkipReason(f"collect run {waiting[0]} has not started yet: it will sync this change")
    run_key = f"annotations-{project_id}-{marker}"
    retry = marker == context.cursor  # the run of this change failed (killed, Label Studio down mid-export)
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=past.attempt_key(run_key) if retry else run_key,
                tags={
                    "labelstudio/project": str(project_id),
                    runs.STATE_TAG: marker,
                    runs.TRIGGER_TAG: f"retry {past.failed + 1} of the failed collect"
                    if retry
                    else f"annotations changed in project {project_id}",
                },
            )
        ],
        cursor=marker,
    )
