"""Text projects through the stages before training, on a real Label Studio (a SQLite label store for spans, PostgreSQL for classes): a
JSONL file of sentences whose entities are known (``text_spans.demo``) is ingested with a hidden gold set, pushed as text tasks,
answered through the Label Studio API as labelers' browsers answer, then collected, aggregated, settled by an expert
in the review project where the crowd agreed on a wrong answer, split and exported by the project's own assets,
for entity spans and for one class per text. Then the model side on a real local MLflow store: the kind's model
trained on that version in a few seconds, registered, scored and made the champion; it pre-labels every text, and
the next texts reach Label Studio with its answer as their prediction."""

from __future__ import annotations

import csv
import json
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
from labeling_assets.core.ingest.text import text_item_id
from labeling_assets.core.labelstudio.config import choice_result
from labeling_assets.core.labelstudio.review import CONSENSUS_NOTE, CONSENSUS_VERSION
from labeling_assets.core.store.reviews import sync_review_requests
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    latest_consensus_query,
    prelabels_table,
)
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.text_spans.demo import ENTITY_TYPES, sentences
from labeling_assets.core.tasks.text_spans.spans import span_result, stored
from labeling_assets.core.tasks.text_spans.trainer import decided
from labeling_assets.partitions import labelers as labelers_partitions
from labeling_assets.resources.image_source import ImageSourceResource
from labeling_assets.resources.mlflow import MLflowResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from tests.labelstudio_server import LabelStudioServer

pytestmark = pytest.mark.labelstudio

TYPES = list(ENTITY_TYPES)
USERS = ["tx_one", "tx_two", "tx_odd"]
EXPERT = "tx_expert"
N_NEXT = 4  # texts ingested after the first model: the next tasks, pushed with the champion's answer
# Seconds of training: the model side is what is checked here, not the model's quality.
TRAINER_SETTINGS: dict[str, dict[str, Any]] = {"text_spans": {"epochs": 6}, "text_classes": {"calibrate": False}}


def _answer(task_type: str, truth: Any, text: str) -> list[dict[str, Any]]:
    if task_type == "text_spans":
        return span_result(truth, text)
    return choice_result(truth, to_name="text")


# Each kind on one store, the two stores each once (every stage of both kinds on both stores was four runs of
# ~40 s: the test-time budget); the store code does not depend on the kind.
@pytest.mark.parametrize(
    ("task_type", "backend"),
    [("text_spans", "sqlite"), pytest.param("text_classes", "postgresql", marks=pytest.mark.postgres)],
)
def test_a_text_project_is_queued_answered_collected_aggregated_and_exported(
    task_type: str, backend: str, label_studio: LabelStudioServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    made = [s for s in sentences(16, seed=21) if s.entities][:12]
    source = tmp_path / "texts"
    source.mkdir()
    (source / "batch.jsonl").write_text("".join(json.dumps({"id": f"r{n}", "text": s.text}) + "\n"
                                                for n, s in enumerate(made)), encoding="utf-8")  # fmt: skip
    truth = {text_item_id(s.text): (s.entities if task_type == "text_spans" else s.entities[0].label) for s in made}
    texts = {text_item_id(s.text): s.text for s in made}
    gold_rows = [(f"batch.jsonl#r{n}", json.dumps(stored(s.entities)) if task_type == "text_spans" else s.entities[0].label)
                 for n, s in enumerate(made[:3])]  # fmt: skip
    with open(source / "gold.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("filename", "label"), *gold_rows])
    title = f"{task_type}-{backend[:2]}-{tmp_path.name[-12:]}"  # the review project adds " — review" (50 at most)
    url = f"sqlite:///{tmp_path / 'labels.db'}" if backend == "sqlite" else request.getfixturevalue("pg_databases").new_url()
    store = LabelStore(url)
    store.migrate()
    mlflow = MLflowResource(data_dir=str(tmp_path))  # a local MLflow store of its own (SQLite, artifacts)
    resources = {
        "label_store": LabelStoreResource(url=store.url),
        "image_source": ImageSourceResource(uri=str(source)),
        "project": ProjectSettings(data_dir=str(label_studio.files_root / title), classes=TYPES, task_type=task_type,  # type: ignore[arg-type]
                                   reviewers=[EXPERT]),
        "label_studio": label_studio.resource(title),
        "mlflow": mlflow,
    }
    kind = task_kind(task_type)
    with dg.DagsterInstance.ephemeral() as instance:

        def run(assets: list[Any], **kwargs: Any) -> dg.ExecuteInProcessResult:
            result = dg.materialize(assets, resources=resources, instance=instance, raise_on_error=False, **kwargs)
            failures = [e.step_failure_data.error.to_string() for e in result.get_step_failure_events()
                        if e.step_failure_data and e.step_failure_data.error]  # fmt: skip
            assert result.success, failures
            assert all(c.passed for c in result.get_asset_check_evaluations())
            return result

        ingested = run([raw_images]).asset_materializations_for_node("raw_images")[0].metadata
        assert ingested["files_new"].value == 12 and ingested["gold_items"].value == 3
        push = {"ops": {"labeling_tasks": {"config": {"gold_rate": 0.25, "overlap": 3, "max_new_tasks": 12}}}}
        for _ in range(3):  # later pushes drain what the gold rate held back
            run([queue.labeling_tasks, gold_never_in_task_data], run_config=push)
        client = label_studio.client()
        project_id = resources["label_studio"].find_project_id()  # type: ignore[attr-defined]
        assert project_id is not None
        assert kind.owns_config(client.label_config(project_id))
        tasks = {t["data"]["item_id"]: t for t in client.iter_tasks(project_id, fields="all")}
        assert set(tasks) == set(truth)
        assert all(t["data"] == {"text": texts[i], "item_id": i} for i, t in tasks.items())  # the text, no gold
        users = client.ensure_users([*USERS, EXPERT])
        odd = sorted(truth)[0]
        # Every labeler gets one text wrong alike (the last entity missed; the wrong class): only an expert fixes it.
        wrong = next(i for i in sorted(truth) if i != odd and (task_type == "text_classes" or len(truth[i]) >= 2))
        crowd = {**truth, wrong: truth[wrong][:-1] if task_type == "text_spans" else
                 next(t for t in TYPES if t != truth[wrong])}  # fmt: skip
        for item, answer in crowd.items():
            for name in USERS:
                result = _answer(task_type, answer, texts[item])
                if name == "tx_odd" and item == odd and task_type == "text_spans":
                    result[0]["value"]["text"] = "not the text"  # a region whose text is not the task's slice
                client.request("POST", f"/api/tasks/{tasks[item]['id']}/annotations/",
                               json={"result": result, "completed_by": users[name], "lead_time": 5.0})  # fmt: skip
        run([collect.annotations])
        rows = store.fetch(sa.select(annotations_table.c.item_id, annotations_table.c.labeler_id,
                                     annotations_table.c.label))  # fmt: skip
        assert len(rows) == 3 * len(truth)
        expected = {i: stored(a) if not isinstance(a, str) else a for i, a in truth.items()}
        given = {i: stored(a) if not isinstance(a, str) else a for i, a in crowd.items()}
        odd_id = str(users["tx_odd"])
        for row in rows:
            want = given[row["item_id"]]
            if task_type == "text_spans" and row["item_id"] == odd and row["labeler_id"] == odd_id:
                want = want[1:]  # the mismatched region was dropped at the sync, the rest of the answer kept
            assert row["label"] == want
        run([consensus_labels])
        consensus = {r["item_id"]: r["label"] for r in store.fetch(latest_consensus_query())}
        assert consensus == given

        # The review project shows the expert the text, the votes and why; the expert's answer settles the item.
        sync_review_requests(store, "test", [ReviewRequest(wrong, EXPERT_REVIEW, "an entity may be missing")], [])
        review = run([adjudications]).asset_materializations_for_node("adjudications")[0].metadata
        review_id = int(review["review_project_id"].value)  # type: ignore[arg-type]
        assert kind.owns_config(client.label_config(review_id))
        (task,) = [t for t in client.iter_tasks(review_id, fields="all") if t["data"]["item_id"] == wrong]
        assert task["data"]["text"] == texts[wrong] and "an entity may be missing" in task["data"]["context"]
        # It opens with the crowd's consensus pre-drawn (spans at their offsets; the class pre-selected), marked
        # as the consensus: the expert fixes it rather than starting from the bare text.
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == CONSENSUS_VERSION and CONSENSUS_NOTE in task["data"]["context"]
        assert kind.read_answer(prediction["result"]).label == given[wrong]
        if task_type == "text_spans":
            regions = [r["value"] for r in prediction["result"] if r["type"] == "labels"]
            assert [(v["start"], v["end"], v["text"]) for v in regions] == [
                (e.start, e.end, texts[wrong][e.start : e.end]) for e in crowd[wrong]]  # fmt: skip
        client.request("POST", f"/api/tasks/{task['id']}/annotations/",
                       json={"result": _answer(task_type, truth[wrong], texts[wrong]), "completed_by": users[EXPERT]})  # fmt: skip
        run([adjudications])
        run([consensus_labels])
        consensus = {r["item_id"]: r["label"] for r in store.fetch(latest_consensus_query())}
        assert consensus == expected
        run([dataset_splits])
        exported = run([dataset_export]).asset_materializations_for_node("dataset_export")[0].metadata
        assert exported["n_items"].value == len(truth)

        # Quality: each labeler's statistics (the odd labeler's dropped region costs it on the span kind), label
        # issues, the QA report.
        names = labelers_partitions.get_partition_keys(dynamic_partitions_store=instance)
        assert len(names) == len(USERS)
        for name in names:
            meta = run([labeler_stats], partition_key=name).asset_materializations_for_node("labeler_stats")[0].metadata
            if task_type == "text_spans":  # their spans against the consensus too (their own answers are in it)
                assert meta["consensus_items"].value == len(truth) and "own votes" in str(meta["consensus_basis"].value)
                strict, partial = meta["consensus_span_strict_f1"].value, meta["consensus_span_partial_f1"].value
                assert isinstance(strict, float) and isinstance(partial, float) and 0.5 < strict <= partial <= 1.0
        # Gold items and the adjudicated one are the truth: every labeler missed the same entity (the wrong class).
        stats = store.fetch(sa.text("select labeler_id, gold_accuracy, n_labels from labeler_stats"))
        assert {r["labeler_id"] for r in stats} == {str(users[n]) for n in USERS}
        assert all(r["n_labels"] == len(truth) and 0.5 < r["gold_accuracy"] < 1.0 for r in stats)
        issues = run([label_issues]).asset_materializations_for_node("label_issues")[0].metadata
        if task_type == "text_spans":
            assert issues["issues"].value == 0 and "not searched for spans" in str(issues["notes"].value)
        else:  # the table shows each flagged text, not an image
            assert "TF-IDF" in str(issues["probability_source"].value)
            assert "(unreadable)" not in str(issues["top_issues"].value)
        report = run([qa_report]).asset_materializations_for_node("qa_report")[0].metadata
        assert report["items_with_consensus"].value == len(truth) and report["labelers"].value == len(USERS)

        # The model side: the kind's model trained on this version, registered with the kind, scored on the test
        # split by the kind's own score and made the champion (the first model is).
        training = {"ops": {"trained_model": {"config": {"trainer_settings": TRAINER_SETTINGS[task_type]}},
                            "model_evaluation": {"config": {"device": "cpu"}}}}  # fmt: skip
        model = run([training_tensors, trained_model, model_evaluation], run_config=training)
        evaluation = model.asset_materializations_for_node("model_evaluation")[0].metadata
        (registered,) = mlflow.registered_versions()
        assert registered.tags["task_type"] == task_type
        score = kind.test_metric.name  # test_entity_f1 for spans, test_macro_f1 for classes
        assert evaluation["test_score_name"].value == score and 0.0 <= float(evaluation[score].value) <= 1.0  # type: ignore[arg-type]
        champion = mlflow.champion()
        assert champion is not None and champion.label == registered.label == evaluation["model_version"].value

        # New texts: the champion pre-labels every text, and the next tasks carry its answer as their prediction.
        more = [s for s in sentences(40, seed=22) if s.entities and text_item_id(s.text) not in truth][:N_NEXT]
        (source / "next.jsonl").write_text("".join(json.dumps({"id": f"n{n}", "text": s.text}) + "\n"
                                                   for n, s in enumerate(more)), encoding="utf-8")  # fmt: skip
        texts.update({text_item_id(s.text): s.text for s in more})
        run([raw_images])
        run([prelabels], run_config={"ops": {"prelabels": {"config": {"device": "cpu"}}}})
        outputs = {r["item_id"]: r["probs"] for r in store.fetch(
            sa.select(prelabels_table.c.item_id, prelabels_table.c.probs)
            .where(prelabels_table.c.model_version == champion.label))}  # fmt: skip
        assert set(outputs) == set(texts)  # every active text, once
        next_push = {"ops": {"labeling_tasks": {"config": {"gold_rate": 0.0, "overlap": 3, "max_new_tasks": N_NEXT}}}}
        run([queue.labeling_tasks, gold_never_in_task_data], run_config=next_push)
        queued = [t for t in client.iter_tasks(project_id, fields="all") if t["data"]["item_id"] not in truth]
        assert len(queued) == N_NEXT
        drawn = 0
        for task in queued:
            item, (prediction,) = task["data"]["item_id"], task["predictions"]
            assert prediction["model_version"] == champion.label
            answer = kind.read_answer(prediction["result"])
            assert answer.problem is None and kind.is_answer(answer.label, TYPES)  # read back as an answer
            if task_type == "text_spans":  # labels regions at the model's character offsets, about the text
                spans = decided(outputs[item]["spans"])
                regions = [r["value"] for r in prediction["result"] if r["type"] == "labels"]
                assert [(v["start"], v["end"], v["labels"], v["text"]) for v in regions] == [
                    (x.start, x.end, [x.label], texts[item][x.start : x.end]) for x in spans]  # fmt: skip
                assert answer.label == stored(spans)
                drawn += len(spans)
            else:  # the choice the model gives most probability
                best = max(outputs[item], key=outputs[item].get)
                (region,) = prediction["result"]
                assert region["type"] == "choices" and region["value"]["choices"] == [best] and answer.label == best
                drawn += 1
        assert drawn > 0  # the model drew spans on the next texts: the offsets above were checked on some
    store.dispose()
