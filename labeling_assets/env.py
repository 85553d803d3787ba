"""Choose the environment in one place: every resource of every deployment is built here.

``LABELING_ASSETS_DEPLOYMENT`` = ``local`` (default: embedded SQLite, local Label Studio and MLflow under
the data folder) or ``prod`` (URLs and secrets from the environment, e.g. the docker/ stack). Asset
bodies never branch on the environment.
"""

import os
from typing import Any

import dagster as dg

from labeling_assets.constants import data_dir
from labeling_assets.core.store.schema import sqlite_url
from labeling_assets.local.labelstudio import export_local_env
from labeling_assets.resources.image_source import ImageSourceResource
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.mlflow import MLflowResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource


def get_deployment() -> str:
    return os.environ.get("LABELING_ASSETS_DEPLOYMENT", "local")


def label_store_url() -> str:
    """The label store URL for scripts and the CLI (assets get it through the resource)."""
    return os.environ.get("LABEL_STORE_URL") or sqlite_url(str(data_dir() / "labels.db"))


def build_resources(deployment: str | None = None) -> dict[str, Any]:
    """Resources for a deployment, keyed by the names assets ask for."""
    deployment = deployment or get_deployment()
    if deployment == "local":
        # `labeling-assets labelstudio start` keeps URL and token under the data folder: expose them as the
        # environment variables the resource reads (never overriding what the environment already says).
        export_local_env()
    folder = data_dir()
    # A URL may hold a password: when it comes from the environment it goes through EnvVar, which
    # Dagster resolves at launch and never shows in the UI.
    if deployment == "prod" or "LABEL_STORE_URL" in os.environ:
        store = LabelStoreResource(url=dg.EnvVar("LABEL_STORE_URL"))
    else:
        store = LabelStoreResource(url=sqlite_url(str(folder / "labels.db")))
    return {
        "project": ProjectSettings(data_dir=str(folder)),
        "label_store": store,
        "image_source": ImageSourceResource(
            uri=os.environ.get("LABELING_ASSETS_IMAGE_SOURCE") or None, demo_dir=str(folder / "demo" / "digits")
        ),
        # Local: `labeling-assets labelstudio start` runs it on 127.0.0.1:8080 and the CLI exports the token.
        "label_studio": LabelStudioResource(
            url=os.environ.get("LABEL_STUDIO_URL", "http://127.0.0.1:8080"),
            api_key=dg.EnvVar("LABEL_STUDIO_API_KEY"),
            project_title=os.environ.get("LABEL_STUDIO_PROJECT", "labeling-assets"),
        ),
        # Local: SQLite tracking store under the data folder; a team sets MLFLOW_TRACKING_URI (a server).
        "mlflow": MLflowResource(
            data_dir=str(folder),
            tracking_uri=dg.EnvVar("MLFLOW_TRACKING_URI") if "MLFLOW_TRACKING_URI" in os.environ else None,
        ),
    }
