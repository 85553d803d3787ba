"""Images whose class is decided by a bright patch in one corner, and a small CNN trained on them: the model whose
evidence is known, for the Grad-CAM tests (tests/core/test_gradcam.py, the review browser test) and
benchmarks/gradcam.py."""

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from labeling_assets.core.training.models import Classifier, SmallCNN

SIZE, PATCH = 32, 8  # 16 px leaves SmallCNN a 4x4 map, too coarse to tell a 5 px corner from its neighbours
TOP_LEFT = (slice(0, SIZE // 2), slice(0, SIZE // 2))
BOTTOM_RIGHT = (slice(SIZE // 2, SIZE), slice(SIZE // 2, SIZE))


def planted(n: int, corner: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Grey noise images (n, 1, 32, 32); class 1 (every other one) has a bright square in ``corner`` ("top_left" or
    "bottom_right") and nothing else tells the classes apart."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 120, size=(n, 1, SIZE, SIZE), dtype=np.uint8)
    labels = np.arange(n) % 2
    at = slice(0, PATCH) if corner == "top_left" else slice(SIZE - PATCH, SIZE)
    images[labels == 1, :, at, at] = 255
    return images, labels


@contextmanager
def one_thread() -> Iterator[None]:
    """Tiny convolutions on a shared 2-core machine: one thread is 15x faster than two fighting over the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def trained(corner: str, seed: int = 0) -> Classifier:
    """A small CNN trained for 30 steps on planted images (about a second on one CPU thread); it must learn the
    patch."""
    with one_thread():
        torch.manual_seed(seed)
        model = Classifier(SmallCNN(1, 2, width=4), [0.3], [0.25])
        images, labels = planted(128, corner, seed=seed + 1)
        x, y = torch.from_numpy(images), torch.from_numpy(labels)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        model.train()
        for step in range(30):
            batch = slice((step * 32) % 128, (step * 32) % 128 + 32)
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            assert (model(x).argmax(1) == y).float().mean() > 0.95, "the planted model did not learn its patch"
    return model
