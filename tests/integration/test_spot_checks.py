"""Spot-check review on a real Label Studio: answers are sampled at the configured rate (seeded, the same sample on
a rerun), a reviewer rejects one and fixes another through the API, and the labeler's acceptance rate, consensus
and the next dataset version follow (docs/review.md)."""

import hashlib
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from PIL import Image

from labeling_assets.assets import collect, queue
from labeling_assets.assets.consensus import ConsensusConfig, consensus_labels
from labeling_assets.assets.dataset import dataset_splits
from labeling_assets.assets.labeler_stats import labeler_leaderboard, labeler_stats
from labeling_assets.assets.spot_checks import spot_checks
from labeling_assets.core.consensus.spot_check import FIX, REJECT, draw
from labeling_assets.core.labelstudio.spot_check import LABELER_VERSION, VERDICT_NAME, spot_check_title
from labeling_assets.core.store.dataset_versions import load_manifest
from labeling_assets.core.store.queries import consensus_frame, current_annotations
from labeling_assets.core.store.schema import LabelStore, items_table, utcnow
from labeling_assets.core.store.spot_checks import samples
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.kind import ItemMedia
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from tests.labelstudio_server import LabelStudioServer

pytestmark = pytest.mark.labelstudio

CLASSES = ["cat", "dog", "bird"]
N_ITEMS = 12
LABELERS = ["sc_ann", "sc_ben"]
SEED = 5
NEW_RATE = 0.5  # nobody has gold here: every labeler is new


def _meta(result: dg.ExecuteInProcessResult, node: str) -> dict[str, Any]:
    return {k: v.value for k, v in result.asset_materializations_for_node(node)[0].metadata.items()}


def test_sampled_answers_reviewed_by_a_reject_and_a_fix_change_acceptance_consensus_and_the_dataset(
    label_studio: LabelStudioServer, tmp_path: Path
) -> None:
    (tmp_path / "raw").mkdir()
    store = LabelStore(f"sqlite:///{tmp_path / 'labels.db'}")
    store.migrate()
    truth, rows = {}, []
    for i in range(N_ITEMS):
        item_id = hashlib.sha256(f"spot-check-{tmp_path.name}-{i}".encode()).hexdigest()
        truth[item_id] = CLASSES[i % 3]
        Image.new("RGB", (32, 32), ["#c33", "#3a3", "#33c"][i % 3]).save(tmp_path / "raw" / f"{item_id}.png")
        rows.append({"item_id": item_id, "uri": str(tmp_path / "raw" / f"{item_id}.png"), "source_path": f"{i}.png",
                     "n_bytes": 100, "ingested_at": utcnow(), "status": "active"})  # fmt: skip
    with store.begin() as conn:
        conn.execute(items_table.insert(), rows)
    settings = ProjectSettings(data_dir=str(tmp_path), classes=CLASSES, reviewers=["sc_reviewer"],
                               spot_check_new_labeler_rate=NEW_RATE, spot_check_seed=SEED)  # fmt: skip
    resources = {"label_store": LabelStoreResource(url=store.url), "project": settings,
                 "label_studio": label_studio.resource(f"sc-{tmp_path.name[-12:]}")}  # fmt: skip
    client = label_studio.client()
    users = client.ensure_users([*LABELERS, "sc_reviewer"])
    majority = dg.RunConfig({"consensus_labels": ConsensusConfig(method="majority", min_annotators=2)})
    with dg.DagsterInstance.ephemeral() as instance:

        def run(assets: list[Any], **kwargs: Any) -> dg.ExecuteInProcessResult:
            result = dg.materialize(assets, resources=resources, instance=instance, **kwargs)
            assert result.success
            return result

        run([queue.labeling_tasks], run_config={"ops": {"labeling_tasks": {"config": {"gold_rate": 0.0}}}})
        tasks = client.task_ids_by_item(resources["label_studio"].find_project_id())
        for name in LABELERS:
            for item_id, task_id in tasks.items():
                client.create_annotation(task_id, truth[item_id], completed_by=users[name], lead_time_s=5.0)
        run([collect.annotations])
        run([consensus_labels], run_config=majority)
        version_before = _meta(run([dataset_splits]), "dataset_splits")["dataset_version"]

        # Sampled at the new-labeler rate: exactly the answers whose seeded draw is below it, and a rerun adds none.
        first = _meta(run([spot_checks]), "spot_checks")
        answers = current_annotations(store)
        expected = {int(a) for a in answers["ls_annotation_id"] if draw(SEED, int(a)) < NEW_RATE}
        picked = {int(r["ls_annotation_id"]): r for r in samples(store)}
        assert set(picked) == expected and first["sampled_now"] == first["pushed_now"] == len(expected)
        assert {r["rate"] for r in picked.values()} == {NEW_RATE}
        again = _meta(run([spot_checks]), "spot_checks")
        assert (again["sampled_now"], again["pushed_now"], again["sampled_total"]) == (0, 0, len(expected))
        project_id = first["spot_check_project_id"]
        assert client.get_project(project_id)["title"] == spot_check_title(resources["label_studio"].resolved_project_title)
        assert client.get_project(project_id)["model_version"] == LABELER_VERSION

        # The reviewer rejects one of a labeler's sampled answers and fixes another.
        by_labeler = {name: [r for r in picked.values() if r["labeler_id"] == str(users[name])] for name in LABELERS}
        judged = max(LABELERS, key=lambda n: len(by_labeler[n]))
        rejected, fixed = by_labeler[judged][:2]
        shown = {int(t["data"]["ls_annotation_id"]): t for t in client.iter_tasks(project_id, fields="all")}
        assert shown[rejected["ls_annotation_id"]]["data"]["labeler"] == judged
        kind = task_kind("single_label")
        correction = next(c for c in CLASSES if c != truth[fixed["item_id"]])
        for sample, verdict, label in ((rejected, REJECT, rejected["answer"]), (fixed, FIX, correction)):
            result = [*kind.answer_result(label, ItemMedia()),
                      {"from_name": VERDICT_NAME, "to_name": "image", "type": "choices", "value": {"choices": [verdict]}}]  # fmt: skip
            client.sdk.annotations.create(id=shown[sample["ls_annotation_id"]]["id"], result=result,
                                          completed_by=users["sc_reviewer"])  # fmt: skip
        pulled = _meta(run([spot_checks]), "spot_checks")
        assert (pulled["new_verdicts"], pulled["new_fixes"]) == (2, 1)
        assert pulled["acceptance"][judged]["rate"] == 0.0 and pulled["acceptance"][judged]["n"] == 2

        # The fix is an expert answer: the next consensus takes it, and so does the next dataset version.
        run([consensus_labels], run_config=majority)
        row = consensus_frame(store).set_index("item_id").loc[fixed["item_id"]]
        assert (row["method"], row["label"]) == ("adjudicated", correction)
        stats = _meta(run([labeler_stats], partition_key=judged), "labeler_stats")
        assert (stats["acceptance_rate"], stats["n_reviewed"], stats["acceptance_verdict"]) == (0.0, 2, "fail")
        assert stats["auto_paused"] == [judged]  # 0 of 2 accepted: the interval [0, 0.66] is below 0.8
        board = _meta(run([labeler_leaderboard]), "labeler_leaderboard")
        assert board["surely_below_acceptance_threshold"] == [judged] and "0.00 of 2 (0.00 - 0.66)" in board["leaderboard"]
        version_after = _meta(run([dataset_splits]), "dataset_splits")["dataset_version"]
        assert version_after != version_before
        manifest = load_manifest(store, version_after).set_index("item_id")
        assert manifest.loc[fixed["item_id"], "label"] == correction
        assert load_manifest(store, version_before).set_index("item_id").loc[fixed["item_id"], "label"] != correction
    store.dispose()
