"""``labeling-assets demo --task speech``: the speech crowd's answers reach Label Studio as the kinds read them back,
and the summary scores consensus, the baselines and each labeler against the truth kept apart."""

import uuid

import pandas as pd
import pytest

from labeling_assets.cli.demo_speech import LABELS, edit_summary, prefill_line, segment_summary
from labeling_assets.core.speech.demo_source import TRANSCRIPT, DemoUtterance
from labeling_assets.core.speech.regions import Region
from labeling_assets.core.tasks import task_kind
from labeling_assets.local.speech_crowd import (
    EditTruth,
    SegmentTruth,
    segment_crowd,
    simulate_speech_crowd,
    text_crowd,
)
from tests.labelstudio_server import LabelStudioServer

NAMES = ("machine output", "consensus (ours)", "ROVER, same answers")
EN, VI = Region(0.2, 1.0, "en"), Region(1.2, 2.0, "vi")


def _utterance(name: str, transcript: str = "xin chào the meeting", machine: str = "xin chao the meeting") -> DemoUtterance:
    return DemoUtterance(name, f"{name}.wav", 2.5, (EN, VI), transcript, "hello the meeting", machine, "hello meeting")


@pytest.mark.labelstudio
def test_the_speech_crowds_answers_read_back_as_each_kind_stores_them(label_studio: LabelStudioServer) -> None:
    client = label_studio.client()
    tag = uuid.uuid4().hex[:6]
    items = [f"item-{tag}-{k}" for k in range(5)]
    segments = {i: SegmentTruth((EN, VI, Region(2.1, 2.4, "noise")), 2.5) for i in items}
    edits = {i: EditTruth("xin chào the meeting starts at nine", "xin chao meeting the starts at nine") for i in items}
    for task_type, truth, crowd, data in (
        ("audio_segments", segments, segment_crowd(5, prefix=f"a{tag}"), {"audio": "/data/local-files/?d=x.wav"}),
        ("text_edits", edits, text_crowd(5, prefix=f"e{tag}"), {"audio": "", "source": "", "source_text": "", "machine": "m", "audio_header": "", "source_header": ""}),
    ):
        kind = task_kind(task_type)
        project = client.ensure_project(title=f"speech-{task_type}-{tag}", classes=list(LABELS), overlap=3,
                                        label_config=kind.label_config(list(LABELS)))  # fmt: skip
        client.import_tasks(project, [{"data": {**data, "item_id": i}} for i in items])
        posted = simulate_speech_crowd(client, project, task_type, crowd, truth=truth, labels=LABELS)
        assert sum(posted.per_labeler().values()) == 3 * len(items)
        sent = {(one.item_id, posted.user_ids[one.labeler]): one.answer for _, one in posted.posted}
        read = 0
        for task in client.request("GET", f"/api/projects/{project}/export", params={"exportType": "JSON"}):
            for annotation in task["annotations"]:
                answer = kind.read_answer(annotation["result"])
                assert answer.problem is None, answer.detail
                assert answer.label == sent[(task["data"]["item_id"], int(annotation["completed_by"]))]
                read += 1
        assert read == len(sent)
        if task_type == "text_edits":  # the lazy labeler's answers are the machine output, unchanged
            lazy = [one.answer for _, one in posted.posted if one.labeler.endswith("lazy")]
            assert lazy and set(lazy) == {"xin chao meeting the starts at nine"}
        # A second run posts nothing: every task has its three answers.
        again = simulate_speech_crowd(client, project, task_type, crowd, truth=truth, labels=LABELS)
        assert again.posted == []


def _answers(rows: list[tuple[str, str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["item_id", "labeler_id", "label"])


def test_the_segment_summary_scores_consensus_and_frame_majority_on_the_same_answers() -> None:
    truth = {"a": _utterance("a"), "b": _utterance("b"), "g": _utterance("g")}
    right = [{"start": 0.2, "end": 1.0, "label": "en"}, {"start": 1.2, "end": 2.0, "label": "vi"}]
    late = [{"start": 0.3, "end": 1.1, "label": "en"}, {"start": 1.3, "end": 2.1, "label": "vi"}]
    annotations = _answers([(i, lab, answer) for i in "abg" for lab, answer in (("1", right), ("2", late), ("3", late))])
    consensus = {"a": right, "b": right, "g": right}
    lines = segment_summary(truth, annotations, consensus, {"3": "sim_03_late"}, {"3": "automatic: gold"},
                            {"test_segment_f1": 0.75, "test_frame_accuracy": 0.8, "test_items": 6}, gold={"g"})  # fmt: skip
    text = "\n".join(lines)
    # Ours is exact on a and b (the gold item g is left out); the majority of the two late labelers is 0.1 s late.
    assert "consensus (ours):          boundary error 0.000 s, segment F1 1.000, frame accuracy 1.000 (2 recordings" in text
    assert "frame majority:            boundary error 0.100 s, segment F1 1.000, frame accuracy 0.840 (2 recordings" in text
    assert "sim_03_late             3 recordings  F1 1.000  boundary 0.100  PAUSED: automatic: gold" in text
    assert "test_segment_f1 0.750, test_frame_accuracy 0.800" in text and "test_items" not in text


def test_the_edit_summary_scores_machine_output_consensus_rover_and_the_lazy_labeler() -> None:
    truth = {"t1": (_utterance("u1"), TRANSCRIPT), "t2": (_utterance("u2"), TRANSCRIPT)}
    machine, right = "xin chao the meeting", "xin chào the meeting"
    annotations = _answers([(i, lab, answer) for i in ("t1", "t2")
                            for lab, answer in (("1", right), ("2", right), ("3", machine))])  # fmt: skip
    consensus = {"t1": right, "t2": machine}  # one consensus wrong: 1 error in 8 words
    lines = edit_summary(truth, annotations, consensus, {"3": "sim_02_lazy"}, {},
                         {"test_wer_before": 0.25, "test_wer_after": 0.1}, gold=set())  # fmt: skip
    rows = {line[4:46].strip(): line.split()[-4:] for line in lines if line[4:46].strip() in NAMES}
    assert rows["machine output"] == ["0.250", "(2)", "n/a", "(0)"]
    assert rows["consensus (ours)"] == ["0.125", "(2)", "n/a", "(0)"]
    assert rows["ROVER, same answers"] == ["0.000", "(2)", "n/a", "(0)"]
    assert "sim_02_lazy             2 texts  WER 0.250  unchanged 100%" in "\n".join(lines)
    assert "test_wer_before 0.250, test_wer_after 0.100" in "\n".join(lines)


def test_the_prefill_line_scores_the_newest_prelabels_beside_the_machine_output_on_unanswered_items_else_test() -> None:
    truth = {f"t{k}": (_utterance(f"u{k}"), TRANSCRIPT) for k in range(3)}  # machine: 1 error in 4 words
    prefill = {"t0": "xin chào the meeting", "t1": "xin chào the", "t2": "anything"}
    line = prefill_line(truth, prefill, answered={"t2"}, test={"t2"})  # t2 answered: its pre-fill no longer matters
    assert line == "  pre-fill after training, WER against the truth on the 2 unanswered items: 0.125 (the machine output's: 0.250)"
    everything = prefill_line(truth, prefill, answered=set(truth), test={"t0"})  # all answered: the test split's
    assert everything == "  pre-fill after training, WER against the truth on the 1 test split's items: 0.000 (the machine output's: 0.250)"
    assert prefill_line(truth, prefill, answered=set(truth), test=set()).endswith("n/a (no unanswered or test item has a pre-label)")
