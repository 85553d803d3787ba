"""The alert sensors: off (one skip reason, nothing read) until a destination is set; then each automatic pause and
each failed run (naming the blocking check that stopped it) reaches a real local webhook receiver once.

Real parts: an ephemeral Dagster instance with a run stopped by a failing blocking check, a SQLite label store, an
HTTP receiver on a local port.
"""

from pathlib import Path

import dagster as dg

from labeling_assets.core.store.human_loop import PAUSE, record_pause_event
from labeling_assets.resources.alerts import AlertsResource
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from labeling_assets.sensors.alerts import OFF, alerts_sensor, run_failure_alert_sensor
from tests.core.alert_receivers import webhook_receiver


def _tick(alerts: AlertsResource, store: LabelStoreResource, instance: dg.DagsterInstance | None = None) -> str:
    context = dg.build_sensor_context(instance=instance or dg.DagsterInstance.ephemeral())
    result = alerts_sensor(context, alerts=alerts, label_store=store, label_studio=LabelStudioResource(url="http://ls:8080"),
                           project=ProjectSettings(classes=["a", "b"]))  # fmt: skip
    assert isinstance(result, dg.SkipReason)  # the alert sensors launch nothing
    return str(result.skip_message)


def test_off_until_configured_then_each_automatic_pause_is_posted_once(tmp_path: Path) -> None:
    store = LabelStoreResource(url=f"sqlite:///{tmp_path / 'labels.db'}")
    assert _tick(AlertsResource(), store) == OFF
    assert not (tmp_path / "labels.db").exists()  # off: the store is not even opened
    record_pause_event(store.get_store(), "7", PAUSE, reason="gold accuracy surely below 0.8", actor="gate",
                       label_studio_effect=None)  # fmt: skip
    with webhook_receiver() as receiver:
        alerts = AlertsResource(webhook_url=receiver.url, dagster_url="http://dagster.example:3000")
        assert _tick(alerts, store).startswith("1 alert(s) sent, 0 sent before")
        assert _tick(alerts, store).startswith("0 alert(s) sent, 1 sent before")
    [body] = receiver.bodies
    assert body["text"].startswith("Paused automatically: 7 (gold accuracy surely below 0.8)")
    assert body["text"].endswith(" http://dagster.example:3000/assets/labeler_stats?partition=7")


@dg.asset
def scores() -> int:
    return 1


@dg.asset_check(asset=scores, blocking=True)
def scores_above_floor() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, description="3 of 10 below the floor")


@dg.asset(deps=[scores])
def downstream() -> None:
    return None


def test_a_run_stopped_by_a_blocking_check_is_posted_once_with_the_check_and_the_run_link_after_a_retry(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([scores, downstream, scores_above_floor], instance=instance, raise_on_error=False)
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    assert run is not None
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    store = LabelStoreResource(url=f"sqlite:///{tmp_path / 'labels.db'}")
    with webhook_receiver() as receiver:
        alerts = AlertsResource(webhook_url=receiver.url, dagster_url="http://dagster.example:3000")
        receiver.fail_next = 1  # the receiver is down when the failure is seen
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert_sensor", dagster_event=failure, dagster_instance=instance,
            dagster_run=run, resources={"alerts": alerts, "label_store": store},
        ).for_run_failure()  # fmt: skip
        run_failure_alert_sensor(context)  # does not raise
        assert receiver.bodies == []
        assert _tick(alerts, store, instance).startswith("1 alert(s) sent")  # alerts_sensor retries it
        run_failure_alert_sensor(context)  # the same failure again: already sent
    [body] = receiver.bodies
    assert body["text"].startswith(f"Blocking check failed in run of {run.job_name}: scores:scores_above_floor;")
    assert body["text"].endswith(f" http://dagster.example:3000/runs/{run.run_id}")
