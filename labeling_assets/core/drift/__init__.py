"""Drift alarms: changepoint detection on the weekly series the labeler statistics keep, and what to do about each.

``changepoint`` holds the detectors (CUSUM on counts and on a standardized value), ``alarms`` turns the label
store's votes, gold answers, consensus and prelabels into per-labeler and per-class series and alarms. Pure: no
Dagster import; the alerts sensor calls ``drift_alarms``. Thresholds come from benchmarks/drift_alarms.py.
"""
