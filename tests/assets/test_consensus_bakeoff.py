"""consensus_labels' bake-off: every consensus method scored on the hidden gold items by cross-fitting, the
winner used, its scoreboard in the metadata, in the label store (per run, so per dataset version) and in
the QA report. Real label stores (SQLite and PostgreSQL), real Dagster runs, planted crowds whose right
answer is known."""

import datetime as dt
import typing
from pathlib import Path

import dagster as dg
import numpy as np
import pydantic
import pytest

from labeling_assets.assets.consensus import ConsensusConfig, consensus_labels
from labeling_assets.assets.dataset import dataset_splits
from labeling_assets.assets.qa_report import qa_report
from labeling_assets.core.consensus.bakeoff import MIN_GOLD_FOR_BAKEOFF
from labeling_assets.core.consensus.methods import METHODS
from labeling_assets.core.consensus.multilabel import JOINT
from labeling_assets.core.store.consensus_versions import consensus_choices
from labeling_assets.core.store.datasets import stored_soft_targets
from labeling_assets.core.store.queries import consensus_frame
from labeling_assets.core.store.schema import LabelStore, annotations_table, items_table
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

CLASSES = ["ant", "bee", "cat", "dog"]
START = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
DS_METHODS = {"dawid_skene", "dawid_skene_pooled"}


def _plant_defaulters(store: LabelStore, n_items: int, gold_every: int, seed: int = 0) -> dict[str, str]:
    """One careful labeler (90 % right) and two who always answer 'ant', on every item.

    Majority follows the two defaulters, so it is right only on true ants (about a quarter); a
    Dawid-Skene method that learns, from gold, that the defaulters say nothing follows the careful labeler.
    """
    rng = np.random.default_rng(seed)
    truth = {f"{i:064x}": CLASSES[int(rng.integers(len(CLASSES)))] for i in range(n_items)}
    items, votes = [], []
    for n, (item_id, label) in enumerate(truth.items()):
        items.append(
            {
                "item_id": item_id,
                "uri": f"/raw/{n}.png",
                "source_path": f"{n}.png",
                "n_bytes": 100,
                "ingested_at": START,
                "status": "active",
                "gold_label": label if n % gold_every == 0 else None,
            }
        )
        careful = label if rng.random() < 0.9 else CLASSES[int(rng.integers(len(CLASSES)))]
        for j, (labeler, answer) in enumerate([("careful", careful), ("default_a", "ant"), ("default_b", "ant")]):
            stamp = START + dt.timedelta(minutes=n)
            votes.append(
                {
                    "ls_annotation_id": n * 10 + j,
                    "version": 1,
                    "item_id": item_id,
                    "labeler_id": labeler,
                    "label": [answer],
                    "lead_time_s": 5.0,
                    "created_at": stamp,
                    "updated_at": stamp,
                    "synced_at": stamp,
                    "deleted": False,
                    "content_hash": f"h{n}-{j}",
                }
            )
    with store.begin() as conn:
        conn.execute(items_table.insert(), items)
        conn.execute(annotations_table.insert(), votes)
    return truth


def _materialize(
    assets: list[dg.AssetsDefinition], store: LabelStore, tmp_path: Path, config: ConsensusConfig | None = None
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets,
        resources={
            "label_store": LabelStoreResource(url=store.url),
            "project": ProjectSettings(data_dir=str(tmp_path), classes=CLASSES),
        },
        instance=dg.DagsterInstance.ephemeral(),
        run_config=dg.RunConfig({"consensus_labels": config or ConsensusConfig()}),
    )


def _metadata(result: dg.ExecuteInProcessResult, node: str = "consensus_labels") -> dict[str, typing.Any]:
    return {k: v.value for k, v in result.asset_materializations_for_node(node)[0].metadata.items()}


@pytest.mark.slow
def test_with_enough_gold_auto_uses_the_bakeoff_winner_and_records_its_scoreboard(
    store: LabelStore, tmp_path: Path
) -> None:
    truth = _plant_defaulters(store, n_items=200, gold_every=4)  # 50 gold items

    result = _materialize([consensus_labels, qa_report, dataset_splits], store, tmp_path)
    assert result.success
    meta = _metadata(result)
    assert meta["gold_items_used"] == 50
    winner = meta["bakeoff_winner"]
    assert winner in DS_METHODS, meta["bakeoff_scoreboard"]
    # The consensus is the winner's: every stored row names it, and it is right where majority is not.
    frame = consensus_frame(store)
    assert set(frame["method"]) == {winner} and meta["method"] == winner
    accuracy = float((frame["label"] == frame["item_id"].map(truth)).mean())
    assert accuracy > 0.8
    assert "bake-off on 50 gold items" in meta["method_choice"]
    table = meta["bakeoff_scoreboard"]
    assert table.startswith("| method | accuracy on gold |") and f"| {winner} |" in table and "**winner**" in table

    # Stored with this run's id next to the consensus rows it explains (a dataset version's labels trace to it).
    [choice] = consensus_choices(store)
    assert choice["run_id"] == result.run_id and choice["method"] == winner and choice["n_gold"] == 50
    board = {row["method"]: row for row in choice["scoreboard"]}
    assert set(board) == DS_METHODS | {"majority"}
    assert board[winner]["chosen"] and board[winner]["accuracy"] > 0.8
    # Scored cross-fitted on gold: majority's 'ant' is right only on the true ants among the gold items.
    gold_ants = sum(truth[i] == "ant" for n, i in enumerate(truth) if n % 4 == 0)
    assert board["majority"]["correct"] == gold_ants and board["majority"]["accuracy"] < 0.5
    assert board[winner]["ci_low"] < board[winner]["accuracy"] < board[winner]["ci_high"]

    page = Path(_metadata(result, "qa_report")["report"]).read_text()
    assert 'data-section="consensus_bakeoff"' in page and "winner" in page
    assert f"Consensus method: {winner}" in page
    # The dataset version's card (stored with the version) names the method and the bake-off behind it.
    card = _metadata(result, "dataset_splits")["card"]
    assert f"- **Consensus method** (newest consensus run): {winner}; auto chose {winner}" in card
    assert f"  - {winner}: " in card and "(used)" in card


@pytest.mark.slow
def test_with_too_little_gold_auto_keeps_its_rule_and_says_why_no_bakeoff_ran(
    store: LabelStore, tmp_path: Path
) -> None:
    _plant_defaulters(store, n_items=100, gold_every=5)  # 20 gold items
    assert MIN_GOLD_FOR_BAKEOFF > 20

    result = _materialize([consensus_labels, qa_report], store, tmp_path)
    meta = _metadata(result)
    assert meta["bakeoff_winner"] == "" and meta["gold_items_used"] == 20
    assert meta["bakeoff_scoreboard"].startswith("no bake-off: too little gold (20 gold items")
    assert meta["method"] == "dawid_skene" and "auto chose dawid_skene" in meta["method_choice"]
    [choice] = consensus_choices(store)
    assert choice["scoreboard"] is None and choice["reason"].startswith("no bake-off: too little gold")
    page = Path(_metadata(result, "qa_report")["report"]).read_text()
    assert "no bake-off: too little gold" in page


def test_the_method_config_accepts_every_method_core_knows_and_nothing_else() -> None:
    field = ConsensusConfig.model_fields["method"]
    # Every single-label method, plus the joint set method that only multi-label projects run.
    assert typing.get_args(field.annotation) == (*METHODS, JOINT)
    for method in (*METHODS, JOINT):
        assert ConsensusConfig(method=method).method == method
    with pytest.raises(pydantic.ValidationError):
        ConsensusConfig(method="mace")


def test_dawid_skene_pooled_runs_from_config_and_its_posterior_is_a_soft_target(
    store: LabelStore, tmp_path: Path
) -> None:
    _plant_defaulters(store, n_items=60, gold_every=4)

    result = _materialize([consensus_labels], store, tmp_path, ConsensusConfig(method="dawid_skene_pooled"))
    meta = _metadata(result)
    assert meta["method"] == "dawid_skene_pooled"
    assert meta["bakeoff_scoreboard"] == "no bake-off: method dawid_skene_pooled was set in the run config (auto runs one)"
    frame = consensus_frame(store)
    codes = np.array([CLASSES.index(label) for label in frame["label"]], dtype=np.int64)
    targets = stored_soft_targets(store, frame["item_id"].tolist(), codes, CLASSES)
    assert targets.missing == 0 and targets.not_posterior == 0  # a posterior, not vote shares
