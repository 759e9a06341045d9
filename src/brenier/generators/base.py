"""The one generator interface: `fit(data)` learns ν from samples and returns the generator,
`sample(n, seed=None)` draws n new points or images (seed None: fresh entropy)."""

from __future__ import annotations

from typing import Any, Protocol, Self, runtime_checkable

import numpy as np


@runtime_checkable
class Generator(Protocol):
    """What every brenier generator (AEOT and the baselines) provides."""

    def fit(self, data: Any) -> Self:
        """Learn from training samples (vectors (n, d) or images (n, C, H, W)); returns self."""
        ...

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        """n new samples with the training data's shape."""
        ...
