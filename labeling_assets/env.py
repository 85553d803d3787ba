"""Choose the environment in one place: every resource of every deployment is built here.

``LABELING_ASSETS_DEPLOYMENT`` = ``local`` (default: embedded SQLite, local Label Studio and MLflow under
the data folder) or ``prod`` (URLs and secrets from the environment, e.g. the docker/ stack). Asset
bodies never branch on the environment.
"""

import os
from typing import Any

import dagster as dg

from labeling_assets.constants import data_dir
from labeling_assets.core.store import sqlite_url
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource


def get_deployment() -> str:
    return os.environ.get("LABELING_ASSETS_DEPLOYMENT", "local")


def build_resources(deployment: str | None = None) -> dict[str, Any]:
    """Resources for a deployment, keyed by the names assets ask for."""
    deployment = deployment or get_deployment()
    folder = data_dir()
    if deployment == "prod":
        store = LabelStoreResource(url=dg.EnvVar("LABEL_STORE_URL"))
    else:
        store = LabelStoreResource(url=os.environ.get("LABEL_STORE_URL", sqlite_url(str(folder / "labels.db"))))
    return {
        "project": ProjectSettings(data_dir=str(folder)),
        "label_store": store,
    }
