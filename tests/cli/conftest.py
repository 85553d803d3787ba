"""The CLI tests' commands: ``labeling-assets`` forked from one Python that imported it once (the session fixture
``forked_cli`` of tests/conftest.py, tests/forked_cli.py): one forking server a worker, shared with tests/faults."""
