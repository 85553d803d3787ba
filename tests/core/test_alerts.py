"""Alerts go out once per channel as one line with a link, to a real local webhook receiver and a real local SMTP
server; a failed delivery is one log line without the secret and is retried on the next tick."""

import datetime as dt
import socket

import numpy as np
import pytest

from labeling_assets.core.alerts.delivery import Alert, Channels, mask_url
from labeling_assets.core.alerts.notices import Links, drift_notices, pause_notices, stalled_queue_notice
from labeling_assets.core.alerts.outbox import send_new
from labeling_assets.core.store.human_loop import PAUSE, record_pause_event
from labeling_assets.core.store.schema import LabelStore, annotations_table, items_table, tasks_table, utcnow
from tests.core.alert_receivers import smtp_server, webhook_receiver

TOKEN = "s3cr3t-token"
PASSWORD = "hunter2-smtp"
ALERT = Alert("drift:gold_accuracy:ann:2026-W12", "Drift: ann's gold accuracy fell from 95% to 75% since 2026-W12: "
              "review ann's last 200 answers.", "http://localhost:3000/assets/labeler_stats?partition=ann")  # fmt: skip


def test_the_webhook_gets_one_slack_line_with_the_link_and_the_next_tick_sends_nothing(sqlite_store: LabelStore) -> None:
    logs: list[str] = []
    with webhook_receiver(f"/services/T000/B000/{TOKEN}") as receiver:
        channels = Channels(webhook_url=receiver.url)
        first = send_new(sqlite_store, channels, [ALERT], log=logs.append)
        second = send_new(sqlite_store, channels, [ALERT], log=logs.append)
    assert receiver.bodies == [{"text": f"{ALERT.text} {ALERT.link}"}]
    assert first.sent == [f"webhook:{ALERT.key}"] and second.sent == [] and second.already == 1
    assert logs == []


def test_an_email_goes_through_a_real_smtp_server_with_login(sqlite_store: LabelStore) -> None:
    with smtp_server("alerts-bot", PASSWORD) as server:
        channels = Channels(smtp_host="127.0.0.1", smtp_port=server.port, smtp_user="alerts-bot",
                            smtp_password=PASSWORD, smtp_from="labeling@example.org", smtp_to=["ops@example.org"])  # fmt: skip
        outcome = send_new(sqlite_store, channels, [ALERT], log=print)
        send_new(sqlite_store, channels, [ALERT], log=print)
    assert outcome.sent == [f"email:{ALERT.key}"]
    assert server.logins == ["alerts-bot"]
    [message] = server.messages
    assert " ".join(message["Subject"].split()) == ALERT.text  # unfolded: long subjects wrap onto several lines
    assert message["To"] == "ops@example.org"
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes) and ALERT.link is not None and ALERT.link in body.decode()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed on leaving: nothing listens there


def test_a_failed_delivery_is_one_line_without_secrets_and_is_retried_next_tick(
    sqlite_store: LabelStore, caplog: pytest.LogCaptureFixture
) -> None:
    logs: list[str] = []
    with webhook_receiver(f"/services/T000/B000/{TOKEN}") as receiver:
        receiver.fail_next = 1
        channels = Channels(webhook_url=receiver.url, smtp_host="127.0.0.1", smtp_port=_closed_port(),
                            smtp_user="alerts-bot", smtp_password=PASSWORD, smtp_to=["ops@example.org"])  # fmt: skip
        failed = send_new(sqlite_store, channels, [ALERT], log=logs.append)  # HTTP 500; no SMTP server
        retried = send_new(sqlite_store, channels, [ALERT], log=logs.append)
    assert failed.sent == [] and len(failed.failed) == 2
    assert retried.sent == [f"webhook:{ALERT.key}"]  # the receiver is back; the SMTP server is still down
    assert len(receiver.bodies) == 1
    assert len(logs) == 3 and all("\n" not in line for line in logs)
    assert logs[0].startswith("webhook delivery to http://127.0.0.1:") and "HTTP Error 500" in logs[0]
    assert "email delivery to 127.0.0.1:" in logs[1] and "Connection refused" in logs[1]
    for text in [*logs, caplog.text]:
        assert TOKEN not in text and PASSWORD not in text and "/services/" not in text


def test_mask_url_keeps_only_scheme_host_and_port() -> None:
    assert mask_url("https://hooks.slack.com/services/T0/B0/xyz?token=abc") == "https://hooks.slack.com/***"
    assert mask_url("http://user:pw@127.0.0.1:8080/hook") == "http://127.0.0.1:8080/***"
    assert mask_url("not a url") == "***"


def test_an_automatic_pause_is_one_alert_naming_the_command_that_resumes(sqlite_store: LabelStore) -> None:
    record_pause_event(sqlite_store, "7", PAUSE, reason="gold accuracy surely below 0.8", actor="gate",
                       label_studio_effect=None)  # fmt: skip
    record_pause_event(sqlite_store, "8", PAUSE, reason="asked by a person", actor="cli", label_studio_effect=None)
    [alert] = pause_notices(sqlite_store, Links("http://dagster:3000"))
    assert alert.key.startswith("pause:") and "gold accuracy surely below 0.8" in alert.text
    assert "labeling-assets labeler resume 7" in alert.text
    assert alert.link == "http://dagster:3000/assets/labeler_stats?partition=7"


def test_open_tasks_with_no_answer_for_a_day_are_a_stalled_queue(sqlite_store: LabelStore) -> None:
    pushed = utcnow() - dt.timedelta(hours=30)
    with sqlite_store.begin() as conn:
        conn.execute(items_table.insert(), [{"item_id": f"i{n}", "source_path": f"i{n}", "n_bytes": 1,
                                             "ingested_at": pushed, "status": "active"} for n in range(3)])  # fmt: skip
        conn.execute(tasks_table.insert(), [{"item_id": f"i{n}", "ls_project_id": 4, "ls_task_id": n + 1,
                                             "pushed_at": pushed, "required_annotations": 3, "is_gold": False}
                                            for n in range(3)])  # fmt: skip
    links = Links(label_studio_url="http://ls:8080")
    day = dt.timedelta(hours=24)
    alert = stalled_queue_notice(sqlite_store, links, stall_after=day, now=utcnow())
    assert alert is not None and alert.text.startswith("Queue stalled: 3 open tasks and no answer for 30 h")
    assert alert.link == "http://ls:8080/projects/4/data"
    assert stalled_queue_notice(sqlite_store, links, stall_after=day, now=pushed + dt.timedelta(hours=2)) is None


def test_a_labeler_whose_gold_accuracy_drops_is_a_drift_alert_read_from_the_store(sqlite_store: LabelStore) -> None:
    """The alerts sensor's drift path end to end on a store: votes and gold in, one alert with the labeler's link."""
    rng = np.random.default_rng(0)
    monday = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)
    items: list[dict[str, object]] = []
    answers: list[dict[str, object]] = []
    for week in range(12):
        for n in range(50):
            item = f"{week:02d}{n:02d}".ljust(64, "0")
            right = rng.random() < (0.95 if week < 8 else 0.70)
            at = monday + dt.timedelta(weeks=week, minutes=n)
            items.append({"item_id": item, "source_path": item, "n_bytes": 1, "ingested_at": at, "status": "active",
                          "gold_label": "a"})  # fmt: skip
            answers.append({"ls_annotation_id": len(answers) + 1, "version": 1, "item_id": item, "labeler_id": "7",
                            "label": "a" if right else "b", "lead_time_s": 12.0, "created_at": at, "synced_at": at,
                            "deleted": False, "content_hash": str(len(answers))})  # fmt: skip
    with sqlite_store.begin() as conn:
        conn.execute(items_table.insert(), items)
        conn.execute(annotations_table.insert(), answers)
    alerts = drift_notices(sqlite_store, ["a", "b"], Links("http://dagster:3000"))
    gold = [a for a in alerts if a.key.startswith("drift:gold_accuracy:")]
    assert [a.key for a in gold] == ["drift:gold_accuracy:7:2026-W10"]  # week 8 after 2026-W02
    assert "review 7's last 200 answers" in gold[0].text
    assert gold[0].link == "http://dagster:3000/assets/labeler_stats?partition=7"
