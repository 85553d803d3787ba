"""Consensus and labeler quality: aggregation methods, votes, agreement, per-labeler stats, review routing.

The stable API (DESIGN §5, used by benchmarks) is :func:`aggregate`, re-exported here. The methods live
in :mod:`.methods` (dispatch, majority), :mod:`.dawid_skene` and :mod:`.crowdlab`, sharing the coding
of :mod:`.encoding`; :mod:`.votes` turns stored annotation rows into votes.
"""

from labeling_assets.core.consensus.methods import (
    ConsensusInputError,
    ConsensusResult,
    aggregate,
    aggregate_full,
)

__all__ = ["ConsensusInputError", "ConsensusResult", "aggregate", "aggregate_full"]
