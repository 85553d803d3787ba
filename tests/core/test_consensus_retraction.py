"""Rules of derived data following its sources (core/consensus/retraction.py) and their store side
(migration 5, class list versions, source conflicts), on SQLite and PostgreSQL."""

import hashlib

import sqlalchemy as sa

from labeling_assets.core.consensus.retraction import (
    LiveConsensus,
    TaskState,
    class_list_diff,
    newest_descendant,
    plan_requeues,
    retraction_reason,
)
from labeling_assets.core.labelstudio.config import choices_label_config, config_choices
from labeling_assets.core.store.consensus_versions import record_class_list
from labeling_assets.core.store.derived_schema import item_conflicts_table
from labeling_assets.core.store.migrations import MIGRATIONS
from labeling_assets.core.store.reviews import conflicts_to_mark, detect_conflicts
from labeling_assets.core.store.schema import (
    LabelStore,
    consensus_table,
    items_table,
    latest_consensus_query,
    schema_migrations_table,
    tasks_table,
    utcnow,
)

CLASSES = ["cat", "dog"]


def _live(**kw: object) -> LiveConsensus:
    base: dict[str, object] = {"item_id": "a", "label": "cat", "status": "active", "live_votes": 2, "removed_class_votes": 0}
    return LiveConsensus(**{**base, **kw})  # type: ignore[arg-type]


def test_a_consensus_stands_while_its_item_is_active_with_enough_live_votes_of_listed_classes() -> None:
    assert retraction_reason(_live(), aggregated=False, min_annotators=2, classes=CLASSES) is None
    too_few = retraction_reason(_live(live_votes=1), aggregated=False, min_annotators=2, classes=CLASSES)
    assert too_few == "too_few_live_votes: 1 live votes < min_annotators 2"
    stale = retraction_reason(_live(label="eel"), aggregated=False, min_annotators=2, classes=CLASSES)
    assert stale is not None and stale.startswith("class_removed")
    gone = _live(status="superseded", superseded_by="b")
    assert retraction_reason(gone, aggregated=True, min_annotators=2, classes=CLASSES) == (
        "item_superseded: the source file changed; replaced by item b"
    )
    assert retraction_reason(_live(live_votes=0), aggregated=True, min_annotators=2, classes=CLASSES) is None


def test_a_deleted_task_is_recreated_only_after_collect_recorded_the_deletion() -> None:
    waiting = TaskState("a", 7, required=2, live_votes=2, held=2, in_label_studio=False)
    recorded = TaskState("b", 8, required=2, live_votes=0, held=0, in_label_studio=False)
    plan = plan_requeues([waiting, recorded], max_overlap=5)
    assert plan.waiting_for_collect == ["a"]
    assert [(r.item_id, r.action, r.overlap_to) for r in plan.recreate] == [("b", "task_recreated", 2)]


def test_answers_that_stopped_counting_raise_the_overlap_by_as_many_once_and_never_past_the_cap() -> None:
    lost = TaskState("a", 7, required=2, live_votes=0, held=2, in_label_studio=True, ls_overlap=2)
    (step,) = plan_requeues([lost], max_overlap=5).raise_overlap
    assert (step.overlap_from, step.overlap_to) == (2, 4)
    raised = TaskState("a", 7, required=2, live_votes=0, held=2, in_label_studio=True, ls_overlap=4)
    assert plan_requeues([raised], max_overlap=5).raise_overlap == []  # idempotent
    capped = TaskState("a", 7, required=2, live_votes=0, held=2, in_label_studio=True, ls_overlap=2)
    assert plan_requeues([capped], max_overlap=3).raise_overlap[0].overlap_to == 3
    in_progress = TaskState("c", 9, required=3, live_votes=1, held=1, in_label_studio=True, ls_overlap=3)
    assert plan_requeues([in_progress], max_overlap=5).raise_overlap == []  # just not labeled yet


def test_votes_given_while_paused_reopen_the_task_by_as_many_and_the_audit_says_why() -> None:
    paused = TaskState("a", 7, required=3, live_votes=2, held=3, in_label_studio=True, ls_overlap=3, paused_votes=1)
    (step,) = plan_requeues([paused], max_overlap=5).raise_overlap
    assert (step.overlap_from, step.overlap_to, step.paused_votes) == (3, 4, 1)
    assert "1 by paused labelers" in step.reason and "class list" not in step.reason
    both = TaskState("b", 8, required=3, live_votes=1, held=3, in_label_studio=True, ls_overlap=3, paused_votes=1)
    (mixed,) = plan_requeues([both], max_overlap=5).raise_overlap
    assert mixed.overlap_to == 5 and "1 by paused labelers, 1 not valid under the current class list" in mixed.reason
    # After a resume the paused votes still do not count: the plan keeps the raised overlap, never lowers it.
    resumed = TaskState("a", 7, required=3, live_votes=2, held=3, in_label_studio=True, ls_overlap=4, paused_votes=1)
    assert plan_requeues([resumed], max_overlap=5).raise_overlap == []
    filled = TaskState("a", 7, required=3, live_votes=3, held=4, in_label_studio=True, ls_overlap=4, paused_votes=1)
    assert plan_requeues([filled], max_overlap=5).raise_overlap == []  # another labeler made up for it


def test_class_list_diff_and_descendants_and_config_choices_round_trip() -> None:
    assert class_list_diff(["cat", "dog", "eel"], ["cat", "dog", "fox"]) == (["fox"], ["eel"])
    assert newest_descendant("a", {"a": "b", "b": "c"}) == "c" and newest_descendant("z", {}) is None
    assert config_choices(choices_label_config(['say "hi"', "a<b"])) == ['say "hi"', "a<b"]
    assert config_choices("<View><Text name='t' value='$t'/></View>") is None
    assert config_choices("not xml") is None


def test_migration_5_keeps_every_consensus_row_of_an_older_database_live(store: LabelStore) -> None:
    """A database at schema 3 (consensus rows, no retraction columns) migrates and reads as before."""
    with store.begin() as conn:
        conn.execute(sa.delete(schema_migrations_table).where(schema_migrations_table.c.version >= 4))
        conn.exec_driver_sql("DROP TABLE class_list_versions")
        if store.backend == "postgresql":
            conn.exec_driver_sql("ALTER TABLE consensus DROP COLUMN retracted, DROP COLUMN retraction_reason")
    if store.backend == "sqlite":  # SQLite < 3.35 cannot drop columns: rebuild the table as m003 left it
        with store.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE consensus RENAME TO consensus_new")
            conn.exec_driver_sql(
                "CREATE TABLE consensus (id INTEGER PRIMARY KEY, item_id VARCHAR(64) NOT NULL, version INTEGER NOT NULL, "
                "label JSON NOT NULL, method VARCHAR(32) NOT NULL, confidence FLOAT NOT NULL, agreement FLOAT, "
                "n_annotators INTEGER NOT NULL, computed_at DATETIME NOT NULL, run_id VARCHAR(64), probabilities JSON)"
            )
            conn.exec_driver_sql("DROP TABLE consensus_new")
    with store.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO consensus (item_id, version, label, method, confidence, n_annotators, computed_at) "
            "VALUES ('a', 1, '\"cat\"', 'majority', 1.0, 2, '2026-01-01 00:00:00')"
        )
    applied = store.migrate()
    assert 5 in applied and store.schema_version() == max(m.version for m in MIGRATIONS)
    rows = store.fetch(latest_consensus_query())
    assert [(r["item_id"], r["label"], r["retracted"]) for r in rows] == [("a", "cat", False)]
    assert store.migrate() == []


def test_the_class_list_is_recorded_once_per_change(store: LabelStore) -> None:
    first = record_class_list(store, ["cat", "dog", "eel"])
    assert first is not None and (first.version, first.reason) == (1, "first class list")
    assert record_class_list(store, ["cat", "dog", "eel"]) is None
    second = record_class_list(store, ["cat", "dog"], "eels are out of scope")
    assert second is not None and (second.version, second.removed) == (2, ("eel",))
    assert second.reason == "eels are out of scope (removed 'eel')"


def _item(item_id: str, status: str = "active", supersedes: str | None = None) -> dict[str, object]:
    return {
        "item_id": item_id, "source_path": "src/x.png", "n_bytes": 1, "ingested_at": utcnow(),
        "status": status, "supersedes": supersedes,
    }


def test_a_superseded_items_task_becomes_an_audited_conflict_and_its_replacement_is_reserved(store: LabelStore) -> None:
    old, new, unpushed_old, unpushed_new = (hashlib.sha256(x.encode()).hexdigest() for x in "abcd")
    with store.begin() as conn:
        conn.execute(
            items_table.insert(),
            [_item(old, "superseded"), _item(new, supersedes=old), _item(unpushed_old, "superseded"),
             _item(unpushed_new, supersedes=unpushed_old)],
        )
        conn.execute(
            tasks_table.insert(),
            [
                {"item_id": old, "ls_project_id": 1, "ls_task_id": 40, "required_annotations": 3, "is_gold": False},
                {"item_id": unpushed_old, "ls_project_id": 1, "ls_task_id": None, "required_annotations": 3,
                 "is_gold": False},
            ],
        )
    assert detect_conflicts(store, 1, {old: 2}) == {"pending": 1, "reservation_withdrawn": 1}
    assert detect_conflicts(store, 1, {old: 2}) == {}  # audited once
    tasks = {r["item_id"]: r for r in store.fetch(sa.select(tasks_table))}
    assert set(tasks) == {old, new, unpushed_new}  # the never-pushed reservation is withdrawn
    assert tasks[new]["ls_task_id"] is None and tasks[new]["required_annotations"] == 3
    conflicts = {r["old_item_id"]: r for r in store.fetch(sa.select(item_conflicts_table))}
    assert conflicts[old]["live_votes"] == 2 and conflicts[old]["new_item_id"] == new
    assert [c.old_ls_task_id for c in conflicts_to_mark(store, 1)] == [40]
    assert store.count(consensus_table) == 0
