"""What is particular to the text class kinds (the shared contract runs in test_task_kinds.py): a text is shown
with the choices, the TF-IDF model learns and calibrates, the exports are read back by their own libraries."""

import json
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest

from labeling_assets.core.labelstudio.config import choices_label_config
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.registry import kind_of_config
from labeling_assets.core.tasks.text_classes.kind import as_matrix

CLASSES = ["sports", "weather", "politics"]
WORDS = {
    "sports": ["match", "goal", "team", "coach", "league", "striker", "season"],
    "weather": ["rain", "storm", "sunny", "forecast", "wind", "cloud", "snow"],
    "politics": ["vote", "senate", "minister", "law", "election", "party", "debate"],
}


def _texts(folder: Path, n: int, seed: int) -> pd.DataFrame:
    """Texts of three words of their class among two common ones, stored as ingest stores them."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        name = CLASSES[i % 3]
        words = [*rng.choice(WORDS[name], 3), "today", "news"]
        rng.shuffle(words)
        path = folder / f"s{seed}-{i}.txt"
        path.write_text(" ".join(words) + ".", encoding="utf-8")
        rows.append({"item_id": f"s{seed}-{i}", "uri": str(path), "label": name, "confidence": 1.0})
    return pd.DataFrame(rows)


def test_a_labeler_sees_the_text_with_the_choices_and_only_the_text_kind_owns_that_config() -> None:
    config = task_kind("text_classes").label_config(CLASSES)
    assert '<Text name="text" value="$text"/>' in config and 'toName="text"' in config and "<Image" not in config
    assert kind_of_config(config) is task_kind("text_classes")
    assert kind_of_config(task_kind("text_class_sets").label_config(CLASSES)) is task_kind("text_class_sets")
    assert kind_of_config(choices_label_config(CLASSES)) is task_kind("single_label")
    prediction = task_kind("text_classes").prediction({"sports": 0.7, "weather": 0.2, "politics": 0.1}, "m1")
    assert prediction["result"][0]["to_name"] == "text" and prediction["result"][0]["value"] == {"choices": ["sports"]}


def test_the_tfidf_model_learns_the_classes_and_its_probabilities_are_calibrated_on_val(tmp_path: Path) -> None:
    kind = task_kind("text_classes")
    train, val, test = _texts(tmp_path, 60, 1), _texts(tmp_path, 30, 2), _texts(tmp_path, 30, 3)
    fitted = kind.trainer.fit(train, val, CLASSES, {})  # type: ignore[union-attr]
    assert fitted.metrics["best_val_accuracy"] == 1.0 and fitted.metrics["temperature"] != 1.0
    outputs, failed = kind.trainer.predict(fitted, test["uri"].tolist())  # type: ignore[union-attr]
    assert failed == []
    probs = as_matrix(np.array(outputs, dtype=object))
    assert (probs.argmax(axis=1) == kind.encode(test["label"].tolist(), CLASSES)).all()
    # Calibrated: a text without any class word is unsure, a text full of one class's words is sure.
    (tmp_path / "vague.txt").write_text("today news.", encoding="utf-8")
    (tmp_path / "sure.txt").write_text("rain storm snow forecast wind.", encoding="utf-8")
    [vague, sure], _ = kind.trainer.predict(fitted, [str(tmp_path / "vague.txt"), str(tmp_path / "sure.txt")])  # type: ignore[union-attr]
    assert max(vague.values()) < 0.6 and sure["weather"] > 0.9
    assert kind.informativeness(vague, "uncertainty") > kind.informativeness(sure, "uncertainty")


def test_a_set_model_predicts_each_class_of_a_set(tmp_path: Path) -> None:
    kind = task_kind("text_class_sets")
    rows = _texts(tmp_path, 60, 4)
    rows["label"] = rows["label"].map(lambda name: [name])
    mixed = _texts(tmp_path, 30, 8).iloc[::3]  # sports texts, given weather words too: both classes
    for path in mixed["uri"]:
        Path(path).write_text(Path(path).read_text(encoding="utf-8") + " rain storm snow.", encoding="utf-8")
    mixed = mixed.assign(label=[["sports", "weather"]] * len(mixed))
    fitted = kind.trainer.fit(pd.concat([rows, mixed]), rows.iloc[:0], CLASSES, {})  # type: ignore[union-attr]
    (tmp_path / "both.txt").write_text("goal striker coach rain storm wind.", encoding="utf-8")
    (tmp_path / "one.txt").write_text("vote senate election.", encoding="utf-8")
    [both, one], _ = kind.trainer.predict(fitted, [str(tmp_path / "both.txt"), str(tmp_path / "one.txt")])  # type: ignore[union-attr]
    assert both["sports"] > 0.5 and both["weather"] > 0.5 and both["politics"] < 0.5
    assert [c for c in CLASSES if one[c] > 0.5] == ["politics"]


def test_exports_are_read_back_by_pandas_and_datasets_with_the_same_items_texts_and_labels(tmp_path: Path) -> None:
    stored = _texts(tmp_path, 6, 5)
    (tmp_path / "s5-0.txt").write_text("Ünïcode, a tab\tand a line\nbreak.", encoding="utf-8")
    rows = pd.DataFrame({"image_path": stored["uri"], "label": stored["label"], "item_id": stored["item_id"],
                         "split": ["train", "train", "train", "val", "test", "test"]})  # fmt: skip
    out = tmp_path / "export"
    task_kind("text_classes").export(rows, out, ["jsonl", "csv", "parquet", "hf_datasets"], CLASSES)
    texts = {r["item_id"]: Path(r["image_path"]).read_text(encoding="utf-8") for _, r in rows.iterrows()}
    expected = {(r["item_id"], texts[r["item_id"]], r["label"], r["split"]) for _, r in rows.iterrows()}
    lines = [json.loads(line) for line in (out / "dataset.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {(r["item_id"], r["text"], r["label"], r["split"]) for r in lines} == expected
    for table in (pd.read_csv(out / "dataset.csv", keep_default_na=False), pd.read_parquet(out / "dataset.parquet")):
        assert set(table[["item_id", "text", "label", "split"]].itertuples(index=False, name=None)) == expected
    loaded = datasets.load_from_disk(str(out / "hf_dataset"))
    assert sorted(loaded) == ["test", "train", "val"]
    names = loaded["train"].features["label"].names
    assert names == CLASSES
    found = {(r["id"], r["text"], names[r["label"]], split) for split in loaded for r in loaded[split]}
    assert found == expected


def test_a_set_export_keeps_lists_in_jsonl_and_a_sequence_of_class_labels(tmp_path: Path) -> None:
    stored = _texts(tmp_path, 3, 6)
    rows = pd.DataFrame({"image_path": stored["uri"], "label": [["sports", "weather"], [], ["politics"]],
                         "item_id": stored["item_id"], "split": "train"})  # fmt: skip
    out = tmp_path / "export"
    task_kind("text_class_sets").export(rows, out, ["jsonl", "csv", "hf_datasets"], CLASSES)
    lines = [json.loads(line) for line in (out / "dataset.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["label"] for r in lines] == [["sports", "weather"], [], ["politics"]]
    assert pd.read_csv(out / "dataset.csv")[["label_sports", "label_weather", "label_politics"]].to_numpy().tolist() == [
        [1, 1, 0], [0, 0, 0], [0, 0, 1]]  # fmt: skip
    train = datasets.load_from_disk(str(out / "hf_dataset"))["train"]
    assert [[CLASSES[k] for k in r["label"]] for r in train] == [["sports", "weather"], [], ["politics"]]


def test_the_spacy_docbin_holds_each_text_with_its_class_in_doc_cats(tmp_path: Path) -> None:
    import spacy
    from spacy.tokens import DocBin

    stored = _texts(tmp_path, 6, 7)
    (tmp_path / "s7-0.txt").write_text("Ünïcode 🎉, a tab\tand a line\nbreak.", encoding="utf-8")
    rows = pd.DataFrame({"image_path": stored["uri"], "label": stored["label"], "item_id": stored["item_id"],
                         "split": ["train", "train", "train", "val", "test", "test"]})  # fmt: skip
    out = tmp_path / "export"
    report = task_kind("text_classes").export(rows, out, ["spacy"], CLASSES)
    assert sorted(report.paths) == ["test_spacy", "train_spacy", "val_spacy"]
    vocab = spacy.blank("en").vocab
    found = {}
    for split in ("train", "val", "test"):
        for doc in DocBin().from_disk(out / f"{split}.spacy").get_docs(vocab):
            assert set(doc.cats) == set(CLASSES) and sum(doc.cats.values()) == 1.0
            found[doc.user_data["item_id"]] = (doc.text, max(doc.cats, key=doc.cats.__getitem__), split)
    texts = {i: Path(u).read_text(encoding="utf-8") for i, u in zip(stored["item_id"], stored["uri"], strict=True)}
    assert found == {r.item_id: (texts[r.item_id], r.label, r.split) for r in rows.itertuples()}


def test_a_set_docbin_marks_every_class_of_the_set_and_none_for_an_empty_set(tmp_path: Path) -> None:
    import spacy
    from spacy.tokens import DocBin

    stored = _texts(tmp_path, 3, 8)
    rows = pd.DataFrame({"image_path": stored["uri"], "label": [["sports", "weather"], [], ["politics"]],
                         "item_id": stored["item_id"], "split": "train"})  # fmt: skip
    task_kind("text_class_sets").export(rows, tmp_path / "export", ["spacy"], CLASSES)
    docs = DocBin().from_disk(tmp_path / "export" / "train.spacy").get_docs(spacy.blank("en").vocab)
    assert [sorted(c for c, v in d.cats.items() if v == 1.0) for d in docs] == [["sports", "weather"], [], ["politics"]]


def test_an_export_refuses_an_item_whose_stored_text_is_gone(tmp_path: Path) -> None:
    rows = pd.DataFrame({"image_path": [str(tmp_path / "gone.txt")], "label": ["sports"], "item_id": ["x"],
                         "split": ["train"]})  # fmt: skip
    with pytest.raises(ValueError, match="item x: its stored text"):
        task_kind("text_classes").export(rows, tmp_path / "out", ["jsonl"], CLASSES)


def test_label_issues_score_consensus_with_tfidf_features_and_find_a_wrong_label(tmp_path: Path) -> None:
    kind = task_kind("text_classes")
    rows = _texts(tmp_path, 45, 7)
    labels = rows["label"].tolist()
    labels[0] = "politics"  # a sports text labelled politics
    features, source = kind.label_issue_inputs(None, rows["item_id"].tolist(), rows["uri"].tolist(), feature_size=16,
                                               n_folds=5)  # fmt: skip
    assert "TF-IDF" in source and features.shape[0] == 45
    issues, agreement = kind.find_label_issues(rows["item_id"].tolist(), labels, features, CLASSES, 5)
    assert issues.issues["item_id"].iloc[0] == "s7-0" and issues.issues["suggested_label"].iloc[0] == "sports"
    assert agreement > 0.9
