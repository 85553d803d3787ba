"""The rules the loop decides by: when to ingest, queue, retrain; and that each says why."""

from dataclasses import dataclass

import pytest

from labeling_assets.core import automation as auto

T = auto.Thresholds()


@dataclass(frozen=True)
class Listed:
    rel_path: str
    size: int | None
    mtime_ns: int | None
    ctime_ns: int | None = None
    inode: int | None = None
    refused: tuple[str, str] | None = None


def files(*specs: tuple[str, int, int]) -> list[Listed]:
    return [Listed(path, size, mtime, mtime, len(path)) for path, size, mtime in specs]


# --- thresholds ----------------------------------------------------------------------------------


def test_thresholds_default_when_no_variable_is_set() -> None:
    assert auto.thresholds_from(lambda name: None) == auto.Thresholds(50, 200, 50, 0.10, 7)


def test_each_variable_overrides_its_threshold() -> None:
    values = {auto.QUEUE_LOW_WATER_VAR: "0", auto.QUEUE_BATCH_VAR: "25", auto.RETRAIN_MIN_NEW_VAR: " 10 ",
              auto.RETRAIN_CHANGED_SHARE_VAR: "0.5", auto.BACKUP_KEEP_VAR: "3"}  # fmt: skip
    assert auto.thresholds_from(values.get) == auto.Thresholds(0, 25, 10, 0.5, 3)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (auto.QUEUE_BATCH_VAR, "many", "is not a whole number"),
        (auto.QUEUE_BATCH_VAR, "0", "below its minimum 1"),
        (auto.RETRAIN_CHANGED_SHARE_VAR, "10", "must be a share in (0, 1]"),
    ],
)
def test_a_bad_threshold_is_an_error_naming_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=rf"{name}=.*{message[:12]}"):
        auto.thresholds_from({name: value}.get)


# --- raw data ------------------------------------------------------------------------------------


def test_the_fingerprint_changes_with_any_added_removed_resized_or_touched_file() -> None:
    base = files(("a.png", 10, 1), ("b.png", 20, 2))
    fp = auto.listing_fingerprint(base)
    assert fp.startswith("2:")
    assert auto.listing_fingerprint(list(reversed(base))) == fp  # listing order does not matter
    assert auto.listing_fingerprint(files(("a.png", 10, 1))) != fp
    assert auto.listing_fingerprint([*base, *files(("c.png", 5, 3))]) != fp
    assert auto.listing_fingerprint(files(("a.png", 11, 1), ("b.png", 20, 2))) != fp
    assert auto.listing_fingerprint(files(("a.png", 10, 9), ("b.png", 20, 2))) != fp


def test_an_unchanged_listing_is_an_idle_tick() -> None:
    decision = auto.raw_data_decision("2:abc", "2:abc", ingest_in_flight=[], past=auto.PastRuns(1, 0, "SUCCESS"))
    assert not decision.launch and decision.reason == "no new or changed file in the image source (2 files)"


def test_a_changed_listing_launches_ingest_keyed_by_the_fingerprint() -> None:
    decision = auto.raw_data_decision("3:def", "2:abc", ingest_in_flight=[], past=auto.PastRuns())
    assert decision.launch and decision.run_key == "raw-data-3:def-attempt-1"


def test_a_change_waits_while_an_ingest_is_in_flight() -> None:
    decision = auto.raw_data_decision("3:def", "2:abc", ingest_in_flight=["r1"], past=auto.PastRuns())
    assert not decision.launch and "ingest run r1 is in flight" in decision.reason


def test_a_failed_ingest_is_retried_with_a_new_run_key_then_given_up() -> None:
    retry = auto.raw_data_decision("2:abc", "2:abc", ingest_in_flight=[], past=auto.PastRuns(1, 1, "FAILURE"))
    assert retry.launch and retry.run_key == "raw-data-2:abc-attempt-2"
    given_up = auto.raw_data_decision("2:abc", "2:abc", ingest_in_flight=[], past=auto.PastRuns(3, 3, "FAILURE"))
    assert not given_up.launch and "failed 3 times" in given_up.reason


# --- queue top-up --------------------------------------------------------------------------------


def queue(state: auto.QueueState, past: auto.PastRuns | None = None, **thresholds: int) -> auto.Decision:
    return auto.queue_decision(
        state, auto.Thresholds(**thresholds), queue_in_flight=[], past=past or auto.PastRuns()
    )


def test_under_the_low_water_mark_the_next_batch_is_queued() -> None:
    decision = queue(auto.QueueState(7, tasks=100, finished_tasks=80, unqueued_items=500), queue_low_water=50, queue_batch=200)
    assert decision.launch
    assert decision.reason == "20 open tasks < low-water mark 50: queue the next 200 of 500 items"
    assert decision.run_key == "queue-top-up-7-100-80-500-attempt-1"


def test_at_or_above_the_low_water_mark_nothing_is_queued() -> None:
    decision = queue(auto.QueueState(7, 100, 50, 500), queue_low_water=50)
    assert not decision.launch and decision.reason == "50 open tasks in Label Studio, not under the low-water mark 50"


def test_without_items_left_or_with_the_top_up_off_nothing_is_queued() -> None:
    assert "no item is left to queue" in queue(auto.QueueState(7, 100, 100, 0)).reason
    assert "off" in queue(auto.QueueState(7, 0, 0, 10), queue_low_water=0).reason


def test_a_project_that_does_not_exist_yet_has_no_open_task() -> None:
    assert queue(auto.QueueState(None, 0, 0, 10)).launch


def test_a_state_whose_queue_run_succeeded_is_not_queued_again_but_a_failed_one_is_retried() -> None:
    state = auto.QueueState(7, 100, 90, 5)
    assert not queue(state, auto.PastRuns(1, 0, "SUCCESS")).launch
    assert queue(state, auto.PastRuns(1, 1, "FAILURE")).run_key == "queue-top-up-7-100-90-5-attempt-2"
    assert not queue(state, auto.PastRuns(3, 3, "FAILURE")).launch


# --- retrain trigger -----------------------------------------------------------------------------


def labels(n: int, start: int = 0, label: str = "a") -> dict[str, str]:
    return {f"i{k}": label for k in range(start, start + n)}


def retrain(delta: auto.TrainingDelta, *, trained_by: str | None = None, champion: str | None = "m/1",
            past: auto.PastRuns | None = None) -> auto.Decision:  # fmt: skip
    return auto.retrain_decision("v2", trained_by=trained_by, champion=champion, delta=delta, thresholds=T,
                                 past=past or auto.PastRuns())  # fmt: skip


def test_the_delta_counts_new_and_relabeled_training_items() -> None:
    base = labels(100)
    current = {**labels(100), **labels(10, start=100), "i0": "b", "i1": "b"}
    assert auto.training_delta(current, base) == auto.TrainingDelta(110, 100, 10, 2)
    assert auto.training_delta(labels(30), None) == auto.TrainingDelta(30, 0, 30, 0)


def test_enough_new_training_items_since_the_champion_trigger_training() -> None:
    decision = retrain(auto.training_delta({**labels(100), **labels(50, start=100)}, labels(100)))
    assert decision.launch and decision.reason == "50 new training items than the champion m/1"
    assert decision.run_key == "train-v2-attempt-1"


def test_too_few_new_items_and_few_changed_labels_do_not() -> None:
    decision = retrain(auto.training_delta({**labels(100), **labels(49, start=100)}, labels(100)))
    assert not decision.launch
    assert decision.reason.startswith("49 new training items than the champion m/1 (train at 50), 0 changed")


def test_a_share_of_changed_labels_triggers_training_without_new_items() -> None:
    current = {**labels(100), **{f"i{k}": "b" for k in range(10)}}
    decision = retrain(auto.training_delta(current, labels(100)))
    assert decision.launch and decision.reason == "10 of the champion's 100 training items changed label"


def test_without_a_champion_training_starts_at_k_training_items() -> None:
    assert retrain(auto.training_delta(labels(50), None), champion=None).launch
    assert not retrain(auto.training_delta(labels(49), None), champion=None).launch


def test_a_version_already_trained_on_is_not_trained_again() -> None:
    decision = retrain(auto.training_delta(labels(500), None), trained_by="m/3")
    assert not decision.launch and decision.reason == "m/3 was already trained on dataset version v2"


def test_failed_blocking_checks_or_a_training_in_flight_block_training() -> None:
    blocked = auto.retrain_blocked("v2", failed_checks=["no_leak", "frozen"], train_in_flight=[])
    assert blocked is not None and "failed blocking checks no_leak, frozen: it is never trained on" in blocked.reason
    busy = auto.retrain_blocked("v2", failed_checks=[], train_in_flight=["r9"])
    assert busy is not None and "one training at a time" in busy.reason
    assert auto.retrain_blocked(None, failed_checks=[], train_in_flight=[]) is not None
    assert auto.retrain_blocked("v2", failed_checks=[], train_in_flight=[]) is None
