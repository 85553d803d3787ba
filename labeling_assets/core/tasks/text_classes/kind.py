"""Text classification: the class kinds (``single_label``, ``multi_label``) on texts instead of images.

Answers, votes, consensus (the Dawid-Skene family of each), gold, agreement, labeler statistics, splits, manifests
and the test-split metrics are the class kinds' own, inherited and not copied: a stored answer is a class name
(``text_classes``) or a sorted list of names (``text_class_sets``), as for images. What differs is here, in one
mixin over both: the config shows a ``<Text>`` with the choices; the model is TF-IDF + logistic regression
(``trainer.py``, a ``KindTrainer``: no image classifier, no pixel baseline); label issues score the consensus
with a cross-validated model on TF-IDF features; exports write the text (``export.py``: JSONL, CSV, Parquet, a
Hugging Face ``DatasetDict`` and spaCy ``DocBin`` files with ``doc.cats``). A kind is chosen from ``task_type`` alone, so one class or a set per text are two
task types, as they are for images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labeling_assets.core.ingest.text import read_texts
from labeling_assets.core.labelstudio.config import about_text, config_layout, render_choices
from labeling_assets.core.tasks.kind import ItemMedia, KindTrainer, TestSplitReport, TrainingHead
from labeling_assets.core.tasks.multi_label.kind import MultiLabel
from labeling_assets.core.tasks.single_label.kind import SingleLabel
from labeling_assets.core.tasks.text_classes import trainer as text_trainer
from labeling_assets.core.tasks.text_classes.export import TEXT_CLASS_FORMATS, export_text_classes
from labeling_assets.core.training.types import AnyArray

TEXT_NAME = "text"  # the <Text name>, and the task data key holding the text
ISSUE_FEATURES = 2000  # TF-IDF terms the label-issue model reads


def as_matrix(probs: Any) -> AnyArray:
    """A model's outputs as an (n, K) array: as they are, or a 1-d object array of ``{class: p}`` (a trainer's
    ``predict``, in class-list order) stacked."""
    array = np.asarray(probs)
    if array.dtype != object:
        return array
    return np.asarray([list(p.values()) for p in array], dtype=np.float64).reshape(len(array), -1)


def tfidf_features(uris: Sequence[str], size: int = ISSUE_FEATURES) -> AnyArray:
    """Dense TF-IDF features of the stored texts (an unreadable one: a row of zeros)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts, _ = read_texts(list(uris))
    vectorizer = TfidfVectorizer(sublinear_tf=True, max_features=size)
    try:
        return np.asarray(vectorizer.fit_transform([t or "" for t in texts]).toarray(), dtype=np.float32)
    except ValueError:  # no term at all (every text empty or unreadable)
        return np.zeros((len(texts), 1), dtype=np.float32)


class _OnText:
    """What the text class kinds change of a class kind (listed before it among the bases)."""

    multiple: bool
    trainer: KindTrainer | None
    export_formats: tuple[str, ...] = TEXT_CLASS_FORMATS
    export_note = (
        "an ImageFolder tree holds images; a text dataset exports jsonl, csv, parquet, hf_datasets (a Hugging "
        "Face DatasetDict) or spacy (a DocBin per split, the answer in doc.cats)."
    )
    label_issue_model = "logistic regression on TF-IDF features"

    def label_config(self, classes: Sequence[str], allow_empty: bool = True) -> str:
        """The class kind's choices, about a ``<Text name="text" value="$text">``."""
        layout = config_layout(super().label_config(classes, allow_empty))  # type: ignore[misc]
        assert layout is not None
        return render_choices(layout, shown="Text", to_name=TEXT_NAME)

    def owns_config(self, config: str) -> bool:
        """Our choices about a ``<Text>``, one choice or several as this kind takes."""
        layout = config_layout(config)
        return layout is not None and layout.multiple == self.multiple and about_text(config)

    def prediction(
        self, probs: Mapping[str, float], model_version: str | None, *, allow_empty: bool = True,
        thresholds: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        """The class kind's pre-label, about the text."""
        found: dict[str, Any] = super().prediction(  # type: ignore[misc]
            probs, model_version, allow_empty=allow_empty, thresholds=thresholds
        )
        found["result"] = [{**region, "to_name": TEXT_NAME} for region in found["result"]]
        return found

    def answer_result(self, answer: Any, media: ItemMedia) -> list[dict[str, Any]] | None:
        """The class kind's choices, about the text."""
        found: list[dict[str, Any]] | None = super().answer_result(answer, media)  # type: ignore[misc]
        return None if found is None else [{**region, "to_name": TEXT_NAME} for region in found]

    def label_issue_inputs(
        self, store: Any, item_ids: list[str], uris: list[str], *, feature_size: int, n_folds: int
    ) -> tuple[Any, str]:
        """TF-IDF features of the stored texts, for the cross-validated model."""
        source = (f"{n_folds}-fold cross-validated {self.label_issue_model} (up to {ISSUE_FEATURES} terms; every text "
                  "scored by a model that never saw it)")  # fmt: skip
        return tfidf_features(uris), source

    def fit_baseline(self, store: Any, classes: list[str], size: int) -> tuple[Any, str]:
        """None: the pixel baseline reads images; a text project's pre-labels come from its trained model."""
        return None, "no baseline for texts (the pixel baseline reads images): train the TF-IDF model first"

    def export(self, rows: pd.DataFrame, out_dir: Any, formats: list[str], classes: list[str]) -> Any:
        """JSONL, CSV, Parquet, a ``DatasetDict`` and a spaCy ``DocBin`` per split of the texts (``export.py``)."""
        return export_text_classes(rows, Path(out_dir), formats, classes, multiple=self.multiple)

    def test_score(self, probs: Any, truth: Any, thresholds: list[float] | None) -> float:
        """The class kind's score, on the model's outputs stacked (:func:`as_matrix`)."""
        return float(super().test_score(as_matrix(probs), truth, thresholds))  # type: ignore[misc]

    def test_report(
        self, answers: Any, probs: Any, failed: list[int], classes: list[str], thresholds: list[float] | None,
        *, model: str, ece_bins: int,
    ) -> TestSplitReport:
        report: TestSplitReport = super().test_report(  # type: ignore[misc]
            answers, as_matrix(probs), failed, classes, thresholds, model=model, ece_bins=ece_bins
        )
        return report

    def stored_targets(self, store: Any, item_ids: list[str], labels: Any, classes: list[str]) -> Any:
        """None: the TF-IDF model trains on the consensus answers, weighted by their confidence."""
        return None

    def training_head(self) -> TrainingHead:
        raise NotImplementedError(
            "text classes train TF-IDF + logistic regression through the kind's trainer (KIND.trainer), not the "
            "image classifier's training head"
        )


class TextClasses(_OnText, SingleLabel):
    """One class per text."""

    name = "text_classes"
    multiple = False
    trainer: KindTrainer | None = text_trainer.SINGLE


class TextClassSets(_OnText, MultiLabel):
    """A set of classes per text ("none of these" an answer when the project allows it)."""

    name = "text_class_sets"
    multiple = True
    trainer: KindTrainer | None = text_trainer.SETS


KIND = TextClasses()
