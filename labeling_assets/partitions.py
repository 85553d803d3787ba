"""Partition definitions.

Labeler keys (a readable, stable Label Studio identity: the username or email, sanitized; the numeric user id
stays the store's key, ``labelers.partition_key`` maps one to the other) are added by the ``annotations`` asset (collect), for every
labeler the store holds: the sensor cannot know who labeled before the sync, and adding from the store is
idempotent and repairs a crash between the store commit and the partition request.
"""

import dagster as dg

LABELERS = "labelers"

labelers = dg.DynamicPartitionsDefinition(name=LABELERS)

# The cells of the current training sweep's grid (core/training/sweep.py), added by the sweep_plan asset.
SWEEP_CELLS = "sweep_cells"

sweep_cells = dg.DynamicPartitionsDefinition(name=SWEEP_CELLS)
