"""The team deployment's code location (the docker stack's user-code server loads it): the same definitions as
``labeling_assets.definitions``, with each resource setting the stack's environment feeds bound through
``dg.EnvVar``, so the Dagster UI shows which variable feeds which resource, never its value.

Why not bind them in ``definitions`` too: Dagster fails a run whose bound variable is unset, and the local
setup runs with none of them set (a SQLite store in the data folder, the local Label Studio's URL and token
found when a run starts, a local MLflow). Here every bound variable is one the stack must set anyway
(``LABELING_ASSETS_DEPLOYMENT=prod`` refuses to start a run without the first three).
"""

from typing import Any

import dagster as dg

from labeling_assets.definitions import build_definitions, build_resources

# resource key -> {resource field: the environment variable that feeds it}
TEAM_BINDINGS: dict[str, dict[str, str]] = {
    "label_store": {"url": "LABEL_STORE_URL"},
    "label_studio": {"url": "LABEL_STUDIO_URL", "api_key": "LABEL_STUDIO_API_KEY"},
    "mlflow": {"tracking_uri": "MLFLOW_TRACKING_URI"},
    "image_source": {"uri": "LABELING_ASSETS_IMAGE_SOURCE"},
}


def team_resources() -> dict[str, dg.ConfigurableResource[Any]]:
    """``build_resources()`` with the bound fields set to their ``dg.EnvVar`` (resolved when a run starts)."""
    resources = build_resources()
    for key, fields in TEAM_BINDINGS.items():
        bound = {field: dg.EnvVar(variable) for field, variable in fields.items()}
        resources[key] = type(resources[key])(**bound)
    return resources


defs = build_definitions(team_resources())
