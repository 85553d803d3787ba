"""``labeling-assets labeler pause|resume|list NAME``: stop a labeler's votes from counting, and lift it.

What Label Studio Community (1.23) lets the API do, asserted by tests/integration/test_human_loop.py:
deactivating a user is ignored (``is_active`` is not writable), projects have no member list, but a member can
be removed from the organization (they see no project any more; their annotations stay; only a re-invite
brings them back). ``pause`` does that unless ``--keep-access``, and in every case records the pause in the
label store: their votes from the pause on count for nothing in consensus until ``resume``, and the tasks
they answered since get their overlap raised by one so another labeler makes up for the vote.
"""

import argparse
import datetime as dt
import getpass

from labeling_assets.cli.common import label_store
from labeling_assets.core.errors import ConfigurationError
from labeling_assets.core.store.human_loop import (
    PAUSE,
    RESUME,
    labeler_ids_for,
    labeler_keys,
    pause_states,
    record_pause_event,
    tasks_to_reopen,
)
from labeling_assets.core.store.schema import LabelStore, utcnow
from labeling_assets.resources.labelstudio import LabelStudioClient, LabelStudioResource


def _labeler(store: LabelStore, name: str) -> str:
    labeler_id = labeler_ids_for(store, [name])[name]
    if labeler_id not in labeler_keys(store):
        raise ConfigurationError(f"no labeler {name!r} in the label store (see `labeling-assets labeler list`)")
    return labeler_id


def _client() -> LabelStudioClient:
    resource = LabelStudioResource()
    resource.check()
    return resource.get_client()


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
    keep_access: bool, actor: str | None = None,
) -> str:  # fmt: skip
    """Pause one labeler; returns what was done (one line). See the module docstring."""
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
    for _item, task_id, _stored in tasks_to_reopen(store, labeler_id, since):
        client.set_task_overlap(task_id, client.task_overlap(task_id) + 1)
        reopened += 1
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
    store = label_store()
    if args.action == "list":
        states = pause_states(store)
        for labeler_id, key in sorted(labeler_keys(store).items(), key=lambda kv: kv[1]):
            s = states.get(labeler_id)
            print(f"{key}\tid {labeler_id}\t" + (f"PAUSED since {s.since}: {s.reason or '-'}" if s and s.paused else "active"))
        return 0
    if not args.name:
        raise ConfigurationError(f"labeler {args.action} needs a NAME (see `labeling-assets labeler list`)")
    if args.action == "pause":
        print(pause(store, _client(), args.name, reason=args.reason, since=_since(args.since), keep_access=args.keep_access))
    else:
        print(resume(store, _client(), args.name, reason=args.reason))
    return 0


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
    p.set_defaults(func=cmd_labeler)
