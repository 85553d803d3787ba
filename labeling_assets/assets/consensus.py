"""Stage 5, consensus: one label per item from its labelers, and low-confidence items sent back.

The workflow is one core service, ``core/consensus/run.py``'s ``run_consensus``; the project's kind of task
(core/tasks) aggregates and reports. A multi-label project aggregates label sets per class: the label is the set
at the per-class thresholds, the stored probabilities are per-class marginals, and the confidence (product over
classes of max(p, 1 - p): the chance the whole set is right) routes items back with the same threshold as
single-label.
"""

from typing import TYPE_CHECKING, Literal

import dagster as dg
from pydantic import Field

from labeling_assets import stage
from labeling_assets.constants import GROUP_CONSENSUS
from labeling_assets.core.consensus.bakeoff import MIN_GOLD_FOR_BAKEOFF
from labeling_assets.core.consensus.class_schema import ClassSchemaError
from labeling_assets.core.consensus.methods import METHODS
from labeling_assets.core.consensus.multilabel import JOINT
from labeling_assets.core.consensus.review_routing import (
    DEFAULT_LOW_CONFIDENCE_THRESHOLD,
    DEFAULT_MAX_ANNOTATORS,
    DEFAULT_MIN_ANNOTATORS,
    MORE_ANNOTATORS,
    ReviewAction,
)
from labeling_assets.core.consensus.run import ConsensusOptions, run_consensus
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.kind import ConsensusFailure
from labeling_assets.resources.errors import as_failure
from labeling_assets.resources.metadata import as_metadata
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

# Every method core's aggregate() knows, from its one list (a new method needs no edit here), and the
# multi-label joint method (set projects only).
if TYPE_CHECKING:
    ConsensusMethod = str
else:
    ConsensusMethod = Literal[(*METHODS, JOINT)]


class ConsensusConfig(dg.Config):
    """Run-time knobs of consensus_labels (field names predate the vocabulary: they are public)."""

    method: ConsensusMethod = Field(
        default="auto",
        description="auto = with enough overlap, the Dawid-Skene prior (one-coin, pooled or weak) that predicts "
        f"held-out answers best, else majority; when at least {MIN_GOLD_FOR_BAKEOFF} hidden gold items have "
        "enough labelers, a bake-off scored on them by cross-fitting replaces that choice only with a method "
        "significantly better on gold. crowdlab also uses out-of-sample probabilities of a cross-validated pixel "
        "baseline trained on the majority labels. The Dawid-Skene methods clamp the gold items' answers. "
        "Multi-label projects: majority, dawid_skene (per class), dawid_skene_pooled (per class) or dawid_skene_shared "
        "(per-labeler rates shared across classes; what auto picks with enough overlap).",
    )
    min_annotators: int = Field(
        default=DEFAULT_MIN_ANNOTATORS, ge=1, description="Items with fewer distinct labelers wait."
    )
    low_confidence_threshold: float = Field(
        default=DEFAULT_LOW_CONFIDENCE_THRESHOLD,
        ge=0.0,
        le=1.0,
        description="Items whose consensus confidence is below go back.",
    )
    low_confidence_action: ReviewAction = Field(
        default=MORE_ANNOTATORS, description="What a low-confidence item needs: more labelers or an expert."
    )
    max_annotators: int = Field(
        default=DEFAULT_MAX_ANNOTATORS,
        ge=1,
        description="A low-confidence item that already has this many labelers goes to expert review.",
    )
    class_thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="Multi-label projects only: class -> threshold on P(present) for the set label (others 0.5).",
    )
    drop_votes_self_rated_below: int = Field(
        default=0,
        ge=0,
        le=10,
        description="With ask_self_confidence: leave out of consensus the votes their labeler rated under this (3: "
        "ratings 1-2, a guess), unless all of an item's votes are; 0 (the default): every vote counts. Gained 2-3 "
        "points over Dawid-Skene on the simulated crowd only (benchmarks/self_rating.py, docs/answer_fields.md).",
    )


@stage.asset(GROUP_CONSENSUS, deps=["annotations"], kinds={"python", "sql"}, eager=True)
def consensus_labels(
    context: dg.AssetExecutionContext,
    config: ConsensusConfig,
    label_store: LabelStoreResource,
    project: ProjectSettings,
) -> dg.MaterializeResult[None]:
    """The consensus label of every item with enough labelers, versioned in the label store's consensus table."""
    options = ConsensusOptions(
        classes=list(project.classes),
        method=config.method,
        min_annotators=config.min_annotators,
        low_confidence_threshold=config.low_confidence_threshold,
        low_confidence_action=config.low_confidence_action,
        max_annotators=config.max_annotators,
        class_thresholds=config.class_thresholds,
        allow_empty=project.allow_empty_set,
        allow_overlap=project.allow_overlapping_spans,
        class_list_change_reason=project.class_list_change_reason,
        class_changes=project.declared_class_changes(),
        drop_self_rated_below=config.drop_votes_self_rated_below,
    )
    try:
        report = run_consensus(label_store.get_store(), task_kind(project.task_type), options, context.run_id,
                               log=context.log.info, warn=context.log.warning)  # fmt: skip
    except ConsensusFailure as exc:
        raise dg.Failure(str(exc)) from None
    except ClassSchemaError as exc:  # the declared class changes do not fit the new class list
        raise as_failure(exc) from None
    return dg.MaterializeResult(metadata=as_metadata(report))
