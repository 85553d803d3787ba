"""Stage 5b, adjudication: an expert settles in Label Studio what the crowd could not.

Items that need an expert (low consensus at ``max_overlap``, cleanlab label issues, explicit ``expert_review``
requests) are queued in a second Label Studio project, ``<title> — review``, whose task shows the image, every
vote with its labeler's name and gold accuracy, and the model's prediction. The experts' answers there come back
append-only into ``adjudications``; the next consensus run takes them over the crowd (method ``adjudicated``)
and labeler statistics score votes against them like gold.
"""

import dataclasses
from pathlib import Path

import dagster as dg
from pydantic import Field

from labeling_assets import stage
from labeling_assets.constants import GROUP_CONSENSUS
from labeling_assets.core.consensus.review_routing import plan_overlap_raises
from labeling_assets.core.fields.spec import config_fields
from labeling_assets.core.images import text_png
from labeling_assets.core.labelstudio.config import ConfigLayout, config_layout
from labeling_assets.core.labelstudio.review import (
    CONSENSUS_VERSION,
    NO_OVERLAY_LINES,
    OVERLAY_FOLDER,
    review_config,
    review_title,
)
from labeling_assets.core.labelstudio.tasks import image_url, shown_object
from labeling_assets.core.store.blind_tasks import blind_open_requests
from labeling_assets.core.store.human_loop import (
    adjudicated_labels,
    expert_answers,
    record_adjudications,
    record_review_tasks,
    review_backlog,
    review_tasks,
)
from labeling_assets.core.store.queries import item_uris
from labeling_assets.core.store.review_queue import model_disagreements, review_payloads, reviewer_ids
from labeling_assets.core.store.reviews import open_review_requests
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.core.tasks import task_kind
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.mlflow import MLflowResource
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
    mlflow: MLflowResource,
) -> dg.MaterializeResult[None]:
    """Expert answers from the Label Studio review project, and the items still needing one queued there."""
    store = label_store.get_store()
    labeling_ids = label_studio.labeling_project_ids()  # the shared project, or every labeler's (blind mode)
    if not labeling_ids:
        raise dg.Failure(f"Label Studio project {label_studio.resolved_project_title!r} does not exist yet")
    client = label_studio.get_client()
    title = review_title(label_studio.resolved_project_title)
    kind = task_kind(project.task_type)
    explains = kind.trainer is None and shown_object(kind)[0] == "Image"  # an image classifier: Grad-CAM
    wanted_config = review_config(project.label_config(), overlay=explains)
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
    overlays = _overlays(context, store, mlflow, project.data_path, sorted(wanted)) if explains else None
    payloads = review_payloads(store, wanted, list(project.classes), project.data_path,
                               task_type=project.task_type, allow_empty=project.allow_empty_set,
                               allow_overlap=project.allow_overlapping_spans, overlays=overlays)  # fmt: skip
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
            "gradcam_overlays": dg.MetadataValue.int(sum(url != _no_overlay_url(project.data_path)
                                                          for url in (overlays or {}).values())),
        }
    )


def _no_overlay_url(data_root: Path) -> str:
    return image_url(str(data_root / "raw" / OVERLAY_FOLDER / "none.png"), data_root)


def _overlays(
    context: dg.AssetExecutionContext, store: LabelStore, mlflow: MLflowResource, data_root: Path, items: list[str]
) -> dict[str, str]:
    """item_id -> the URL of its review task's Grad-CAM overlay: the champion's, for the class it decides against
    the crowd (``model_disagreements``), written under the raw store that Label Studio serves; the placeholder's
    for the others. The queue never waits on the model: a champion that cannot be loaded is logged and skipped."""
    folder = data_root / "raw" / OVERLAY_FOLDER
    placeholder = folder / "none.png"
    if items and not placeholder.exists():
        folder.mkdir(parents=True, exist_ok=True)
        placeholder.write_bytes(text_png(NO_OVERLAY_LINES))
    urls = dict.fromkeys(items, _no_overlay_url(data_root))
    disagree = model_disagreements(store, items)
    if not disagree:
        return urls
    try:
        champion = mlflow.champion()
        loaded = mlflow.load_model(champion) if champion is not None else None
    except Exception as exc:  # noqa: BLE001 - MLflow down or a broken checkpoint must not hold the expert queue
        context.log.warning(f"no Grad-CAM overlays for the review tasks: the champion cannot be loaded ({exc})"[:500])
        return urls
    if loaded is None or loaded.config is None:
        context.log.info("no Grad-CAM overlays for the review tasks: no champion image classifier")
        return urls
    from labeling_assets.core.training.explain import (
        review_overlays,  # torch: only when there is one to explain
    )

    uris = item_uris(store)
    wanted = {i: (str(uris[i]), loaded.classes.index(c)) for i, c in disagree.items() if uris.get(i) and c in loaded.classes}
    written, problems = review_overlays(loaded.model, wanted, folder, image_size=loaded.config.image_size,
                                        channels=loaded.config.channels)  # fmt: skip
    for item_id, why in problems.items():
        context.log.warning(f"no Grad-CAM overlay for {item_id}: {why}")
    context.log.info(f"Grad-CAM overlays of {loaded.registered.label} for {len(written)} review tasks where it "
                     "disagrees with the crowd")  # fmt: skip
    urls.update({i: image_url(str(path), data_root) for i, path in written.items()})
    return urls


def _answer_form(config: str) -> ConfigLayout | None:
    """A review config's layout less its classes (one choice or several, a "None of these" choice): what the kind
    of task decides."""
    layout = config_layout(config)
    return None if layout is None else dataclasses.replace(layout, classes=[])
