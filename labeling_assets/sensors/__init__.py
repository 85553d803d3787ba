"""Sensors: what makes the loop run by itself under the Dagster daemon (README, "What runs by itself").

- ``annotation_sensor``: Label Studio changed -> collect_job (annotations, consensus, splits, export).
- ``touched_tasks_sensor``: Label Studio's webhooks named tasks -> collect_job for just those (seconds).
- ``raw_data_sensor``: the image source changed -> ingest_job.
- ``intake_sensor``: a successful ingest with new items -> prelabel_job -> queue_job.
- ``queue_top_up_sensor``: open tasks under the low-water mark -> queue_job (the next batch).
- ``retrain_sensor``: enough new consensus labels since the champion's dataset version -> train_job.
- ``alerts_sensor``, ``run_failure_alert_sensor``: post drift alarms, automatic pauses, a stalled queue and failed
  runs to the configured webhook / e-mail (launch nothing; off when unconfigured).

Each reads its thresholds from the environment when it ticks (``core.automation.thresholds_from``), and
the rules that decide are pure functions in ``core/automation.py``.
"""

from labeling_assets.sensors.alerts import alerts_sensor, run_failure_alert_sensor
from labeling_assets.sensors.annotations import annotation_sensor
from labeling_assets.sensors.intake import intake_sensor
from labeling_assets.sensors.queue import queue_top_up_sensor
from labeling_assets.sensors.raw_data import raw_data_sensor
from labeling_assets.sensors.retrain import retrain_sensor
from labeling_assets.sensors.webhooks import touched_tasks_sensor

__all__ = [
    "alerts_sensor",
    "annotation_sensor",
    "intake_sensor",
    "queue_top_up_sensor",
    "raw_data_sensor",
    "retrain_sensor",
    "run_failure_alert_sensor",
    "touched_tasks_sensor",
]
