"""A new box champion is on Label Studio's open tasks as it is promoted (the hand-over of issue 26, for a kind with
its own trainer): model_evaluation pre-labels the open tasks' scenes with the detector and attaches its boxes as
predictions, which Label Studio (the real server) stores and the box kind reads back as box answers.

The box project is the one of ``tests/assets/test_train_assets_boxes.py`` (rendered scenes, their true boxes as
consensus, a dataset version), its tasks pushed by the project's own ``labeling_tasks``.
"""

from pathlib import Path

import dagster as dg
import pytest

from labeling_assets.assets.evaluate import model_evaluation
from labeling_assets.assets.queue import labeling_tasks
from labeling_assets.assets.train import trained_model, training_tensors
from labeling_assets.core.store.schema import LabelStore, prelabels_table
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.boxes.demo_scenes import SCENE_CLASSES
from labeling_assets.resources.mlflow import MLflowResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from tests.assets.test_train_assets_boxes import TRAINER_SETTINGS, _insert_box_project
from tests.labelstudio_server import LabelStudioServer

pytestmark = pytest.mark.labelstudio
N_TASKS = 12


@pytest.mark.slow
def test_a_new_box_champion_draws_its_boxes_on_the_open_tasks_as_it_is_promoted(
    label_studio: LabelStudioServer, sqlite_store: LabelStore, data_dir: Path
) -> None:
    _insert_box_project(sqlite_store, data_dir / "scenes")
    mlflow = MLflowResource(data_dir=str(data_dir))
    resources = {
        "label_store": LabelStoreResource(url=sqlite_store.url),
        "project": ProjectSettings(data_dir=str(data_dir), classes=SCENE_CLASSES, task_type="boxes"),
        "mlflow": mlflow,
        "label_studio": label_studio.resource(f"box-handover-{data_dir.name}"),
    }
    instance = dg.DagsterInstance.ephemeral()
    queued = dg.materialize([labeling_tasks], resources=resources, instance=instance, run_config={
        "ops": {"labeling_tasks": {"config": {"max_new_tasks": N_TASKS, "gold_rate": 0.0}}}})  # fmt: skip
    assert queued.success
    result = dg.materialize([training_tensors, trained_model, model_evaluation], resources=resources,
                            instance=instance, run_config={"ops": {
                                "trained_model": {"config": {"trainer_settings": TRAINER_SETTINGS}},
                                "model_evaluation": {"config": {"device": "cpu"}}}})  # fmt: skip
    meta = {k: v.value for k, v in result.asset_materializations_for_node("model_evaluation")[-1].metadata.items()}
    champion = f"{mlflow.registered_model_name}/1"
    assert meta["promoted"] and meta["handed_over_open_tasks"] == N_TASKS
    assert meta["handed_over_predictions"] == N_TASKS
    assert sqlite_store.count(prelabels_table, prelabels_table.c.model_version == champion) == N_TASKS

    client, project_id = label_studio.client(), resources["label_studio"].find_project_id()
    tasks = list(client.iter_tasks(project_id, fields="all"))
    assert len(tasks) == N_TASKS
    kind = task_kind("boxes")
    for task in tasks:
        [prediction] = [p for p in task["predictions"] if p["model_version"] == champion]
        answer = kind.read_answer(prediction["result"])  # as Label Studio stored it
        assert answer.problem is None and kind.is_answer(answer.label, SCENE_CLASSES)
    assert client.get_project(project_id)["model_version"] == champion
