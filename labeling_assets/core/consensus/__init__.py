"""Consensus and labeler quality: aggregation methods, agreement, per-labeler stats, review routing.

The stable API (DESIGN §5, used by benchmarks) is :func:`aggregate`, re-exported here.
"""

from labeling_assets.core.consensus.methods import ConsensusResult, aggregate, aggregate_full

__all__ = ["ConsensusResult", "aggregate", "aggregate_full"]
