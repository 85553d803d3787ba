"""The steps every ``labeling-assets demo`` shares: a numbered step with its time, a job run that stops the demo when
it fails, the collect through the annotation sensor's own logic, the labeler statistics and quality roll-ups, and
an asset's latest metadata (what the summaries read)."""

from __future__ import annotations

import time
from typing import Any

from labeling_assets.cli.runs import run_job


class StepFailed(RuntimeError):
    pass


def step(number: int, title: str) -> float:
    print(f"\n[{number}] {title}", flush=True)
    return time.perf_counter()


def done(started: float) -> None:
    print(f"    ({time.perf_counter() - started:.1f}s)", flush=True)


def run(job: str, **kwargs: Any) -> None:
    if run_job(job, **kwargs) != 0:
        raise StepFailed(f"{job} failed: its run log in the Dagster UI (`dagster dev`) says why")


def collect_through_sensor() -> None:
    """Evaluate annotation_sensor exactly as the daemon would, then run what it requested."""
    import dagster as dg

    from labeling_assets.definitions import build_resources
    from labeling_assets.sensors import annotation_sensor

    # No cursor: the demo asks "anything new since ever?"; the daemon keeps its own cursor.
    with (
        dg.DagsterInstance.get() as instance,
        dg.build_sensor_context(
            instance=instance, resources={"label_studio": build_resources()["label_studio"]}
        ) as context,
    ):
        result = annotation_sensor(context)
    if isinstance(result, dg.SkipReason):
        raise StepFailed(f"the annotation sensor skipped: {result.skip_message}")
    assert isinstance(result, dg.SensorResult)
    for request in result.run_requests or []:
        print(f"    sensor requested a run (run_key {request.run_key}); running collect_job")
        run("collect_job", tags=request.tags)


def quality() -> None:
    import dagster as dg

    from labeling_assets.partitions import labelers

    with dg.DagsterInstance.get() as instance:
        keys = labelers.get_partition_keys(dynamic_partitions_store=instance)
    print(f"    {len(keys)} labeler partitions: {', '.join(keys)}")
    for key in keys:
        run("labeler_stats_job", partition_key=key)
    run("quality_job")
    run("spot_check_job")  # hourly under the daemon: the demo samples its crowd's answers for review once


def latest_metadata(asset: str) -> dict[str, Any]:
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    if event is None or event.asset_materialization is None:
        return {}
    return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}
