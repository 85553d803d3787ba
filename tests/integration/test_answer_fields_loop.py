"""A two-field project (class + severity, and the labeler's own confidence) on a real Label Studio: the stages from
the queue to the export, as the single-label loop tests set them up (seeded items, no image files needed).

Label Studio accepts the config with the extra controls (it validates a config when a project is created), the
review project's copy too; the crowd answers every field; collect stores them per annotation version; consensus,
splits and the export run, and the export's severity column is the crowd's severity consensus.
"""

import hashlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import dagster as dg
import pytest

from labeling_assets.assets import collect, queue
from labeling_assets.assets.consensus import ConsensusConfig, consensus_labels
from labeling_assets.assets.dataset import DatasetExportConfig, dataset_export, dataset_splits
from labeling_assets.core.fields.crowd import field_truth
from labeling_assets.core.fields.spec import SELF_CONFIDENCE, config_fields
from labeling_assets.core.labelstudio.crowd import LabelerSpec
from labeling_assets.core.labelstudio.review import review_config, review_title
from labeling_assets.core.store.answer_fields import current_field_answers
from labeling_assets.core.store.schema import LabelStore, items_table, utcnow
from labeling_assets.jobs import collect_job, queue_job
from labeling_assets.local.crowd import simulate_crowd
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from tests.labelstudio_server import LabelStudioServer

pytestmark = pytest.mark.labelstudio

CLASSES = ["cat", "dog", "bird"]
N_ITEMS = 18  # 54 annotations, one POST each
SEVERITY = '[{"name": "severity", "kind": "choice", "options": ["low", "medium", "high"], "required": true}]'
CROWD = [LabelerSpec("af_expert", "expert"), LabelerSpec("af_average", "average"), LabelerSpec("af_expert2", "expert")]


def test_a_class_plus_severity_project_runs_from_queue_to_export_on_label_studio(
    label_studio: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("fields")
    store = LabelStore(f"sqlite:///{folder / 'labels.db'}")
    store.migrate()
    truth = {hashlib.sha256(f"fields-{i}".encode()).hexdigest(): CLASSES[i % 3] for i in range(N_ITEMS)}
    with store.begin() as conn:
        conn.execute(items_table.insert(), [{"item_id": i, "uri": str(folder / "raw" / f"{i}.png"), "source_path": i,
                                             "n_bytes": 1, "ingested_at": utcnow(), "status": "active"} for i in truth])  # fmt: skip
    project = ProjectSettings(data_dir=str(folder), classes=CLASSES, extra_fields=SEVERITY, ask_self_confidence=True)
    resources = {"label_store": LabelStoreResource(url=store.url), "project": project,
                 "label_studio": label_studio.resource(f"fields-{folder.name}")}  # fmt: skip
    defs = dg.Definitions(assets=[queue.labeling_tasks, collect.annotations], jobs=[queue_job, collect_job],
                          resources=resources)  # fmt: skip
    client = label_studio.client()
    with dg.DagsterInstance.ephemeral() as instance:
        run_config = {"ops": {"labeling_tasks": {"config": {"max_new_tasks": 100, "gold_rate": 0.0}}}}
        assert defs.resolve_job_def("queue_job").execute_in_process(instance=instance, run_config=run_config).success
        project_id = resources["label_studio"].find_project_id()  # type: ignore[attr-defined]
        # Label Studio took the config with the extra controls after the class choices, and keeps them.
        config = client.label_config(project_id)
        assert [f[0] for f in config_fields(config) or ()] == ["severity", SELF_CONFIDENCE]
        assert ET.fromstring(config).find("Choices").get("name") == "label"  # type: ignore[union-attr]
        review_id = client.ensure_review_project(title=review_title(f"fields-{folder.name}"),
                                                 label_config=review_config(project.label_config()))  # fmt: skip
        assert config_fields(client.label_config(review_id)) == config_fields(config)

        crowd = simulate_crowd(client, project_id, CROWD, truth=truth, classes=CLASSES, overlap=3, seed=3,
                               fields=project.answer_fields())  # fmt: skip
        assert len(crowd.annotations) == N_ITEMS * 3
        assert defs.resolve_job_def("collect_job").execute_in_process(instance=instance).success
        stored = current_field_answers(store)
        assert stored.groupby("field").size().to_dict() == {"self_confidence": N_ITEMS * 3, "severity": N_ITEMS * 3}

        export = DatasetExportConfig(formats=["jsonl", "csv", "parquet"])
        sure = dg.RunConfig({"consensus_labels": ConsensusConfig(drop_votes_self_rated_below=3)})
        for assets, config_ in (([consensus_labels], sure), ([dataset_splits], None),
                                ([dataset_export], dg.RunConfig({"dataset_export": export}))):  # fmt: skip
            ran = dg.materialize(assets, resources={k: resources[k] for k in ("label_store", "project")},
                                 instance=instance, run_config=config_)  # fmt: skip
            assert ran.success
            if assets == [consensus_labels]:  # the opt-in: votes rated 1-2 left out of the class consensus
                left_out = ran.asset_materializations_for_node("consensus_labels")[0].metadata
                n = left_out["votes_self_rated_as_guesses_left_out"].value
                assert isinstance(n, int) and n > 0, n
        meta = ran.asset_materializations_for_node("dataset_export")[0].metadata
        text = Path(str(meta["path_jsonl"].value)).read_text(encoding="utf-8")
        lines = [json.loads(line) for line in text.splitlines()]

        # A field added later reaches the existing project's config on the next queue run (answers stay).
        flags = json.loads(SEVERITY) + [{"name": "quality", "kind": "choices", "options": ["blurry", "cropped"]}]
        later = ProjectSettings(data_dir=str(folder), classes=CLASSES, extra_fields=json.dumps(flags),
                                ask_self_confidence=True)  # fmt: skip
        requeue = dg.Definitions(assets=[queue.labeling_tasks], jobs=[queue_job], resources={**resources, "project": later})
        assert requeue.resolve_job_def("queue_job").execute_in_process(instance=instance, run_config=run_config).success
        assert [f[0] for f in config_fields(client.label_config(project_id)) or ()] == ["severity", "quality",
                                                                                       SELF_CONFIDENCE]  # fmt: skip
    store.dispose()
    assert len(lines) == N_ITEMS and all(line["severity"] in ("low", "medium", "high") for line in lines)
    spec = project.answer_fields()[0]
    right = sum(line["severity"] == field_truth(line["item_id"], spec) for line in lines)
    assert right >= N_ITEMS - 2, right  # two experts and an average labeler: the consensus is the truth
    assert all(1 <= line[SELF_CONFIDENCE] <= 5 and 0 < line["severity_confidence"] <= 1 for line in lines)
    card = (folder / "exports").glob("*/README.md")
    text = next(card).read_text(encoding="utf-8")
    assert "| severity | choice | 18 of 18 |" in text and f"| consensus | {N_ITEMS * 3} |" in text
