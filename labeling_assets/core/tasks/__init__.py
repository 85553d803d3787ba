"""Kinds of labeling task: one interface (:class:`~.kind.TaskKind`), one package per kind, one registry.

``task_kind(settings.task_type)`` is asked once per run; every stage then calls the kind instead of branching on
the task type. Importing this package imports neither pandas nor torch.
"""

from labeling_assets.core.tasks.registry import KINDS, UnknownTaskKind, task_kind, training_head

__all__ = ["KINDS", "UnknownTaskKind", "task_kind", "training_head"]
