"""Statistics of the cells W_i(h) of u_h(x) = max_i ⟨x, y_i⟩ + h_i, from samples or exactly.

One `CellStatistics` holds the masses μ(W_i), the centroids E[x | x ∈ W_i], the adjacent pairs
{i, j} and the facet measures μ(F_ij) of F_ij = W_i ∩ W_j, and the mean ∫ u_h dμ. Two backends
fill it:

* `sampled_statistics`: one pass of the top-2 kernel over n samples x ~ μ. The best two cells of
  x are adjacent; x lies at distance t = (s_1 − s_2)/|y_i − y_j| from their facet, and the
  samples with t < δ (δ the `strip_quantile`-quantile of t over the first chunk) fill strips of
  width δ on both sides of F_ij, so μ̂(F_ij) = #{t < δ}/(2 δ n).
* `exact_statistics`: the exact power diagram in 2-D/3-D (`brenier.ot.cells.exact`).

`facet_weights` turns either into the Hessian weights w_ij = μ(F_ij)/|y_i − y_j| of the energy
E(h) = ∫ u_h dμ − Σ_i h_i ν_i.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from ...validation import BrenierError, check_fitted, check_positive_int, to_numpy
from ..assign import Assigner
from .exact import exact_diagram

MERGE_ROWS = 1 << 20  # pair keys gathered before they are merged into the running tally
STRIP_QUANTILE = 0.05  # δ of `cell_statistics`: share of samples nearest to their facet
CHUNK = 1 << 16  # samples per kernel call in `cell_statistics`
NOT_FITTED = "call fit(targets) or load(path) first"


@dataclass(frozen=True)
class CellStatistics:
    """Cells W_i(h) of N targets in d dimensions and their K adjacent pairs (i < j, by (i, j)).

    n_samples: samples behind the estimates, None when exact. masses (N,): μ(W_i).
    centroids (N, d) or None: E[x | x ∈ W_i] (NaN for an empty or unseen cell).
    pairs (K, 2); counts (K,) or None (exact): samples whose best two cells are {i, j};
    facet_counts (K,) or None (exact): those within δ of F_ij; facet_measure (K,): μ(F_ij);
    facet_centers (K, d) or None: a point of F_ij (mean of the strip samples, NaN if none; the
    segment's midpoint when exact in 2-D); strip_width: δ (0 when exact);
    potential_mean: ∫ u_h dμ (mean of u_h(x) over the samples); segments (K, 2, 2) or None: the
    facets F_ij ∩ D themselves (exact, 2-D).
    """

    n_samples: int | None
    masses: np.ndarray
    centroids: np.ndarray | None
    pairs: np.ndarray
    counts: np.ndarray | None
    facet_counts: np.ndarray | None
    facet_measure: np.ndarray
    facet_centers: np.ndarray | None
    strip_width: float
    potential_mean: float
    segments: np.ndarray | None = None
    facet_samples: int | None = None  # samples behind the pairs and facets (None when exact)

    @property
    def exact(self) -> bool:
        """Whether the statistics come from the exact power diagram."""
        return self.n_samples is None


class _PairTally:
    """Per-pair sums over sample rows keyed by i·N + j: how many rows, and the sums of `width`
    value columns. Rows wait in chunks and are merged into the running tally (sorted keys)
    once MERGE_ROWS of them are pending."""

    def __init__(self, width: int = 0):
        self.width = width
        self.keys = np.zeros(0, np.int64)
        self.sums = np.zeros((0, 1 + width))
        self.pending: list[tuple[np.ndarray, np.ndarray | None]] = []
        self.rows = 0

    def add(self, keys: np.ndarray, values: np.ndarray | None = None) -> None:
        self.pending.append((keys, values))
        self.rows += len(keys)
        if self.rows >= MERGE_ROWS:
            self.merge()

    def merge(self) -> tuple[np.ndarray, np.ndarray]:
        """(keys (K,) increasing, (K, 1 + width): row count and value sums per key)."""
        if not self.pending:
            return self.keys, self.sums
        keys = np.concatenate([k for k, _ in self.pending])
        if self.width == 0:  # counts only: a sort, no inverse permutation
            new, count = np.unique(keys, return_counts=True)
            sums = count[:, None].astype(np.float64)
        else:
            values = np.concatenate([v for _, v in self.pending])
            new, inverse = np.unique(keys, return_inverse=True)
            sums = np.column_stack([np.bincount(inverse, minlength=len(new))] + [
                np.bincount(inverse, values[:, c], len(new)) for c in range(self.width)])
        self.pending, self.rows = [], 0
        if len(self.keys) == 0:
            self.keys, self.sums = new, sums
            return self.keys, self.sums
        pos = np.searchsorted(self.keys, new)  # merge two sorted key lists
        held = pos < len(self.keys)
        held[held] = self.keys[pos[held]] == new[held]
        self.sums[pos[held]] += sums[held]
        self.keys = np.insert(self.keys, pos[~held], new[~held])
        self.sums = np.insert(self.sums, pos[~held], sums[~held], axis=0)
        return self.keys, self.sums


def sampled_statistics(assigner: Assigner, stream: Any, n: int, *, chunk: int,
                       strip_quantile: float, centroids: bool = True, facets: bool = True,
                       facet_samples: int | None = None) -> CellStatistics:
    """Cell statistics from n samples x ~ μ drawn from `stream`, `chunk` at a time.

    One pass of the top-2 kernel (top-1 when `facets` is False: then no pairs) at the heights
    already loaded with `assigner.set_heights(h)`. `facet_samples`: pairs and facets from the
    first that many samples only (whole chunks), the masses from all n (top-1 is cheaper).
    `centroids`: also the cell centroids and the facet centres (sums of x).
    Memory: O(N d + K) plus MERGE_ROWS pending pair keys.
    """
    y = assigner.targets
    n_cells, dim = y.shape
    k = 2 if facets and n_cells > 1 else 1
    hits = np.zeros(n_cells, np.int64)
    sums = np.zeros((n_cells, dim)) if centroids else None
    key_type = np.int32 if 2 * n_cells**2 < 2**31 else np.int64  # int32 sorts faster
    seen = _PairTally()  # keys 2(i·N + j) + [t < δ]: both counts from one sort
    strip = _PairTally(dim) if centroids else None  # sums of x near each facet
    u_sum = 0.0
    tau = None
    done = paired = 0
    while done < n:
        m = min(chunk, n - done)
        x = stream.draw(m)
        k_now = k if facet_samples is None or done < facet_samples else 1
        idx, s = assigner.top_k(x, k_now)
        best = idx[:, 0]
        hits += np.bincount(best, minlength=n_cells)
        u_sum += float(np.sum(s[:, 0], dtype=np.float64) + np.sum(assigner.row_offset(x)))
        if centroids:
            sums += sp.csr_matrix((np.ones(m), (best, np.arange(m))), shape=(n_cells, m)) @ x
        if k_now == 2:
            paired += m
            a, b = idx[:, 0], idx[:, 1]
            span = np.linalg.norm(y[a] - y[b], axis=1)
            t = (s[:, 0] - s[:, 1]).astype(np.float64) / span  # distance of x to F_ab
            if tau is None:
                tau = max(float(np.quantile(t, strip_quantile)), 1e-300)
            near = t < tau
            key = np.minimum(a, b) * n_cells + np.maximum(a, b)
            seen.add((2 * key + near).astype(key_type))
            if strip is not None:
                strip.add(key[near], x[near])
        done += m
    flagged, tally = seen.merge()
    pair = flagged >> 1  # sorted: each pair's one or two entries are adjacent
    first = np.ones(len(pair), bool)
    first[1:] = pair[1:] != pair[:-1]
    keys, group = pair[first], np.cumsum(first) - 1
    counts = np.bincount(group, tally[:, 0], len(keys)).astype(np.int64)
    near_counts = np.bincount(group, tally[:, 0] * (flagged & 1), len(keys)).astype(np.int64)
    fcent = None
    with np.errstate(invalid="ignore", divide="ignore"):
        cent = None if sums is None else sums / hits[:, None]
        if strip is not None:
            strip_keys, strip_sums = strip.merge()
            fcent = np.full((len(keys), dim), np.nan)
            fcent[np.searchsorted(keys, strip_keys)] = strip_sums[:, 1:] / strip_sums[:, :1]
    return CellStatistics(
        n_samples=int(n), masses=hits / n, centroids=cent,
        pairs=np.stack([keys // n_cells, keys % n_cells], axis=1).astype(np.int64),
        counts=counts, facet_counts=near_counts,
        facet_measure=near_counts / (2 * tau * paired) if tau is not None else np.zeros(0),
        facet_centers=fcent, strip_width=0.0 if tau is None else float(tau),
        potential_mean=u_sum / n, facet_samples=paired)


def exact_statistics(source: Any, y: Any, h: Any) -> CellStatistics:
    """Cell statistics of (y, h) from the exact power diagram clipped to the source's domain D
    (d ∈ {2, 3}); pairs whose facet has μ-measure 0 are left out."""
    diagram = exact_diagram(source, y, h, segments=True)
    yy = np.asarray(to_numpy(y, "targets"), np.float64)
    hh = np.asarray(to_numpy(h, "h"), np.float64)
    n_cells = len(yy)
    ij = np.sort(diagram.pairs, axis=1)
    keep = np.flatnonzero(diagram.facet_mass > 0)
    keep = keep[np.argsort(ij[keep, 0] * n_cells + ij[keep, 1], kind="stable")]
    segments = None if diagram.segments is None else diagram.segments[keep]
    return CellStatistics(
        n_samples=None, masses=diagram.masses, centroids=diagram.centroids(),
        pairs=ij[keep].astype(np.int64), counts=None, facet_counts=None,
        facet_measure=diagram.facet_mass[keep],
        facet_centers=None if segments is None else segments.mean(axis=1),
        strip_width=0.0,
        potential_mean=float(np.sum(diagram.moments * yy) + diagram.masses @ hh),
        segments=segments)


def facet_weights(stats: CellStatistics, y: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray | None]:
    """(w, row_counts): w (N, N) symmetric CSR, w_ij = μ(F_ij)/|y_i − y_j| over the pairs with a
    positive facet measure (the Hessian of E(h) is diag(w 1) − w); row_counts (N,): the strip
    samples behind each row (None for exact statistics)."""
    n = len(stats.masses)
    on = stats.facet_measure > 0
    i, j = stats.pairs[on, 0], stats.pairs[on, 1]
    w = stats.facet_measure[on] / np.linalg.norm(y[i] - y[j], axis=1)
    weights = sp.coo_matrix((np.r_[w, w], (np.r_[i, j], np.r_[j, i])), shape=(n, n)).tocsr()
    if stats.facet_counts is None:
        return weights, None
    c = stats.facet_counts[on]
    return weights, np.bincount(np.r_[i, j], weights=np.r_[c, c], minlength=n)


def default_samples(n_targets: int) -> int:
    """Samples for `cell_statistics`: ~200 per cell, between 2^18 and 2^21 (each is scored against
    all N cells, so the cap keeps N = 60,000 at ~35 per cell and ~1 min of top-2 search)."""
    return int(min(max(1 << 18, 200 * n_targets), 1 << 21))


def cell_statistics(model: Any, n_samples: int | None = None, seed: int | None = 0, *,
                    exact: bool = False) -> CellStatistics:
    """Cell statistics of a fitted `SemiDiscreteOT` at its heights h: from `n_samples` samples
    x ~ μ drawn from `seed` (default ~200 per cell) with strips at the STRIP_QUANTILE, or with
    `exact` from the power diagram (d ∈ {2, 3} and a source the exact solver handles)."""
    check_fitted(model, "heights_", NOT_FITTED)
    n = check_positive_int(n_samples, "n_samples", allow_none=True)
    if exact:
        if n is not None:
            raise BrenierError(f"n_samples: exact statistics draw no samples, got n_samples={n}")
        return exact_statistics(model.source_, model.targets_, model.heights_)
    y = model.targets_
    assigner = Assigner(y, model.source_.mean(), model.backend, model.device)
    assigner.set_heights(model.heights_)
    return sampled_statistics(assigner, model.source_.stream(seed), n or default_samples(len(y)),
                              chunk=CHUNK, strip_quantile=STRIP_QUANTILE)
