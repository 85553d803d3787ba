"""Alerts: one line a person can act on, with a link, posted to a webhook (Slack-compatible) and/or by e-mail.

``delivery`` sends (urllib, smtplib) and masks secrets in what it logs; ``notices`` gathers what deserves an alert
from the label store (drift alarms, automatic pauses, a stalled queue); ``outbox`` sends each alert once per channel
and remembers it in ``alerts_sent``. Pure: no Dagster import; the sensors in ``labeling_assets/sensors/alerts.py``
add failed runs and failed blocking checks and call these.
"""
