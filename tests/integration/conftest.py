"""The integration tests' real servers: Label Studio is the session fixture ``label_studio`` of
``tests/conftest.py`` (defined in ``tests/labelstudio_server.py``), one server for the whole run; an MLflow
tracking server on PostgreSQL is the module fixture ``mlflow_server`` (``tests/mlflow_server.py``)."""

from tests.labelstudio_server import LabelStudioServer, start_server
from tests.mlflow_server import MLflowServer, mlflow_server

__all__ = ["LabelStudioServer", "MLflowServer", "mlflow_server", "start_server"]
