"""A set of classes per text: the text class kind of ``core/tasks/text_classes`` with the multi-label answers."""
