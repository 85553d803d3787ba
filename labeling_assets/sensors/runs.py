"""What the sensors ask the Dagster instance: runs in flight, failed attempts, a run's materialization metadata.

The loop's idempotency rests on these reads (one run of a kind at a time, a bounded number of retries of
one state), not on Dagster internals: they use the public run and event storage API of the instance.
"""

from typing import Any

import dagster as dg

from labeling_assets import lineage
from labeling_assets.core.automation import Decision, PastRuns

# Runs that hold their place: waiting in the queue or executing.
IN_FLIGHT = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
# Tags on every run the loop launches: why it was launched, and the state it acts on (retries count by it).
TRIGGER_TAG = "labeling-assets/trigger"
STATE_TAG = "labeling-assets/state"
AFTER_TAG = "labeling-assets/after"  # the run this one follows (the intake chain)
TAG_VALUE_MAX = 200
# A run of the intake chain whose process died (it went down with a killed daemon, say) is re-executed once by
# the daemon (``run_retries`` in dagster.yaml); one whose step failed is not. The chain has no sensor of its
# own to relaunch it: its trigger, a run's success, comes once, and a dead queue run left its items waiting
# for a top-up that may never come. The other sensors relaunch failed runs themselves (``past_runs``).
RETRY_IF_KILLED = {"dagster/max_retries": "1", "dagster/retry_on_asset_or_op_failure": "false"}


# Runs launched but not executing yet: a collect run among them will still see a change made now.
WAITING = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING]


def in_flight(
    instance: dg.DagsterInstance, job_name: str, statuses: list[dg.DagsterRunStatus] = IN_FLIGHT
) -> list[str]:
    """Ids of ``job_name`` runs queued or executing (or in ``statuses``), newest first."""
    records = instance.get_run_records(dg.RunsFilter(job_name=job_name, statuses=statuses), limit=5)
    return [record.dagster_run.run_id for record in records]


def past_runs(instance: dg.DagsterInstance, job_name: str, state: str) -> PastRuns:
    """The loop's earlier ``job_name`` runs for ``state`` (by tag): how many failed, and the newest's outcome."""
    tagged = dg.RunsFilter(job_name=job_name, tags={STATE_TAG: state})
    newest = instance.get_runs(tagged, limit=1)
    if not newest:
        return PastRuns()
    failed = dg.RunsFilter(job_name=job_name, tags={STATE_TAG: state}, statuses=[dg.DagsterRunStatus.FAILURE])
    return PastRuns(
        total=instance.get_runs_count(tagged),
        failed=instance.get_runs_count(failed),
        last_status=newest[0].status.value,
    )


def run_request(decision: Decision, *, state: str, **kwargs: Any) -> dg.RunRequest:
    """The run request of a launch decision, tagged with its reason and state."""
    assert decision.launch and decision.run_key is not None
    tags = {TRIGGER_TAG: decision.reason[:TAG_VALUE_MAX], STATE_TAG: state, **kwargs.pop("tags", {})}
    return dg.RunRequest(run_key=decision.run_key, tags=tags, **kwargs)


def materialization_metadata(instance: dg.DagsterInstance, run_id: str, asset: str) -> dict[str, Any]:
    """The metadata values of ``asset``'s materialization in run ``run_id`` (empty when it has none)."""
    return lineage.materialized_in_run(instance, run_id, asset)
