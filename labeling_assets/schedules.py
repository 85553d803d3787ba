"""Schedules: the daily quality roll-ups and the nightly store backup (UTC; default RUNNING).

Labeler statistics: the schedule asks the instance for the labeler keys the ``annotations`` asset registered and
requests ONE run over all of them (a partition range; ``labeler_stats`` reads the votes once for every labeler),
so a new labeler is covered the next day.
"""

import dagster as dg

from labeling_assets.jobs import labeler_stats_job, quality_job, store_backup_job
from labeling_assets.partitions import LABELERS

LABELER_STATS_CRON = "0 5 * * *"  # before the QA report, which reads the labelers' stats
QUALITY_CRON = "30 5 * * *"
BACKUP_CRON = "0 2 * * *"


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


quality_schedule = dg.ScheduleDefinition(
    name="quality_schedule",
    job=quality_job,
    cron_schedule=QUALITY_CRON,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily: labeler leaderboard, label issues and the QA report.",
)

store_backup_schedule = dg.ScheduleDefinition(
    name="store_backup_schedule",
    job=store_backup_job,
    cron_schedule=BACKUP_CRON,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Nightly: a compressed backup of the label store under <data>/backups (the newest 7 kept).",
)
