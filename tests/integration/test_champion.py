"""The champion model, end to end on a real MLflow registry (local SQLite tracking store via the resource):
every trained model is registered, only one not worse than the champion on the frozen test split takes the
alias, and pre-labels follow the alias.

Data: ~300 demo digits with frozen splits. Every test item is also gold, and the crowd got a few of them
wrong, so a decision scored on consensus would differ from one scored on gold.
"""

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from labeling_assets.assets.evaluate import model_evaluation
from labeling_assets.assets.prelabel import prelabels
from labeling_assets.assets.queue import labeling_tasks
from labeling_assets.assets.train import trained_model, training_tensors
from labeling_assets.checks.evaluate import build_evaluation_checks
from labeling_assets.constants import DEMO_CLASSES
from labeling_assets.core.store.schema import LabelStore, items_table, prelabels_table
from labeling_assets.core.training.metrics import macro_f1
from labeling_assets.core.training.predict import predict_files
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.mlflow import MLflowResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from tests.assets.test_train_assets import (
    NO_LABEL_STUDIO,
    TENSORS_CONFIG,
    _insert_dataset,
    _insert_items,
    _stratified_split,
)
from tests.labelstudio_server import LabelStudioServer

TRAIN = {"batch_size": 32, "device": "cpu", "patience": 0, "seed": 0}
N_WRONG_CONSENSUS = 8  # test items whose consensus label the crowd got wrong (their gold label is right)


class Loop:
    """The train → evaluate → prelabel steps on one Dagster instance, store and MLflow registry."""

    def __init__(
        self, store: LabelStore, data_dir: Path, mlflow: MLflowResource | None = None,
        label_studio: LabelStudioResource = NO_LABEL_STUDIO,
    ) -> None:  # fmt: skip
        self.store, self.instance = store, dg.DagsterInstance.ephemeral()
        self.mlflow = mlflow or MLflowResource(data_dir=str(data_dir))
        self.resources = {
            "label_store": LabelStoreResource(url=store.url),
            "project": ProjectSettings(data_dir=str(data_dir), classes=DEMO_CLASSES),
            "mlflow": self.mlflow,
            "label_studio": label_studio,
        }

    def train_and_evaluate(self, **train: object) -> tuple[dict, dg.AssetCheckEvaluation]:
        result = dg.materialize(
            [training_tensors, trained_model, model_evaluation, *build_evaluation_checks(floor=0.0)],
            resources=self.resources,
            instance=self.instance,
            run_config={
                "ops": {
                    "training_tensors": {"config": TENSORS_CONFIG},
                    "trained_model": {"config": {**TRAIN, **train}},
                    "model_evaluation": {"config": {"device": "cpu"}},
                }
            },
        )
        [event] = result.asset_materializations_for_node("model_evaluation")
        [check] = [
            e for e in result.get_asset_check_evaluations() if e.check_name == "macro_f1_not_worse_than_previous_model"
        ]
        return {k: v.value for k, v in event.metadata.items()}, check

    def prelabel(self) -> dict:
        result = dg.materialize([prelabels], resources=self.resources, instance=self.instance)
        return {k: v.value for k, v in result.asset_materializations_for_node("prelabels")[-1].metadata.items()}

    def gold_macro_f1(self, version: int, test: pd.DataFrame) -> float:
        """The registered version scored by this test itself on the gold test items."""
        [registered] = [v for v in self.mlflow.registered_versions() if v.version == version]
        loaded = self.mlflow.load_model(registered)
        probs, failed = predict_files(
            loaded.model, test["path"].tolist(), image_size=16, channels=1, num_classes=10, device="cpu"
        )
        assert failed == []
        truth = [DEMO_CLASSES.index(label) for label in test["truth"]]
        return macro_f1(np.array(truth), probs.argmax(axis=1), len(DEMO_CLASSES))


@pytest.fixture
def loop(sqlite_store: LabelStore, data_dir: Path) -> tuple[Loop, pd.DataFrame, str]:
    return make_loop(sqlite_store, data_dir)


def make_loop(
    sqlite_store: LabelStore, data_dir: Path, mlflow: MLflowResource | None = None,
    label_studio: LabelStudioResource = NO_LABEL_STUDIO,
) -> tuple[Loop, pd.DataFrame, str]:  # fmt: skip
    """~300 demo digits with frozen splits, every test item gold, a few with a wrong consensus label."""
    frame = _insert_items(sqlite_store, data_dir / "demo").rename(columns={"label": "truth"})
    frame["split"] = _stratified_split(frame["truth"])
    frame["label"] = frame["truth"]
    wrong = frame.index[frame["split"] == "test"][:N_WRONG_CONSENSUS]
    frame.loc[wrong, "label"] = [str((int(t) + 1) % 10) for t in frame.loc[wrong, "truth"]]
    version = _insert_dataset(sqlite_store, frame)
    test = frame[frame["split"] == "test"].sort_values("item_id")
    with sqlite_store.begin() as conn:
        conn.execute(
            items_table.update().where(items_table.c.item_id == sa.bindparam("id")).values(gold_label=sa.bindparam("g")),
            [{"id": r.item_id, "g": r.truth} for r in test.itertuples()],
        )
    return Loop(sqlite_store, data_dir, mlflow, label_studio), test, version


@pytest.mark.slow
def test_only_a_model_not_worse_than_the_champion_takes_the_alias_and_prelabels_follow_it(
    loop: tuple[Loop, pd.DataFrame, str],
) -> None:
    loop_, test, version = loop
    name = loop_.mlflow.registered_model_name
    assert len(test) == 30 and loop_.mlflow.champion() is None  # 3 of every 20 items per class

    # 1. The first model becomes the champion; pre-labels come from it.
    first, check = loop_.train_and_evaluate(epochs=2)
    assert first["promoted"] and first["alias"] == "champion" and first["promotion_outcome"] == "first"
    assert first["scoring_basis"] == "gold" and first["scoring_items"] == 30 and first["gold_test_items"] == 30
    assert first["candidate_macro_f1"] == pytest.approx(loop_.gold_macro_f1(1, test), abs=1e-6)
    assert check.passed and "first champion" in check.metadata["reason"].value
    champion = loop_.mlflow.champion()
    assert champion is not None and champion.version == 1
    assert champion.tags["dataset_version"] == version  # what the retrain trigger compares with
    meta = loop_.prelabel()
    assert meta["model_version"] == f"{name}/1" and meta["is_champion"] and meta["items_prelabeled"] == 300
    assert meta["champion_uri"] == f"models:/{name}@champion"

    # 2. A deliberately worse model (lr 0: its random initial weights) is registered, but only as challenger.
    worse, check = loop_.train_and_evaluate(epochs=1, lr=0.0, seed=1)
    assert worse["model_version"] == f"{name}/2"
    assert not worse["promoted"] and worse["alias"] == "challenger" and worse["promotion_outcome"] == "worse"
    # The champion was re-scored on the same gold items in this run (not a number from another split).
    assert worse["previous_champion_version"] == f"{name}/1"
    assert worse["previous_champion_macro_f1"] == pytest.approx(loop_.gold_macro_f1(1, test), abs=1e-6)
    assert worse["candidate_macro_f1"] == pytest.approx(loop_.gold_macro_f1(2, test), abs=1e-6)
    assert worse["candidate_macro_f1"] < worse["previous_champion_macro_f1"] - 0.01
    assert check.passed is False and check.severity == dg.AssetCheckSeverity.WARN
    reason = check.metadata["reason"].value
    for part in (f"{name}/2", f"{name}/1", f"{worse['candidate_macro_f1']:.4f}",
                 f"{worse['previous_champion_macro_f1']:.4f}", "30 gold-labeled test items", "challenger"):  # fmt: skip
        assert part in reason
    assert loop_.mlflow.champion().version == 1
    assert [(v.version, v.aliases) for v in loop_.mlflow.registered_versions()] == [
        (2, ("challenger",)),
        (1, ("champion",)),
    ]
    meta = loop_.prelabel()
    assert meta["model_version"] == f"{name}/1" and meta["items_prelabeled"] == 0
    assert loop_.store.count(prelabels_table, prelabels_table.c.model_version == f"{name}/2") == 0

    # 3. A better model (trained longer) takes the alias; pre-labels move with it.
    better, check = loop_.train_and_evaluate(epochs=8, seed=2)
    assert better["promoted"] and better["promotion_outcome"] == "not_worse" and check.passed
    assert better["previous_champion_version"] == f"{name}/1"
    assert better["candidate_macro_f1"] > better["previous_champion_macro_f1"]  # better, not only within the tolerance
    assert loop_.mlflow.champion().version == 3
    # The challenger lost to an older champion: the alias is dropped, the version stays registered.
    assert [(v.version, v.aliases) for v in loop_.mlflow.registered_versions()] == [
        (3, ("champion",)),
        (2, ()),
        (1, ()),
    ]
    assert loop_.mlflow.registered_versions()[1].tags["promotion"] == "challenger"
    meta = loop_.prelabel()
    assert meta["model_version"] == f"{name}/3" and meta["is_champion"] and meta["items_prelabeled"] == 300


@pytest.mark.slow
def test_too_few_gold_test_items_decide_on_consensus_labels(loop: tuple[Loop, pd.DataFrame, str]) -> None:
    loop_, test, _ = loop
    result = dg.materialize(
        [training_tensors, trained_model, model_evaluation],
        resources=loop_.resources,
        instance=loop_.instance,
        run_config={
            "ops": {
                "training_tensors": {"config": TENSORS_CONFIG},
                "trained_model": {"config": {**TRAIN, "epochs": 1}},
                "model_evaluation": {"config": {"device": "cpu", "min_gold_test_items": 31}},
            }
        },
    )
    meta = {k: v.value for k, v in result.asset_materializations_for_node("model_evaluation")[0].metadata.items()}
    assert meta["scoring_basis"] == "consensus" and meta["gold_test_items"] == 30
    assert meta["scoring_items"] == meta["test_items"] == len(test)
    assert meta["candidate_macro_f1"] == pytest.approx(meta["test_macro_f1"], abs=1e-6)
    assert meta["min_gold_test_items"] == 31


def test_a_new_champion_is_on_the_open_tasks_as_it_is_promoted_before_any_prelabel_run(
    label_studio: LabelStudioServer, sqlite_store: LabelStore, data_dir: Path
) -> None:
    """Issue 26: after a promotion, labelers saw the previous champion's predictions until a prelabel run and a
    queue run had started and finished (the long run: 4% of open tasks carried the champion's). model_evaluation
    pre-labels the open tasks' items with the new champion and attaches them before the alias moves."""
    loop_, _, _ = make_loop(sqlite_store, data_dir, label_studio=label_studio.resource(f"handover-{data_dir.name}"))
    dg.materialize([labeling_tasks], resources=loop_.resources, instance=loop_.instance,
                   run_config={"ops": {"labeling_tasks": {"config": {"max_new_tasks": 12, "gold_rate": 0.0}}}})  # fmt: skip
    meta, _ = loop_.train_and_evaluate(epochs=1)
    champion = f"{loop_.mlflow.registered_model_name}/1"
    assert meta["promoted"] and meta["handed_over_open_tasks"] == 12 and meta["handed_over_predictions"] == 12
    client, project_id = label_studio.client(), loop_.resources["label_studio"].find_project_id()
    tasks = list(client.iter_tasks(project_id, fields="all"))
    assert len(tasks) == 12 and all(champion in {p["model_version"] for p in t["predictions"]} for t in tasks)
    assert client.get_project(project_id)["model_version"] == champion  # what the labeling screen pre-fills
    # Only the open tasks' items so far: the prelabel run after the promotion pre-labels the other 288.
    assert loop_.store.count(prelabels_table, prelabels_table.c.model_version == champion) == 12
