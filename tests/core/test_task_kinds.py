"""The contract every kind of labeling task keeps: the same checks run over every registered kind
(core/tasks/registry.py), so a new kind that forgets a part, or gets one wrong, fails here.

A kind's answers are made the way a labeler makes them: its pre-label (``prediction``) is what Label Studio shows,
the result picked from it becomes the stored answer (``answer_from_result``). The checks do not know which kind
they check; what a model of a kind says (class probabilities, a detector's boxes), how its gold file writes an
answer and what its trainer trains on are the only per-kind data, in ``OUTPUTS``, ``GOLD_TEXTS`` and ``TRAINING``
below. A kind trains either the image classifier through a training head or its own model through a trainer
(``KindTrainer``): each gets its own checks.
"""

from __future__ import annotations

import json
import sys
import tempfile
import types
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
import torch

from labeling_assets.core.dataset.export import FORMATS
from labeling_assets.core.dataset.splits import SPLITS, SplitRatios
from labeling_assets.core.label_sets import NONE_OF_THESE, TASK_TYPES
from labeling_assets.core.labelstudio.config import config_layout
from labeling_assets.core.labelstudio.tasks import STRATEGIES
from labeling_assets.core.reporting.answer_views import AnswerView
from labeling_assets.core.reporting.qa_report import class_share_per_period
from labeling_assets.core.speech.synth import write_wav
from labeling_assets.core.store.schema import LabelStore, items_table, utcnow
from labeling_assets.core.tasks import KINDS, task_kind, training_head
from labeling_assets.core.tasks.boxes.demo_scenes import SCENE_CLASSES, load_scene_truth, render_digit_scenes
from labeling_assets.core.tasks.boxes.gold import gold_answer
from labeling_assets.core.tasks.boxes.votes import answer_boxes
from labeling_assets.core.tasks.kind import (
    EpochReport,
    ItemMedia,
    KindTrainer,
    TaskKind,
    TrainerSettingsError,
    TrainingHead,
    model_outputs,
)
from labeling_assets.core.tasks.registry import (
    KIND_ATTRIBUTES,
    KIND_METHODS,
    OPTIONAL_ATTRIBUTES,
    has_training_head,
    kind_of_config,
    missing_parts,
    tracked_params,
)
from labeling_assets.core.tasks.single_label import training as single_label_training
from labeling_assets.core.tasks.single_label.kind import SingleLabel
from labeling_assets.core.training.config import TrainConfig
from labeling_assets.core.training.distributed import Distributed

CLASSES = ["cat", "dog", "fox"]
N_ITEMS = 30


def _class_probs(k: int, sure: bool = True) -> dict[str, float]:
    """Probabilities that point at class ``k`` (surely), or a coin flip over every class."""
    if not sure:
        return {c: 1 / 3 for c in CLASSES}
    return {c: (0.98 if n == k else 0.01) for n, c in enumerate(CLASSES)}


def _detected_box(k: int, sure: bool = True) -> dict[str, Any]:
    """A detector's output of one object of class ``k`` (a place per class: a wrong class is a wrong box too)."""
    x0 = 10.0 + 25 * k
    box = {"label": CLASSES[k], "x0": x0, "y0": 20.0, "x1": x0 + 20.0, "y1": 50.0, "score": 0.98 if sure else 0.5}
    return {"boxes": [box], "image_width": 100.0, "image_height": 80.0}


def _entity(k: int, sure: bool = True) -> dict[str, Any]:
    """A span model's output for a text with one entity of type ``k`` (a word per type: a wrong type is a wrong
    span too)."""
    text = "alpha beta gamma"
    start = [0, 6, 11][k]
    span = {"start": start, "end": start + len(text.split()[k]), "label": CLASSES[k], "score": 0.98 if sure else 0.5}
    return {"text": text, "spans": [span]}


def _audio_regions(k: int, sure: bool = True) -> dict[str, Any]:
    """A frame model's output for a clip with one region of class ``k`` (a place per class: a wrong class is a
    wrong region too), sure of every frame or not."""
    start = 0.5 + 1.5 * k
    region = {"start": start, "end": start + 1.0, "label": CLASSES[k], "score": 0.98 if sure else 0.5}
    return {"duration": 5.0, "regions": [region], "mean_entropy": 0.05 if sure else 0.9}


def _gold_boxes(answer: Any) -> str:
    """A box answer as a gold file writes it: ``{width, height, boxes: [{label, x0, y0, x1, y1}]}``."""
    boxes, _ = answer_boxes(answer, CLASSES)
    size = answer["boxes"][0] if answer["boxes"] else {}
    return json.dumps({"width": size.get("image_width"), "height": size.get("image_height"), "boxes": [
        {"label": label, "x0": x0, "y0": y0, "x1": x1, "y1": y1} for label, x0, y0, x1, y1 in boxes]})


def _same(a: Any, b: Any) -> bool:
    """Equal answers, numbers within float rounding (a box read back from Label Studio's percent)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return bool(a == pytest.approx(b, rel=1e-6, abs=1e-6))  # wbf fuses in float32
    return bool(a == b)


def _drawn(answer: Any) -> Any:
    """An answer without what consensus adds to a box's drawing (a box consensus answer keeps each box's posterior)."""
    if isinstance(answer, dict) and isinstance(answer.get("boxes"), list):
        return {**answer, "boxes": [{k: v for k, v in b.items() if k != "confidence"} for b in answer["boxes"]]}
    return answer


def _scene_rows(folder: Path) -> TrainingData:
    """Six rendered digit scenes (``boxes.demo_scenes``) as a dataset version's rows, their truth the answers."""
    scenes = render_digit_scenes(folder, n_images=6, canvas=96, max_digits=2, empty_share=0.0, sizes=(28, 40))
    rows = [{"item_id": name, "uri": str(folder / name), "label": gold_answer(boxes, 96.0, 96.0), "confidence": 0.9}
            for name, boxes in sorted(load_scene_truth(scenes.folder).items())]  # fmt: skip
    frame = pd.DataFrame(rows)
    settings = {"epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "device": "cpu", "image_size": 96}
    return TrainingData(frame.iloc[:4], frame.iloc[4:], SCENE_CLASSES, settings)


def _text_rows(folder: Path, multiple: bool) -> TrainingData:
    """Short texts whose words give their class away, stored as ingest stores them (UTF-8 ``.txt``), as a version's
    rows: a class name each, or a set of one."""
    words = {"cat": "purrs meows whiskers", "dog": "barks fetches leash", "fox": "den sly burrow"}
    rows = []
    for n in range(18):
        name = CLASSES[n % 3]
        path = folder / f"t{n:02d}.txt"
        path.write_text(f"It {words[name]} number {n}.", encoding="utf-8")
        rows.append({"item_id": f"t{n:02d}", "uri": str(path), "label": [name] if multiple else name, "confidence": 0.9})
    frame = pd.DataFrame(rows)
    return TrainingData(frame.iloc[:12], frame.iloc[12:], CLASSES, {"c": 10.0})


def _sentences(folder: Path) -> TrainingData:
    """Sentences naming one entity each (a name per type), stored as ingest stores texts, as a version's rows."""
    names = {"cat": "Felix", "dog": "Rex", "fox": "Todd"}
    rows = []
    for n in range(12):
        kind = CLASSES[n % 3]
        text = f"Yesterday {names[kind]} came home, said witness {n}."
        path = folder / f"e{n:02d}.txt"
        path.write_text(text, encoding="utf-8")
        rows.append({"item_id": f"e{n:02d}", "uri": str(path), "label": [[10, 10 + len(names[kind]), kind]],
                     "confidence": 0.9})  # fmt: skip
    frame = pd.DataFrame(rows)
    return TrainingData(frame.iloc[:9], frame.iloc[9:], CLASSES, {"epochs": 1})


def _clips(folder: Path) -> TrainingData:
    """Two-second clips, each with one region of its class (a tone of its own pitch), as ingest stores audio (WAV),
    as a version's rows."""
    rate = 16_000
    rows = []
    for n in range(9):
        k = n % 3
        audio = np.zeros(2 * rate, dtype=np.float32)
        t = np.arange(rate) / rate
        audio[rate // 2 : rate // 2 + rate] = 0.3 * np.sin(2 * np.pi * (250 + 500 * k) * t)
        path = folder / f"a{n:02d}.wav"
        write_wav(path, audio, rate)
        rows.append({"item_id": f"a{n:02d}", "uri": str(path), "label": [{"start": 0.5, "end": 1.5, "label": CLASSES[k]}],
                     "confidence": 0.9})  # fmt: skip
    frame = pd.DataFrame(rows)
    return TrainingData(frame.iloc[:6], frame.iloc[6:], CLASSES, {"epochs": 1, "device": "cpu", "hidden": 8, "crop_s": 1.0})


def _edited(k: int, sure: bool = True) -> dict[str, Any]:
    """A correction model's output for a two-word transcript about class ``k`` (a text per class: a wrong class is
    a wholly wrong text), each word given with its confidence."""
    text = {"cat": "cat purrs", "dog": "dog barks", "fox": "fox hides"}[CLASSES[k]]
    return {"text": text, "machine": text, "words": [{"word": w, "from": w, "confidence": 0.98 if sure else 0.5}
                                                     for w in text.split()]}  # fmt: skip


def _edit_rows(folder: Path) -> TrainingData:
    """Machine transcripts stored as ingest stores a sidecar row (``<hash>.edit.json``) that always write "teh" for
    "the", their corrected texts the answers."""
    rows = []
    for n in range(12):
        truth = f"the report number {n} is the one"
        path = folder / f"r{n:02d}.edit.json"
        path.write_text(json.dumps({"id": f"r{n}", "machine": truth.replace("the", "teh"), "source": None,
                                    "audio_item_id": None, "audio_uri": None}), encoding="utf-8")  # fmt: skip
        rows.append({"item_id": f"r{n:02d}", "uri": str(path), "label": truth, "confidence": 0.9})
    frame = pd.DataFrame(rows)
    return TrainingData(frame.iloc[:9], frame.iloc[9:], CLASSES, {})


@dataclass(frozen=True)
class TrainingData:
    """What a trainer kind's trainer is checked on: a version's train and val rows, its classes, small settings."""

    train: pd.DataFrame
    val: pd.DataFrame
    classes: list[str]
    settings: dict[str, Any]


# What a model of the kind says about an item of class ``k`` (default: class probabilities).
OUTPUTS: dict[str, Callable[[int, bool], Any]] = {"boxes": _detected_box, "text_spans": _entity,
                                                   "audio_segments": _audio_regions, "text_edits": _edited}
# How a gold file writes an answer (default: a class name as itself, any other answer as JSON).
GOLD_TEXTS: dict[str, Callable[[Any], str]] = {"boxes": _gold_boxes}
# What a trainer kind trains on, made in a folder.
TRAINING: dict[str, Callable[[Path], TrainingData]] = {
    "boxes": _scene_rows,
    "text_classes": lambda folder: _text_rows(folder, False),
    "text_class_sets": lambda folder: _text_rows(folder, True),
    "text_spans": _sentences,
    "audio_segments": _clips,
    "text_edits": _edit_rows,
}
# A file the kind's model cannot read (default: bytes that are no image), as (name, bytes).
UNREADABLE: dict[str, tuple[str, bytes]] = {
    "text_classes": ("broken.txt", b"\xff\xfe not UTF-8"),
    "text_class_sets": ("broken.txt", b"\xff\xfe not UTF-8"),
    "text_spans": ("broken.txt", b"\xff\xfe not UTF-8"),
    "audio_segments": ("broken.wav", b"RIFF not audio"),
    "text_edits": ("broken.edit.json", b"\xff\xfe not JSON"),
}
# Kinds whose answers name no class (a corrected text): their config offers none, a gold text may hold any word,
# and the QA report groups their answers by something else than the classes.
CLASSLESS = {"text_edits"}
# Stored values that are no answer of the kind (default: a class outside the project, an object).
BAD_ANSWERS: dict[str, list[Any]] = {"text_edits": [["a", "list"], {"not": "an answer"}]}


def _probs(kind: TaskKind, k: int, sure: bool = True) -> Any:
    """The kind's model output for an item of class ``k``: sure of it, or unsure."""
    return OUTPUTS.get(kind.name, _class_probs)(k, sure)


def _answer(kind: TaskKind, k: int) -> Any:
    """What a labeler stores after accepting the kind's confident pre-label for class ``k``."""
    return kind.answer_from_result(kind.prediction(_probs(kind, k), "m1")["result"])


def _annotations(kind: TaskKind, n_labelers: int = 3) -> pd.DataFrame:
    """Every labeler gives every item the answer of its class (item i is class i mod 3)."""
    rows = [
        {"item_id": f"i{i:02d}", "labeler_id": f"L{j}", "label": _answer(kind, i % 3),
         "created_at": pd.Timestamp("2026-01-05", tz="UTC") + pd.Timedelta(hours=i), "lead_time_s": 4.0}
        for i in range(N_ITEMS) for j in range(n_labelers)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def check_complete(kind: Any) -> None:
    assert isinstance(kind, TaskKind)
    assert missing_parts(kind, KIND_ATTRIBUTES + OPTIONAL_ATTRIBUTES + KIND_METHODS) == []


def check_label_config_offers_the_classes(kind: TaskKind) -> None:
    """The control named ``label`` offers the classes in order (choices of a class kind, labels of regions);
    a class kind's layout reads them (the queue compares a project's config by it)."""
    config = kind.label_config(CLASSES, allow_empty=True)
    if kind.name in CLASSLESS:
        tags = {e.tag for e in ElementTree.fromstring(config).iter()}
        assert not tags & {"Choice", "Label"} and config_layout(config) is None
        return
    control = next(e for e in ElementTree.fromstring(config).iter() if e.get("name") == "label")
    offered = [str(e.get("value")) for e in control if e.tag in ("Choice", "Label")]
    assert [c for c in offered if c != NONE_OF_THESE] == CLASSES
    layout = config_layout(config)
    assert layout is None if control.tag != "Choices" else layout is not None and layout.classes == CLASSES


def check_answers_in_its_config_are_read_by_it(kind: TaskKind) -> None:
    config = kind.label_config(CLASSES, allow_empty=True)
    assert kind.owns_config(config)
    result = kind.prediction(_probs(kind, 1), "m1")["result"]
    answer = kind.read_answer(result)
    assert answer.problem is None and answer.label == kind.answer_from_result(result) is not None
    unreadable = kind.read_answer([{"from_name": "label", "type": "choices", "value": "not a list"}])
    assert unreadable.label is None and unreadable.problem and unreadable.detail
    assert kind.read_answer(None).label is None and not kind.owns_config("not xml <")


def check_a_stored_answer_is_drawn_as_the_result_it_reads_from(kind: TaskKind) -> None:
    """A review task pre-draws the consensus with ``answer_result``: the result reads back as the same answer, on
    the item the model's output is about (a text kind's text, an image's size); what is no answer draws nothing."""
    for k in range(3):
        probs, answer = _probs(kind, k), _answer(kind, k)
        about = probs if isinstance(probs, Mapping) else {}  # class probabilities name neither
        media = ItemMedia(about.get("text"), about.get("image_width"), about.get("image_height"))
        result = kind.answer_result(answer, media)
        assert result is not None and _same(kind.answer_from_result(result), answer), (k, result)
    assert kind.answer_result({"not": "an answer"}, ItemMedia("a text", 10.0, 10.0)) is None


def check_an_accepted_prelabel_is_a_vote(kind: TaskKind) -> None:
    votes = kind.votes(_annotations(kind), CLASSES)
    assert votes.skipped == {} and len(votes.frame) == 3 * N_ITEMS
    stored = pd.Series({f"i{k}": _answer(kind, k) for k in range(3)})
    assert len(kind.valid_answers(stored, CLASSES)) == 3


def check_a_bad_answer_is_skipped_with_a_known_reason(kind: TaskKind) -> None:
    bad = BAD_ANSWERS.get(kind.name, ["no-such-class", {"not": "an answer"}])
    rows = _annotations(kind, 1).head(2).assign(label=pd.Series(bad, dtype=object))
    votes = kind.votes(rows, CLASSES)
    assert votes.frame.empty
    assert sum(votes.skipped.values()) == 2 and set(votes.skipped) <= set(kind.skip_reasons)
    assert kind.valid_answers(pd.Series({"a": {"not": "an answer"}}), CLASSES).empty


def check_unanimous_votes_are_the_consensus_of_every_method(kind: TaskKind) -> None:
    assert kind.consensus_methods[0] == "auto"
    eligible = kind.votes(_annotations(kind), CLASSES).frame
    truth = {f"i{i:02d}": _answer(kind, i % 3) for i in range(N_ITEMS)}
    for method in kind.consensus_methods:
        pred = None
        if method == "crowdlab":  # CROWDLAB needs out-of-sample model probabilities
            pred = pd.DataFrame([_class_probs(i % 3) for i in range(N_ITEMS)], index=list(truth), columns=CLASSES)
        outcome = kind.consensus(eligible, method, CLASSES, pd.Series({"i00": truth["i00"]}), pred_probs=pred)
        labels = outcome.result.labels.set_index("item_id")["label"]
        assert _same({i: _drawn(labels[i]) for i in truth}, truth), method
        assert outcome.n_gold == 1


def _gold_text(kind: TaskKind, answer: Any) -> str:
    """An answer as a gold file's ``label`` column writes it."""
    if kind.name in GOLD_TEXTS:
        return GOLD_TEXTS[kind.name](answer)
    return answer if isinstance(answer, str) else json.dumps(answer)


def check_a_gold_files_entry_reads_as_the_answer_it_writes(kind: TaskKind) -> None:
    """Ingest stores what ``parse_gold`` reads as gold; an entry naming a class outside the project, or no answer
    at all, is refused with why (None: the class list is not checked)."""
    for k in range(3):
        answer = _answer(kind, k)
        for classes in (CLASSES, None):
            read, why = kind.parse_gold(_gold_text(kind, answer), classes)
            assert why is None and _same(read, answer)
    alien = _gold_text(kind, _answer(kind, 1)).replace(CLASSES[1], "wolf")
    _, why = kind.parse_gold(alien, CLASSES)
    assert (why is None) if kind.name in CLASSLESS else (why and "wolf" in why)
    assert kind.parse_gold(alien, None)[1] is None
    _, why = kind.parse_gold('{"not": "an answer"}', CLASSES)
    assert why


def check_gold_scores_right_and_wrong_answers(kind: TaskKind) -> None:
    gold = pd.Series({f"i{k}": _answer(kind, k) for k in range(3)})
    right = pd.DataFrame({"item_id": list(gold.index), "labeler_id": "L0", "label": list(gold)})
    wrong = right.assign(label=[_answer(kind, (k + 1) % 3) for k in range(3)])
    correct, trials = kind.gold_score(right, gold, CLASSES)
    assert correct == trials > 0
    verdict, _ = kind.gold_gate(right, gold, CLASSES, 0.5)
    assert verdict.n > 0 and verdict.rate == 1.0
    assert kind.gold_score(wrong, gold, CLASSES)[0] < kind.gold_score(wrong, gold, CLASSES)[1]


def check_labeler_stats_count_each_labelers_votes(kind: TaskKind) -> None:
    votes = kind.votes(_annotations(kind), CLASSES).frame
    gold = pd.Series({"i00": _answer(kind, 0)})
    consensus = pd.Series({f"i{i:02d}": _answer(kind, i % 3) for i in range(N_ITEMS)})
    mine = votes[votes["labeler_id"] == "L0"]
    stats = kind.labeler_stats(mine, labeler_id="L0", classes=CLASSES, gold=gold, consensus=consensus,
                               population_shares={c: 1 / 3 for c in CLASSES})  # fmt: skip
    assert stats.n_labels == N_ITEMS
    trend = kind.weekly_trend(mine, labeler_id="L0", classes=CLASSES, gold=gold, consensus=consensus, last_weeks=4)
    assert sum(week.n_labels for week in trend) == N_ITEMS


def check_splits_give_every_item_one_split_and_a_manifest(kind: TaskKind) -> None:
    answers = [_answer(kind, i % 3) for i in range(N_ITEMS)]
    rows = pd.DataFrame({"item_id": [f"i{i:02d}" for i in range(N_ITEMS)], "label": answers,
                         "group_key": [f"g{i}" for i in range(N_ITEMS)]})  # fmt: skip
    assignment = kind.assign_splits(rows, CLASSES, existing=pd.Series(dtype=object), ratios=SplitRatios(), seed=0)
    manifest = assignment.frame
    assert sorted(manifest["item_id"]) == sorted(rows["item_id"]) and set(manifest["split"]) <= set(SPLITS)
    again = kind.assign_splits(rows, CLASSES, existing=pd.Series(dtype=object), ratios=SplitRatios(), seed=0).frame
    assert manifest.equals(again)
    version, weights, document = kind.manifest(manifest, CLASSES, previous_version=None, extra={})
    assert isinstance(version, str) and version and set(weights) <= set(CLASSES) and document
    deviations = kind.split_deviations(manifest, CLASSES, 0.5)
    assert len(deviations) and {"split", "deviation", "ok"} <= set(deviations.columns) and deviations["ok"].all()
    assert kind.missing_from_splits(manifest, CLASSES).empty and kind.missing_for_thresholds(manifest, CLASSES).empty
    only_train = manifest.assign(split="train")  # every class misses val and test
    assert set(kind.missing_from_splits(only_train, CLASSES)["split"]) == {"val", "test"}
    assert list(kind.missing_for_thresholds(only_train, CLASSES).columns) == ["label", "split", "positives"]


def check_export_formats_are_known(kind: TaskKind) -> None:
    assert kind.export_formats and set(kind.export_formats) <= set(FORMATS)


def check_prediction_and_informativeness(kind: TaskKind) -> None:
    prediction = kind.prediction(_probs(kind, 1), None)
    assert prediction["model_version"] == "unknown" and 0.0 <= prediction["score"] <= 1.0
    for strategy in STRATEGIES:
        sure = kind.informativeness(_probs(kind, 1), strategy)
        unsure = kind.informativeness(_probs(kind, 1, False), strategy)
        assert 0.0 <= sure <= 1.0 and 0.0 <= unsure <= 1.0
        assert sure < unsure or strategy == "random"
    assert kind.informativeness(None, "uncertainty") == 1.0
    line = kind.review_model_line(_probs(kind, 1), "m1")  # the expert's view of the model (None: its top class)
    assert line is None or ("m1" in line and CLASSES[1] in line)
    assert kind.review_model_line(None, None) in (None, "model: no prediction") and kind.gold_accuracy_name


def check_its_model_learns_from_the_answers(kind: TaskKind) -> None:
    """A kind has exactly one of a training head and a trainer; whichever it has learns."""
    assert (kind.trainer is None) == has_training_head(kind.name)
    if kind.trainer is None:
        _check_training_head(kind)
    else:
        assert isinstance(kind.trainer, KindTrainer)
        with pytest.raises(TypeError, match="no training head"):
            training_head(kind.name)
        _check_trainer(kind, kind.trainer)


def _check_trainer(kind: TaskKind, trainer: KindTrainer) -> None:
    """Fit on a version's rows (one epoch, reported), a torch-only checkpoint that loads back to the same
    predictions, one output per file (None for one that does not decode) that the kind pre-labels and scores."""
    with tempfile.TemporaryDirectory() as folder:
        data = TRAINING[kind.name](Path(folder))
        epochs: list[EpochReport] = []
        with pytest.raises(TrainerSettingsError, match="no_such_setting"):
            trainer.fit(data.train, data.val, data.classes, {"no_such_setting": 1})
        fitted = trainer.fit(data.train, data.val, data.classes, data.settings, on_epoch=epochs.append)
        assert [e.epoch for e in epochs] == [1] and fitted.history == epochs and fitted.classes == data.classes
        assert set(trainer.default_settings()) == set(fitted.settings)
        assert all(np.isfinite(v) for v in epochs[0].metrics.values())
        checkpoint = Path(folder) / "model.pt"
        trainer.save(fitted, checkpoint)
        assert isinstance(torch.load(checkpoint, weights_only=True), dict)  # no pickled code
        loaded = trainer.load(checkpoint)
        assert loaded.classes == data.classes and loaded.settings == fitted.settings
        broken, content = UNREADABLE.get(kind.name, ("broken.png", b"not an image"))
        (Path(folder) / broken).write_bytes(content)
        uris = [*data.val["uri"], str(Path(folder) / broken)]
        outputs, failed = trainer.predict(fitted, uris)
        assert len(outputs) == len(uris) and failed == [len(uris) - 1] and outputs[-1] is None
        again, _ = trainer.predict(loaded, uris)
        assert again == outputs
    for output in outputs[:-1]:
        assert 0.0 <= kind.informativeness(output, "uncertainty") <= 1.0
        assert kind.prediction(output, "m/1")["model_version"] == "m/1"
    truth = kind.encode(data.val["label"].tolist(), data.classes)
    found = np.empty(len(outputs) - 1, dtype=object)
    found[:] = outputs[:-1]
    assert 0.0 <= kind.test_score(found, truth, None) <= 1.0
    assert kind.stored_targets(None, [], truth, data.classes) is None


def _check_training_head(kind: TaskKind) -> None:
    head = kind.training_head()
    assert isinstance(head, TrainingHead) and head is training_head(kind.name)
    config = TrainConfig(num_classes=3, task_kind=kind.name, epochs=1)
    others = {name for other in KINDS if other != kind.name and has_training_head(other)
              for name in training_head(other).own_settings}  # fmt: skip
    tracked = tracked_params(config)
    assert set(head.own_settings) <= set(tracked) and not others & set(tracked)
    assert TrainConfig.from_dict(json.loads(json.dumps(asdict(config)))) == config
    labels, _ = head.check_labels(kind.encode([_answer(kind, i % 3) for i in range(12)], CLASSES), None, 3)
    assert len(head.class_weights(labels, None, config)) == 3
    y = head.val_tensor(labels)
    logits = torch.zeros(12, 3, requires_grad=True)
    optimizer = torch.optim.SGD([logits], lr=1.0)
    losses = []
    for _ in range(5):
        loss = head.loss(logits, y, config, None)
        losses.append(float(loss.detach()))
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        optimizer.zero_grad()
    assert losses[-1] < losses[0]
    scores = head.validate(logits.detach(), y, Distributed(rank=0, world_size=1, local_rank=0))
    assert scores["val_macro_f1"] == pytest.approx(1.0)
    assert head.early_stopping_score(scores) is not None
    probs = head.probabilities(logits.detach())
    assert probs.shape == (12, 3) and float(probs.min()) >= 0.0 and float(probs.max()) <= 1.0
    thresholds, _ = head.thresholds(labels, lambda: probs.numpy(), 3, 0.5)
    assert thresholds is None or len(thresholds) == 3


def _outputs(kind: TaskKind, classes: list[int]) -> Any:
    """The kind's model outputs for items of ``classes``, as a model's predictions come: an (n, K) array of class
    probabilities, or a 1-d object array of per-item outputs."""
    outputs = [_probs(kind, k) for k in classes]
    if all(isinstance(o, dict) and all(isinstance(v, float) for v in o.values()) for o in outputs):
        return np.array([list(o.values()) for o in outputs])
    found = np.empty(len(outputs), dtype=object)
    found[:] = outputs
    return found


def _store_with_gold(folder: str, gold: dict[str, Any]) -> LabelStore:
    store = LabelStore(f"sqlite:///{Path(folder) / 'labels.db'}")
    store.migrate()
    row = {"n_bytes": 1, "ingested_at": utcnow(), "status": "active"}
    with store.begin() as conn:
        conn.execute(
            items_table.insert(),
            [{**row, "item_id": item, "source_path": f"{item}.png", "gold_label": label} for item, label in gold.items()],
        )
    return store


def check_a_model_is_scored_and_reported_on_the_test_split(kind: TaskKind) -> None:
    """The champion is decided on gold when there is enough of it, else on consensus; a model that predicts every
    answer scores 1, one that predicts the next class scores less; the report counts the decodable items."""
    items = [f"i{i:02d}" for i in range(N_ITEMS)]
    answers = kind.encode([_answer(kind, i % 3) for i in range(N_ITEMS)], CLASSES)
    right = _outputs(kind, [i % 3 for i in range(N_ITEMS)])
    wrong = _outputs(kind, [(i + 1) % 3 for i in range(N_ITEMS)])
    with tempfile.TemporaryDirectory() as folder:
        store = _store_with_gold(folder, {items[k]: _answer(kind, k % 3) for k in range(6)})
        try:
            on_gold = kind.test_scoring(store, items, answers, CLASSES, 6)
            on_consensus = kind.test_scoring(store, items, answers, CLASSES, 7)
        finally:
            store.dispose()
    assert (on_gold.basis, on_gold.n_items, on_gold.n_gold) == ("gold", 6, 6)
    assert (on_consensus.basis, on_consensus.n_items, on_consensus.n_gold) == ("consensus", N_ITEMS, 6)
    for scoring in (on_gold, on_consensus):
        truth = scoring.labels
        assert kind.test_score(right[scoring.rows], truth, None) == pytest.approx(1.0)
        assert kind.test_score(wrong[scoring.rows], truth, None) < 0.5
    report = kind.test_report(answers, right, [0, 1], CLASSES, None, model="m/1", ece_bins=10)
    assert report.report["test_items"] == N_ITEMS - 2 and report.report["undecodable_test_items"] == 2
    score = report.score_name
    assert score == kind.test_metric.name and 0.0 < kind.test_metric.floor < 1.0  # the floor check reads this name
    assert report.report[score] == pytest.approx(1.0) and report.metrics[score] == pytest.approx(1.0)
    assert report.tags[score] == "1.000000" and report.summary.startswith("m/1: ")
    assert report.files and all(isinstance(v, bytes) and v for v in report.files.values())


def check_the_qa_report_reads_its_answers(kind: TaskKind) -> None:
    """Unanimous votes agree perfectly in the QA report's agreement chart, and its drift chart sees every class."""
    view = kind.qa_view
    assert isinstance(view, AnswerView)
    votes = _annotations(kind)
    answers = view.answers(votes["label"])
    agreed = answers if view.agreement_answers is None else view.agreement_answers(votes["label"])
    assert view.period_kappa(votes.assign(label=agreed), CLASSES) == pytest.approx(1.0)
    share = class_share_per_period(pd.Series(["p"] * len(votes)), answers)
    assert share.to_numpy().sum() == pytest.approx(1.0)
    assert sorted(share.columns) == CLASSES or (kind.name in CLASSLESS and not set(share.columns) & set(CLASSES))


CONTRACT: list[Callable[[Any], None]] = [
    check_complete,
    check_label_config_offers_the_classes,
    check_answers_in_its_config_are_read_by_it,
    check_a_stored_answer_is_drawn_as_the_result_it_reads_from,
    check_an_accepted_prelabel_is_a_vote,
    check_a_bad_answer_is_skipped_with_a_known_reason,
    check_unanimous_votes_are_the_consensus_of_every_method,
    check_a_gold_files_entry_reads_as_the_answer_it_writes,
    check_gold_scores_right_and_wrong_answers,
    check_labeler_stats_count_each_labelers_votes,
    check_splits_give_every_item_one_split_and_a_manifest,
    check_export_formats_are_known,
    check_prediction_and_informativeness,
    check_a_model_is_scored_and_reported_on_the_test_split,
    check_the_qa_report_reads_its_answers,
    check_its_model_learns_from_the_answers,
]


@pytest.mark.parametrize("check", CONTRACT, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_registered_kind_keeps_the_contract(name: str, check: Callable[[Any], None]) -> None:
    kind = task_kind(name)
    assert kind.name == name
    check(kind)


def test_the_answers_given_in_each_kinds_config_are_read_by_that_kind() -> None:
    """The sync reads a project's answers by its config (``LabelStudioClient.answer_kind``): no two kinds may
    claim one config, whatever the empty-set setting."""
    for name in KINDS:
        for allow_empty in (True, False):
            config = task_kind(name).label_config(CLASSES, allow_empty=allow_empty)
            assert [other for other in KINDS if task_kind(other).owns_config(config)] == [name]
            assert kind_of_config(config) is task_kind(name)
    assert kind_of_config("<View/>") is task_kind(next(iter(KINDS)))  # a config no kind owns: the first kind


def test_single_label_multi_label_and_boxes_are_registered_and_every_kind_is_a_settings_choice() -> None:
    assert {"single_label", "multi_label", "boxes", "text_classes", "text_class_sets", "text_spans", "text_edits"} <= set(KINDS)
    assert set(KINDS) == set(TASK_TYPES)


def test_a_trainers_outputs_reach_the_stages_as_class_probabilities_or_as_objects() -> None:
    """Class probabilities (a text classifier's ``{class: p}``) become the (n, K) array the class kinds score, 0 where
    an item failed; any other output (a detector's boxes) stays one object per item."""
    table = model_outputs([{"dog": 0.75, "cat": 0.25}, None], ["cat", "dog"])
    assert table.dtype == np.float32 and table.tolist() == [[0.25, 0.75], [0.0, 0.0]]
    boxes = {"boxes": [], "image_width": 9, "image_height": 9}
    found = model_outputs([boxes, None], ["cat", "dog"])
    assert found.dtype == object and found.shape == (2,) and found[0] == boxes and found[1] is None
    assert model_outputs([{"cat": 1.0}], ["cat", "dog"]).dtype == object  # not every class: not probabilities


def test_an_unknown_task_type_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown task_type 'polygons'; expected one of"):
        task_kind("polygons")


class _ForgetsInformativeness(SingleLabel):
    """A kind that forgot its active-learning score (and scores every answer right on gold)."""

    name = "forgetful"
    informativeness = None  # type: ignore[assignment]

    def gold_score(self, labels: pd.DataFrame, truth: pd.Series, classes: Any) -> tuple[int, int]:
        return len(labels), len(labels)


def test_a_kind_that_forgets_a_part_is_refused_when_registered_and_fails_the_contract(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = types.ModuleType("forgetful_kind.kind")
    module.KIND = _ForgetsInformativeness()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "forgetful_kind", types.ModuleType("forgetful_kind"))
    monkeypatch.setitem(sys.modules, "forgetful_kind.kind", module)
    monkeypatch.setitem(sys.modules, "forgetful_kind.training", single_label_training)
    monkeypatch.setitem(KINDS, "forgetful", "forgetful_kind")
    with pytest.raises(TypeError, match="task kind 'forgetful' lacks informativeness"):
        task_kind("forgetful")
    failed = []
    for check in CONTRACT:
        try:
            check(module.KIND)
        except (AssertionError, TypeError):
            failed.append(check.__name__)
    assert failed == [
        "check_complete",
        "check_gold_scores_right_and_wrong_answers",
        "check_prediction_and_informativeness",
    ]
