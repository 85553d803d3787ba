"""The integration tests' real servers: Label Studio is the session fixture ``label_studio`` of
``tests/conftest.py`` (defined in ``tests/labelstudio_server.py``), one server for the whole run; an MLflow
tracking server on PostgreSQL is the module fixture ``mlflow_server`` (``tests/mlflow_server.py``), and a Label
Studio on PostgreSQL the module fixture ``label_studio_postgres``."""

from tests.labelstudio_server import LabelStudioServer, label_studio_postgres, start_server
from tests.mlflow_server import MLflowServer, mlflow_server

__all__ = ["LabelStudioServer", "MLflowServer", "label_studio_postgres", "mlflow_server", "start_server"]
