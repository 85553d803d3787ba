"""raw_data_sensor: new or changed files in the source (images, or a text project's text files) launch ingest,
found from the listing alone."""

import dagster as dg

from labeling_assets.core import automation
from labeling_assets.core.images import IMAGE_EXTENSIONS
from labeling_assets.core.ingest.source import SourceError, SourceFile, list_source, open_source
from labeling_assets.core.ingest.text import TEXT_EXTENSIONS
from labeling_assets.jobs import ingest_job
from labeling_assets.resources.image_source import ImageSourceResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.sensors import runs

RAW_DATA_POLL_SECONDS = 60


def list_image_source(
    uri: str, follow_symlinks: str, *, texts: bool = False, extensions: frozenset[str] | None = None
) -> list[SourceFile]:
    """Every image file (``texts``: every text file) of the source with its fingerprint, from the listing alone
    (no file is opened): the listing ingest makes, with the same link policy. Raises SourceError naming a
    missing source."""
    fs, root = open_source(uri)
    extensions = extensions or (TEXT_EXTENSIONS if texts else IMAGE_EXTENSIONS)
    return list_source(fs, root, follow_symlinks=follow_symlinks, extensions=extensions).files


@dg.sensor(
    job=ingest_job,
    minimum_interval_seconds=RAW_DATA_POLL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Lists the image source (names, sizes, mtimes; no file is read); when it changed, runs ingest.",
)
def raw_data_sensor(
    context: dg.SensorEvaluationContext, image_source: ImageSourceResource, project: ProjectSettings
) -> dg.SensorResult | dg.SkipReason:
    """Cursor = the fingerprint of the last listing ingested (the same size + mtime rule ingest uses).

    The run key is that fingerprint, so a re-poll never launches twice; the cursor moves only with a
    launch, so a change seen while an ingest is in flight waits for the next tick. New items then flow on
    through ``intake_sensor`` (prelabels, then the queue) once the ingest succeeded.
    """
    try:
        uri = image_source.listing_uri()
        audio = project.audio_options()
        files = list_image_source(uri, image_source.follow_symlinks, texts=project.text_options() is not None,
                                  extensions=audio.extensions if audio is not None else None)
    except (SourceError, OSError) as exc:
        return dg.SkipReason(f"image source unavailable: {exc}")
    fingerprint = automation.listing_fingerprint(files)
    decision = automation.raw_data_decision(
        fingerprint,
        context.cursor,
        ingest_in_flight=runs.in_flight(context.instance, ingest_job.name),
        past=runs.past_runs(context.instance, ingest_job.name, fingerprint),
    )
    if not decision.launch:
        return dg.SkipReason(f"{decision.reason} ({uri})")
    return dg.SensorResult(run_requests=[runs.run_request(decision, state=fingerprint)], cursor=fingerprint)
