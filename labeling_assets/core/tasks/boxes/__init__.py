"""Bounding boxes (issue 30): the pure-domain core of a box kind of task.

Not yet a registered kind (``core/tasks/registry.py``): it provides the Label Studio config and reading, box
votes with skip reasons, box consensus (ours and two baselines) and labeler statistics, but not yet every part
of the ``TaskKind`` contract (gold parsing, splits, training head, ...). ``docs/boxes.md`` says what is left.
"""
