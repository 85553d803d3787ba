"""An annotation's ``result`` read as an answer, whatever shape Label Studio stored.

Label Studio validates a result only partly: ``POST /api/tasks/{id}/annotations/`` with a region whose
``value`` is a string answers 500 but stores the annotation (1.23.2), and its export then holds it for every
later sync. So nothing here trusts the shape: :func:`read_answer` returns the label, or no label and the
reason (one of the ``UNREADABLE_*`` keys) with a short description. The sync stores such an answer with its
reason (``unreadable_answers``, m017) and consensus skips it as a vote; no shape raises.

What the choices mean (one class, a set of classes) is the project's kind of task:
``TaskKind.read_answer`` reads them from :func:`read_choices`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from labeling_assets.core.errors import one_line

FROM_NAME = "label"  # the <Choices name> of our configs (config.py re-exports it)

# Why a result holds no label (keys of SyncReport.unreadable and unreadable_answers.reason).
UNREADABLE_NULL = "result_null"  # result is null
UNREADABLE_EMPTY = "result_empty"  # [] or no region of our choices tag, or a region choosing nothing
UNREADABLE_NOT_A_LIST = "result_not_a_list"  # result is an object, a string, a number
UNREADABLE_REGION = "region_not_an_object"  # an entry of the result list is not an object
UNREADABLE_TYPE = "unknown_result_type"  # a region of our tag whose type is not "choices" (or missing)
UNREADABLE_VALUE = "value_not_an_object"  # a region's value is missing or not an object
UNREADABLE_CHOICES = "choices_not_a_list"  # value.choices is missing or not a list
UNREADABLE_CHOICE = "choice_not_text"  # a chosen entry is not a string
UNREADABLE_REASONS = (
    UNREADABLE_NULL, UNREADABLE_EMPTY, UNREADABLE_NOT_A_LIST, UNREADABLE_REGION, UNREADABLE_TYPE,
    UNREADABLE_VALUE, UNREADABLE_CHOICES, UNREADABLE_CHOICE,
)  # fmt: skip

DETAIL_CHARS = 200  # a description's bound: it reaches logs and metadata, the raw result stays in the store


@dataclass(frozen=True)
class Answer:
    """One result read: ``label`` when it holds one, else ``problem`` (an ``UNREADABLE_*`` key) and ``detail``."""

    label: str | list[str] | None
    problem: str | None = None
    detail: str = ""


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _bad(problem: str, detail: str) -> Answer:
    return Answer(None, problem, one_line(detail.replace("\x00", " "), DETAIL_CHARS))


def read_choices(result: Any) -> Answer:
    """The choices made in an annotation ``result`` of any shape (``label``: a non-empty list, in the order
    chosen), or why there are none.

    Regions of other tags (another ``from_name``: a config edited by hand) are not ours and are ignored; a
    region of our tag must be ``{"type": "choices", "value": {"choices": [str, ...]}}``. What the choices mean
    is the kind's (``TaskKind.read_answer``): one class, or a set of classes.
    """
    if result is None:
        return _bad(UNREADABLE_NULL, "the result is null")
    if not isinstance(result, list):
        return _bad(UNREADABLE_NOT_A_LIST, f"the result is a {_kind(result)}, not a list of regions")
    chosen: list[str] = []
    for n, region in enumerate(result):
        if not isinstance(region, Mapping):
            return _bad(UNREADABLE_REGION, f"region {n} is a {_kind(region)}, not an object")
        if region.get("from_name", FROM_NAME) != FROM_NAME:
            continue
        if region.get("type") != "choices":
            return _bad(UNREADABLE_TYPE, f"region {n} has type {str(region.get('type'))[:40]!r}, not 'choices'")
        value = region.get("value")
        if not isinstance(value, Mapping):
            return _bad(UNREADABLE_VALUE, f"region {n}: value is a {_kind(value)}, not an object")
        choices = value.get("choices")
        if not isinstance(choices, list):
            return _bad(UNREADABLE_CHOICES, f"region {n}: value.choices is a {_kind(choices)}, not a list")
        for choice in choices:
            if not isinstance(choice, str):
                return _bad(UNREADABLE_CHOICE, f"region {n}: a choice is a {_kind(choice)}, not text")
        chosen.extend(choices)
    if not chosen:
        return _bad(UNREADABLE_EMPTY, "nothing chosen" if result else "the result is empty")
    return Answer(chosen)
