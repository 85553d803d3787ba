"""The core setup errors as ``dg.Failure``: a run against a misconfigured resource fails with the one-line cause.

Dagster records a ``dg.Failure``'s description as the step's failure (the UI shows it first), so a missing
database reads "label store: PostgreSQL database 'x' does not exist ..." rather than a driver trace. They stay
``ConfigurationError``/``ServiceUnavailable`` too: the CLI maps them to its exit codes, wherever raised.
"""

import dagster as dg

from labeling_assets.core.errors import ConfigurationError, ServiceUnavailable, SetupError


class ConfigurationFailure(ConfigurationError, dg.Failure):
    """A setting is missing or wrong; retrying the run unchanged cannot help, so Dagster's retries are off."""

    def __init__(self, message: str) -> None:
        dg.Failure.__init__(self, description=message, allow_retries=False)


class ServiceFailure(ServiceUnavailable, dg.Failure):
    """A configured service does not answer; a retry may find it up."""

    def __init__(self, message: str) -> None:
        dg.Failure.__init__(self, description=message, allow_retries=True)


def as_failure(exc: SetupError) -> dg.Failure:
    """``exc`` as the ``dg.Failure`` of its kind, same message (itself when it already is one)."""
    if isinstance(exc, dg.Failure):
        return exc
    if isinstance(exc, ServiceUnavailable):
        return ServiceFailure(str(exc))
    return ConfigurationFailure(str(exc))
