"""Task types and label sets: what a multi-label answer is, shared by every stage.

A single-label project stores one class name per annotation. A multi-label project
(``task_type: multi_label``, ChestX-ray14 style: several findings per image, often none) stores a
sorted JSON list of class names; the explicit "none of these" choice in Label Studio is stored as the
empty list. Pure functions (no dagster, no Label Studio import).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from labeling_assets.core.tasks.kind import TaskKind

TaskType = Literal[
    "single_label", "multi_label", "boxes", "text_classes", "text_class_sets", "text_spans", "audio_segments",
    "text_edits",
]
SINGLE_LABEL: TaskType = "single_label"
MULTI_LABEL: TaskType = "multi_label"
BOXES: TaskType = "boxes"
TEXT_CLASSES: TaskType = "text_classes"
TEXT_CLASS_SETS: TaskType = "text_class_sets"
TEXT_SPANS: TaskType = "text_spans"
AUDIO_SEGMENTS: TaskType = "audio_segments"
TEXT_EDITS: TaskType = "text_edits"
TASK_TYPES: tuple[TaskType, ...] = (
    SINGLE_LABEL, MULTI_LABEL, BOXES, TEXT_CLASSES, TEXT_CLASS_SETS, TEXT_SPANS, AUDIO_SEGMENTS, TEXT_EDITS
)

# The Label Studio choice a person picks for "no finding": stored as the empty set, never as a class.
NONE_OF_THESE = "None of these"

# Why a stored multi-label answer is not a vote (the annotation stays stored; keys of Votes.skipped).
SKIP_NOT_A_SET = "not_a_set"  # a bare class name (or anything but a list) in a multi-label project
SKIP_UNKNOWN_IN_SET = "class_not_in_project"  # same key as the single-label reason: one vocabulary
SKIP_EMPTY_NOT_ALLOWED = "empty_set_not_allowed"  # [] where the project offers no "none of these"
SKIP_NONE_WITH_CLASSES = "none_with_classes"  # "none of these" chosen together with findings
# A stored answer with no label (a result Label Studio kept in a shape that holds none; the sync stores its reason
# in ``unreadable_answers``): single- and multi-label alike.
SKIP_UNREADABLE = "unreadable_answer"


class LabelSetError(ValueError):
    """A value cannot be a label set of the project; ``reason`` is one of the SKIP_* keys."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def shown_label(value: Any) -> str:
    """A label as a person reads it in a table: a set's classes joined ("1, 7"; "None of these" for the empty
    set), a single class as itself. Never a Python list repr like ['1', '7']."""
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) or NONE_OF_THESE
    return str(value)


def label_set(value: Any, classes: Sequence[str], *, allow_empty: bool = True) -> list[str]:
    """A stored multi-label answer as a sorted list of class names, validated against ``classes``.

    ``[]`` (or ``[NONE_OF_THESE]``) is the empty set, allowed unless ``allow_empty`` is False.
    Raises :class:`LabelSetError` with the reason it is not a vote.
    """
    if value is None or (isinstance(value, float) and value != value):  # NaN: how pandas spells a missing one
        raise LabelSetError(SKIP_UNREADABLE, "the answer holds no label (unreadable_answers says why)")
    if not isinstance(value, list | tuple):
        raise LabelSetError(SKIP_NOT_A_SET, f"expected a list of classes, got {value!r}")
    names = [str(v) for v in value]
    if NONE_OF_THESE in names:
        if len(set(names)) > 1:
            raise LabelSetError(SKIP_NONE_WITH_CLASSES, f"{NONE_OF_THESE!r} chosen together with {names!r}")
        names = []
    unknown = sorted(set(names) - set(classes))
    if unknown:
        raise LabelSetError(SKIP_UNKNOWN_IN_SET, f"classes not in the project: {unknown}")
    if not names and not allow_empty:
        raise LabelSetError(SKIP_EMPTY_NOT_ALLOWED, "an empty set, but this project has no 'none of these'")
    return sorted(set(names))


def to_indicator(sets: Iterable[Sequence[str]], classes: Sequence[str]) -> NDArray[np.uint8]:
    """Label sets as an ``(n, K)`` 0/1 uint8 matrix, columns in ``classes`` order (unknown names ignored)."""
    index = {name: k for k, name in enumerate(classes)}
    rows = list(sets)
    matrix = np.zeros((len(rows), len(classes)), dtype=np.uint8)
    for i, names in enumerate(rows):
        for name in names:
            k = index.get(str(name))
            if k is not None:
                matrix[i, k] = 1
    return matrix


def from_indicator(matrix: NDArray[np.generic], classes: Sequence[str]) -> list[list[str]]:
    """The inverse of :func:`to_indicator`: each row's classes with a nonzero entry, sorted."""
    return [sorted(str(classes[k]) for k in np.flatnonzero(row)) for row in np.asarray(matrix)]


def outside_class_list(kind: TaskKind, label: Any, classes: Sequence[str]) -> bool:
    """Whether a stored label names a class outside ``classes`` as ``kind`` reads it (``classes_of``: a set's
    classes, a box answer's boxes' classes), or names none and is no answer of the kind either (the empty set and
    "No object" are answers)."""
    names = kind.classes_of(label)
    allowed = {str(c) for c in classes}
    return any(str(n) not in allowed for n in names) or (not names and not kind.is_answer(label, classes))
