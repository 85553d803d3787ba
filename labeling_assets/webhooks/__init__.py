"""The webhook receiver: Label Studio posts here when annotations change (``labeling-assets webhooks serve``)."""
