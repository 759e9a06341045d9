"""The semi-discrete transport problem (μ, y, ν): a source measure μ and Diracs ν = Σ ν_i δ_{y_i}."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..measures import DiscreteMeasure, SourceMeasure, make_source
from ..validation import BrenierError


@dataclass(frozen=True)
class TransportProblem:
    """μ (a `brenier.measures` source), the targets y (N, d) and their weights ν (N,), checked."""

    source: SourceMeasure
    targets: np.ndarray
    weights: np.ndarray

    @classmethod
    def build(cls, source: Any, targets: Any, weights: Any = None) -> TransportProblem:
        """Check and assemble: `targets` is (N, d) points or a DiscreteMeasure (then no `weights`);
        `source` a SourceMeasure or a name ('uniform', 'ball', 'gaussian') sized to d."""
        if isinstance(targets, DiscreteMeasure) and weights is not None:
            raise BrenierError("weights: pass weights inside the DiscreteMeasure, not twice")
        nu = targets if isinstance(targets, DiscreteMeasure) else DiscreteMeasure(targets, weights)
        return cls(make_source(source, nu.dim), nu.points, nu.weights)

    @property
    def n(self) -> int:
        return len(self.targets)

    @property
    def dim(self) -> int:
        return self.targets.shape[1]

    def source_radius(self) -> float:
        """RMS distance of μ to its mean (from 4,096 fixed samples)."""
        x = self.source.sample(4096, seed=1)
        return float(np.sqrt(np.mean(np.sum((x - self.source.mean()) ** 2, axis=1))))

    def fingerprint(self, *settings: Any) -> str:
        """SHA-256 of (μ, y, ν) and any JSON-able settings: what a checkpoint must match."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.targets).tobytes())
        h.update(np.ascontiguousarray(self.weights).tobytes())
        h.update(json.dumps(self.source.to_dict(), sort_keys=True).encode())
        for arr in self.source.arrays().values():
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update(json.dumps(list(settings)).encode())
        return h.hexdigest()
