"""The singular set of the Brenier potential u_h(x) = max_i ⟨x, y_i⟩ + h_i.

u_h is piecewise affine: on the cell W_i(h) it equals the plane π_i(x) = ⟨x, y_i⟩ + h_i, whose
graph has the normal n_i = (y_i, −1). Across the facet F_ij = W_i ∩ W_j the gradient
T = ∇u_h jumps from y_i to y_j. Every facet is a crease of the graph, but most creases are the
discretisation of a smooth map (adjacent cells send mass to neighbouring samples of one branch of
the data); a crease whose jump |y_i − y_j| is large compared with the spacing of the targets
around y_i and y_j is where a continuous OT map would be discontinuous: the *singular set*, which
T sends to the boundary between two branches of the support of ν (Gu's critical states).

Adjacent pairs and facet measures come from the cell statistics (`brenier.ot.cells.statistics`),
by default one Monte-Carlo pass: the two best cells {i, j} of a sample x ~ μ are neighbours in
the power diagram, and samples within δ of their facet estimate its μ-measure,
μ(F_ij) ≈ #{t < δ}/(2 δ n). With `exact=True` (d ∈ {2, 3}) they come from the exact power
diagram, which also lists the tiny facets no sample sees and so moves the quartiles of the
fence below; the sampled pairs stay the default (docs/design.md).

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
under Poisson sampling. In 2-D (k = 4) κ_hole = 4; a gap of width g gives ρ ≈ g/ℓ, which grows
like N^{1/d}: a gap is resolved once it is a few spacings wide.
In more than three dimensions (latent codes) distances concentrate and a power cell has dozens
of neighbours, so neither log ρ nor the hole test separates branches, and no local rule does
(docs/design.md). There the automatic rule is the branch rule (threshold="spectral", the
default above three dimensions): the branches are found globally, from the spectrum of the
targets' neighbour graph (`brenier.ot.singular.branches`), and a pair is singular exactly when
its two targets lie in different branches. Inside a branch every pair is regular, so the
extension gets full simplices.
A float `threshold` overrides θ* (radians, compared with θ̂) in any dimension; the neighbourhood
rule is `threshold=2 * arctan(1 / 2)`.

threshold="topology" takes the number of branches from the data instead: β₀ of the targets
(persistent homology, `brenier.analysis.topology`, bars chosen by their gap) and the θ* that
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

from ...analysis.neighbours import nearest_distances
from ...analysis.topology import topology
from ...validation import BrenierError, check_positive_float
from ..cells.statistics import CellStatistics, cell_statistics
from .branches import spectral_branches

FENCE = 2.0  # Tukey factor of the automatic threshold
HOLE_COUNT = 16.0  # m₀: expected targets in a gap that cannot be a sampling hole
MAX_GAP_TEST_DIM = 3  # above this dimension the branch rule replaces the gap tests
THRESHOLD_RULES = ("auto", "topology", "spectral")  # named rules; otherwise θ* in radians


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


def _statistic(name: str, doc: str) -> property:
    """A read-only attribute of the SingularSet's `statistics`."""
    return property(lambda self: getattr(self.statistics, name), doc=doc)


@dataclass(frozen=True)
class SingularSet:
    """Adjacent cells of u_h and which of their facets are singular.

    Attributes:
        statistics: the `CellStatistics` of the cells (exact or sampled); its pairs, counts,
            facet measures and centres, segments, masses and centroids are also read here.
        distances (K,): |y_i − y_j|, the jump of T = ∇u_h across F_ij.
        angles (K,): dihedral angle θ_ij between the planes of u_h (normals (y_i, −1)), radians.
        ratios (K,): ρ_ij = |y_i − y_j| / max(ℓ_i, ℓ_j).
        scaled_angles (K,): θ̂_ij = 2 arctan(ρ_ij/2), the scale-aware angle of the criterion.
        singular (K,): θ̂_ij > threshold, or (branch rule) the pair joins two branches.
        threshold: θ* in radians (on θ̂; π under the branch rule, which uses no angle);
            auto: whether it was chosen automatically.
        spacing (N,): ℓ_i, distance from y_i to its k-th nearest other target (k = 2d).
        targets (N, d): y.
        partition (N,) or None: the branch of each target under the branch rule
            (threshold="spectral", and "auto" in d > 3); None under an angle threshold.
    """

    statistics: CellStatistics = field(repr=False)
    distances: np.ndarray
    angles: np.ndarray
    ratios: np.ndarray
    scaled_angles: np.ndarray
    singular: np.ndarray
    threshold: float
    auto: bool
    spacing: np.ndarray
    targets: np.ndarray = field(repr=False)
    partition: np.ndarray | None = field(default=None, repr=False)

    pairs = _statistic("pairs", "(K, 2) adjacent cells i < j (a facet of positive μ-measure, or sampled).")
    counts = _statistic("counts", "(K,) samples whose two best cells are the pair (None when exact).")
    facet_measure = _statistic("facet_measure", "(K,) μ(F_ij), the source measure of the facet.")
    facet_centers = _statistic(
        "facet_centers", "(K, d) a point of each facet (NaN if no sample fell near it; None in exact 3-D).")
    segments = _statistic("segments", "(K, 2, 2) the facets F_ij ∩ D (exact statistics in 2-D), else None.")
    masses = _statistic("masses", "(N,) μ(W_i).")
    centroids = _statistic("centroids", "(N, d) the centroids E[x | x ∈ W_i] (NaN for unseen cells).")
    n_samples = _statistic("n_samples", "Source samples behind the statistics (None when exact).")

    @property
    def singular_pairs(self) -> np.ndarray:
        """(S, 2) the pairs whose shared facet is singular."""
        return self.pairs[self.singular]

    @property
    def singular_segments(self) -> np.ndarray | None:
        """(S, 2, 2) the singular facets as segments (exact statistics in 2-D), else None."""
        return None if self.segments is None else self.segments[self.singular]

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
        """JSON-ready summary, with the per-pair arrays under "facets" (counts None when exact)."""
        return {
            "n_targets": int(len(self.targets)), "dim": int(self.targets.shape[1]),
            "n_pairs": int(len(self.pairs)), "n_singular": int(self.singular.sum()),
            "threshold": self.threshold, "threshold_degrees": float(np.degrees(self.threshold)),
            "kappa": self.kappa if np.isfinite(self.kappa) else None, "rule": self.rule,
            "auto": self.auto, "n_samples": self.n_samples, "exact": self.statistics.exact,
            "n_branches": int(self.branches().max() + 1),
            "facets": {
                "pairs": self.pairs.tolist(),
                "counts": None if self.counts is None else self.counts.tolist(),
                "facet_measure": self.facet_measure.tolist(), "distances": self.distances.tolist(),
                "angles": self.angles.tolist(), "ratios": self.ratios.tolist(),
                "scaled_angles": self.scaled_angles.tolist(), "singular": self.singular.tolist(),
            },
        }

    def __repr__(self) -> str:
        rule = (f"branches={int(self.partition.max()) + 1}" if self.partition is not None
                else f"threshold={np.degrees(self.threshold):.2f}°, kappa={self.kappa:.3g}")
        return f"SingularSet(pairs={len(self.pairs)}, singular={int(self.singular.sum())}, {rule})"


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


def check_threshold(threshold: Any) -> float | str:
    """A named rule of THRESHOLD_RULES or θ* in (0, π] radians."""
    if isinstance(threshold, str):
        if threshold not in THRESHOLD_RULES:
            raise BrenierError(f"threshold: expected 'auto', 'topology', 'spectral' or an angle in "
                               f"radians, got {threshold!r}")
        return threshold
    theta = check_positive_float(threshold, "threshold")
    if theta > np.pi:
        raise BrenierError(f"threshold: expected an angle in (0, π] radians, got {threshold!r}")
    return theta


def classify_pairs(stats: CellStatistics, y: np.ndarray, threshold: float | str = "auto") -> SingularSet:
    """The singular set of the cells described by `stats` for the targets y (N, d), N ≥ 2 (see
    the module docstring for the rules; `threshold` as in `singular_set`)."""
    threshold = check_threshold(threshold)
    if len(y) < 2:
        raise BrenierError("targets: the singular set needs at least 2 target points")
    i, j = stats.pairs[:, 0], stats.pairs[:, 1]
    k = neighbour_rank(y.shape[1], len(y))
    spacing = nearest_distances(y, y, k=k, exclude_self=True)  # ℓ_i
    ratios = spacing_ratios(y, spacing, i, j)
    theta_hat = scaled_angle(ratios)
    partition = None
    if threshold == "spectral" or (threshold == "auto" and y.shape[1] > MAX_GAP_TEST_DIM):
        partition = spectral_branches(y, seed=0)
        theta = float(np.pi)
    elif threshold == "topology":
        branches = topology(y, max_dim=0, orientability=False).betti[0]
        theta = topology_threshold(stats.pairs, theta_hat, len(y), branches)
    elif threshold == "auto":
        theta = auto_threshold(ratios, y.shape[1], k)
    else:
        theta = float(threshold)
    return SingularSet(
        statistics=stats, distances=np.linalg.norm(y[i] - y[j], axis=1),
        angles=dihedral_angles(y[i], y[j]), ratios=ratios, scaled_angles=theta_hat,
        singular=theta_hat > theta if partition is None else partition[i] != partition[j],
        threshold=theta, auto=isinstance(threshold, str), spacing=spacing, targets=y,
        partition=partition)


def singular_set(model: Any, threshold: float | str = "auto", n_samples: int | None = None,
                 seed: int | None = 0, *, exact: bool = False) -> SingularSet:
    """The singular set of a fitted SemiDiscreteOT (see the module docstring for the rule).

    Args:
        model: a fitted `SemiDiscreteOT`.
        threshold: "auto", "topology", "spectral" (see the module docstring) or θ* in radians,
            0 < θ* ≤ π, compared with the scale-aware angle θ̂_ij = 2 arctan(ρ_ij/2).
        n_samples: source samples for adjacency and facet estimates (default ~200 per cell).
        seed: seed of those samples.
        exact: take the cells from the exact power diagram instead (d ∈ {2, 3}); every facet of
            positive measure is then a pair, and `segments` holds the facets in 2-D.
    """
    threshold = check_threshold(threshold)
    stats = cell_statistics(model, n_samples, seed, exact=exact)
    return classify_pairs(stats, model.targets_, threshold)
