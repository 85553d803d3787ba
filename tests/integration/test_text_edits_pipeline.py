"""A text_edits project through every stage on a real Label Studio, on a SQLite and a PostgreSQL label store:
a sidecar JSONL of espeak-ng recordings' machine transcripts (each with its WAV) and machine translations (each
with its source sentence, no audio) is ingested with hidden gold, pushed as tasks whose text area the machine output
pre-fills, corrected through the Label Studio API by two careful labelers and one who submits the machine output
unchanged, then collected, aggregated (ours), settled by an expert where the crowd left a machine error, split by
recording and exported (JSONL and a DatasetDict); on the SQLite store the correction model is then trained, scored
on the test split, made the champion and used as the next tasks' pre-label (the model side reads and writes the
store as every kind does; tests/core/test_text_edits.py reads the DatasetDict back with ``datasets``)."""

from __future__ import annotations

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
from labeling_assets.core.labelstudio.review import CONSENSUS_VERSION
from labeling_assets.core.speech.demo_source import TRANSCRIPT, TRANSLATION, make_demo, write_edit_source
from labeling_assets.core.store.reviews import sync_review_requests
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    latest_consensus_query,
    prelabels_table,
)
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.text_edits.kind import MACHINE_VERSION
from labeling_assets.partitions import labelers as labelers_partitions
from labeling_assets.resources.image_source import ImageSourceResource
from labeling_assets.resources.mlflow import MLflowResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from tests.labelstudio_server import LabelStudioServer

pytestmark = pytest.mark.labelstudio

CAREFUL = ["ed_one", "ed_two"]
LAZY = "ed_lazy"
EXPERT = "ed_expert"
KIND = task_kind("text_edits")
N = 4  # recordings: a transcript row (with the WAV) and a translation row (with the source) each


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_text_edits_project_runs_every_stage(
    backend: str, label_studio: LabelStudioServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    utterances, wavs = make_demo(N + 1, seed=5, cache_dir=tmp_path / "tts")
    first, later = utterances[:N], utterances[N:]
    source = tmp_path / "edits"
    write_edit_source(source, first, wavs[:N], gold_every=4)  # 2N rows, a transcript and a translation of gold
    truth = {(u.edit_id(w)): u.truth_text(w) for u in utterances for w in (TRANSCRIPT, TRANSLATION)}
    machine = {(u.edit_id(w)): u.machine_text(w) for u in utterances for w in (TRANSCRIPT, TRANSLATION)}
    title = f"edits-{backend[:2]}-{tmp_path.name[-12:]}"
    url = f"sqlite:///{tmp_path / 'labels.db'}" if backend == "sqlite" else request.getfixturevalue("pg_databases").new_url()
    store = LabelStore(url)
    store.migrate()
    mlflow = MLflowResource(data_dir=str(tmp_path))
    resources = {
        "label_store": LabelStoreResource(url=store.url),
        "image_source": ImageSourceResource(uri=str(source)),
        "project": ProjectSettings(data_dir=str(label_studio.files_root / title), task_type="text_edits",
                                   reviewers=[EXPERT]),  # fmt: skip
        "label_studio": label_studio.resource(title),
        "mlflow": mlflow,
    }
    try:
        with dg.DagsterInstance.ephemeral() as instance:

            def run(assets: list[Any], **kwargs: Any) -> dg.ExecuteInProcessResult:
                result = dg.materialize(assets, resources=resources, instance=instance, raise_on_error=False, **kwargs)
                failures = [e.step_failure_data.error.to_string() for e in result.get_step_failure_events()
                            if e.step_failure_data and e.step_failure_data.error]  # fmt: skip
                assert result.success, failures
                failed = [c.check_name for c in result.get_asset_check_evaluations() if not c.passed]
                assert not failed, failed
                return result

            run([raw_images])
            push = {"ops": {"labeling_tasks": {"config": {"gold_rate": 0.25, "overlap": 3, "max_new_tasks": 2 * N}}}}
            run([queue.labeling_tasks, gold_never_in_task_data], run_config=push)
            client = label_studio.client()
            project_id = resources["label_studio"].find_project_id()  # type: ignore[attr-defined]
            assert project_id is not None and KIND.owns_config(client.label_config(project_id))
            tasks = list(client.iter_tasks(project_id, fields="all"))
            assert len(tasks) == 2 * N
            row_of = {t["data"]["item_id"]: next(k for k, m in machine.items() if m == t["data"]["machine"]) for t in tasks}
            for task in tasks:  # the audio for a transcript, the source for a translation, the machine text pre-filled
                data, row = task["data"], row_of[task["data"]["item_id"]]
                assert (data["audio"] != "") == row.endswith(TRANSCRIPT) and (data["source"] != "") == row.endswith(TRANSLATION)
                (prediction,) = task["predictions"]
                assert prediction["model_version"] == MACHINE_VERSION
                assert KIND.read_answer(prediction["result"]).label == " ".join(machine[row].split())
            users = client.ensure_users([*CAREFUL, LAZY, EXPERT])
            # Everyone leaves one machine error in place (the same miss): only the expert fixes it.
            missed = next(i for i, r in sorted(row_of.items()) if machine[r] != truth[r] and r.endswith(TRANSLATION))
            for task in tasks:
                item, row = task["data"]["item_id"], row_of[task["data"]["item_id"]]
                for name in [*CAREFUL, LAZY]:
                    text = machine[row] if name == LAZY or item == missed else truth[row]
                    client.request("POST", f"/api/tasks/{task['id']}/annotations/",
                                   json={"result": KIND.answer_result(text, None), "completed_by": users[name],
                                         "lead_time": 6.0})  # fmt: skip
            run([collect.annotations])
            assert len(store.fetch(sa.select(annotations_table.c.item_id))) == 3 * 2 * N
            run([consensus_labels])
            consensus = {r["item_id"]: r["label"] for r in store.fetch(latest_consensus_query())}
            expected = {i: " ".join(truth[r].split()) for i, r in row_of.items()}
            assert {i: t for i, t in consensus.items() if i != missed} == {i: t for i, t in expected.items() if i != missed}

            # The review task opens with the consensus text in the text area; the expert's correction settles the item.
            sync_review_requests(store, "test", [ReviewRequest(missed, EXPERT_REVIEW, "a machine error may be left")], [])
            review_id = int(run([adjudications]).asset_materializations_for_node("adjudications")[0]
                            .metadata["review_project_id"].value)  # type: ignore[arg-type]
            (task,) = [t for t in client.iter_tasks(review_id, fields="all") if t["data"]["item_id"] == missed]
            (prediction,) = task["predictions"]
            assert prediction["model_version"] == CONSENSUS_VERSION
            assert KIND.read_answer(prediction["result"]).label == consensus[missed]
            client.request("POST", f"/api/tasks/{task['id']}/annotations/",
                           json={"result": KIND.answer_result(truth[row_of[missed]], None), "completed_by": users[EXPERT]})
            run([adjudications])
            run([consensus_labels])
            assert {r["item_id"]: r["label"] for r in store.fetch(latest_consensus_query())} == expected

            # Labeler statistics: WER against the consensus with an interval; the lazy labeler's unchanged answers.
            for name in labelers_partitions.get_partition_keys(dynamic_partitions_store=instance):
                meta = run([labeler_stats], partition_key=name).asset_materializations_for_node("labeler_stats")[0].metadata
                low, high = meta["consensus_wer_ci"].value  # type: ignore[misc]
                assert low <= meta["consensus_wer"].value <= high  # type: ignore[operator]
                lazy = meta["labeler_id"].value == str(users[LAZY])
                assert (meta["unchanged_rate"].value == 1.0) == lazy and (meta["consensus_wer"].value > 0.05) == lazy  # type: ignore[operator]
                flags = meta["class_usage_flags"].value  # what the leaderboard's class_flags show
                assert flags == ({"unchanged machine output": "overuses"} if lazy else {})
            run([label_issues])
            report = run([qa_report]).asset_materializations_for_node("qa_report")[0].metadata
            assert report["items_with_consensus"].value == 2 * N

            # Splits by recording, exports read back.
            run([dataset_splits])
            exported = run([dataset_export]).asset_materializations_for_node("dataset_export")[0].metadata
            lines = [json.loads(x) for x in Path(str(exported["path_jsonl"].value)).read_text(encoding="utf-8").splitlines()]
            splits_of: dict[str, set[str]] = {}
            for line in lines:
                row = row_of[line["item_id"]]
                splits_of.setdefault(row.rsplit("_", 1)[0], set()).add(line["split"])
                assert line["text"] == expected[line["item_id"]] and (line["audio"] is None) == row.endswith(TRANSLATION)
            assert len(lines) == 2 * N and all(len(s) == 1 for s in splits_of.values())  # a recording in one split
            assert (Path(str(exported["path_hf_datasets"].value)) / "dataset_dict.json").is_file()  # read back: unit test

            # The correction model: trained, scored on the test split, the champion; it pre-labels the next items.
            training = {"ops": {"model_evaluation": {"config": {"device": "cpu"}}}}
            evaluation = run([training_tensors, trained_model, model_evaluation], run_config=training)\
                .asset_materializations_for_node("model_evaluation")[0].metadata  # fmt: skip
            assert evaluation["test_score_name"].value == "test_word_accuracy"
            assert 0.0 <= float(evaluation["test_word_accuracy"].value) <= 1.0  # type: ignore[arg-type]
            champion = mlflow.champion()
            assert champion is not None
            write_edit_source(source / "later", later, wavs[N:])
            (source / "later" / "gold.csv").unlink()  # the next items are regular ones
            run([raw_images])
            run([prelabels], run_config={"ops": {"prelabels": {"config": {"device": "cpu"}}}})
            outputs = {r["item_id"]: r["probs"] for r in store.fetch(
                sa.select(prelabels_table.c.item_id, prelabels_table.c.probs)
                .where(prelabels_table.c.model_version == champion.label))}  # fmt: skip
            assert len(outputs) == 2 * N + 2  # every active item, once
            next_push = {"ops": {"labeling_tasks": {"config": {"gold_rate": 0.0, "overlap": 3, "max_new_tasks": 2}}}}
            run([queue.labeling_tasks, gold_never_in_task_data], run_config=next_push)
            queued = [t for t in client.iter_tasks(project_id, fields="all") if t["data"]["item_id"] not in row_of]
            assert len(queued) == 2
            for task in queued:
                (prediction,) = task["predictions"]
                assert prediction["model_version"] == champion.label
                assert KIND.read_answer(prediction["result"]).label == outputs[task["data"]["item_id"]]["text"]
    finally:
        store.dispose()
