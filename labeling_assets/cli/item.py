"""``labeling-assets item ITEM``: one item's history; ``item flag ITEM --reason ...`` / ``item unflag ITEM``: send an
item to expert review by hand, or take the request back (core/store/flags.py).

ITEM is an item id, a unique prefix of one, the source path it was read from, or the URI of its stored copy. A flag
is an open review request (source ``manual``): the next ``adjudications`` run queues the item in the Label Studio
review project. Only the label store is touched, so a flag works while Label Studio is down.
"""

import argparse
import getpass
from collections.abc import Sequence
from typing import Any

from labeling_assets.cli import dataset
from labeling_assets.cli.common import label_store
from labeling_assets.core.errors import ConfigurationError
from labeling_assets.core.store.flags import FlagRefused, UnknownItem, flag_item, resolve_item, unflag_item

ACTIONS = ("history", "flag", "unflag")


class _ItemAfterAction(argparse.Action):
    """A second word is an ITEM only after an action: ``item item 4daa006f`` (a pasted printout) is a usage error."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: str | Sequence[Any] | None,
                 option_string: str | None = None) -> None:  # fmt: skip
        if values is not None and namespace.first not in ACTIONS:
            parser.error(f"unrecognized arguments: {values} (the actions are {', '.join(ACTIONS)})")
        setattr(namespace, self.dest, values)


def cmd_item(args: argparse.Namespace) -> int:
    action, name = (args.first, args.item) if args.first in ACTIONS else ("history", args.first)
    if name is None:
        raise ConfigurationError(f"item {action} needs an ITEM: an item id (or a unique prefix), a source path or a URI")
    if action == "history":
        args.item_id = name
        return dataset.cmd_item(args)
    store = label_store()
    store.ensure_schema()
    try:
        item_id = resolve_item(store, name)
        if action == "unflag":
            undone = unflag_item(store, item_id)
            print(f"item {item_id[:12]}: flag resolved (a review task already in Label Studio stays there)" if undone
                  else f"item {item_id[:12]} has no open flag")  # fmt: skip
            return 0
        outcome = flag_item(store, item_id, args.reason or "", actor=getpass.getuser())
    except (UnknownItem, FlagRefused) as exc:
        raise ConfigurationError(str(exc)) from None
    state = "flagged for expert review" if outcome.recorded else "already flagged (its open flag stands)"
    where = (f"already in the review project (task {outcome.review_task})" if outcome.review_task is not None
             else "the next `adjudications` run queues it in the Label Studio review project")  # fmt: skip
    print(f"item {item_id[:12]}: {state}; {where}")
    return 0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "item", help="one item's history (votes, consensus, splits, models), or flag it for expert review by hand",
        description="`item ITEM` prints everything the store knows about one item; `item flag ITEM --reason ...` sends "
        "it to expert review (the next adjudications run queues it in the Label Studio review project); `item unflag "
        "ITEM` takes an open flag back. ITEM: an item id, a unique prefix of it, its source path or the URI of its copy.",
    )  # fmt: skip
    p.add_argument("first", metavar="[history|flag|unflag] ITEM", help="an action, then ITEM; or ITEM alone (history)")
    p.add_argument("item", nargs="?", action=_ItemAfterAction, help=argparse.SUPPRESS)
    p.add_argument("--reason", help="flag: why (required; the expert reads it beside the item)")
    p.add_argument("--json", action="store_true", help="history: machine-readable output")
    p.set_defaults(func=cmd_item)
