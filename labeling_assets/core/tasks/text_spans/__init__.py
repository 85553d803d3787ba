"""The text-spans kind's pure core: entity spans with a type per text (issue 31).

``spans`` holds the Label Studio config, how a ``labels`` result becomes stored spans (character offsets of the
stored text, checked against it), the tokenizer and BIO tags; ``consensus`` the span aggregation (token majority,
token Dawid-Skene, and our span-level model); ``stats`` per-labeler span precision, recall and F1. Not yet a
registered task kind (``core/tasks/registry.py``): the stages do not call it yet (docs/text.md).
"""
