"""Dataset lineage on a real store (SQLite and PostgreSQL) and a real Dagster instance: rebuild "as of" a time,
version diffs with the votes behind them, near-duplicate groups and their blocking check, tags, item history.

Items are real demo digits (PNG copies) inserted the way ingest and consensus_labels leave them, with times
set so that each change happens after the version before it.
"""

import datetime as dt
import hashlib
import io
from collections.abc import Iterator, Sequence
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from PIL import Image, ImageEnhance

from labeling_assets.assets.dataset import dataset_splits
from labeling_assets.checks import dataset as checks
from labeling_assets.cli.main import main as cli
from labeling_assets.core.dataset.build import manifest_bytes
from labeling_assets.core.dataset.splits import manifest_to_json, manifest_version
from labeling_assets.core.ingest.demo_data import render_digits
from labeling_assets.core.ingest.lifecycle import MISSING, SOURCE_MISSING, retire_unheld
from labeling_assets.core.reporting.item_history import render_item_history
from labeling_assets.core.store import history
from labeling_assets.core.store.as_of import rebuild_dataset_as_of, votes_as_of
from labeling_assets.core.store.consensus_versions import record_class_list
from labeling_assets.core.store.lineage_schema import item_phashes_table
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    consensus_table,
    dataset_versions_table,
    items_table,
    review_requests_table,
    splits_table,
    utcnow,
)
from labeling_assets.resources.mlflow import MLflowResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

CLASSES = ["cat", "dog", "eel"]
CHECKS = [
    checks.dataset_splits_no_hash_in_two_splits,
    checks.dataset_splits_no_group_in_two_splits,
    checks.dataset_splits_no_near_duplicates_in_two_splits,
    checks.dataset_splits_frozen_assignments_unchanged,
    checks.dataset_splits_only_live_labeled_items,
]


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> list[Image.Image]:
    folder = tmp_path_factory.mktemp("digits")
    render_digits(folder, limit=100)
    return [Image.open(p).convert("L") for p in sorted(folder.rglob("*.png"))]


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class Lineage:
    """A store, a data folder and a Dagster instance; items, votes and consensus written with chosen times."""

    def __init__(self, store: LabelStore, data_dir: Path, instance: dg.DagsterInstance, digits: list[Image.Image]):
        self.store, self.data_dir, self.instance, self.digits = store, data_dir, instance, digits
        self.next_digit = 0
        self.next_annotation = 1
        self.resources = {
            "label_store": LabelStoreResource(url=store.url),
            "project": ProjectSettings(data_dir=str(data_dir), classes=CLASSES),
        }

    def add_items(self, labels: Sequence[str], at: dt.datetime, images: Sequence[Image.Image] | None = None) -> list[str]:
        """Items with real copies, two votes each (labelers 7 and 8) and a consensus (version 1), all at ``at``."""
        raw = self.data_dir / "raw"
        raw.mkdir(exist_ok=True)
        ids = []
        for k, label in enumerate(labels):
            if images is None:
                image, self.next_digit = self.digits[self.next_digit], self.next_digit + 1
            else:
                image = images[k]
            data = _png(image)
            item = hashlib.sha256(data).hexdigest()
            (raw / f"{item}.png").write_bytes(data)
            with self.store.begin() as conn:
                conn.execute(items_table.insert().values(
                    item_id=item, uri=str(raw / f"{item}.png"), source_path=f"/src/{item[:8]}.png",
                    n_bytes=len(data), ingested_at=at, status="active"))
            for labeler in ("7", "8"):
                self.vote(item, labeler, label, at, version=1)
            self.consensus(item, label, at, version=1)
            ids.append(item)
        return ids

    def vote(self, item: str, labeler: str, label: str | None, at: dt.datetime, *, version: int,
             annotation: int | None = None) -> int:
        if annotation is None:
            annotation, self.next_annotation = self.next_annotation, self.next_annotation + 1
        with self.store.begin() as conn:
            conn.execute(annotations_table.insert().values(
                ls_annotation_id=annotation, version=version, item_id=item, labeler_id=labeler, label=label,
                created_at=at, updated_at=at, synced_at=at, deleted=label is None, content_hash=f"{annotation}-{version}"))
        return annotation

    def consensus(self, item: str, label: str, at: dt.datetime, *, version: int, retracted: bool = False) -> None:
        with self.store.begin() as conn:
            conn.execute(consensus_table.insert().values(
                item_id=item, version=version, label=label, method="majority", confidence=1.0, agreement=1.0,
                n_annotators=2, computed_at=at, retracted=retracted, retraction_reason="votes deleted" if retracted else None))

    def materialize(self, *, checks_pass: bool = True) -> tuple[str, dg.ExecuteInProcessResult]:
        result = dg.materialize([dataset_splits, *CHECKS], instance=self.instance, resources=self.resources,
                                raise_on_error=False)
        assert result.success is checks_pass
        return result.asset_materializations_for_node("dataset_splits")[0].metadata["dataset_version"].value, result

    def stored_manifest(self, version: str) -> bytes:
        row = self.store.fetch(sa.select(dataset_versions_table.c.manifest)
                               .where(dataset_versions_table.c.dataset_version == version))[0]
        return manifest_bytes(row["manifest"])


@pytest.fixture
def lineage(store: LabelStore, data_dir: Path, digits: list[Image.Image]) -> Iterator[Lineage]:
    with dg.instance_for_test() as instance:
        yield Lineage(store, data_dir, instance, digits)


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


@pytest.mark.slow
def test_as_of_rebuilds_earlier_versions_byte_for_byte_and_the_diff_counts_the_planted_changes(
    lineage: Lineage, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_class_list(lineage.store, CLASSES)
    start = utcnow() - dt.timedelta(hours=1)
    old = lineage.add_items(["cat"] * 24 + ["dog"] * 15 + ["eel"] * 6, at=start)
    v1, _ = lineage.materialize()
    v1_at = history.created_at(lineage.store, v1)

    # The planted change set, all after v1: 6 new items, 3 relabeled by both votes, 2 retracted.
    later = utcnow()
    added = lineage.add_items(["eel"] * 4 + ["dog"] * 2, at=later)
    relabeled = old[:3]  # cat -> dog
    for item in relabeled:
        for annotation, labeler in ((r["ls_annotation_id"], r["labeler_id"]) for r in lineage.store.fetch(
                sa.select(annotations_table).where(annotations_table.c.item_id == item))):
            lineage.vote(item, labeler, "dog", later, version=2, annotation=annotation)
        lineage.consensus(item, "dog", later, version=2)
    removed = old[24:26]  # dog
    for item in removed:
        lineage.consensus(item, "dog", later, version=2, retracted=True)
    v2, second = lineage.materialize()
    assert v2 != v1

    # As of v1's creation (and of any time before the changes) the store rebuilds v1 exactly; as of v2's, v2.
    for when, version in ((v1_at, v1), (later - dt.timedelta(microseconds=1), v1),
                          (history.created_at(lineage.store, v2), v2)):
        rebuilt = rebuild_dataset_as_of(lineage.store, when, classes=["unused"])
        assert rebuilt.built.version == version
        assert manifest_bytes(rebuilt.built.manifest_json) == lineage.stored_manifest(version)

    diff = history.diff_versions(lineage.store, v1, v2)
    assert diff.counts() == {"added": 6, "removed": 2, "relabeled": 3, "moved_between_splits": 0}
    assert set(diff.added["item_id"]) == set(added) and set(diff.removed["item_id"]) == set(removed)
    assert diff.transitions() == {"cat -> dog": 3}
    assert diff.class_deltas.set_index("class")["delta"].to_dict() == {"cat": -3, "dog": 3, "eel": 4}
    assert diff.vote_changes == {
        item: [{"labeler": "7", "before": "cat", "after": "dog"}, {"labeler": "8", "before": "cat", "after": "dog"}]
        for item in relabeled
    }
    meta = second.asset_materializations_for_node("dataset_splits")[0].metadata
    assert (meta["items_added"].value, meta["items_removed"].value, meta["items_relabeled"].value) == (6, 2, 3)
    assert meta["items_moved_between_splits"].value == 0
    assert "cat -> dog" in meta["diff"].value

    # Bitemporal: the votes known at v1 are the old ones, whatever their valid time asks.
    votes = votes_as_of(lineage.store, valid_time=utcnow(), known_at=v1_at, item_id=relabeled[0])
    assert votes["label"].tolist() == ["cat", "cat"]
    assert votes_as_of(lineage.store, valid_time=utcnow(), item_id=relabeled[0])["label"].tolist() == ["dog", "dog"]

    # The CLI writes the same manifest.
    out = lineage.data_dir / "as-of"
    monkeypatch.setenv("LABEL_STORE_URL", lineage.store.url)
    assert cli(["dataset", "as-of", v1_at.isoformat(), "--out", str(out)]) == 0
    assert (out / "manifest.json").read_bytes() == lineage.stored_manifest(v1)


@pytest.mark.slow
def test_a_planted_near_duplicate_across_splits_fails_the_blocking_check_and_new_ones_stay_together(
    lineage: Lineage,
) -> None:
    at = utcnow() - dt.timedelta(hours=1)
    base = lineage.add_items(["cat", "dog", "eel"] * 15, at=at)
    original = Image.open(io.BytesIO(_png(lineage.digits[0])))
    darker = lineage.add_items(["cat"], at=at, images=[ImageEnhance.Brightness(original).enhance(0.85)])[0]
    # Frozen before near-duplicates were known: the original in train, its darker copy in test.
    with lineage.store.begin() as conn:
        conn.execute(splits_table.insert(), [
            {"item_id": base[0], "split": "train", "dataset_version": "old", "assigned_at": at},
            {"item_id": darker, "split": "test", "dataset_version": "old", "assigned_at": at},
        ])
    _, result = lineage.materialize(checks_pass=False)
    outcome = _checks(result)
    assert outcome["dataset_splits_no_near_duplicates_in_two_splits"] is False
    assert outcome["dataset_splits_no_hash_in_two_splits"] is True
    evaluation = next(e for e in result.get_asset_check_evaluations()
                      if e.check_name == "dataset_splits_no_near_duplicates_in_two_splits")
    assert {base[0], darker} == {evaluation.metadata["examples"].value[0][k] for k in ("item_a", "item_b")}
    assert "remove one item of each pair" in evaluation.metadata["remedy"].value

    card = result.asset_materializations_for_node("dataset_splits")[0].metadata["card"].value
    assert "## Near-duplicate groups" in card and "near-dup:" in card
    assert "span more than one split" in card  # the card documents the leak it cannot undo

    # The remedy it names: the copy's source file is removed, ingest retires the item, the next version passes.
    with lineage.store.begin() as conn:
        retire_unheld(conn, {darker: "removed: near-duplicate of a train item"}, status=MISSING, reason=SOURCE_MISSING)
    _, result = lineage.materialize(checks_pass=True)
    assert _checks(result)["dataset_splits_no_near_duplicates_in_two_splits"] is True


def _plant_phashes(store: LabelStore, hashes: dict[str, int]) -> None:
    """Give items chosen perceptual hashes (replacing any computed one)."""
    with store.begin() as conn:
        conn.execute(item_phashes_table.delete().where(item_phashes_table.c.item_id.in_(list(hashes))))
        conn.execute(item_phashes_table.insert(), [
            {"item_id": i, "phash": f"{h:016x}", "problem": None, "computed_at": utcnow()} for i, h in hashes.items()
        ])


@pytest.mark.slow
def test_a_new_item_bridging_frozen_train_and_test_near_duplicates_is_held_out_and_the_loop_goes_on(
    lineage: Lineage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 26's jam: a new item within 4 bits of a frozen train item and of a frozen test item that are not
    near-duplicates of each other. Wherever it went, one pair would cross splits, so the blocking check failed
    on every later version. Now it is held out with its reason (card, metadata, item history) and the check
    passes for what the version holds."""
    at = utcnow() - dt.timedelta(hours=1)
    base = lineage.add_items(["cat", "dog", "eel"] * 15, at=at)
    # Far-apart hashes for everyone (random 64-bit values: no two within 8 bits).
    rng = np.random.default_rng(0)
    _plant_phashes(lineage.store, {i: int(h) for i, h in zip(base, rng.integers(0, 2**63, len(base)), strict=True)})
    v1, result = lineage.materialize()
    manifest = result.asset_materializations_for_node("dataset_splits")[0].metadata
    frozen = {r["item_id"]: r["split"] for r in lineage.store.fetch(sa.select(splits_table))}
    in_train = next(i for i in base if frozen[i] == "train")
    in_test = next(i for i in base if frozen[i] == "test")
    anchor = 0x5A5A_F0F0_3C3C_0000
    bridge = lineage.add_items(["cat"], at=utcnow())[0]
    _plant_phashes(lineage.store, {in_train: anchor, in_test: anchor ^ 0xFF, bridge: anchor ^ 0x0F})  # 8, 4, 4 bits

    result = dg.materialize(  # failed before: the near-duplicate check, on this and every later version
        [dataset_splits, *CHECKS], instance=lineage.instance, resources=lineage.resources,
        run_config={"ops": {"dataset_splits": {"config": {"review_held_out": True}}}},
    )
    assert result.success
    v2 = result.asset_materializations_for_node("dataset_splits")[0].metadata["dataset_version"].value
    assert _checks(result)["dataset_splits_no_near_duplicates_in_two_splits"] is True
    metadata = result.asset_materializations_for_node("dataset_splits")[0].metadata
    assert [h["item_id"] for h in metadata["held_out_items"].value] == [bridge]
    assert metadata["held_out_items"].value[0]["frozen_near_duplicates"] == sorted(
        [{"item_id": in_train, "split": "train"}, {"item_id": in_test, "split": "test"}], key=lambda n: n["item_id"]
    )
    assert metadata["excluded_items"].value["near-duplicate of frozen items in more than one split"] == 1
    assert "Held out of this version (1 items" in metadata["card"].value and bridge[:12] in metadata["card"].value
    assert v2 == v1 and manifest["n_items"].value == metadata["n_items"].value  # the version without it
    (request,) = lineage.store.fetch(sa.select(review_requests_table))  # review_held_out: sent to an expert
    assert (request["item_id"], request["action"], request["source"]) == (bridge, "expert_review", "dataset_splits")
    found = history.item_history(lineage.store, bridge)
    assert found["held_out"]["reason"] == "near-duplicate of frozen items in more than one split"
    assert found["split"] is None  # kept in the store, never frozen anywhere
    assert "held out of dataset version" in render_item_history(found)

    # Once the test item leaves the dataset, the bridge is placed (with the train item it is close to).
    with lineage.store.begin() as conn:
        retire_unheld(conn, {in_test: "removed"}, status=MISSING, reason=SOURCE_MISSING)
    _, result = lineage.materialize(checks_pass=True)
    metadata = result.asset_materializations_for_node("dataset_splits")[0].metadata
    assert metadata["held_out_items"].value == []
    placed = {r["item_id"]: r["split"] for r in lineage.store.fetch(sa.select(splits_table))}
    assert placed[bridge] == "train"


@pytest.mark.slow
def test_tags_round_trip_through_the_store_and_the_metadata(lineage: Lineage) -> None:
    at = utcnow() - dt.timedelta(hours=1)
    lineage.add_items(["cat", "dog", "eel"] * 12, at=at)
    v1, _ = lineage.materialize()
    assert history.tag_version(lineage.store, v1, "baseline", "first release") is True
    assert history.tag_version(lineage.store, v1, "baseline") is False
    assert history.resolve_version(lineage.store, "baseline") == v1
    assert history.resolve_version(lineage.store, v1[:6]) == v1
    with pytest.raises(history.UnknownVersion):
        history.resolve_version(lineage.store, "nope")
    assert lineage.materialize()[1].asset_materializations_for_node("dataset_splits")[0].metadata[
        "dataset_tags"
    ].value == ["baseline"]  # the version's tags show in the metadata of its materialization
    with lineage.store.begin() as conn:  # another stored version
        conn.execute(dataset_versions_table.insert().values(dataset_version="0f0f0f0f0f0f0f0f", created_at=utcnow(),
                                                            n_items=0))
    with pytest.raises(ValueError, match="already names"):
        history.tag_version(lineage.store, "0f0f0f0f0f0f0f0f", "baseline")
    history.tag_version(lineage.store, "0f0f0f0f0f0f0f0f", "release-1")
    assert history.tags_of(lineage.store, "0f0f0f0f0f0f0f0f") == ["release-1"]
    assert history.tags_of(lineage.store, v1) == ["baseline"]


@pytest.mark.slow
def test_the_tag_command_reaches_mlflow_and_dagster_and_the_item_history_names_the_model(
    sqlite_store: LabelStore, data_dir: Path, digits: list[Image.Image], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    lineage = Lineage(sqlite_store, data_dir, dg.DagsterInstance.ephemeral(), digits)
    ids = lineage.add_items(["cat", "dog", "eel"] * 4, at=utcnow() - dt.timedelta(hours=1))
    manifest = pd.DataFrame({"item_id": ids, "label": ["cat", "dog", "eel"] * 4, "split": ["train"] * 12})
    version = manifest_version(manifest)
    with sqlite_store.begin() as conn:  # a stored version, as dataset_splits writes it
        conn.execute(dataset_versions_table.insert().values(
            dataset_version=version, created_at=utcnow(), n_items=12,
            manifest=manifest_to_json(manifest, previous_version=None, extra={})))
    # A model trained on the version: a real MLflow run in a local store.
    monkeypatch.setenv("LABELING_ASSETS_HOME", str(data_dir))
    monkeypatch.setenv("LABEL_STORE_URL", sqlite_store.url)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    monkeypatch.chdir(tmp_path)
    mlflow = MLflowResource()
    with mlflow.start_run(run_name="train") as run:
        run_id = run.info.run_id
    history.record_model_training(sqlite_store, dataset_version=version, model_name="digits", model_version=1,
                                  mlflow_run_id=run_id, dagster_run_id=None)

    assert cli(["dataset", "tag", version[:8], "release-1"]) == 0
    assert mlflow.client().get_run(run_id).data.tags["dataset_tags"] == "release-1"
    with dg.DagsterInstance.get() as instance:
        records = instance.fetch_observations(dg.AssetKey("dataset_splits"), limit=1).records
        assert records[0].asset_observation.metadata["dataset_tags"].value == ["release-1"]
    history.tag_version(sqlite_store, history.resolve_version(sqlite_store, "release-1"), "also")
    assert cli(["dataset", "tag", "nope", "x"]) == 2  # an unknown version: one line, exit 2
    assert cli(["dataset", "as-of", "yesterday"]) == 2  # not a time: says the form it wants
    assert cli(["item", "ffffffff"]) == 2  # no such item

    found = history.item_history(sqlite_store, ids[0][:10])
    assert [d["dataset_version"] for d in found["dataset_versions"]] == [version]
    assert found["dataset_versions"][0]["tags"] == ["also", "release-1"]
    assert [m["mlflow_run_id"] for m in found["models"]] == [run_id]
    assert len(found["votes"]) == 2 and len(found["consensus"]) == 1
    assert cli(["item", ids[0][:10]]) == 0
