"""Project-wide settings every stage shares: the class list and the data folder."""

from pathlib import Path

import dagster as dg

from labeling_assets.constants import DEMO_CLASSES


class ProjectSettings(dg.ConfigurableResource):
    """What is being labeled and where local artifacts live."""

    name: str = "digits-demo"
    classes: list[str] = DEMO_CLASSES
    data_dir: str

    @property
    def data_path(self) -> Path:
        path = Path(self.data_dir)
        path.mkdir(parents=True, exist_ok=True)
        return path
