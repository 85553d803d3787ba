"""The decision rules of the loop that runs itself: pure, so they test in milliseconds without Dagster.

The sensors (``labeling_assets/sensors/``) gather the facts (a listing of the image source, Label Studio's
task counts, the dataset versions of the current data and of the champion, the runs in flight) and ask
these functions what to do. Every decision carries its reason: the sensor shows it as the run's trigger or
as the skip message, so a person reading a tick knows why the loop did or did not act.

Thresholds are read when a tick runs (``thresholds_from(lookup)`` with the environment as lookup), never at
import; the defaults are documented in README ("What runs by itself").
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

# Environment variables of the thresholds (read at tick time) and their defaults.
QUEUE_LOW_WATER_VAR = "LABELING_ASSETS_QUEUE_LOW_WATER"
QUEUE_BATCH_VAR = "LABELING_ASSETS_QUEUE_BATCH"
RETRAIN_MIN_NEW_VAR = "LABELING_ASSETS_RETRAIN_MIN_NEW_ITEMS"
RETRAIN_CHANGED_SHARE_VAR = "LABELING_ASSETS_RETRAIN_CHANGED_SHARE"
BACKUP_KEEP_VAR = "LABELING_ASSETS_BACKUP_KEEP"
THRESHOLD_VARIABLES = (
    QUEUE_LOW_WATER_VAR,
    QUEUE_BATCH_VAR,
    RETRAIN_MIN_NEW_VAR,
    RETRAIN_CHANGED_SHARE_VAR,
    BACKUP_KEEP_VAR,
)
# A run the loop launched that fails this many times for the same state is not launched again by itself:
# a deterministic failure must not relaunch every tick; a change of state (or a person) starts it again.
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Thresholds:
    """The knobs of the loop; ``queue_low_water=0`` turns the queue top-up off."""

    queue_low_water: int = 50  # open Label Studio tasks under which the next batch is queued
    queue_batch: int = 200  # items per top-up (labeling_tasks' max_new_tasks)
    retrain_min_new_items: int = 50  # more consensus-labeled training items than the champion saw
    retrain_changed_share: float = 0.10  # or this share of the champion's training items changed label
    backup_keep: int = 7  # store backups kept under <data>/backups


def _whole(name: str, text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a whole number") from None
    if value < minimum:
        raise ValueError(f"{name}={value} is below its minimum {minimum}")
    return value


def _share(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a number") from None
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name}={value} must be a share in (0, 1]")
    return value


def thresholds_from(lookup: Callable[[str], str | None]) -> Thresholds:
    """The thresholds with every variable ``lookup`` returns a value for overriding its default.

    Raises:
        ValueError: a value is not a number or out of range (the message names the variable).
    """
    base = Thresholds()

    def whole(name: str, default: int, minimum: int) -> int:
        text = lookup(name)
        return _whole(name, text.strip(), minimum) if text and text.strip() else default

    share_text = lookup(RETRAIN_CHANGED_SHARE_VAR)
    return Thresholds(
        queue_low_water=whole(QUEUE_LOW_WATER_VAR, base.queue_low_water, 0),
        queue_batch=whole(QUEUE_BATCH_VAR, base.queue_batch, 1),
        retrain_min_new_items=whole(RETRAIN_MIN_NEW_VAR, base.retrain_min_new_items, 1),
        retrain_changed_share=(
            _share(RETRAIN_CHANGED_SHARE_VAR, share_text.strip())
            if share_text and share_text.strip()
            else base.retrain_changed_share
        ),
        backup_keep=whole(BACKUP_KEEP_VAR, base.backup_keep, 1),
    )


@dataclass(frozen=True)
class Decision:
    """Launch a run (with ``run_key``) or skip; ``reason`` says why either way."""

    launch: bool
    reason: str
    run_key: str | None = None


def skip(reason: str) -> Decision:
    return Decision(False, reason)


# --- raw data: a cheap fingerprint of the source ------------------------------------------------

class ListedFile(Protocol):
    """What a listing of the source says about one file (``core.ingest.source.SourceFile``)."""

    @property
    def rel_path(self) -> str: ...
    @property
    def size(self) -> int | None: ...
    @property
    def mtime_ns(self) -> int | None: ...
    @property
    def ctime_ns(self) -> int | None: ...
    @property
    def inode(self) -> int | None: ...
    @property
    def refused(self) -> tuple[str, str] | None: ...


def listing_fingerprint(files: Iterable[ListedFile]) -> str:
    """``<n files>:<sha256>`` over the sorted paths and the fingerprint ingest compares (size, mtime, ctime,
    inode; a refusal's reason): any file ingest would read again changes it, and nothing is read."""
    digest = hashlib.sha256()
    count = 0
    for f in sorted(files, key=lambda f: f.rel_path):
        refused = f.refused[0] if f.refused else ""
        digest.update(f"{f.rel_path}\0{f.size}\0{f.mtime_ns}\0{f.ctime_ns}\0{f.inode}\0{refused}\n".encode())
        count += 1
    return f"{count}:{digest.hexdigest()}"


@dataclass(frozen=True)
class PastRuns:
    """The loop's earlier runs for one state: how many failed, and whether the newest of them failed."""

    total: int = 0
    failed: int = 0
    last_status: str = ""  # the newest run's status (SUCCESS, FAILURE, CANCELED, ...)

    @property
    def last_failed(self) -> bool:
        return self.last_status == "FAILURE"

    def retry_allowed(self) -> bool:
        return self.last_failed and self.failed < MAX_ATTEMPTS

    def done_or_given_up(self) -> str | None:
        """Why no run is launched for this state again: one ended other than by failing (a success, or a
        person cancelled it), or ``MAX_ATTEMPTS`` failed; None when a (re)try is due."""
        if self.total and not self.last_failed:
            return f"a run for this state already ended ({self.last_status})"
        if self.last_failed and not self.retry_allowed():
            return f"{self.failed} runs for this state failed (see them; a launch by hand tries again)"
        return None

    def attempt_key(self, base: str) -> str:
        """``base`` with the attempt number: a retry after a failure is a new run key, a re-poll is not."""
        return f"{base}-attempt-{self.failed + 1}"


def raw_data_decision(fingerprint: str, cursor: str | None, *, ingest_in_flight: list[str], past: PastRuns) -> Decision:
    """Ingest when the listing differs from the last one ingested (the cursor), one ingest at a time.

    The cursor advances only with a launch, so a change seen while an ingest is in flight is ingested by a
    later tick. A failed ingest of the same listing is launched again, up to ``MAX_ATTEMPTS`` in all.
    """
    n_files = fingerprint.split(":")[0]
    if ingest_in_flight:
        return skip(f"ingest run {ingest_in_flight[0]} is in flight; the source is looked at again next tick")
    if fingerprint != cursor:
        return Decision(True, f"image source changed ({n_files} files)", past.attempt_key(f"raw-data-{fingerprint}"))
    if past.retry_allowed():
        return Decision(True, f"retry {past.failed + 1} of the ingest that failed ({n_files} files)",
                        past.attempt_key(f"raw-data-{fingerprint}"))  # fmt: skip
    if past.last_failed:
        return skip(f"ingest of this listing failed {past.failed} times: see the failed ingest_job runs; "
                    "a change in the source or a launch by hand tries again")  # fmt: skip
    return skip(f"no new or changed file in the image source ({n_files} files)")


# --- queue top-up --------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueState:
    """What the top-up looks at: Label Studio's task counts and the store's items not queued yet."""

    project_id: int | None  # None: the Label Studio project does not exist yet (the queue creates it)
    tasks: int
    finished_tasks: int  # Label Studio's is_labeled: the task has all the annotations it wants
    unqueued_items: int

    @property
    def open_tasks(self) -> int:
        return max(self.tasks - self.finished_tasks, 0)

    def key(self) -> str:
        return f"{self.project_id}-{self.tasks}-{self.finished_tasks}-{self.unqueued_items}"


def queue_decision(state: QueueState, thresholds: Thresholds, *, queue_in_flight: list[str], past: PastRuns) -> Decision:
    """Queue the next batch when open tasks are under the low-water mark and items wait to be queued.

    Idempotent across ticks: nothing while a queue run is in flight, and the run key is the state, so a
    re-poll of an unchanged state launches nothing twice; a failed run of that state is retried (its
    attempt number is in the key) up to ``MAX_ATTEMPTS``.
    """
    if thresholds.queue_low_water == 0:
        return skip(f"queue top-up is off ({QUEUE_LOW_WATER_VAR}=0)")
    if queue_in_flight:
        return skip(f"queue run {queue_in_flight[0]} is in flight")
    if state.open_tasks >= thresholds.queue_low_water:
        return skip(f"{state.open_tasks} open tasks in Label Studio, not under the low-water mark "
                    f"{thresholds.queue_low_water}")  # fmt: skip
    if state.unqueued_items == 0:
        return skip(f"{state.open_tasks} open tasks, but no item is left to queue")
    if (why := past.done_or_given_up()) is not None:
        return skip(f"{state.open_tasks} open tasks, {state.unqueued_items} items to queue, but {why}")
    batch = min(thresholds.queue_batch, state.unqueued_items)
    return Decision(
        True,
        f"{state.open_tasks} open tasks < low-water mark {thresholds.queue_low_water}: queue the next {batch} "
        f"of {state.unqueued_items} items",
        past.attempt_key(f"queue-top-up-{state.key()}"),
    )


# --- retrain trigger -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingDelta:
    """How the current training split differs from the one the champion was trained on."""

    current_items: int
    base_items: int  # 0 without a champion (or when its dataset version is unknown to the store)
    new_items: int  # in the current training split, not in the champion's
    changed_labels: int  # in both, with another label now

    @property
    def changed_share(self) -> float:
        return self.changed_labels / self.base_items if self.base_items else 0.0


def training_delta(current: Mapping[str, str], base: Mapping[str, str] | None) -> TrainingDelta:
    """Compare two training splits given as item -> label."""
    base = base or {}
    new = sum(1 for item in current if item not in base)
    changed = sum(1 for item, label in current.items() if item in base and base[item] != label)
    return TrainingDelta(len(current), len(base), new, changed)


def retrain_blocked(
    dataset_version: str | None, *, failed_checks: list[str], train_in_flight: list[str]
) -> Decision | None:
    """Why no training can start now (checked first: these reads are cheap), or None."""
    if dataset_version is None:
        return skip("no dataset version yet: dataset_splits has not been materialized")
    if failed_checks:
        return skip(f"dataset version {dataset_version} failed blocking checks {', '.join(failed_checks)}: "
                    "it is never trained on")  # fmt: skip
    if train_in_flight:
        return skip(f"train run {train_in_flight[0]} is in flight: one training at a time")
    return None


def retrain_decision(
    dataset_version: str,
    *,
    trained_by: str | None,
    champion: str | None,
    delta: TrainingDelta,
    thresholds: Thresholds,
    past: PastRuns,
) -> Decision:
    """Train when enough new (or relabeled) training items arrived since the champion's dataset version.

    Args:
        dataset_version: the current dataset version (not blocked: see :func:`retrain_blocked`).
        trained_by: a registered model already trained on this version: the same data is never trained
            twice by the loop, whether that model became the champion or not.
        champion: the champion's name/version, or None before there is one.
        delta: the current training split against the champion's.
        thresholds: ``retrain_min_new_items`` and ``retrain_changed_share``.
        past: the loop's earlier train runs for this version.
    """
    if trained_by is not None:
        return skip(f"{trained_by} was already trained on dataset version {dataset_version}")
    since = f"than the champion {champion}" if champion else "(no champion yet)"
    enough_new = delta.new_items >= thresholds.retrain_min_new_items
    enough_changed = delta.base_items > 0 and delta.changed_share >= thresholds.retrain_changed_share
    if not (enough_new or enough_changed):
        return skip(
            f"{delta.new_items} new training items {since} (train at {thresholds.retrain_min_new_items}), "
            f"{delta.changed_labels} changed labels ({delta.changed_share:.1%}; train at "
            f"{thresholds.retrain_changed_share:.0%})"
        )
    if (why := past.done_or_given_up()) is not None:
        return skip(f"dataset version {dataset_version} is due for training, but {why}")
    why = (
        f"{delta.new_items} new training items {since}"
        if enough_new
        else f"{delta.changed_labels} of the champion's {delta.base_items} training items changed label"
    )
    return Decision(True, why, past.attempt_key(f"train-{dataset_version}"))
