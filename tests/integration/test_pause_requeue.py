"""A pause takes votes away, and Label Studio hands the affected tasks to other labelers (real server).

Five items, overlap 3, labelers a, b and p, and d who has answered nothing. p answers items 0-1, then the time
the pause will start from is taken, then p answers items 2-3. ``labeler pause p --since`` that time (keeping
access) must raise the overlap of exactly the tasks whose live votes it took (2, 3), put them back in the label
stream, and audit it; p's later answer on item 4 (given while paused, as after an automatic pause) is caught by the
next queue run; a resume never lowers an overlap.
"""

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pytest
import requests
import sqlalchemy as sa
from PIL import Image

from labeling_assets.assets import collect, queue
from labeling_assets.cli.labeler import pause, resume
from labeling_assets.core.store.derived_schema import requeue_actions_table
from labeling_assets.core.store.human_loop import pause_history
from labeling_assets.core.store.schema import LabelStore, items_table, utcnow
from labeling_assets.local.labelstudio_accounts import NewAccount, add_user
from labeling_assets.resources.labelstudio import LabelStudioClient
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from tests.labelstudio_server import LabelStudioServer

pytestmark = pytest.mark.labelstudio

CLASSES = ["cat", "dog", "bird"]
N_ITEMS = 5
# p's answers: before the pause's start, after it, after the command
BEFORE, DURING, LATER = (0, 1), (2, 3), 4


@dataclass
class Crowd:
    store: LabelStore
    instance: dg.DagsterInstance
    resources: dict[str, Any]
    client: LabelStudioClient
    project_id: int
    tasks: list[int]  # Label Studio task id per item index
    users: dict[str, int]
    since: dt.datetime
    filler: NewAccount  # "d": a labeler who can log in and pull from the label stream

    def run(self, assets: list[Any]) -> dict[str, Any]:
        result = dg.materialize(assets, resources=self.resources, instance=self.instance,
                                run_config={"ops": {"labeling_tasks": {"config": {"gold_rate": 0.0}}}}
                                if queue.labeling_tasks in assets else None)  # fmt: skip
        assert result.success
        meta = result.asset_materializations_for_node(assets[-1].key.path[-1])[0].metadata
        return {k: v.value for k, v in meta.items()}

    def overlap(self, i: int) -> int:
        return self.client.task_overlap(self.tasks[i])

    def is_labeled(self, i: int) -> bool:
        return bool(self.client.request("GET", f"/api/tasks/{self.tasks[i]}/")["is_labeled"])

    def answer(self, name: str, i: int) -> None:
        self.client.create_annotation(self.tasks[i], CLASSES[i % 3], completed_by=self.users[name])

    def next_task_for_filler(self) -> int | None:
        """The task Label Studio's label stream serves ``d`` next (logged in as d), None when it has none."""
        http, url = requests.Session(), self.client.url
        http.get(f"{url}/user/login/", timeout=30).raise_for_status()
        http.post(f"{url}/user/login/", data={"email": self.filler.email, "password": self.filler.password,
                  "csrfmiddlewaretoken": http.cookies["csrftoken"]}, headers={"Referer": f"{url}/user/login/"},
                  timeout=30).raise_for_status()  # fmt: skip
        answer = http.get(f"{url}/api/projects/{self.project_id}/next", timeout=30)
        return int(answer.json()["id"]) if answer.status_code == 200 else None

    def raises(self) -> list[dict[str, Any]]:
        r = requeue_actions_table
        return self.store.fetch(sa.select(r).where(r.c.action == "overlap_raised").order_by(r.c.id))


@pytest.fixture(scope="module")
def crowd(label_studio: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crowd]:
    folder = tmp_path_factory.mktemp("pause-requeue")
    (folder / "raw").mkdir()
    store = LabelStore(f"sqlite:///{folder / 'labels.db'}")
    store.migrate()
    rows = []
    for i in range(N_ITEMS):
        item_id = hashlib.sha256(f"pause-requeue-{i}".encode()).hexdigest()
        Image.new("RGB", (32, 32), ["#c33", "#3a3", "#33c"][i % 3]).save(folder / "raw" / f"{item_id}.png")
        rows.append({"item_id": item_id, "uri": str(folder / "raw" / f"{item_id}.png"), "source_path": f"{i}.png",
                     "n_bytes": 100, "ingested_at": utcnow(), "status": "active"})  # fmt: skip
    with store.begin() as conn:
        conn.execute(items_table.insert(), rows)
    resources = {
        "label_store": LabelStoreResource(url=store.url),
        "label_studio": label_studio.resource(f"pause-requeue-{folder.name}"),
        "project": ProjectSettings(data_dir=str(folder), classes=CLASSES),
    }
    client = label_studio.client()
    filler = add_user(client, f"pq.filler.{folder.name[-6:]}@labeling-assets.local", "annotator")
    with dg.DagsterInstance.ephemeral() as instance:
        users = {**client.ensure_users(["pq_a", "pq_b", "pq_p"]), "pq_d": filler.user_id}
        crowd = Crowd(store, instance, resources, client, 0, [], users, utcnow(), filler)
        crowd.run([queue.labeling_tasks])
        crowd.project_id = int(resources["label_studio"].find_project_id())
        by_item = client.task_ids_by_item(crowd.project_id)
        crowd.tasks = [by_item[r["item_id"]] for r in rows]
        for i in range(N_ITEMS):
            crowd.answer("pq_a", i)
            crowd.answer("pq_b", i)
        for i in BEFORE:
            crowd.answer("pq_p", i)
        crowd.since = utcnow()
        for i in DURING:
            crowd.answer("pq_p", i)
        crowd.run([collect.annotations])
        yield crowd
    store.dispose()


def test_a_pause_raises_the_overlap_of_exactly_the_tasks_whose_votes_it_took_and_reopens_them(
    crowd: Crowd,
) -> None:
    assert [crowd.overlap(i) for i in range(N_ITEMS)] == [3] * N_ITEMS
    assert [crowd.is_labeled(i) for i in range(4)] == [True] * 4  # before: nothing left for d but item 4

    line = pause(crowd.store, crowd.client, "pq_p", reason="gate failed", since=crowd.since, keep_access=True,
                 project_id=crowd.project_id, classes=CLASSES, actor="test")  # fmt: skip
    assert "2 tasks reopened" in line
    # p's answers before `since` still count
    assert [crowd.overlap(i) for i in range(N_ITEMS)] == [3, 3, 4, 4, 3]
    assert [crowd.is_labeled(i) for i in range(4)] == [True, True, False, False]  # back in the label stream
    audited = crowd.raises()
    assert {(r["old_ls_task_id"], r["overlap_from"], r["overlap_to"]) for r in audited} == {
        (crowd.tasks[i], 3, 4) for i in DURING
    }
    assert all("1 by paused labelers" in r["reason"] for r in audited)
    assert pause_history(crowd.store)[-1]["items_reopened"] == 2

    again = crowd.run([queue.labeling_tasks])  # the queue applies the same rule: nothing more to do
    assert again["overlap_raised_for_lost_votes"] == 0 and len(crowd.raises()) == 2


def test_a_vote_given_while_paused_is_made_up_for_at_the_next_queue_run(crowd: Crowd) -> None:
    crowd.answer("pq_p", LATER)  # kept access: answers while paused, as after an automatic pause
    crowd.run([collect.annotations])
    assert crowd.is_labeled(LATER)  # Label Studio counts p's answer: 3 of 3

    meta = crowd.run([queue.labeling_tasks])
    assert meta["overlap_raised_for_lost_votes"] == 1 and meta["overlap_raised_for_paused_votes"] == 1
    assert crowd.overlap(LATER) == 4 and not crowd.is_labeled(LATER)
    # The label stream now serves d one of the reopened tasks, never the two whose votes all count.
    assert crowd.next_task_for_filler() in {crowd.tasks[i] for i in (*DURING, LATER)}


def test_a_filled_gap_stays_filled_and_a_resume_never_lowers_an_overlap(crowd: Crowd) -> None:
    crowd.answer("pq_d", DURING[0])
    crowd.run([collect.annotations])
    assert crowd.is_labeled(DURING[0])  # 4 answers, 3 of them live: done
    assert crowd.run([queue.labeling_tasks])["overlap_raised_for_lost_votes"] == 0

    assert "resumed" in resume(crowd.store, crowd.client, "pq_p", reason="retrained", actor="test")
    crowd.run([queue.labeling_tasks])
    assert [crowd.overlap(i) for i in range(N_ITEMS)] == [3, 3, 4, 4, 4]  # what was collected on them: 3 or 4
    # p's votes given while paused still count for nothing: the gap on the other item stays open
    assert crowd.is_labeled(DURING[0]) and not crowd.is_labeled(DURING[1])
