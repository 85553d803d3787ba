"""The webhook receiver: refuses what is not Label Studio's, records the touched tasks durably, answers at once.

Starlette's TestClient drives the real app against a real SQLite store (no server, fast tier).
"""

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from labeling_assets.core.labelstudio.webhooks import SECRET_HEADER
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.core.store.webhook_inbox import consume_through, pending, pending_count
from labeling_assets.webhooks.app import PATH, create_app

SECRET = "s3cret-for-tests"
GOOD = {SECRET_HEADER: SECRET}


def created(task_id: int, annotation_id: int = 1, project_id: int = 7) -> dict[str, object]:
    """An ANNOTATION_CREATED event as Label Studio 1.23.2 posts it (payload trimmed to what is read)."""
    return {
        "action": "ANNOTATION_CREATED",
        "annotation": {"id": annotation_id, "task": task_id, "result": [], "completed_by": 3},
        "task": {"id": task_id, "data": {"item_id": "abc"}},
        "project": {"id": project_id, "title": "p"},
    }


@pytest.fixture
def client(sqlite_store: LabelStore) -> TestClient:
    return TestClient(create_app(sqlite_store, SECRET, max_body=4096))


def test_an_event_with_the_secret_records_its_task_and_answers_200(client: TestClient, sqlite_store: LabelStore) -> None:
    answer = client.post(PATH, json=created(41), headers=GOOD)
    assert (answer.status_code, answer.json()) == (200, {"recorded": 1})
    found = pending(sqlite_store)
    assert found is not None and found.task_ids == (41,)


def test_every_action_of_ours_names_its_tasks(client: TestClient, sqlite_store: LabelStore) -> None:
    events = [
        {"action": "ANNOTATION_UPDATED", "annotation": {"id": 2, "task": 5}, "project": {"id": 7}},
        {"action": "ANNOTATIONS_CREATED", "annotation": [{"id": 3, "task": 6}, {"id": 4, "task": 6}], "project": {"id": 7}},
        {"action": "TASKS_DELETED", "tasks": [{"id": 8}, {"id": 9}], "project": {"id": 7}},
        {"action": "PROJECT_UPDATED", "project": {"id": 7}},  # touches no annotation: nothing recorded, still 200
    ]
    assert [client.post(PATH, json=e, headers=GOOD).json() for e in events] == [
        {"recorded": 1}, {"recorded": 1}, {"recorded": 2}, {"recorded": 0}
    ]
    found = pending(sqlite_store)
    assert found is not None and found.task_ids == (5, 6, 8, 9)


def test_without_or_with_a_wrong_secret_it_is_refused_401_and_nothing_is_recorded(
    client: TestClient, sqlite_store: LabelStore, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="labeling_assets.webhooks"):
        assert client.post(PATH, json=created(1)).status_code == 401
        assert client.post(PATH, json=created(1), headers={SECRET_HEADER: SECRET + "x"}).status_code == 401
    assert pending_count(sqlite_store) == 0
    assert SECRET not in caplog.text  # the secret is never logged


def test_a_body_over_the_limit_is_refused_413_declared_or_streamed(client: TestClient, sqlite_store: LabelStore) -> None:
    big = json.dumps({**created(1), "padding": "x" * 5000})
    assert client.post(PATH, content=big, headers=GOOD).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        yield big[:3000].encode()
        yield big[3000:].encode()

    assert client.post(PATH, content=chunks(), headers=GOOD).status_code == 413
    assert pending_count(sqlite_store) == 0


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe", json.dumps({"action": "ANNOTATION_CREATED"}).encode(),
     json.dumps({"action": "ANNOTATION_CREATED", "annotation": {"task": "seven"}}).encode(),
     json.dumps({"action": "TASKS_DELETED", "tasks": [{"id": -1}]}).encode(), b"[" * 100_000],
    ids=["truncated", "a list", "a string", "not utf-8", "no annotation", "task not an id", "negative id", "deep"],
)
def test_a_malformed_body_is_refused_400_in_one_log_line_and_the_receiver_goes_on(
    sqlite_store: LabelStore, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    client = TestClient(create_app(sqlite_store, SECRET, max_body=200_000))
    with caplog.at_level(logging.WARNING, logger="labeling_assets.webhooks"):
        assert client.post(PATH, content=body, headers=GOOD).status_code == 400
    assert [r.getMessage().count("\n") for r in caplog.records] == [0]
    assert client.post(PATH, json=created(3), headers=GOOD).status_code == 200  # still serving


def test_recorded_tasks_survive_a_restart_until_a_sync_consumes_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'labels.db'}"
    first = LabelStore(url)
    first.migrate()
    TestClient(create_app(first, SECRET)).post(PATH, json=created(12), headers=GOOD)
    first.dispose()  # the receiver goes away; the row stays
    again = LabelStore(url)
    found = pending(again)
    assert found is not None and found.task_ids == (12,)
    assert consume_through(again, found.through_id) == 1
    assert pending(again) is None


def test_a_store_that_cannot_be_written_answers_503(tmp_path: Path) -> None:
    store = LabelStore(f"sqlite:///{tmp_path / 'labels.db'}")  # never migrated: no webhook_inbox table
    answer = TestClient(create_app(store, SECRET)).post(PATH, json=created(1), headers=GOOD)
    assert answer.status_code == 503


def test_an_empty_secret_is_refused_at_start(sqlite_store: LabelStore) -> None:
    with pytest.raises(ValueError, match="LABELING_ASSETS_WEBHOOK_SECRET"):
        create_app(sqlite_store, "")
