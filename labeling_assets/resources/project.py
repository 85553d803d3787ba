"""Project-wide settings every stage shares: the class list and the data folder."""

from pathlib import Path
from typing import Literal, cast

import dagster as dg
from pydantic import Field

from labeling_assets import env
from labeling_assets.constants import DEMO_CLASSES
from labeling_assets.core.consensus.class_schema import ClassChange, ClassSchemaError, parse_class_changes
from labeling_assets.core.fields.spec import FieldSpec, FieldSpecError, parse_fields, with_field_controls
from labeling_assets.core.ingest.audio import AUDIO_TASK_TYPES, DEFAULT_MAX_AUDIO_SECONDS, AudioOptions
from labeling_assets.core.ingest.text import DEFAULT_MAX_TEXT_BYTES, TEXT_TASK_TYPES, TextOptions
from labeling_assets.core.label_sets import TaskType
from labeling_assets.core.tasks import task_kind
from labeling_assets.env import data_dir
from labeling_assets.resources.errors import as_failure


class ProjectSettings(dg.ConfigurableResource["ProjectSettings"]):  # the resource is its own value
    """What is being labeled and where local artifacts live."""

    name: str = "digits-demo"
    classes: list[str] = Field(
        default_factory=lambda: env.classes() or list(DEMO_CLASSES),
        description="The classes (entity types for text_spans). Empty = $LABELING_ASSETS_CLASSES (comma-separated, "
        "read when the definitions load), else the demo's digits 0-9.",
    )
    task_type: TaskType = Field(
        default_factory=lambda: cast(TaskType, env.task_type()),
        description="single_label: one class per image. multi_label: a set of classes per image (several "
        "findings, or none), with per-class consensus, iterative stratification and sigmoid training. "
        "Empty = $LABELING_ASSETS_TASK_TYPE (read when the definitions load), else single_label.",
    )
    allow_empty_set: bool = Field(
        default=True,
        description="multi_label only: Label Studio offers a 'None of these' choice, stored as the empty set; "
        "False = every image has at least one class, and an empty answer is not a vote.",
    )
    class_list_change_reason: str | None = Field(
        default=None,
        description="Why the class list last changed: recorded with the new class list version (the pipeline "
        "records every change it sees; without a reason it says what was added and removed).",
    )
    pay_rate_per_hour: float | None = Field(
        default=None, ge=0, description="Pay per hour of labeling time, for the cost per correct label (optional)."
    )
    pay_rates_per_hour: dict[str, float] = Field(
        default_factory=dict, description="Pay per hour by labeler name (or id); overrides pay_rate_per_hour."
    )
    reviewers: list[str] = Field(
        default_factory=list,
        description="Label Studio usernames (or emails) of the experts who answer in the review project.",
    )
    text_id_field: str = Field(
        default="id",
        description="text_classes and text_spans: the field (JSONL) or column (CSV) holding a row's id; a row "
        "without one is quarantined (row_without_id), a row repeating an earlier id too (duplicate_id).",
    )
    text_field: str = Field(
        default="text", description="text_classes and text_spans: the JSONL field or CSV column holding the text."
    )
    max_text_bytes: int = Field(
        default=DEFAULT_MAX_TEXT_BYTES,
        gt=0,
        description="text_classes and text_spans: a longer text (UTF-8 bytes, after normalising) is quarantined "
        "with the reason text_too_large; a .txt file larger than this is refused from its size alone.",
    )
    max_audio_seconds: float = Field(
        default=DEFAULT_MAX_AUDIO_SECONDS,
        gt=0,
        description="audio_segments and text_edits: a longer audio file (seconds, from its header) is quarantined "
        "with the reason audio_too_long, never decoded; so is a text_edits row that refers to it (audio_quarantined).",
    )
    allow_overlapping_spans: bool = Field(
        default_factory=env.allow_overlapping_spans,
        description="text_spans only: True keeps overlapping and nested entities (\"Bank of America\" ORG with "
        "\"America\" LOC) in votes and consensus; False (the default) skips an answer whose spans overlap as a vote "
        "(reason overlapping_span; the answer stays stored) and consensus keeps the more probable of two overlapping "
        "entities. Label Studio lets a labeler draw overlapping regions either way (its Labels tag has no overlap "
        "switch). Empty = $LABELING_ASSETS_ALLOW_OVERLAPPING_SPANS (read when the definitions load), else False.",
    )
    test_score_floor: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="The lowest test score the check <score>_above_floor accepts for the latest model, on the "
        "kind's own test score (macro-F1 for the class kinds, mAP@[.5:.95] for boxes, entity F1 for text spans). "
        "Empty = the kind's default (0.5 macro-F1, 0.3 mAP, 0.5 entity F1).",
    )
    gold_gate_threshold: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="The labeler gold gate's threshold: the check labeler_gold_accuracy_at_least_0_8 fails, the "
        "leaderboard marks and labeler_stats pauses a labeler whose gold score's 95% interval is entirely below it. "
        "On the kind's own gold score (gold accuracy for the class kinds, the worse of sensitivity and specificity "
        "for label sets, matched / (gold + false) for boxes and spans). Empty = the kind's default (0.8 for the "
        "class kinds, 0.5 for boxes and text spans).",
    )
    data_dir: str | None = Field(
        default=None, description="Local artifacts folder; empty = $LABELING_ASSETS_HOME or <repo>/data."
    )
    spot_check_rate: float = Field(
        default=0.10, ge=0, le=1,
        description="Share of each labeler's answers a reviewer judges in the spot-check project (seeded: an "
        "answer is sampled when a keyed hash of its annotation id is below the rate).",
    )  # fmt: skip
    spot_check_new_labeler_rate: float = Field(
        default=0.30, ge=0, le=1,
        description="The spot-check rate of a labeler whose gold score's 95% interval is not yet clear of the gold "
        "gate (new labelers, or no gold answered).",
    )  # fmt: skip
    spot_check_seed: int = Field(default=0, description="The spot-check sample's seed (the hash's key).")
    machine_label_target: float | None = Field(
        default=None, gt=0, lt=1,
        description="Machine labels with a guarantee (docs/tiers.md): dataset_splits labels an item by the champion's "
        "pre-label, with no human label, when its confidence is above a threshold chosen on human-labeled items the "
        "champion did not train on so that the one-sided lower confidence bound of its accuracy there is at least "
        "this target (e.g. 0.98). Empty (the default): no machine labels.",
    )  # fmt: skip
    machine_label_confidence: float = Field(
        default=0.95, gt=0, lt=1, description="The confidence of the machine-label guarantee's bound."
    )
    machine_label_check_rate: float = Field(
        default=0.05, ge=0, le=1,
        description="Share of machine-labeled items that still go to people (a keyed hash of the item id), to check "
        "the guarantee in production; the tier is suspended while that sample's upper bound is below the target.",
    )  # fmt: skip
    acceptance_gate_threshold: float = Field(
        default=0.8, ge=0, le=1,
        description="The acceptance gate: labeler_stats pauses a labeler (as after a failed gold gate) whose share "
        "of spot-checked answers a reviewer accepted has a 95% interval entirely below it.",
    )  # fmt: skip
    allocation: Literal["rules", "allocator"] = Field(
        default_factory=env.allocation,  # type: ignore[arg-type]  # env checks the value against the same two
        description="How labeling_tasks spends its slots. rules: new items in the strategy's order, and one more "
        "labeler for every item consensus calls unsure (dynamic overlap). allocator: one decision per slot between a "
        "new item, one more label and an expert review by expected accuracy gain per cost (pay rates), each audited "
        "(docs/allocation.md). Empty = $LABELING_ASSETS_ALLOCATION (read when the definitions load), else rules.",
    )
    allocation_random_share: float = Field(
        default=0.10, ge=0, le=1,
        description="allocator: the share of slots given to a seeded random crowd action (the random arm that "
        "keeps the allocator's savings measurable).",
    )  # fmt: skip
    adaptive_gold: bool = Field(
        default=False,
        description="labeling_tasks mixes hidden gold at the labelers' adaptive rates (gold_rate_new_labeler until "
        "a labeler's gold interval is clear of the gold gate, then gold_rate_floor) instead of its gold_rate. "
        "The rates are reported in labeler_stats and the leaderboard either way.",
    )
    gold_rate_new_labeler: float = Field(
        default=0.20, ge=0, lt=1, description="Adaptive gold: the rate until the labeler's gold interval passes."
    )
    gold_rate_floor: float = Field(
        default=0.05, ge=0, lt=1, description="Adaptive gold: the rate once the labeler's gold interval passes."
    )
    guidelines_path: str | None = Field(
        default_factory=env.guidelines_path,
        description="A Markdown file of labeling guidelines: labeling_guidelines stores each changed text as a new "
        "version and shows it as the instructions of every Label Studio project people answer in (before labeling). "
        "Empty = $LABELING_ASSETS_GUIDELINES (read when the definitions load), else no guidelines.",
    )
    sweep_file: str | None = Field(
        default_factory=env.sweep_file,
        description="A training sweep's TOML grid (docs/model.md, \"Sweeps\"): sweep_plan makes one partition of "
        "sweep_cell per cell. Empty = $LABELING_ASSETS_SWEEP (read when the definitions load).",
    )
    extra_fields: str = Field(
        default_factory=env.extra_fields,
        description="More answers per item besides the kind's own, as a JSON list of {name, kind: choice | choices | "
        "rating, options, max_rating, required}, e.g. [{\"name\": \"severity\", \"kind\": \"choice\", \"options\": "
        "[\"low\", \"medium\", \"high\"]}]: Label Studio controls after the kind's, stored per annotation version, "
        "aggregated per item (choice: vote; choices: per-option majority; rating: median) into export columns. "
        "Empty = $LABELING_ASSETS_EXTRA_FIELDS (read when the definitions load), else none.",
    )
    ask_self_confidence: bool = Field(
        default_factory=env.ask_self_confidence,
        description="Ask each labeler for their own confidence (a 1-5 <Rating name=\"self_confidence\">), stored "
        "and reported (the dataset card); consensus ignores it unless consensus_labels' drop_votes_self_rated_below "
        "is set (benchmarks/self_rating.py: docs/answer_fields.md). "
        "Empty = $LABELING_ASSETS_ASK_SELF_CONFIDENCE, else False.",
    )

    class_changes: str | None = Field(
        default_factory=env.class_changes,
        description="Class renames, merges and splits that go with a new class list, recorded with its version: "
        "'rename cat->feline; merge husky,malamute->dog; split bird->sparrow,crow'. A rename or merge keeps every "
        "answer (read as the new class); a split's answers stop counting and their items go back to labelers. A "
        "declaration that does not fit the change of list fails the run with one line; one already recorded is "
        "ignored. Empty = $LABELING_ASSETS_CLASS_CHANGES (read when the definitions load).",
    )

    def declared_class_changes(self) -> list[ClassChange]:
        """``class_changes`` parsed; a malformed declaration is a one-line configuration failure."""
        try:
            return parse_class_changes(self.class_changes)
        except ClassSchemaError as exc:
            raise as_failure(exc) from None

    def answer_fields(self) -> tuple[FieldSpec, ...]:
        """The extra answer fields (the self-confidence rating last when asked); FieldSpecError in one line."""
        try:
            return parse_fields(self.extra_fields, self_confidence=self.ask_self_confidence)
        except ValueError as exc:  # json.JSONDecodeError is one
            raise FieldSpecError(f"extra_fields: {exc}") from None

    def label_config(self) -> str:
        """The project's Label Studio config: its kind's, then a control per extra field."""
        kind_config = task_kind(self.task_type).label_config(self.classes, self.allow_empty_set)
        return with_field_controls(kind_config, self.answer_fields())

    def text_options(self) -> TextOptions | None:
        """How this project's source reads as texts; None when its items are images."""
        if self.task_type not in TEXT_TASK_TYPES:
            return None
        return TextOptions(id_field=self.text_id_field, text_field=self.text_field, max_bytes=self.max_text_bytes)

    def audio_options(self) -> AudioOptions | None:
        """How this project's source reads as audio (and text_edits rows); None when its items are not audio."""
        if self.task_type not in AUDIO_TASK_TYPES:
            return None
        return AudioOptions(task_type=self.task_type, max_seconds=self.max_audio_seconds)

    @property
    def data_path(self) -> Path:
        """The data folder (created on first use; the environment is read now, not at import)."""
        path = Path(self.data_dir) if self.data_dir else data_dir()
        path.mkdir(parents=True, exist_ok=True)
        return path
