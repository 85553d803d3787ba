"""Array types shared by the training modules (numpy's generic ``ndarray`` spelled once)."""

from typing import Any

import numpy as np
import numpy.typing as npt

UInt8Array = npt.NDArray[np.uint8]  # images (N, C, H, W)
IntArray = npt.NDArray[np.int64]  # class indices (N,)
FloatArray = npt.NDArray[np.floating[Any]]  # probabilities, soft targets
AnyArray = npt.NDArray[Any]  # inputs converted on entry (lists, memory maps, other dtypes)
