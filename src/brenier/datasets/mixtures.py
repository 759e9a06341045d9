"""Gaussian mixtures of the mode-collapse benchmarks (definitions of PacGAN's 2DRing / 2DGrid).

* ring-8: 8 modes at (cos 2πk/8, sin 2πk/8), radius 1, σ = 0.01;
* grid-25: 25 modes at {−4, −2, 0, 2, 4}², σ = 0.05.

Each point picks a mode uniformly at random and adds isotropic noise N(0, σ² I).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..validation import check_points, check_positive_float, check_positive_int


class Mixture(NamedTuple):
    """Samples of an isotropic Gaussian mixture with its centres and common σ."""

    points: np.ndarray  # (n, d)
    centers: np.ndarray  # (K, d)
    sigma: float


def gaussian_mixture(n: int, centers: np.ndarray, sigma: float, seed: int | None = None) -> Mixture:
    """n points from the equal-weight mixture Σ_k (1/K) N(c_k, σ² I)."""
    n = check_positive_int(n, "n")
    c = check_points(centers, "centers")
    sigma = check_positive_float(sigma, "sigma")
    rng = np.random.default_rng(seed)
    modes = rng.integers(0, len(c), n)
    x = c[modes] + sigma * rng.standard_normal((n, c.shape[1]))
    return Mixture(x, c.copy(), sigma)


def ring8_centers(radius: float = 1.0, k: int = 8) -> np.ndarray:
    t = 2 * np.pi * np.arange(k) / k
    return radius * np.stack([np.cos(t), np.sin(t)], axis=1)


def grid25_centers(spacing: float = 2.0, side: int = 5) -> np.ndarray:
    g = spacing * (np.arange(side) - (side - 1) / 2)
    return np.array([(a, b) for a in g for b in g], dtype=np.float64)


def ring8(n: int = 100_000, seed: int | None = None, *, radius: float = 1.0,
          sigma: float = 0.01) -> Mixture:
    """The ring-8 benchmark: 8 Gaussians on a circle of `radius`, σ = 0.01."""
    return gaussian_mixture(n, ring8_centers(check_positive_float(radius, "radius")), sigma, seed)


def grid25(n: int = 100_000, seed: int | None = None, *, spacing: float = 2.0,
           sigma: float = 0.05) -> Mixture:
    """The grid-25 benchmark: 25 Gaussians at {−4, −2, 0, 2, 4}², σ = 0.05."""
    return gaussian_mixture(n, grid25_centers(check_positive_float(spacing, "spacing")), sigma, seed)
