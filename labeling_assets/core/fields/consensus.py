"""Per-item consensus of the extra answer fields, each aggregated by its kind.

- ``choice``: a vote (weighted by ``weights``, default one each); confidence = the winner's share of the weight.
  Ties go to the option listed first in the settings (deterministic).
- ``choices`` (flags): per option, chosen when more than half of the answers (by weight) chose it; confidence = the
  mean over options of the majority side's share (1.0 when everyone agreed on every option).
- ``rating``: the median (a half when the answers split evenly); confidence = the share of answers within one
  star of it.

Input: the fields of the current votes, long format (``item_id, labeler_id, field, value``; ``value`` as
``spec.read_fields`` stores it: a sorted list of options or an int). Answers that are not valid for the field
(an option not in the settings, a rating out of range) are not counted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from labeling_assets.core.fields.self_rating import self_rating_section
from labeling_assets.core.fields.spec import SELF_CONFIDENCE, FieldSpec

COLUMNS = ("item_id", "field", "value", "confidence", "n_answers")


def _valid(spec: FieldSpec, value: Any) -> Any:
    """The answer in the field's own form (str, sorted list of str, int), or None when it is not one."""
    if spec.kind == "rating":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and 1 <= value <= spec.max_rating
        return int(value) if ok else None
    chosen = [value] if isinstance(value, str) else value if isinstance(value, list) else None
    if chosen is None or any(c not in spec.options for c in chosen):
        return None
    if spec.kind == "choice":
        return chosen[0] if len(chosen) == 1 else None
    return sorted(chosen)


def _choice(spec: FieldSpec, values: list[Any], w: NDArray[np.float64]) -> tuple[Any, float]:
    totals = {o: float(w[[v == o for v in values]].sum()) for o in spec.options}
    best = max(spec.options, key=lambda o: totals[o])  # max keeps the first of equal totals: settings order
    return best, totals[best] / float(w.sum())


def _flags(spec: FieldSpec, values: list[Any], w: NDArray[np.float64]) -> tuple[Any, float]:
    total = float(w.sum())
    shares = {o: float(w[[o in v for v in values]].sum()) / total for o in spec.options}
    chosen = sorted(o for o, s in shares.items() if s > 0.5)
    return chosen, float(np.mean([max(s, 1 - s) for s in shares.values()]))


def _rating(values: list[Any]) -> tuple[Any, float]:
    array = np.asarray(values, dtype=float)
    median = float(np.median(array))
    return (int(median) if median.is_integer() else median), float(np.mean(np.abs(array - median) <= 1))


def aggregate_fields(
    answers: pd.DataFrame, fields: Sequence[FieldSpec], weights: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """One row per (item, field) with at least one valid answer: :data:`COLUMNS`, sorted by item then field order.

    ``weights``: labeler_id -> weight of their choice/choices answers (e.g. gold accuracy); default 1 each; a
    labeler missing from it weighs 1. Ratings take the plain median (a weight has no meaning for a median here).
    """
    rows: list[dict[str, Any]] = []
    if answers.empty or not fields:
        return pd.DataFrame(columns=list(COLUMNS))
    by_name = {f.name: f for f in fields}
    frame = answers[answers["field"].isin(by_name)]
    for (item_id, name), group in frame.groupby(["item_id", "field"], sort=False):
        spec = by_name[str(name)]
        pairs = [(str(lab), v) for lab, raw in zip(group["labeler_id"], group["value"], strict=True)
                 if (v := _valid(spec, raw)) is not None]  # fmt: skip
        if not pairs:
            continue
        values = [v for _, v in pairs]
        w = np.asarray([(weights or {}).get(lab, 1.0) for lab, _ in pairs], dtype=float)
        if spec.kind == "rating":
            value, confidence = _rating(values)
        elif w.sum() <= 0:
            continue
        elif spec.kind == "choice":
            value, confidence = _choice(spec, values, w)
        else:
            value, confidence = _flags(spec, values, w)
        rows.append({"item_id": str(item_id), "field": spec.name, "value": value,
                     "confidence": round(confidence, 6), "n_answers": len(pairs)})  # fmt: skip
    order = {f.name: n for n, f in enumerate(fields)}
    out = pd.DataFrame(rows, columns=list(COLUMNS))
    if out.empty:
        return out
    out["_order"] = out["field"].map(order)
    return out.sort_values(["item_id", "_order"], kind="stable").drop(columns="_order").reset_index(drop=True)


def field_columns(consensus: pd.DataFrame, fields: Sequence[FieldSpec]) -> pd.DataFrame:
    """The export's extra columns, one row per item (index ``item_id``): ``<field>`` (its consensus value: a
    class, a list of flags, a median rating) and ``<field>_confidence``, for every declared field (empty when no
    item has an answer for it)."""
    columns = [c for f in fields for c in (f.name, f"{f.name}_confidence")]
    if consensus.empty:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="item_id"))
    values = consensus.pivot(index="item_id", columns="field", values="value")
    confidence = consensus.pivot(index="item_id", columns="field", values="confidence")
    out = pd.DataFrame(index=values.index)
    for f in fields:
        out[f.name] = values.get(f.name)
        out[f"{f.name}_confidence"] = confidence[f.name].astype(float) if f.name in confidence else np.nan
    return out.loc[:, columns]


def with_field_columns(rows: pd.DataFrame, columns: pd.DataFrame) -> pd.DataFrame:
    """Export rows (with ``item_id``) and the field columns joined on the item (an item without an answer for a
    field: null there). No field columns: ``rows`` unchanged."""
    if columns.shape[1] == 0:
        return rows
    joined = rows.join(columns, on="item_id")
    for name in columns.columns:  # null (JSON null, an empty CSV cell), not NaN, where an item has no answer
        values = joined[name].astype(object)
        joined[name] = values.where(values.map(lambda v: isinstance(v, list) or pd.notna(v)), None)
    return joined


def card_section(consensus: pd.DataFrame, fields: Sequence[FieldSpec], n_items: int) -> str:
    """The dataset card's Markdown section on the extra fields: per field its kind, how many items have a
    consensus value, the values' distribution (a rating: the median's) and the mean confidence."""
    if not fields:
        return ""
    lines = ["## Extra answer fields", "",
             "Each field's consensus per item (choice: weighted vote; choices: per-option majority; rating: median), "
             "in the exports as the columns `<field>` and `<field>_confidence`.", "",
             "| field | kind | items with a value | values | mean confidence |", "|---|---|---|---|---|"]  # fmt: skip
    for f in fields:
        part = consensus[consensus["field"] == f.name] if not consensus.empty else consensus
        if part.empty:
            lines.append(f"| {f.name} | {f.kind} | 0 of {n_items} | | |")
            continue
        keys = part["value"].map(lambda v: json.dumps(v) if isinstance(v, list) else str(v))
        counts = keys.value_counts().sort_index()
        values = ", ".join(f"{k}: {int(n)}" for k, n in counts.items())
        lines.append(f"| {f.name} | {f.kind} | {len(part)} of {n_items} | {values} | {part['confidence'].mean():.2f} |")
    return "\n".join(lines) + "\n"


def fields_card(answers: pd.DataFrame, consensus: pd.DataFrame, fields: Sequence[FieldSpec], labeled: pd.DataFrame) -> str:
    """The card's part on the extra fields ("" without any): :func:`card_section`, then, when labelers rate their own
    confidence, its calibration against gold and against consensus (``labeled``: item_id, label, gold_label)."""
    if not fields:
        return ""
    text = "\n" + card_section(consensus, fields, len(labeled))
    rating = next((f for f in fields if f.name == SELF_CONFIDENCE), None)
    if rating is None:
        return text
    by_item = labeled.set_index("item_id")
    truths = {"gold": by_item["gold_label"], "consensus": by_item["label"]}
    rated = answers[(answers["field"] == SELF_CONFIDENCE) & answers["item_id"].isin(by_item.index)]
    return text + "\n" + self_rating_section(rated, truths, rating.max_rating)
