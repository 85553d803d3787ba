"""Blind labeling on a real Label Studio: one project per labeler, merged in the store by item.

Six items (two hidden gold), three labelers who can log in, overlap 2: every item reaches exactly two labelers'
own projects; a labeler opening their task sees only their own answer although the item holds another's; the store
merges both projects' votes by item, and edits and deletions in one project version the right rows.
"""

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
import numpy as np
import pytest
import requests
import sqlalchemy as sa
from PIL import Image

from labeling_assets.assets import collect, queue
from labeling_assets.assets.consensus import consensus_labels
from labeling_assets.cli.labeler import pause_labeler
from labeling_assets.core.labelstudio.blind import blind_title
from labeling_assets.core.store.blind_tasks import blind_open_requests
from labeling_assets.core.store.completion import labeler_completion
from labeling_assets.core.store.datasets import insert_prelabels, record_thresholds
from labeling_assets.core.store.derived_schema import requeue_actions_table
from labeling_assets.core.store.human_loop import record_pause_event
from labeling_assets.core.store.queries import current_annotations, load_votes
from labeling_assets.core.store.schema import LabelStore, annotations_table, items_table, tasks_table, utcnow
from labeling_assets.local.labelstudio_accounts import NewAccount, add_user
from labeling_assets.resources.labelstudio import LabelStudioClient, LabelStudioResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from labeling_assets.sensors import annotation_sensor
from tests.labelstudio_server import LabelStudioServer

pytestmark = pytest.mark.labelstudio

CLASSES = ["cat", "dog", "bird"]
N_ITEMS = 6
GOLD = {0, 1}
OVERLAP = 2


@dataclass
class Blind:
    store: LabelStore
    instance: dg.DagsterInstance
    resources: dict[str, Any]
    client: LabelStudioClient
    accounts: dict[str, NewAccount]  # username -> account
    projects: dict[str, int]  # username -> their project id
    items: list[str]

    def run(self, assets: list[Any], run_config: dict[str, Any] | None = None) -> dict[str, Any]:
        result = dg.materialize(
            assets, resources=self.resources, instance=self.instance, run_config=run_config
        )
        assert result.success
        meta = result.asset_materializations_for_node(assets[-1].key.path[-1])[0].metadata
        return {k: v.value for k, v in meta.items()}

    def tasks_of(self, name: str) -> dict[str, dict[str, Any]]:
        """item_id -> task (with annotations) in ``name``'s project."""
        return {t["data"]["item_id"]: t for t in self.client.iter_tasks(self.projects[name], fields="all")}

    def session(self, name: str) -> requests.Session:
        """Logged in as ``name`` through the login form, as a person's browser is."""
        account, http, url = self.accounts[name], requests.Session(), self.client.url
        http.get(f"{url}/user/login/", timeout=30).raise_for_status()
        http.post(f"{url}/user/login/", data={"email": account.email, "password": account.password,
                  "csrfmiddlewaretoken": http.cookies["csrftoken"]}, headers={"Referer": f"{url}/user/login/"},
                  timeout=30).raise_for_status()  # fmt: skip
        return http


def _label(i: int, name: str) -> str:
    return CLASSES[(i + (name.endswith("c"))) % 3]  # labeler c disagrees with the others everywhere


@pytest.fixture(scope="module")
def blind(label_studio: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Blind]:
    folder = tmp_path_factory.mktemp("blind")
    (folder / "raw").mkdir()
    store = LabelStore(f"sqlite:///{folder / 'labels.db'}")
    store.migrate()
    items, rows = [], []
    for i in range(N_ITEMS):
        item_id = hashlib.sha256(f"blind-{folder.name}-{i}".encode()).hexdigest()
        Image.new("RGB", (32, 32), ["#c33", "#3a3", "#33c"][i % 3]).save(folder / "raw" / f"{item_id}.png")
        items.append(item_id)
        rows.append({"item_id": item_id, "uri": str(folder / "raw" / f"{item_id}.png"), "source_path": f"{i}.png",
                     "n_bytes": 100, "ingested_at": utcnow(), "status": "active",
                     "gold_label": CLASSES[i % 3] if i in GOLD else None})  # fmt: skip
    with store.begin() as conn:
        conn.execute(items_table.insert(), rows)
    client = label_studio.client()
    tag = folder.name[-6:]
    accounts = {}
    for who in ("a", "b", "c"):
        account = add_user(client, f"blind.{who}.{tag}@labeling-assets.local", "annotator")
        username = next(str(u["username"]) for u in client.list_users() if int(u["id"]) == account.user_id)
        accounts[username] = account
    title = f"blind-{folder.name}"
    resources = {
        "label_store": LabelStoreResource(url=store.url),
        "label_studio": LabelStudioResource(
            url=label_studio.url,
            api_key=label_studio.token,
            project_title=title,
            blind_labelers=list(accounts),
        ),  # fmt: skip
        "project": ProjectSettings(data_dir=str(folder), classes=CLASSES),
    }
    with dg.DagsterInstance.ephemeral() as instance:
        blind = Blind(store, instance, resources, client, accounts, {}, items)
        push = {"ops": {"labeling_tasks": {"config": {"gold_rate": 0.34, "overlap": OVERLAP}}}}
        for _ in range(3):  # later pushes drain what the gold rate held back
            meta = blind.run([queue.labeling_tasks], push)
        blind.projects = {name: int(pid) for name, pid in meta["blind_projects"].items()}
        for name in accounts:
            for item_id, task in blind.tasks_of(name).items():
                i = items.index(item_id)
                client.create_annotation(task["id"], _label(i, name), completed_by=accounts[name].user_id)
        blind.run([collect.annotations])
        yield blind
    store.dispose()


def test_each_labeler_gets_an_own_project_and_each_item_reaches_overlap_of_them(blind: Blind) -> None:
    titles = {p["id"]: p["title"] for p in blind.client.list_projects()}
    title = blind.resources["label_studio"].resolved_project_title
    assert {name: titles[pid] for name, pid in blind.projects.items()} == {
        n: blind_title(title, n) for n in blind.accounts
    }
    assert title not in titles.values()  # no shared project: nobody's task holds another labeler's answer
    holders = {i: [n for n in blind.accounts if i in blind.tasks_of(n)] for i in blind.items}
    assert all(len(names) == OVERLAP for names in holders.values())
    assert sorted(len(blind.tasks_of(n)) for n in blind.accounts) == [4, 4, 4]  # 6 items x 2, levelled
    for name in blind.accounts:  # hidden gold stays hidden in every project
        assert all("gold" not in " ".join(task["data"]) for task in blind.tasks_of(name).values())
    again = blind.run([queue.labeling_tasks], {"ops": {"labeling_tasks": {"config": {"overlap": OVERLAP}}}})
    assert (
        again["pushed"] == 0 and again["reserved"] == 0
    )  # idempotent: never a second task per project and item


def test_a_labeler_opening_their_task_sees_only_their_own_answer(blind: Blind) -> None:
    a, b = list(blind.accounts)[:2]
    shared = next(i for i in blind.tasks_of(a) if i in blind.tasks_of(b))  # an item both of them answered
    seen = (
        blind.session(a)
        .get(f"{blind.client.url}/api/tasks/{blind.tasks_of(a)[shared]['id']}/", timeout=30)
        .json()
    )
    authors = {x["completed_by"]["id"] if isinstance(x["completed_by"], dict) else x["completed_by"]
               for x in seen["annotations"]}  # fmt: skip
    assert authors == {blind.accounts[a].user_id}  # b's answer on the same item is not in a's task
    # Community has no project membership: a's account still lists b's project. Blind mode removes the anchor
    # from the work a labeler is given; it is not access control (README).
    listed = (
        blind.session(a)
        .get(f"{blind.client.url}/api/projects/", params={"page_size": 100}, timeout=30)
        .json()
    )
    listed_ids = {p["id"] for p in (listed["results"] if isinstance(listed, dict) else listed)}
    assert blind.projects[b] in listed_ids


def test_the_store_merges_the_projects_votes_by_item(blind: Blind) -> None:
    votes = load_votes(blind.store, CLASSES).votes.frame
    assert len(votes) == N_ITEMS * OVERLAP
    assert votes.groupby("item_id")["labeler_id"].nunique().to_dict() == {i: OVERLAP for i in blind.items}
    by_labeler = {str(acc.user_id): name for name, acc in blind.accounts.items()}
    for row in votes.itertuples():
        assert row.label == _label(blind.items.index(row.item_id), by_labeler[str(row.labeler_id)])


def test_edits_and_deletions_in_one_labelers_project_version_only_their_rows(blind: Blind) -> None:
    b, c = list(blind.accounts)[1:]
    item, task = next(iter(blind.tasks_of(b).items()))
    [edited] = task["annotations"]
    blind.client.update_annotation(int(edited["id"]), "bird" if _label(0, b) != "bird" else "dog")
    gone_item, gone_task = next(iter(blind.tasks_of(c).items()))
    blind.client.delete_annotation(int(gone_task["annotations"][0]["id"]))
    meta = blind.run([collect.annotations])
    assert (meta["new"], meta["updated"], meta["deleted"]) == (0, 1, 1)
    assert meta["blind_projects_synced"] == sorted(blind.projects.values())
    rows = blind.store.fetch(
        annotations_table.select().where(annotations_table.c.ls_annotation_id == edited["id"])
    )
    assert [(r["version"], r["ls_task_id"]) for r in rows] == [(1, task["id"]), (2, task["id"])]
    current = current_annotations(blind.store)
    assert len(current) == N_ITEMS * OVERLAP - 1 and (current["item_id"] == gone_item).sum() == OVERLAP - 1
    assert (current["item_id"] == item).sum() == OVERLAP  # the other labeler's vote on it is untouched
    resync = blind.run([collect.annotations])
    assert (resync["new"], resync["updated"], resync["deleted"]) == (0, 0, 0)


def _holders(blind: Blind) -> dict[str, set[str]]:
    return {i: {n for n in blind.accounts if i in blind.tasks_of(n)} for i in blind.items}


def test_an_unsure_item_goes_to_one_more_labeler_as_blind_modes_overlap_raise(blind: Blind) -> None:
    config = {
        "ops": {"consensus_labels": {"config": {"method": "majority", "low_confidence_threshold": 0.7}}}
    }
    blind.run([consensus_labels], config)
    projects = list(blind.projects.values())
    due = {r.item_id for r in blind_open_requests(blind.store, projects)
           if r.action == "more_annotators" and r.required_annotations == r.n_annotators == OVERLAP}  # fmt: skip
    assert due  # c disagrees with a and b: the items c shares are split 1-1
    before = _holders(blind)
    meta = blind.run([queue.labeling_tasks], {"ops": {"labeling_tasks": {"config": {"overlap": OVERLAP}}}})
    assert meta["sent_to_more_labelers"] == len(due) and meta["pushed"] == len(due)
    after = _holders(blind)
    assert {i for i in blind.items if after[i] != before[i]} == due
    assert all(
        len(after[i]) == OVERLAP + 1 and before[i] < after[i] for i in due
    )  # a third, different labeler
    audit = blind.store.fetch(
        sa.select(requeue_actions_table).where(requeue_actions_table.c.item_id.in_(due))
    )
    assert len(audit) == len(due) and all(r["reason"].startswith("blind: sent to ") for r in audit)
    again = blind.run([queue.labeling_tasks], {"ops": {"labeling_tasks": {"config": {"overlap": OVERLAP}}}})
    assert again["sent_to_more_labelers"] == 0  # the third answer has not arrived: nothing more until it does


def test_a_task_deleted_in_a_labelers_project_sends_the_item_to_another_labeler(blind: Blind) -> None:
    holders = _holders(blind)
    answered = {n: {i for i, t in blind.tasks_of(n).items() if t["annotations"]} for n in blind.accounts}
    item = next(
        i for i in blind.items if len(holders[i]) == OVERLAP and all(i in answered[n] for n in holders[i])
    )
    owner = sorted(holders[item])[0]
    blind.client.request("DELETE", f"/api/tasks/{blind.tasks_of(owner)[item]['id']}/")
    assert blind.run([collect.annotations])["deleted"] == 1  # their answer ends as a tombstone
    meta = blind.run([queue.labeling_tasks], {"ops": {"labeling_tasks": {"config": {"overlap": OVERLAP}}}})
    assert meta["sent_to_more_labelers"] == 1
    after = _holders(blind)
    assert after[item] == set(blind.accounts) - {owner}  # the third labeler, never the owner again


PAUSE_PUSH = {"ops": {"labeling_tasks": {"config": {"gold_rate": 0.0, "overlap": OVERLAP}}}}


def _three_item_crowd(
    label_studio: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory, *, task_type: str = "single_label",
    prelabel: tuple[dict[str, float], str, dict[str, float]] | None = None, store_url: str | None = None,
) -> Iterator[Blind]:  # fmt: skip
    """Three items, overlap 2, three API-only labelers who all agree: no review request, only a pause.

    ``prelabel``: (class probabilities, model version, its per-class thresholds) stored for every item before the
    first push. ``store_url``: the label store (default: SQLite in the test's folder)."""
    folder = tmp_path_factory.mktemp("blind-pause")
    (folder / "raw").mkdir()
    store = LabelStore(store_url or f"sqlite:///{folder / 'labels.db'}")
    store.migrate()
    items = [hashlib.sha256(f"blind-pause-{folder.name}-{i}".encode()).hexdigest() for i in range(3)]
    for item_id in items:
        Image.new("RGB", (32, 32), "#c33").save(folder / "raw" / f"{item_id}.png")
    with store.begin() as conn:
        conn.execute(items_table.insert(), [{"item_id": i, "uri": str(folder / "raw" / f"{i}.png"), "n_bytes": 100,
                                             "source_path": f"{i}.png", "ingested_at": utcnow(), "status": "active"}
                                            for i in items])  # fmt: skip
    client = label_studio.client()
    names = [f"bp_{who}_{folder.name[-6:]}" for who in ("a", "b", "c")]
    ids = client.ensure_users(names)
    resources = {
        "label_store": LabelStoreResource(url=store.url),
        "label_studio": LabelStudioResource(
            url=label_studio.url,
            api_key=label_studio.token,
            project_title=f"bp-{folder.name}",
            blind_labelers=names,
        ),  # fmt: skip
        "project": ProjectSettings(data_dir=str(folder), classes=CLASSES, task_type=task_type),  # type: ignore[arg-type]
    }
    accounts = {
        n: NewAccount(email=f"{n}@x.local", user_id=ids[n], role="annotator", password="") for n in names
    }
    if prelabel is not None:
        probs, version, thresholds = prelabel
        insert_prelabels(store, items, np.array([[probs[c] for c in CLASSES]] * len(items)), CLASSES, version)
        record_thresholds(store, version, thresholds)
    with dg.DagsterInstance.ephemeral() as instance:
        crowd = Blind(store, instance, resources, client, accounts, {}, items)
        meta = crowd.run([queue.labeling_tasks], PAUSE_PUSH)
        crowd.projects = {name: int(pid) for name, pid in meta["blind_projects"].items()}
        yield crowd
    store.dispose()


@pytest.fixture(scope="module")
def paused_crowd(label_studio: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Blind]:
    yield from _three_item_crowd(label_studio, tmp_path_factory)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_crowd(
    label_studio: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Blind]:
    """A fresh three-item crowd, its store on SQLite and on PostgreSQL."""
    url = request.getfixturevalue("pg_databases").new_url() if request.param == "postgres" else None
    yield from _three_item_crowd(label_studio, tmp_path_factory, store_url=url)


def test_blind_multi_label_tasks_are_pre_filled_with_a_set_at_the_models_own_thresholds(
    label_studio: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    probs = {"cat": 0.3, "dog": 0.6, "bird": 0.05}  # at 0.5 the pre-fill would be ["dog"]
    crowd_iter = _three_item_crowd(label_studio, tmp_path_factory, task_type="multi_label",
                                   prelabel=(probs, "model/7", {"cat": 0.25, "dog": 0.5, "bird": 0.5}))  # fmt: skip
    crowd = next(crowd_iter)
    try:
        for name in crowd.accounts:
            for task in crowd.tasks_of(name).values():
                (prediction,) = task["predictions"]
                assert prediction["model_version"] == "model/7"
                assert prediction["result"][0]["value"]["choices"] == ["cat", "dog"]
    finally:
        crowd_iter.close()


def test_a_new_champions_pre_labels_reach_the_open_tasks_of_every_labelers_project(
    label_studio: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Issue 26, blind mode: the queue run after a new champion's pre-labels replaces the prediction every open
    task shows, in each labeler's own project, as the shared project does."""
    crowd_iter = _three_item_crowd(label_studio, tmp_path_factory,
                                   prelabel=({"cat": 0.2, "dog": 0.7, "bird": 0.1}, "model/1", {}))  # fmt: skip
    crowd = next(crowd_iter)
    try:
        insert_prelabels(crowd.store, crowd.items, np.array([[0.8, 0.1, 0.1]] * len(crowd.items)), CLASSES, "model/2")
        meta = crowd.run([queue.labeling_tasks], PAUSE_PUSH)
        assert meta["predictions_refreshed"] == len(crowd.items) * OVERLAP
        for name in crowd.accounts:
            project = crowd.client.get_project(crowd.projects[name])
            assert project["model_version"] == "model/2"  # what the labeling screen pre-fills from
            for task in crowd.tasks_of(name).values():
                assert "model/2" in {p["model_version"] for p in task["predictions"]}
    finally:
        crowd_iter.close()


def _answer_all_and_collect(crowd: Blind, names: list[str]) -> None:
    """``names`` answer every task in their own projects ("cat"), then the store collects."""
    for name in names:
        for task in crowd.tasks_of(name).values():
            crowd.client.create_annotation(task["id"], "cat", completed_by=crowd.accounts[name].user_id)
    crowd.run([collect.annotations])


def test_an_item_left_open_too_long_by_one_labeler_goes_to_another_who_answers_in_their_own_project(
    fresh_crowd: Blind,
) -> None:
    crowd = fresh_crowd
    c = list(crowd.accounts)[2]
    _answer_all_and_collect(crowd, list(crowd.accounts)[:2])  # a and b answer everything; c answers nothing
    holders = _holders(crowd)
    theirs = {i for i in crowd.items if c in holders[i]}
    assert len(theirs) == 2
    assert crowd.run([queue.labeling_tasks], PAUSE_PUSH)["sent_to_more_labelers"] == 0  # within the 48 h wait

    with crowd.store.begin() as conn:  # c's tasks were pushed three days ago
        conn.execute(sa.update(tasks_table).where(tasks_table.c.ls_project_id == crowd.projects[c])
                     .values(pushed_at=utcnow() - dt.timedelta(days=3)))  # fmt: skip
    given_before = labeler_completion(crowd.store)
    meta = crowd.run([queue.labeling_tasks], PAUSE_PUSH)
    assert meta["sent_to_more_labelers"] == 2
    after = _holders(crowd)
    assert all(after[i] == set(crowd.accounts) for i in theirs)  # c keeps the task; the other labeler gets it too
    # Completion rate: a and b had done every task of their own projects; the two sent to them are given, not done.
    ids = [str(crowd.accounts[n].user_id) for n in list(crowd.accounts)[:2]]
    given_after = labeler_completion(crowd.store)
    assert [given_before[i].rate for i in ids] == [1.0, 1.0]
    assert sum(given_after[i].given - given_after[i].done for i in ids) == 2
    reasons = [r["reason"] for r in crowd.store.fetch(sa.select(requeue_actions_table.c.reason))]
    assert sum(f"{c}: open too long" in r for r in reasons) == 2
    assert crowd.run([queue.labeling_tasks], PAUSE_PUSH)["sent_to_more_labelers"] == 0  # once


def test_labeler_pause_in_blind_mode_sends_their_items_to_other_labelers_at_once(fresh_crowd: Blind) -> None:
    crowd = fresh_crowd
    c = list(crowd.accounts)[2]
    before = utcnow()
    _answer_all_and_collect(crowd, list(crowd.accounts))
    holders = _holders(crowd)
    theirs = {i for i in crowd.items if c in holders[i]}
    assert len(theirs) == 2

    # What `labeling-assets labeler pause c --since <before> --keep-access` does with the definitions' resources.
    said = pause_labeler(crowd.resources, c, reason="gate", since=before, keep_access=True, max_overlap=5,
                         instance=crowd.instance, actor="test", queue_config={"overlap": OVERLAP})  # fmt: skip
    assert "blind mode: 2 items sent to other labelers' projects" in said, said
    after = _holders(crowd)  # no queue run in between: the command itself sent them
    assert all(after[i] == set(crowd.accounts) for i in theirs)
    assert all(after[i] == holders[i] for i in crowd.items if i not in theirs)
    again = pause_labeler(crowd.resources, c, reason="gate", since=before, keep_access=True, max_overlap=5,
                          instance=crowd.instance, queue_config={"overlap": OVERLAP})  # fmt: skip
    assert again.startswith(f"{c} is already paused") and _holders(crowd) == after


def test_a_paused_labelers_items_go_to_another_labeler_in_blind_mode_and_a_resume_takes_none_back(
    paused_crowd: Blind,
) -> None:
    crowd = paused_crowd
    c = list(crowd.accounts)[2]
    holders = _holders(crowd)
    assert sorted(len(h) for h in holders.values()) == [2, 2, 2]
    theirs = sorted(i for i in crowd.items if c in holders[i])
    started = utcnow()
    for name in crowd.accounts:  # everyone answers, except one of c's two items stays open
        for item_id, task in crowd.tasks_of(name).items():
            if name != c or item_id != theirs[0]:
                crowd.client.create_annotation(task["id"], "cat", completed_by=crowd.accounts[name].user_id)
    crowd.run([collect.annotations])
    record_pause_event(crowd.store, str(crowd.accounts[c].user_id), "pause", reason="gate", actor="gate",
                       label_studio_effect="kept", at=started)  # fmt: skip

    meta = crowd.run([queue.labeling_tasks], PAUSE_PUSH)
    # Both of c's items: the answered one (c's vote no longer counts) and the open one (c's answer would not).
    assert meta["sent_to_more_labelers"] == 2
    after = _holders(crowd)
    assert all(after[i] == holders[i] | (set(crowd.accounts) - holders[i]) for i in theirs)
    assert all(after[i] == holders[i] for i in crowd.items if i not in theirs)
    record_pause_event(crowd.store, str(crowd.accounts[c].user_id), "resume", reason="ok", actor="test",
                       label_studio_effect="votes count again")  # fmt: skip
    again = crowd.run([queue.labeling_tasks], PAUSE_PUSH)
    assert again["sent_to_more_labelers"] == 0 and _holders(crowd) == after  # nothing taken back


def test_the_annotation_sensor_sees_a_change_in_any_labelers_project(paused_crowd: Blind) -> None:
    crowd = paused_crowd
    resources = {"label_studio": crowd.resources["label_studio"]}

    def tick(cursor: str | None) -> dg.SensorResult | dg.SkipReason:
        context = dg.build_sensor_context(instance=crowd.instance, cursor=cursor, resources=resources)
        return annotation_sensor(context)

    first = tick(None)
    assert isinstance(first, dg.SensorResult) and first.cursor
    assert first.run_requests[0].run_key.startswith("annotations-blind-")
    assert isinstance(tick(first.cursor), dg.SkipReason)  # nothing changed in any project
    name = list(crowd.accounts)[-1]
    task = next(t for t in crowd.tasks_of(name).values() if not t["annotations"])
    crowd.client.create_annotation(task["id"], "cat", completed_by=crowd.accounts[name].user_id)
    changed = tick(first.cursor)
    assert isinstance(changed, dg.SensorResult) and changed.cursor != first.cursor
