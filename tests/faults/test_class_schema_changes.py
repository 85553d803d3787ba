"""Class schema changes (issue 32.3) on SQLite and PostgreSQL: a rename and a merge keep every answer, a split asks
again exactly the items it touched.

The project of test_derived_data (45 items, 15 per class cat/dog/eel, two agreeing labelers each; consensus, split
and exported) changes its class list with a declared rename, then a merge, then a split, each run through the real
consensus and dataset assets. The annotation log is never touched; the next dataset version keeps every item of a
renamed or merged class (under its new name, in its frozen split) and retracts nothing because of them.
"""

from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from labeling_assets.assets.consensus import consensus_labels
from labeling_assets.assets.dataset import dataset_export, dataset_splits
from labeling_assets.core.consensus.class_schema import parse_class_changes
from labeling_assets.core.consensus.retraction import plan_requeues
from labeling_assets.core.dataset.diff import schema_changes_section
from labeling_assets.core.store.class_changes import schema_change_report
from labeling_assets.core.store.class_changes_schema import class_schema_changes_table
from labeling_assets.core.store.consensus_versions import record_class_list, retraction_counts
from labeling_assets.core.store.derived_schema import vote_retractions_table
from labeling_assets.core.store.queries import gold_labels, load_votes
from labeling_assets.core.store.reviews import record_requeues, requeue_task_states
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    items_table,
    splits_table,
    tasks_table,
    utcnow,
)
from labeling_assets.core.tasks import task_kind
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from tests.faults.test_derived_data import (
    CONSENSUS_CHECKS,
    DATASET_CHECKS,
    N_ITEMS,
    Project,
    _assert_clean_run,
)

PROJECT_ID = 7


def run(project: Project, classes: list[str], changes: str | None) -> dg.ExecuteInProcessResult:
    settings = ProjectSettings(data_dir=str(project.folder), classes=classes, class_changes=changes)
    return dg.materialize(
        [consensus_labels, dataset_splits, dataset_export, *CONSENSUS_CHECKS, *DATASET_CHECKS],
        instance=project.instance,
        resources={"label_store": LabelStoreResource(url=project.store.url), "project": settings},
        run_config={"ops": {"consensus_labels": {"config": {"method": "majority"}}}},
        raise_on_error=False,
    )


def _assert_split_run(result: dg.ExecuteInProcessResult) -> None:
    """Clean, but for kappa: after the split only 'animal' has live votes, and kappa over one class is undefined."""
    assert result.success
    failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert failed <= {"consensus_fleiss_kappa_above_threshold"}, failed


def _meta(result: dg.ExecuteInProcessResult, node: str) -> dict[str, Any]:
    return {k: v.value for k, v in result.asset_materializations_for_node(node)[0].metadata.items()}


@pytest.mark.slow
def test_a_rename_and_a_merge_keep_every_answer_and_a_split_requeues_exactly_its_items(
    store: LabelStore, tmp_path: Path
) -> None:
    project = Project(store, tmp_path / "data")
    cats = sorted(i for i, c in project.truth.items() if c == "cat")
    with store.begin() as conn:  # a gold cat, and a task per item for the re-queue path
        conn.execute(items_table.update().where(items_table.c.item_id == cats[0]).values(gold_label="cat"))
        conn.execute(tasks_table.insert(), [
            {"item_id": item, "ls_project_id": PROJECT_ID, "ls_task_id": n + 1, "required_annotations": 2}
            for n, item in enumerate(sorted(project.truth))
        ])  # fmt: skip
    _assert_clean_run(run(project, ["cat", "dog", "eel"], None))
    frozen = {r["item_id"]: r["split"] for r in store.fetch(sa.select(splits_table))}

    # A declaration that does not fit the new list fails the run with one line and records nothing.
    refused = run(project, ["feline", "dog", "eel"], "rename cat->felid")
    assert not refused.success
    failure = next(e for e in refused.all_events if e.is_step_failure).step_failure_data.error
    assert failure is not None and "class change 'rename cat->felid': 'felid' is not in the new class list" in (
        failure.message
    )
    assert store.count(class_schema_changes_table) == 0

    # A rename and a merge: every answer still counts, under its new class.
    merged = run(project, ["feline", "animal"], "rename cat->feline; merge dog,eel->animal")
    _assert_clean_run(merged)
    assert store.count(annotations_table) == 2 * N_ITEMS  # the log is as it was
    assert store.count(vote_retractions_table) == 0 and retraction_counts(store) == {}
    want = {i: {"cat": "feline"}.get(c, "animal") for i, c in project.truth.items()}
    assert all(labels == want for labels in project.exported().values())  # every item, under its new class
    assert {r["item_id"]: r["split"] for r in store.fetch(sa.select(splits_table))} == frozen
    assert gold_labels(store)[cats[0]] == "feline"
    assert _meta(merged, "consensus_labels")["class_list_change"]["class_schema_changes"] == [
        "rename cat->feline", "merge dog,eel->animal",
    ]
    card = str(_meta(merged, "dataset_splits")["card"])
    assert "### Class schema changes" in card
    assert "| 2 | renamed | cat -> feline | 30 | 0 | - |" in card
    assert "| 2 | merged | dog, eel -> animal | 60 | 0 | - |" in card
    diff = str(_meta(merged, "dataset_splits")["diff"])
    assert "| 2 | merged | dog, eel -> animal |" in diff and "its class was renamed or merged" in diff
    assert _meta(merged, "dataset_splits")["items_relabeled"] == N_ITEMS

    # Split: the feline answers stop counting, and exactly the feline items go back to labelers.
    # The earlier changes may stay declared: recorded once, they are not applied again.
    split = run(project, ["lion", "tiger", "animal"], "rename cat->feline; merge dog,eel->animal; split feline->lion,tiger")
    _assert_split_run(split)
    assert _meta(split, "consensus_labels")["votes_retracted_now"] == {"class_split": 2 * len(cats)}
    reasons = {(r["item_id"], r["reason"]) for r in store.fetch(sa.select(vote_retractions_table))}
    assert reasons == {(item, "class_split") for item in cats}
    assert retraction_counts(store) == {"too_few_live_votes": len(cats)}  # the split's items, no other
    loaded = load_votes(store, ["lion", "tiger", "animal"])
    states = requeue_task_states(store, PROJECT_ID, loaded, {n + 1: 2 for n in range(N_ITEMS)}, pauses={})
    plan = plan_requeues(states, max_overlap=5)
    assert sorted(r.item_id for r in plan.raise_overlap) == cats and not plan.recreate
    record_requeues(store, PROJECT_ID, plan)
    (event,) = [e for e in schema_change_report(store) if e["change"] == "split"]
    assert (event["answers"], event["items"], event["requeued"]) == (2 * len(cats), len(cats), len(cats))
    assert "| 3 | split | feline -> lion, tiger | 0 | 30 | 0 of 15 |" in str(_meta(split, "dataset_splits")["card"])
    assert "| 3 | split | feline -> lion, tiger | 0 | 30 | 15 of 15 |" in schema_changes_section(schema_change_report(store))
    assert all(set(labels) == set(project.truth) - set(cats) for labels in project.exported().values())


def test_a_merge_collapses_two_members_of_a_label_set_and_the_log_keeps_them(store: LabelStore) -> None:
    """Multi-label: each member of a set reads through the merge; two merged members become one."""
    now = utcnow()
    with store.begin() as conn:
        conn.execute(items_table.insert(), [
            {"item_id": f"{n:064x}", "source_path": f"src/{n}.png", "n_bytes": 1, "ingested_at": now,
             "status": "active"} for n in range(2)
        ])  # fmt: skip
        conn.execute(annotations_table.insert(), [
            {"ls_annotation_id": n + 1, "version": 1, "item_id": f"{n:064x}", "labeler_id": "u1", "label": label,
             "created_at": now, "updated_at": now, "synced_at": now, "deleted": False, "content_hash": f"h{n}"}
            for n, label in enumerate([["husky", "malamute"], ["cat", "husky"]])
        ])  # fmt: skip
    record_class_list(store, ["cat", "husky", "malamute"])
    change = record_class_list(store, ["feline", "dog"], changes=parse_class_changes(
        "rename cat->feline; merge husky,malamute->dog"), classes_of=task_kind("multi_label").classes_of)
    assert change is not None and change.changes == ("rename cat->feline", "merge husky,malamute->dog")

    votes = load_votes(store, ["feline", "dog"], task_type="multi_label").votes
    assert votes.frame.sort_values("item_id")["label"].tolist() == [["dog"], ["dog", "feline"]]
    assert not votes.skipped
    logged = store.fetch(sa.select(annotations_table.c.label).order_by(annotations_table.c.ls_annotation_id))
    assert [r["label"] for r in logged] == [["husky", "malamute"], ["cat", "husky"]]  # stored as given
    events = {e["declared"]: (e["answers"], e["items"]) for e in schema_change_report(store)}
    assert events == {"rename cat->feline": (1, 1), "merge husky,malamute->dog": (2, 2)}
