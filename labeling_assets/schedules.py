"""Schedules: the daily quality roll-ups and the nightly store backup (UTC; default RUNNING).

Labeler statistics: the schedule asks the instance for the labeler keys the ``annotations`` asset registered and
requests ONE run over all of them (a partition range; ``labeler_stats`` reads the votes once for every labeler),
so a new labeler is covered the next day.
"""

import dagster as dg

from labeling_assets.jobs import labeler_stats_job, quality_job, spot_check_job, store_backup_job
from labeling_assets.partitions import LABELERS

LABELER_STATS_CRON = "0 5 * * *"  # before the QA report, which reads the labelers' stats
QUALITY_CRON = "30 5 * * *"
BACKUP_CRON = "0 2 * * *"
SPOT_CHECK_CRON = "15 * * * *"  # hourly: verdicts back, new answers sampled


@dg.schedule(
    job=labeler_stats_job,
    cron_schedule=LABELER_STATS_CRON,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily: labeler_stats for every labeler partition (one run over all of them).",
)
def labeler_stats_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
    keys = context.instance.get_dynamic_partitions(LABELERS)  # in the partitions' own order: a range's ends
    if not keys:
        return dg.SkipReason("no labeler yet: the annotations asset registers them when it syncs")
    when = context.scheduled_execution_time
    day = when.strftime("%Y-%m-%d") if when else "unscheduled"  # a tick retried the same day adds no run
    tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
    return [dg.RunRequest(run_key=f"labeler-stats-{day}", tags=tags)]


def _job_schedule(
    job: "dg.UnresolvedAssetJobDefinition | dg.JobDefinition", cron: str, description: str
) -> dg.ScheduleDefinition:
    """A schedule that runs the whole of ``job`` at ``cron`` (UTC): named after the job, RUNNING from the start."""
    return dg.ScheduleDefinition(
        name=f"{job.name.removesuffix('_job')}_schedule",
        job=job,
        cron_schedule=cron,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
    )


quality_schedule = _job_schedule(
    quality_job, QUALITY_CRON, "Daily: labeler leaderboard, label issues and the QA report."
)
spot_check_schedule = _job_schedule(
    spot_check_job,
    SPOT_CHECK_CRON,
    "Hourly: the reviewers' spot-check verdicts back into the store, each labeler's new answers sampled for review.",
)
store_backup_schedule = _job_schedule(
    store_backup_job,
    BACKUP_CRON,
    "Nightly: a compressed backup of the label store under <data>/backups (the newest 7 kept).",
)
