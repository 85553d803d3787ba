"""A simulated crowd that keeps working: it answers each wave of tasks as the loop puts it in Label Studio.

``labeling-assets demo --serve``, the soak test (tests/soak) and ``benchmarks/loop_latency.py`` play only the
crowd with it; the Dagster daemon does every other step (ingest, prelabels, queue, collect, consensus,
training). The crowd polls Label Studio's task counts (one request); when tasks are open it labels every one
up to the overlap the task asks for (a task whose overlap consensus raised gets more labelers), through the
same API a person's browser uses. A server that is down is waited for, never a reason to stop.
"""

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from labeling_assets.core.labelstudio.crowd import LabelerSpec, SetLabelerSpec, plan_set_crowd
from labeling_assets.local.crowd import simulate_crowd
from labeling_assets.resources.labelstudio import LabelStudioClient

DEFAULT_OVERLAP = 3
Truth = str | list[str]  # an item's true class, or its true set (multi-label)
# Open tasks a wave could not serve are looked at again after this long even when the counts did not move
# (their item's truth may not have been readable yet).
RETRY_FRUITLESS_S = 15.0


@dataclass
class CrowdLog:
    """What the crowd did so far (read from another thread: counters only grow)."""

    waves: int = 0
    annotations: int = 0
    outages: int = 0  # polls or waves that found Label Studio unreachable or failing
    last_error: str = ""
    wave_sizes: list[int] = field(default_factory=list)


def label_open_tasks(
    client: LabelStudioClient,
    project_id: int,
    labelers: Sequence[LabelerSpec] | Sequence[SetLabelerSpec],
    *,
    truth: Mapping[str, Truth],
    classes: Sequence[str],
    seed: int = 0,
    workers: int = 1,
    max_items: int | None = None,
) -> int:
    """One wave: each open task of an item in ``truth`` (the first ``max_items`` of them, in Label Studio's
    order, when given) gets the annotations its overlap asks for, from labelers who have not labeled it yet;
    returns how many were posted (0: nothing was open to this crowd). A crowd of ``SetLabelerSpec`` answers a
    multi-label project: ``truth`` then maps items to their true sets."""
    overlap_of: dict[str, int] = {}
    for task in client.iter_tasks(project_id):
        item_id = (task.get("data") or {}).get("item_id")
        if item_id and not task.get("is_labeled"):
            overlap_of.setdefault(str(item_id), int(task.get("overlap") or DEFAULT_OVERLAP))
    by_overlap: dict[int, dict[str, Truth]] = {}
    servable = [item_id for item_id in overlap_of if item_id in truth]
    for item_id in servable[:max_items] if max_items else servable:
        by_overlap.setdefault(overlap_of[item_id], {})[item_id] = truth[item_id]
    posted = 0
    for overlap, subset in sorted(by_overlap.items()):
        options: dict[str, Any] = {"classes": classes, "overlap": overlap, "seed": seed, "workers": workers}
        sets = [a for a in labelers if isinstance(a, SetLabelerSpec)]
        if sets:
            result = simulate_crowd(client, project_id, sets, truth=subset, plan=plan_set_crowd, **options)
        else:
            singles = [a for a in labelers if isinstance(a, LabelerSpec)]
            result = simulate_crowd(client, project_id, singles, truth=subset, **options)
        posted += len(result.annotations)
    return posted


class CrowdWaves:
    """The crowd as a background thread: ``start()``, ``stop()``, and ``log`` to watch it.

    Args:
        client: an admin client factory, called on every poll (a restarted server is found again).
        project_title: the Label Studio project the loop queues into (it may not exist yet).
        labelers: the crowd (Label Studio users, created on the first wave).
        truth: called before each wave: item_id -> true class (true set, for a crowd of ``SetLabelerSpec``) of
            the items the crowd may label.
        classes: the project's class list.
        poll_s: seconds between looks at the task counts (and between waves).
        workers: annotations posted at once. 1 by default: Label Studio 1.23 loses count when several
            annotations of one task are saved at the same moment (the task stays "not labeled" with all its
            annotations), which people at their own screens do not do.
        items_per_wave: label at most this many tasks a wave (a crowd working at a pace); None: all open ones.
        on_wave: called with the number of annotations each wave posted.
    """

    def __init__(
        self,
        client: Callable[[], LabelStudioClient],
        project_title: str,
        labelers: Sequence[LabelerSpec] | Sequence[SetLabelerSpec],
        *,
        truth: Callable[[], Mapping[str, Truth]],
        classes: Sequence[str],
        seed: int = 0,
        poll_s: float = 2.0,
        workers: int = 1,
        items_per_wave: int | None = None,
        on_wave: Callable[[int], None] | None = None,
    ) -> None:
        self._client, self._title, self._labelers = client, project_title, labelers
        self._truth, self._classes, self._seed = truth, list(classes), seed
        self._poll_s, self._workers, self._on_wave = poll_s, workers, on_wave
        self._items_per_wave = items_per_wave
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="crowd-waves", daemon=True)
        self.log = CrowdLog()

    def start(self) -> "CrowdWaves":
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 60.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        fruitless: tuple[tuple[int, int], float] | None = None  # task counts a wave found nothing to do at, when
        while not self._stop.is_set():
            try:
                fruitless = self._poll(fruitless)
            except Exception as exc:  # Label Studio down or restarting, a busy store: the next poll tries again
                self.log.outages += 1
                self.log.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
            self._stop.wait(self._poll_s)

    def _poll(self, fruitless: tuple[tuple[int, int], float] | None) -> tuple[tuple[int, int], float] | None:
        client = self._client()
        project_id = next((int(p["id"]) for p in client.list_projects() if p.get("title") == self._title), None)
        if project_id is None:
            return fruitless
        progress = client.task_progress(project_id)
        if progress[0] <= progress[1]:
            return fruitless
        if fruitless is not None and fruitless[0] == progress and time.monotonic() - fruitless[1] < RETRY_FRUITLESS_S:
            return fruitless
        posted = label_open_tasks(
            client,
            project_id,
            self._labelers,
            truth=self._truth(),
            classes=self._classes,
            seed=self._seed + self.log.waves,
            workers=self._workers,
            max_items=self._items_per_wave,
        )
        if posted == 0:  # open tasks this crowd cannot serve now (no truth yet, or overlap > crowd size)
            return progress, time.monotonic()
        self.log.waves += 1
        self.log.annotations += posted
        self.log.wave_sizes.append(posted)
        if self._on_wave is not None:
            self._on_wave(posted)
        return None


def wait_until(what: str, condition: Callable[[], object], timeout_s: float, poll_s: float = 1.0) -> None:
    """Poll ``condition`` until it is true; raise TimeoutError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(poll_s)
    raise TimeoutError(f"not within {timeout_s:.0f}s: {what}")
