"""Consensus and labeler quality from a simulated crowd on a real Label Studio.

queue_job pushes the items (gold hidden among them), the crowd annotates through the Label Studio API,
collect_job pulls the annotations into the store and registers the labelers as partitions; then
consensus_labels, labeler_stats (per labeler) and labeler_leaderboard are materialized on that store.
"""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from labeling_assets.assets import collect, queue
from labeling_assets.assets.consensus import ConsensusConfig, consensus_labels
from labeling_assets.assets.labeler_stats import labeler_leaderboard, labeler_stats
from labeling_assets.checks.consensus import build_consensus_checks
from labeling_assets.checks.labeler_stats import labeler_stats_checks
from labeling_assets.core.labelstudio.crowd import LabelerSpec
from labeling_assets.core.store.human_loop import labeler_ids_for
from labeling_assets.core.store.queries import consensus_frame
from labeling_assets.core.store.schema import LabelStore, items_table, utcnow
from labeling_assets.jobs import collect_job, queue_job
from labeling_assets.local.crowd import CrowdResult, simulate_crowd
from labeling_assets.partitions import labelers as labelers_partitions
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from tests.labelstudio_server import LabelStudioServer

pytestmark = pytest.mark.labelstudio

CLASSES = [str(d) for d in range(10)]
N_ITEMS = 60  # 180 annotations, one POST each
GOLD_EVERY = 3  # 20 hidden gold items
CROWD = [
    LabelerSpec("cq_expert", "expert"),
    LabelerSpec("cq_average", "average"),
    LabelerSpec("cq_spammer", "spammer", median_lead_time_s=1.0),
    LabelerSpec("cq_biased", "biased", biased_toward="0"),
]


@dataclass
class Crowd:
    store: LabelStore
    instance: dg.DagsterInstance
    resources: dict[str, Any]
    truth: dict[str, str]
    result: CrowdResult

    def materialize(self, assets: list[Any], **kwargs: Any) -> dg.ExecuteInProcessResult:
        resources = {k: self.resources[k] for k in ("label_store", "project")}
        return dg.materialize(assets, resources=resources, instance=self.instance, **kwargs)

    def consensus(self, method: str) -> dg.ExecuteInProcessResult:
        config = dg.RunConfig({"consensus_labels": ConsensusConfig(method=method)})  # type: ignore[arg-type]
        result = self.materialize([consensus_labels, *build_consensus_checks()], run_config=config)
        assert result.success
        return result

    def accuracy(self) -> float:
        frame = consensus_frame(self.store)
        return float((frame["label"] == frame["item_id"].map(self.truth)).mean())


def _seed_items(store: LabelStore, folder: Path) -> dict[str, str]:
    truth: dict[str, str] = {}
    rows = []
    for i in range(N_ITEMS):
        item_id = hashlib.sha256(f"consensus-item-{i}".encode()).hexdigest()
        truth[item_id] = CLASSES[i % len(CLASSES)]
        rows.append(
            {
                "item_id": item_id,
                "uri": str(folder / "raw" / f"{item_id}.png"),
                "source_path": f"img_{i}.png",
                "n_bytes": 100,
                "ingested_at": utcnow(),
                "status": "active",
                "gold_label": truth[item_id] if i % GOLD_EVERY == 0 else None,
            }
        )
    with store.begin() as conn:
        conn.execute(items_table.insert(), rows)
    return truth


@pytest.fixture(scope="module")
def crowd(label_studio: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crowd]:
    folder = tmp_path_factory.mktemp("consensus-loop")
    store = LabelStore(f"sqlite:///{folder / 'labels.db'}")
    store.migrate()
    truth = _seed_items(store, folder)
    resources = {
        "label_store": LabelStoreResource(url=store.url),
        "label_studio": label_studio.resource(f"consensus-{folder.name}"),
        "project": ProjectSettings(data_dir=str(folder), classes=CLASSES),
    }
    defs = dg.Definitions(
        assets=[queue.labeling_tasks, collect.annotations], jobs=[queue_job, collect_job], resources=resources
    )
    with dg.DagsterInstance.ephemeral() as instance:
        for _ in range(2):  # the second push drains what the gold rate held back
            pushed = defs.resolve_job_def("queue_job").execute_in_process(
                instance=instance,
                run_config={
                    "ops": {"labeling_tasks": {"config": {"max_new_tasks": 1000, "gold_rate": 0.34}}}
                },
            )
            assert pushed.success
        project_id = resources["label_studio"].find_project_id()
        result = simulate_crowd(
            label_studio.client(), project_id, CROWD, truth=truth, classes=CLASSES, overlap=3, seed=11
        )
        assert len(result.annotations) == N_ITEMS * 3
        assert defs.resolve_job_def("collect_job").execute_in_process(instance=instance).success
        yield Crowd(store, instance, resources, truth, result)
    store.dispose()


def test_collected_labelers_are_partitions_named_after_their_label_studio_user(crowd: Crowd) -> None:
    partitions = set(crowd.instance.get_dynamic_partitions(labelers_partitions.name))
    assert partitions == set(crowd.result.user_ids)  # usernames, not "2", "6"
    # The numeric Label Studio id stays the store's key, and each name maps back to it.
    ids = labeler_ids_for(crowd.store, sorted(partitions))
    assert ids == {name: str(uid) for name, uid in crowd.result.user_ids.items()}


def test_dawid_skene_beats_majority_vote_on_the_real_crowd(crowd: Crowd) -> None:
    crowd.consensus("majority")
    majority = crowd.accuracy()
    result = crowd.consensus("dawid_skene")
    dawid_skene = crowd.accuracy()
    # Majority's ties go to the class the crowd answers least often (issue 14), which undoes much of the
    # biased labeler's pull toward "0", so the margin is no longer 5 points (0.93 vs 0.95-0.97 here);
    # Dawid-Skene still wins strictly, with the hidden gold clamped in EM.
    assert dawid_skene > majority and dawid_skene >= 0.9, (dawid_skene, majority)
    assert len(consensus_frame(crowd.store)) == N_ITEMS
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["consensus_coverage"].passed and checks["no_consensus_for_quarantined_items"].passed


def test_the_spammer_has_the_lowest_gold_accuracy_and_is_flagged(crowd: Crowd) -> None:
    gold_accuracy: dict[str, float] = {}
    passed: dict[str, dict[str, str]] = {}
    for name in crowd.result.user_ids:
        result = crowd.materialize([labeler_stats, *labeler_stats_checks], partition_key=name)
        meta = result.asset_materializations_for_node("labeler_stats")[0].metadata
        assert meta["n_gold"].value >= 8
        gold_accuracy[name] = meta["gold_accuracy"].value
        passed[name] = {
            e.check_name: "PASS" if e.passed else e.severity.value for e in result.get_asset_check_evaluations()
        }
    assert min(gold_accuracy, key=gold_accuracy.__getitem__) == "cq_spammer", gold_accuracy
    # Sure to be bad on both (the intervals are entirely on the wrong side): the checks fail, not just warn.
    assert passed["cq_spammer"] == {"labeler_gold_accuracy_at_least_0_8": "ERROR", "labeler_not_too_fast": "ERROR"}
    # A handful of gold answers cannot prove the expert is above 0.8, but never fails them.
    assert passed["cq_expert"]["labeler_gold_accuracy_at_least_0_8"] in ("PASS", "WARN")

    board = crowd.materialize([labeler_leaderboard]).asset_materializations_for_node("labeler_leaderboard")[0]
    assert board.metadata["too_fast"].value == ["cq_spammer"]
    assert "cq_spammer" in board.metadata["below_gold_threshold"].value
    assert "| cq_spammer |" in board.metadata["leaderboard"].value
