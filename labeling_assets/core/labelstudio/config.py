"""Label Studio labeling configs and annotation results for image classification, single- or multi-label.

Pure functions (no Label Studio or dagster import): the class list becomes a ``<Choices>`` config,
a class (or a set of classes) becomes an annotation/prediction ``result``, and a ``result`` becomes a label again.

Multi-label (``task_type: multi_label``): ``<Choices choice="multiple">`` (checkboxes) plus, when the project
allows the empty set, an explicit :data:`~labeling_assets.core.label_sets.NONE_OF_THESE` choice, so "no finding"
is an answer a person gives rather than a task left blank. A multi-label answer is a sorted list of class names;
"None of these" alone is the empty list.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import quoteattr

from labeling_assets.core.label_sets import NONE_OF_THESE
from labeling_assets.core.labelstudio.answers import FROM_NAME, read_answer

TO_NAME = "image"
DATA_KEY = "image"


class LabelConfigError(ValueError):
    """The class list cannot become a label config (empty, blank or duplicate names)."""


def validate_classes(classes: Sequence[str]) -> list[str]:
    """The class list, checked: at least two non-blank names, no duplicates (case-sensitive)."""
    names = [str(c) for c in classes]
    if len(names) < 2:
        raise LabelConfigError(f"need at least two classes for classification, got {names!r}")
    blank = [i for i, name in enumerate(names) if not name.strip()]
    if blank:
        raise LabelConfigError(f"class names must not be blank (positions {blank})")
    seen: set[str] = set()
    dupes = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if dupes:
        raise LabelConfigError(f"duplicate class names: {dupes}")
    return names


def choices_label_config(classes: Sequence[str], multi_label: bool = False, allow_empty: bool = True) -> str:
    """An image classification config: one ``<Choices>`` over ``classes``.

    Single-label (the default): ``choice="single"``. Multi-label: ``choice="multiple"``, plus a last
    ``NONE_OF_THESE`` choice when ``allow_empty`` (a class of that name is refused: it would read as the
    empty set). Names are XML-escaped, so any class name (quotes, ``<``, ``&``) round-trips unchanged.
    """
    names = validate_classes(classes)
    if multi_label and NONE_OF_THESE in names:
        raise LabelConfigError(
            f"a class is named {NONE_OF_THESE!r}, the multi-label choice that means the empty set: rename that class"
        )
    shown = [*names, NONE_OF_THESE] if multi_label and allow_empty else names
    choices = "\n".join(f"    <Choice value={quoteattr(name)}/>" for name in shown)
    mode = "multiple" if multi_label else "single"
    return (
        "<View>\n"
        f'  <Image name="{TO_NAME}" value="${DATA_KEY}"/>\n'
        f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="{mode}" showInLine="true" required="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>"
    )


def choice_result(label: str | Sequence[str]) -> list[dict[str, Any]]:
    """The ``result`` list of an annotation or prediction that picks ``label``.

    A list picks several choices (multi-label); the empty list picks ``NONE_OF_THESE``.
    """
    chosen = [label] if isinstance(label, str) else [str(c) for c in label] or [NONE_OF_THESE]
    return [
        {
            "from_name": FROM_NAME,
            "to_name": TO_NAME,
            "type": "choices",
            "value": {"choices": chosen},
        }
    ]


def label_from_result(result: Any, multi_label: bool = False) -> str | list[str] | None:
    """The label chosen in an annotation ``result``; None when it holds none (nothing chosen, or a shape that is
    not an answer: :func:`answers.read_answer` says why).

    Single-label: a name, or a list (in the order chosen) when several were chosen. Multi-label: always a
    sorted list without duplicates; ``NONE_OF_THESE`` alone is ``[]``. ``NONE_OF_THESE`` chosen together with
    classes is kept as it came (the sorted list still holds the none string): the store never drops what a
    person answered, and consensus skips it as a vote (``label_sets.SKIP_NONE_WITH_CLASSES``).
    """
    return read_answer(result, multi_label).label


@dataclass(frozen=True)
class ConfigLayout:
    """What a config asks of a person: the classes in order, checkboxes or one choice, and "None of these"."""

    classes: list[str]
    multi_label: bool = False
    none_choice: bool = False


def wanted_layout(
    classes: Sequence[str], multi_label: bool = False, allow_empty: bool = True
) -> ConfigLayout:
    """The layout :func:`choices_label_config` builds for these settings."""
    return ConfigLayout([str(c) for c in classes], multi_label, multi_label and allow_empty)


def config_layout(config: str) -> ConfigLayout | None:
    """The layout of the ``<Choices name="label">`` tag of a config; None when the config has no such tag or is
    not XML (then it is not ours to compare). In a multi-choice config ``NONE_OF_THESE`` is the empty-set
    choice, not a class."""
    try:
        root = ElementTree.fromstring(config)
    except ElementTree.ParseError:
        return None
    for choices in root.iter("Choices"):
        if choices.get("name") == FROM_NAME:
            names = [str(choice.get("value")) for choice in choices.iter("Choice")]
            multi = choices.get("choice") == "multiple"  # Label Studio: single | single-radio | multiple
            if multi and NONE_OF_THESE in names:
                return ConfigLayout([n for n in names if n != NONE_OF_THESE], True, True)
            return ConfigLayout(names, multi, False)
    return None


def is_multi_label_config(config: str) -> bool:
    """True when a config's ``<Choices name="label">`` takes several choices (``choice="multiple"``)."""
    layout = config_layout(config)
    return layout is not None and layout.multi_label


def config_choices(config: str) -> list[str] | None:
    """The class names of the ``<Choices name="label">`` tag of a config, in order (a multi-choice config's
    ``NONE_OF_THESE`` is not a class); None when the config has no such tag or is not XML (then it is not ours
    to compare)."""
    layout = config_layout(config)
    return None if layout is None else layout.classes
