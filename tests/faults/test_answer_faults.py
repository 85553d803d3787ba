"""Answers a labeler (or a script with a token) can leave in Label Studio that are not what our config asks for,
planted on the real Label Studio, then collected into real SQLite and PostgreSQL stores.

Label Studio stores results it cannot read itself: ``POST /api/tasks/{id}/annotations/`` with a region whose
``value`` is a string answers 500 and keeps the annotation, and every later export holds it. Such an answer, and
one of any other wrong shape, is stored with its reason, skipped as a vote and counted in the collect run's
metadata; no sync (the first, the incremental scan, the full reconciliation) stops on it.
"""

import json
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from labeling_assets.assets.collect import annotations
from labeling_assets.assets.consensus import consensus_labels
from labeling_assets.assets.qa_report import qa_report
from labeling_assets.core.consensus.votes import latest_votes
from labeling_assets.core.label_sets import SKIP_UNREADABLE
from labeling_assets.core.labelstudio.answers import (
    UNREADABLE_CHOICES,
    UNREADABLE_EMPTY,
    UNREADABLE_TYPE,
    UNREADABLE_VALUE,
)
from labeling_assets.core.store.answers_schema import unreadable_answers_table
from labeling_assets.core.store.queries import current_annotations
from labeling_assets.core.store.schema import LabelStore, annotations_table
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from tests.faults.test_sync_faults import CLASSES, Project, build_project, collect
from tests.labelstudio_server import LabelStudioServer

pytestmark = pytest.mark.labelstudio

REGION = {"from_name": "label", "to_name": "image", "type": "choices"}
# Each a shape Label Studio 1.23.2 stores (some with a 500 answer), and the reason it holds no label.
MALFORMED: list[tuple[Any, str]] = [
    ([{**REGION, "value": "cat"}], UNREADABLE_VALUE),  # the 500 "'str' object has no attribute 'get'"
    ([{**REGION, "value": {"choices": "cat"}}], UNREADABLE_CHOICES),  # read as ['c', 'a', 't'] before
    ([{**REGION, "type": "rectanglelabels", "value": {"x": 1}}], UNREADABLE_TYPE),
    ([], UNREADABLE_EMPTY),
]


def plant(project: Project, task_id: int, result: Any, labeler: str) -> int:
    """Post ``result`` as ``labeler``'s annotation of ``task_id`` whatever Label Studio answers; the stored id."""
    client = project.client
    before = {a["id"] for a in client.request("GET", f"/api/tasks/{task_id}/")["annotations"]}
    client.request(
        "POST", f"/api/tasks/{task_id}/annotations/", ok=(201, 500),
        json={"result": result, "completed_by": project.users[labeler]},
    )  # fmt: skip
    after = {a["id"] for a in client.request("GET", f"/api/tasks/{task_id}/")["annotations"]}
    (new,) = after - before  # stored, even when the answer was a 500
    return int(new)


def metadata(result: Any) -> dict[str, Any]:
    (event,) = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_malformed_answers_are_stored_skipped_as_votes_and_counted_and_never_stop_a_sync(
    label_studio: LabelStudioServer, store: LabelStore, capfd: pytest.CaptureFixture[str]
) -> None:
    project = build_project(label_studio, store)
    assert collect(project).success  # the first (full) sync, before anything malformed exists
    capfd.readouterr()
    planted = {plant(project, project.task_ids[n], result, "fault_c"): reason
               for n, (result, reason) in enumerate(MALFORMED)}  # fmt: skip
    expected = {reason: 1 for reason in planted.values()}

    # The incremental scan (it reads the four changed tasks), the reconciliation, a re-poll: each succeeds.
    for config, reads_them in (({}, True), ({"full": True}, True), ({}, False)):
        result = collect(project, **config)
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        shown = metadata(result)
        assert shown["current_unreadable_answers"] == len(MALFORMED)
        if reads_them:
            assert shown["unreadable_answers"] == expected
            assert {e["ls_annotation_id"] for e in shown["unreadable_examples"]} <= set(planted)

    # On the console: one warning line per sync naming them (the run log's 127-line traceback before), no trace.
    printed = capfd.readouterr()
    assert "Stack Trace" not in printed.err and "Traceback" not in printed.err
    warned = [line for line in printed.err.splitlines() if "answers hold no label" in line]
    assert warned and all(" - WARNING - " in line for line in warned)

    # Stored, once each, with no label; the result as Label Studio held it and the reason kept beside.
    a, u = annotations_table, unreadable_answers_table
    rows = store.fetch(sa.select(a.c.ls_annotation_id, a.c.version, a.c.label, a.c.deleted)
                       .where(a.c.ls_annotation_id.in_(planted)))  # fmt: skip
    assert sorted((r["ls_annotation_id"], r["version"], r["label"], r["deleted"]) for r in rows) == sorted(
        (ls_id, 1, None, False) for ls_id in planted
    )
    kept = {r["ls_annotation_id"]: r for r in store.fetch(sa.select(u))}
    assert {ls_id: r["reason"] for ls_id, r in kept.items()} == planted
    by_reason = {r["reason"]: r["result"] for r in kept.values()}
    assert by_reason[UNREADABLE_VALUE] == MALFORMED[0][0]

    # Consensus skips them as votes, counted; every other answer is a vote as before.
    votes = latest_votes(current_annotations(store), CLASSES)
    assert votes.skipped.get(SKIP_UNREADABLE) == len(MALFORMED)
    assert len(votes.frame) == 2 * len(project.task_ids)


HUGE = 1_000_000  # characters of one planted choice
METADATA_BOUND = 64_000  # bytes of one materialization's metadata, as JSON
REPORT_BOUND = 500_000  # bytes of the QA report page (its charts are ~100 kB; the planted answer alone is 1 MB)


def test_a_megabyte_answer_stays_whole_in_the_store_and_bounded_in_metadata_consoles_and_the_report(
    label_studio: LabelStudioServer, sqlite_store: LabelStore, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    project = build_project(label_studio, sqlite_store)
    huge = "m" * HUGE
    plant(project, project.task_ids[0], [{**REGION, "value": {"choices": [huge]}}], "fault_c")
    plant(project, project.task_ids[1], [{**REGION, "value": {"choices": [huge + "|<b>"]}}], "fault_c")
    capfd.readouterr()

    result = dg.materialize(
        [annotations, consensus_labels, qa_report],
        resources={
            "label_store": LabelStoreResource(url=sqlite_store.url),
            "label_studio": project.resource(),
            "project": ProjectSettings(classes=CLASSES, data_dir=str(tmp_path)),
        },
        raise_on_error=False,
    )
    printed = capfd.readouterr()
    assert result.success, [e.message for e in result.all_events if e.is_failure]

    # The store keeps what the labeler sent, whole.
    a = annotations_table
    stored = [r["label"] for r in sqlite_store.fetch(sa.select(a.c.label)) if isinstance(r["label"], str)]
    assert huge in stored and huge + "|<b>" in stored
    # Metadata, the console and the report show a bounded form of it.
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        size = len(json.dumps({k: str(v.value) for k, v in mat.metadata.items()}))
        assert size < METADATA_BOUND, (mat.asset_key.to_user_string(), size)
    assert "m" * 10_000 not in printed.out + printed.err
    assert len(printed.out) + len(printed.err) < 2 * METADATA_BOUND
    report = tmp_path / "reports" / "qa_report.html"
    assert report.stat().st_size < REPORT_BOUND
