"""Training, evaluation metrics, the pre-label baseline and active learning.

The image classifier (``config``, ``models``, ``decode``, ``cache``, ``augment``, ``losses``,
``device_data``, ``loop``, ``predict``, ``checkpoint``, ``throughput``, the command line in ``cli``)
imports only torch, torchvision and numpy, so it runs on a bare GPU machine::

    python -m labeling_assets.core.training --cache data/tensors/<dataset_version>-32px-1c --out model.pt

This package file imports nothing, so ``metrics``/``baseline``/``active_learning`` load without torch.
"""
