"""Metrics for generated point clouds, one section per family.

Sections:
  * mode coverage on Gaussian mixtures (PacGAN protocol): `mode_metrics`;
  * distances between point clouds: `sliced_wasserstein`;
  * memorisation: `memorisation` (distances from `brenier.analysis.neighbours`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..analysis.neighbours import nearest_distances
from ..validation import (
    BrenierError,
    check_points,
    check_positive_float,
    check_positive_int,
)

# =============================================================================================
# Mode coverage on Gaussian mixtures (ring-8, grid-25)
# =============================================================================================


def mode_metrics(samples: Any, centers: Any, sigma: float, *, n_sigma: float = 3.0) -> dict:
    """Modes covered, share of high-quality samples and reverse KL (PacGAN's definitions).

    A sample x is *high quality* (HQ) when its nearest centre c_k(x) is within n_sigma·σ.
    With p_k the share of HQ samples whose nearest centre is c_k (K centres):

    * ``modes``: #{k : p_k > 0};
    * ``hq``: 100 × (#HQ / #samples), a percentage;
    * ``reverse_kl``: KL(p ‖ uniform) = Σ_k p_k log(K p_k) (inf when no sample is HQ).

    For the true mixture itself in d dimensions, E[hq] = 100·P(χ²_d ≤ n_sigma²), 98.89 % for
    3σ in 2-D (see `mixture_hq`).
    """
    x = check_points(samples, "samples")
    c = check_points(centers, "centers", dim=x.shape[1])
    s = check_positive_float(sigma, "sigma")
    k = check_positive_float(n_sigma, "n_sigma")
    dist, nearest = _nearest_center(x, c)
    hq = dist <= k * s
    counts = np.bincount(nearest[hq], minlength=len(c))
    if counts.sum() == 0:
        return {"modes": 0, "hq": 0.0, "reverse_kl": float("inf")}
    p = counts / counts.sum()
    nz = p > 0
    kl = float(np.sum(p[nz] * np.log(len(c) * p[nz])))
    return {"modes": int(nz.sum()), "hq": float(100.0 * hq.mean()), "reverse_kl": max(kl, 0.0)}


def mixture_hq(dim: int, n_sigma: float = 3.0) -> float:
    """Expected %HQ of the true isotropic mixture: 100·P(|z| ≤ n_sigma), z ~ N(0, I_d)."""
    from scipy.stats import chi2

    return float(100.0 * chi2.cdf(check_positive_float(n_sigma, "n_sigma") ** 2,
                                  check_positive_int(dim, "dim")))


def _nearest_center(x: np.ndarray, c: np.ndarray, chunk: int = 65536):
    dist = np.empty(len(x))
    idx = np.empty(len(x), np.int64)
    cc = np.sum(c**2, axis=1)
    for a in range(0, len(x), chunk):
        xb = x[a:a + chunk]
        d2 = np.sum(xb**2, axis=1)[:, None] - 2 * xb @ c.T + cc[None, :]
        j = np.argmin(d2, axis=1)
        idx[a:a + chunk] = j
        dist[a:a + chunk] = np.linalg.norm(xb - c[j], axis=1)
    return dist, idx


# =============================================================================================
# Distances between point clouds
# =============================================================================================


def sliced_wasserstein(a: Any, b: Any, *, n_projections: int = 500, p: float = 2.0,
                       seed: int | None = 0) -> float:
    """Sliced Wasserstein distance SW_p between two point clouds (POT), uniform weights.

    SW_p(α, β)^p = E_θ W_p^p(⟨θ, ·⟩#α, ⟨θ, ·⟩#β) over directions θ uniform on the sphere,
    estimated with `n_projections` random directions drawn from `seed`.
    """
    import ot

    xa = check_points(a, "a")
    xb = check_points(b, "b", dim=xa.shape[1])
    n_proj = check_positive_int(n_projections, "n_projections")
    pp = check_positive_float(p, "p")
    return float(ot.sliced_wasserstein_distance(xa, xb, n_projections=n_proj, p=pp, seed=seed))


# =============================================================================================
# Memorisation
# =============================================================================================


def memorisation(samples: Any, train: Any, *, quantile: float = 0.01, copy_tol: float = 1e-6,
                 max_reference: int = 20_000, seed: int | None = 0) -> dict:
    """How many generated points copy, or hug, a training point.

    With r(x) = min_j |x − x_j| the distance from a generated point to the training set,
    s_j the training set's own nearest-neighbour spacing (distance from x_j to the nearest other
    training point) and L the RMS spread of the training set:

    * ``exact``: share of samples equal to a training point (r(x) = 0);
    * ``copies``: share of samples with r(x) ≤ copy_tol·L (duplicates up to rounding, e.g. a
      float32 pipeline; in dense data a fresh sample also lands that close by chance, at a rate
      ≈ `quantile`·(copy_tol·L/τ)^d);
    * ``near``: share with r(x) < τ, τ = the `quantile`-quantile of s (≤ `max_reference` training
      points are used to estimate it). A fresh sample from the data distribution scores
      ``near`` ≈ `quantile` (its distance to the set is distributed like s), so
      ``near`` ≫ ``reference`` means the generator reproduces training points;
    * ``tau``, ``reference`` (= quantile): the scale and the expected value for fresh data.
    """
    x = check_points(samples, "samples")
    t = check_points(train, "train", dim=x.shape[1], min_rows=2)
    q = check_positive_float(quantile, "quantile")
    if q >= 1:
        raise BrenierError(f"quantile: expected a number in (0, 1), got {quantile!r}")
    tol = check_positive_float(copy_tol, "copy_tol")
    m = check_positive_int(max_reference, "max_reference")
    rng = np.random.default_rng(seed)
    sub = t if len(t) <= m else t[rng.choice(len(t), m, replace=False)]
    spacing = nearest_distances(sub, t, exclude_self=True)
    tau = float(np.quantile(spacing, q))
    r = nearest_distances(x, t)
    scale = float(np.sqrt(np.mean(np.sum((t - t.mean(0)) ** 2, axis=1))))
    return {"exact": float(np.mean(r == 0)), "copies": float(np.mean(r <= tol * scale)),
            "near": float(np.mean(r < tau)), "tau": tau, "reference": q}
