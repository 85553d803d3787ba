"""intake_sensor: new items flow on after a successful ingest: prelabels first, then the queue. A new champion
flows the same way: its pre-labels for every item, then a queue run that attaches them to the open tasks."""

import dagster as dg

from labeling_assets import env
from labeling_assets.core import automation
from labeling_assets.jobs import ingest_job, prelabel_job, queue_job, train_job
from labeling_assets.sensors import runs
from labeling_assets.sensors.queue import queue_run_config

AFTER_INGEST = "ingest"
AFTER_CHAMPION = "champion"


def _new_items(instance: dg.DagsterInstance, run_id: str) -> int:
    metadata = runs.materialization_metadata(instance, run_id, "raw_images")
    return int(metadata.get("files_new") or 0) + int(metadata.get("files_changed") or 0)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[ingest_job, prelabel_job, train_job],
    request_jobs=[prelabel_job, queue_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After an ingest that found new or changed files: prelabel_job; after that prelabel run: "
    "queue_job (the next batch, most uncertain first). After a training that promoted a new champion: "
    "prelabel_job (its pre-labels for every item), then a queue run that attaches them to the open tasks.",
)
def intake_sensor(context: dg.RunStatusSensorContext) -> dg.RunRequest | dg.SkipReason:
    """A run-status sensor, not more ticks of raw_data_sensor: Dagster hands it each successful run exactly
    once (its cursor is the run-status event), so the chain needs no state of its own, and a failed ingest
    or prelabel run starts nothing downstream (raw_data_sensor retries a failed ingest)."""
    run = context.dagster_run
    if run.job_name == train_job.name:
        evaluation = runs.materialization_metadata(context.instance, run.run_id, "model_evaluation")
        if not evaluation.get("promoted"):
            return dg.SkipReason(f"train run {run.run_id} promoted no new champion: the pre-labels stay")
        return _prelabel_after(
            run.run_id, AFTER_CHAMPION, f"new champion {evaluation.get('model_version', '')} from train run {run.run_id}"
        )
    if run.job_name == ingest_job.name:
        new = _new_items(context.instance, run.run_id)
        if new == 0:
            return dg.SkipReason(f"ingest run {run.run_id} found no new or changed file: nothing to prelabel")
        return _prelabel_after(run.run_id, AFTER_INGEST, f"{new} new items from ingest run {run.run_id}")
    after = run.tags.get(runs.AFTER_TAG)
    if after == AFTER_CHAMPION:  # no new items: the run attaches the champion's pre-labels to the open tasks
        return dg.RunRequest(
            job_name=queue_job.name,
            run_key=f"queue-after-{run.run_id}",
            run_config=queue_run_config(0),
            tags={
                runs.AFTER_TAG: "prelabel",
                runs.TRIGGER_TAG: f"the champion's pre-labels of run {run.run_id} go to the open tasks",
                **runs.RETRY_IF_KILLED,
            },
        )
    if after != AFTER_INGEST:
        return dg.SkipReason(f"prelabel run {run.run_id} did not follow an ingest: the queue top-up decides")
    flying = runs.in_flight(context.instance, queue_job.name)
    if flying:
        return dg.SkipReason(f"queue run {flying[0]} is in flight: it or the queue top-up queues the new items")
    batch = automation.thresholds_from(env.variable).queue_batch
    return dg.RunRequest(
        job_name=queue_job.name,
        run_key=f"queue-after-{run.run_id}",
        run_config=queue_run_config(batch),
        tags={
            runs.AFTER_TAG: "prelabel",
            runs.TRIGGER_TAG: f"new items prelabeled by run {run.run_id}",
            **runs.RETRY_IF_KILLED,
        },
    )


def _prelabel_after(run_id: str, after: str, trigger: str) -> dg.RunRequest:
    """One prelabel run per triggering run (its run key), tagged with what it follows and why."""
    return dg.RunRequest(
        job_name=prelabel_job.name,
        run_key=f"prelabel-after-{run_id}",
        tags={runs.AFTER_TAG: after, runs.TRIGGER_TAG: trigger[: runs.TAG_VALUE_MAX], **runs.RETRY_IF_KILLED},
    )
