"""A 2-cell training sweep through Dagster on the CPU: the plan's partitions, one child MLflow run per cell under the
sweep's parent run (one cell distilled from the champion), the winner picked on validation, registered, and the
only cell model_evaluation scores on the test split.

The data and fixtures are tests/assets/test_train_assets.py's (~300 demo digits at 16 px, a frozen split).
"""

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from labeling_assets.assets.evaluate import model_evaluation
from labeling_assets.assets.sweep import PARENT_TAG, sweep_cell, sweep_plan, sweep_summary
from labeling_assets.assets.train import trained_model, training_tensors
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.partitions import SWEEP_CELLS
from tests.assets.test_train_assets import TENSORS_CONFIG, _insert_dataset, _metadata, setup  # noqa: F401

SWEEP = """
name = "tiny"
[settings]
epochs = 1
batch_size = 32
patience = 0
device = "cpu"
[grid]
teacher = ["none", "champion"]
temperature = [2.0]
alpha = [0.5]
"""


@pytest.mark.slow
def test_a_two_cell_sweep_trains_each_cell_under_one_parent_run_and_registers_the_winner(
    setup: tuple[LabelStore, dict, pd.DataFrame], tmp_path: Path  # noqa: F811
) -> None:
    store, resources, frame = setup
    version = _insert_dataset(store, frame)
    instance = dg.DagsterInstance.ephemeral()
    mlflow = resources["mlflow"]
    # The champion the distilled cell learns from: a plain run of the loop's training (made champion by hand: the
    # evaluation below is the one under test).
    ops = {"training_tensors": {"config": TENSORS_CONFIG},
           "trained_model": {"config": {"epochs": 1, "batch_size": 32, "device": "cpu", "patience": 0}}}  # fmt: skip
    dg.materialize([training_tensors, trained_model], resources=resources, instance=instance, run_config={"ops": ops})
    mlflow.set_alias("champion", 1)

    grid = tmp_path / "tiny.toml"
    grid.write_text(SWEEP)
    config = {"ops": {"sweep_plan": {"config": {"settings_file": str(grid)}}}}
    plan = _metadata(dg.materialize([sweep_plan], resources=resources, instance=instance, run_config=config), "sweep_plan")
    assert plan["dataset_version"] == version and plan["n_cells"] == 2
    keys = instance.get_dynamic_partitions(SWEEP_CELLS)
    assert sorted(keys) == ["kd", "plain"]
    for key in keys:
        cell = _metadata(dg.materialize([sweep_cell], resources=resources, instance=instance, partition_key=key),
                         "sweep_cell")  # fmt: skip
        assert cell["cell"] == key and cell["dataset_version"] == version
        assert cell["teacher"] == ("none" if key == "plain" else f"{mlflow.registered_model_name}/1")
    summary = _metadata(dg.materialize([sweep_summary], resources=resources, instance=instance), "sweep_summary")
    evaluation = _metadata(dg.materialize([model_evaluation], resources=resources, instance=instance,
                                          run_config={"ops": {"model_evaluation": {"config": {"device": "cpu"}}}}),
                           "model_evaluation")  # fmt: skip

    client = mlflow.client()
    children = client.search_runs([mlflow.experiment_id()], filter_string=f"tags.`{PARENT_TAG}` = '{plan['parent_run_id']}'")
    by_cell = {run.data.tags["sweep_cell"]: run for run in children}
    assert sorted(by_cell) == ["kd", "plain"]
    assert by_cell["kd"].data.params["distill_temperature"] == "2.0" and by_cell["kd"].data.params["teacher"] == "champion"
    scores = {key: run.data.metrics["sweep_val_score"] for key, run in by_cell.items()}
    winner = summary["winner"]
    assert scores[winner] == max(scores.values()) and summary["cells_compared"] == 2
    assert "(winner)" in summary["comparison"] and summary["model_version"] == f"{mlflow.registered_model_name}/2"
    registered = mlflow.latest_version()
    assert registered is not None and registered.tags["sweep_cell"] == winner
    assert registered.run_id == by_cell[winner].info.run_id
    # The test split scores the winner only, once: the other cell's run never gets a test metric.
    assert evaluation["model_version"] == f"{mlflow.registered_model_name}/2"
    loser = next(key for key in by_cell if key != winner)
    assert "test_macro_f1" in client.get_run(by_cell[winner].info.run_id).data.metrics
    assert "test_macro_f1" not in client.get_run(by_cell[loser].info.run_id).data.metrics
