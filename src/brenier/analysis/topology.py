"""Global shape of the data manifold by persistent homology: branches, holes, Euler characteristic.

A growing family of simplicial complexes is built on the samples (a filtration indexed by a
length scale t); each homology class of dimension k is born at some t and dies at a later t, a
*bar* (birth, death) of the persistence diagram of H_k. Long bars are features of the manifold,
short bars are sampling noise. The Betti numbers β_k count the long bars, where "long" is decided
for each k by the widest clear gap in the bar lengths (see `split_at_gap`), not by a fixed cut-off.

* β₀ = number of branches (connected components; the steady states of Gu's picture); the
  branches themselves (`components`) are single-linkage clusters cut at the H₀ gap;
* β₁, β₂ = independent loops and cavities; χ = Σ_k (−1)^k β_k is the Euler characteristic;
* Betti numbers over the fields Z/2 and Z/3 differ exactly when the integral homology has
  2-torsion, e.g. for a non-orientable closed surface (Klein bottle: (1, 2, 1) over Z/2, (1, 1, 0)
  over Z/3). That difference is the orientability hint.

Back-ends: in ambient dimension 2 and 3 the alpha complex (gudhi; its radius r is reported as the
length 2r, so H₀ deaths are single-linkage merge distances as for Rips); in higher dimension the
Vietoris–Rips complex (ripser) on maxmin landmarks, whose covering radius ε bounds the error:
the diagrams of the landmarks and of the whole sample are 2ε apart (bottleneck distance).
Inputs beyond the limits are subsampled with a message; explicit requests beyond the hard limits
are refused, so a call never runs the machine out of memory.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..validation import BrenierError, check_choice, check_points, check_positive_int

BACKENDS = ("auto", "alpha", "rips")
MAX_DIM = 3
# Rips on landmarks: default and largest landmark count per max_dim (ripser's cost grows as m^(k+2))
DEFAULT_LANDMARKS = {0: 4000, 1: 1000, 2: 300, 3: 80}
MAX_LANDMARKS = {0: 6000, 1: 3000, 2: 1000, 3: 200}
# alpha complexes: default point budget and measured peak memory per point (gudhi 3.13, 'fast')
DEFAULT_ALPHA_POINTS = {2: 200_000, 3: 50_000}
ALPHA_BYTES_PER_POINT = {2: 2_000, 3: 10_000}
DEFAULT_MEMORY = 4 << 30  # bytes a call may use before it refuses


@dataclass(frozen=True)
class Component:
    """One branch of the data: `members` are row indices into the X given to `topology`."""

    label: int
    members: np.ndarray
    centroid: np.ndarray

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass(frozen=True)
class Gap:
    """Where the bar lengths were split: bars longer than `threshold` are features."""

    threshold: float  # midpoint of the widest gap (inf when no bar is a feature)
    upper: float  # shortest feature bar (inf when none)
    lower: float  # longest noise bar below the gap (or the noise floor)
    significant: bool


@dataclass
class Topology:
    """Persistent homology of the samples and what it says about their manifold.

    Attributes:
        diagrams: per k = 0..max_dim an array (n_k, 2) of (birth, death) lengths over Z/`coeff`;
            death = inf for classes that never die.
        betti: β_k per k, counted from the bars longer than the gap threshold.
        components: the β₀ branches, largest first, with their member rows.
        labels: (n,) branch label of every row of X (index into `components`).
        euler_characteristic: Σ_{k ≤ max_dim} (−1)^k β_k.
        backend: 'alpha' or 'rips'.
        coeff: field Z/p of `diagrams` and `betti`.
        diagrams_by_coeff, betti_by_coeff: the same for every field computed (2 and 3 when
            `orientability` is on).
        orientable: False when Z/2 and Z/3 Betti numbers differ (2-torsion, e.g. a non-orientable
            surface); True when they agree and there is a top-dimensional class; None otherwise.
        gaps: per k the split of the bar lengths into features and noise (for k = 0, of the
            merges between groups of at least `min_branch_size` rows).
        floor: the scale at which every branch is connected (longest merge inside a branch);
            bars of H_k, k ≥ 1, must be longer to count.
        used: rows of X the complex was built on (all distinct rows, a subsample or landmarks).
        covering_radius: largest distance from a row of X to the nearest used row.
        notes: messages about subsampling, duplicates and reliability.
    """

    diagrams: list[np.ndarray]
    betti: list[int]
    components: list[Component]
    labels: np.ndarray
    euler_characteristic: int
    backend: str
    coeff: int
    max_dim: int
    diagrams_by_coeff: dict[int, list[np.ndarray]]
    betti_by_coeff: dict[int, list[int]]
    orientable: bool | None
    gaps: list[Gap]
    floor: float
    used: np.ndarray
    covering_radius: float
    n_points: int
    notes: list[str] = field(default_factory=list)

    def betti_at(self, scale: float, coeff: int | None = None) -> list[int]:
        """Betti numbers of the complex at one length `scale`: bars with birth ≤ scale < death."""
        dg = self.diagrams_by_coeff[self.coeff if coeff is None else coeff]
        return [int(np.sum((d[:, 0] <= scale) & (d[:, 1] > scale))) for d in dg]

    def to_dict(self, max_bars: int | None = 500) -> dict[str, Any]:
        """JSON-ready summary; diagrams keep the `max_bars` longest bars of each H_k (all when
        None, none when 0), infinite deaths become None; member lists are left out."""
        out: dict[str, Any] = {
            "betti": self.betti, "euler_characteristic": self.euler_characteristic,
            "backend": self.backend, "coeff": self.coeff, "max_dim": self.max_dim,
            "betti_by_coeff": {str(p): b for p, b in self.betti_by_coeff.items()},
            "orientable": self.orientable,
            "components": [{"label": c.label, "size": c.size, "centroid": c.centroid.tolist()}
                           for c in self.components],
            "gaps": [_gap_dict(g) for g in self.gaps], "floor": self.floor,
            "n_points": self.n_points, "n_used": len(self.used),
            "covering_radius": self.covering_radius, "notes": list(self.notes),
            "n_bars": {str(p): [len(d) for d in dg] for p, dg in self.diagrams_by_coeff.items()}}
        if max_bars != 0:
            out["diagrams"] = {str(p): [_bars(d, max_bars) for d in dg]
                               for p, dg in self.diagrams_by_coeff.items()}
        return out


def topology(
    X: Any,
    max_dim: int = 2,
    *,
    backend: str = "auto",
    coeff: int = 2,
    orientability: bool = True,
    max_points: int | None = None,
    n_landmarks: int | None = None,
    min_branch_size: int | None = None,
    max_memory: int = DEFAULT_MEMORY,
    seed: int | None = 0,
) -> Topology:
    """Persistent homology of points X (n, D) up to dimension `max_dim`, and its reading.

    Args:
        X: (n, D) samples (numpy or torch).
        max_dim: highest homology dimension k (0..3).
        backend: 'auto' (alpha for D ∈ {2, 3}, Rips otherwise), 'alpha' or 'rips'.
        coeff: prime p of the main field Z/p (2 or 3 for the orientability hint, any prime).
        orientability: also compute over the other of Z/2, Z/3 and compare.
        max_points: rows used at most (random subsample beyond); default by back-end.
        n_landmarks: Rips only: number of maxmin landmarks; default by `max_dim`.
        min_branch_size: a branch (β₀) needs at least this many used rows; smaller groups that
            join late (outliers) are attached to their nearest branch. Default: 1 % of the rows
            used, at least 2.
        max_memory: bytes the complex may take (estimated); larger requests are refused.
        seed: seed of subsampling and of the first landmark.

    Returns:
        Topology with `diagrams`, `betti`, `components`, `euler_characteristic`, ...
    """
    max_dim = _check_max_dim(max_dim)
    check_choice(backend, "backend", BACKENDS)
    coeff = _check_prime(coeff)
    x = check_points(X, "X")
    n_points, dim = x.shape
    notes: list[str] = []

    xu, inverse = np.unique(x, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    if len(xu) < n_points:
        notes.append(f"{n_points - len(xu)} duplicate row(s) merged")
    if backend == "auto":
        backend = "alpha" if dim in (2, 3) and len(xu) > dim + 1 else "rips"
    if backend == "alpha" and dim not in (2, 3):
        raise BrenierError(f"backend: 'alpha' needs points in 2-D or 3-D, got D={dim} (use 'rips')")

    rng = np.random.default_rng(seed)
    pool = np.arange(len(xu))
    limit = max_points if max_points is not None else _default_points(backend, dim, max_dim)
    limit = check_positive_int(limit, "max_points")
    if backend == "alpha":
        need = ALPHA_BYTES_PER_POINT[dim] * min(limit, len(xu))
        if need > max_memory:
            raise BrenierError(
                f"max_points: an alpha complex on {min(limit, len(xu))} points in {dim}-D needs "
                f"about {need / 2**30:.1f} GiB > max_memory={max_memory / 2**30:.1f} GiB; "
                "lower max_points or raise max_memory")
    if len(pool) > limit:
        pool = np.sort(rng.choice(len(pool), limit, replace=False))
        _say(notes, f"{len(xu)} distinct points > max_points={limit}: "
                    f"using a random subsample of {limit}")

    fields = [coeff] + ([q for q in (2, 3) if q != coeff][:1] if orientability else [])
    if backend == "alpha":
        used = pool
        diagrams_by_coeff, merges = _alpha(xu[used], max_dim, fields)
    else:
        m = n_landmarks if n_landmarks is not None else DEFAULT_LANDMARKS[max_dim]
        m = check_positive_int(m, "n_landmarks")
        if m > MAX_LANDMARKS[max_dim]:
            raise BrenierError(
                f"n_landmarks: at most {MAX_LANDMARKS[max_dim]} landmarks for max_dim={max_dim} "
                f"(Rips cost grows like m^{max_dim + 2}), got {m}")
        need = 24 * min(m, len(pool)) ** 2  # dense distances: pdist, square form, ripser's copy
        if need > max_memory:
            raise BrenierError(
                f"n_landmarks: {m} landmarks need about {need / 2**30:.1f} GiB of distances > "
                f"max_memory={max_memory / 2**30:.1f} GiB")
        if len(pool) > m:
            used = pool[_maxmin(xu[pool], m, rng)]
            notes.append(f"Rips complex on {m} maxmin landmarks of {len(pool)} points")
        else:
            used = pool
        diagrams_by_coeff, merges = _rips(xu[used], max_dim, fields)

    diagrams = diagrams_by_coeff[coeff]
    size = _check_min_branch(min_branch_size, len(used))
    merges, small = _merge_sizes(len(used), merges)
    branchy = small >= size  # merges of two groups of >= `size` rows; the rest are stragglers
    gaps = [split_at_gap(merges[branchy, 2])]
    cut = branchy & (merges[:, 2] > gaps[0].threshold)
    inside = merges[branchy & ~cut, 2]
    floor = float(inside.max()) if len(inside) else 0.0  # each branch is connected at this scale
    gaps += [split_at_gap(_lengths(d), floor=floor) for d in diagrams[1:]]
    beta0 = 1 + int(cut.sum())
    betti_by_coeff = {p: [beta0] + _betti(dg[1:], gaps[1:]) for p, dg in diagrams_by_coeff.items()}
    betti = betti_by_coeff[coeff]
    _late_bars(diagrams, gaps, floor, notes)

    labels_used = _connected(len(used), merges[~cut])
    labels_u, radius = _extend_labels(xu, used, labels_used)
    labels, components = _components(x, labels_u[inverse])
    shortest = min(g.upper for g in gaps)
    if radius > 0 and shortest < 4 * radius:
        notes.append(f"shortest feature bar {shortest:.3g} < 4 x covering radius {radius:.3g}: "
                     "it may be an artefact of subsampling; raise n_landmarks / max_points")

    orientable = None
    if len(betti_by_coeff) > 1:
        b2, b3 = betti_by_coeff.get(2), betti_by_coeff.get(3)
        if b2 is not None and b3 is not None:
            if b2 != b3:
                orientable = False
            elif max_dim >= 1 and b2[max_dim] > 0:
                orientable = True
    if max_dim < dim - 1:
        notes.append(f"Euler characteristic counts H_0..H_{max_dim} only")

    return Topology(
        diagrams=diagrams, betti=betti, components=components, labels=labels,
        euler_characteristic=int(sum((-1) ** k * b for k, b in enumerate(betti))),
        backend=backend, coeff=coeff, max_dim=max_dim, diagrams_by_coeff=diagrams_by_coeff,
        betti_by_coeff=betti_by_coeff, orientable=orientable, gaps=gaps, floor=floor,
        used=np.flatnonzero(np.isin(inverse, used)) if len(used) < len(xu) else np.arange(n_points),
        covering_radius=radius, n_points=n_points, notes=notes)


def split_at_gap(lengths: np.ndarray, floor: float = 0.0) -> Gap:
    """Split bar lengths into features (long) and noise (short) at their widest clear gap.

    The finite lengths are sorted in decreasing order. A gap between neighbours is *clear* when
    it is wider than every bar below it (the bars above are more than twice as long as all the
    noise) and the bar above it is longer than `floor`, the noise scale (e.g. the scale at which
    the sample is connected). With a floor > 0 the gap between the shortest bar above the floor
    and the floor itself is a candidate too (so that bars need no noise bars to be seen). The
    widest clear gap is the split; without one, no bar is a feature. Without a floor a lone bar
    is a feature.
    """
    lengths = np.asarray(lengths, dtype=np.float64)
    lengths = np.sort(lengths[np.isfinite(lengths) & (lengths > 0)])[::-1]
    candidates = []  # (width, upper, lower)
    if len(lengths) >= 2:
        gaps = lengths[:-1] - lengths[1:]
        for j in np.flatnonzero((gaps > lengths[1:]) & (lengths[:-1] > floor)):
            candidates.append((gaps[j], lengths[j], lengths[j + 1]))
    above = lengths[lengths > floor]
    if floor > 0 and len(above) and above[-1] > 2 * floor:
        candidates.append((above[-1] - floor, above[-1], floor))
    if floor <= 0 and len(lengths) == 1:
        candidates.append((lengths[0], lengths[0], 0.0))
    if not candidates:
        top = float(lengths[0]) if len(lengths) else 0.0
        return Gap(threshold=math.inf, upper=math.inf, lower=top, significant=False)
    _, upper, lower = max(candidates)
    return Gap(threshold=float(max((upper + lower) / 2, floor)), upper=float(upper),
               lower=float(lower), significant=True)


def plot_diagrams(topo: Topology, path: Any, title: str | None = None) -> None:
    """Write a PNG: persistence diagram (left) and sorted bar lengths with the gap (right)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from ..io import atomic_path

    dg = topo.diagrams
    finite = np.concatenate([d[np.isfinite(d)] for d in dg] + [np.zeros(1)])
    top = float(finite.max()) * 1.08 or 1.0
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, d in enumerate(dg):
        if len(d) == 0:
            continue
        inf = ~np.isfinite(d[:, 1])
        c = colors[k % len(colors)]
        ax.scatter(d[~inf, 0], d[~inf, 1], s=9, color=c, alpha=0.7, label=f"H{k} ({topo.betti[k]})")
        ax.scatter(d[inf, 0], np.full(inf.sum(), top), s=30, color=c, marker="^")
        lengths = np.sort(_lengths(d))[::-1]
        bx.plot(np.arange(1, len(lengths) + 1), lengths, ".-", color=c, ms=4, label=f"H{k}")
    ax.plot([0, top], [0, top], color="0.5", lw=1)
    ax.axhline(top, color="0.7", lw=0.8, ls=":")
    for k, g in enumerate(topo.gaps):
        if g.significant:
            c = colors[k % len(colors)]
            ax.plot([0, top], [g.threshold, top + g.threshold], lw=0.8, ls="--", color=c)
            bx.axhline(g.threshold, lw=0.8, ls="--", color=c, label=f"H{k} split {g.threshold:.3g}")
    ax.set(xlim=(0, top), ylim=(0, top * 1.04), xlabel="birth (length)", ylabel="death (length)",
           title=f"persistence diagram ({topo.backend}, Z/{topo.coeff})")
    ax.legend(loc="lower right", fontsize=8)
    bx.set_ylim(bottom=1e-4 * top)  # alpha complexes have many bars of rounding-error length
    bx.set(xscale="log", yscale="log", xlabel="rank", ylabel="bar length",
           title=f"bar lengths: betti {topo.betti}, chi = {topo.euler_characteristic}")
    bx.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- back-ends
def _alpha(x: np.ndarray, max_dim: int, fields: list[int]):
    """Diagrams of the alpha filtration (lengths 2r) and the H₀ merge edges (i, j, length)."""
    import gudhi

    st = gudhi.AlphaComplex(points=x, precision="fast").create_simplex_tree()
    if st.num_vertices() != len(x):
        raise BrenierError("X: the alpha complex dropped points (numerically coincident rows); "
                           "use backend='rips'")
    st.prune_above_dimension(max_dim + 1)
    out: dict[int, list[np.ndarray]] = {}
    merges = np.empty((0, 3))
    for p in fields:
        st.compute_persistence(homology_coeff_field=p, persistence_dim_max=True)
        out[p] = [_alpha_lengths(st.persistence_intervals_in_dimension(k))
                  for k in range(max_dim + 1)]
        if p == fields[0]:
            edges = [d for b, d in st.persistence_pairs() if len(b) == 1 and len(d) == 2]
            if edges:
                e = np.asarray(edges, dtype=np.int64)
                length = 2 * np.sqrt([max(st.filtration(list(ij)), 0.0) for ij in e])
                merges = np.column_stack([e, length])
    return out, merges


def _alpha_lengths(d: np.ndarray) -> np.ndarray:
    d = np.asarray(d, dtype=np.float64).reshape(-1, 2)
    return 2 * np.sqrt(np.clip(d, 0.0, None))


def _rips(x: np.ndarray, max_dim: int, fields: list[int]):
    """Rips diagrams (ripser) and the H₀ merge edges: the minimum spanning tree."""
    from ripser import ripser
    from scipy.sparse.csgraph import minimum_spanning_tree
    from scipy.spatial.distance import pdist, squareform

    dist = squareform(pdist(x))
    out = {}
    for p in fields:
        dg = ripser(dist, maxdim=max_dim, coeff=p, distance_matrix=True)["dgms"]
        out[p] = [np.asarray(d, dtype=np.float64).reshape(-1, 2) for d in dg]
    tree = minimum_spanning_tree(dist).tocoo()
    merges = np.column_stack([tree.row, tree.col, tree.data]) if tree.nnz else np.empty((0, 3))
    return out, merges


def _maxmin(x: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """m landmarks by farthest-point (maxmin) sampling from a random first point; O(n m D)."""
    idx = np.empty(m, dtype=np.int64)
    idx[0] = rng.integers(len(x))
    d2 = np.sum((x - x[idx[0]]) ** 2, axis=1)
    for i in range(1, m):
        idx[i] = int(np.argmax(d2))
        np.minimum(d2, np.sum((x - x[idx[i]]) ** 2, axis=1), out=d2)
    return idx


# ----------------------------------------------------------------------------- reading
def _lengths(d: np.ndarray) -> np.ndarray:
    return d[:, 1] - d[:, 0] if len(d) else np.empty(0)


def _betti(diagrams: list[np.ndarray], gaps: list[Gap]) -> list[int]:
    """β_k for k ≥ 1: bars longer than the gap threshold of H_k, plus bars that never die."""
    out = []
    for d, gap in zip(diagrams, gaps, strict=True):
        length = _lengths(d)
        out.append(int(np.sum(~np.isfinite(length)) + np.sum(length > gap.threshold)))
    return out


def _merge_sizes(n: int, merges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort the H₀ merge edges (i, j, length) by length and give, for each, the size of the
    smaller of the two groups it joins (single linkage, Kruskal order)."""
    merges = merges.reshape(-1, 3)
    merges = merges[np.argsort(merges[:, 2], kind="stable")]
    parent = np.arange(n)
    size = np.ones(n, dtype=np.int64)

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    small = np.zeros(len(merges), dtype=np.int64)
    for e, (i, j) in enumerate(merges[:, :2].astype(np.int64)):
        ri, rj = root(i), root(j)
        if ri == rj:  # not a tree edge (cannot happen for an MST); keep it harmless
            continue
        if size[ri] < size[rj]:
            ri, rj = rj, ri
        small[e] = size[rj]
        parent[rj] = ri
        size[ri] += size[rj]
    return merges, small


def _connected(n: int, edges: np.ndarray) -> np.ndarray:
    """Labels of the connected components of the graph on n nodes with edges (i, j, ·)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    i, j = edges[:, 0].astype(np.int64), edges[:, 1].astype(np.int64)
    graph = coo_matrix((np.ones(len(edges)), (i, j)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _late_bars(diagrams: list[np.ndarray], gaps: list[Gap], floor: float, notes: list[str]) -> None:
    """Note feature bars born long after the branches are connected: such a class is made by
    distant parts of the data touching (layers of a rolled sheet), not by a hole of the
    manifold itself, whose classes appear at the sampling scale (H₂ voids at about 2x it)."""
    if floor <= 0:
        return
    for k, d in enumerate(diagrams[1:], start=1):
        late = d[(_lengths(d) > gaps[k].threshold) & (d[:, 0] > 3 * floor)]
        for b in late[:3, 0]:
            notes.append(f"H{k} feature born at {b:.3g} = {b / floor:.1f} x the branch connection "
                         f"scale {floor:.3g}: it may come from distant parts of the data touching "
                         "(e.g. layers of a rolled sheet) rather than from a hole of the manifold")


def _extend_labels(xu: np.ndarray, used: np.ndarray, labels_used: np.ndarray):
    """Label every distinct row by its nearest used row; return labels and the covering radius."""
    if len(used) == len(xu):
        return labels_used, 0.0
    from sklearn.neighbors import NearestNeighbors

    dist, near = NearestNeighbors(n_neighbors=1).fit(xu[used]).kneighbors(xu)
    return labels_used[near[:, 0]], float(dist.max())


def _components(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, list[Component]]:
    """Relabel clusters by decreasing size and collect their members."""
    uniq, counts = np.unique(labels, return_counts=True)
    order = uniq[np.argsort(-counts, kind="stable")]
    relabel = np.empty(labels.max() + 1, dtype=np.int64)
    relabel[order] = np.arange(len(order))
    new = relabel[labels]
    comps = []
    for c in range(len(order)):
        members = np.flatnonzero(new == c)
        comps.append(Component(label=c, members=members, centroid=x[members].mean(axis=0)))
    return new, comps


# ----------------------------------------------------------------------------- checks
def _check_max_dim(max_dim: Any) -> int:
    if isinstance(max_dim, bool) or not isinstance(max_dim, (int, np.integer)) or not (
            0 <= max_dim <= MAX_DIM):
        raise BrenierError(f"max_dim: expected an integer in 0..{MAX_DIM}, got {max_dim!r}")
    return int(max_dim)


def _check_prime(p: Any) -> int:
    ok = isinstance(p, (int, np.integer)) and not isinstance(p, bool) and p >= 2 and all(
        p % q for q in range(2, math.isqrt(int(p)) + 1))
    if not ok:
        raise BrenierError(f"coeff: expected a prime (2 or 3 for the orientability hint), "
                           f"got {p!r}")
    return int(p)


def _check_min_branch(value: Any, n: int) -> int:
    if value is None:
        return max(2, math.ceil(0.01 * n))
    return check_positive_int(value, "min_branch_size")


def _default_points(backend: str, dim: int, max_dim: int) -> int:
    if backend == "alpha":
        return DEFAULT_ALPHA_POINTS[dim]
    return max(100_000, DEFAULT_LANDMARKS[max_dim])


def _say(notes: list[str], msg: str) -> None:
    notes.append(msg)
    warnings.warn(f"topology: {msg}", stacklevel=3)


def _gap_dict(g: Gap) -> dict[str, Any]:
    return {"threshold": _finite_or_none(g.threshold), "upper": _finite_or_none(g.upper),
            "lower": g.lower, "significant": g.significant}


def _bars(d: np.ndarray, keep: int | None) -> list[list[float | None]]:
    """The `keep` longest bars of a diagram (all if None) as [birth, death or None]."""
    order = np.argsort(-_lengths(d), kind="stable")
    return [[float(d[i, 0]), _finite_or_none(d[i, 1])] for i in order[:keep]]


def _finite_or_none(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None
