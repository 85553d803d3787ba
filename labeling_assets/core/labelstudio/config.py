"""Label Studio labeling configs and annotation results for single-label image classification.

Pure functions (no Label Studio or dagster import): the class list becomes a ``<Choices>`` config,
a class becomes an annotation/prediction ``result``, and a ``result`` becomes a class again.
"""

from collections.abc import Mapping, Sequence
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import quoteattr

FROM_NAME = "label"
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


def choices_label_config(classes: Sequence[str]) -> str:
    """A single-label image classification config: one ``<Choices choice="single">`` over ``classes``.

    Names are XML-escaped, so any class name (quotes, ``<``, ``&``) round-trips unchanged.
    """
    names = validate_classes(classes)
    choices = "\n".join(f"    <Choice value={quoteattr(name)}/>" for name in names)
    return (
        "<View>\n"
        f'  <Image name="{TO_NAME}" value="${DATA_KEY}"/>\n'
        f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" showInLine="true" required="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>"
    )


def choice_result(label: str) -> list[dict[str, Any]]:
    """The ``result`` list of an annotation or prediction that picks ``label``."""
    return [
        {
            "from_name": FROM_NAME,
            "to_name": TO_NAME,
            "type": "choices",
            "value": {"choices": [label]},
        }
    ]


def label_from_result(result: Sequence[Mapping[str, Any]] | None) -> str | list[str] | None:
    """The class chosen in an annotation ``result``: a name, a list when several were chosen, None if none."""
    chosen: list[str] = []
    for region in result or []:
        if region.get("type") == "choices" and region.get("from_name", FROM_NAME) == FROM_NAME:
            chosen.extend(str(c) for c in (region.get("value") or {}).get("choices", []))
    if not chosen:
        return None
    return chosen[0] if len(chosen) == 1 else chosen


def config_choices(config: str) -> list[str] | None:
    """The ``<Choice value>`` names of the ``<Choices name="label">`` tag of a config, in order; None when the
    config has no such tag or is not XML (then it is not ours to compare)."""
    try:
        root = ElementTree.fromstring(config)
    except ElementTree.ParseError:
        return None
    for choices in root.iter("Choices"):
        if choices.get("name") == FROM_NAME:
            return [str(choice.get("value")) for choice in choices.iter("Choice")]
    return None
