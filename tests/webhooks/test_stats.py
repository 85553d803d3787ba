"""GET /stats: the loop at a glance for a team's dashboard, read from a real label store (SQLite; fast tier).

It needs the webhook's secret header (it names labelers and why a gate paused them), never shows a secret, and
answers 503 in one line when the store cannot be read.
"""

import datetime as dt
import json
import logging

import pytest
from starlette.testclient import TestClient

from labeling_assets.core.labelstudio.webhooks import SECRET_HEADER
from labeling_assets.core.store.human_loop import record_pause_event
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    consensus_table,
    dataset_versions_table,
    items_table,
    labeler_stats_table,
    labelers_table,
    prelabels_table,
    tasks_table,
)
from labeling_assets.webhooks.app import STATS_PATH, create_app

SECRET = "stats-secret-for-tests"
AT = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)


def _fill(store: LabelStore) -> None:
    """4 items (3 active, 1 quarantined); 2 pushed tasks of overlap 2, one answered twice, one once; an active item
    never queued; labelers ann (gate-paused) and bob; one consensus; two dataset versions; baseline then champion
    pre-labels."""
    items = [
        {"item_id": f"i{n}", "uri": f"/raw/i{n}", "source_path": f"{n}.png", "n_bytes": 1, "ingested_at": AT,
         "status": "quarantined" if n == 3 else "active"}
        for n in range(4)
    ]  # fmt: skip
    tasks = [
        {"item_id": f"i{n}", "ls_project_id": 1, "ls_task_id": 10 + n, "pushed_at": AT, "required_annotations": 2}
        for n in range(2)
    ]
    votes = [("i0", "u1", 100), ("i0", "u2", 101), ("i1", "u1", 102)]
    answers = [
        {"ls_annotation_id": ann, "version": 1, "ls_task_id": 10 if item == "i0" else 11, "item_id": item,
         "labeler_id": who, "label": ["cat"], "created_at": AT, "updated_at": AT, "synced_at": AT, "deleted": False,
         "content_hash": f"h{ann}"}
        for item, who, ann in votes
    ]  # fmt: skip
    with store.begin() as conn:
        conn.execute(items_table.insert(), items)
        conn.execute(tasks_table.insert(), tasks)
        conn.execute(annotations_table.insert(), answers)
        conn.execute(labelers_table.insert(), [
            {"labeler_id": "u1", "display_name": "ann", "first_seen_at": AT},
            {"labeler_id": "u2", "display_name": "bob", "first_seen_at": AT},
        ])  # fmt: skip
        conn.execute(labeler_stats_table.insert(), [
            {"labeler_id": "u1", "window": "all", "gold_accuracy": 0.9, "kappa_vs_consensus": 0.8, "n_labels": 2,
             "computed_at": AT},
            {"labeler_id": "u1", "window": "all", "gold_accuracy": 0.55, "kappa_vs_consensus": 0.2, "n_labels": 3,
             "computed_at": AT + dt.timedelta(days=1)},
            {"labeler_id": "u1", "window": "2026-W49", "gold_accuracy": 0.1, "kappa_vs_consensus": 0.0, "n_labels": 1,
             "computed_at": AT},
        ])  # fmt: skip
        conn.execute(consensus_table.insert(), [
            {"item_id": "i0", "version": 1, "label": "cat", "method": "majority", "confidence": 1.0, "n_annotators": 2,
             "run_id": "r", "computed_at": AT},
        ])  # fmt: skip
        conn.execute(dataset_versions_table.insert(), [
            {"dataset_version": "v-old", "created_at": AT, "n_items": 1},
            {"dataset_version": "v-new", "created_at": AT + dt.timedelta(hours=1), "n_items": 2},
        ])  # fmt: skip
        conn.execute(prelabels_table.insert(), [
            {"item_id": "i0", "model_version": "baseline-logreg-px8-n10-abc", "probs": {"cat": 1.0}, "computed_at": AT},
            {"item_id": "i0", "model_version": "classifier/3", "probs": {"cat": 1.0}, "computed_at": AT + dt.timedelta(hours=2)},
        ])  # fmt: skip
    record_pause_event(store, "u1", "pause", reason="gold accuracy 0.55 < 0.7", actor="gate",
                       label_studio_effect="removed from the project", at=AT)  # fmt: skip


def test_stats_show_the_loop_from_the_store_to_a_caller_with_the_secret(sqlite_store: LabelStore) -> None:
    _fill(sqlite_store)
    client = TestClient(create_app(sqlite_store, SECRET))
    answer = client.get(STATS_PATH, headers={SECRET_HEADER: SECRET})
    assert answer.status_code == 200
    stats = answer.json()
    assert stats["items_by_status"] == {"active": 3, "quarantined": 1}
    assert stats["items_with_consensus"] == 1
    assert stats["open_tasks"] == 1  # i1 has 1 of its 2 answers; i0 is done
    assert stats["backlog"] == {"unqueued_items": 1, "expert_review": {"queued": 0, "answered": 0, "waiting": 0}}
    ann, bob = stats["labelers"]
    assert (ann["name"], ann["answers"], ann["gold_accuracy"], ann["kappa_vs_consensus"]) == ("ann", 2, 0.55, 0.2)
    assert (ann["paused"], ann["paused_by"], ann["pause_reason"]) == (True, "gate", "gold accuracy 0.55 < 0.7")
    assert ann["paused_since"].startswith("2026-12-07T12:00:00")
    assert (bob["name"], bob["answers"], bob["gold_accuracy"], bob["paused"], bob["paused_by"]) == ("bob", 1, None, False, None)
    assert stats["dataset_version"]["version"] == "v-new" and stats["dataset_version"]["items"] == 2
    assert stats["prelabel_model"]["model_version"] == "classifier/3"
    assert stats["champion"] == "classifier/3"
    assert SECRET not in answer.text


def test_a_resume_ends_the_pause_and_baseline_prelabels_are_no_champion(sqlite_store: LabelStore) -> None:
    _fill(sqlite_store)
    record_pause_event(sqlite_store, "u1", "resume", reason=None, actor="lead", label_studio_effect=None,
                       at=AT + dt.timedelta(hours=1))  # fmt: skip
    with sqlite_store.begin() as conn:
        conn.execute(prelabels_table.delete().where(prelabels_table.c.model_version == "classifier/3"))
    stats = TestClient(create_app(sqlite_store, SECRET)).get(STATS_PATH, headers={SECRET_HEADER: SECRET}).json()
    assert [(x["name"], x["paused"], x["paused_by"]) for x in stats["labelers"]] == [("ann", False, None), ("bob", False, None)]
    assert stats["prelabel_model"]["model_version"].startswith("baseline-") and stats["champion"] is None


def test_an_empty_store_gives_zeros_and_nulls(sqlite_store: LabelStore) -> None:
    stats = TestClient(create_app(sqlite_store, SECRET)).get(STATS_PATH, headers={SECRET_HEADER: SECRET}).json()
    assert (stats["items_by_status"], stats["open_tasks"], stats["labelers"]) == ({}, 0, [])
    assert (stats["dataset_version"], stats["prelabel_model"], stats["champion"]) == (None, None, None)
    json.dumps(stats)  # plain JSON all the way down


def test_without_the_secret_it_is_refused_and_a_broken_store_answers_503_in_one_line(
    sqlite_store: LabelStore, tmp_path: object, caplog: pytest.LogCaptureFixture
) -> None:
    client = TestClient(create_app(sqlite_store, SECRET))
    assert client.get(STATS_PATH).status_code == 401
    assert client.get(STATS_PATH, headers={SECRET_HEADER: "wrong"}).status_code == 401
    unmigrated = LabelStore(f"sqlite:///{tmp_path}/empty.db")  # no tables: every query fails
    try:
        with caplog.at_level(logging.ERROR, logger="labeling_assets.webhooks"):
            answer = TestClient(create_app(unmigrated, SECRET)).get(STATS_PATH, headers={SECRET_HEADER: SECRET})
    finally:
        unmigrated.dispose()
    assert (answer.status_code, answer.json()) == (503, {"error": "store unavailable"})
    assert [r.getMessage().count("\n") for r in caplog.records if r.levelno == logging.ERROR] == [0]
