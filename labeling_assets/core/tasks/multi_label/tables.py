"""The multi-label kind's report tables and rates (kind.py's Markdown), kept apart to keep kind.py short."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from labeling_assets.core.display import md_text
from labeling_assets.core.tasks.kind import LABELER_TABLE_ROWS


def finite(value: float | None) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


# Rows of the per-class gold table; why a per-class rate has no value (a bare "-" reads as missing data).
LABELER_CLASS_ROWS = 300
NO_POSITIVE = "n/a (none of their gold items has it)"
NO_NEGATIVE = "n/a (all of their gold items have it)"


def rate_text(rate: float, low: float, high: float, undefined: str = "-") -> str:
    return undefined if rate != rate else f"{rate:.2f} ({low:.2f}-{high:.2f})"


def finite_rate(value: float) -> float | None:
    return None if value != value else round(float(value), 4)


def labeler_table(result: Any, names: Mapping[str, str]) -> str:
    """Labelers by name (people do not know who labeler "6" is), worst sensitivity first."""
    table = result.labeler_quality.sort_values("sensitivity", ascending=True, na_position="last")
    lines = [
        "| labeler | labels | sensitivity | specificity | exact agreement with consensus |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in table.head(LABELER_TABLE_ROWS).to_dict("records"):
        lines.append(
            f"| {md_text(names.get(str(row['labeler_id']), row['labeler_id']))} | {row['n_labels']} | {row['sensitivity']:.3f} | "
            f"{row['specificity']:.3f} | {row['agreement_with_consensus']:.3f} |"
        )
    return "\n".join(lines)


def per_class_table(result: Any, kappa: dict[str, float]) -> str:
    """One row per class: how common it is, how many items have it, its threshold and how well labelers agree."""
    lines = [
        "| class | prevalence (mean P) | items with it | threshold | Fleiss kappa | method |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in result.per_class.to_dict("records"):
        value = finite(kappa.get(row["class"]))
        lines.append(
            f"| {md_text(row['class'])} | {row['prevalence']:.3f} | {row['n_items']} | {row['threshold']:.2f} | "
            f"{'-' if value is None else f'{value:.3f}'} | {result.method} |"
        )
    return "\n".join(lines)
