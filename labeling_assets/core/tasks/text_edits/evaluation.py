"""The correction model scored on the frozen test split: WER and CER of the machine output before and after
correction against the reference (gold texts, else the consensus), by jiwer (``core.speech.text_metrics``).

The score the champion is decided on is word accuracy, 1 - WER after correction (at least 0). ``answers`` are the
reference texts, ``outputs`` the model's outputs (``{"text", "machine", "words"}``, None where the item could not
be read; those are left out and counted).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from labeling_assets.core.speech.text_metrics import cer, wer
from labeling_assets.core.tasks.kind import Markdown, TestMetric, TestSplitReport
from labeling_assets.core.tasks.text_edits.answers import words

SCORE_NAME = "test_word_accuracy"
# The demo's machine output has a WER of 0.21-0.23 (benchmarks/speech.py), a word accuracy of 0.77-0.79: a
# corrector under 0.75 leaves more than one word in four wrong, worse than the uncorrected machine output there.
WORD_ACCURACY = TestMetric(SCORE_NAME, "word accuracy (1 - WER) of the corrected machine output", 0.75)


def encode_texts(answers: Sequence[Any]) -> Any:
    """Answers as a 1-d object array of texts."""
    out = np.empty(len(answers), dtype=object)
    for n, answer in enumerate(answers):
        out[n] = answer
    return out


def _scored(outputs: Sequence[Any], truth: Sequence[Any]) -> list[tuple[list[str], list[str], list[str]]]:
    """(reference words, corrected words, machine words) of the items with an output and a text reference."""
    return [(words(str(t)), words(str(o.get("text") or "")), words(str(o.get("machine", o.get("text")) or "")))
            for o, t in zip(outputs, truth, strict=True) if o and isinstance(t, str)]  # fmt: skip


def word_accuracy(outputs: Sequence[Any], truth: Sequence[Any]) -> float:
    """1 - pooled WER of the corrected texts (clipped to [0, 1]); 1.0 with nothing to score."""
    rows = _scored(outputs, truth)
    if not rows:
        return 1.0
    return float(min(max(1.0 - wer([r for r, _, _ in rows], [h for _, h, _ in rows]), 0.0), 1.0))


def edit_test_report(answers: Any, outputs: Any, failed: list[int], *, model: str) -> TestSplitReport:
    """WER and CER before and after correction on the test items that were read."""
    keep = [n for n in range(len(answers)) if n not in set(failed)]
    rows = _scored([outputs[n] for n in keep], [answers[n] for n in keep])
    refs, after, before = [r for r, _, _ in rows], [h for _, h, _ in rows], [m for _, _, m in rows]
    metrics = {SCORE_NAME: word_accuracy([outputs[n] for n in keep], [answers[n] for n in keep]),
               "test_wer_before": wer(refs, before) if rows else 0.0, "test_wer_after": wer(refs, after) if rows else 0.0,
               "test_cer_before": cer(refs, before) if rows else 0.0, "test_cer_after": cer(refs, after) if rows else 0.0}  # fmt: skip
    changed = sum(a != m for _, a, m in rows)
    table = "\n".join(["| metric | machine output | corrected |", "|---|---:|---:|",
                       f"| WER | {metrics['test_wer_before']:.4f} | {metrics['test_wer_after']:.4f} |",
                       f"| CER | {metrics['test_cer_before']:.4f} | {metrics['test_cer_after']:.4f} |"])  # fmt: skip
    per_item = [{"reference": " ".join(r), "machine": " ".join(m), "corrected": " ".join(h)} for r, h, m in rows]
    return TestSplitReport(
        metrics=metrics,
        files={"evaluation/per_item.json": json.dumps(per_item, indent=1, ensure_ascii=False).encode("utf-8")},
        texts={"evaluation/wer.md": table},
        tags={SCORE_NAME: f"{metrics[SCORE_NAME]:.6f}"},
        summary=f"{model}: word accuracy {metrics[SCORE_NAME]:.4f} (WER {metrics['test_wer_before']:.4f} before "
        f"correction, {metrics['test_wer_after']:.4f} after; jiwer)",
        report={"test_items": len(keep), "undecodable_test_items": len(failed), "items_changed_by_model": changed,
                **{k: round(v, 6) for k, v in metrics.items()}, "wer_before_after": Markdown(table)},  # fmt: skip
        score_name=SCORE_NAME,
    )
