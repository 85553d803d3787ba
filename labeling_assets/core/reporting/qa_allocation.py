"""The QA report's spending sections: what hidden gold cost, and what the allocator decided (counts by action, the
random arm's share). Each returns its HTML section and its lines for the report's summary table."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import pandas as pd

from labeling_assets.core.consensus.adaptive_gold import gold_spend
from labeling_assets.core.consensus.gates import cost_per_correct_label

Summary = dict[str, float | int | str]


def gold_spend_section(ann: pd.DataFrame, gold_items: pd.Index, rate: float | None,
                       rates: Mapping[str, float]) -> tuple[str, Summary]:  # fmt: skip
    """Answers given on hidden gold items, their share of all answers and their price: each labeler's gold answers
    at their cost per answer (pay rate x mean time per answer, as the gold table's cost per label)."""
    if ann.empty:
        return "", {}
    on_gold = ann[ann["item_id"].isin(gold_items)]
    by_labeler = {str(k): int(v) for k, v in on_gold.groupby("labeler_id").size().items()}
    prices = {}
    for labeler in by_labeler:
        times = ann.loc[ann["labeler_id"].astype(str) == labeler, "lead_time_s"]
        per_label = cost_per_correct_label(times, rates.get(labeler, rate), 0, 0).per_label
        if per_label is not None:
            prices[labeler] = per_label
    spend = gold_spend(by_labeler, len(ann), prices)
    cost = "not priced (no pay rate set)" if spend.cost is None else f"{spend.cost:.2f} ({spend.cost_source})"
    section = (
        '<section data-section="gold_spend"><h2>Gold spend</h2><p>'
        f"{spend.answers} answers on hidden gold items ({spend.share_of_answers:.1%} of all answers); cost "
        f"{html.escape(cost)}.</p></section>"
    )
    summary: Summary = {"gold_answers": spend.answers, "gold_share_of_answers": round(spend.share_of_answers, 4)}
    if spend.cost is not None:
        summary["gold_cost"] = round(spend.cost, 4)
    return section, summary


def allocation_section(totals: Mapping[str, Any] | None) -> tuple[str, Summary]:
    """The allocator's audited decisions (``core/store/allocation.decision_summary``); nothing before its first run."""
    if not totals or not totals.get("runs"):
        return "", {}
    by_action = dict(totals.get("by_action") or {})
    by_arm = dict(totals.get("by_arm") or {})
    rows = [{"arm": arm, **values} for arm, values in sorted(by_arm.items())]
    table = pd.DataFrame(rows).to_html(index=False, border=0, classes="table") if rows else ""
    fallbacks = dict(totals.get("fallbacks") or {})
    section = (
        '<section data-section="allocation"><h2>Allocator decisions</h2><p>'
        f"{int(totals['decisions'])} decisions in {int(totals['runs'])} queue runs: "
        + html.escape(", ".join(f"{k} {v}" for k, v in sorted(by_action.items())) or "none")
        + f"; the random arm chose {float(totals.get('random_arm_share', 0.0)):.1%} of them "
        "(docs/allocation.md: compare what each arm buys).</p>"
        + table
        + ("<p>Fall-backs: " + html.escape("; ".join(f"{k} ({v})" for k, v in sorted(fallbacks.items()))) + "</p>"
           if fallbacks else "")
        + "</section>"
    )  # fmt: skip
    summary: Summary = {"allocator_decisions": int(totals["decisions"]),
                        "allocator_random_arm_share": float(totals.get("random_arm_share", 0.0))}  # fmt: skip
    for action, n in by_action.items():
        summary[f"allocator_{action}"] = int(n)
    return section, summary
