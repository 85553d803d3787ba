"""Bounding boxes (issue 30): the box kind of task (``task_type: boxes``), registered in ``core/tasks/registry.py``.

``kind.py`` holds the ``TaskKind`` parts over the pure-domain modules here (Label Studio config and reading, votes,
consensus, statistics, gold, splits, exports, the detector and its trainer, evaluation). ``docs/boxes.md`` says what
each stage does with it and what is left.
"""
