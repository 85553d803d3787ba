"""Pure domain logic. Nothing under this package may import dagster (tests/test_layout.py enforces it)."""
