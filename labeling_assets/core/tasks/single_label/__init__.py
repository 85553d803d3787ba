"""The single-label kind: one class per item (``task_type: single_label``, the default).

``kind`` holds the parts pandas-side stages ask for; ``training`` the torch-only training head.
"""
