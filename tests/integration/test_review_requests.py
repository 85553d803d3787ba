"""Low-confidence items get more labelers in a real Label Studio: consensus asks, the queue raises overlap.

Each test builds its own small project up to the stage it needs (so any one runs alone with ``-k``): queue 3
items at overlap 2, two crowd labelers disagree on one of them, collect + consensus record a more_annotators
request, and ``labeling_tasks`` raises that task's overlap in Label Studio so its label stream
(``/api/projects/{id}/next``) hands it to a third labeler.
"""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from labeling_assets.assets import collect, consensus, queue
from labeling_assets.core.store.allocation_schema import allocation_decisions_table
from labeling_assets.core.store.schema import (
    LabelStore,
    items_table,
    prelabels_table,
    review_actions_table,
    review_requests_table,
    tasks_table,
    utcnow,
)
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from tests.labelstudio_server import LabelStudioServer

pytestmark = pytest.mark.labelstudio

CLASSES = ["cat", "dog"]
ITEMS = [hashlib.sha256(f"review-{i}".encode()).hexdigest() for i in range(3)]
UNSURE = ITEMS[0]  # the two crowd users disagree on it


@dataclass
class Setup:
    ls: LabelStudioServer
    store: LabelStore
    instance: dg.DagsterInstance
    resources: dict[str, Any]

    @property
    def client(self) -> Any:
        return self.ls.client()

    @property
    def project_id(self) -> int:
        pid = self.resources["label_studio"].find_project_id()
        assert pid is not None
        return pid

    def queue(self, **config: Any) -> dict[str, Any]:
        result = dg.materialize(
            [queue.labeling_tasks],
            resources=self.resources,
            instance=self.instance,
            run_config={"ops": {"labeling_tasks": {"config": {"gold_rate": 0.0, "overlap": 2, **config}}}},
        )
        assert result.success
        (mat,) = [e.materialization for e in result.get_asset_materialization_events()]
        return {k: v.value for k, v in mat.metadata.items()}

    def collect_and_agree(self) -> None:
        result = dg.materialize(
            [collect.annotations, consensus.consensus_labels],
            resources=self.resources,
            instance=self.instance,
            run_config={"ops": {"consensus_labels": {"config": {"method": "majority"}}}},
        )
        assert result.success

    def overlap_of(self, item_id: str) -> int:
        return self.client.task_overlaps(self.project_id)[self.task_of(item_id)]

    def task_of(self, item_id: str) -> int:
        return self.client.task_ids_by_item(self.project_id)[item_id]

    def next_for_admin(self) -> int | None:
        """The task Label Studio's label stream hands the admin next (None: nothing left for them)."""
        body = self.client.request("GET", f"/api/projects/{self.project_id}/next", ok=(200, 404))
        return None if body.get("status_code") == 404 else int(body["id"])

    def disagree(self) -> dict[str, Any]:
        """Stage 1: the items queued at overlap 2, two crowd labelers disagree on UNSURE only, consensus ran.

        Returns the metadata of the queue run.
        """
        meta = self.queue()
        users = self.client.ensure_users(["rr_crowd_1", "rr_crowd_2"])
        for item in ITEMS:
            for n, user in enumerate(users.values()):
                label = "dog" if item == UNSURE and n == 1 else "cat"
                self.client.create_annotation(self.task_of(item), label, completed_by=user)
        assert self.next_for_admin() is None  # every task has its 2 labelers: the stream is empty
        self.collect_and_agree()
        return meta

    def third_labeler_answers(self) -> None:
        """Stage 2: the queue raised UNSURE's overlap to 3, and the admin (a third labeler) said cat."""
        self.disagree()
        assert self.queue()["overlap_raised"] == 1
        self.client.create_annotation(self.task_of(UNSURE), "cat", completed_by=int(self.client.whoami()["id"]))


@pytest.fixture
def setup(label_studio: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    folder = tmp_path_factory.mktemp("review")
    store = LabelStore(f"sqlite:///{folder / 'labels.db'}")
    store.migrate()
    with store.begin() as conn:
        conn.execute(
            items_table.insert(),
            [
                {
                    "item_id": i,
                    "uri": str(folder / f"{i}.png"),
                    "source_path": f"{i}.png",
                    "n_bytes": 1,
                    "ingested_at": utcnow(),
                    "status": "active",
                }
                for i in ITEMS
            ],
        )
    resources = {
        "label_store": LabelStoreResource(url=store.url),
        "label_studio": label_studio.resource(f"review-{folder.name}"),
        "project": ProjectSettings(data_dir=str(folder), classes=CLASSES),
    }
    with dg.DagsterInstance.ephemeral() as instance:
        yield Setup(label_studio, store, instance, resources)
    store.dispose()


def test_a_disagreement_becomes_a_more_annotators_request_and_nothing_is_raised_before(setup: Setup) -> None:
    meta = setup.disagree()
    assert meta["pushed"] == len(ITEMS) and meta["overlap_raised"] == 0
    (request,) = setup.store.fetch(sa.select(review_requests_table).where(review_requests_table.c.resolved_at.is_(None)))
    assert (request["item_id"], request["action"]) == (UNSURE, "more_annotators")
    assert {setup.overlap_of(i) for i in ITEMS} == {2}


def test_the_queue_raises_the_overlap_once_and_the_label_stream_serves_the_task_again(setup: Setup) -> None:
    setup.disagree()
    meta = setup.queue()
    assert meta["overlap_raised"] == 1 and meta["overlap_pushed_to_label_studio"] == 1
    assert meta["tasks_back_in_label_stream"] == 1 and meta["pushed"] == 0
    assert [setup.overlap_of(i) for i in ITEMS] == [3, 2, 2]
    required = {r["item_id"]: r["required_annotations"] for r in setup.store.fetch(sa.select(tasks_table))}
    assert required == {UNSURE: 3, ITEMS[1]: 2, ITEMS[2]: 2}
    (action,) = setup.store.fetch(sa.select(review_actions_table))
    assert (action["item_id"], action["overlap_from"], action["overlap_to"]) == (UNSURE, 2, 3)

    again = setup.queue()  # nothing new happened: nothing more is raised
    assert again["overlap_raised"] == 0 and again["overlap_pushed_to_label_studio"] == 0
    assert again["more_annotators_waiting"] == 1
    assert setup.overlap_of(UNSURE) == 3 and setup.store.count(review_actions_table) == 1

    # a third labeler (the admin, who has not annotated it) now gets exactly that task, then nothing
    task_id = setup.task_of(UNSURE)
    assert setup.next_for_admin() == task_id
    setup.client.create_annotation(task_id, "cat", completed_by=int(setup.client.whoami()["id"]))
    assert setup.next_for_admin() is None


def test_a_task_back_in_the_label_stream_shows_the_newest_pre_label(setup: Setup) -> None:
    """Found by benchmarks/long_run.py (issue 26): tasks queued with the baseline's pre-labels, all answered; a
    champion pre-labels every item; the queue run that raises the unsure task's overlap put it back in the label
    stream showing the baseline's prediction (the refresh had run before the raise)."""
    setup.disagree()
    with setup.store.begin() as conn:
        conn.execute(prelabels_table.insert(), [
            {"item_id": i, "model_version": "digits/2", "probs": {"cat": 0.2, "dog": 0.8}, "computed_at": utcnow()}
            for i in ITEMS
        ])  # fmt: skip
    meta = setup.queue()
    assert meta["tasks_back_in_label_stream"] == 1 and meta["open_tasks"] == 1
    task = setup.client.request("GET", f"/api/tasks/{setup.task_of(UNSURE)}/")
    assert "digits/2" in {p["model_version"] for p in task["predictions"]}
    assert meta["open_tasks_with_current_prelabel"] == 1 and meta["prelabel_model_shown"] == "digits/2"


def test_a_lagging_label_studio_overlap_is_repaired_from_the_store(setup: Setup) -> None:
    setup.disagree()
    assert setup.queue()["overlap_raised"] == 1
    task_id = setup.task_of(UNSURE)
    setup.client.request("PATCH", f"/api/tasks/{task_id}/", json={"overlap": 2})  # as if the push was lost
    meta = setup.queue()
    assert meta["overlap_raised"] == 0 and meta["overlap_pushed_to_label_studio"] == 1
    assert setup.overlap_of(UNSURE) == 3


def test_still_unsure_after_the_third_labeler_goes_one_more_round_until_the_cap(setup: Setup) -> None:
    setup.third_labeler_answers()
    setup.collect_and_agree()  # cat, dog, cat: 0.67 is still below 0.7, the request stays open
    (request,) = setup.store.fetch(sa.select(review_requests_table).where(review_requests_table.c.resolved_at.is_(None)))
    assert request["item_id"] == UNSURE

    capped = setup.queue(max_overlap=3)
    assert capped["overlap_raised"] == 0 and capped["more_annotators_at_max_overlap"] == 1
    assert capped["expert_review_open"] == 1 and UNSURE[:12] in capped["expert_review"]
    assert setup.overlap_of(UNSURE) == 3

    meta = setup.queue(max_overlap=4)
    assert meta["overlap_raised"] == 1 and setup.overlap_of(UNSURE) == 4
    assert setup.queue(max_overlap=4)["overlap_raised"] == 0
    assert [(r["overlap_from"], r["overlap_to"]) for r in setup.store.fetch(sa.select(review_actions_table))] == [
        (2, 3),
        (3, 4),
    ]


def test_with_the_allocator_on_its_decision_raises_the_overlap_and_is_audited(setup: Setup) -> None:
    """``allocation = "allocator"``: the 1-1 split is the slot's best buy (one more label), raised in Label Studio
    through the allocator's own request (consensus' request for the same item is left to it); the sure items get
    nothing; the decision is in the store and the run's metadata."""
    setup.disagree()
    setup.resources["project"] = ProjectSettings(data_dir=setup.resources["project"].data_dir, classes=CLASSES,
                                                 allocation="allocator", allocation_random_share=0.0)  # fmt: skip
    meta = setup.queue(max_new_tasks=2)
    assert meta["allocation"] == "allocator" and meta["allocator_decisions"] == {
        "new_item": 0, "more_label": 1, "expert": 0}  # fmt: skip
    assert meta["overlap_raised"] == 1 and meta["more_annotators_left_to_allocator"] == 1
    assert [setup.overlap_of(i) for i in ITEMS] == [3, 2, 2]
    rr = review_requests_table
    (action,) = setup.store.fetch(sa.select(review_actions_table.c.item_id, rr.c.source)
                                  .join(rr, rr.c.id == review_actions_table.c.request_id))  # fmt: skip
    assert (action["item_id"], action["source"]) == (UNSURE, "allocator")
    (decision,) = setup.store.fetch(sa.select(allocation_decisions_table)
                                    .where(allocation_decisions_table.c.action != "fallback"))  # fmt: skip
    assert (decision["item_id"], decision["action"], decision["random_arm"]) == (UNSURE, "more_label", False)
    assert decision["estimated_gain"] > 0 and decision["outcome"] == "more_annotators requested"
    assert decision["run_id"] == meta["allocator_run_id"]
