"""``labeling-assets labeler pause|resume|list NAME``: stop a labeler's votes from counting, and lift it.

What Label Studio Community (1.23) lets the API do, asserted by tests/integration/test_human_loop.py:
deactivating a user is ignored (``is_active`` is not writable), projects have no member list, but a member can
be removed from the organization (they see no project any more; their annotations stay; only a re-invite
brings them back). ``pause`` does that unless ``--keep-access``, and in every case records the pause in the
label store: their votes from the pause on count for nothing in consensus until ``resume``, and every task whose
live votes then fall below its overlap gets its overlap raised (audited in ``requeue_actions``, the same rule the
queue stage applies on each run: ``core/labelstudio/requeue.py``) so other labelers make up for the lost votes. A labeler
paused with ``--keep-access`` (or by the gate) who answers later has those tasks raised by the next queue run.
``resume`` never lowers an overlap: the votes given while paused stay excluded.

Blind mode (the Label Studio resource's ``blind_labelers``): there is no shared overlap to raise; ``pause`` records
the pause and then runs the queue (``labeling_tasks`` with no new items) at once, which sends the paused labeler's
affected items to other labelers' own projects, audited the same way. The resources are the definitions' own
(``definitions.build_resources``), so the class list, the project and the blind list are the ones the runs use.
"""

import argparse
import datetime as dt
import functools
import getpass
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from labeling_assets.cli.common import use_local_instance
from labeling_assets.core.consensus.retraction import DEFAULT_MAX_OVERLAP
from labeling_assets.core.errors import ConfigurationError
from labeling_assets.core.label_sets import SINGLE_LABEL, TaskType
from labeling_assets.core.labelstudio.requeue import requeue_lost_votes
from labeling_assets.core.store.human_loop import (
    PAUSE,
    RESUME,
    labeler_ids_for,
    labeler_keys,
    pause_intervals,
    pause_states,
    record_pause_event,
)
from labeling_assets.core.store.queries import load_votes
from labeling_assets.core.store.schema import LabelStore, utcnow
from labeling_assets.resources.labelstudio import LabelStudioClient, LabelStudioResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource


def _labeler(store: LabelStore, name: str) -> str:
    labeler_id = labeler_ids_for(store, [name])[name]
    if labeler_id not in labeler_keys(store):
        raise ConfigurationError(f"no labeler {name!r} in the label store (see `labeling-assets labeler list`)")
    return labeler_id


def _since(text: str | None) -> dt.datetime:
    if not text:
        return utcnow()
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigurationError(f"--since {text!r} is not an ISO date or time (e.g. 2026-11-30T08:00)") from exc
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def pause(
    store: LabelStore, client: LabelStudioClient, name: str, *, reason: str | None, since: dt.datetime,
    keep_access: bool, project_id: int | None, classes: Sequence[str], actor: str | None = None,
    max_overlap: int = DEFAULT_MAX_OVERLAP, task_type: TaskType = SINGLE_LABEL, allow_empty: bool = True,
    allow_overlap: bool = False,
) -> str:  # fmt: skip
    """Pause one labeler; returns what was done (one line). See the module docstring.

    ``project_id``/``classes``: the labeling project and class list, whose tasks get their overlap raised where the
    pause takes live votes away (None: no project yet, nothing to raise).
    """
    labeler_id = _labeler(store, name)
    state = pause_states(store).get(labeler_id)
    if state is not None and state.paused:
        return f"{name} is already paused since {state.since} ({state.label_studio_effect})"
    user_id = int(labeler_id)
    if client.try_deactivate_user(user_id):
        effect = "deactivated in Label Studio"
    elif keep_access:
        effect = "Label Studio access kept (--keep-access): new votes are excluded from consensus"
    elif client.remove_from_organization(user_id):
        effect = "removed from the Label Studio organization (deactivation is not in Community's API); re-invite to undo"
    else:
        effect = "not a member of the Label Studio organization any more"
    reopened = 0
    if project_id is not None:
        pauses = dict(pause_intervals(store))
        pauses[labeler_id] = [*pauses.get(labeler_id, []), (since, None)]
        loaded = load_votes(store, list(classes), task_type=task_type, allow_empty=allow_empty, allow_overlap=allow_overlap)
        outcome = requeue_lost_votes(store, client, project_id, loaded,
                                     max_overlap=max_overlap, pauses=pauses, recreate=False)  # fmt: skip
        reopened = len(outcome.raised)
    record_pause_event(store, labeler_id, PAUSE, reason=reason, actor=actor or getpass.getuser(),
                       label_studio_effect=effect, items_reopened=reopened, at=since)  # fmt: skip
    return f"paused {name} (Label Studio user {labeler_id}) from {since.isoformat()}: {effect}; {reopened} tasks reopened"


def resume(store: LabelStore, client: LabelStudioClient | None, name: str, *, reason: str | None,
           actor: str | None = None) -> str:  # fmt: skip
    """Lift a pause: their votes count again from now on (those given while paused stay excluded)."""
    labeler_id = _labeler(store, name)
    state = pause_states(store).get(labeler_id)
    if state is None or not state.paused:
        return f"{name} is not paused"
    note = "votes count again"
    if state.label_studio_effect and state.label_studio_effect.startswith("removed") and client is not None:
        note += f"; Label Studio access: send them the organization's invite link {client.invite_url()}"
    record_pause_event(store, labeler_id, RESUME, reason=reason, actor=actor or getpass.getuser(),
                       label_studio_effect=note)  # fmt: skip
    return f"resumed {name}: {note}"


def cmd_labeler(args: argparse.Namespace) -> int:
    if args.action == "list":
        store = LabelStoreResource().get_store()  # migrated: a store no run has touched yet lists nobody
        states = pause_states(store)
        for labeler_id, key in sorted(labeler_keys(store).items(), key=lambda kv: kv[1]):
            s = states.get(labeler_id)
            print(f"{key}\tid {labeler_id}\t" + (f"PAUSED since {s.since}: {s.reason or '-'}" if s and s.paused else "active"))
        return 0
    if not args.name:
        raise ConfigurationError(f"labeler {args.action} needs a NAME (see `labeling-assets labeler list`)")
    # The runs' own settings (class list, project, blind list); the definitions load only for this command.
    from labeling_assets.definitions import build_resources

    resources = build_resources()
    label_studio = resources["label_studio"]
    assert isinstance(label_studio, LabelStudioResource)
    label_studio.check()
    if args.action == "pause":
        use_local_instance()  # blind mode's queue run shows in the UI beside the others
        with dg.DagsterInstance.get() as instance:
            print(pause_labeler(resources, args.name, reason=args.reason, since=_since(args.since),
                                keep_access=args.keep_access, max_overlap=args.max_overlap, instance=instance))  # fmt: skip
    else:
        print(resume(_store_of(resources), label_studio.get_client(), args.name, reason=args.reason))
    return 0


def _store_of(resources: Mapping[str, Any]) -> LabelStore:
    resource = resources["label_store"]
    assert isinstance(resource, LabelStoreResource)
    return resource.get_store()


def pause_labeler(
    resources: Mapping[str, Any], name: str, *, reason: str | None, since: dt.datetime, keep_access: bool,
    max_overlap: int, instance: dg.DagsterInstance, actor: str | None = None, queue_config: Mapping[str, Any] | None = None,
) -> str:  # fmt: skip
    """``labeler pause`` with the definitions' resources: the shared project's overlap is raised at once, or
    (blind mode) the queue runs at once with no new items and sends the affected items to other labelers.

    ``queue_config``: more ``labeling_tasks`` config for that run (default: the asset's defaults, as the sensors'
    queue runs use)."""
    label_studio, settings = resources["label_studio"], resources["project"]
    assert isinstance(label_studio, LabelStudioResource) and isinstance(settings, ProjectSettings)
    store = _store_of(resources)
    record = functools.partial(
        pause, store, label_studio.get_client(), name, reason=reason, since=since, keep_access=keep_access,
        classes=list(settings.classes), max_overlap=max_overlap, task_type=settings.task_type,
        allow_empty=settings.allow_empty_set, allow_overlap=settings.allow_overlapping_spans, actor=actor,
    )  # fmt: skip
    if not label_studio.blind:
        return record(project_id=label_studio.find_project_id())
    state = pause_states(store).get(_labeler(store, name))
    done = record(project_id=None)
    if state is not None and state.paused:  # already paused: nothing new to send
        return done
    from labeling_assets.assets.queue import labeling_tasks

    config = {**(queue_config or {}), "max_new_tasks": 0, "max_overlap": max_overlap}
    result = dg.materialize([labeling_tasks], resources=dict(resources), instance=instance, raise_on_error=False,
                            run_config={"ops": {"labeling_tasks": {"config": config}}})  # fmt: skip
    if not result.success:
        return (f"{done}; blind mode: the queue run {result.run_id[:8]} that sends their items to other labelers "
                "failed (see it in the Dagster UI); the next queue run will send them")  # fmt: skip
    meta = result.asset_materializations_for_node("labeling_tasks")[0].metadata
    sent = meta["sent_to_more_labelers"].value
    return f"{done}; blind mode: {sent} items sent to other labelers' projects (queue run {result.run_id[:8]})"


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("labeler", help="pause a labeler (their new votes stop counting), resume them, list them")
    p.add_argument("action", choices=["pause", "resume", "list"])
    p.add_argument("name", nargs="?", help="the labeler's name (partition key), username, email or Label Studio id")
    p.add_argument("--reason", help="why (kept in the audit trail)")
    p.add_argument("--since", help="pause: votes from this UTC time on stop counting (default: now)")
    p.add_argument(
        "--keep-access", action="store_true",
        help="pause: leave them in the Label Studio organization (only the store-side exclusion)",
    )  # fmt: skip
    p.add_argument(
        "--max-overlap", type=int, default=DEFAULT_MAX_OVERLAP,
        help=f"pause: cap on a raised task overlap (default {DEFAULT_MAX_OVERLAP}, the queue's max_overlap)",
    )  # fmt: skip
    p.set_defaults(func=cmd_labeler)
