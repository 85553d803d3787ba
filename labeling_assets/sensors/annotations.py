"""annotation_sensor: polls Label Studio, the external boundary, and runs collect + downstream on a change."""

import dagster as dg

from labeling_assets.jobs import collect_job
from labeling_assets.resources.labelstudio import (
    LabelStudioError,
    LabelStudioNotConfigured,
    LabelStudioResource,
)

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
    The server is looked up on every tick: one started after ``dagster dev`` is found without a restart.
    """
    try:
        project_id = label_studio.find_project_id()
        if project_id is None:
            return dg.SkipReason(f"Label Studio project {label_studio.resolved_project_title!r} does not exist yet")
        marker = label_studio.get_client().change_marker(project_id)
    except LabelStudioNotConfigured as exc:
        return dg.SkipReason(f"Label Studio not configured: {exc}")
    except LabelStudioError as exc:
        cause = "unreachable" if exc.unreachable else "error"
        return dg.SkipReason(f"Label Studio {cause} at {label_studio.resolved_url}: {exc}")
    if marker == context.cursor:
        return dg.SkipReason(f"no annotation change in project {project_id} since {marker.split('|')[-1]}")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"annotations-{project_id}-{marker}", tags={"labelstudio/project": str(project_id)}
            )
        ],
        cursor=marker,
    )
