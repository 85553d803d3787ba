"""The decorator of every stage's asset: the project's conventions for an asset, stated once.

An asset sits in the group of its stage (``constants.GROUP_*``, one per module of ``assets/``), says its
``kinds`` and is owned by the team (STYLE §6); an ``eager`` one materializes as soon as an asset it depends on
does (STYLE §7: consensus, stats and splits follow without a sensor). ``@stage.asset(...)`` is
``@dg.asset(...)`` with those filled in; anything else an asset needs (a pool, a retry policy, partitions)
is passed as to ``dg.asset``.
"""

from collections.abc import Callable, Iterable
from typing import Any

import dagster as dg

from labeling_assets.constants import OWNERS


def asset(
    group: str,
    *,
    kinds: set[str],
    deps: Iterable[dg.AssetKey | str | dg.AssetsDefinition] | None = None,
    eager: bool = False,
    pool: str | None = None,
    retry_policy: dg.RetryPolicy | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
    backfill_policy: dg.BackfillPolicy | None = None,
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """``dg.asset`` for a stage: in ``group``, owned by the team, eager when asked."""
    return dg.asset(
        group_name=group,
        kinds=kinds,
        deps=deps,
        owners=OWNERS,
        automation_condition=dg.AutomationCondition.eager() if eager else None,
        pool=pool,
        retry_policy=retry_policy,
        partitions_def=partitions_def,
        backfill_policy=backfill_policy,
    )
