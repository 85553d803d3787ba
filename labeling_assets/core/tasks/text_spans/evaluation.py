"""A span model scored on the frozen test split: entity-level precision, recall and F1 by ``seqeval`` (IOB2 tags
over our tokens, strict mode: an entity counts when its type and both boundaries are right), overall (micro) and
per entity type. ``answers`` are stored answers (lists of ``[start, end, type]``), ``outputs`` a model's outputs
(``{"text", "spans"}``, None where the text could not be read); the model's spans are those it would pre-label."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from labeling_assets.core.tasks.kind import Markdown, TestMetric, TestSplitReport
from labeling_assets.core.tasks.text_spans.spans import bio_tags, from_stored, tokenize
from labeling_assets.core.tasks.text_spans.trainer import decided

SCORE_NAME = "test_entity_f1"
# Micro F1 over entities (strict): under 0.5, a model misses or misplaces about every other entity.
ENTITY_F1 = TestMetric(SCORE_NAME, "entity F1 (seqeval strict)", 0.5)


def encode_answers(answers: Sequence[Any]) -> Any:
    """Answers as a 1-d object array (one list per item; numpy would otherwise try to make a table of them)."""
    out = np.empty(len(answers), dtype=object)
    for n, answer in enumerate(answers):
        out[n] = answer
    return out


def _tags(outputs: Sequence[Any], answers: Sequence[Any]) -> tuple[list[list[str]], list[list[str]]]:
    truth, found = [], []
    for output, answer in zip(outputs, answers, strict=True):
        if not output:
            continue
        tokens = tokenize(str(output["text"]))
        truth.append(bio_tags(from_stored(answer) or (), tokens))
        found.append(bio_tags(decided(output.get("spans") or []), tokens))
    return truth, found


def entity_scores(outputs: Sequence[Any], answers: Sequence[Any]) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """(micro precision, recall and F1; per type precision, recall, F1 and support), by seqeval's strict mode."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    truth, found = _tags(outputs, answers)
    if not any(t != "O" for tags in truth + found for t in tags):  # nothing to find and nothing found
        return {"precision": 1.0, "recall": 1.0, "f1": 1.0}, {}
    options: dict[str, Any] = {"mode": "strict", "scheme": IOB2, "zero_division": 0}
    overall = {"precision": float(precision_score(truth, found, **options)),
               "recall": float(recall_score(truth, found, **options)), "f1": float(f1_score(truth, found, **options))}  # fmt: skip
    table = classification_report(truth, found, output_dict=True, **options)
    per_type = {str(k): {m: float(v[m]) for m in ("precision", "recall", "f1-score", "support")}
                for k, v in table.items() if "avg" not in k}  # fmt: skip
    return overall, per_type


def span_test_report(answers: Any, outputs: Any, failed: list[int], *, model: str) -> TestSplitReport:
    """Micro and per-type entity precision, recall and F1 on the test items whose text was read."""
    keep = [n for n in range(len(answers)) if n not in set(failed)]
    overall, per_type = entity_scores([outputs[n] for n in keep], [answers[n] for n in keep])
    lines = ["| entity type | precision | recall | F1 | entities |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {name} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1-score']:.3f} | {int(s['support'])} |"
              for name, s in sorted(per_type.items())]  # fmt: skip
    table = "\n".join(lines)
    metrics = {SCORE_NAME: overall["f1"], "test_entity_precision": overall["precision"],
               "test_entity_recall": overall["recall"]}  # fmt: skip
    return TestSplitReport(
        metrics=metrics,
        files={"evaluation/per_type.json": json.dumps(per_type, indent=1, sort_keys=True).encode("utf-8")},
        texts={"evaluation/per_type.md": table},
        tags={SCORE_NAME: f"{overall['f1']:.6f}"},
        summary=f"{model}: entity F1 {overall['f1']:.4f} (precision {overall['precision']:.4f}, recall "
        f"{overall['recall']:.4f}; seqeval strict)",
        report={"test_items": len(keep), "undecodable_test_items": len(failed),
                **{k: round(v, 6) for k, v in metrics.items()}, "per_type": Markdown(table)},  # fmt: skip
        score_name=SCORE_NAME,
    )
