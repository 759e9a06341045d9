"""The discrete target measure ν = Σ_i ν_i δ_{y_i}."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..validation import check_distinct, check_points, check_weights


@dataclass(frozen=True)
class DiscreteMeasure:
    """ν = Σ_i ν_i δ_{y_i}: points y (N, d) and weights ν (N,) summing to 1 (uniform by default)."""

    points: np.ndarray
    weights: np.ndarray

    def __init__(self, points: Any, weights: Any = None, *, name: str = "targets"):
        y = check_points(points, name)
        check_distinct(y, name)
        w = check_weights(weights, len(y), "weights")
        object.__setattr__(self, "points", y)
        object.__setattr__(self, "weights", w)

    @property
    def n(self) -> int:
        return len(self.points)

    @property
    def dim(self) -> int:
        return self.points.shape[1]

    def __repr__(self):
        return f"DiscreteMeasure(n={self.n}, dim={self.dim})"
