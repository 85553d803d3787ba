"""Stage 6, labeler quality: per-labeler statistics (one partition per labeler) and a leaderboard.

``labeler_stats`` backfills in a single run: any set of labeler partitions (the daily schedule: all of them) is
computed from one read of the votes, grouped once, so 500 labelers cost about what one does. The workflow is one
core service, ``core/consensus/labeler_run.py``'s ``run_labeler_stats`` (``labeler_board`` for the leaderboard);
these assets turn what it returns into metadata.
"""

import warnings
from collections.abc import Hashable, Mapping
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from labeling_assets import stage
from labeling_assets.constants import GROUP_QUALITY
from labeling_assets.core.consensus.adaptive_gold import GoldRates
from labeling_assets.core.consensus.completion import Completion
from labeling_assets.core.consensus.gates import RateGate
from labeling_assets.core.consensus.labeler_run import LabelerOptions, labeler_board, run_labeler_stats
from labeling_assets.core.consensus.labeler_stats import LabelerStats, SpeedCheck
from labeling_assets.core.consensus.leaderboard import LabelerReport
from labeling_assets.core.display import md_text
from labeling_assets.core.images import markdown_image
from labeling_assets.core.reporting import plots
from labeling_assets.core.store.completion import labeler_completion
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.kind import TaskKind
from labeling_assets.partitions import labelers
from labeling_assets.resources.metadata import as_metadata
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

# A single-run backfill policy is what lets one run cover many labeler partitions (Dagster marks the parameter
# beta); keep the notice out of every import.
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")


class LabelerStatsConfig(dg.Config):
    trend_weeks: int = Field(default=8, ge=1, description="Weekly windows kept in the trend.")
    auto_pause: bool = Field(
        default=True,
        description="Pause (store-side only) a labeler whose gold score is surely below the gold gate's threshold "
        "(ProjectSettings.gold_gate_threshold, else the kind's: 0.8 gold accuracy for the class kinds, 0.5 of "
        "matched / (gold + false) for boxes and text spans): their later votes stop counting in consensus until "
        "`labeling-assets labeler resume NAME`. Label Studio access is kept.",
    )


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _stats_metadata(labeler_id: str, stats: LabelerStats, speed: SpeedCheck) -> dict[str, Any]:
    usage_lines = ["| class | labels | expected | ratio | flag |", "|---|---:|---:|---:|---|"]
    usage_lines += [
        f"| {md_text(u.label)} | {u.observed} | {u.expected:.1f} | {u.ratio:.2f} | {u.flag} |" for u in stats.class_usage
    ]
    return {
        "labeler_id": dg.MetadataValue.text(labeler_id),
        "n_labels": dg.MetadataValue.int(stats.n_labels),
        "gold_accuracy": dg.FloatMetadataValue(stats.gold_accuracy),
        "n_gold": dg.MetadataValue.int(stats.n_gold),
        "kappa_vs_consensus": dg.FloatMetadataValue(stats.kappa_vs_consensus),
        "n_with_consensus": dg.MetadataValue.int(stats.n_with_consensus),
        "median_time_s": dg.FloatMetadataValue(stats.median_time_s),
        "p90_time_s": dg.FloatMetadataValue(stats.p90_time_s),
        "labels_per_day": dg.FloatMetadataValue(stats.labels_per_day),
        "too_fast": dg.MetadataValue.bool(speed.too_fast),
        "speed": dg.MetadataValue.text(speed.reason),
        "class_distribution": dg.MetadataValue.json(stats.class_distribution),
        "class_usage_flags": dg.MetadataValue.json({str(u.label): u.flag for u in stats.usage_flags()}),
        "class_usage": dg.MetadataValue.md("\n".join(usage_lines)),
        # Boxes and spans: the kind's scores against the consensus (which holds this labeler's own votes).
        **as_metadata(stats.vs_consensus),
    }


def _trend_metadata(labeler_id: str, trend: list[LabelerStats]) -> dict[str, Any]:
    """The weekly windows and a plot of gold accuracy and kappa over them (nothing without a trend)."""
    if not trend:
        return {}
    weeks = list(range(len(trend)))
    series = {
        name: (
            [w for w, s in zip(weeks, trend, strict=True) if getattr(s, name) is not None],
            [getattr(s, name) for s in trend if getattr(s, name) is not None],
        )
        for name in ("gold_accuracy", "kappa_vs_consensus")
    }
    title = f"{labeler_id}: weekly quality ({trend[0].window} .. {trend[-1].window})"
    return {
        "trend_weeks": dg.MetadataValue.json([s.window for s in trend]),
        "trend": dg.MetadataValue.md(markdown_image(plots.lines_png(series, title, "week #", "score"), "weekly trend")),
    }


def _batch_metadata(reports: dict[str, LabelerReport]) -> dict[str, Any]:
    """A run over several labelers: one table of all of them (each partition carries the same table)."""
    lines = ["| labeler | labels | gold acc. | gold n | kappa vs consensus | median s | labels/day | too fast |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    for labeler_id, r in reports.items():
        s = r.stats
        lines.append(
            f"| {md_text(labeler_id)} | {s.n_labels} | {_fmt(s.gold_accuracy)} | {s.n_gold} | {_fmt(s.kappa_vs_consensus)} | "
            f"{_fmt(s.median_time_s, 1)} | {_fmt(s.labels_per_day, 1)} | {'yes' if r.speed.too_fast else ''} |"
        )
    return {
        "labelers_in_run": dg.MetadataValue.int(len(reports)),
        "labels": dg.MetadataValue.int(sum(r.stats.n_labels for r in reports.values())),
        "too_fast": dg.MetadataValue.json(sorted(k for k, r in reports.items() if r.speed.too_fast)),
        "stats": dg.MetadataValue.md("\n".join(lines)),
    }


@stage.asset(
    GROUP_QUALITY,
    deps=["consensus_labels"],
    kinds={"python", "sql"},
    eager=True,
    partitions_def=labelers,
    # Many labeler partitions in one run: the votes are read and grouped once for all of them.
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def labeler_stats(
    context: dg.AssetExecutionContext,
    config: LabelerStatsConfig,
    label_store: LabelStoreResource,
    project: ProjectSettings,
) -> dg.MaterializeResult[None]:
    """Each labeler's quality: gold accuracy, agreement with consensus (kappa; for boxes and spans precision and
    recall against the consensus, which includes the labeler's own votes), speed, throughput, class usage and
    weekly trend."""
    store = label_store.get_store()
    run = run_labeler_stats(store, task_kind(project.task_type), _options(project, config),
                            list(context.partition_keys), log=context.log.info, warn=context.log.warning)  # fmt: skip
    common: dict[str, Any] = {"auto_paused": dg.MetadataValue.json(run.auto_paused),
                              "auto_pause": dg.MetadataValue.bool(config.auto_pause), **as_metadata(run.gold_report)}  # fmt: skip
    completion = labeler_completion(store)
    if run.n_labelers != 1:
        acceptance = {run.names[k]: g.metadata() for k, g in run.acceptance.items() if g.n}
        return dg.MaterializeResult(metadata={**_batch_metadata({run.names[k]: r for k, r in run.reports.items()}),
                                              "acceptance": dg.MetadataValue.json(acceptance),
                                              "gold_rates": dg.MetadataValue.json(
                                                  {run.names[k]: r for k, (r, _) in sorted(run.gold_rates.items())}),
                                              **_completion_metadata(completion, run.names), **common})  # fmt: skip
    [(labeler_id, report)] = run.reports.items()
    name = run.names[labeler_id]
    done = completion.get(labeler_id, Completion(0, 0))
    metadata = {**_stats_metadata(labeler_id, report.stats, report.speed), **_trend_metadata(name, report.trend),
                **_acceptance_metadata(run.acceptance.get(labeler_id)), "labeler": dg.MetadataValue.text(name),
                "tasks_given": dg.MetadataValue.int(done.given), "tasks_done": dg.MetadataValue.int(done.done),
                "completion_rate": dg.FloatMetadataValue(done.rate),
                **_gold_rate_metadata(run.gold_rates.get(labeler_id)), **common}  # fmt: skip
    return dg.MaterializeResult(metadata=metadata)


def _gold_rate_metadata(rate: tuple[float, str] | None) -> dict[str, Any]:
    """Adaptive gold: the share of hidden gold this labeler's evidence asks for, and why."""
    if rate is None:
        return {}
    return {"gold_rate": dg.MetadataValue.float(rate[0]), "gold_rate_why": dg.MetadataValue.text(rate[1])}


def _acceptance_metadata(gate: RateGate | None) -> dict[str, Any]:
    """Spot checks: the share of the labeler's reviewed answers a reviewer accepted, with its 95% interval."""
    if gate is None:
        return {}
    return {
        "acceptance_rate": dg.FloatMetadataValue(gate.rate),
        "n_reviewed": dg.MetadataValue.int(gate.n),
        "acceptance_ci": dg.MetadataValue.json([round(gate.low, 4), round(gate.high, 4)] if gate.n else []),
        "acceptance_verdict": dg.MetadataValue.text(gate.verdict),
    }


def _completion_metadata(completion: dict[str, Completion], names: dict[str, str]) -> dict[str, Any]:
    """Tasks given and done per labeler (core/consensus/completion.py says what "given" means in each mode)."""
    shown = {names.get(k, k): {"done": c.done, "given": c.given, "rate": None if c.rate is None else round(c.rate, 3)}
             for k, c in sorted(completion.items()) if k in names}  # fmt: skip
    return {"completion": dg.MetadataValue.json(shown)}


def _completed(done: Completion | None) -> str:
    return "-" if done is None or done.rate is None else f"{done.done} / {done.given} ({done.rate:.2f})"


def _options(project: ProjectSettings, config: LabelerStatsConfig | None = None) -> LabelerOptions:
    return LabelerOptions(
        classes=list(project.classes), allow_empty=project.allow_empty_set,
        allow_overlap=project.allow_overlapping_spans,
        trend_weeks=config.trend_weeks if config else 8, auto_pause=config.auto_pause if config else True,
        pay_rate_per_hour=project.pay_rate_per_hour, pay_rates_per_hour=dict(project.pay_rates_per_hour),
        gold_gate_threshold=project.gold_gate_threshold, acceptance_threshold=project.acceptance_gate_threshold,
        gold_rates=GoldRates(project.gold_rate_new_labeler, project.gold_rate_floor),
    )  # fmt: skip


def _accepted(row: Mapping[Hashable, Any]) -> str:
    """Spot checks: accepted / reviewed with the rate's 95% interval ("-" before any verdict)."""
    if not row["n_reviewed"]:
        return "-"
    return f"{_fmt(row['acceptance_rate'], 2)} of {row['n_reviewed']} ({_fmt(row['acceptance_ci_low'], 2)} - {_fmt(row['acceptance_ci_high'], 2)})"


def _leaderboard_metadata(board: pd.DataFrame, kind: TaskKind, threshold: float,
                          completion: dict[str, Completion] | None = None) -> dict[str, Any]:  # fmt: skip
    lines = [
        "| # | labeler | id | labels | gold acc. | 95% CI | gold n | kappa vs consensus | median s | labels/day | "
        "too fast | cost / correct label | accepted (95% CI) | tasks done / given | gold rate | paused | class flags |",
        "|---:|---|---|---:|---:|---|---:|---:|---:|---:|---|---|---|---|---:|---|---|",
    ]
    if kind.gold_gate_rate:  # the interval is of the gate's rate, not of the kind's gold accuracy: both shown, named
        lines[0] = lines[0].replace("| gold acc. | 95% CI |", f"| {kind.gold_accuracy_name} | {kind.gold_gate_rate}, 95% CI |")
    for rank, row in enumerate(board.to_dict("records"), start=1):
        ci = f"{_fmt(row['gold_ci_low'], 2)} - {_fmt(row['gold_ci_high'], 2)}" if row["gold_ci_low"] is not None else "-"
        if kind.gold_gate_rate and row["gold_ci_low"] is not None:
            ci = f"{_fmt(row['gold_gate_rate'], 2)} of {row['gold_gate_n']} ({ci})"
        cost = (f"{_fmt(row['cost_per_correct'])} ({_fmt(row['cost_per_correct_low'])} - "
                f"{_fmt(row['cost_per_correct_high'])})") if row["cost_per_correct"] is not None else "-"  # fmt: skip
        lines.append(
            f"| {rank} | {md_text(row['labeler'])} | {md_text(row['labeler_id'])} | {row['n_labels']} | {_fmt(row['gold_accuracy'])} | "
            f"{ci} | {row['n_gold']} | {_fmt(row['kappa_vs_consensus'])} | {_fmt(row['median_time_s'], 1)} | "
            f"{_fmt(row['labels_per_day'], 1)} | {'yes' if row['too_fast'] else ''} | {cost} | {_accepted(row)} | "
            f"{_completed((completion or {}).get(str(row['labeler_id'])))} | {_fmt(row.get('gold_rate'), 2)} | "
            f"{'yes' if row['paused'] else ''} | "
            f"{md_text(row['class_flags'], 400)} |"
        )
    metadata: dict[str, Any] = {
        "labelers": dg.MetadataValue.int(len(board)),
        "leaderboard": dg.MetadataValue.md("\n".join(lines)),
        # The gold gate's threshold on what it judges (the kind's gold score; label sets: the worse of sens./spec.).
        "gold_threshold": dg.MetadataValue.float(threshold),
        "below_gold_threshold": dg.MetadataValue.json(
            board.loc[board["gold_gate_rate"].astype(float) < threshold, "labeler"].tolist() if not board.empty else []
        ),
        "surely_below_gold_threshold": dg.MetadataValue.json(
            board.loc[board["gold_verdict"] == "fail", "labeler"].tolist() if not board.empty else []
        ),
        "too_fast": dg.MetadataValue.json(board.loc[board["too_fast"].astype(bool), "labeler"].tolist()),
        "gold_rates": dg.MetadataValue.json(  # adaptive gold: what each labeler's gold evidence asks for
            dict(zip(board["labeler"].astype(str), board["gold_rate"].astype(float), strict=True)) if not board.empty else {}
        ),
        "surely_below_acceptance_threshold": dg.MetadataValue.json(
            board.loc[board["acceptance_verdict"] == "fail", "labeler"].tolist() if not board.empty else []
        ),
        "paused": dg.MetadataValue.json(board.loc[board["paused"].astype(bool), "labeler"].tolist() if not board.empty else []),
    }
    if not board.empty:
        records = board.to_dict("records")
        scores = {
            kind.gold_accuracy_name: {
                str(r["labeler"]): float(r["gold_accuracy"] or 0.0) for r in records
            },
            "kappa vs consensus": {str(r["labeler"]): float(r["kappa_vs_consensus"] or 0.0) for r in records},
        }
        metadata["plot"] = dg.MetadataValue.md(
            markdown_image(plots.bar_png(scores, "labeler quality (missing = 0)", "score", size=(8.0, 3.5)), "leaderboard")
        )
    return metadata


@stage.asset(GROUP_QUALITY, deps=["consensus_labels"], kinds={"python"}, eager=True)
def labeler_leaderboard(
    context: dg.AssetExecutionContext, label_store: LabelStoreResource, project: ProjectSettings
) -> dg.MaterializeResult[None]:
    """All labelers side by side: gold accuracy, agreement with consensus, speed and class-usage flags; who is
    below, and surely below, the gold gate's threshold (the project's, else the kind's)."""
    kind = task_kind(project.task_type)
    options = _options(project)
    store = label_store.get_store()
    board = labeler_board(store, kind, options)
    context.log.info(f"leaderboard of {len(board)} labelers")
    completion = labeler_completion(store)
    metadata = _leaderboard_metadata(board, kind, options.gold_threshold(kind), completion)
    names = dict(zip(board["labeler_id"].astype(str), board["labeler"].astype(str), strict=True)) if not board.empty else {}
    metadata.update(_completion_metadata(completion, names))
    if kind.gold_gate_rate:
        metadata["gold_gate"] = dg.MetadataValue.text(
            f"{kind.name}: '{kind.gold_accuracy_name}' is the gold accuracy as this kind of task measures it; the "
            f"'{kind.gold_gate_rate}' column, its 95% CI and the verdicts are of what the gold gate judges"
        )
    return dg.MaterializeResult(metadata=metadata)
