"""The integration tests' real Label Studio is the session fixture ``label_studio`` of ``tests/conftest.py``
(defined in ``tests/labelstudio_server.py``): one server for the whole run, whichever folders use it."""

from tests.labelstudio_server import LabelStudioServer, start_server

__all__ = ["LabelStudioServer", "start_server"]
