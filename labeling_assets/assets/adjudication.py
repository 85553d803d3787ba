"""Stage 5b, adjudication: an expert settles in Label Studio what the crowd could not.

Items that need an expert (low consensus at ``max_overlap``, cleanlab label issues, explicit ``expert_review``
requests) are queued in a second Label Studio project, ``<title> — review``, whose task shows the image, every
vote with its labeler's name and gold accuracy, and the model's prediction. The experts' answers there come back
append-only into ``adjudications``; the next consensus run takes them over the crowd (method ``adjudicated``)
and labeler statistics score votes against them like gold.
"""

import dataclasses

import dagster as dg
from pydantic import Field

from labeling_assets import stage
from labeling_assets.constants import GROUP_CONSENSUS
from labeling_assets.core.consensus.review_routing import plan_overlap_raises
from labeling_assets.core.fields.spec import config_fields
from labeling_assets.core.labelstudio.config import ConfigLayout, config_layout
from labeling_assets.core.labelstudio.review import CONSENSUS_VERSION, review_config, review_title
from labeling_assets.core.store.blind_tasks import blind_open_requests
from labeling_assets.core.store.human_loop import (
    adjudicated_labels,
    expert_answers,
    record_adjudications,
    record_review_tasks,
    review_backlog,
    review_tasks,
)
from labeling_assets.core.store.review_queue import review_payloads, reviewer_ids
from labeling_assets.core.store.reviews import open_review_requests
from labeling_assets.core.tasks import task_kind
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource


class AdjudicationConfig(dg.Config):
    max_overlap: int = Field(
        default=5, ge=1, description="The queue's cap: a low-confidence item with this many labelers needs an expert."
    )


@stage.asset(GROUP_CONSENSUS, deps=["consensus_labels", "label_issues"], kinds={"labelstudio", "sql"})
def adjudications(
    context: dg.AssetExecutionContext,
    config: AdjudicationConfig,
    label_store: LabelStoreResource,
    label_studio: LabelStudioResource,
    project: ProjectSettings,
) -> dg.MaterializeResult[None]:
    """Expert answers from the Label Studio review project, and the items still needing one queued there."""
    store = label_store.get_store()
    labeling_ids = label_studio.labeling_project_ids()  # the shared project, or every labeler's (blind mode)
    if not labeling_ids:
        raise dg.Failure(f"Label Studio project {label_studio.resolved_project_title!r} does not exist yet")
    client = label_studio.get_client()
    title = review_title(label_studio.resolved_project_title)
    kind = task_kind(project.task_type)
    wanted_config = review_config(project.label_config())
    review_id = client.ensure_review_project(title=title, label_config=wanted_config)
    current_config = client.label_config(review_id)
    # The task type (or the extra fields) changed since its creation.
    if _answer_form(current_config) != _answer_form(wanted_config) or config_fields(current_config) != config_fields(wanted_config):
        client.set_label_config(review_id, wanted_config)
    images = label_studio.serve_images(review_id, project.data_path / "raw", project.data_path)
    reviewers, unknown = reviewer_ids(client.list_users(), project.reviewers)
    if unknown:
        context.log.warning(f"configured reviewers with no Label Studio user: {unknown}")
    # The experts answered in the project's kind's config (it was just set to it when it had another form).
    answers = expert_answers(client.iter_tasks(review_id, fields="all"), review_id, reviewers, kind)
    new_answers = record_adjudications(store, answers)
    # Pull first, push second: an item answered since the last run is not queued again.
    done = set(review_tasks(store, review_id)) | set(adjudicated_labels(store).index)
    requests = blind_open_requests(store, labeling_ids) if label_studio.blind else open_review_requests(store, labeling_ids[0])
    plan = plan_overlap_raises(requests, max_overlap=config.max_overlap)
    wanted = {r.item_id: r.reason for r in plan.needs_expert if r.item_id not in done}
    payloads = review_payloads(store, wanted, list(project.classes), project.data_path,
                               task_type=project.task_type, allow_empty=project.allow_empty_set,
                               allow_overlap=project.allow_overlapping_spans)  # fmt: skip
    client.import_tasks(review_id, payloads)
    if any("predictions" in p for p in payloads):  # Label Studio pre-fills from one version: the consensus
        client.show_predictions_of(review_id, CONSENSUS_VERSION)
    ids = client.task_ids_by_item(review_id)
    record_review_tasks(store, review_id, {i: (ids[i], why or "") for i, why in wanted.items() if i in ids})
    backlog = review_backlog(store)
    context.log.info(f"review project {review_id}: {new_answers} new expert answers, {len(wanted)} items queued, "
                     f"backlog {backlog}")  # fmt: skip
    return dg.MaterializeResult(
        metadata={
            "review_project": dg.MetadataValue.url(f"{label_studio.resolved_url}/projects/{review_id}/data"),
            "review_project_id": dg.MetadataValue.int(review_id),
            "new_expert_answers": dg.MetadataValue.int(new_answers),
            "queued_now": dg.MetadataValue.int(len(wanted)),
            "backlog": dg.MetadataValue.json(backlog),
            "reviewers": dg.MetadataValue.json(sorted((reviewers or {}).values()) or "anyone in the review project"),
            "images": dg.MetadataValue.text(images),
        }
    )


def _answer_form(config: str) -> ConfigLayout | None:
    """A review config's layout less its classes (one choice or several, a "None of these" choice): what the kind
    of task decides."""
    layout = config_layout(config)
    return None if layout is None else dataclasses.replace(layout, classes=[])
