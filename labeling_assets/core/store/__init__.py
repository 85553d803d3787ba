"""Persistence: the label store's schema and migrations, and the store side of the Label Studio loop."""
