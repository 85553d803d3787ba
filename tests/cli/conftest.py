"""CLI tests reach the real Label Studio of the integration tests (a session fixture, started by the project's code)."""

from tests.integration.conftest import label_studio  # noqa: F401  (re-exported fixture)
