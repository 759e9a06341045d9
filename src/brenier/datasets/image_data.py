"""The container every image loader returns."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class ImageData(NamedTuple):
    """Images (n, C, H, W) float32 with C ∈ {1, 3}, optional int64 labels (n,), and known factors."""

    images: np.ndarray
    labels: np.ndarray | None = None
    name: str = "images"
    value_range: tuple[float, float] = (0.0, 1.0)
    factors: dict[str, np.ndarray] | None = None
