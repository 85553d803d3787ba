"""The QA report: one self-contained HTML page (charts embedded as data URIs) about the labeling work.

Questions it answers, one chart each: who labels how much and when (throughput per labeler per period),
how long a label takes, who is right on the hidden gold items, whether labelers agree more or less as
time goes on (mean pairwise Cohen's kappa per period), whether the class mix drifts, and how sure the
consensus is. Pure pandas + matplotlib: the asset only fetches rows and writes the file.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from labeling_assets.core.consensus.gates import cost_per_correct_label, wilson_interval
from labeling_assets.core.display import bounded_label
from labeling_assets.core.reporting import plots, qa_sets
from labeling_assets.core.reporting.answer_views import CLASS_VIEW, AnswerView
from labeling_assets.core.reporting.guideline_effect import per_guideline_version
from labeling_assets.core.reporting.qa_allocation import allocation_section, gold_spend_section

CHARTS = (
    "throughput",
    "time_per_label",
    "gold_accuracy",
    "kappa_over_time",
    "class_drift",
    "consensus_confidence",
)


@dataclass(frozen=True)
class QAReport:
    html: str
    charts: tuple[str, ...]  # names of the charts that had data
    summary: dict[str, float | int | str]


def period_of(stamps: pd.Series) -> str:
    """A pandas frequency that gives a handful of periods over the span (days for real teams, minutes for a demo)."""
    if stamps.empty:
        return "D"
    span = stamps.max() - stamps.min()
    if span >= pd.Timedelta(days=3):
        return "D"
    if span >= pd.Timedelta(hours=3):
        return "h"
    return "min"


def _img(name: str, png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img data-chart="{name}" alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, classes="table", float_format=lambda v: f"{v:.3f}")


def class_share_per_period(period: pd.Series, labels: pd.Series) -> pd.DataFrame:
    """Periods x classes: the share of the period's answers that hold each class. A single-class answer holds one
    (rows sum to 1); a label set (a list) holds each of its classes, so the shares of a period need not sum to 1."""
    frame = pd.DataFrame({"period": period.to_numpy(), "label": labels.to_numpy()})
    answers = frame.groupby("period").size()
    held = frame.explode("label").dropna(subset=["label"])
    counts = held.groupby(["period", "label"]).size().unstack(fill_value=0).reindex(answers.index, fill_value=0)
    return counts.div(answers, axis=0).sort_index()


def build_qa_report(
    annotations: pd.DataFrame,
    gold: pd.Series,
    consensus: pd.DataFrame,
    *,
    title: str = "Labeling QA report",
    generated_at: dt.datetime | None = None,
    conflicts: pd.DataFrame | None = None,
    consensus_choice: Mapping[str, Any] | None = None,
    human_loop: Mapping[str, Any] | None = None,
    pay_rate_per_hour: float | None = None,
    pay_rates_per_hour: Mapping[str, float] | None = None,
    view: AnswerView = CLASS_VIEW,
    classes: Sequence[str] | None = None,
    allocation: Mapping[str, Any] | None = None,
) -> QAReport:
    """``annotations``: item_id, labeler_id, label, lead_time_s, created_at (current versions only);
    ``gold``: item_id -> true label of hidden gold items; ``consensus``: item_id, label, confidence;
    ``conflicts``: source conflicts (``item_conflicts`` rows: a source file changed while its item was queued);
    ``consensus_choice``: the newest ``consensus_choices`` row (the method used, why, the bake-off scoreboard);
    ``pay_rate_per_hour`` / ``pay_rates_per_hour`` (by the labeler names in ``annotations``): when any is set, the
    gold table adds the cost per correct label (time x rate / gold accuracy, with the accuracy's 95% interval).
    ``view``: how the project's kind of task reads and names its answers (``TaskKind.qa_view``); label sets
    (``answer_views.SET_VIEW``) are sorted lists of ``classes`` (by default the classes the answers name): gold
    accuracy is then exact-set accuracy with each labeler's sensitivity and specificity on gold beside it, agreement
    is the mean per-class kappa (each class ticked or not), the class drift chart shows the share of answers that
    hold each class, and the confidence histogram says what a set's confidence is. ``allocation``: the allocator's
    audited decisions summed (``core/store/allocation.decision_summary``); the gold spend is always shown."""
    generated_at = generated_at or dt.datetime.now(dt.UTC)
    # An answer stored without a label (an unreadable result) is not a label; a megabyte class name in an answer
    # is shown bounded (charts group by it: a legend of 1 MB took minutes to draw).
    annotations = annotations[annotations["label"].notna()].copy()
    annotations["label"] = annotations["label"].map(bounded_label).astype(object)
    answers = view.answers(annotations["label"])
    set_classes = list(classes) if classes is not None else qa_sets.classes_of(annotations["label"], gold)
    ann = annotations.copy()
    ann["label"] = ann["label"].astype(str)
    ann["created_at"] = pd.to_datetime(ann["created_at"], utc=True)
    freq = period_of(ann["created_at"])
    ann["period"] = ann["created_at"].dt.floor(freq)
    sections: list[str] = []
    charts: list[str] = []

    if not ann.empty:
        per = ann.groupby(["period", "labeler_id"]).size().unstack(fill_value=0).sort_index()
        series = {str(lab): (_ticks(per.index, freq), per[lab].tolist()) for lab in per.columns}
        png = plots.lines_png(series, f"Labels per labeler per {_unit(freq)}", _unit(freq), "labels")
        sections.append(_img("throughput", png, f"Throughput: labels per labeler per {_unit(freq)}"))
        charts.append("throughput")

        times = ann.dropna(subset=["lead_time_s"])
        if not times.empty:
            groups = {str(k): g["lead_time_s"].to_numpy() for k, g in times.groupby("labeler_id")}
            png = plots.box_png(groups, "Time per label (s)", "seconds", log_scale=True)
            sections.append(_img("time_per_label", png, "Time per label per labeler (seconds, log scale)"))
            charts.append("time_per_label")

    gold_rows = ann[ann["item_id"].isin(gold.index)]
    gold_table = pd.DataFrame(columns=["labeler_id", "gold_labels", "gold_accuracy"])
    correct = pd.Series(dtype=bool)
    if not gold_rows.empty:
        if view.gold_correct is not None:  # an answer that is not a class (boxes) is judged by the kind's rule
            correct = view.gold_correct(annotations.loc[gold_rows.index], gold, set_classes)
        else:
            correct = gold_rows["label"] == gold.astype(str).reindex(gold_rows["item_id"]).to_numpy()
        correct = pd.Series(np.asarray(correct, dtype=bool), index=gold_rows.index)
        gold_table = (
            gold_rows.assign(correct=correct)
            .groupby("labeler_id")["correct"]
            .agg(gold_labels="size", gold_accuracy="mean")
            .reset_index()
            .sort_values("gold_accuracy")
        )
        # Error bars: ~25 gold answers leave a wide interval (the labeler gates act only when it is clear of the kind's gold gate threshold).
        bounds = [wilson_interval(round(a * n), int(n)) for a, n in zip(gold_table["gold_accuracy"],
                                                                          gold_table["gold_labels"], strict=True)]
        gold_table["95% CI"] = [f"{lo:.2f} - {hi:.2f}" for lo, hi in bounds]
        if pay_rate_per_hour is not None or pay_rates_per_hour:
            gold_table = _with_cost(gold_table, ann, pay_rate_per_hour, pay_rates_per_hour or {})
        png = plots.bar_png(
            dict(zip(gold_table["labeler_id"].astype(str), gold_table["gold_accuracy"], strict=True)),
            f"{view.gold_what} per labeler",
            view.gold_axis,
        )
        sections.append(_img("gold_accuracy", png, view.gold_caption))
        sections.append(_table(view.gold_table(gold_table, annotations, gold, set_classes)))
        charts.append("gold_accuracy")

    agreed = answers if view.agreement_answers is None else view.agreement_answers(annotations["label"])
    kappas = _kappas(ann, agreed, set_classes, view)
    if kappas:
        ticks = _ticks(pd.DatetimeIndex([p for p, _ in kappas]), freq)
        png = plots.lines_png(
            {view.kappa_series: (ticks, [k for _, k in kappas])},
            f"Inter-labeler agreement per {_unit(freq)}",
            _unit(freq),
            view.kappa_axis,
        )
        sections.append(_img("kappa_over_time", png, view.kappa_caption))
        charts.append("kappa_over_time")

    by_version = None
    if "guideline_version" in ann.columns and ann["guideline_version"].notna().any():
        by_version = per_guideline_version(
            ann.assign(label=agreed.loc[ann.index]),
            ann["guideline_version"],
            correct,
            lambda group: view.period_kappa(group, set_classes),
        )
        sections.append(
            '<section data-section="guideline_versions"><h2>Guideline versions</h2><p>The answers given under '
            "each version of the labeling guidelines (the version shown in Label Studio when the answer was last "
            f"saved), measured apart: {html.escape(view.kappa_caption.lower())} and {html.escape(view.gold_what.lower())}"
            " with its 95% interval.</p>" + _table(by_version) + "</section>"
        )

    if not ann.empty:
        share = class_share_per_period(ann["period"], answers)
        series = {str(c): (_ticks(share.index, freq), share[c].tolist()) for c in share.columns}
        png = plots.lines_png(series, view.drift_title.format(unit=_unit(freq)), _unit(freq), view.drift_axis)
        sections.append(_img("class_drift", png, view.drift_caption))
        charts.append("class_drift")

    if not consensus.empty:
        png = plots.histogram_png(
            consensus["confidence"].to_numpy(), "Consensus confidence", "confidence", value_range=(0.0, 1.0)
        )
        sections.append(_img("consensus_confidence", png, view.confidence_caption))
        charts.append("consensus_confidence")

    if view.doubtful_items is not None and not consensus.empty:
        doubtful = view.doubtful_items(annotations, consensus, set_classes)
        if not doubtful.empty:
            sections.append(
                f'<section data-section="doubtful_items"><h2>Least confident items ({len(doubtful)})</h2>'
                f"<p>{html.escape(view.doubtful_caption)}</p>" + _table(doubtful) + "</section>"
            )

    if consensus_choice is not None:
        sections.append(_consensus_choice_section(consensus_choice))

    if conflicts is not None and not conflicts.empty:
        sections.append(_conflict_section(conflicts))

    backlog = (human_loop or {}).get("backlog") or {}  # adjudication backlog: queued, answered, waiting
    paused = (human_loop or {}).get("paused") or []
    if backlog.get("queued") or paused:
        sections.append(
            "<h2>Expert review and paused labelers</h2><p>Review project backlog: "
            + html.escape(", ".join(f"{k} {v}" for k, v in backlog.items()) or "nothing queued")
            + "</p><p>Paused labelers (their votes since the pause do not count): "
            + html.escape(", ".join(str(p) for p in paused) or "none")
            + "</p>"
        )

    held_out = (human_loop or {}).get("held_out") or []  # items the newest dataset version had to leave out
    if held_out:
        sections.append(
            f"<h2>Held out of the dataset ({len(held_out)})</h2><p>Kept in the store, placed once they can be: "
            + html.escape("; ".join(
                f"{h['item_id'][:12]} ({h['reason']}: "
                + ", ".join(f"{n['item_id'][:12]} in {n['split']}" for n in h.get("frozen_near_duplicates", []))
                + ")"
                for h in held_out[:50]
            ))
            + "</p>"
        )

    spend_html, spend = gold_spend_section(ann, gold.index, pay_rate_per_hour, pay_rates_per_hour or {})
    allocation_html, allocated = allocation_section(allocation)
    sections += [s for s in (spend_html, allocation_html) if s]
    summary: dict[str, float | int | str] = {
        **spend,
        **allocated,
        "held_out_of_dataset": len(held_out),
        "annotations": len(ann),
        "labelers": int(ann["labeler_id"].nunique()) if not ann.empty else 0,
        "items_with_consensus": len(consensus),
        "period": _unit(freq),
        "mean_consensus_confidence": float(consensus["confidence"].mean())
        if not consensus.empty
        else float("nan"),
        "lowest_gold_accuracy": float(gold_table["gold_accuracy"].min())
        if not gold_table.empty
        else float("nan"),
        "source_conflicts": len(conflicts) if conflicts is not None else 0,
        "consensus_method": str(consensus_choice["method"]) if consensus_choice is not None else "n/a",
        "expert_review_waiting": int(backlog.get("waiting", 0)),
        "paused_labelers": len(paused),
        "guideline_versions": len(by_version) if by_version is not None else 0,
    }
    summary_rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in summary.items()
    )
    body = "\n".join(sections) or "<p>No annotations yet.</p>"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 960px; color: #222; }}
figure {{ margin: 1.5em 0; }} img {{ max-width: 100%; border: 1px solid #ddd; }}
table {{ border-collapse: collapse; margin: 1em 0; }} th, td {{ padding: 4px 10px; border-bottom: 1px solid #eee; text-align: left; }}
</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>Generated {generated_at:%Y-%m-%d %H:%M UTC}.</p>
<table>{summary_rows}</table>
{body}
<script>
// Lets a headless browser test (and a curious reader) see how many charts really rendered.
window.addEventListener("load", () => {{
  const imgs = [...document.querySelectorAll("img[data-chart]")];
  document.body.dataset.chartsRendered = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
}});
</script>
</body></html>
"""
    return QAReport(html=page, charts=tuple(charts), summary=summary)


CONFLICT_ROWS = 50


def _kappas(
    ann: pd.DataFrame, answers: pd.Series, classes: Sequence[str], view: AnswerView
) -> list[tuple[Any, float]]:
    """(period, the view's agreement of its votes) of each period where it is defined."""
    out = []
    for period, group in ann.groupby("period"):
        kappa = view.period_kappa(group.assign(label=answers.loc[group.index]), classes)
        if kappa is not None:
            out.append((period, kappa))
    return out


def _with_cost(
    gold_table: pd.DataFrame, ann: pd.DataFrame, rate: float | None, rates: Mapping[str, float]
) -> pd.DataFrame:
    """Cost per correct label next to gold accuracy: a cheap careless labeler is not cheap per correct label."""
    per_label, per_correct = [], []
    for labeler, accuracy, n in zip(gold_table["labeler_id"], gold_table["gold_accuracy"],
                                    gold_table["gold_labels"], strict=True):  # fmt: skip
        times = ann.loc[ann["labeler_id"] == labeler, "lead_time_s"]
        cost = cost_per_correct_label(times, rates.get(str(labeler), rate), round(accuracy * n), int(n))
        per_label.append("" if cost.per_label is None else f"{cost.per_label:.3f}")
        if cost.per_correct is None:
            per_correct.append("no correct gold answer" if cost.per_label is not None and n else "")
        else:
            high = "unbounded" if cost.high is None else f"{cost.high:.3f}"
            per_correct.append(f"{cost.per_correct:.3f} ({cost.low:.3f} - {high})")
    return gold_table.assign(**{"cost per label": per_label, "cost per correct label (95% CI)": per_correct})


def _consensus_choice_section(choice: Mapping[str, Any]) -> str:
    """The consensus method of the newest run and the bake-off behind it (or why none ran)."""
    head = (
        f'<section data-section="consensus_bakeoff"><h2>Consensus method: {html.escape(str(choice["method"]))}</h2>'
        f"<p>Asked for {html.escape(str(choice['requested_method']))}; {html.escape(str(choice['reason']))} "
        f"({int(choice['n_gold'])} hidden gold items with enough labelers).</p>"
    )
    board = choice.get("scoreboard")
    if not board:
        return head + "</section>"
    table = pd.DataFrame(
        {
            "method": [str(r["method"]) for r in board],
            "accuracy on gold": [f"{r['accuracy']:.1%}" for r in board],
            "95% CI (Wilson)": [f"{r['ci_low']:.1%} - {r['ci_high']:.1%}" for r in board],
            "correct / gold": [f"{r['correct']} / {r['n_gold']}" for r in board],
            "used": ["winner" if r["chosen"] else "" for r in board],
        }
    ).sort_values("accuracy on gold", ascending=False, kind="stable", key=lambda c: c.str.rstrip("%").astype(float))
    return (
        head + "<p>Bake-off: each method scored on gold items by 5-fold cross-fitting (a gold item's own answer "
        "never informs the labels it is scored on); the no-gold choice is kept unless a method is better on gold "
        "by an exact McNemar test (one-sided, 2.5%).</p>" + _table(table) + "</section>"
    )


def _conflict_section(conflicts: pd.DataFrame) -> str:
    """Source files whose bytes changed while their item was queued: what happened to the old task."""
    shown = conflicts.head(CONFLICT_ROWS).copy()
    table = pd.DataFrame(
        {
            "source path": shown["source_path"].astype(str),
            "old item": shown["old_item_id"].astype(str).str[:12],
            "new item": shown["new_item_id"].fillna("").astype(str).str[:12],
            "old task": shown["old_ls_task_id"].map(lambda v: "" if pd.isna(v) else str(int(v))),
            "votes that stopped counting": shown["live_votes"].astype(int),
            "outcome": shown["outcome"].astype(str),
            "detected": pd.to_datetime(shown["detected_at"], utc=True).dt.strftime("%Y-%m-%d %H:%M"),
        }
    )
    more = f"<p>{len(conflicts) - CONFLICT_ROWS} more not shown.</p>" if len(conflicts) > CONFLICT_ROWS else ""
    return (
        f'<section data-section="source_conflicts"><h2>Source conflicts ({len(conflicts)})</h2>'
        "<p>A source file changed while its item was queued or being labeled: the old item's task is marked "
        "superseded in Label Studio and leaves the label stream, its votes count for nothing current, and the "
        "new item is queued.</p>" + _table(table) + more + "</section>"
    )


def _ticks(index: pd.Index, freq: str) -> list[str]:
    """Period labels for an axis (categorical: matplotlib spaces them evenly)."""
    fmt = {"D": "%m-%d", "h": "%m-%d %H:00", "min": "%H:%M"}[freq]
    return [pd.Timestamp(t).strftime(fmt) for t in index]


def _unit(freq: str) -> str:
    return {"D": "day", "h": "hour", "min": "minute"}[freq]


def _fmt(value: float | int | str) -> str:
    if isinstance(value, float):
        return "n/a" if np.isnan(value) else f"{value:.3f}"
    return str(value)
