"""The singular set of the Brenier potential u_h(x) = max_i ⟨x, y_i⟩ + h_i.

u_h is piecewise affine: on the cell W_i(h) it equals the plane π_i(x) = ⟨x, y_i⟩ + h_i, whose
graph has the normal n_i = (y_i, −1). Across the facet F_ij = W_i ∩ W_j the gradient
T = ∇u_h jumps from y_i to y_j. Every facet is a crease of the graph, but most creases are the
discretisation of a smooth map (adjacent cells send mass to neighbouring samples of one branch of
the data); a crease whose jump |y_i − y_j| is large compared with the spacing of the targets
around y_i and y_j is where a continuous OT map would be discontinuous: the *singular set*, which
T sends to the boundary between two branches of the support of ν (Gu's critical states).

Detection (AE-OT): adjacent pairs come from Monte-Carlo samples x ~ μ; the two best cells
{i, j} of a sample (largest and second-largest score) are (natural) neighbours in the power
diagram. The number of samples whose two best cells are {i, j} grows with the facet F_ij;
samples whose distance to the facet, t = (s_1 − s_2)/|y_i − y_j|, is below a strip half-width
τ estimate its μ-measure, μ(F_ij) ≈ #{t < τ}/(2 τ n).

The dihedral angle between the facets of the graph of u_h (AE-OT's criterion) is

    cos θ_ij = (1 + ⟨y_i, y_j⟩) / √((1 + |y_i|²)(1 + |y_j|²)),

which depends on the unit and the origin of the targets: scaling y by 10 or translating it changes
θ_ij without changing the cells W_i(h) or the map (a translation of y adds a linear function to
u_h, a scaling multiplies (y, h) and leaves argmax cells unchanged). The criterion therefore
measures the angle in the natural frame of each pair:

    ũ_ij(x) = (u_h(x) − ⟨x, m_ij⟩) / ℓ_ij,   m_ij = (y_i + y_j)/2,   ℓ_ij = max(ℓ_i, ℓ_j),

with ℓ_i the local spacing of the targets: the distance from y_i to its k-th nearest other target,
k = 2d (the k-th neighbour distance varies far less from point to point than the nearest one).
ũ_ij has the same cells and singular set; its facets i, j have normals (±(y_i − y_j)/(2ℓ_ij), −1),
so with the spacing ratio ρ_ij = |y_i − y_j| / ℓ_ij its dihedral angle is

    θ̂_ij = 2 arctan(ρ_ij / 2)      (invariant under y ↦ a·R y + b, a > 0, R a rotation).

A pair is singular when θ̂_ij > θ* = 2 arctan(κ*/2). Automatic threshold (threshold="auto"):

    κ* = max(κ_hole, κ_fence),
    κ_hole = 2 (m₀/k)^{1/d},  m₀ = 16,
    log κ_fence = Q₃ + 2 (Q₃ − Q₁)   (quartiles of log ρ_ij over the detected adjacencies).

κ_fence (Tukey's far fence) makes a singular jump an outlier among the jumps the discretisation
makes everywhere. κ_hole makes it too wide to be a sampling hole: targets whose k-th neighbour is
at distance ℓ come from a density of about k/(ω_d ℓ^d), so an empty ball of diameter κℓ between
y_i and y_j would have been expected to hold k (κ/2)^d ≥ m₀ targets — probability ≈ e^{−16}
under Poisson sampling. In 2-D (k = 4) κ_hole = 4; measured in-branch ratios of 1,500 uniformly or
Gaussian sampled targets stayed below ≈ 4.6, while a gap of width g gives ρ ≈ g/ℓ, which grows
like N^{1/d}: a gap is resolved once it is a few spacings wide.
In more than three dimensions (latent codes) the gap tests fail: distances concentrate, a
power cell has dozens of neighbours, and neither log ρ nor the hole test separates branches
(on 10-D autoencoder codes of the 8×8 digits the rule above gives κ* ≈ 3.9 and no singular pair,
although half of the adjacent pairs join different digits). A local rule is no cure either: the
neighbourhood rule κ* = 1 (a pair is regular only when y_j lies within the k-neighbourhood of
y_i or y_i within that of y_j) cut most pairs across digits but also most pairs inside one, so
the extension's simplices kept about 7 of their d + 1 = 11 vertices and 15 % of them still
joined two digits. There the automatic rule is the branch rule (threshold="spectral", the
default above three dimensions): the branches are found globally, from the spectrum of the
targets' neighbour graph (`brenier.ot.branches`), and a pair is singular exactly when its two
targets lie in different branches. Inside a branch every pair is regular, so the extension
gets full simplices. On those digit codes (five autoencoder seeds) it finds 10–20 branches, and
81–95 % of the codes share their branch's majority digit (`benchmarks/digits.py` has the effect
on generation).
A float `threshold` overrides θ* (radians, compared with θ̂) in any dimension; the neighbourhood
rule is `threshold=2 * arctan(1 / 2)`.

threshold="topology" takes the number of branches from the data instead: β₀ of the targets
(persistent homology, `brenier.manifold.topology`, bars chosen by their gap) and the θ* that
cuts the adjacency graph into exactly β₀ components — single linkage on θ̂: the β₀ − c₀ largest
jumps of its minimum spanning tree (c₀ its components before any cut) become singular, and with
them every pair whose θ̂ is larger still.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

from ..validation import BrenierError, check_positive_float, check_positive_int

STRIP_QUANTILE = 0.05  # share of samples (nearest to their facet) used for facet measures
FENCE = 2.0  # Tukey factor of the automatic threshold
HOLE_COUNT = 16.0  # m₀: expected targets in a gap that cannot be a sampling hole
MAX_GAP_TEST_DIM = 3  # above this dimension the branch rule replaces the gap tests
CHUNK = 1 << 16
THRESHOLD_RULES = ("auto", "topology", "spectral")  # named rules; otherwise θ* in radians


def default_samples(n_targets: int) -> int:
    """Monte-Carlo samples for the cell statistics: ~200 per cell, between 2^18 and 2^23."""
    return int(min(max(1 << 18, 200 * n_targets), 1 << 23))


@dataclass(frozen=True)
class CellStatistics:
    """One Monte-Carlo pass over n samples x ~ μ at the fitted heights h.

    masses (N,): μ̂(W_i); centroids (N, d): ĉ_i = E[x | x ∈ W_i] (NaN for unseen cells);
    pairs (K, 2) with i < j: the pairs of best-two cells seen; counts (K,): how many samples had
    them; facet_measure (K,): μ̂(F_ij) from the strip |t| < τ; facet_centers (K, d): mean of the
    strip samples (NaN if none); strip_width: τ.
    """

    n_samples: int
    masses: np.ndarray
    centroids: np.ndarray
    pairs: np.ndarray
    counts: np.ndarray
    facet_measure: np.ndarray
    facet_centers: np.ndarray
    strip_width: float


def cell_statistics(model: Any, n_samples: int | None = None, seed: int | None = 0) -> CellStatistics:
    """Sample the source μ once: cell masses and centroids, adjacent pairs and facet measures."""
    model._check_fitted()
    y = model.targets_
    n_cells, dim = y.shape
    n = check_positive_int(n_samples, "n_samples", allow_none=True) or default_samples(n_cells)
    if n_cells < 2:
        raise BrenierError("targets: the singular set needs at least 2 target points")
    stream = model.source_.stream(seed)
    counts = np.zeros(n_cells, np.int64)
    sums = np.zeros((n_cells, dim))
    keys, strip_keys, strip_x = [], [], []
    tau = None
    done = 0
    while done < n:
        m = min(CHUNK, n - done)
        x = stream.draw(m).astype(np.float64)
        idx, s = model.top_k(x, 2)
        i1, i2 = idx[:, 0], idx[:, 1]
        counts += np.bincount(i1, minlength=n_cells)
        onehot = sp.csr_matrix((np.ones(m), (i1, np.arange(m))), shape=(n_cells, m))
        sums += onehot @ x
        key = np.minimum(i1, i2) * n_cells + np.maximum(i1, i2)
        t = (s[:, 0] - s[:, 1]) / np.maximum(np.linalg.norm(y[i1] - y[i2], axis=1), 1e-300)
        if tau is None:
            tau = max(float(np.quantile(t, STRIP_QUANTILE)), 1e-300)
        near = t < tau
        keys.append(key)
        strip_keys.append(key[near])
        strip_x.append(x[near])
        done += m
    pair_keys, pair_counts = np.unique(np.concatenate(keys), return_counts=True)
    skeys = np.concatenate(strip_keys)
    sx = np.concatenate(strip_x)
    pos = np.searchsorted(pair_keys, skeys)
    strip_counts = np.bincount(pos, minlength=len(pair_keys))
    fsum = np.zeros((len(pair_keys), dim))
    np.add.at(fsum, pos, sx)
    with np.errstate(invalid="ignore", divide="ignore"):
        centroids = sums / counts[:, None]
        fcenters = fsum / strip_counts[:, None]
    pairs = np.stack([pair_keys // n_cells, pair_keys % n_cells], axis=1).astype(np.int64)
    return CellStatistics(n_samples=n, masses=counts / n, centroids=centroids, pairs=pairs,
                          counts=pair_counts, facet_measure=strip_counts / (2 * tau * n),
                          facet_centers=fcenters, strip_width=float(tau))


def dihedral_angles(yi: np.ndarray, yj: np.ndarray) -> np.ndarray:
    """Angle between the normals (y_i, −1) and (y_j, −1) of two planes of u_h, in radians."""
    dot = 1.0 + np.sum(yi * yj, axis=1)
    ni = 1.0 + np.sum(yi**2, axis=1)
    nj = 1.0 + np.sum(yj**2, axis=1)
    cross = np.sqrt(np.maximum(ni * nj - dot**2, 0.0))
    return np.arctan2(cross, dot)


def spacing_ratios(y: np.ndarray, spacing: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """ρ_ij = |y_i − y_j| / max(ℓ_i, ℓ_j), the jump of T across F_ij in local spacing units."""
    ell = np.maximum(np.maximum(spacing[i], spacing[j]), np.finfo(float).tiny)
    return np.linalg.norm(y[i] - y[j], axis=1) / ell


def scaled_angle(ratio: np.ndarray) -> np.ndarray:
    """θ̂ = 2 arctan(ρ/2): the dihedral angle of the potential in the pair's natural frame."""
    return 2.0 * np.arctan(np.asarray(ratio, np.float64) / 2.0)


def neighbour_rank(dim: int, n_targets: int) -> int:
    """k = 2d, the neighbour whose distance sets the local spacing ℓ_i (at most N − 1)."""
    return max(1, min(2 * dim, n_targets - 1))


def auto_threshold(ratios: np.ndarray, dim: int, k: int, fence: float = FENCE,
                   hole_count: float = HOLE_COUNT) -> float:
    """θ* = 2 arctan(κ*/2), κ* = max(2 (m₀/k)^{1/d}, exp(Q₃ + fence·(Q₃ − Q₁)) of log ρ): the
    gap tests of threshold="auto" in d ≤ 3."""
    kappa = 2.0 * (hole_count / k) ** (1.0 / dim)
    if len(ratios):
        logs = np.log(np.maximum(ratios, np.finfo(float).tiny))
        q1, q3 = np.quantile(logs, [0.25, 0.75])
        kappa = max(kappa, float(np.exp(q3 + fence * (q3 - q1))))
    return float(scaled_angle(kappa))


@dataclass(frozen=True)
class SingularSet:
    """Adjacent cells of u_h and which of their facets are singular.

    Attributes:
        pairs (K, 2): adjacent cells (i < j), from samples whose two best cells are i and j.
        counts (K,): number of such samples (grows with the shared facet F_ij).
        facet_measure (K,): μ̂(F_ij), the source measure of the facet ((d−1)-dimensional).
        facet_centers (K, d): a point of each facet (mean of samples near it; NaN if none).
        distances (K,): |y_i − y_j|, the jump of T = ∇u_h across F_ij.
        angles (K,): dihedral angle θ_ij between the planes of u_h (normals (y_i, −1)), radians.
        ratios (K,): ρ_ij = |y_i − y_j| / max(ℓ_i, ℓ_j).
        scaled_angles (K,): θ̂_ij = 2 arctan(ρ_ij/2), the scale-aware angle of the criterion.
        singular (K,): θ̂_ij > threshold, or (branch rule) the pair joins two branches.
        threshold: θ* in radians (on θ̂; π under the branch rule, which uses no angle);
            auto: whether it was chosen automatically.
        spacing (N,): ℓ_i, distance from y_i to its k-th nearest other target (k = 2d).
        masses (N,), centroids (N, d): μ̂(W_i) and the cell centroids (used by the extension).
        partition (N,) or None: the branch of each target under the branch rule
            (threshold="spectral", and "auto" in d > 3); None under an angle threshold.
    """

    pairs: np.ndarray
    counts: np.ndarray
    facet_measure: np.ndarray
    facet_centers: np.ndarray
    distances: np.ndarray
    angles: np.ndarray
    ratios: np.ndarray
    scaled_angles: np.ndarray
    singular: np.ndarray
    threshold: float
    auto: bool
    spacing: np.ndarray
    masses: np.ndarray
    centroids: np.ndarray
    n_samples: int
    targets: np.ndarray = field(repr=False)
    partition: np.ndarray | None = field(default=None, repr=False)

    @property
    def singular_pairs(self) -> np.ndarray:
        """(S, 2) the pairs whose shared facet is singular."""
        return self.pairs[self.singular]

    @property
    def kappa(self) -> float:
        """The threshold as a spacing ratio: singular ⟺ ρ_ij > κ = 2 tan(θ*/2) (inf under the
        branch rule)."""
        if self.threshold >= np.pi:  # π under the branch rule
            return float("inf")
        return float(2.0 * np.tan(self.threshold / 2.0))

    @property
    def rule(self) -> str:
        """"branches" (pairs across branches of `partition` are singular) or "angle" (θ̂ > θ*)."""
        return "angle" if self.partition is None else "branches"

    def classify(self, i: Any, j: Any) -> np.ndarray:
        """Apply the rule to any index pairs (adjacent or not): θ̂_ij > θ*, or under the branch
        rule i and j in different branches; bool array."""
        ii = np.asarray(i, np.int64)
        jj = np.asarray(j, np.int64)
        shape = np.broadcast_shapes(ii.shape, jj.shape)
        ii, jj = np.broadcast_to(ii, shape).ravel(), np.broadcast_to(jj, shape).ravel()
        if self.partition is not None:
            out = self.partition[ii] != self.partition[jj]
        else:
            out = scaled_angle(spacing_ratios(self.targets, self.spacing, ii, jj)) > self.threshold
        return (out & (ii != jj)).reshape(shape)

    def branches(self) -> np.ndarray:
        """Label (N,) of each target's branch: connected components of the graph of targets
        joined by their non-singular adjacencies."""
        n = len(self.targets)
        keep = self.pairs[~self.singular]
        g = sp.coo_matrix((np.ones(len(keep)), (keep[:, 0], keep[:, 1])), shape=(n, n))
        return connected_components(g, directed=False)[1]

    def to_dict(self) -> dict:
        """JSON-ready summary, with the per-pair arrays under "facets"."""
        return {
            "n_targets": int(len(self.targets)), "dim": int(self.targets.shape[1]),
            "n_pairs": int(len(self.pairs)), "n_singular": int(self.singular.sum()),
            "threshold": self.threshold, "threshold_degrees": float(np.degrees(self.threshold)),
            "kappa": self.kappa if np.isfinite(self.kappa) else None, "rule": self.rule,
            "auto": self.auto, "n_samples": self.n_samples,
            "n_branches": int(self.branches().max() + 1),
            "facets": {
                "pairs": self.pairs.tolist(), "counts": self.counts.tolist(),
                "facet_measure": self.facet_measure.tolist(), "distances": self.distances.tolist(),
                "angles": self.angles.tolist(), "ratios": self.ratios.tolist(),
                "scaled_angles": self.scaled_angles.tolist(), "singular": self.singular.tolist(),
            },
        }

    def __repr__(self) -> str:
        rule = (f"branches={int(self.partition.max()) + 1}" if self.partition is not None
                else f"threshold={np.degrees(self.threshold):.2f}°, kappa={self.kappa:.3g}")
        return f"SingularSet(pairs={len(self.pairs)}, singular={int(self.singular.sum())}, {rule})"


def target_spacing(y: np.ndarray, k: int) -> np.ndarray:
    """ℓ_i = distance from y_i to its k-th nearest other target, for every target."""
    from ..metrics import nearest_distances

    return nearest_distances(y, y, k=k, exclude_self=True)


def topology_threshold(pairs: np.ndarray, theta_hat: np.ndarray, n: int, branches: int) -> float:
    """θ* leaving `branches` components in the graph of n cells joined by pairs with θ̂ ≤ θ*."""
    g = sp.coo_matrix((theta_hat, (pairs[:, 0], pairs[:, 1])), shape=(n, n)).tocsr()
    c0 = connected_components(g, directed=False)[0]
    cuts = int(branches) - c0
    w = np.sort(minimum_spanning_tree(g).data)[::-1]  # θ̂ > 0: distinct targets
    if cuts <= 0 or len(w) == 0:
        return float(np.pi)
    if cuts >= len(w):
        return float(w[-1] / 2)
    return float((w[cuts - 1] + w[cuts]) / 2)


def singular_set(model: Any, threshold: float | str = "auto", n_samples: int | None = None,
                 seed: int | None = 0) -> SingularSet:
    """The singular set of a fitted SemiDiscreteOT (see the module docstring for the rule).

    Args:
        model: a fitted `SemiDiscreteOT`.
        threshold: "auto", "topology", "spectral" (see the module docstring) or θ* in radians,
            0 < θ* ≤ π, compared with the scale-aware angle θ̂_ij = 2 arctan(ρ_ij/2).
        n_samples: source samples for adjacency and facet estimates (default ~200 per cell).
        seed: seed of those samples.
    """
    auto = isinstance(threshold, str)
    if auto and threshold not in THRESHOLD_RULES:
        raise BrenierError(
            f"threshold: expected 'auto', 'topology', 'spectral' or an angle in radians, got {threshold!r}")
    if not auto:
        threshold = check_positive_float(threshold, "threshold")
        if threshold > np.pi:
            raise BrenierError(f"threshold: expected an angle in (0, π] radians, got {threshold!r}")
    stats = cell_statistics(model, n_samples, seed)
    y = model.targets_
    i, j = stats.pairs[:, 0], stats.pairs[:, 1]
    k = neighbour_rank(y.shape[1], len(y))
    spacing = target_spacing(y, k)
    ratios = spacing_ratios(y, spacing, i, j)
    theta_hat = scaled_angle(ratios)
    partition = None
    if threshold == "spectral" or (threshold == "auto" and y.shape[1] > MAX_GAP_TEST_DIM):
        from .branches import spectral_branches

        partition = spectral_branches(y, seed=0)
        theta = float(np.pi)
    elif threshold == "topology":
        from ..manifold import topology

        branches = topology(y, max_dim=0, orientability=False).betti[0]
        theta = topology_threshold(stats.pairs, theta_hat, len(y), branches)
    else:
        theta = auto_threshold(ratios, y.shape[1], k) if auto else float(threshold)
    return SingularSet(
        pairs=stats.pairs, counts=stats.counts, facet_measure=stats.facet_measure,
        facet_centers=stats.facet_centers, distances=np.linalg.norm(y[i] - y[j], axis=1),
        angles=dihedral_angles(y[i], y[j]), ratios=ratios, scaled_angles=theta_hat,
        singular=theta_hat > theta if partition is None else partition[i] != partition[j],
        threshold=theta, auto=auto, spacing=spacing, masses=stats.masses, centroids=stats.centroids,
        n_samples=stats.n_samples, targets=y, partition=partition)
