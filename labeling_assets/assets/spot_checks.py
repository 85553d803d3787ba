"""Stage 5c, spot checks: a reviewer judges a random, seeded share of every labeler's answers in Label Studio.

Each labeler's current answers are sampled (``ProjectSettings.spot_check_rate``, higher for a labeler whose gold
interval has not cleared the gold gate) into ``<title> — spot-check``, one answer per task with the labeler's name
and answer pre-drawn; the reviewer accepts, rejects or fixes it. Verdicts come back append-only; a fix is an
expert answer for consensus, and each labeler's acceptance rate joins labeler statistics and the gates. The
workflow is one core service, ``core/labelstudio/spot_check_run.py``.
"""

import dagster as dg

from labeling_assets import stage
from labeling_assets.constants import GROUP_REVIEW
from labeling_assets.core.consensus.spot_check import SamplingRates
from labeling_assets.core.labelstudio.spot_check_run import (
    SpotCheckOptions,
    acceptance_metadata,
    run_spot_checks,
)
from labeling_assets.core.store.human_loop import labeler_keys
from labeling_assets.core.tasks import task_kind
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource


@stage.asset(GROUP_REVIEW, deps=["consensus_labels"], kinds={"labelstudio", "sql"})
def spot_checks(
    context: dg.AssetExecutionContext,
    label_store: LabelStoreResource,
    label_studio: LabelStudioResource,
    project: ProjectSettings,
) -> dg.MaterializeResult[None]:
    """Reviewers' verdicts (accept, reject, fix) on sampled answers, and the answers newly sampled for review."""
    store = label_store.get_store()
    data = project.data_path
    options = SpotCheckOptions(
        project_title=label_studio.resolved_project_title, classes=list(project.classes), data_root=data,
        rates=SamplingRates(project.spot_check_rate, project.spot_check_new_labeler_rate, project.spot_check_seed),
        reviewers=list(project.reviewers), gold_gate_threshold=project.gold_gate_threshold,
        acceptance_threshold=project.acceptance_gate_threshold, allow_empty=project.allow_empty_set,
        allow_overlap=project.allow_overlapping_spans,
    )  # fmt: skip
    run = run_spot_checks(store, label_studio.get_client(), task_kind(project.task_type), options,
                          serve=lambda pid: label_studio.serve_images(pid, data / "raw", data), log=context.log.info)  # fmt: skip
    if run.unknown_reviewers:
        context.log.warning(f"configured reviewers with no Label Studio user: {run.unknown_reviewers}")
    for line in run.unreadable[:10]:
        context.log.warning(f"spot-check answer without a verdict: {line}")
    names = labeler_keys(store)
    return dg.MaterializeResult(
        metadata={
            "spot_check_project": dg.MetadataValue.url(f"{label_studio.resolved_url}/projects/{run.project_id}/data"),
            "spot_check_project_id": dg.MetadataValue.int(run.project_id),
            "new_verdicts": dg.MetadataValue.int(run.new_verdicts),
            "new_fixes": dg.MetadataValue.int(run.new_fixes),
            "without_verdict": dg.MetadataValue.int(len(run.unreadable)),
            "sampled_now": dg.MetadataValue.int(run.sampled_now),
            "pushed_now": dg.MetadataValue.int(run.pushed_now),
            "sampled_total": dg.MetadataValue.int(run.sampled_total),
            "rates": dg.MetadataValue.json({names.get(k, k): {"rate": r, "why": why} for k, (r, why) in run.rates.items()}),
            "acceptance": dg.MetadataValue.json(acceptance_metadata(run.acceptance, names)),
        }
    )
