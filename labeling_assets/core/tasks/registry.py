"""The registered kinds of labeling task, by the name ``ProjectSettings.task_type`` gives.

A kind is imported when first asked for (``importlib``): asking for the training head of a kind does not import
its pandas-side parts, so ``core/training`` still runs on a bare GPU machine. Adding a kind is one line here
plus its package (CONTRIBUTING, "Adding a kind of task").

A kind trains either the image classifier through a training head (its package's ``training.HEAD``, and
``KIND.trainer`` None) or its own model through ``KIND.trainer`` (a ``KindTrainer``; no ``training`` module):
exactly one of the two.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from labeling_assets.core.tasks.kind import TaskKind, TrainingHead
    from labeling_assets.core.training.config import TrainConfig

# name -> the package holding ``kind.py`` (its ``KIND``) and ``training.py`` (its training head).
KINDS: dict[str, str] = {
    "single_label": "labeling_assets.core.tasks.single_label",
    "multi_label": "labeling_assets.core.tasks.multi_label",
    "boxes": "labeling_assets.core.tasks.boxes",
    "text_classes": "labeling_assets.core.tasks.text_classes",
    "text_class_sets": "labeling_assets.core.tasks.text_class_sets",
    "text_spans": "labeling_assets.core.tasks.text_spans",
    "audio_segments": "labeling_assets.core.tasks.audio_segments",
    "text_edits": "labeling_assets.core.tasks.text_edits",
}

# The parts the contract checks (also what CONTRIBUTING lists): attributes, then methods.
KIND_ATTRIBUTES = (
    "name", "consensus_methods", "export_formats", "export_note", "skip_reasons", "decision_thresholds",
    "gold_gate_rate", "gold_gate_threshold", "label_issue_model", "qa_view", "gold_accuracy_name", "test_metric",
)
KIND_METHODS = (
    "label_config", "owns_config", "read_answer", "answer_from_result", "answer_result",
    "votes", "valid_answers", "gold_score", "gold_gate", "gold_report", "consensus", "agreement",
    "classes_of", "consensus_report", "quality_inputs", "is_answer", "label_issue_inputs", "find_label_issues",
    "labeler_stats",
    "weekly_trend", "usable_labels", "assign_splits", "manifest", "dataset_card",
    "annotation_summary", "split_balance", "export",
    "split_deviations", "missing_from_splits", "missing_for_thresholds", "prediction", "informativeness",
    "review_model_line", "fit_baseline", "prediction_report", "test_scoring", "test_score", "test_report", "encode",
    "stored_targets", "parse_gold", "training_head",
)
# Present on every kind, None allowed: the kind's own model (None: the image classifier, through its training head).
OPTIONAL_ATTRIBUTES = ("trainer",)
HEAD_ATTRIBUTES = ("own_settings",)
HEAD_METHODS = (
    "check_labels", "class_weights", "loss", "sampling", "select_val", "val_tensor", "validate",
    "early_stopping_score", "probabilities", "thresholds",
)


class UnknownTaskKind(ValueError):
    """A task type no registered kind has."""


def _package(name: str) -> str:
    if name not in KINDS:
        raise UnknownTaskKind(f"unknown task_type {name!r}; expected one of {sorted(KINDS)}")
    return KINDS[name]


def missing_parts(candidate: object, parts: tuple[str, ...]) -> list[str]:
    """The parts ``candidate`` lacks (an attribute that is absent or None, a method that is not callable), but for
    :data:`OPTIONAL_ATTRIBUTES`, which must only be present."""
    missing = []
    for part in parts:
        value = getattr(candidate, part, None)
        if part in OPTIONAL_ATTRIBUTES:
            if not hasattr(candidate, part):
                missing.append(part)
        elif value is None or (part not in KIND_ATTRIBUTES + HEAD_ATTRIBUTES and not callable(value)):
            missing.append(part)
    return missing


def task_kind(name: str) -> TaskKind:
    """The kind a project's ``task_type`` names; a clear error for one that is not registered or incomplete, or
    that has both a training head and a trainer, or neither."""
    kind = _complete(name, "kind.KIND", KIND_ATTRIBUTES + OPTIONAL_ATTRIBUTES + KIND_METHODS, f"task kind {name!r}",
                     " (CONTRIBUTING, 'Adding a kind of task')")  # fmt: skip
    has_trainer = getattr(kind, "trainer", None) is not None
    if has_trainer == has_training_head(name):
        raise TypeError(f"task kind {name!r} has {'both' if has_trainer else 'neither'} a training head "
                        "(training.HEAD) and a trainer (KIND.trainer): it needs exactly one")  # fmt: skip
    return cast("TaskKind", kind)


def has_training_head(name: str) -> bool:
    """Whether the kind's package has a ``training`` module (its head), found without importing it (nor torch)."""
    return importlib.util.find_spec(f"{_package(name)}.training") is not None


def kind_of_config(config: str) -> TaskKind:
    """The kind whose answers a Label Studio config takes (the first registered kind that owns it); the first
    registered kind (single_label) for a config no kind owns (a project set up by hand)."""
    kinds = [task_kind(name) for name in KINDS]
    return next((kind for kind in kinds if kind.owns_config(config)), kinds[0])


def training_head(name: str) -> TrainingHead:
    """The training head of a kind, imported without the kind's pandas-side module; a clear error for a kind that
    trains its own model (``KIND.trainer``)."""
    if not has_training_head(name):
        raise TypeError(f"task kind {name!r} has no training head: it trains its own model (KIND.trainer)")
    head = _complete(name, "training.HEAD", HEAD_ATTRIBUTES + HEAD_METHODS, f"the training head of {name!r}")
    return cast("TrainingHead", head)


def tracked_params(config: TrainConfig) -> dict[str, Any]:
    """``config``'s parameters for experiment tracking, without the settings only other kinds' heads read (here,
    not in core/training: the heads import the training config, so the config cannot import the heads)."""
    others = {name for kind in KINDS if kind != config.task_kind and has_training_head(kind)
              for name in training_head(kind).own_settings}  # fmt: skip
    return config.to_params(leave_out=others)


def _complete(name: str, where: str, parts: tuple[str, ...], what: str, hint: str = "") -> object:
    """``where`` (``module.NAME`` in the kind's package), imported and checked for every one of ``parts``."""
    module, attribute = where.rsplit(".", 1)
    value: object = getattr(importlib.import_module(f"{_package(name)}.{module}"), attribute)
    missing = missing_parts(value, parts)
    if missing:
        raise TypeError(f"{what} lacks {', '.join(missing)}{hint}")
    return value
