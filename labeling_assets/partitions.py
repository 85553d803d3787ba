"""Partition definitions. Only the annotation sensor adds labeler keys (stable Label Studio user ids)."""

import dagster as dg

labelers = dg.DynamicPartitionsDefinition(name="labelers")
