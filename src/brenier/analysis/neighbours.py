"""Nearest-neighbour distances between point sets (k-d tree / ball tree via scikit-learn)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..validation import check_points, check_positive_int


def nearest_distances(queries: Any, reference: Any, *, k: int = 1, exclude_self: bool = False) -> np.ndarray:
    """Distance from each query to its k-th nearest reference point, shape (M,).

    With `exclude_self`, queries are rows of `reference` and their zero self-distance is skipped
    (k = 1 gives the distance to the nearest *other* point).
    """
    from sklearn.neighbors import NearestNeighbors

    q = check_points(queries, "queries")
    k = check_positive_int(k, "k")
    kk = k + 1 if exclude_self else k
    r = check_points(reference, "reference", dim=q.shape[1], min_rows=kk)
    d, _ = NearestNeighbors(n_neighbors=kk).fit(r).kneighbors(q)
    return d[:, kk - 1]
