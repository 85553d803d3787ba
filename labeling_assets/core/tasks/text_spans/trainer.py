"""The span kind's model: a spaCy NER pipeline trained from blank (``spacy.blank("en")`` and a ``beam_ner``), on
CPU, from the consensus spans of a dataset version; nothing is downloaded. A ``KindTrainer``.

The beam NER scores its candidate entities (``EntityRecognizer.scored_ents``: the probability mass of the beam's
parses holding each), so a prediction is every candidate with its probability: the pre-label shows those at
:data:`PRELABEL_MIN_SCORE` or more, the queue's uncertainty reads them all. A span whose offsets do not fall on
spaCy's tokens is widened to them for training (``alignment_mode="expand"``); of overlapping spans the earlier is
kept. Each epoch is scored on val by strict entity F1 (same offsets and type), and the best epoch's weights are
kept. Saved as a torch-only checkpoint: the pipeline's own ``to_bytes`` (msgpack, no pickle) as a uint8 tensor.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from labeling_assets.core.ingest.text import read_texts
from labeling_assets.core.tasks.kind import EpochReport, FittedModel, TrainerSettingsError
from labeling_assets.core.tasks.text_spans.spans import Span, from_stored
from labeling_assets.core.tasks.text_spans.stats import match_counts

FORMAT = "labeling-assets/text-spans-spacy-beam-ner/v1"
PRELABEL_MIN_SCORE = 0.5  # a candidate entity at least this probable is shown as a pre-labelled span
KEPT_SCORE = 0.01  # candidates less probable than this are left out of an output


def _pipeline(types: Sequence[str], beam_width: int) -> Any:
    import spacy

    nlp = spacy.blank("en")
    ner: Any = nlp.add_pipe("beam_ner", config={"beam_width": beam_width})
    for name in types:
        ner.add_label(str(name))
    return nlp


def decided(candidates: Sequence[Mapping[str, Any]], min_score: float = PRELABEL_MIN_SCORE) -> list[Span]:
    """The candidates at ``min_score`` or more, most probable first, leaving out any that overlaps one taken."""
    taken: list[Span] = []
    for c in sorted(candidates, key=lambda c: (-float(c["score"]), int(c["start"]), int(c["end"]))):
        span = Span(int(c["start"]), int(c["end"]), str(c["label"]))
        if float(c["score"]) >= min_score and not any(span.overlaps(t) for t in taken):
            taken.append(span)
    return sorted(taken)


class SpacyNerTrainer:
    """Fits a blank spaCy beam NER on a dataset version's rows (``uri`` of the stored text, ``label`` its spans)."""

    model_name = "spacy_beam_ner"

    def default_settings(self) -> dict[str, Any]:
        return {"epochs": 20, "batch_size": 8, "dropout": 0.1, "beam_width": 8, "seed": 0}

    def _settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(settings) - set(self.default_settings()))
        if unknown:
            raise TrainerSettingsError(f"unknown setting {unknown[0]}; this trainer has {sorted(self.default_settings())}")
        chosen = {**self.default_settings(), **settings}
        if int(chosen["epochs"]) < 1 or int(chosen["batch_size"]) < 1 or int(chosen["beam_width"]) < 1:
            raise TrainerSettingsError(f"epochs, batch_size and beam_width must be at least 1, got {chosen}")
        return chosen

    def _examples(self, nlp: Any, frame: pd.DataFrame) -> list[Any]:
        from spacy.training import Example

        texts, _ = read_texts(frame["uri"].astype(str).tolist())
        examples = []
        for text, answer in zip(texts, frame["label"], strict=True):
            spans = from_stored(answer)
            if text is None or spans is None:
                continue
            doc = nlp.make_doc(text)
            entities: list[tuple[int, int, str]] = []
            for span in spans:
                found = doc.char_span(span.start, span.end, label=span.label, alignment_mode="expand")
                if found is not None and not any(found.start_char < e and s < found.end_char for s, e, _ in entities):
                    entities.append((found.start_char, found.end_char, span.label))
            examples.append(Example.from_dict(doc, {"entities": entities}))
        return examples

    def fit(
        self, train: pd.DataFrame, val: pd.DataFrame, classes: Sequence[str], settings: Mapping[str, Any], *,
        log: Callable[[str], None] | None = None, on_epoch: Callable[[EpochReport], None] | None = None,
    ) -> FittedModel:
        from spacy.util import fix_random_seed, minibatch  # type: ignore[attr-defined]

        chosen = self._settings(settings)
        fix_random_seed(int(chosen["seed"]))
        nlp = _pipeline(classes, int(chosen["beam_width"]))
        examples = self._examples(nlp, train)
        if not examples:
            raise ValueError("no readable text in the train split")
        optimizer = nlp.initialize(lambda: examples)
        val_rows = val[[from_stored(a) is not None for a in val["label"]]] if len(val) else val
        fitted = FittedModel(nlp, [str(c) for c in classes], chosen)
        best: tuple[float, int, bytes] | None = None
        order = random.Random(int(chosen["seed"]))
        for epoch in range(1, int(chosen["epochs"]) + 1):
            order.shuffle(examples)
            losses: dict[str, float] = {}
            for batch in minibatch(examples, size=int(chosen["batch_size"])):  # type: ignore[no-untyped-call]
                nlp.update(batch, sgd=optimizer, losses=losses, drop=float(chosen["dropout"]))
            metrics = {"train_loss": float(losses.get("beam_ner", 0.0))}
            if len(val_rows):
                metrics["val_entity_f1"] = self._f1(fitted, val_rows)
            report = EpochReport(epoch, metrics)
            fitted.history.append(report)
            if on_epoch:
                on_epoch(report)
            score = metrics.get("val_entity_f1", -metrics["train_loss"])
            if best is None or score > best[0]:
                best = (score, epoch, nlp.to_bytes())
        assert best is not None
        nlp.from_bytes(best[2])
        fitted.metrics = {"best_epoch": float(best[1]), **{f"best_{k}": v for k, v in fitted.history[best[1] - 1].metrics.items()}}
        if log:
            log(f"{self.model_name}: {len(examples)} train texts, best epoch {best[1]}: {fitted.metrics}")
        return fitted

    def _f1(self, fitted: FittedModel, rows: pd.DataFrame) -> float:
        outputs, _ = self.predict(fitted, rows["uri"].astype(str).tolist())
        tp = fp = fn = 0
        for output, answer in zip(outputs, rows["label"], strict=True):
            if output is None:
                continue
            counts = match_counts(decided(output["spans"]), from_stored(answer) or ())
            tp, fp, fn = tp + counts[0], fp + counts[1], fn + counts[2]
        return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)

    def save(self, fitted: FittedModel, path: Path) -> None:
        import torch

        data = fitted.model.to_bytes()
        torch.save({
            "format": FORMAT, "classes": list(fitted.classes), "settings": dict(fitted.settings),
            "metrics": dict(fitted.metrics), "history": [{"epoch": e.epoch, "metrics": e.metrics} for e in fitted.history],
            "pipeline": torch.frombuffer(bytearray(data), dtype=torch.uint8),
        }, path)  # fmt: skip

    def load(self, path: Path, device: str = "cpu") -> FittedModel:
        import torch

        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved.get("format") != FORMAT:
            raise ValueError(f"{path} is not a {self.model_name} checkpoint ({saved.get('format')!r})")
        nlp = _pipeline(saved["classes"], int(saved["settings"]["beam_width"]))
        nlp.initialize()
        nlp.from_bytes(saved["pipeline"].numpy().tobytes())
        history = [EpochReport(int(e["epoch"]), dict(e["metrics"])) for e in saved["history"]]
        return FittedModel(nlp, list(saved["classes"]), dict(saved["settings"]), dict(saved["metrics"]), history)

    def predict(
        self, fitted: FittedModel, uris: Sequence[str], *, batch_size: int = 16
    ) -> tuple[list[Any], list[int]]:
        """Per uri ``{"text", "spans": [{start, end, label, score}]}`` (every candidate of probability at least
        :data:`KEPT_SCORE`, at character offsets of the stored text), None for a file that is no stored text."""
        nlp = fitted.model
        ner = nlp.get_pipe("beam_ner")
        texts, failed = read_texts(list(uris))
        outputs: list[Any] = [None] * len(uris)
        readable = [n for n, t in enumerate(texts) if t is not None]
        for start in range(0, len(readable), max(batch_size, 1)):
            chunk = readable[start : start + max(batch_size, 1)]
            docs = [nlp.make_doc(str(texts[n])) for n in chunk]
            for n, doc, scored in zip(chunk, docs, ner.scored_ents(ner.predict(docs)), strict=True):
                spans = [{"start": doc[s:e].start_char, "end": doc[s:e].end_char, "label": str(label),
                          "score": round(float(p), 6)}
                         for (s, e, label), p in scored.items() if float(p) >= KEPT_SCORE]  # fmt: skip
                outputs[n] = {"text": doc.text, "spans": sorted(spans, key=lambda c: (c["start"], c["end"], c["label"]))}
        return outputs, failed


TRAINER = SpacyNerTrainer()
