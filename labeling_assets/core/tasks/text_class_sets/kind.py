"""The ``text_class_sets`` kind (``core/tasks/text_classes/kind.py`` defines it beside ``text_classes``)."""

from labeling_assets.core.tasks.text_classes.kind import TextClassSets

KIND = TextClassSets()
