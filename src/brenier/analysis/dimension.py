"""Intrinsic dimension of the data manifold: how many coordinates the samples really need.

The default estimator is TwoNN (Facco et al. 2017): for each point the ratio μ = r₂/r₁ of its
second to first nearest-neighbour distance follows a Pareto law with shape m (the dimension), so
m is read off the empirical law of log μ. The cross-check is the Levina–Bickel maximum-likelihood
estimator (MLE) on k nearest neighbours, pooled as in MacKay–Ghahramani. Both come from
scikit-dimension (``skdim``) and share one nearest-neighbour search here; the other skdim
estimators can be asked for by name.

Both TwoNN and MLE are biased low in high dimension (the neighbourhoods of a finite sample do not
fill an m-ball once m ≳ 10): the estimate is then a lower bound. ``benchmarks/topology.py`` prints
their bias on the scikit-dimension benchmark manifolds.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..validation import BrenierError, check_choice, check_points, check_positive_int

# name accepted by `intrinsic_dimension` -> skdim.id class name
SKDIM_METHODS = {
    "twonn": "TwoNN", "mle": "MLE", "lpca": "lPCA", "danco": "DANCo", "ess": "ESS", "tle": "TLE",
    "mom": "MOM", "corrint": "CorrInt", "fishers": "FisherS", "mind_ml": "MiND_ML", "mada": "MADA",
    "knn": "KNN", "gride": "GRIDE",
}
METHODS = tuple(SKDIM_METHODS)
HIGH_DIMENSION = 8.0  # above this, nearest-neighbour estimators are noticeably biased low
_TIE = 1e-12  # μ = r₂/r₁ this close to 1 is a tie (lattice-like data): no information


@dataclass(frozen=True)
class DimensionEstimate:
    """Estimated intrinsic dimension m of the samples.

    Attributes:
        dimension: the estimate of the requested `method`.
        method: estimator used for `dimension`.
        by_method: every estimator that was run -> its estimate (the spread across estimators).
        linear_dimension: number of principal axes holding 99 % of the variance (an upper bound
            for a curved manifold, the exact answer for a linear subspace).
        n_points: rows given; n_used: distinct rows the estimators saw (after subsampling).
        ambient_dim: number of columns D.
        notes: messages about subsampling, duplicates, ties and bias.
    """

    dimension: float
    method: str
    by_method: dict[str, float]
    linear_dimension: int
    n_points: int
    n_used: int
    ambient_dim: int
    notes: tuple[str, ...] = field(default=())

    @property
    def spread(self) -> tuple[float, float]:
        """(smallest, largest) finite estimate across `by_method`."""
        vals = [v for v in self.by_method.values() if math.isfinite(v)]
        return (min(vals), max(vals)) if vals else (math.nan, math.nan)

    @property
    def latent_size(self) -> int:
        """A latent size for an autoencoder: the largest estimate, rounded (at least 1); rounded
        up in high dimension, where the estimators are biased low."""
        hi = self.spread[1]
        if not math.isfinite(hi):
            return max(1, self.linear_dimension)
        return max(1, math.ceil(hi) if hi >= HIGH_DIMENSION else round(hi))

    def to_dict(self) -> dict[str, Any]:
        return {"dimension": self.dimension, "method": self.method,
                "by_method": dict(self.by_method), "spread": list(self.spread),
                "latent_size": self.latent_size,
                "linear_dimension": self.linear_dimension, "n_points": self.n_points,
                "n_used": self.n_used, "ambient_dim": self.ambient_dim, "notes": list(self.notes)}


def intrinsic_dimension(
    X: Any,
    method: str = "twonn",
    *,
    cross_check: tuple[str, ...] = ("twonn", "mle"),
    n_neighbors: int = 20,
    max_points: int = 10_000,
    seed: int | None = 0,
) -> DimensionEstimate:
    """Estimate the intrinsic dimension m of points X (n, D) lying near an m-manifold.

    Args:
        X: (n, D) samples (numpy or torch).
        method: estimator for `dimension`: 'twonn' (default), 'mle' or another skdim estimator
            ('lpca', 'danco', 'ess', 'tle', 'mom', 'corrint', 'fishers', 'mind_ml', 'mada',
            'knn', 'gride').
        cross_check: estimators also run and reported in `by_method`.
        n_neighbors: k of the MLE estimator.
        max_points: larger inputs are subsampled at random to this many rows (with a note).
        seed: seed of the subsample.

    Returns:
        DimensionEstimate with `dimension`, `by_method` and notes.
    """
    check_choice(method, "method", METHODS)
    for name in cross_check:
        check_choice(name, "cross_check", METHODS)
    k = check_positive_int(n_neighbors, "n_neighbors")
    max_points = check_positive_int(max_points, "max_points")
    x = check_points(X, "X", min_rows=3)
    n_points, dim = x.shape
    notes: list[str] = []

    x, n_dup = _distinct_rows(x)
    if n_dup:
        notes.append(f"dropped {n_dup} duplicate row(s): distances of 0 carry no dimension")
    if len(x) < 3:
        raise BrenierError(f"X: expected at least 3 distinct points, got {len(x)}")
    if len(x) > max_points:
        rng = np.random.default_rng(seed)
        x = x[np.sort(rng.choice(len(x), max_points, replace=False))]
        msg = f"{n_points} points > max_points={max_points}: estimated on a random subsample"
        notes.append(msg)
        warnings.warn(f"intrinsic_dimension: {msg}", stacklevel=2)
    if k >= len(x):
        notes.append(f"n_neighbors={k} >= number of points; using k={len(x) - 1}")
        k = len(x) - 1

    names = list(dict.fromkeys((method, *cross_check)))
    dists, idx = _neighbours(x, max(k, 2) if "mle" in names else 2)
    by_method: dict[str, float] = {}
    for name in names:
        if name == "twonn":
            by_method[name] = _twonn(dists[:, :2], notes)
        elif name == "mle":
            by_method[name] = _mle(x, dists[:, :k], idx[:, :k])
        else:
            by_method[name] = _skdim(name, x)

    finite = [v for v in by_method.values() if math.isfinite(v)]
    if finite and max(finite) >= HIGH_DIMENSION:
        notes.append(
            "nearest-neighbour estimators (TwoNN, MLE) are biased low in high dimension; "
            "read the estimate as a lower bound (compare linear_dimension)")
    return DimensionEstimate(
        dimension=by_method[method], method=method, by_method=by_method,
        linear_dimension=_linear_dimension(x), n_points=n_points, n_used=len(x), ambient_dim=dim,
        notes=tuple(notes))


def _distinct_rows(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Rows of x without repeats (first occurrences, in order) and how many were dropped."""
    _, first = np.unique(x, axis=0, return_index=True)
    if len(first) == len(x):
        return x, 0
    return x[np.sort(first)], len(x) - len(first)


def _neighbours(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices of the k nearest other points, shape (n, k), ascending."""
    from sklearn.neighbors import NearestNeighbors

    d, i = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    return d[:, 1:], i[:, 1:]


def _twonn(r12: np.ndarray, notes: list[str]) -> float:
    """TwoNN from each point's (r₁, r₂); ties μ = 1 (lattice data) are left out with a note."""
    import skdim

    keep = r12[:, 1] > r12[:, 0] * (1 + _TIE)
    if not keep.all():
        notes.append(f"TwoNN: {int((~keep).sum())} point(s) with r1 == r2 (lattice-like ties) "
                     "left out")
    if keep.sum() < 3:
        notes.append("TwoNN: fewer than 3 usable ratios r2/r1; no estimate")
        return math.nan
    return float(skdim.id.TwoNN(dist=True).fit(r12[keep]).dimension_)


def _mle(x: np.ndarray, dists: np.ndarray, idx: np.ndarray) -> float:
    import skdim

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        est = skdim.id.MLE().fit(x, precomputed_knn_arrays=(dists, idx), n_neighbors=dists.shape[1])
    return float(est.dimension_)


def _skdim(name: str, x: np.ndarray) -> float:
    import skdim

    estimator = getattr(skdim.id, SKDIM_METHODS[name])()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(estimator.fit(x).dimension_)
    except Exception as exc:  # skdim raises plain errors on degenerate inputs
        raise BrenierError(f"method: the {name!r} estimator failed on X ({exc})") from None


def _linear_dimension(x: np.ndarray, share: float = 0.99, rows: int = 2000) -> int:
    """Number of principal axes that hold `share` of the variance (on at most `rows` rows)."""
    if len(x) > rows:
        x = x[np.linspace(0, len(x) - 1, rows).astype(int)]
    xc = x - x.mean(axis=0)
    gram = xc.T @ xc if xc.shape[1] <= xc.shape[0] else xc @ xc.T  # same non-zero spectrum
    s = np.clip(np.linalg.eigvalsh(gram)[::-1], 0.0, None)
    if s.sum() <= 0:
        return 0
    return int(np.searchsorted(np.cumsum(s) / s.sum(), share - 1e-12) + 1)
