"""The QA report: one self-contained HTML page for the people who run the labeling operation."""

import datetime as dt

import dagster as dg
import pandas as pd

from labeling_assets import stage
from labeling_assets.constants import GROUP_QUALITY
from labeling_assets.core.reporting.qa_report import build_qa_report
from labeling_assets.core.store.allocation import decision_rows, decision_summary
from labeling_assets.core.store.consensus_versions import latest_consensus_choice
from labeling_assets.core.store.guidelines import current_answer_guidelines
from labeling_assets.core.store.held_out import held_out
from labeling_assets.core.store.human_loop import labeler_keys, paused_since, review_backlog
from labeling_assets.core.store.queries import consensus_frame, current_annotations, gold_labels
from labeling_assets.core.store.reviews import conflict_rows
from labeling_assets.core.tasks import task_kind
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource


@stage.asset(GROUP_QUALITY, deps=["consensus_labels"], kinds={"html"})
def qa_report(
    context: dg.AssetExecutionContext, label_store: LabelStoreResource, project: ProjectSettings
) -> dg.MaterializeResult[None]:
    """Throughput, time per label, gold accuracy, agreement over time, class drift and consensus
    confidence in one HTML page (charts embedded: it can be mailed or archived as one file)."""
    store = label_store.get_store()
    now = dt.datetime.now(dt.UTC)
    names = labeler_keys(store)  # people read names: the report shows partition keys, not Label Studio ids
    votes = current_annotations(store)
    votes["labeler_id"] = votes["labeler_id"].astype(str).map(lambda i: names.get(i, i))
    # The guideline version each answer was given under (recorded at collect): agreement and gold per version.
    votes["guideline_version"] = votes["ls_annotation_id"].map(current_answer_guidelines(store)).astype(object)
    human_loop = {
        "backlog": review_backlog(store),
        "paused": sorted(names.get(i, i) for i in paused_since(store)),
        "held_out": list(held_out(store).values()),
    }
    report = build_qa_report(
        votes,
        gold_labels(store),
        consensus_frame(store),
        title=f"QA report: {project.name}",
        generated_at=now,
        conflicts=pd.DataFrame(conflict_rows(store)),
        consensus_choice=latest_consensus_choice(store),
        human_loop=human_loop,
        pay_rate_per_hour=project.pay_rate_per_hour,
        pay_rates_per_hour={names.get(k, k): v for k, v in project.pay_rates_per_hour.items()},  # rates by id or name
        view=task_kind(project.task_type).qa_view,
        classes=list(project.classes),
        allocation=decision_summary(decision_rows(store)),  # the allocator's audit (empty unless it ran)
    )
    folder = project.data_path / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    latest = folder / "qa_report.html"
    archived = folder / f"qa_report_{now:%Y%m%dT%H%M%S}.html"
    archived.write_text(report.html)
    tmp = latest.with_suffix(".tmp")
    tmp.write_text(report.html)
    tmp.replace(latest)
    context.log.info(f"QA report with {len(report.charts)} charts written to {latest}")
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.path(str(latest)),
            "report_url": dg.MetadataValue.url(latest.as_uri()),
            "archived_copy": dg.MetadataValue.path(str(archived)),
            "charts": dg.MetadataValue.json(list(report.charts)),
            **{
                k: dg.MetadataValue.text(str(v)) if isinstance(v, str) else dg.MetadataValue.float(float(v))
                for k, v in report.summary.items()
            },
        }
    )
