"""Label Studio labeling configs and annotation results for image classification.

Pure functions (no Label Studio or dagster import): a :class:`ConfigLayout` (classes, one choice or several, a
"None of these" choice) becomes a ``<Choices>`` config and back, a class (or a set of classes) becomes an
annotation/prediction ``result``. Which layout a project gets, and what its answers mean, is its kind of task's
(``TaskKind.label_config``, ``TaskKind.read_answer``, ``TaskKind.owns_config``): nothing here asks the task type.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import quoteattr

from labeling_assets.core.label_sets import NONE_OF_THESE
from labeling_assets.core.labelstudio.answers import FROM_NAME

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


@dataclass(frozen=True)
class ConfigLayout:
    """What a config asks of a person: the classes in order, checkboxes or one choice, and "None of these"."""

    classes: list[str]
    multiple: bool = False
    none_choice: bool = False


def choices_label_config(classes: Sequence[str]) -> str:
    """A one-choice image classification config over ``classes`` (checked by :func:`validate_classes`)."""
    return render_choices(ConfigLayout(validate_classes(classes)))


def render_choices(layout: ConfigLayout, *, shown: str = "Image", to_name: str = TO_NAME) -> str:
    """The config of ``layout``: one ``<Choices>`` over its classes (``choice="multiple"`` when several may be
    chosen), then ``NONE_OF_THESE`` when it has that choice. Names are XML-escaped, so any class name (quotes,
    ``<``, ``&``) round-trips unchanged. ``shown``: the object tag the choices are about (``Text`` for a text
    kind: ``<Text name="text" value="$text">`` with ``to_name`` "text")."""
    names = [*layout.classes, NONE_OF_THESE] if layout.none_choice else layout.classes
    choices = "\n".join(f"    <Choice value={quoteattr(name)}/>" for name in names)
    mode = "multiple" if layout.multiple else "single"
    return (
        "<View>\n"
        f'  <{shown} name="{to_name}" value="${to_name}"/>\n'
        f'  <Choices name="{FROM_NAME}" toName="{to_name}" choice="{mode}" showInLine="true" required="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>"
    )


def choice_result(label: str | Sequence[str], *, to_name: str = TO_NAME) -> list[dict[str, Any]]:
    """The ``result`` list of an annotation or prediction that picks ``label`` (about the object ``to_name``).

    A list picks several choices (multi-label); the empty list picks ``NONE_OF_THESE``.
    """
    chosen = [label] if isinstance(label, str) else [str(c) for c in label] or [NONE_OF_THESE]
    return [
        {
            "from_name": FROM_NAME,
            "to_name": to_name,
            "type": "choices",
            "value": {"choices": chosen},
        }
    ]


def control_tag(config: str, tag: str, *, on: str | None = None) -> ElementTree.Element | None:
    """Our control tag in a labeling config: its first ``<tag name="label">`` (with ``on``: whose ``toName``
    names an ``<on>`` object tag); None when the config has none or is not XML (then it is not ours to read).
    Every kind of task reads its classes from it."""
    try:
        root = ElementTree.fromstring(config)
    except ElementTree.ParseError:
        return None
    objects = None if on is None else {str(t.get("name")) for t in root.iter(on)}
    for found in root.iter(tag):
        if found.get("name") == FROM_NAME and (objects is None or found.get("toName") in objects):
            return found
    return None

def about_text(config: str) -> bool:
    """Whether the config's ``<Choices name="label">`` is about a ``<Text>`` (a text kind's), not an image."""
    return control_tag(config, "Choices", on="Text") is not None


def config_layout(config: str) -> ConfigLayout | None:
    """The layout of the ``<Choices name="label">`` tag of a config; None when the config has no such tag or is
    not XML (then it is not ours to compare). In a multi-choice config ``NONE_OF_THESE`` is the empty-set
    choice, not a class."""
    choices = control_tag(config, "Choices")
    if choices is None:
        return None
    names = [str(choice.get("value")) for choice in choices.iter("Choice")]
    several = choices.get("choice") == "multiple"  # Label Studio: single | single-radio | multiple
    if several and NONE_OF_THESE in names:
        return ConfigLayout([n for n in names if n != NONE_OF_THESE], True, True)
    return ConfigLayout(names, several, False)


def config_choices(config: str) -> list[str] | None:
    """The class names of the ``<Choices name="label">`` tag of a config, in order (a multi-choice config's
    ``NONE_OF_THESE`` is not a class); None when the config has no such tag or is not XML (then it is not ours
    to compare)."""
    layout = config_layout(config)
    return None if layout is None else layout.classes
