"""A multi-label gold file's entry: a label set written as a JSON list (``["1", "7"]``; ``[]`` = none of these)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from labeling_assets.core.label_sets import LabelSetError, label_set


def parse_gold_set(
    text: str, classes: Sequence[str] | None, allow_empty: bool = True
) -> tuple[Any, str | None]:
    """(the sorted set, None), or (what was read, why it is refused): not a JSON list, a class outside ``classes``
    (None: not checked), ``[]`` where the project offers no "none of these"."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, list):
        return text, f"{text!r} is not a label set (a JSON list of classes, [] for none of these)"
    names = sorted({str(v) for v in value})
    try:
        return label_set(value, classes if classes is not None else names, allow_empty=allow_empty), None
    except LabelSetError as exc:
        return names, str(exc)
