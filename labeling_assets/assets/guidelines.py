"""Labeling guidelines: the settings' Markdown file, versioned in the store and shown as the instructions of every
Label Studio project people answer in; and the disagreement digest, the split items an expert settled, grouped by
class pair, as candidate examples for the next version (docs/guidelines.md)."""

from pathlib import Path

import dagster as dg

from labeling_assets import stage
from labeling_assets.constants import GROUP_QUALITY, GROUP_QUEUE
from labeling_assets.core.labelstudio.guidelines import GuidelinesFileError, publish_guidelines
from labeling_assets.core.labelstudio.review import review_title
from labeling_assets.core.labelstudio.spot_check import spot_check_title
from labeling_assets.core.reporting import disagreement_digest as digests
from labeling_assets.core.store.guidelines import latest_guideline
from labeling_assets.core.store.human_loop import adjudicated_labels
from labeling_assets.core.store.queries import item_uris, load_votes
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.metadata import as_metadata
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource


# deps: the labeling projects exist once the queue ran (the review and spot-check projects once their assets did)
@stage.asset(GROUP_QUEUE, deps=["labeling_tasks"], kinds={"labelstudio", "markdown"})
def labeling_guidelines(
    context: dg.AssetExecutionContext,
    label_store: LabelStoreResource,
    label_studio: LabelStudioResource,
    project: ProjectSettings,
) -> dg.MaterializeResult[None]:
    """The labeling guidelines in force: a version per changed text, shown in Label Studio before labeling."""
    if not project.guidelines_path:
        context.log.info("no guidelines file set (ProjectSettings.guidelines_path, $LABELING_ASSETS_GUIDELINES)")
        return dg.MaterializeResult(metadata={"guideline_version": dg.MetadataValue.text("none: no file set")})
    project_ids = label_studio.labeling_project_ids()  # the shared project, or every labeler's (blind mode)
    # The experts and spot-checkers judge answers by the same rules: their projects show them too, once they exist.
    title = label_studio.resolved_project_title
    reviewing = [label_studio.project_id_titled(t) for t in (review_title(title), spot_check_title(title))]
    targets = project_ids + [i for i in reviewing if i is not None]
    try:
        report = publish_guidelines(label_store.get_store(), label_studio.get_client(), Path(project.guidelines_path),
                                    targets)  # fmt: skip
    except GuidelinesFileError as exc:  # one line naming the file; nothing was stored or pushed
        raise dg.Failure(str(exc), allow_retries=False) from None
    context.log.info(f"guidelines version {report.guideline_version} ({'new' if report.new_version else 'unchanged'}): "
                     f"pushed to projects {report.pushed_to}, already shown in {report.already_shown}")  # fmt: skip
    return dg.MaterializeResult(metadata=as_metadata(report.as_report()))


@stage.asset(GROUP_QUALITY, deps=["adjudications"], kinds={"python", "markdown"})
def disagreement_digest(
    context: dg.AssetExecutionContext, label_store: LabelStoreResource, project: ProjectSettings
) -> dg.MaterializeResult[None]:
    """Items where labelers split and an expert settled it, grouped by class pair: examples for the next guidelines."""
    if project.task_type not in digests.DIGEST_TASK_TYPES:
        return dg.MaterializeResult(metadata={
            "digest": dg.MetadataValue.md(f"Class kinds only: a {project.task_type} project has no digest."),
        })  # fmt: skip
    store = label_store.get_store()
    votes = load_votes(store, list(project.classes), task_type=project.task_type, allow_empty=project.allow_empty_set)
    digest = digests.disagreement_digest(votes.votes.frame, adjudicated_labels(store), uris=item_uris(store))
    latest = latest_guideline(store)
    page = digests.digest_markdown(digest, guideline_version=latest.version if latest is not None else None)
    path = project.data_path / "reports" / "disagreement_digest.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".tmp").write_text(f"# Disagreement digest: {project.name}\n\n{page}\n")
    path.with_suffix(".tmp").replace(path)
    context.log.info(f"disagreement digest: {digest.split} split items in {len(digest.pairs)} class pairs, {path}")
    return dg.MaterializeResult(
        metadata={
            "digest": dg.MetadataValue.md(page),
            "path": dg.MetadataValue.path(str(path)),
            "adjudicated_items": dg.MetadataValue.int(digest.adjudicated),
            "split_items": dg.MetadataValue.int(digest.split),
            "crowd_majority_overruled": dg.MetadataValue.int(digest.overruled),
            "class_pairs": dg.MetadataValue.int(len(digest.pairs)),
            "guideline_version": dg.MetadataValue.int(latest.version) if latest else dg.MetadataValue.text("none"),
        }
    )
