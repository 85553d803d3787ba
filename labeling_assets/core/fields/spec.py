"""Extra answer fields: what a project asks besides its kind's own answer, as Label Studio controls and back.

A field is declared in the settings (``ProjectSettings.extra_fields``, JSON) with a kind: ``choice`` (one of its
options), ``choices`` (any of them: quality flags) or ``rating`` (1..N stars). The labeler's own confidence is a
rating field named :data:`SELF_CONFIDENCE` (``ProjectSettings.ask_self_confidence``). The controls go after the
kind's own in the labeling config (:func:`with_field_controls`), about the same object (the image or the text), so
the kind's control keeps its name and reading: every kind's reader ignores regions of other names
(``answers.read_choices``), and :func:`read_fields` reads only regions of the fields' names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from xml.etree import ElementTree
from xml.sax.saxutils import quoteattr

FieldKind = Literal["choice", "choices", "rating"]
FIELD_KINDS: tuple[str, ...] = ("choice", "choices", "rating")
SELF_CONFIDENCE = "self_confidence"
SELF_CONFIDENCE_MAX = 5
DEFAULT_MAX_RATING = 5
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# Names a field cannot take: the kinds' controls and object tags, and the export's own columns.
RESERVED = frozenset({"label", "no_object", "no_entity", "image", "text", "split", "item_id", "image_path",
                      "votes", "votes_html", "context", "id"})  # fmt: skip
_OBJECT_TAGS = ("Image", "Text", "HyperText")


class FieldSpecError(ValueError):
    """The extra fields' settings cannot be used (one line naming the field and what is wrong)."""


@dataclass(frozen=True)
class FieldSpec:
    """One extra field: ``options`` for choice/choices, ``max_rating`` for a rating; ``required``: Label Studio
    will not submit an answer without it."""

    name: str
    kind: FieldKind
    options: tuple[str, ...] = ()
    max_rating: int = DEFAULT_MAX_RATING
    required: bool = False

    def __post_init__(self) -> None:
        where = f"extra field {self.name!r}"
        if not _NAME.match(self.name) or self.name in RESERVED or self.name.startswith("label_"):
            raise FieldSpecError(f"{where}: a name is lower-case a-z, 0-9 and _, starts with a letter, and is not "
                                 f"one of {sorted(RESERVED)} nor label_*")  # fmt: skip
        if self.kind not in FIELD_KINDS:
            raise FieldSpecError(f"{where}: kind {self.kind!r}, expected one of {', '.join(FIELD_KINDS)}")
        if self.kind == "rating":
            if self.options:
                raise FieldSpecError(f"{where}: a rating has no options (it has max_rating)")
            if not 2 <= self.max_rating <= 10:
                raise FieldSpecError(f"{where}: max_rating {self.max_rating}, expected 2..10")
            return
        names = [str(o) for o in self.options]
        if len(names) < 2 or any(not o.strip() for o in names) or len(set(names)) != len(names):
            raise FieldSpecError(f"{where}: needs at least two distinct, non-blank options, got {names!r}")


def self_confidence_field() -> FieldSpec:
    """The labeler's own confidence: 1 (a guess) to 5 (sure), optional."""
    return FieldSpec(SELF_CONFIDENCE, "rating", max_rating=SELF_CONFIDENCE_MAX)


def parse_fields(text: str | None, *, self_confidence: bool = False) -> tuple[FieldSpec, ...]:
    """The fields of a JSON list of ``{"name", "kind", "options"?, "max_rating"?, "required"?}`` (empty text:
    none), then the self-confidence rating when asked for. Raises :class:`FieldSpecError` in one line."""
    raw: Any = json.loads(text) if text and text.strip() else []
    if not isinstance(raw, list):
        raise FieldSpecError(f"extra fields: a JSON list of objects, got a {type(raw).__name__}")
    fields: list[FieldSpec] = []
    for n, entry in enumerate(raw):
        if not isinstance(entry, Mapping) or "name" not in entry:
            raise FieldSpecError(f"extra fields: entry {n} is not an object with a name")
        unknown = sorted(set(entry) - {"name", "kind", "options", "max_rating", "required"})
        if unknown:
            raise FieldSpecError(f"extra field {entry['name']!r}: unknown keys {unknown}")
        options = entry.get("options") or ()
        if not isinstance(options, list | tuple):
            raise FieldSpecError(f"extra field {entry['name']!r}: options must be a list")
        fields.append(FieldSpec(str(entry["name"]), entry.get("kind", "choice"), tuple(str(o) for o in options),
                                int(entry.get("max_rating", DEFAULT_MAX_RATING)), bool(entry.get("required", False))))  # fmt: skip
    if self_confidence and SELF_CONFIDENCE not in {f.name for f in fields}:
        fields.append(self_confidence_field())
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise FieldSpecError(f"extra fields: duplicate names in {names}")
    return tuple(fields)


def _control(spec: FieldSpec, to_name: str) -> str:
    required = ' required="true"' if spec.required else ""
    if spec.kind == "rating":
        return f'  <Header value={quoteattr(spec.name.replace("_", " "))}/>\n' \
               f'  <Rating name="{spec.name}" toName="{to_name}" maxRating="{spec.max_rating}"{required}/>\n'  # fmt: skip
    mode = "multiple" if spec.kind == "choices" else "single"
    choices = "".join(f"    <Choice value={quoteattr(o)}/>\n" for o in spec.options)
    return (f'  <Header value={quoteattr(spec.name.replace("_", " "))}/>\n'
            f'  <Choices name="{spec.name}" toName="{to_name}" choice="{mode}" showInLine="true"{required}>\n'
            f"{choices}  </Choices>\n")  # fmt: skip


def object_name(config: str) -> str:
    """The name of the object tag a config shows its item in (the first ``<Image>`` or ``<Text>``)."""
    root = ElementTree.fromstring(config)
    for tag in root.iter():
        if tag.tag in _OBJECT_TAGS[:2] and tag.get("name"):
            return str(tag.get("name"))
    raise FieldSpecError("the labeling config shows no <Image> or <Text> for the extra fields to be about")


def with_field_controls(config: str, fields: Sequence[FieldSpec]) -> str:
    """``config`` (a kind's ``label_config``) with one control per field before its closing ``</View>``, about the
    same object as the kind's control. No fields: ``config`` unchanged (every existing project keeps its config)."""
    if not fields:
        return config
    to_name = object_name(config)
    at = config.rstrip().rfind("</View>")
    if at < 0:
        raise FieldSpecError("the labeling config has no closing </View>")
    body = config[:at].rstrip("\n") + "\n"
    return body + "".join(_control(f, to_name) for f in fields) + config[at:]


def config_fields(config: str) -> tuple[tuple[str, str, tuple[str, ...], int], ...] | None:
    """The field controls of a config, comparable with another config's (name, tag, options, maxRating), in
    order; None when the config is not XML. The kinds' own controls are not fields."""
    try:
        root = ElementTree.fromstring(config)
    except ElementTree.ParseError:
        return None
    out = []
    for tag in root.iter():
        name = tag.get("name")
        if tag.tag in ("Choices", "Rating") and name and name not in RESERVED:
            options = tuple(str(c.get("value")) for c in tag.iter("Choice"))
            out.append((str(name), f"{tag.tag}:{tag.get('choice', '')}", options, int(tag.get("maxRating", 0) or 0)))
    return tuple(out)


def read_fields(result: Any, fields: Sequence[str] | None = None) -> dict[str, Any]:
    """The extra fields answered in an annotation ``result``: name -> sorted list of chosen options (``Choices``)
    or an int (``Rating``). Regions of the kinds' controls (:data:`RESERVED`) are not fields; with ``fields``, only
    those names. Any malformed region is skipped (the kind's answer is read and judged on its own)."""
    out: dict[str, Any] = {}
    if not isinstance(result, list):
        return out
    for region in result:
        if not isinstance(region, Mapping):
            continue
        name, value = region.get("from_name"), region.get("value")
        if not isinstance(name, str) or name in RESERVED or not isinstance(value, Mapping):
            continue
        if fields is not None and name not in fields:
            continue
        if region.get("type") == "rating" and isinstance(value.get("rating"), int | float):
            out[name] = int(value["rating"])
        elif region.get("type") == "choices" and isinstance(value.get("choices"), list):
            chosen = sorted({c for c in value["choices"] if isinstance(c, str)})
            if chosen:
                out[name] = chosen
    return out


def field_result(answers: Mapping[str, Any], to_name: str) -> list[dict[str, Any]]:
    """Label Studio result regions that answer the fields (a str or list for choices, an int for a rating): what
    a labeler's answer holds besides the kind's own regions (the simulated crowd posts them)."""
    regions: list[dict[str, Any]] = []
    for name, value in answers.items():
        if isinstance(value, int):
            regions.append({"from_name": name, "to_name": to_name, "type": "rating", "value": {"rating": value}})
        else:
            chosen = [value] if isinstance(value, str) else [str(v) for v in value]
            regions.append({"from_name": name, "to_name": to_name, "type": "choices", "value": {"choices": chosen}})
    return regions
