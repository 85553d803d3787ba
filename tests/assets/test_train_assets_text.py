"""A text project from its consensus on, on the CPU, for each text kind: dataset_splits and dataset_export (files
read back), trained_model, model_evaluation, then prelabels and the queue's pre-label, against a real SQLite label
store, a real local MLflow tracking store and an ephemeral Dagster instance.

The data: Faker sentences with at least one entity (``text_spans.demo``) stored as ingest stores texts, their truth
as consensus answers (a class: the type of their first entity; spans: the entities), as ingest and
consensus_labels would leave them.
"""

import datetime as dt
from pathlib import Path
from typing import Any

import dagster as dg
import datasets
import pandas as pd
import pytest
import sqlalchemy as sa

from labeling_assets.assets.dataset import dataset_export, dataset_splits
from labeling_assets.assets.evaluate import model_evaluation
from labeling_assets.assets.prelabel import prelabels
from labeling_assets.assets.train import trained_model, training_tensors
from labeling_assets.core.ingest.raw_store import raw_path, write_once
from labeling_assets.core.ingest.text import text_item_id
from labeling_assets.core.labelstudio.tasks import build_payloads
from labeling_assets.core.store.labelstudio_sync import newest_prelabels
from labeling_assets.core.store.schema import LabelStore, consensus_table, items_table, prelabels_table
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.text_spans.demo import ENTITY_TYPES, sentences
from labeling_assets.core.tasks.text_spans.spans import stored
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.mlflow import MLflowResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NO_LABEL_STUDIO = LabelStudioResource(url="http://127.0.0.1:9", api_key="no-server-in-these-tests")
TYPES = list(ENTITY_TYPES)
# The kind, its answer for a sentence, the trainer's settings, the score it reports.
CASES: dict[str, tuple[Any, dict[str, Any], str]] = {
    "text_classes": (lambda s: s.entities[0].label, {"c": 4.0}, "test_macro_f1"),
    "text_spans": (lambda s: stored(s.entities), {"epochs": 8}, "test_entity_f1"),
}

SPLITS = ("train", "val", "test")
EXPORTS = {
    "text_classes": {"path_jsonl", "path_csv", "path_parquet", "path_hf_datasets"}
    | {f"path_{split}_spacy" for split in SPLITS},
    "text_spans": {f"path_{split}_{fmt}" for split in SPLITS for fmt in ("jsonl", "csv", "parquet", "conll", "spacy")}
    | {"path_hf_datasets"},
}


def _insert_text_project(store: LabelStore, data_dir: Path, task_type: str) -> pd.DataFrame:
    answer = CASES[task_type][0]
    rows = []
    for sentence in [s for s in sentences(110, seed=7) if s.entities]:
        item_id = text_item_id(sentence.text)
        path = raw_path(data_dir / "raw", item_id, "TXT")
        write_once(path, sentence.text.encode("utf-8"), store=data_dir / "raw")
        rows.append({"item_id": item_id, "uri": str(path), "label": answer(sentence), "n": len(sentence.text)})
    frame = pd.DataFrame(rows).drop_duplicates("item_id")
    with store.begin() as conn:
        conn.execute(items_table.insert(), [
            {"item_id": r.item_id, "uri": r.uri, "source_path": r.uri, "format": "TXT", "n_bytes": r.n,
             "ingested_at": NOW, "status": "active"} for r in frame.itertuples()
        ])  # fmt: skip
        conn.execute(consensus_table.insert(), [
            {"item_id": r.item_id, "version": 1, "label": r.label, "method": "span_em", "confidence": 0.9,
             "n_annotators": 3, "computed_at": NOW} for r in frame.itertuples()
        ])  # fmt: skip
    return frame


def _metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    events = result.asset_materializations_for_node(key)
    assert events, f"{key} was not materialized"
    return {k: v.value for k, v in events[-1].metadata.items()}


@pytest.mark.slow
@pytest.mark.parametrize("task_type", sorted(CASES))
def test_a_text_project_trains_promotes_and_prelabels_its_model(
    sqlite_store: LabelStore, data_dir: Path, task_type: str
) -> None:
    store, kind = sqlite_store, task_kind(task_type)
    _, settings, score = CASES[task_type]
    frame = _insert_text_project(store, data_dir, task_type)
    mlflow = MLflowResource(data_dir=str(data_dir))
    resources = {
        "label_store": LabelStoreResource(url=store.url),
        "project": ProjectSettings(data_dir=str(data_dir), classes=TYPES, task_type=task_type),  # type: ignore[arg-type]
        "mlflow": mlflow,
        "label_studio": NO_LABEL_STUDIO,
    }
    instance = dg.DagsterInstance.ephemeral()
    # The version and its files, as the dataset stage makes them for the kind.
    dataset = dg.materialize([dataset_splits, dataset_export], resources=resources, instance=instance)
    assert dataset.success
    version = _metadata(dataset, "dataset_splits")["dataset_version"]
    exported = _metadata(dataset, "dataset_export")
    assert exported["n_items"] == len(frame)
    assert {k for k in exported if k.startswith("path_")} == EXPORTS[task_type]
    loaded = datasets.load_from_disk(str(exported["path_hf_datasets"]))
    assert sum(len(loaded[split]) for split in loaded) == len(frame)

    run_config = {"ops": {"trained_model": {"config": {"trainer_settings": settings}},
                          "model_evaluation": {"config": {"device": "cpu"}}}}  # fmt: skip
    result = dg.materialize([training_tensors, trained_model, model_evaluation], resources=resources,
                            instance=instance, run_config=run_config)  # fmt: skip
    assert result.success
    trained = _metadata(result, "trained_model")
    assert trained["task_type"] == task_type and trained["model"] == kind.trainer.model_name  # type: ignore[union-attr]
    (registered,) = mlflow.registered_versions()
    assert registered.tags["task_type"] == task_type and registered.tags["dataset_version"] == version
    evaluation = _metadata(result, "model_evaluation")
    assert evaluation["test_score_name"] == score and evaluation[score] > 0.7
    assert evaluation["promotion_outcome"] == "first" and evaluation["undecodable_test_items"] == 0
    champion = mlflow.champion()
    assert champion is not None

    # The champion pre-labels every text; the queue turns a stored output into a pre-label about the text.
    prelabeled = dg.materialize([prelabels], resources=resources, instance=instance,
                                run_config={"ops": {"prelabels": {"config": {"device": "cpu"}}}})  # fmt: skip
    meta = _metadata(prelabeled, "prelabels")
    assert meta["source"] == "model" and meta["items_prelabeled"] == len(frame) and meta["undecodable_items"] == 0
    assert len(store.fetch(sa.select(prelabels_table.c.item_id))) == len(frame)
    pending = frame[["item_id", "uri"]].to_dict("records")
    payloads = build_payloads(pending, newest_prelabels(store, frame["item_id"].tolist()), data_dir, kind=kind)
    texts = {r["item_id"]: Path(r["uri"]).read_text(encoding="utf-8") for r in pending}
    right = 0
    for payload, row in zip(payloads, frame.itertuples(), strict=True):
        assert payload["data"]["text"] == texts[row.item_id]
        (prediction,) = payload["predictions"]
        answer = kind.read_answer(prediction["result"])
        assert answer.problem is None and kind.is_answer(answer.label, TYPES)
        right += answer.label == row.label
    assert right / len(frame) > 0.7
