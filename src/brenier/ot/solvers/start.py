"""Starting heights h⁰ for every solver: the Voronoi diagram of the targets, scaled onto μ.

With z_i = m + (y_i − ȳ)/a the power diagram of (y, h⁰), h⁰_i = −⟨y_i − ȳ, m⟩ − |y_i − ȳ|²/(2a)
(up to a constant), is the Voronoi diagram of the z_i: the targets shrunk by a (the ratio of the
spreads of ν and μ) and centred at a point m of μ, so every cell starts with some mass.
"""

from __future__ import annotations

import numpy as np

from ...validation import ROWS, BrenierError
from ..power import Domain, PowerDiagram, PowerOptions, power_diagram

MERGE_GAP = 20.0  # coarsen: merge k-means centres below a gap of this ratio in linkage distance


def voronoi_heights(y: np.ndarray, m: np.ndarray, a: float) -> np.ndarray:
    """h⁰ (N,), mean 0, whose power cells are the Voronoi cells of z_i = m + (y_i − ȳ)/a."""
    mean = y.mean(axis=0)
    sq = np.concatenate([np.einsum("ij,ij->i", y[b:b + ROWS] - mean, y[b:b + ROWS] - mean)
                         for b in range(0, len(y), ROWS)])  # |y_i − ȳ|², in pieces
    h = -sq / (2 * a) - (y @ m - mean @ m)
    return h - h.mean()


def spread(y: np.ndarray) -> float:
    """RMS distance of the points to their mean (1 for a single point)."""
    mean = y.mean(axis=0)
    sq = sum(float(np.sum((y[b:b + ROWS] - mean) ** 2)) for b in range(0, len(y), ROWS))
    return float(np.sqrt(sq / len(y))) or 1.0


def sampled_start(y: np.ndarray, source_mean: np.ndarray, source_radius: float) -> np.ndarray:
    """h⁰ for the Monte-Carlo solvers: m = the mean of μ, a = spread(ν)/spread(μ)."""
    return voronoi_heights(y, source_mean, spread(y) / max(source_radius, 1e-12))


def _point_of_mass(dom: Domain) -> tuple[np.ndarray, float]:
    """A point m where ρ > 0 (the mean of μ when ρ > 0 there) and the RMS spread of μ."""
    rng = np.random.default_rng(0)
    low, high = dom.low, dom.high
    x = low + rng.random((1 << 15, dom.dim)) * (high - low)
    w = dom.density_at(x)
    mean = (w @ x) / w.sum()
    radius = float(np.sqrt((w @ np.sum((x - mean) ** 2, axis=1)) / w.sum()))
    if dom.density_at(mean[None])[0] > 0:
        return mean, radius
    if dom.grid is None:
        return dom.poly.centroid, radius
    flat = int(np.argmax(dom.grid))
    idx = np.array(np.unravel_index(flat, dom.grid.shape))
    return low + (idx + 0.5) * dom.cell, radius


def exact_start(dom: Domain, y: np.ndarray, options: PowerOptions | None = None,
                max_tries: int = 60) -> tuple[np.ndarray, PowerDiagram]:
    """h⁰ and its diagram with every cell of positive mass, for the exact solver: a is raised so
    that every z_i lies inside D, then doubled while some cell is empty (zero-density regions)."""
    m, radius = _point_of_mass(dom)
    yc = y - y.mean(axis=0)
    a = spread(y) / max(radius, 1e-12)
    room = dom.poly.b - dom.poly.A @ m  # > 0: m is inside D
    if (room > 0).all():
        a = max(a, 1.01 * float(np.max((yc @ dom.poly.A.T) / room)))
    for _ in range(max_tries):
        h = voronoi_heights(y, m, a)
        D = power_diagram(y, h, dom, options=options)
        if D.masses.min() > 0:
            return h, D
        a *= 2.0
    raise BrenierError("targets: could not find heights with every cell non-empty "
                       "(are some targets duplicated or nearly so?)")


def coarse_to_fine(y: np.ndarray, nu: np.ndarray, labels: np.ndarray, centres: np.ndarray, w: np.ndarray,
                   coarse_h: np.ndarray, cell_means: np.ndarray, cell_radii: np.ndarray) -> np.ndarray:
    """Fine heights from a solved coarse problem (Mérigot's multiscale start).

    Cluster c of the targets (centre c, weight w_c, spread s_c) was solved as one Dirac with heights H_c; its
    cell C_c has mean x̄_c and RMS radius r_c. With d_i = y_i − c(i) and a_c = s_c/r_c,
    h_i = H_c − ⟨x̄_c, d_i⟩ − |d_i|²/(2 a_c) makes ⟨x, y_i⟩ + h_i = ⟨x, c⟩ + H_c − |a_c(x − x̄_c) − d_i|²/(2a_c)
    + (terms of x alone): inside C_c the fine cells are the Voronoi cells of z_i = x̄_c + d_i/a_c,
    the cluster scaled onto its coarse cell, and the coarse cells stay where they were.
    """
    k = len(centres)
    d = y - centres[labels]
    sq = np.einsum("ij,ij->i", d, d)
    spread_c = np.sqrt(np.bincount(labels, weights=nu * sq, minlength=k) / np.maximum(w, 1e-300))
    a = spread_c / np.maximum(cell_radii, 1e-300)
    a = np.where(a > 0, a, 1.0)  # one-point clusters: d_i = 0
    h = coarse_h[labels] - np.einsum("ij,ij->i", cell_means[labels], d) - sq / (2 * a[labels])
    return h - h.mean()


def cell_moments(assign, sample: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean x̄_c and RMS radius r_c of the samples of μ that `assign` puts in each of k cells."""
    a = assign(sample)
    count = np.maximum(np.bincount(a, minlength=k), 1)
    means = np.stack([np.bincount(a, weights=sample[:, j], minlength=k) for j in range(sample.shape[1])], 1)
    means /= count[:, None]
    r2 = np.bincount(a, weights=np.sum((sample - means[a]) ** 2, axis=1), minlength=k) / count
    return means, np.sqrt(r2)


def merge_split_clusters(centres: np.ndarray) -> np.ndarray:
    """(k,) new labels of k-means centres: centres joined by single linkage below the largest
    multiplicative gap of the linkage distances, when that gap is ≥ MERGE_GAP — k-means splits
    a tight cluster into centres far closer to each other than to the other clusters, and a
    coarse problem with such centres is as clustered as the fine one."""
    if len(centres) < 3:
        return np.arange(len(centres))
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(centres, "single")
    heights = np.maximum(tree[:, 2], 1e-300)
    order = np.sort(heights)
    ratio = order[1:] / order[:-1]
    cut = int(np.argmax(ratio))
    if ratio[cut] < MERGE_GAP:
        return np.arange(len(centres))
    return fcluster(tree, 0.5 * (order[cut] + order[cut + 1]), "distance") - 1


def coarsen(y: np.ndarray, nu: np.ndarray, k: int,
            seed: int | None = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """k-means of the targets weighted by ν, with split tight clusters merged again
    (`merge_split_clusters`): (centres (k', d) as ν-weighted means, their weights
    w_c = Σ_{i ∈ c} ν_i (k',), labels (N,))."""
    from sklearn.cluster import KMeans

    km = KMeans(k, n_init=1, max_iter=50, random_state=seed).fit(y, sample_weight=nu)
    labels = merge_split_clusters(km.cluster_centers_)[km.labels_]
    k = int(labels.max()) + 1
    w = np.bincount(labels, weights=nu, minlength=k)
    centres = np.stack([np.bincount(labels, weights=nu * y[:, j], minlength=k) for j in range(y.shape[1])], 1)
    return centres / np.maximum(w, 1e-300)[:, None], w, labels
