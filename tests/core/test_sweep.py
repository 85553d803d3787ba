"""Training sweeps: the TOML grid becomes cells, bad files are one clear line, the winner is picked on validation."""

from pathlib import Path

import pytest

from labeling_assets.core.training.sweep import (
    CellResult,
    SweepError,
    cell_config,
    choose_winner,
    comparison_table,
    plan_from_dict,
    read_plan,
    targets_mode,
)

DEMO_SWEEP = Path(__file__).resolve().parents[2] / "docs" / "sweep-demo.toml"


def test_every_combination_of_the_grid_is_a_cell_and_distillation_knobs_only_split_distilled_cells() -> None:
    plan = plan_from_dict({
        "name": "grid",
        "settings": {"epochs": 3, "device": "cpu"},
        "grid": {"backbone": ["small_cnn", "resnet18"], "teacher": ["none", "champion"], "temperature": [2.0, 4.0],
                 "alpha": [0.5]},
    })  # fmt: skip
    # 2 backbones x (1 plain + 2 temperatures distilled): temperature means nothing without a teacher.
    assert plan.keys == [
        "small_cnn-plain", "small_cnn-kd-T2", "small_cnn-kd-T4",
        "resnet18-plain", "resnet18-kd-T2", "resnet18-kd-T4",
    ]  # fmt: skip
    distilled = plan.cell("resnet18-kd-T4")
    assert distilled.distilled and distilled.temperature == 4.0 and distilled.alpha == 0.5
    assert distilled.settings == {"epochs": 3, "device": "cpu", "backbone": "resnet18"}
    plain = plan.cell("small_cnn-plain")
    assert not plain.distilled and plain.temperature is None and plain.params()["teacher"] == "none"
    with pytest.raises(SweepError, match="not in sweep 'grid'"):
        plan.cell("mobilenet")


def test_a_cell_round_trips_through_the_plans_metadata() -> None:
    plan = plan_from_dict({"grid": {"loss": ["ce", "focal"], "teacher": ["champion"], "alpha": [0.9]}})
    cells = [type(c).from_json(c.as_json()) for c in plan.cells]
    assert cells == plan.cells and [c.key for c in cells] == ["ce", "focal"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"grid": {"backbone": ["vgg"]}}, "backbone = 'vgg': choose one of"),
        ({"grid": {"learning_rate": [0.1]}}, "unknown sweep setting 'learning_rate'"),
        ({"settings": {"epochs": "ten"}}, "epochs = 'ten': expected int"),
        ({"grid": {"alpha": [1.5], "teacher": ["champion"]}}, "alpha in \\[0, 1\\]"),
        ({"grid": {"teacher": ["resnet"]}}, "teacher = 'resnet': choose one of none, champion"),
        ({"grid": {"backbone": []}}, "grid axis backbone has no values"),
        ({"grids": {}}, "unknown sweep table or key grids"),
        ({"grid": {"seed": list(range(65))}}, "more than 64"),
    ],
)
def test_a_wrong_sweep_is_refused_in_one_line_naming_the_setting(data: dict, message: str) -> None:
    with pytest.raises(SweepError, match=message):
        plan_from_dict(data)


def test_a_missing_or_broken_file_is_a_sweep_error(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match="not found"):
        read_plan(tmp_path / "none.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[grid\nbackbone = 1")
    with pytest.raises(SweepError, match="not valid TOML"):
        read_plan(broken)


def test_the_demo_sweep_has_at_least_four_cells_and_one_distils_from_the_champion() -> None:
    plan = read_plan(DEMO_SWEEP)
    assert len(plan.cells) >= 4 and any(c.distilled for c in plan.cells)
    assert all(c.settings.get("device") == "cpu" for c in plan.cells)


def test_a_cells_config_takes_the_cache_shape_the_cells_settings_and_a_fitted_batch() -> None:
    plan = plan_from_dict({"settings": {"epochs": 2, "batch_size": 256, "targets": "hard"},
                           "grid": {"backbone": ["mobilenet_v3_small"]}})  # fmt: skip
    cell = plan.cells[0]
    meta = {"classes": ["a", "b", "c"], "image_size": 32, "channels": 1}
    config = cell_config(cell, meta, n_train=300)
    assert (config.num_classes, config.image_size, config.channels) == (3, 32, 1)
    assert config.backbone == "mobilenet_v3_small" and config.epochs == 2
    assert config.batch_size == 30  # 300 items: at least 10 steps per epoch, as a plain run
    assert targets_mode(cell) == "hard"


def _result(key: str, score: float | None, parameters: int) -> CellResult:
    return CellResult(key=key, val_score=score, parameters=parameters, run_id=f"run-{key}")


def test_the_winner_has_the_best_validation_score_and_a_tie_goes_to_the_smaller_model() -> None:
    results = [_result("big", 0.91, 1000), _result("small", 0.91, 10), _result("worse", 0.90, 1), _result("none", None, 1)]
    assert choose_winner(results).key == "small"
    assert choose_winner([*results, _result("best", 0.95, 5000)]).key == "best"
    with pytest.raises(SweepError, match="no cell of the sweep has a validation score"):
        choose_winner([_result("none", None, 1)])


def test_the_comparison_table_lists_every_cell_best_first_and_marks_the_winner() -> None:
    table = comparison_table([_result("a", 0.5, 10), _result("b", 0.8, 20), _result("c", None, 5)], "b", "val_macro_f1")
    rows = table.splitlines()
    assert "val_macro_f1" in rows[0]
    assert [r.split("|")[1].strip() for r in rows[2:]] == ["b (winner)", "a", "c"]
    assert "n/a" in rows[-1]
