"""Text classification as a kind of task: one class per text (``text_classes``), or a set (``text_class_sets``)."""
