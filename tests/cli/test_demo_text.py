"""``labeling-assets demo --task text-classes`` and ``--task text-spans``: the pipeline reads texts and a hidden gold
file while the truth stays apart; the crowd's answers reach Label Studio as the kind reads them back; the summary
scores consensus and labelers against the truth."""

import csv
import json
import uuid
from pathlib import Path

import pandas as pd
import pytest

from labeling_assets.cli.demo_text import (
    GOLD_FILE,
    SOURCE_FILE,
    class_summary,
    classes_of,
    load_truth,
    span_crowd,
    span_summary,
    use_text_environment,
)
from labeling_assets.core.ingest.text import read_jsonl
from labeling_assets.core.labelstudio.crowd import default_crowd
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.text_classes.demo import (
    CATEGORIES,
    FORTUNES_DIR,
    fortune_quotations,
    read_category,
)
from labeling_assets.core.tasks.text_spans.spans import Span, stored
from labeling_assets.env import data_dir
from labeling_assets.local.text_crowd import simulate_class_crowd, simulate_text_span_crowd
from labeling_assets.resources.project import ProjectSettings
from tests.labelstudio_server import LabelStudioServer


def test_a_fortunes_file_is_split_on_percent_lines_and_normalised(tmp_path: Path) -> None:
    (tmp_path / "food").write_bytes(b"Eat.\r\n%\nA \xc3\xa9clair\n\t-- Anon\n%\n%\nLast one\n")
    assert read_category(tmp_path / "food") == ["Eat.", "A \u00e9clair\n\t-- Anon", "Last one"]


def test_a_quotation_filed_under_two_categories_is_left_out(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("shared\n%\nonly a\n%\nalso a\n")
    (tmp_path / "b").write_text("shared\n%\nonly b\n")
    made = fortune_quotations(2, folder=tmp_path, categories=("a", "b"), seed=1)
    assert sorted((q.category, q.text) for q in made) in (
        [("a", "only a"), ("b", "only b")], [("a", "also a"), ("b", "only b")])  # fmt: skip
    with pytest.raises(ValueError, match="category 'b' has 1 usable"):
        fortune_quotations(4, folder=tmp_path, categories=("a", "b"))


@pytest.mark.parametrize("task", ["text-classes", "text-spans"])
def test_the_pipeline_reads_texts_and_hidden_gold_and_the_truth_stays_apart(
    task: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if task == "text-classes" and not all((FORTUNES_DIR / c).is_file() for c in CATEGORIES):
        pytest.skip("Debian's fortunes package is not installed (scripts/demo installs it as root)")
    for name in ("LABELING_ASSETS_TASK_TYPE", "LABELING_ASSETS_CLASSES", "LABELING_ASSETS_IMAGE_SOURCE", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LABELING_ASSETS_HOME", str(tmp_path))

    demo = use_text_environment(task)

    assert data_dir() == tmp_path / task
    settings = ProjectSettings()
    assert settings.task_type == task.replace("-", "_") and settings.classes == classes_of(task)
    assert sorted(p.name for p in demo.source.iterdir()) == [GOLD_FILE, SOURCE_FILE]
    assert demo.source not in demo.truth.parents  # what the pipeline reads holds no truth but the hidden gold
    rows = [json.loads(line) for line in (demo.source / SOURCE_FILE).read_text().splitlines()]
    assert all(set(row) == {"id", "text"} for row in rows)
    # The ingest's own reader gives every text the id the truth is keyed by.
    batch = read_jsonl(SOURCE_FILE, (demo.source / SOURCE_FILE).read_bytes(), "id", "text")
    truth = load_truth(demo)
    assert not batch.refused and {i.item_id for i in batch.items} == set(truth) and len(truth) == len(rows) == 300
    by_id = {row["id"]: item.item_id for row, item in zip(rows, batch.items, strict=True)}
    with open(demo.source / GOLD_FILE, newline="") as fh:
        gold = list(csv.DictReader(fh))
    assert len(gold) == 30
    kind = task_kind(settings.task_type)
    for row in gold:
        true = truth[by_id[row["filename"].removeprefix(f"{SOURCE_FILE}#")]][1]
        assert kind.parse_gold(row["label"], classes_of(task)) == (stored(true) if task == "text-spans" else true, None)
    if task == "text-spans":
        assert sum(not spans for _, spans in truth.values()) >= 1  # "no entity" is an answer too
    assert use_text_environment(task) == demo  # idempotent: the same files


@pytest.mark.labelstudio
def test_the_text_crowds_answers_read_back_as_the_kind_stores_them(label_studio: LabelStudioServer) -> None:
    from labeling_assets.cli.demo_text import span_sentences

    client = label_studio.client()
    sentences = span_sentences(12, seed=5)
    assert any(not s.entities for s in sentences)
    tag = uuid.uuid4().hex[:6]
    for task_type in ("text_spans", "text_classes"):
        kind = task_kind(task_type)
        types = ["PER", "ORG", "LOC"]
        project = client.ensure_project(title=f"demo-{task_type}-{tag}", classes=types, overlap=3,
                                        label_config=kind.label_config(types))  # fmt: skip
        client.import_tasks(project, [{"data": {"text": s.text, "item_id": s.item_id}} for s in sentences])
        if task_type == "text_spans":
            posted = simulate_text_span_crowd(client, project, span_crowd(5, prefix=f"s{tag}"), truth=sentences)
        else:
            truth = {s.item_id: (s.entities[0].label if s.entities else "LOC") for s in sentences}
            posted = simulate_class_crowd(client, project, default_crowd(5, prefix=f"c{tag}"), truth=truth,
                                          classes=types)  # fmt: skip
        assert sum(posted.per_labeler().values()) == 3 * len(sentences)
        if task_type == "text_spans":  # the "no entity" choice goes through too
            assert any(one.answer == () for _, one in posted.posted)
        sent = {(one.item_id, posted.user_ids[one.labeler]): one.answer for _, one in posted.posted}
        read = 0
        for task in client.request("GET", f"/api/projects/{project}/export", params={"exportType": "JSON"}):
            for annotation in task["annotations"]:
                want = sent[(task["data"]["item_id"], int(annotation["completed_by"]))]
                answer = (kind.read_answer_in_task(annotation["result"], task["data"])  # type: ignore[attr-defined]
                          if task_type == "text_spans" else kind.read_answer(annotation["result"]))  # fmt: skip
                assert answer.problem is None, answer.detail
                assert answer.label == (stored(want) if task_type == "text_spans" else want)  # type: ignore[arg-type]
                read += 1
        assert read == len(sent)
        # A second run posts nothing: every text has its answers.
        if task_type == "text_spans":
            again = simulate_text_span_crowd(client, project, span_crowd(5, prefix=f"s{tag}"), truth=sentences)
        else:
            again = simulate_class_crowd(client, project, default_crowd(5, prefix=f"c{tag}"), truth=truth,
                                         classes=types)  # fmt: skip
        assert again.posted == []


def _frame(rows: list[tuple[str, str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["item_id", "labeler_id", "label"])


def test_the_class_summary_scores_consensus_and_labelers_against_the_truth() -> None:
    truth = {"a": "food", "b": "law", "c": "law", "d": "love"}
    annotations = _frame([(i, "1", lab) for i, lab in truth.items()]
                         + [("a", "2", "law"), ("b", "2", "law"), ("c", "2", "food"), ("d", "2", "food")])  # fmt: skip
    consensus = pd.DataFrame({"item_id": ["a", "b", "c", "d"], "label": ["food", "law", "food", "love"]})
    lines = class_summary(truth, annotations, consensus, {"1": "sim_00_expert"}, ["food", "law", "love"],
                          {"test_macro_f1": 0.5, "test_items": 9})  # fmt: skip
    text = "\n".join(lines)
    # 3 of 4 right; F1 per class: food 2/3, law 2/3, love 1.
    assert "4 texts, accuracy 0.750, macro-F1 0.778" in text
    assert [line.split() for line in lines if line.strip().startswith(("sim_00", "2 "))] == [
        ["sim_00_expert", "4", "1.000", "0.750"], ["2", "4", "0.250", "0.500"]]  # fmt: skip
    assert "macro-F1 0.500 (9 texts" in text


def test_the_span_summary_scores_consensus_the_baseline_and_labelers_against_the_truth() -> None:
    text = "Ann Lee met Bob in Paris today"
    per, bob, paris = Span(0, 7, "PER"), Span(12, 15, "PER"), Span(19, 24, "LOC")
    truth = {"x": (text, (per, bob, paris)), "y": ("Nothing here", ())}
    # Two labelers mark x right, one cuts "Ann Lee" short; on y one marks a false span.
    annotations = _frame([
        ("x", "1", stored([per, bob, paris])), ("x", "2", stored([per, bob, paris])),
        ("x", "3", stored([Span(0, 3, "PER"), bob])), ("y", "1", []), ("y", "2", []),
        ("y", "3", stored([Span(0, 7, "ORG")])),
    ])  # fmt: skip
    consensus = pd.DataFrame({"item_id": ["x", "y"], "label": [stored([per, bob]), []]})  # missed Paris
    lines = span_summary(truth, annotations, consensus, {"3": "sim_03_sloppy"}, {"test_entity_f1": 0.75, "test_items": 7})
    summary = "\n".join(lines)
    assert "2 texts, 3 true entities; entity precision 1.000, recall 0.667, F1 0.800" in summary
    assert "token-majority baseline:   entity F1 1.000" in summary  # the majority of three finds all three
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.strip()[:1] in "123s"}
    assert rows["1"] == ["2", "1.000", "1.000", "1.000", "0.800"]
    # The sloppy labeler: bob right; a short span and a false one wrong (precision 1/3), 1 of 3 found.
    assert rows["sim_03_sloppy"] == ["2", "0.333", "0.333", "0.333", "0.400"]
    assert "entity F1 0.750 (7 texts" in summary


def test_the_class_list_comes_from_the_environment_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABELING_ASSETS_CLASSES", " PER, ORG ,,LOC ")
    assert ProjectSettings().classes == ["PER", "ORG", "LOC"]
    monkeypatch.delenv("LABELING_ASSETS_CLASSES")
    assert ProjectSettings().classes == [str(d) for d in range(10)]  # the digits demo's
