"""An audio_segments project through every stage on a real Label Studio, with a SQLite and a PostgreSQL label store:
code-switched utterances spoken by espeak-ng (``speech.demo_source``, their language regions known by construction)
are ingested with a hidden gold set, pushed as audio tasks, answered through the Label Studio API as a labeler's
browser answers (one labeler marks every region late; all miss one region on one recording), collected, aggregated,
settled by an expert in the review project, split and exported by the project's
own assets (the RTTM read back), scored per labeler; then the kind's frame model is trained on that version on a
real local MLflow store, evaluated and made the champion, and the next recordings reach Label Studio with its
predicted regions as their prediction."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from labeling_assets.assets import collect, queue
from labeling_assets.assets.adjudication import adjudications
from labeling_assets.assets.consensus import consensus_labels
from labeling_assets.assets.dataset import dataset_export, dataset_splits
from labeling_assets.assets.evaluate import model_evaluation
from labeling_assets.assets.ingest import raw_images
from labeling_assets.assets.label_issues import label_issues
from labeling_assets.assets.labeler_stats import labeler_stats
from labeling_assets.assets.prelabel import prelabels
from labeling_assets.assets.qa_report import qa_report
from labeling_assets.assets.train import trained_model, training_tensors
from labeling_assets.checks.queue import gold_never_in_task_data
from labeling_assets.core.consensus.review_routing import EXPERT_REVIEW, ReviewRequest
from labeling_assets.core.labelstudio.review import CONSENSUS_VERSION
from labeling_assets.core.speech.demo_source import make_demo, write_segment_source
from labeling_assets.core.speech.regions import Region, pooled_segment_score
from labeling_assets.core.speech.rttm import parse_rttm
from labeling_assets.core.speech.synth import ESPEAK, LABELS
from labeling_assets.core.store.queries import latest_labeler_stats
from labeling_assets.core.store.reviews import sync_review_requests
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    items_table,
    latest_consensus_query,
    prelabels_table,
)
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.audio_segments.answers import from_stored, stored
from labeling_assets.core.tasks.kind import ItemMedia
from labeling_assets.partitions import labelers as labelers_partitions
from labeling_assets.resources.image_source import ImageSourceResource
from labeling_assets.resources.mlflow import MLflowResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from tests.labelstudio_server import LabelStudioServer

pytestmark = [pytest.mark.labelstudio,
              pytest.mark.skipif(shutil.which(ESPEAK) is None, reason=f"{ESPEAK} is not installed")]  # fmt: skip

CLASSES = list(LABELS)  # en, vi, noise
USERS = ["au_one", "au_two", "au_late"]
EXPERT = "au_expert"
N_FIRST, N_NEXT = 10, 2
LATE = 0.12  # seconds: au_late marks every region this late, start and end
# Seconds of training: the model side is what is checked here, not the model's quality.
TRAINER_SETTINGS: dict[str, Any] = {"epochs": 1, "hidden": 16, "crop_s": 2.0}


def _marked(regions: tuple[Region, ...], name: str, missed: bool = False) -> list[dict[str, Any]]:
    """What a labeler marks: the truth (``missed``: all but its last region), ``au_late`` every boundary
    :data:`LATE` late."""
    shift = LATE if name == "au_late" else 0.0
    return stored([Region(r.start + shift, r.end + shift, r.label) for r in (regions[:-1] if missed else regions)])


# The stages that read and write the store on both stores; the model's (seconds of MLflow and training each) on
# PostgreSQL, the store the issue's labeling operation runs on, and the expert review on SQLite: neither depends on
# the store's engine, and each adds seconds.
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_an_audio_segments_project_runs_every_stage(
    backend: str, label_studio: LabelStudioServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    utterances, wavs = make_demo(N_FIRST + N_NEXT, seed=35)
    source = tmp_path / "segments"
    write_segment_source(source, utterances[:N_FIRST], wavs[:N_FIRST], gold_every=4)  # 3 gold recordings
    title = f"audio-{backend[:2]}-{tmp_path.name[-12:]}"
    url = f"sqlite:///{tmp_path / 'labels.db'}" if backend == "sqlite" else request.getfixturevalue("pg_databases").new_url()
    store = LabelStore(url)
    store.migrate()
    mlflow = MLflowResource(data_dir=str(tmp_path))
    resources = {
        "label_store": LabelStoreResource(url=store.url),
        "image_source": ImageSourceResource(uri=str(source)),
        "project": ProjectSettings(data_dir=str(label_studio.files_root / title), classes=CLASSES,
                                   task_type="audio_segments", reviewers=[EXPERT]),  # fmt: skip
        "label_studio": label_studio.resource(title),
        "mlflow": mlflow,
    }
    kind = task_kind("audio_segments")
    with dg.DagsterInstance.ephemeral() as instance:

        def run(assets: list[Any], **kwargs: Any) -> dg.ExecuteInProcessResult:
            result = dg.materialize(assets, resources=resources, instance=instance, raise_on_error=False, **kwargs)
            failures = [e.step_failure_data.error.to_string() for e in result.get_step_failure_events()
                        if e.step_failure_data and e.step_failure_data.error]  # fmt: skip
            assert result.success, failures
            return result

        # Ingest: every WAV an item measured by its decoder, the gold file's regions hidden gold.
        ingested = run([raw_images]).asset_materializations_for_node("raw_images")[0].metadata
        assert ingested["files_new"].value == N_FIRST and ingested["gold_items"].value == 3
        items = {r["source_path"].rsplit("/", 1)[-1]: r for r in store.fetch(sa.select(items_table))}
        truth = {items[u.file]["item_id"]: u for u in utterances[:N_FIRST]}
        for u in utterances[:N_FIRST]:
            assert items[u.file]["duration_s"] == pytest.approx(u.duration, abs=0.01) and items[u.file]["format"] == "WAV"
        gold = {i: json.loads(items[u.file]["gold_label"]) if isinstance(items[u.file]["gold_label"], str)
                else items[u.file]["gold_label"] for i, u in truth.items() if items[u.file]["gold_label"] is not None}  # fmt: skip
        assert {i: stored(truth[i].regions) for i in gold} == gold

        # Queue: the kind's config, audio tasks without gold.
        push = {"ops": {"labeling_tasks": {"config": {"gold_rate": 0.3, "overlap": 3, "max_new_tasks": N_FIRST}}}}
        for _ in range(3):  # later pushes drain what the gold rate held back
            run([queue.labeling_tasks, gold_never_in_task_data], run_config=push)
        client = label_studio.client()
        project_id = resources["label_studio"].find_project_id()  # type: ignore[attr-defined]
        assert project_id is not None and kind.owns_config(client.label_config(project_id))
        tasks = {t["data"]["item_id"]: t for t in client.iter_tasks(project_id, fields="all")}
        assert set(tasks) == set(truth) and all(set(t["data"]) == {"audio", "item_id"} for t in tasks.values())

        # Labelers answer as their browsers would: regions on the waveform, through the kind's own drawing. On one
        # recording every labeler misses the last region alike: only an expert fixes it.
        users = client.ensure_users([*USERS, EXPERT])
        wrong = next(i for i in sorted(truth) if items[truth[i].file]["gold_label"] is None)
        for item, u in truth.items():
            for name in USERS:
                result = kind.answer_result(_marked(u.regions, name, item == wrong), ItemMedia())
                client.request("POST", f"/api/tasks/{tasks[item]['id']}/annotations/",
                               json={"result": result, "completed_by": users[name], "lead_time": 7.0})  # fmt: skip
        run([collect.annotations])
        rows = store.fetch(sa.select(annotations_table.c.item_id, annotations_table.c.labeler_id,
                                     annotations_table.c.label))  # fmt: skip
        name_of = {str(v): k for k, v in users.items()}
        assert sorted((r["item_id"], name_of[r["labeler_id"]], json.dumps(r["label"])) for r in rows) == sorted(
            (i, n, json.dumps(_marked(u.regions, n, i == wrong))) for i, u in truth.items() for n in USERS)  # fmt: skip

        # Consensus (ours): gold items are their gold; the late labeler's offset is learnt on gold and undone.
        consensus_meta = run([consensus_labels]).asset_materializations_for_node("consensus_labels")[0].metadata
        consensus = {r["item_id"]: r["label"] for r in store.fetch(latest_consensus_query())}
        assert set(consensus) == set(truth) and all(consensus[i] == g for i, g in gold.items())
        others = sorted(set(truth) - set(gold) - {wrong})
        score = pooled_segment_score([from_stored(consensus[i]) or [] for i in others],
                                     [list(truth[i].regions) for i in others])  # fmt: skip
        assert score.f1 == 1.0 and score.boundary_error < LATE / 3, score
        assert "labeler_aware" in str(consensus_meta["method"].value)
        assert len(consensus[wrong]) == len(truth[wrong].regions) - 1

        # The review project shows the expert the recording with the consensus pre-drawn; the expert's regions
        # settle the item.
        sync_review_requests(store, "test", [ReviewRequest(wrong, EXPERT_REVIEW, "a region may be missing")], [])
        review = run([adjudications]).asset_materializations_for_node("adjudications")[0].metadata
        review_id = int(review["review_project_id"].value)  # type: ignore[arg-type]
        assert kind.owns_config(client.label_config(review_id))
        (task,) = [t for t in client.iter_tasks(review_id, fields="all") if t["data"]["item_id"] == wrong]
        assert task["data"]["audio"] == tasks[wrong]["data"]["audio"] and "a region may be missing" in task["data"]["context"]
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == CONSENSUS_VERSION
        assert kind.read_answer(prediction["result"]).label == consensus[wrong]
        expert = kind.answer_result(stored(truth[wrong].regions), ItemMedia())
        client.request("POST", f"/api/tasks/{task['id']}/annotations/",
                       json={"result": expert, "completed_by": users[EXPERT]})  # fmt: skip
        run([adjudications])
        run([consensus_labels])
        consensus = {r["item_id"]: r["label"] for r in store.fetch(latest_consensus_query())}
        assert consensus[wrong] == stored(truth[wrong].regions)

        # Labeler statistics: the late labeler's offsets against gold, and its gold score passes the gate.
        names = labelers_partitions.get_partition_keys(dynamic_partitions_store=instance)
        assert len(names) == len(USERS)
        (late,) = [n for n in names if "late" in n]
        meta = run([labeler_stats], partition_key=late).asset_materializations_for_node("labeler_stats")[0].metadata
        assert float(meta["gold_start_offset"].value) == pytest.approx(LATE, abs=0.01)  # type: ignore[arg-type]
        assert float(meta["gold_end_offset"].value) == pytest.approx(LATE, abs=0.01)  # type: ignore[arg-type]
        stats = latest_labeler_stats(store, str(users["au_late"]), "all")
        assert stats is not None and stats["n_labels"] == N_FIRST and stats["gold_accuracy"] > kind.gold_gate_threshold
        issues = run([label_issues]).asset_materializations_for_node("label_issues")[0].metadata
        assert issues["issues"].value == 0  # the labelers agreed: no item has a low consensus confidence

        # Splits and export: every recording in one split; the RTTM reads back into the consensus regions.
        run([dataset_splits])
        exported = run([dataset_export]).asset_materializations_for_node("dataset_export")[0].metadata
        assert exported["n_items"].value == N_FIRST
        folder = Path(str(exported["export_dir"].value))
        read: dict[str, list[Region]] = {}
        lines = []
        for path in sorted(folder.glob("*.rttm")):
            read.update(parse_rttm(path.read_text()))
        for path in sorted(folder.glob("*.jsonl")):
            lines += [json.loads(x) for x in path.read_text().splitlines()]
        assert {k: stored(v) for k, v in read.items()} == {i: a for i, a in consensus.items() if a}
        assert sorted(x["item_id"] for x in lines) == sorted(truth)
        assert all(x["duration"] == pytest.approx(truth[x["item_id"]].duration, abs=0.01) for x in lines)

        # The QA report reads the answers through the kind's view (frame alpha, gold regions).
        report = run([qa_report]).asset_materializations_for_node("qa_report")[0].metadata
        assert report["items_with_consensus"].value == N_FIRST and report["labelers"].value == len(USERS)

        # The model: trained on this version, registered with the kind, scored on the test split and champion.
        training = {"ops": {"trained_model": {"config": {"trainer_settings": TRAINER_SETTINGS}},
                            "model_evaluation": {"config": {"device": "cpu"}}}}  # fmt: skip
        evaluation = run([training_tensors, trained_model, model_evaluation], run_config=training)
        evaluation_meta = evaluation.asset_materializations_for_node("model_evaluation")[0].metadata
        (registered,) = mlflow.registered_versions()
        assert registered.tags["task_type"] == "audio_segments"
        score_name = kind.test_metric.name
        assert evaluation_meta["test_score_name"].value == score_name
        assert 0.0 <= float(evaluation_meta[score_name].value) <= 1.0  # type: ignore[arg-type]
        champion = mlflow.champion()
        assert champion is not None and champion.label == registered.label

        # New recordings: the champion pre-labels them, and their tasks carry its regions as the prediction.
        write_segment_source(source, utterances, wavs, gold_every=4)
        run([raw_images])
        run([prelabels], run_config={"ops": {"prelabels": {"config": {"device": "cpu"}}}})
        outputs = {r["item_id"]: r["probs"] for r in store.fetch(
            sa.select(prelabels_table.c.item_id, prelabels_table.c.probs)
            .where(prelabels_table.c.model_version == champion.label))}  # fmt: skip
        assert len(outputs) == N_FIRST + N_NEXT
        next_push = {"ops": {"labeling_tasks": {"config": {"gold_rate": 0.0, "overlap": 3, "max_new_tasks": N_NEXT}}}}
        run([queue.labeling_tasks, gold_never_in_task_data], run_config=next_push)
        queued = [t for t in client.iter_tasks(project_id, fields="all") if t["data"]["item_id"] not in truth]
        assert len(queued) == N_NEXT
        for task in queued:
            (prediction,) = task["predictions"]
            assert prediction["model_version"] == champion.label
            answer = kind.read_answer(prediction["result"])
            assert answer.problem is None and kind.is_answer(answer.label, CLASSES)
            expected = kind.prediction(outputs[task["data"]["item_id"]], champion.label)["result"]
            assert answer.label == kind.read_answer(expected).label
    store.dispose()
