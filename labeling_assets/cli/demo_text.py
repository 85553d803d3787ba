"""``labeling-assets demo --task text-classes`` and ``--task text-spans``: the demo's loop on text (issue 31).

The same steps as the image demos (Label Studio, ingest, prelabels, queue, crowd, the annotation sensor, consensus,
splits, labeler stats, training on CPU, evaluation), on a text project:

- text-classes: real quotations from Debian's ``fortunes`` package (``core.tasks.text_classes.demo``), the class
  of each the category the package files it under (computers, food, law, love, sports); Label Studio shows the
  text with one choice per class; the crowd answers with per-labeler confusion (expert, average, noisy, spammer:
  ``core.labelstudio.crowd``); the model is TF-IDF + logistic regression.
- text-spans: template sentences filled with Faker's names (PER), companies (ORG) and places (LOC), so every
  entity's offsets are known (``core.tasks.text_spans.demo``); Label Studio shows ``<Labels>`` on the text; the
  crowd marks spans with errors (two good labelers, one who misses entities, one who cuts boundaries a token off,
  a spammer; ``--annotators 6`` adds one who confuses types); the model is spaCy's NER trained from blank.

Each keeps to its own data folder, ``<data>/text-classes`` or ``<data>/text-spans`` (the store, Label Studio, the
Dagster instance, the MLflow store). The pipeline reads ``demo/texts/`` (``texts.jsonl`` and a hidden gold file,
``gold.csv``); the truth of every text is kept apart, in ``demo/truth.jsonl``, and only the summary reads it:
consensus against the truth (accuracy and macro-F1; entity F1 beside the token-majority baseline on the same
answers), each labeler's quality against the truth beside what the project measured without it, and the model's
test score.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labeling_assets import env
from labeling_assets.cli.demo_multilabel import use_own_instance
from labeling_assets.core.tasks.text_spans.demo import ENTITY_TYPES, Sentence, SpanLabeler, good_labeler
from labeling_assets.core.tasks.text_spans.spans import Span, from_stored
from labeling_assets.env import data_dir

TASKS = {"text-classes": "text_classes", "text-spans": "text_spans"}
TEXTS = 300  # texts written; the demo queues --items of them
DEFAULT_ITEMS = 300
DEFAULT_EPOCHS = 20  # the spaCy trainer's own default (the best epoch on val is kept)
GOLD_EVERY = 10  # one text in ten is hidden gold (the queue mixes them in at --gold-rate)
SOURCE_FILE = "texts.jsonl"
GOLD_FILE = "gold.csv"
TRUTH_FILE = "truth.jsonl"


@dataclass(frozen=True)
class TextDemo:
    task: str  # text-classes | text-spans
    source: Path  # what the pipeline reads
    truth: Path  # what only the summary reads

    @property
    def spans(self) -> bool:
        return self.task == "text-spans"


def classes_of(task: str) -> list[str]:
    from labeling_assets.core.tasks.text_classes.demo import CATEGORIES

    return list(ENTITY_TYPES) if task == "text-spans" else list(CATEGORIES)


def use_text_environment(task: str, seed: int = 0) -> TextDemo:
    """Point this process (and the runs it starts) at a text demo: task type, classes, data folder, Dagster instance
    and source; write its texts, gold and truth (the same bytes each time). Idempotent."""
    if env.variable("LABELING_ASSETS_TASK_TYPE") != TASKS[task]:
        env.set_variable("LABELING_ASSETS_TASK_TYPE", TASKS[task])
        env.set_variable("LABELING_ASSETS_HOME", str(data_dir() / task))
    env.set_variable("LABELING_ASSETS_CLASSES", ",".join(classes_of(task)))
    home = data_dir()
    use_own_instance(home)
    demo = TextDemo(task, home / "demo" / "texts", home / "demo" / TRUTH_FILE)
    write_texts(demo, seed=seed)
    env.set_default("LABELING_ASSETS_IMAGE_SOURCE", str(demo.source))
    return demo


def demo_rows(task: str, n: int = TEXTS, seed: int = 0) -> list[dict[str, Any]]:
    """The demo's texts with their truth: ``{id, item_id, text, label}`` (spans: ``label`` is the stored
    ``[[start, end, type], ...]``), ``n`` distinct texts."""
    if task == "text-classes":
        from labeling_assets.core.tasks.text_classes.demo import fortune_quotations

        return [{"id": f"q{i:04d}", "item_id": q.item_id, "text": q.text, "label": q.category}
                for i, q in enumerate(fortune_quotations(n, seed=seed))]  # fmt: skip
    return [{"id": f"s{i:04d}", "item_id": s.item_id, "text": s.text, "label": [[e.start, e.end, e.label] for e in s.entities]}
            for i, s in enumerate(span_sentences(n, seed))]  # fmt: skip


def span_sentences(n: int, seed: int = 0) -> list[Sentence]:
    """``n`` distinct Faker sentences, each with the item id the ingest gives its text (a sentence without an
    entity comes from a few fixed templates: one item each)."""
    from labeling_assets.core.ingest.text import normalize_text, text_item_id
    from labeling_assets.core.tasks.text_spans.demo import sentences

    made: dict[str, Sentence] = {}
    for s in sentences(3 * n, seed):
        text = normalize_text(s.text)
        if text == s.text and text_item_id(text) not in made:
            made[text_item_id(text)] = Sentence(text_item_id(text), text, s.entities)
        if len(made) == n:
            break
    return list(made.values())


def write_texts(demo: TextDemo, n: int = TEXTS, seed: int = 0) -> None:
    """``source/texts.jsonl`` (id, text), ``source/gold.csv`` (every GOLD_EVERY-th text's truth in the kind's gold
    format: ``texts.jsonl#<id>``, a class name or a span list's JSON) and the truth apart (item_id, text, label)."""
    rows = demo_rows(demo.task, n, seed)
    gold = io.StringIO()
    writer = csv.writer(gold, lineterminator="\n")
    writer.writerow(("filename", "label"))
    for row in rows[::GOLD_EVERY]:
        writer.writerow((f"{SOURCE_FILE}#{row['id']}", row["label"] if isinstance(row["label"], str) else json.dumps(row["label"])))
    _write(demo.source / SOURCE_FILE, "".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in rows))
    _write(demo.source / GOLD_FILE, gold.getvalue())
    _write(demo.truth, "".join(json.dumps({"item_id": r["item_id"], "text": r["text"], "label": r["label"]}) + "\n"
                               for r in rows))  # fmt: skip


def _write(path: Path, text: str) -> None:
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return  # unchanged: the ingest's fingerprint of the file stays
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def load_truth(demo: TextDemo) -> dict[str, tuple[str, Any]]:
    """item_id -> (text, true label: a class name, or a tuple of spans)."""
    out: dict[str, tuple[str, Any]] = {}
    for line in demo.truth.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        label = from_stored(row["label"]) if demo.spans else str(row["label"])
        out[str(row["item_id"])] = (str(row["text"]), label)
    return out


def span_crowd(n: int, *, prefix: str = "sim", seed: int = 0) -> list[SpanLabeler]:
    """``n`` span labelers cycling good, good, misses, sloppy, spammer, types."""
    rng = np.random.default_rng(seed)
    roles = ("good", "good", "misses", "sloppy", "spammer", "types")
    roles_of = {  # the errors of each kind of labeler (a good one's rates are drawn per seed)
        "misses": {"miss": 0.4, "wrong_type": 0.05, "boundary": 0.05, "false_spans": 0.05},
        "sloppy": {"miss": 0.1, "boundary": 0.3, "long_end": 0.5, "false_spans": 0.05},
        "spammer": {"spammer": True},
        "types": {"miss": 0.1, "wrong_type": 0.35, "boundary": 0.05, "false_spans": 0.05},
    }
    crowd = []
    for i in range(n):
        role = roles[i % len(roles)]
        name = f"{prefix}_{i:02d}_{role}"
        crowd.append(good_labeler(name, rng) if role == "good" else SpanLabeler(name, **roles_of[role]))  # type: ignore[arg-type]
    return crowd


def simulate_crowd(label_studio: Any, project_id: int, demo: TextDemo, args: Any) -> None:
    """The text crowd answers the queued tasks through Label Studio's API; prints each labeler's share."""
    import time

    from labeling_assets.core.labelstudio.crowd import default_crowd
    from labeling_assets.local.text_crowd import simulate_class_crowd, simulate_text_span_crowd

    last = [time.perf_counter()]

    def progress(done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 5 or done == total:
            print(f"    {done}/{total} annotations submitted", flush=True)
            last[0] = time.perf_counter()

    truth = load_truth(demo)
    client = label_studio.get_client()
    if demo.spans:
        crowd: Sequence[Any] = span_crowd(args.annotators, prefix="sim", seed=args.seed)
        sentences = [Sentence(item, text, label) for item, (text, label) in truth.items()]
        result = simulate_text_span_crowd(client, project_id, crowd, truth=sentences, overlap=args.overlap,
                                          seed=args.seed, progress=progress)  # fmt: skip
    else:
        crowd = default_crowd(args.annotators, prefix="sim")
        result = simulate_class_crowd(client, project_id, crowd, truth={i: str(lab) for i, (_, lab) in truth.items()},
                                      classes=classes_of(demo.task), overlap=args.overlap, seed=args.seed,
                                      progress=progress)  # fmt: skip
    per = result.per_labeler()
    for spec in crowd:
        print(f"    {spec.name:<16} {per[spec.name]:>5} annotations")


# --- the summary ------------------------------------------------------------------------------------------------


def class_summary(
    truth: Mapping[str, str], annotations: pd.DataFrame, consensus: pd.DataFrame, names: Mapping[str, str],
    classes: Sequence[str], evaluation: Mapping[str, Any],
) -> list[str]:  # fmt: skip
    """Consensus accuracy and macro-F1 against the truth, each labeler's accuracy against the truth beside against
    consensus, and the model's test macro-F1."""
    from sklearn.metrics import f1_score

    lines = []
    cons = {str(i): lab for i, lab in zip(consensus["item_id"], consensus["label"], strict=True) if str(i) in truth}
    if cons:
        want = [truth[i] for i in cons]
        got = [str(v) for v in cons.values()]
        accuracy = float(np.mean([a == b for a, b in zip(want, got, strict=True)]))
        macro = float(f1_score(want, got, labels=list(classes), average="macro", zero_division=0))
        lines.append(f"  consensus vs truth:        {len(cons)} texts, accuracy {_num(accuracy)}, macro-F1 {_num(macro)}")
    else:
        lines.append("  consensus:                 none yet")
    lines.append("  labelers: accuracy against the simulated truth (true) and against consensus (cons.)")
    lines.append(f"  {'labeler':<16} {'texts':>5} {'true':>6} {'cons.':>6}")
    for labeler, rows in annotations.groupby(annotations["labeler_id"].astype(str)) if not annotations.empty else []:
        known = rows[rows["item_id"].astype(str).isin(truth)]
        true = np.mean([str(lab) == truth[str(i)] for i, lab in zip(known["item_id"], known["label"], strict=True)])
        agreed = [str(lab) == str(cons[str(i)]) for i, lab in zip(rows["item_id"], rows["label"], strict=True)
                  if str(i) in cons]  # fmt: skip
        lines.append(f"  {names.get(labeler, labeler):<16} {len(rows):>5} {_num(true if len(known) else None):>6} "
                     f"{_num(np.mean(agreed) if agreed else None):>6}")  # fmt: skip
    lines.append(f"  model on the test split:   macro-F1 {_num(_score(evaluation, 'test_macro_f1'))} "
                 f"({evaluation.get('test_items', 'n/a')} texts, against their consensus class)")  # fmt: skip
    return lines


def span_summary(
    truth: Mapping[str, tuple[str, tuple[Span, ...]]], annotations: pd.DataFrame, consensus: pd.DataFrame,
    names: Mapping[str, str], evaluation: Mapping[str, Any], hidden_gold: Mapping[str, tuple[Span, ...]] | None = None,
) -> list[str]:  # fmt: skip
    """Consensus entity F1 against the truth (strict: same offsets and type) beside the token-majority baseline on
    the same answers, each labeler's span F1 against the truth beside against consensus, and the model's test
    entity F1."""
    from labeling_assets.core.tasks.text_spans.consensus import aggregate_spans
    from labeling_assets.core.tasks.text_spans.stats import labeler_span_scores, match_counts, span_score
    from labeling_assets.core.tasks.text_spans.votes import SpanVote

    gold = {item: spans for item, (_, spans) in truth.items()}
    votes = [SpanVote(str(r["item_id"]), str(r["labeler_id"]), spans)
             for r in annotations.to_dict("records") if (spans := from_stored(r["label"])) is not None]  # fmt: skip
    cons = {str(i): spans for i, lab in zip(consensus["item_id"], consensus["label"], strict=True)
            if str(i) in gold and (spans := from_stored(lab)) is not None}  # fmt: skip
    lines = []
    if cons:
        ours = span_score([match_counts(cons[i], gold[i]) for i in cons])
        texts = {i: truth[i][0] for i in cons}
        # The hidden gold items are answered by their gold spans in both, as the project's consensus does.
        baseline = aggregate_spans([v for v in votes if v.item_id in cons], texts, list(ENTITY_TYPES), "token_majority",
                                   gold=hidden_gold)  # fmt: skip
        base = span_score([match_counts(baseline.labels.get(i, ()), gold[i]) for i in cons])
        lines.append(f"  consensus vs truth:        {len(cons)} texts, {ours.tp + ours.fn} true entities; entity "
                     f"precision {_num(ours.precision)}, recall {_num(ours.recall)}, F1 {_num(ours.f1)} (strict)")  # fmt: skip
        lines.append(f"  token-majority baseline:   entity F1 {_num(base.f1)} on the same answers")
    else:
        lines.append("  consensus:                 none yet")
    true_scores = labeler_span_scores(votes, gold)
    cons_scores = labeler_span_scores(votes, cons)
    lines.append("  labelers: strict entity precision / recall / F1 against the simulated truth, F1 against consensus")
    lines.append(f"  {'labeler':<16} {'texts':>5} {'P true':>6} {'R true':>6} {'F1 true':>7} {'F1 cons.':>8}")
    for labeler, score in sorted(true_scores.items(), key=lambda kv: names.get(kv[0], kv[0])):
        agreed = cons_scores.get(labeler)
        lines.append(f"  {names.get(labeler, labeler):<16} {score.n_items:>5} {_num(score.precision):>6} "
                     f"{_num(score.recall):>6} {_num(score.f1):>7} {_num(agreed.f1 if agreed else None):>8}")  # fmt: skip
    lines.append(f"  model on the test split:   entity F1 {_num(_score(evaluation, 'test_entity_f1'))} "
                 f"({evaluation.get('test_items', 'n/a')} texts, against their consensus spans)")  # fmt: skip
    return lines


def store_summary(demo: TextDemo, evaluation: Mapping[str, Any]) -> list[str]:
    """The summary of the store's current annotations and consensus."""
    from labeling_assets.cli.common import label_store
    from labeling_assets.core.store.queries import consensus_frame, current_annotations, gold_labels
    from labeling_assets.core.store.schema import labelers_table

    store = label_store()
    names = {str(r["labeler_id"]): str(r["username"] or r["display_name"] or r["labeler_id"])
             for r in store.fetch(labelers_table.select())}  # fmt: skip
    truth = load_truth(demo)
    annotations, consensus = current_annotations(store), consensus_frame(store)
    if demo.spans:
        hidden = {str(i): spans for i, lab in gold_labels(store).items() if (spans := from_stored(lab)) is not None}
        return span_summary(truth, annotations, consensus, names, evaluation, hidden)
    return class_summary({i: str(lab) for i, (_, lab) in truth.items()}, annotations, consensus, names,
                         classes_of(demo.task), evaluation)  # fmt: skip


def _score(evaluation: Mapping[str, Any], name: str) -> Any:
    return evaluation.get(name, evaluation.get(name.removeprefix("test_")))


def _num(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if number != number else f"{number:.3f}"
