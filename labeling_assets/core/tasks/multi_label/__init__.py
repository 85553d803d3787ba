"""The multi-label kind: a set of classes per item, possibly empty (``task_type: multi_label``).

``kind`` holds the parts pandas-side stages ask for; ``training`` the torch-only training head.
"""
