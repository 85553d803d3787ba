"""The text_edits kind: answers read from any Label Studio shape, consensus (ours against ROVER with a lazy
labeler), unchanged answers counted apart, WER statistics and the gold gate, grouped splits, exports read back
with ``datasets`` and ``soundfile``, and the correction model learning a systematic machine error."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from labeling_assets.core.dataset.splits import SplitRatios
from labeling_assets.core.speech.crowd import TextLabeler, careful_text_labeler, machine_output
from labeling_assets.core.speech.synth import PHRASES
from labeling_assets.core.speech.text_metrics import wer
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.kind import ItemMedia

KIND = task_kind("text_edits")


def _doc(folder: Path, name: str, machine: str, *, source: str | None = None, audio: Path | None = None) -> str:
    """An item's stored document, as ingest writes it."""
    path = folder / f"{name}.edit.json"
    path.write_text(json.dumps({"id": name, "machine": machine, "source": source, "audio_item_id": None,
                                "audio_uri": str(audio) if audio else None}), encoding="utf-8")  # fmt: skip
    return str(path)


def test_a_text_is_drawn_as_the_result_it_reads_back_from_and_no_shape_raises() -> None:
    for text in ("xin chào the meeting", "", "two\nlines"):
        result = KIND.answer_result(text, ItemMedia())
        assert result is not None and result[0]["type"] == "textarea" and result[0]["from_name"] == "edit"
        assert KIND.read_answer(result).label == text
    one_string = [{"from_name": "edit", "to_name": "machine", "type": "textarea", "value": {"text": "plain"}}]
    assert KIND.read_answer(one_string).label == "plain"
    rating = {"from_name": "quality", "to_name": "machine", "type": "rating", "value": {"rating": 4}}
    assert KIND.read_answer([rating, *one_string]).label == "plain"  # an extra field's region is not the answer
    for bad, reason in ((None, "result_null"), ({"x": 1}, "result_not_a_list"), ([], "result_empty"),
                        (["text"], "region_not_an_object"), ([rating], "result_empty"),
                        ([{"from_name": "edit", "type": "choices", "value": {}}], "unknown_result_type"),
                        ([{"from_name": "edit", "value": {"text": [1, 2]}}], "value_not_an_object")):  # fmt: skip
        answer = KIND.read_answer(bad)
        assert answer.label is None and answer.problem == reason and answer.detail
    assert KIND.answer_result(["not", "text"], ItemMedia()) is None
    assert KIND.owns_config(KIND.label_config([])) and not KIND.owns_config("<View><TextArea name='x'/></View>")


def _crowd(folder: Path, seed: int, n_items: int = 40) -> tuple[pd.DataFrame, dict[str, str], dict[str, str]]:
    """Three labelers per item: two careful correctors and one who submits the machine output unchanged."""
    rng = np.random.default_rng(seed)
    phrases = [p for lang in PHRASES.values() for p, _ in lang]
    labelers = [careful_text_labeler("ann", rng), careful_text_labeler("bob", rng), TextLabeler("lazy", lazy=True)]
    rows, truth, uris = [], {}, {}
    for n in range(n_items):
        said = " ".join(str(p) for p in rng.choice(phrases, size=3)).split()
        heard = machine_output(said, rng)
        item = f"e{n:03d}"
        truth[item], uris[item] = " ".join(said), _doc(folder, item, " ".join(heard))
        for labeler in labelers:
            rows.append({"item_id": item, "labeler_id": labeler.name, "uri": uris[item],
                         "label": " ".join(labeler.correct(said, heard, rng)),
                         "created_at": pd.Timestamp("2026-12-01", tz="UTC") + pd.Timedelta(minutes=n)})  # fmt: skip
    return pd.DataFrame(rows), truth, uris


def _wer(labels: pd.DataFrame, truth: dict[str, str]) -> float:
    return wer([truth[i].split() for i in labels["item_id"]], [str(t).split() for t in labels["label"]])


def test_ours_beats_rover_with_a_lazy_labeler_and_counts_the_unchanged_answers(tmp_path: Path) -> None:
    votes, truth, _ = _crowd(tmp_path, seed=3)
    no_gold = pd.Series(dtype=object)
    ours = KIND.consensus(votes, "auto", [], no_gold).result
    baseline = KIND.consensus(votes, "rover", [], no_gold).result
    assert ours.method == "labeler_aware_rover" and baseline.method == "rover"
    assert _wer(ours.labels, truth) < _wer(baseline.labels, truth)
    assert ours.labels["confidence"].between(0, 1).all() and ours.labels["agreement"].between(0, 1).all()
    assert ours.unchanged["lazy"] == (40, 40) and baseline.unchanged["lazy"] == (40, 40)
    assert ours.unchanged["ann"][0] < 20  # the careful ones edit
    report = KIND.consensus_report(ours, votes, [], {"ann": "Ann", "bob": "Bob", "lazy": "Lazy"})
    assert report["unchanged_answers"]["Lazy"] == "40/40" and "Lazy" in report["labeler_wer_vs_consensus"]
    gold = pd.Series({"e000": truth["e000"]})
    decided = KIND.consensus(votes, "rover", [], gold)
    assert decided.n_gold == 1 and decided.result.labels.set_index("item_id").loc["e000", "confidence"] == 1.0


def test_labeler_statistics_show_wer_with_intervals_and_a_labeler_who_never_edits(tmp_path: Path) -> None:
    votes, truth, _ = _crowd(tmp_path, seed=4)
    consensus_labels = KIND.consensus(votes, "auto", [], pd.Series(dtype=object)).result.labels
    consensus = pd.Series(dict(zip(consensus_labels["item_id"], consensus_labels["label"], strict=True)))
    gold = pd.Series({k: truth[k] for k in list(truth)[:30]})
    stats = {name: KIND.labeler_stats(votes[votes["labeler_id"] == name], labeler_id=name, classes=[], gold=gold,
                                      consensus=consensus, population_shares={})
             for name in ("ann", "lazy")}  # fmt: skip
    lazy, careful = stats["lazy"].vs_consensus, stats["ann"].vs_consensus
    assert lazy["unchanged_rate"] == 1.0 and careful["unchanged_rate"] < 0.5
    assert stats["lazy"].class_distribution["unchanged"] == 40
    assert [u.label for u in stats["lazy"].usage_flags()] == ["unchanged machine output"] and not stats["ann"].usage_flags()
    assert lazy["gold_wer"] > 0.1 > careful["gold_wer"]
    low, high = lazy["gold_wer_ci"]
    assert low <= lazy["gold_wer"] <= high and low > careful["gold_wer_ci"][1]
    assert stats["lazy"].gold_accuracy == pytest.approx(1 - lazy["gold_wer"], abs=0.05)
    gate = KIND.gold_gate
    assert gate(votes[votes["labeler_id"] == "lazy"], gold, [], KIND.gold_gate_threshold)[0].verdict == "fail"
    assert gate(votes[votes["labeler_id"] == "ann"], gold, [], KIND.gold_gate_threshold)[0].verdict == "pass"


def test_splits_keep_a_recording_whole() -> None:
    rows = pd.DataFrame({"item_id": [f"i{n:02d}" for n in range(40)], "label": [f"text {n}" for n in range(40)],
                         "group_key": [f"rec{n // 4}" for n in range(40)]})  # fmt: skip
    frame = KIND.assign_splits(rows, [], existing=pd.Series(dtype=object), ratios=SplitRatios(), seed=0).frame
    group = dict(zip(rows["item_id"], rows["group_key"], strict=True))
    splits_of = frame.groupby(frame["item_id"].map(group))["split"].nunique()
    assert splits_of.max() == 1 and set(frame["split"]) == {"train", "val", "test"}
    assert dict(zip(frame["item_id"], frame["label"], strict=True))["i07"] == "text 7"


def test_exports_are_read_back_with_datasets_and_soundfile(tmp_path: Path) -> None:
    from datasets import Audio, load_from_disk

    wav = tmp_path / "rec.wav"
    sf.write(wav, (0.1 * np.sin(np.arange(1600) / 5)).astype(np.float32), 16000)
    rows = pd.DataFrame([
        {"item_id": "a", "image_path": _doc(tmp_path, "a", "helo world", audio=wav), "label": "hello world", "split": "train"},
        {"item_id": "b", "image_path": _doc(tmp_path, "b", "i no", source="tôi không biết"), "label": "i do not know",
         "split": "val"},
        {"item_id": "c", "image_path": _doc(tmp_path, "c", "see you", audio=wav), "label": "see you", "split": "test"},
    ])  # fmt: skip
    report = KIND.export(rows, tmp_path / "out", ["jsonl", "hf_datasets"], [])
    lines = [json.loads(x) for x in report.paths["jsonl"].read_text(encoding="utf-8").splitlines()]
    by_id = {x["item_id"]: x for x in lines}
    assert by_id["a"]["wer_before"] == 0.5 and by_id["a"]["audio"] == str(wav) and by_id["b"]["audio"] is None
    assert by_id["b"]["source"] == "tôi không biết" and by_id["b"]["split"] == "val" and by_id["c"]["wer_before"] == 0
    loaded = load_from_disk(str(report.paths["hf_datasets"]))
    assert sorted(loaded) == ["test", "train", "validation"]
    row = loaded["train"][0]
    decoded = row["audio"].get_all_samples()  # datasets decodes through torchcodec and FFmpeg
    assert row["text"] == "hello world" and decoded.sample_rate == 16000 and decoded.data.shape == (1, 1600)
    raw = loaded["train"].cast_column("audio", Audio(decode=False))[0]["audio"]["bytes"]
    assert sf.read(io.BytesIO(raw))[0] == pytest.approx(decoded.data.numpy()[0], abs=1e-4)
    assert loaded["validation"][0]["audio"] is None and loaded["validation"][0]["source"] == "tôi không biết"
    small = KIND.export(rows[rows["split"] != "val"], tmp_path / "small", ["hf_datasets"], [])  # no val item
    assert sorted(load_from_disk(str(small.paths["hf_datasets"]))) == ["test", "train"]


def _rows(folder: Path, rng: np.random.Generator, n: int, start: int) -> pd.DataFrame:
    """Transcripts whose machine output always hears "the" as "da" and drops nothing else systematically."""
    phrases = [p for p, _ in PHRASES["en"]]
    rows = []
    for k in range(start, start + n):
        truth = " ".join(str(p) for p in rng.choice(phrases, size=2))
        heard = " ".join("da" if w == "the" else w for w in truth.split())
        rows.append({"item_id": f"t{k}", "uri": _doc(folder, f"t{k}", heard), "label": truth, "confidence": 1.0})
    return pd.DataFrame(rows)


def test_the_model_learns_a_systematic_machine_error(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train, val, test = (_rows(tmp_path, rng, n, s) for n, s in ((40, 0), (10, 40), (20, 50)))
    trainer = KIND.trainer
    assert trainer is not None
    fitted = trainer.fit(train, val, [], {})
    assert fitted.model.rules["da"][0] == "the" and fitted.metrics["best_val_wer_after"] < fitted.metrics["best_val_wer_before"]
    trainer.save(fitted, tmp_path / "m.pt")
    assert isinstance(torch.load(tmp_path / "m.pt", weights_only=True)["rules"], dict)
    outputs, failed = trainer.predict(trainer.load(tmp_path / "m.pt"), test["uri"].tolist())
    assert not failed and [o["text"] for o in outputs] == test["label"].tolist()
    answers = KIND.encode(test["label"].tolist(), [])
    found = np.empty(len(outputs), dtype=object)
    found[:] = outputs
    report = KIND.test_report(answers, found, [], [], None, model="m/1", ece_bins=10)
    assert report.metrics["test_word_accuracy"] == 1.0 and report.metrics["test_wer_before"] > 0.05
    assert report.metrics["test_word_accuracy"] >= KIND.test_metric.floor
    prelabel = KIND.prediction(outputs[0], "m/1")
    assert KIND.read_answer(prelabel["result"]).label == test["label"].iloc[0]
    unsure = {"text": "x", "words": [{"word": "x", "from": "x", "confidence": 0.3}]}
    assert KIND.informativeness(outputs[0], "uncertainty") < KIND.informativeness(unsure, "uncertainty")


def test_label_issues_flag_an_item_far_from_a_mostly_right_machine() -> None:
    machine = {f"i{n}": "the meeting starts at nine" for n in range(10)}
    labels: list[Any] = ["the meeting starts at nine"] * 9 + ["please send me the report"]
    issues, stands = KIND.find_label_issues(list(machine), labels, machine, [], 5)
    assert stands == pytest.approx(0.9) and issues.issues["item_id"].tolist() == ["i9"]
