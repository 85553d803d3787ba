"""Project-wide settings every stage shares: the class list and the data folder."""

from pathlib import Path
from typing import cast

import dagster as dg
from pydantic import Field

from labeling_assets import env
from labeling_assets.constants import DEMO_CLASSES
from labeling_assets.core.label_sets import TaskType
from labeling_assets.env import data_dir


class ProjectSettings(dg.ConfigurableResource["ProjectSettings"]):  # the resource is its own value
    """What is being labeled and where local artifacts live."""

    name: str = "digits-demo"
    classes: list[str] = DEMO_CLASSES
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
    data_dir: str | None = Field(
        default=None, description="Local artifacts folder; empty = $LABELING_ASSETS_HOME or <repo>/data."
    )

    @property
    def data_path(self) -> Path:
        """The data folder (created on first use; the environment is read now, not at import)."""
        path = Path(self.data_dir) if self.data_dir else data_dir()
        path.mkdir(parents=True, exist_ok=True)
        return path
