"""Class schema changes: renaming, merging and splitting classes as declared, versioned events.

A rename (``cat -> feline``) or a merge (``husky, malamute -> dog``) keeps every answer: the stored annotation
stays as given (append-only) and is read through the mapping, so votes, gold answers, adjudications and consensus
name the new class. A split (``bird -> sparrow, crow``) cannot be read through (which part an old ``bird`` answer
meant is unknown), so those answers stop counting and their items go back to labelers through the re-queue path.

Declared next to the class list (``ProjectSettings.class_changes``, ``$LABELING_ASSETS_CLASS_CHANGES``):
``rename cat->feline; merge husky,malamute->dog; split bird->sparrow,crow``. Pure (no store, no dagster).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from labeling_assets.core.errors import ConfigurationError

RENAME: Final = "rename"
MERGE: Final = "merge"
SPLIT: Final = "split"
CHANGE_KINDS: Final = (RENAME, MERGE, SPLIT)
# vote_retractions.reason of an answer naming a class that was split
CLASS_SPLIT: Final = "class_split"


class ClassSchemaError(ConfigurationError, ValueError):
    """A class change declaration that cannot be applied (one line naming the change and what is wrong): a setting
    to fix, so a run fails with this line and records nothing."""


@dataclass(frozen=True)
class ClassChange:
    """One declared change: ``change`` (rename | merge | split) from ``sources`` to ``targets``."""

    change: str
    sources: tuple[str, ...]
    targets: tuple[str, ...]

    @property
    def text(self) -> str:
        """The change as it is declared: ``merge husky,malamute->dog``."""
        return f"{self.change} {','.join(self.sources)}->{','.join(self.targets)}"

    @property
    def retired(self) -> tuple[str, ...]:
        """The class names this change takes out of the class list (a merge may keep its target among its sources)."""
        return tuple(s for s in self.sources if s not in self.targets)


def _names(text: str, where: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(","))
    if not names or any(not n for n in names):
        raise ClassSchemaError(f"{where}: an empty class name")
    if len(set(names)) != len(names):
        raise ClassSchemaError(f"{where}: a class named twice")
    return names


def parse_class_changes(text: str | None) -> list[ClassChange]:
    """The changes of a declaration (``;`` or newlines between them); [] for None or blank.

    Raises:
        ClassSchemaError: naming the part that is not ``rename A->B``, ``merge A,B->C`` or ``split A->B,C``.
    """
    changes: list[ClassChange] = []
    for raw in (text or "").replace("\n", ";").split(";"):
        part = raw.strip()
        if not part:
            continue
        verb, _, rest = part.partition(" ")
        verb = verb.strip().lower()
        if verb not in CHANGE_KINDS or "->" not in rest:
            raise ClassSchemaError(
                f"class change {part!r}: expected 'rename A->B', 'merge A,B->C' or 'split A->B,C'"
            )
        left, _, right = rest.partition("->")
        sources, targets = _names(left, f"class change {part!r}"), _names(right, f"class change {part!r}")
        shape_ok = {
            RENAME: len(sources) == 1 and len(targets) == 1 and sources != targets,
            MERGE: len(sources) >= 2 and len(targets) == 1,
            SPLIT: len(sources) == 1 and len(targets) >= 2,
        }[verb]
        if not shape_ok:
            want = {RENAME: "one class to another", MERGE: "two or more classes into one",
                    SPLIT: "one class into two or more"}[verb]  # fmt: skip
            raise ClassSchemaError(f"class change {part!r}: a {verb} takes {want}")
        changes.append(ClassChange(verb, sources, targets))
    return changes


def validate_changes(
    changes: Sequence[ClassChange],
    previous: Sequence[str] | None,
    current: Sequence[str],
    retired_before: Mapping[str, str] | None = None,
) -> None:
    """Refuse a declaration that does not describe the step from ``previous`` to ``current``.

    ``retired_before``: class name -> the change (text) that renamed or merged it away earlier; such a name cannot
    come back as a new class (its old answers already read as the class it became).

    Raises:
        ClassSchemaError: one line naming the change and what is wrong (e.g. the new list lacks a rename's target).
    """
    before, after = list(previous or []), list(current)
    seen: dict[str, str] = {}
    for change in changes:
        where = f"class change '{change.text}'"
        if previous is None:
            raise ClassSchemaError(f"{where}: there is no earlier class list to change (the first list is recorded as is)")
        for name in change.sources:
            if name not in before:
                raise ClassSchemaError(f"{where}: {name!r} is not in the previous class list {before}")
            if name in seen:
                raise ClassSchemaError(f"{where}: {name!r} is already changed by '{seen[name]}'")
            seen[name] = change.text
        for name in change.targets:
            if name not in after:
                raise ClassSchemaError(f"{where}: {name!r} is not in the new class list {after}")
        for name in change.retired:
            if name in after:
                raise ClassSchemaError(f"{where}: {name!r} is still in the new class list {after}")
        if change.change == RENAME and change.targets[0] in before:
            raise ClassSchemaError(
                f"{where}: {change.targets[0]!r} is already a class; declare 'merge "
                f"{change.sources[0]},{change.targets[0]}->{change.targets[0]}' to fold one into the other"
            )
        if change.change == SPLIT and change.sources[0] in change.targets:
            raise ClassSchemaError(f"{where}: a split's class leaves the list (its old answers are asked again)")
    targets = {t for change in changes for t in change.targets}
    for name, by in (retired_before or {}).items():
        if name in after and name not in before and name not in targets:  # a rename back is a change, not a comeback
            raise ClassSchemaError(
                f"class {name!r} cannot come back: '{by}' retired it, and its old answers read as the class it became"
            )


def class_mapping(changes: Iterable[ClassChange]) -> dict[str, str]:
    """Old class -> the class it reads as now, over ``changes`` oldest first (renames and merges; chains compose:
    ``cat->feline`` then ``feline->felid`` maps both to ``felid``). Splits map nothing."""
    mapping: dict[str, str] = {}
    for change in changes:
        if change.change == SPLIT:
            continue
        target = change.targets[0]
        for old, new in list(mapping.items()):
            if new in change.retired:
                mapping[old] = target
        for name in change.retired:
            mapping[name] = target
    return {old: new for old, new in mapping.items() if old != new}  # renamed back: reads as itself


def _mapped_names(names: Sequence[Any], mapping: Mapping[str, str]) -> list[Any]:
    out: list[Any] = []
    for name in names:
        new = mapping.get(name, name) if isinstance(name, str) else name
        if new not in out:  # a merge may collapse two members of a set (or two labels of a box) into one
            out.append(new)
    return out


def map_answer(answer: Any, mapping: Mapping[str, str]) -> Any:
    """A stored answer read through ``mapping``, in its own shape (every kind's: a class, a set of classes, a box
    answer ``{"boxes": [{"labels": [...]}, ...]}``, spans ``[[start, end, type], ...]``); unchanged when it names no
    mapped class. A set stays a sorted set; identical regions a merge made twice are kept once."""
    if not mapping:
        return answer
    if isinstance(answer, str):
        return mapping.get(answer, answer)
    if isinstance(answer, Mapping) and isinstance(answer.get("boxes"), list):
        boxes = [
            {**box, "labels": _mapped_names(box["labels"], mapping)}
            if isinstance(box, Mapping) and isinstance(box.get("labels"), list) else box
            for box in answer["boxes"]
        ]
        return {**answer, "boxes": boxes}
    if isinstance(answer, list | tuple):
        if all(isinstance(v, str) for v in answer):
            names = _mapped_names(answer, mapping)
            return sorted(names) if list(answer) == sorted(answer) else names
        spans: list[Any] = []
        for region in answer:
            if isinstance(region, list | tuple) and len(region) == 3 and isinstance(region[2], str):
                region = [region[0], region[1], mapping.get(region[2], region[2])]
            if region not in spans:
                spans.append(region)
        return spans
    return answer
