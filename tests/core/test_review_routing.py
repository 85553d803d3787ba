"""Which review requests raise a task's overlap (pure rules), and how raises are recorded in the store."""

import pandas as pd
import pytest
import sqlalchemy as sa

from labeling_assets.core.consensus.review_routing import (
    EXPERT_REVIEW,
    MORE_ANNOTATORS,
    OpenRequest,
    OverlapRaise,
    ReviewRequest,
    consensus_review_requests,
    overlap_drift,
    plan_overlap_raises,
)
from labeling_assets.core.labelstudio.tasks import QueuedItem
from labeling_assets.core.store.labelstudio_sync import link_tasks, reserve_tasks
from labeling_assets.core.store.migrations import MIGRATIONS
from labeling_assets.core.store.reviews import (
    open_review_requests,
    raised_task_overlaps,
    record_overlap_raises,
    sync_review_requests,
)
from labeling_assets.core.store.schema import (
    LabelStore,
    consensus_table,
    items_table,
    review_actions_table,
    review_requests_table,
    schema_migrations_table,
    tasks_table,
    utcnow,
)

PROJECT = 7


def _req(
    rid: int,
    item: str,
    *,
    action: str = MORE_ANNOTATORS,
    task: int | None = 100,
    required: int | None = 3,
    seen: int | None = 3,
) -> OpenRequest:
    return OpenRequest(
        request_id=rid,
        item_id=item,
        source="consensus",
        action=action,
        ls_task_id=task,
        required_annotations=required,
        n_annotators=seen,
    )


# --- pure rules --------------------------------------------------------------------------------


def test_a_request_whose_overlap_was_delivered_raises_it_by_one() -> None:
    plan = plan_overlap_raises([_req(1, "a", task=100, required=3, seen=3)], max_overlap=5)
    assert plan.raises == [OverlapRaise(1, "a", 100, 3, 4)]
    assert not plan.waiting and not plan.at_cap and not plan.expert and not plan.no_task


def test_a_request_still_waiting_for_the_annotators_already_asked_raises_nothing() -> None:
    # consensus ran on 2 of the 3 annotators the task asks for: the third is coming anyway
    plan = plan_overlap_raises([_req(1, "a", required=3, seen=2), _req(2, "b", seen=None)], max_overlap=5)
    assert plan.raises == []
    assert [r.item_id for r in plan.waiting] == ["a", "b"]


def test_replanning_after_a_raise_is_idempotent_until_consensus_sees_the_new_annotator() -> None:
    (step,) = plan_overlap_raises([_req(1, "a", required=3, seen=3)], max_overlap=5).raises
    # the store now says 4; consensus still counts 3 -> nothing more, however often it runs
    after = _req(1, "a", required=step.overlap_to, seen=3)
    for _ in range(3):
        assert plan_overlap_raises([after], max_overlap=5).raises == []
    # the fourth annotator came, consensus re-ran and the request is still open: one more round
    nxt = plan_overlap_raises([_req(1, "a", required=4, seen=4)], max_overlap=5).raises
    assert nxt == [OverlapRaise(1, "a", 100, 4, 5)]


def test_the_cap_is_never_exceeded_and_capped_items_need_an_expert() -> None:
    plan = plan_overlap_raises(
        [
            _req(1, "a", required=5, seen=5),
            _req(2, "b", required=4, seen=4),
            _req(3, "c", required=3, seen=6),
        ],
        max_overlap=5,
    )
    assert plan.raises == [OverlapRaise(2, "b", 100, 4, 5)]
    assert [r.item_id for r in plan.at_cap] == ["a", "c"]  # c already holds more than the cap
    assert [r.item_id for r in plan.needs_expert] == ["a", "c"]
    assert all(s.overlap_to <= 5 for s in plan.raises)


def test_the_raise_counts_from_what_was_delivered_when_that_exceeds_the_overlap() -> None:
    (step,) = plan_overlap_raises([_req(1, "a", required=3, seen=4)], max_overlap=9).raises
    assert (step.overlap_from, step.overlap_to) == (3, 5)


def test_expert_requests_and_items_without_a_task_are_reported_not_raised() -> None:
    plan = plan_overlap_raises(
        [_req(1, "a", action=EXPERT_REVIEW), _req(2, "b", task=None, required=None)], max_overlap=5
    )
    assert plan.raises == []
    assert [r.item_id for r in plan.expert] == ["a"]
    assert [r.item_id for r in plan.no_task] == ["b"]


def test_an_item_with_two_open_requests_is_raised_once_for_the_oldest() -> None:
    plan = plan_overlap_raises(
        [_req(9, "a"), _req(4, "a"), _req(5, "a", action=EXPERT_REVIEW)], max_overlap=5
    )
    assert plan.raises == [OverlapRaise(4, "a", 100, 3, 4)]
    assert [r.request_id for r in plan.expert] == [5]


def test_max_overlap_below_one_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="max_overlap"):
        plan_overlap_raises([], max_overlap=0)


def test_drift_only_raises_tasks_label_studio_still_has() -> None:
    assert overlap_drift({1: 4, 2: 4, 3: 5, 4: 4}, {1: 3, 2: 4, 3: 6}) == {1: 4}


# --- store side --------------------------------------------------------------------------------


def _seed(store: LabelStore, n_annotators: dict[str, int]) -> list[str]:
    ids = sorted(n_annotators)
    now = utcnow()
    with store.begin() as conn:
        conn.execute(
            items_table.insert(),
            [
                {
                    "item_id": i,
                    "uri": f"/x/{i}",
                    "source_path": i,
                    "n_bytes": 1,
                    "ingested_at": now,
                    "status": "active",
                }
                for i in ids
            ],
        )
        conn.execute(
            consensus_table.insert(),
            [
                {
                    "item_id": i,
                    "version": 1,
                    "label": "cat",
                    "method": "majority",
                    "confidence": 0.5,
                    "n_annotators": n,
                    "computed_at": now,
                }
                for i, n in n_annotators.items()
            ],
        )
    reserve_tasks(
        store, PROJECT, [QueuedItem(i, False, k, 1.0, None, None) for k, i in enumerate(ids)], overlap=3
    )
    link_tasks(store, PROJECT, {i: 100 + k for k, i in enumerate(ids)})
    return ids


def _request(store: LabelStore, item: str, action: str = MORE_ANNOTATORS, resolved: bool = False) -> int:
    with store.begin() as conn:
        return int(
            conn.execute(
                review_requests_table.insert().values(
                    item_id=item,
                    source="consensus",
                    action=action,
                    reason="confidence 0.50 < 0.70",
                    requested_at=utcnow(),
                    resolved_at=utcnow() if resolved else None,
                )
            ).inserted_primary_key[0]
        )


def test_open_requests_carry_their_task_and_latest_consensus(store: LabelStore) -> None:
    a, b = _seed(store, {"a" * 64: 3, "b" * 64: 2})
    ra = _request(store, a)
    _request(store, b, resolved=True)  # closed: not acted on
    rx = _request(store, "f" * 64, EXPERT_REVIEW)  # an item never queued
    got = {r.request_id: r for r in open_review_requests(store, PROJECT)}
    assert set(got) == {ra, rx}
    assert (got[ra].ls_task_id, got[ra].required_annotations, got[ra].n_annotators) == (100, 3, 3)
    assert got[rx].ls_task_id is None and got[rx].n_annotators is None
    assert (
        open_review_requests(store, PROJECT + 1)[0].ls_task_id is None
    )  # another project's task is not ours


def test_recording_a_raise_updates_the_task_once_and_keeps_an_audit_row(store: LabelStore) -> None:
    a, b = _seed(store, {"a" * 64: 3, "b" * 64: 2})
    _request(store, a)
    _request(store, b)
    plan = plan_overlap_raises(open_review_requests(store, PROJECT), max_overlap=5)
    assert [s.item_id for s in plan.raises] == [a]  # b still waits for its third annotator
    assert record_overlap_raises(store, PROJECT, plan.raises) == plan.raises
    # a second run with the same (stale) plan changes nothing: compare-and-set on required_annotations
    assert record_overlap_raises(store, PROJECT, plan.raises) == []
    assert plan_overlap_raises(open_review_requests(store, PROJECT), max_overlap=5).raises == []
    required = {r["item_id"]: r["required_annotations"] for r in store.fetch(sa.select(tasks_table))}
    assert required == {a: 4, b: 3}
    (audit,) = store.fetch(sa.select(review_actions_table))
    assert (audit["item_id"], audit["ls_task_id"], audit["overlap_from"], audit["overlap_to"]) == (
        a,
        100,
        3,
        4,
    )
    assert raised_task_overlaps(store, PROJECT) == {100: 4}
    assert raised_task_overlaps(store, PROJECT + 1) == {}


def test_migration_2_adds_review_actions_to_a_database_made_before_it(tmp_path) -> None:
    store = LabelStore(f"sqlite:///{tmp_path / 'old.db'}")
    with store.begin() as conn:  # a store as m001 alone made it, before review_actions existed
        schema_migrations_table.create(conn)
        MIGRATIONS[0].apply(conn)
        conn.exec_driver_sql("DROP TABLE review_actions")
        conn.execute(
            schema_migrations_table.insert().values(version=1, name=MIGRATIONS[0].name, applied_at=utcnow())
        )
    assert not sa.inspect(store.engine).has_table("review_actions")
    assert 2 in store.migrate()
    assert sa.inspect(store.engine).has_table("review_actions")
    assert store.migrate() == []
    store.dispose()


# --- recording review requests (consensus_labels and label_issues share this) --------------------------


def test_a_low_confidence_item_asks_for_more_labelers_until_it_has_the_most_allowed() -> None:
    labels = pd.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "confidence": [0.5, 0.6, 0.9],
            "n_annotators": [2, 5, 3],
            "agreement": [0.5, 0.6, 1.0],
        }
    )
    requests, confident = consensus_review_requests(
        labels, threshold=0.7, action=MORE_ANNOTATORS, max_annotators=5, reason_prefix="majority consensus"
    )
    assert [(r.item_id, r.action) for r in requests] == [("a", MORE_ANNOTATORS), ("b", EXPERT_REVIEW)]
    assert requests[0].reason.startswith("majority consensus: confidence 0.50 < 0.70")
    assert confident == ["c"]


def _open_requests(store: LabelStore, source: str) -> list[tuple[str, str]]:
    rr = review_requests_table
    rows = store.fetch(
        sa.select(rr.c.item_id, rr.c.action).where(rr.c.source == source, rr.c.resolved_at.is_(None)).order_by(rr.c.id)
    )
    return [(r["item_id"], r["action"]) for r in rows]


def test_an_item_holds_at_most_one_open_request_per_source_and_settled_items_close_theirs(store: LabelStore) -> None:
    wanted = [ReviewRequest("a", MORE_ANNOTATORS, "unsure"), ReviewRequest("b", EXPERT_REVIEW, "unsure")]
    first = sync_review_requests(store, "consensus", wanted, settled=[])
    assert (first.requested, first.already_open, first.resolved) == ({MORE_ANNOTATORS: 1, EXPERT_REVIEW: 1}, 0, 0)
    again = sync_review_requests(store, "consensus", wanted, settled=[])
    assert (again.requested, again.already_open) == ({}, 2)
    # Another source keeps its own request for the same item.
    sync_review_requests(store, "label_issues", [ReviewRequest("a", EXPERT_REVIEW, "issue")], settled=[])
    settled = sync_review_requests(store, "consensus", [], settled=["a", "z"])
    assert settled.resolved == 1
    assert _open_requests(store, "consensus") == [("b", EXPERT_REVIEW)]
    assert _open_requests(store, "label_issues") == [("a", EXPERT_REVIEW)]
