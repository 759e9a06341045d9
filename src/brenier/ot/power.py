"""Power (Laguerre) diagrams clipped to a convex domain D ⊂ R^d, d ∈ {2, 3}, and exact integrals
over their cells.

Cells: W_i(h) = {x ∈ D : ⟨x, y_i⟩ + h_i ≥ ⟨x, y_j⟩ + h_j for all j}. The regular triangulation dual
to the diagram is the lower convex hull of the lifted points (y_i, −h_i); its simplices give the
power vertices and its (d−1)-faces the facets F_ij = W_i ∩ W_j. A fresh triangulation of many
sites is built by incremental insertion in spatial order with bistellar flips (compiled; a
site is never hidden on the way when none is hidden at the end), otherwise by qhull
(scipy.spatial); after a change of h the previous one is repaired by flips.

Integrals use the divergence theorem with a field F = Φ e_1, ∂Φ/∂x_1 = f, Φ = 0 on the plane
x_1 = a_1 (a_1 = min of x_1 over D):   ∫_{W_i} f = Σ_j n_ij,1 ∫_{F_ij} Φ + Σ_k n_k,1 ∫_{W_i ∩ ∂_k D} Φ,
with n_ij = (y_j − y_i)/|y_j − y_i| and ∂_k D the faces of D. Facet integrals are exact quadrature
rules (Simpson on segments, edge midpoints on triangles); the pieces of ∂D are the restricted
diagram one dimension lower. A pixel density is integrated piece by piece after splitting facets
at the grid lines (Φ is then piecewise quadratic). Everything is vectorised over facets: the only
Python loops run over the faces of D and the clipping planes.

Facet measures are signed: on degenerate sites (co-circular / co-spherical, e.g. a regular grid,
whose diagonal facets have zero measure) qhull and the flips return a triangulation that is
regular only up to rounding, and some power edges run backwards. Integrated with their sign the
cell integrals stay exact to second order in that violation (with |length| they were off to
first order, ~1e-9 relative, and Newton stalled there); negative facet masses count 0 in L.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.spatial import ConvexHull, QhullError

from ..validation import BrenierError


def _compiled(build):
    """Decorator for a kernel factory `build(numba)`: compile on first call, then return the cached
    kernel; None (the numpy paths are used) when numba is not installed."""
    cache: list = []

    @functools.wraps(build)
    def kernel():
        if not cache:
            try:
                import numba
            except ImportError:  # pragma: no cover
                cache.append(None)
            else:
                cache.append(build(numba))
        return cache[0]
    return kernel


# ---------------------------------------------------------------------------------------- domains


@dataclass
class Polytope:
    """A convex polytope {x : A x ≤ b} (rows of A are unit outer normals) with its vertices.

    In 2-D `vertices` are in counter-clockwise order and edge k runs from vertex k to k+1 with
    normal A[k]; in 3-D `faces[k]` lists the vertices of the face with normal A[k] in order.
    """

    A: np.ndarray
    b: np.ndarray
    vertices: np.ndarray
    faces: list
    volume: float
    centroid: np.ndarray

    @property
    def dim(self) -> int:
        return self.vertices.shape[1]

    @classmethod
    def box(cls, low, high) -> Polytope:
        low, high = np.asarray(low, float), np.asarray(high, float)
        d = len(low)
        if d == 2:
            v = np.array([[low[0], low[1]], [high[0], low[1]], [high[0], high[1]], [low[0], high[1]]])
            return cls.from_vertices(v)
        corners = np.array(list(itertools.product(*zip(low, high, strict=True))))
        return cls.from_vertices(corners)

    @classmethod
    def from_vertices(cls, points, name: str = "vertices") -> Polytope:
        """Convex hull of the given points (d ∈ {2, 3}, full-dimensional)."""
        pts = np.asarray(points, float)
        d = pts.shape[1]
        try:
            hull = ConvexHull(pts)
        except (QhullError, ValueError) as exc:
            raise BrenierError(f"{name}: the points do not span a {d}-D convex body ({exc})") from None
        if d == 2:
            v = pts[hull.vertices]  # counter-clockwise for 2-D hulls
            e = np.roll(v, -1, axis=0) - v
            n = np.c_[e[:, 1], -e[:, 0]]
            n /= np.linalg.norm(n, axis=1, keepdims=True)
            b = np.einsum("ij,ij->i", n, v)
            return cls(n, b, v, [], float(hull.volume), _polygon_centroid(v))
        eq = hull.equations
        key = np.round(eq / np.abs(eq).max() * 1e9).astype(np.int64)
        _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
        A, b, faces = [], [], []
        for f in range(len(first)):
            normal = eq[first[f], :3]
            idx = np.unique(hull.simplices[inverse.ravel() == f])
            fv = pts[idx]
            c = fv.mean(axis=0)
            u = fv[0] - c if np.linalg.norm(fv[0] - c) > 0 else np.cross(normal, [1.0, 0, 0])
            u /= np.linalg.norm(u)
            w = np.cross(normal, u)
            ang = np.arctan2((fv - c) @ w, (fv - c) @ u)
            A.append(normal)
            b.append(-eq[first[f], 3])
            faces.append(idx[np.argsort(ang)])
        used = np.unique(np.concatenate(faces))
        remap = np.full(len(pts), -1)
        remap[used] = np.arange(len(used))
        faces = [remap[f] for f in faces]
        tets = ConvexHull(pts[used])  # centroid from a cone decomposition
        c0 = pts[used].mean(axis=0)
        vol, mom = 0.0, np.zeros(3)
        for s in tets.simplices:
            p = pts[used][s]
            v6 = abs(np.linalg.det(p - c0)) / 6
            vol += v6
            mom += v6 * (p.sum(axis=0) + c0) / 4
        return cls(np.array(A), np.array(b), pts[used], faces, float(hull.volume), mom / vol)

    def contains(self, x: np.ndarray, tol: float = 1e-12) -> np.ndarray:
        scale = 1.0 + np.abs(self.b).max()
        return np.all(x @ self.A.T <= self.b + tol * scale, axis=-1)


def _polygon_centroid(v: np.ndarray) -> np.ndarray:
    w = np.roll(v, -1, axis=0)
    cr = v[:, 0] * w[:, 1] - w[:, 0] * v[:, 1]
    a = cr.sum() / 2
    return np.array([((v[:, 0] + w[:, 0]) * cr).sum(), ((v[:, 1] + w[:, 1]) * cr).sum()]) / (6 * a)


@dataclass
class Domain:
    """Where μ lives: a convex polytope with μ uniform on it, or a box with a pixel/voxel density.

    `grid` (when given) holds the density ρ per grid cell (∫ ρ = 1), axis k along x_k, over the
    box `poly`.
    """

    poly: Polytope
    grid: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return self.poly.dim

    @property
    def low(self) -> np.ndarray:
        return self.poly.vertices.min(axis=0)

    @property
    def high(self) -> np.ndarray:
        return self.poly.vertices.max(axis=0)

    @property
    def cell(self) -> np.ndarray:
        return (self.high - self.low) / np.asarray(self.grid.shape)

    def density_at(self, x: np.ndarray) -> np.ndarray:
        """ρ(x) (0 outside D)."""
        inside = self.poly.contains(x)
        if self.grid is None:
            return np.where(inside, 1.0 / self.poly.volume, 0.0)
        idx = np.floor((x - self.low) / self.cell).astype(np.int64)
        idx = np.clip(idx, 0, np.asarray(self.grid.shape) - 1)
        return np.where(inside, self.grid[tuple(idx.T)], 0.0)


# ---------------------------------------------------------------------------------------- result


@dataclass
class PowerDiagram:
    """Exact integrals over the cells W_i(h) ∩ D.

    masses (N,): μ(W_i); moments (N, d): ∫_{W_i} x dμ; pairs (P, 2) and facet_mass (P,):
    μ-measure of the facet F_ij (length/area weighted by ρ), so the Hessian of the energy is
    the Laplacian with weights facet_mass / |y_i − y_j|; segments (P, 2, 2) in 2-D: the clipped
    facets.
    """

    masses: np.ndarray
    moments: np.ndarray
    pairs: np.ndarray
    facet_mass: np.ndarray
    segments: np.ndarray | None = None
    triangulation: Triangulation | None = None

    def centroids(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.masses[:, None] > 0, self.moments / self.masses[:, None], np.nan)

    def hessian(self, y: np.ndarray) -> sp.csr_matrix:
        """∂μ(W_i)/∂h_j: the graph Laplacian L = diag(W 1) − W, W_ij = μ(F_ij)/|y_i − y_j|."""
        n = len(y)
        i, j = self.pairs.T
        w = self.facet_mass / np.linalg.norm(y[i] - y[j], axis=1)
        diag = np.bincount(i, w, minlength=n) + np.bincount(j, w, minlength=n)
        k = np.arange(n)
        return sp.csr_matrix((np.r_[-w, -w, diag], (np.r_[i, j, k], np.r_[j, i, k])), shape=(n, n))


# ---------------------------------------------------------------------------------------- triangulation


def score_floor(y: np.ndarray, h: np.ndarray, verts: np.ndarray) -> float:
    """A lower bound of u_h on D: max_i min_v ⟨v, y_i⟩ + h_i (affine functions peak at vertices)."""
    best = -np.inf
    for a in range(0, len(y), 1 << 16):
        s = verts @ y[a:a + (1 << 16)].T + h[a:a + (1 << 16)]
        best = max(best, float(s.min(axis=0).max()))
    return best


DUMMY_FACTOR = 3.0
FACETS_2D_COMPILED = True  # 2-D facets of a uniform ρ through the numba kernel (when installed)
SPATIAL_SORT = True
QHULL_OPTIONS = "Qt Q3 Q5"


def spatial_order(Y: np.ndarray) -> np.ndarray:
    """An order of the points along a coarse grid (rows of cells, boustrophedon): neighbours in
    space come close in the order (insertion, qhull and the kernels then walk locally)."""
    n, d = Y.shape
    lo, hi = Y.min(axis=0), Y.max(axis=0)
    k = max(1, int(round((n / 8) ** (1.0 / d))))
    cell = np.minimum(((Y - lo) / np.maximum(hi - lo, 1e-300) * k).astype(np.int64), k - 1)
    keys = [cell[:, 0]]
    for a in range(1, d):
        flip = (cell[:, a - 1] % 2 == 1)
        keys.append(np.where(flip, k - 1 - cell[:, a], cell[:, a]))
    return np.lexsort(keys[::-1] + [])


@dataclass
class Triangulation:
    """Regular triangulation of (y, h) plus 2^d dummy sites (indices ≥ n_real) bounding every cell.

    simplices (T, d+1) into Y; neighbours (T, d+1): simplex opposite each vertex, or −1;
    vertices (T, d): the power vertex where the simplex's sites tie; complete: every real site is
    a vertex (no empty cell)."""

    Y: np.ndarray
    H: np.ndarray
    simplices: np.ndarray
    neighbors: np.ndarray
    vertices: np.ndarray
    n_real: int
    complete: bool
    how: str = "qhull"  # how it was obtained: 'qhull' or 'inserted' (fresh), 'kept' or 'flipped'


def _dummy_heights(y, h, verts, dummies):
    floor = score_floor(y, h, verts)
    top = (verts @ dummies.T).max(axis=0)
    return floor - top - (1.0 + abs(floor))


def _power_vertices(Y: np.ndarray, H: np.ndarray, simp: np.ndarray):
    """x with ⟨x, Y_a⟩ + H_a equal over each simplex; (x (T, d), ok (T,) well-conditioned)."""
    d = Y.shape[1]
    kernel = _vertex_kernel() if d == 3 else None
    if kernel is not None:
        x, ok = np.empty((len(simp), 3)), np.empty(len(simp), np.bool_)
        kernel(Y, H, np.ascontiguousarray(simp), x, ok)
        return x, ok
    base = Y[simp[:, 0]]
    M = Y[simp[:, 1:]] - base[:, None, :]
    rhs = H[simp[:, :1]] - H[simp[:, 1:]]
    if d == 2:  # Cramer's rule
        det = M[:, 0, 0] * M[:, 1, 1] - M[:, 0, 1] * M[:, 1, 0]
        size = np.linalg.norm(M[:, 0], axis=1) * np.linalg.norm(M[:, 1], axis=1)
        ok = np.abs(det) > 1e-10 * size
        det = np.where(ok, det, 1.0)
        x0 = (rhs[:, 0] * M[:, 1, 1] - M[:, 0, 1] * rhs[:, 1]) / det
        x1 = (M[:, 0, 0] * rhs[:, 1] - rhs[:, 0] * M[:, 1, 0]) / det
        return np.c_[x0, x1], ok
    det = np.linalg.det(M)
    size = np.prod(np.linalg.norm(M, axis=2), axis=1)
    ok = np.abs(det) > 1e-10 * size
    M = np.where(ok[:, None, None], M, np.eye(d))
    x = np.linalg.solve(M, rhs[..., None])[..., 0]
    return x, ok




@_compiled
def _vertex_kernel(numba):
    """Numba-compiled 3-D power vertices (Cramer's rule per tetrahedron), or None."""

    @numba.njit(cache=True)
    def vertices(Y, H, simp, x, ok):
        M = np.empty((3, 3))
        r = np.empty(3)
        for t in range(simp.shape[0]):
            a = simp[t, 0]
            size = 1.0
            for k in range(3):
                v = simp[t, k + 1]
                nrm = 0.0
                for c in range(3):
                    M[k, c] = Y[v, c] - Y[a, c]
                    nrm += M[k, c] * M[k, c]
                size *= np.sqrt(nrm)
                r[k] = H[a] - H[v]
            c0 = M[1, 1] * M[2, 2] - M[1, 2] * M[2, 1]
            c1 = M[1, 2] * M[2, 0] - M[1, 0] * M[2, 2]
            c2 = M[1, 0] * M[2, 1] - M[1, 1] * M[2, 0]
            det = M[0, 0] * c0 + M[0, 1] * c1 + M[0, 2] * c2
            ok[t] = abs(det) > 1e-10 * size
            if not ok[t]:
                x[t, 0] = x[t, 1] = x[t, 2] = 0.0
                continue
            # x = M⁻¹ r through the adjugate
            x[t, 0] = (r[0] * c0 + r[1] * (M[0, 2] * M[2, 1] - M[0, 1] * M[2, 2])
                       + r[2] * (M[0, 1] * M[1, 2] - M[0, 2] * M[1, 1])) / det
            x[t, 1] = (r[0] * c1 + r[1] * (M[0, 0] * M[2, 2] - M[0, 2] * M[2, 0])
                       + r[2] * (M[0, 2] * M[1, 0] - M[0, 0] * M[1, 2])) / det
            x[t, 2] = (r[0] * c2 + r[1] * (M[0, 1] * M[2, 0] - M[0, 0] * M[2, 1])
                       + r[2] * (M[0, 0] * M[1, 1] - M[0, 1] * M[1, 0])) / det

    return vertices


def _still_regular(tri: Triangulation, H: np.ndarray, vtx: np.ndarray) -> bool:
    """Local regularity of every interior face for the new heights (⇒ global regularity)."""
    simp, nbr = tri.simplices, tri.neighbors
    t, k = np.nonzero(nbr >= 0)
    nb = nbr[t, k]
    opp = simp[nb].sum(axis=1) - (simp[t].sum(axis=1) - simp[t, k])
    x = vtx[t]
    s_opp = np.einsum("ij,ij->i", x, tri.Y[opp]) + H[opp]
    s_own = np.einsum("ij,ij->i", x, tri.Y[simp[t, 0]]) + H[simp[t, 0]]
    return bool(np.all(s_opp <= s_own + 1e-11 * (1.0 + np.abs(s_own))))


def _usable_vertices(Y: np.ndarray, H: np.ndarray, simp: np.ndarray, n: int) -> np.ndarray | None:
    """Power vertices of a triangulation built by flips or insertion, or None when a simplex
    with a real facet is flat (qhull then starts afresh). Flat simplices of dummy sites only
    (no real facet uses them) get their vertex mean."""
    vtx, ok = _power_vertices(Y, H, simp)
    idle = (simp < n).sum(axis=1) <= 1
    vtx[~ok & idle] = Y[simp[~ok & idle]].mean(axis=1)
    return vtx if (ok | idle).all() else None


def regular_triangulation(y: np.ndarray, h: np.ndarray, verts: np.ndarray,
                          previous: Triangulation | None = None,
                          flips_only: bool = False) -> Triangulation | None:
    """Lower hull of (y_i, −h_i) plus 2^d dummy sites near the bounding box whose cells miss D.

    With `previous` (same y), its combinatorics are repaired by flips when every site stays a
    vertex; when they cannot be, qhull starts afresh, or None is returned if `flips_only`."""
    n, d = y.shape
    if previous is not None and previous.complete and previous.n_real == n:
        H = np.r_[h, _dummy_heights(y, h, verts, previous.Y[n:])]
        simp, nbr = previous.simplices, previous.neighbors
        # bistellar flips (2-2 in 2-D; 2-3 and 3-2 in 3-D): every site stays a vertex
        repaired = (_flip_repair if d == 2 else _flip_repair_3d)(previous.Y, H, simp, nbr)
        if repaired is not None:
            simp, nbr, flips = repaired
            vtx = _usable_vertices(previous.Y, H, simp, n)
            if vtx is not None:
                return Triangulation(previous.Y, H, simp, nbr, vtx, n, True,
                                     "flipped" if flips else "kept")
        elif _flip3_kernel() is None and d == 3:  # pragma: no cover - without numba
            vtx, ok = _power_vertices(previous.Y, H, simp)
            if ok.all() and _still_regular(previous, H, vtx):
                return Triangulation(previous.Y, H, simp, nbr, vtx, n, True, "kept")
        if flips_only:
            return None
    pts = np.vstack([y, verts])
    c = (pts.max(axis=0) + pts.min(axis=0)) / 2
    half = (pts.max(axis=0) - pts.min(axis=0)) / 2
    half = np.maximum(half, 1e-3 * max(float(half.max()), 1e-12))
    dummies = c + DUMMY_FACTOR * half * np.array(list(itertools.product([-1.0, 1.0], repeat=d)))
    Y = np.vstack([y, dummies])
    H = np.r_[h, _dummy_heights(y, h, verts, dummies)]
    if n >= INSERT_MIN:
        inserted = _inserted_triangulation(Y, H, n)
        if inserted is not None:
            simp, nbr = inserted
            vtx = _usable_vertices(Y, H, simp, n)
            if vtx is not None:
                return _local_order(Triangulation(Y, H, simp, nbr, vtx, n, True, "inserted"))
    # lift z = −H; subtracting an affine function of y and scaling keeps the lower hull
    z = -H
    X1 = np.c_[np.ones(n), y]
    coef = np.linalg.lstsq(X1, z[:n], rcond=None)[0] if n > d else np.r_[z[:n].mean(), np.zeros(d)]
    zr = z - (coef[0] + Y @ coef[1:])
    spread = float(np.ptp(zr[:n])) if n > 1 else 1.0
    scale = (float(np.ptp(y, axis=0).max()) if n > 1 else 1.0) / (spread if spread > 0 else 1.0)
    scale = scale if np.isfinite(scale) and scale > 0 else 1.0
    order = spatial_order(Y) if SPATIAL_SORT else np.arange(len(Y))
    try:
        hull = ConvexHull(np.c_[Y, zr * scale][order], qhull_options=QHULL_OPTIONS)
    except QhullError as exc:  # pragma: no cover - dummies make the input full-dimensional
        raise BrenierError(f"targets: qhull failed on the regular triangulation ({exc})") from None
    eq = hull.equations
    lower = eq[:, d] < -1e-12
    lid = np.full(len(eq), -1)
    lid[lower] = np.arange(lower.sum())
    simp = order[hull.simplices[lower]]
    nbr = lid[hull.neighbors[lower]]
    vtx, ok = _power_vertices(Y, H, simp)
    if not ok.all():  # flat simplices (co-spherical sites): the facet plane's slope
        slope = -eq[lower, :d] / (eq[lower, d:d + 1] * scale) + coef[1:]
        vtx[~ok] = slope[~ok]
    complete = len(np.unique(simp[simp < n])) == n
    if d == 2:  # counter-clockwise simplices (the flip repair relies on it)
        e1, e2 = Y[simp[:, 1]] - Y[simp[:, 0]], Y[simp[:, 2]] - Y[simp[:, 0]]
        cw = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0] < 0
        simp[cw] = simp[cw][:, [0, 2, 1]]
        nbr[cw] = nbr[cw][:, [0, 2, 1]]
    return _local_order(Triangulation(Y, H, simp, nbr, vtx, n, complete))


def _local_order(tri: Triangulation) -> Triangulation:
    """The same triangulation with its simplices sorted along the spatial order of their first
    site: rings of simplices around an edge then lie close in memory."""
    rank = np.empty(len(tri.Y), np.int64)
    rank[spatial_order(tri.Y)] = np.arange(len(tri.Y))
    o = np.argsort(rank[tri.simplices].min(axis=1), kind="stable")
    new_id = np.empty_like(o)
    new_id[o] = np.arange(len(o))
    nbr = tri.neighbors[o]
    tri.neighbors = np.where(nbr >= 0, new_id[np.maximum(nbr, 0)], -1)
    tri.simplices, tri.vertices = tri.simplices[o], tri.vertices[o]
    return tri




# the kernel's compiled helpers (set by _flip_kernel)
_f2_below = _f2_relink = _f2_flips = None


@_compiled
def _flip_kernel(numba):
    """Numba-compiled Lawson flips for a 2-D regular triangulation (None without numba)."""

    @numba.njit(cache=True)
    def below(Y, z, a, b, c, dd):
        """Lifted dd lies below the plane of lifted (a, b, c), counter-clockwise."""
        bx, by, bz = Y[b, 0] - Y[a, 0], Y[b, 1] - Y[a, 1], z[b] - z[a]
        cx, cy, cz = Y[c, 0] - Y[a, 0], Y[c, 1] - Y[a, 1], z[c] - z[a]
        dx, dy, dz = Y[dd, 0] - Y[a, 0], Y[dd, 1] - Y[a, 1], z[dd] - z[a]
        det = bx * (cy * dz - cz * dy) - by * (cx * dz - cz * dx) + bz * (cx * dy - cy * dx)
        mag = (abs(bx) + abs(by) + abs(bz)) * (abs(cx) + abs(cy) + abs(cz)) * (
            abs(dx) + abs(dy) + abs(dz))
        return det < -1e-13 * mag

    @numba.njit(cache=True, inline="always")
    def relink(nbr, t, old, new):
        if t >= 0:
            for j in range(3):
                if nbr[t, j] == old:
                    nbr[t, j] = new
                    return

    @numba.njit(cache=True)
    def flips(Y, z, simp, nbr, stack, st, max_flips, strict):
        """Pop edges (t·3 + k, opposite simp[t, k]) off `stack` and flip the non-regular ones,
        pushing the edges they create; st = [top, flips]. A non-regular edge whose quad is
        reflex cannot be flipped: with `strict` (heights changed) a site would have to leave and
        −1 is returned; else (a site inserted) it is left to later flips (Edelsbrunner–Shah).
        Returns 0, or −1 (also when the flips run out or the adjacency is broken)."""
        top, count = st[0], st[1]
        status = 0
        while top > 0:
            top -= 1
            if top + 4 > stack.shape[0]:
                status = -1
                break
            t = stack[top] // 3
            k = stack[top] % 3
            nb = nbr[t, k]
            if nb < 0:
                continue
            a = simp[t, k]
            b = simp[t, (k + 1) % 3]
            c = simp[t, (k + 2) % 3]
            k2 = -1
            for j in range(3):
                if nbr[nb, j] == t:
                    k2 = j
            if k2 < 0:
                status = -1
                break
            dd = simp[nb, k2]
            if not _f2_below(Y, z, a, b, c, dd):  # the edge bc is regular
                continue
            bx, by = Y[b, 0] - Y[a, 0], Y[b, 1] - Y[a, 1]
            cx, cy = Y[c, 0] - Y[a, 0], Y[c, 1] - Y[a, 1]
            dx, dy = Y[dd, 0] - Y[a, 0], Y[dd, 1] - Y[a, 1]
            if bx * dy - by * dx <= 0 or dx * cy - dy * cx <= 0:  # a reflex quad
                if not strict:
                    continue
                status = -1
                break
            n_ca = nbr[t, (k + 1) % 3]
            n_ab = nbr[t, (k + 2) % 3]
            n_bd = nbr[nb, (k2 + 1) % 3]
            n_dc = nbr[nb, (k2 + 2) % 3]
            simp[t, 0], simp[t, 1], simp[t, 2] = a, b, dd
            nbr[t, 0], nbr[t, 1], nbr[t, 2] = n_bd, nb, n_ab
            simp[nb, 0], simp[nb, 1], simp[nb, 2] = a, dd, c
            nbr[nb, 0], nbr[nb, 1], nbr[nb, 2] = n_dc, n_ca, t
            _f2_relink(nbr, n_bd, nb, t)
            _f2_relink(nbr, n_ca, t, nb)
            count += 1
            if count > max_flips:
                status = -1
                break
            stack[top] = t * 3 + 0
            stack[top + 1] = t * 3 + 2
            stack[top + 2] = nb * 3 + 0
            stack[top + 3] = nb * 3 + 1
            top += 4
        st[0], st[1] = top, count
        return status

    @numba.njit(cache=True)
    def repair(Y, z, simp, nbr, max_flips):
        T = simp.shape[0]
        stack = np.empty(4 * max_flips + 3 * T + 4, np.int64)
        top = 0
        for t in range(T):
            for k in range(3):
                if nbr[t, k] > t:
                    stack[top] = t * 3 + k
                    top += 1
        st = np.zeros(2, np.int64)
        st[0] = top
        if _f2_flips(Y, z, simp, nbr, stack, st, max_flips, True) < 0:
            return -1
        return st[1]

    globals().update(_f2_below=below, _f2_relink=relink, _f2_flips=flips)
    return repair




@_compiled
def _facet_kernel(numba):
    """Numba-compiled sums over the inside triangles (c_ij, v_a, v_b) of each facet (with their
    orientation signs sgn), uniform ρ:
    area and ∫ Φ for Φ = ρ (x_1 − a_1), ρ (x_1² − a_1²)/2, x_2 ρ (x_1 − a_1), x_3 ρ (x_1 − a_1)."""

    @numba.njit(cache=True)
    def facets(center, vtx, ea, eb, owner, sgn, rho0, a1, area, vals):
        for e in range(ea.shape[0]):
            p = owner[e]
            c0, c1, c2 = center[p, 0], center[p, 1], center[p, 2]
            a0, a1_, a2 = vtx[ea[e], 0], vtx[ea[e], 1], vtx[ea[e], 2]
            b0, b1, b2 = vtx[eb[e], 0], vtx[eb[e], 1], vtx[eb[e], 2]
            u0, u1, u2 = a0 - c0, a1_ - c1, a2 - c2
            w0, w1, w2 = b0 - c0, b1 - c1, b2 - c2
            x = u1 * w2 - u2 * w1
            y = u2 * w0 - u0 * w2
            z = u0 * w1 - u1 * w0
            ar = 0.5 * np.sqrt(x * x + y * y + z * z) * sgn[e]
            area[p] += ar
            s0 = s1 = s2 = s3 = 0.0
            for q in range(3):  # edge midpoints: exact for quadratics
                if q == 0:
                    m0, m1, m2 = (c0 + a0) / 2, (c1 + a1_) / 2, (c2 + a2) / 2
                elif q == 1:
                    m0, m1, m2 = (a0 + b0) / 2, (a1_ + b1) / 2, (a2 + b2) / 2
                else:
                    m0, m1, m2 = (b0 + c0) / 2, (b1 + c1) / 2, (b2 + c2) / 2
                t = rho0 * (m0 - a1)
                s0 += t
                s1 += rho0 * (m0 * m0 - a1 * a1) / 2
                s2 += m1 * t
                s3 += m2 * t
            vals[p, 0] += ar * s0 / 3
            vals[p, 1] += ar * s1 / 3
            vals[p, 2] += ar * s2 / 3
            vals[p, 3] += ar * s3 / 3

    return facets




@_compiled
def _clip_kernel(numba):
    """Numba-compiled Sutherland–Hodgman of triangles by all the planes ⟨A_k, x⟩ ≤ b_k (in place
    on polys (K, 3 + m, 3); returns the vertex counts), or None without numba."""

    @numba.njit(cache=True)
    def clip(polys, A, b):
        K, M = polys.shape[0], polys.shape[1]
        cnt = np.full(K, 3, np.int64)
        buf = np.empty((M + 1, 3))
        for e in range(K):
            c = 3
            for k in range(A.shape[0]):
                if c == 0:
                    break
                o = 0
                for i in range(c):
                    j = i + 1 if i + 1 < c else 0
                    ds = polys[e, i, 0] * A[k, 0] + polys[e, i, 1] * A[k, 1] + polys[e, i, 2] * A[k, 2] - b[k]
                    dq = polys[e, j, 0] * A[k, 0] + polys[e, j, 1] * A[k, 1] + polys[e, j, 2] * A[k, 2] - b[k]
                    if ds <= 0:
                        buf[o, 0], buf[o, 1], buf[o, 2] = polys[e, i, 0], polys[e, i, 1], polys[e, i, 2]
                        o += 1
                    if (ds <= 0) != (dq <= 0):
                        t = ds / (ds - dq)
                        for q in range(3):
                            buf[o, q] = polys[e, i, q] + t * (polys[e, j, q] - polys[e, i, q])
                        o += 1
                c = min(o, M)
                for i in range(c):
                    polys[e, i, 0], polys[e, i, 1], polys[e, i, 2] = buf[i, 0], buf[i, 1], buf[i, 2]
            cnt[e] = c
        return cnt

    return clip




@_compiled
def _ring_kernel(numba):
    """Numba-compiled facets of a 3-D power diagram, uniform ρ: for each edge ij of the regular
    triangulation between real sites, the power vertices of the tetrahedra around it (in cyclic
    order) form F_ij; it is clipped to D and integrated (area, ∫Φ for the mass and the moments,
    fan from its vertex mean, edge-midpoint rule). None without numba."""

    @numba.njit(cache=True)
    def rings(simp, nbr, vtx, Y, inside, n, A, b, tol, rho0, a1, pairs, area, vals, touch):
        T = simp.shape[0]
        m = A.shape[0]
        R = 96
        ring = np.empty(R, np.int64)
        pa = np.empty((R + m + 1, 3))
        pb = np.empty((R + m + 1, 3))
        done = np.zeros((T, 4, 4), np.bool_)  # local edge (u, w) of a tetrahedron already done
        P = 0
        for t in range(T):
            for u in range(3):
                for w in range(u + 1, 4):
                    i, j = simp[t, u], simp[t, w]
                    if i >= n or j >= n or i < 0 or j < 0 or done[t, u, w]:
                        continue
                    # the other two vertices: cross the face (i, j, q) opposite p
                    p, q = -1, -1
                    for s in range(4):
                        if s != u and s != w:
                            if p < 0:
                                p = s
                            else:
                                q = s
                    cur, ap, aq = t, simp[t, p], simp[t, q]
                    L = 0
                    # orientation of the ring about y_j − y_i from its best-shaped tetrahedron:
                    # the sense in which the link vertices (ap → aq) turn (independent of h)
                    e0, e1, e2 = Y[j, 0] - Y[i, 0], Y[j, 1] - Y[i, 1], Y[j, 2] - Y[i, 2]
                    best = 0.0
                    while True:
                        if L >= R:
                            return -1
                        ring[L] = cur
                        L += 1
                        p0_, p1_, p2_ = Y[ap, 0] - Y[i, 0], Y[ap, 1] - Y[i, 1], Y[ap, 2] - Y[i, 2]
                        q0_, q1_, q2_ = Y[aq, 0] - Y[i, 0], Y[aq, 1] - Y[i, 1], Y[aq, 2] - Y[i, 2]
                        det = (e0 * (p1_ * q2_ - p2_ * q1_) - e1 * (p0_ * q2_ - p2_ * q0_)
                               + e2 * (p0_ * q1_ - p1_ * q0_))
                        if abs(det) > abs(best):
                            best = det
                        kk = -1
                        for s in range(4):
                            if simp[cur, s] == ap:
                                kk = s
                        nxt = nbr[cur, kk] if kk >= 0 else -1
                        if nxt < 0:
                            return -1
                        if nxt == t:
                            break
                        c, ui, wj = -1, -1, -1
                        for s in range(4):
                            v = simp[nxt, s]
                            if v == i:
                                ui = s
                            elif v == j:
                                wj = s
                            elif v != aq:
                                c = v
                        done[nxt, min(ui, wj), max(ui, wj)] = True
                        cur, ap, aq = nxt, aq, c
                    # clip the polygon of power vertices by the planes of D (unless deep inside)
                    cnt = L
                    deep = True
                    for s in range(L):
                        pa[s, 0], pa[s, 1], pa[s, 2] = vtx[ring[s], 0], vtx[ring[s], 1], vtx[ring[s], 2]
                        deep = deep and inside[ring[s]]
                    for k in range(m):
                        if cnt == 0 or deep:
                            break
                        o = 0
                        for s in range(cnt):
                            s2 = s + 1 if s + 1 < cnt else 0
                            ds = pa[s, 0] * A[k, 0] + pa[s, 1] * A[k, 1] + pa[s, 2] * A[k, 2] - b[k]
                            dq = pa[s2, 0] * A[k, 0] + pa[s2, 1] * A[k, 1] + pa[s2, 2] * A[k, 2] - b[k]
                            if ds <= 0:
                                pb[o, 0], pb[o, 1], pb[o, 2] = pa[s, 0], pa[s, 1], pa[s, 2]
                                o += 1
                            if (ds <= 0) != (dq <= 0):
                                f = ds / (ds - dq)
                                for r in range(3):
                                    pb[o, r] = pa[s, r] + f * (pa[s2, r] - pa[s, r])
                                o += 1
                        cnt = o
                        for s in range(cnt):
                            pa[s, 0], pa[s, 1], pa[s, 2] = pb[s, 0], pb[s, 1], pb[s, 2]
                    pairs[P, 0], pairs[P, 1] = min(i, j), max(i, j)
                    area[P] = 0.0
                    for r in range(4):
                        vals[P, r] = 0.0
                    touch[P] = 0
                    # signed areas about the unit normal n̂ ∝ ±(y_j − y_i) that makes a regular
                    # ring positive: a ring with backwards edges (a triangulation regular only up
                    # to rounding, on degenerate sites) still integrates to second order
                    en = np.sqrt(e0 * e0 + e1 * e1 + e2 * e2)
                    sg = 1.0 if best >= 0 else -1.0
                    n0, n1, n2 = sg * e0 / en, sg * e1 / en, sg * e2 / en
                    if cnt >= 3:
                        c0 = c1 = c2 = 0.0
                        for s in range(cnt):
                            c0 += pa[s, 0]
                            c1 += pa[s, 1]
                            c2 += pa[s, 2]
                            for k in range(m if not deep else 0):
                                dk = pa[s, 0] * A[k, 0] + pa[s, 1] * A[k, 1] + pa[s, 2] * A[k, 2] - b[k]
                                if abs(dk) <= tol:
                                    touch[P] |= 1 << k
                        c0, c1, c2 = c0 / cnt, c1 / cnt, c2 / cnt
                        for s in range(cnt):
                            s2 = s + 1 if s + 1 < cnt else 0
                            u0, u1, u2 = pa[s, 0] - c0, pa[s, 1] - c1, pa[s, 2] - c2
                            w0, w1, w2 = pa[s2, 0] - c0, pa[s2, 1] - c1, pa[s2, 2] - c2
                            x = u1 * w2 - u2 * w1
                            yy = u2 * w0 - u0 * w2
                            z = u0 * w1 - u1 * w0
                            ar = 0.5 * (x * n0 + yy * n1 + z * n2)
                            area[P] += ar
                            s0 = s1 = sv2 = s3 = 0.0
                            for e in range(3):  # edge midpoints: exact for quadratics
                                if e == 0:
                                    m0, m1, m2 = c0 + pa[s, 0], c1 + pa[s, 1], c2 + pa[s, 2]
                                elif e == 1:
                                    m0, m1 = pa[s, 0] + pa[s2, 0], pa[s, 1] + pa[s2, 1]
                                    m2 = pa[s, 2] + pa[s2, 2]
                                else:
                                    m0, m1, m2 = pa[s2, 0] + c0, pa[s2, 1] + c1, pa[s2, 2] + c2
                                m0, m1, m2 = m0 / 2, m1 / 2, m2 / 2
                                tt = rho0 * (m0 - a1)
                                s0 += tt
                                s1 += rho0 * (m0 * m0 - a1 * a1) / 2
                                sv2 += m1 * tt
                                s3 += m2 * tt
                            vals[P, 0] += ar * s0 / 3
                            vals[P, 1] += ar * s1 / 3
                            vals[P, 2] += ar * sv2 / 3
                            vals[P, 3] += ar * s3 / 3
                    P += 1
                    if P >= pairs.shape[0]:
                        return -1
        return P

    return rings


def _facets_uniform(tri: Triangulation, n: int, poly: Polytope, rho0: float, a1: float):
    """(pairs (P, 2), areas (P,), ∫Φ (P, 4), bitmask of the faces of D each clipped facet
    touches (P,)) from the rings of tetrahedra around the edges; None if unavailable."""
    kernel = _ring_kernel()
    if kernel is None or len(poly.b) > 62:  # the faces touched are kept as bits of an int64
        return None
    simp, nbr = tri.simplices, tri.neighbors
    cap = len(tri.Y) + len(simp) + int((nbr < 0).sum()) + 16  # Euler: edges ≤ V + T + hull faces
    pairs = np.empty((cap, 2), np.int64)
    area, vals, touch = np.empty(cap), np.empty((cap, 4)), np.empty(cap, np.int64)
    tol = 1e-9 * (1.0 + np.abs(poly.b).max())
    inside = np.all(tri.vertices @ poly.A.T < poly.b - 2 * tol, axis=1)
    P = kernel(simp, nbr, tri.vertices, tri.Y, inside, n, np.ascontiguousarray(poly.A),
               np.ascontiguousarray(poly.b, dtype=float), tol, rho0, a1, pairs, area, vals, touch)
    if P < 0:
        return None
    return pairs[:P], area[:P], vals[:P], touch[:P]


# the kernel's compiled helpers (set by _flip3_kernel)
_f3_det3 = _f3_orient = _f3_below = _f3_pos = _f3_relink = _f3_distinct = None
_f3_flips = _f3_compact = None


@_compiled
def _flip3_kernel(numba):
    """Numba-compiled 2-3 and 3-2 flips for a 3-D regular triangulation (None without numba)."""

    @numba.njit(cache=True, inline="always")
    def det3(u0, u1, u2, v0, v1, v2, w0, w1, w2):
        return u0 * (v1 * w2 - v2 * w1) - u1 * (v0 * w2 - v2 * w0) + u2 * (v0 * w1 - v1 * w0)

    @numba.njit(cache=True)
    def orient(Y, a, b, c, d):
        """Sign (−1, 0, 1) of det[b − a, c − a, d − a] with a relative tolerance."""
        u0, u1, u2 = Y[b, 0] - Y[a, 0], Y[b, 1] - Y[a, 1], Y[b, 2] - Y[a, 2]
        v0, v1, v2 = Y[c, 0] - Y[a, 0], Y[c, 1] - Y[a, 1], Y[c, 2] - Y[a, 2]
        w0, w1, w2 = Y[d, 0] - Y[a, 0], Y[d, 1] - Y[a, 1], Y[d, 2] - Y[a, 2]
        det = _f3_det3(u0, u1, u2, v0, v1, v2, w0, w1, w2)
        mag = (abs(u0) + abs(u1) + abs(u2)) * (abs(v0) + abs(v1) + abs(v2)) * (
            abs(w0) + abs(w1) + abs(w2))
        if det > 1e-13 * mag:
            return 1
        if det < -1e-13 * mag:
            return -1
        return 0

    @numba.njit(cache=True)
    def below(Y, z, a, b, c, d, e):
        """Lifted e lies below the hyperplane through lifted a, b, c, d (face abc not regular)."""
        B = (Y[b, 0] - Y[a, 0], Y[b, 1] - Y[a, 1], Y[b, 2] - Y[a, 2], z[b] - z[a])
        C = (Y[c, 0] - Y[a, 0], Y[c, 1] - Y[a, 1], Y[c, 2] - Y[a, 2], z[c] - z[a])
        D = (Y[d, 0] - Y[a, 0], Y[d, 1] - Y[a, 1], Y[d, 2] - Y[a, 2], z[d] - z[a])
        E = (Y[e, 0] - Y[a, 0], Y[e, 1] - Y[a, 1], Y[e, 2] - Y[a, 2], z[e] - z[a])
        d_bcd = _f3_det3(B[0], B[1], B[2], C[0], C[1], C[2], D[0], D[1], D[2])
        det4 = (-B[3] * _f3_det3(C[0], C[1], C[2], D[0], D[1], D[2], E[0], E[1], E[2])
                + C[3] * _f3_det3(B[0], B[1], B[2], D[0], D[1], D[2], E[0], E[1], E[2])
                - D[3] * _f3_det3(B[0], B[1], B[2], C[0], C[1], C[2], E[0], E[1], E[2])
                + E[3] * d_bcd)
        mag = 1.0
        for v in (B, C, D, E):
            mag *= abs(v[0]) + abs(v[1]) + abs(v[2]) + abs(v[3])
        if d_bcd < 0:
            det4 = -det4
        return det4 < -1e-12 * mag

    @numba.njit(cache=True, inline="always")
    def pos(simp, t, v):
        for j in range(4):
            if simp[t, j] == v:
                return j
        return -1

    @numba.njit(cache=True, inline="always")
    def relink(nbr, t, old, new):
        if t >= 0:
            for j in range(4):
                if nbr[t, j] == old:
                    nbr[t, j] = new
                    return

    @numba.njit(cache=True)
    def distinct(v):
        for p in range(len(v)):
            for q in range(p + 1, len(v)):
                if v[p] >= 0 and v[p] == v[q]:
                    return False
        return True

    @numba.njit(cache=True)
    def flips(Y, z, simp, nbr, stack, free, st, max_flips):
        """Pop faces (t·4 + k) off `stack` and flip the non-regular ones (2-3, or 3-2 around a
        reflex edge with three tetrahedra), pushing the faces they create. st = [top, free rows,
        rows used, flips, skipped]: faces that cannot be flipped now are skipped and counted.
        Returns 0, or −1 when out of rows or flips, or the adjacency is broken."""
        cap = simp.shape[0]
        top, nfree, used, count, stuck = st[0], st[1], st[2], st[3], st[4]
        status = 0
        while top > 0:
            top -= 1
            if top + 6 > stack.shape[0]:
                status = -1
                break
            t = stack[top] // 4
            k = stack[top] % 4
            nb = nbr[t, k]
            if nb < 0 or simp[t, 0] < 0:
                continue
            k2 = _f3_pos(nbr, nb, t)
            if k2 < 0:
                status = -1
                break
            d = simp[t, k]
            e = simp[nb, k2]
            a = simp[t, (k + 1) % 4]
            b = simp[t, (k + 2) % 4]
            c = simp[t, (k + 3) % 4]
            if not _f3_below(Y, z, a, b, c, d, e):
                continue
            s_ab = _f3_orient(Y, a, b, d, e)
            s_bc = _f3_orient(Y, b, c, d, e)
            s_ca = _f3_orient(Y, c, a, d, e)
            if s_ab != 0 and s_ab == s_bc and s_bc == s_ca:  # de crosses abc: 2-3 flip
                n1a, n1b = nbr[t, _f3_pos(simp, t, a)], nbr[t, _f3_pos(simp, t, b)]
                n1c = nbr[t, _f3_pos(simp, t, c)]
                n2a, n2b = nbr[nb, _f3_pos(simp, nb, a)], nbr[nb, _f3_pos(simp, nb, b)]
                n2c = nbr[nb, _f3_pos(simp, nb, c)]
                if not _f3_distinct(np.array([n1a, n1b, n1c, n2a, n2b, n2c])):
                    stuck += 1
                    continue
                if nfree > 0:
                    nfree -= 1
                    t3 = free[nfree]
                else:
                    if used >= cap:
                        status = -1
                        break
                    t3 = used
                    used += 1
                t1, t2 = t, nb
                simp[t1, 0], simp[t1, 1], simp[t1, 2], simp[t1, 3] = a, b, d, e
                nbr[t1, 0], nbr[t1, 1], nbr[t1, 2], nbr[t1, 3] = t2, t3, n2c, n1c
                simp[t2, 0], simp[t2, 1], simp[t2, 2], simp[t2, 3] = b, c, d, e
                nbr[t2, 0], nbr[t2, 1], nbr[t2, 2], nbr[t2, 3] = t3, t1, n2a, n1a
                simp[t3, 0], simp[t3, 1], simp[t3, 2], simp[t3, 3] = c, a, d, e
                nbr[t3, 0], nbr[t3, 1], nbr[t3, 2], nbr[t3, 3] = t1, t2, n2b, n1b
                _f3_relink(nbr, n2c, nb, t1)
                _f3_relink(nbr, n1a, t, t2)
                _f3_relink(nbr, n1b, t, t3)
                _f3_relink(nbr, n2b, nb, t3)
                for q in (t1, t2, t3):
                    stack[top] = q * 4 + 2
                    stack[top + 1] = q * 4 + 3
                    top += 2
            else:  # a reflex edge: 3-2 flip when exactly three tetrahedra surround it
                if s_ab == 0 or s_bc == 0 or s_ca == 0:
                    stuck += 1
                    continue
                if s_bc == s_ca:
                    pass  # reflex edge ab, apex c
                elif s_ab == s_ca:
                    a, b, c = b, c, a
                else:
                    a, b, c = c, a, b
                t3 = nbr[t, _f3_pos(simp, t, c)]
                if (t3 < 0 or t3 != nbr[nb, _f3_pos(simp, nb, c)]
                        or _f3_orient(Y, c, d, e, a) * _f3_orient(Y, c, d, e, b) >= 0):
                    stuck += 1
                    continue
                n1a, n1b = nbr[t, _f3_pos(simp, t, a)], nbr[t, _f3_pos(simp, t, b)]
                n2a, n2b = nbr[nb, _f3_pos(simp, nb, a)], nbr[nb, _f3_pos(simp, nb, b)]
                n3a, n3b = nbr[t3, _f3_pos(simp, t3, a)], nbr[t3, _f3_pos(simp, t3, b)]
                if not _f3_distinct(np.array([n1a, n1b, n2a, n2b, n3a, n3b])):
                    stuck += 1
                    continue
                s1, s2 = t, nb
                simp[s1, 0], simp[s1, 1], simp[s1, 2], simp[s1, 3] = a, c, d, e
                nbr[s1, 0], nbr[s1, 1], nbr[s1, 2], nbr[s1, 3] = s2, n3b, n2b, n1b
                simp[s2, 0], simp[s2, 1], simp[s2, 2], simp[s2, 3] = b, c, d, e
                nbr[s2, 0], nbr[s2, 1], nbr[s2, 2], nbr[s2, 3] = s1, n3a, n2a, n1a
                _f3_relink(nbr, n3b, t3, s1)
                _f3_relink(nbr, n2b, nb, s1)
                _f3_relink(nbr, n3a, t3, s2)
                _f3_relink(nbr, n1a, t, s2)
                simp[t3, 0] = -1
                for j in range(4):
                    nbr[t3, j] = -1
                free[nfree] = t3
                nfree += 1
                for q in (s1, s2):
                    stack[top] = q * 4 + 1
                    stack[top + 1] = q * 4 + 2
                    stack[top + 2] = q * 4 + 3
                    top += 3
            count += 1
            if count >= max_flips:
                status = -1
                break
        st[0], st[1], st[2], st[3], st[4] = top, nfree, used, count, stuck
        return status

    @numba.njit(cache=True)
    def compact(simp, nbr, used):
        """Move the last live rows into the rows freed by 3-2 flips (relinking their
        neighbours); returns the number of live rows, which then come first."""
        live = 0
        for t in range(used):
            if simp[t, 0] >= 0:
                live += 1
        lo, hi = 0, used - 1
        while True:
            while lo < used and simp[lo, 0] >= 0:
                lo += 1
            while hi >= 0 and simp[hi, 0] < 0:
                hi -= 1
            if lo >= hi:
                return live
            for j in range(4):
                simp[lo, j], nbr[lo, j] = simp[hi, j], nbr[hi, j]
                _f3_relink(nbr, nbr[hi, j], hi, lo)
            simp[hi, 0] = -1
            lo += 1
            hi -= 1

    @numba.njit(cache=True)
    def repair(Y, z, simp, nbr, T, max_flips):
        """Flip until every interior face is regular; simp/nbr have room for T + max_flips rows.
        Returns (flips, live rows, compacted to the front) or (−1, 0) when stuck (a 4-4 or 4-1
        flip would be needed)."""
        cap = simp.shape[0]
        stack = np.empty(4 * cap + 6 * max_flips + 8, np.int64)
        free = np.empty(max_flips + 1, np.int64)
        st = np.zeros(5, np.int64)  # top, free rows, rows used, flips, skipped
        st[2] = T
        top = 0
        for t in range(T):
            for k in range(4):
                if nbr[t, k] > t:
                    stack[top] = t * 4 + k
                    top += 1
        st[0] = top
        last = -1
        while True:
            st[4] = 0
            if _f3_flips(Y, z, simp, nbr, stack, free, st, max_flips) < 0:
                return -1, 0
            if st[4] == 0:
                return st[3], _f3_compact(simp, nbr, st[2])
            if st[3] == last:  # a whole round without a flip: a 4-4 or 4-1 flip is needed
                return -1, 0
            last = st[3]
            top = 0
            for t in range(st[2]):  # faces skipped while stuck: push those still not regular
                if simp[t, 0] < 0:
                    continue
                for k in range(4):
                    nb = nbr[t, k]
                    if nb > t:
                        k2 = _f3_pos(nbr, nb, t)
                        if _f3_below(Y, z, simp[t, (k + 1) % 4], simp[t, (k + 2) % 4],
                                     simp[t, (k + 3) % 4], simp[t, k], simp[nb, k2]):
                            stack[top] = t * 4 + k
                            top += 1
            if top == 0:
                return st[3], _f3_compact(simp, nbr, st[2])
            st[0] = top

    # the helpers are module globals, not closure cells: numba cannot cache a kernel whose
    # closure holds dispatchers (it would recompile in every process)
    globals().update({f"_f3_{f.__name__}": f for f in (det3, orient, below, pos, relink, distinct,
                                                       flips, compact)})
    return repair


def _flip_repair_3d(Y, H, simp, nbr):
    """3-D counterpart of `_flip_repair` (2-3 and 3-2 flips); None when stuck."""
    kernel = _flip3_kernel()
    if kernel is None:
        return None
    T = len(simp)
    extra = max(1024, T // 2)
    s = np.empty((T + extra, 4), np.int64)  # rows ≥ T are written before they are read
    nb = np.empty((T + extra, 4), np.int64)
    s[:T], nb[:T] = simp, nbr
    flips, live = kernel(Y, -H, s, nb, T, extra)
    if flips < 0:
        return None
    if flips == 0:
        return simp, nbr, 0
    return s[:live], nb[:live], flips


def _flip_repair(Y, H, simp, nbr):
    """Flip the non-regular edges of a 2-D triangulation: (simplices, neighbours, number of
    flips), or None when a site would have to leave (or numba is missing)."""
    kernel = _flip_kernel()
    if kernel is None:
        return None
    s, nb = simp.copy(), nbr.copy()
    flips = kernel(Y, -H, s, nb, 4 * len(s))
    return (s, nb, flips) if flips >= 0 else None


# -------------------------------------------------------------- fresh triangulations by insertion

INSERT_MIN = 4000  # from this many sites a fresh triangulation is built by insertion, not qhull


def _adjacency(simp: np.ndarray) -> np.ndarray:
    """Neighbours (T, d+1) of a few simplices: the simplex opposite each vertex, or −1."""
    T, k = simp.shape
    nbr = np.full((T, k), -1, np.int64)
    for t, u in itertools.permutations(range(T), 2):
        shared = np.isin(simp[t], simp[u])
        if shared.sum() == k - 1:
            nbr[t, np.flatnonzero(~shared)[0]] = u
    return nbr


def _box_simplices(n: int, d: int) -> np.ndarray:
    """A triangulation of the 2^d dummy corners n + Σ_a b_a 2^(d−1−a) (Kuhn's: one simplex per
    order of the axes along the main diagonal); counter-clockwise in 2-D."""
    if d == 2:  # Kuhn's two triangles, both counter-clockwise
        return np.array([[n, n + 2, n + 3], [n, n + 3, n + 1]], np.int64)
    rows = []
    for perm in itertools.permutations(range(d)):
        bits, row = [0] * d, [0]
        for a in perm:
            bits[a] = 1
            row.append(sum(b << (d - 1 - i) for i, b in enumerate(bits)))
        rows.append(row)
    return n + np.array(rows, np.int64)


@_compiled
def _insert2_kernel(numba):
    """Numba-compiled incremental insertion with Lawson flips, 2-D (None without numba)."""
    if _flip_kernel() is None:  # pragma: no cover
        return None

    @numba.njit(cache=True)
    def insert(Y, z, order, simp, nbr, T0, max_flips):
        """Insert the sites `order` one by one into the triangulation simp[:T0] of the dummy
        corners: walk to the triangle holding p, split it in three, flip its non-regular link
        edges. Returns rows used, or −1 (p on an edge, p hidden, or a flip failed)."""
        stack = np.empty(1 << 16, np.int64)
        st = np.zeros(2, np.int64)  # top, flips
        used, t, r = T0, 0, 12345
        for p in order:
            steps = 0
            while True:  # visibility walk from the last triangle, faces in a random order
                steps += 1
                if steps > used:
                    return -1
                r = (r * 1103515245 + 12345) & 0x7FFFFFFF
                moved, edge = False, 0
                for i in range(3):
                    k = (r + i) % 3
                    b, c = simp[t, (k + 1) % 3], simp[t, (k + 2) % 3]
                    ux, uy = Y[c, 0] - Y[b, 0], Y[c, 1] - Y[b, 1]
                    vx, vy = Y[p, 0] - Y[b, 0], Y[p, 1] - Y[b, 1]
                    cross = ux * vy - uy * vx
                    if abs(cross) <= 1e-13 * (abs(ux) + abs(uy)) * (abs(vx) + abs(vy)):
                        edge += 1
                    elif cross < 0:
                        t = nbr[t, k]
                        moved = True
                        break
                if t < 0:
                    return -1
                if not moved:
                    break
            if edge > 0:
                return -1
            a, b, c = simp[t, 0], simp[t, 1], simp[t, 2]
            if not _f2_below(Y, z, a, b, c, p):  # p would be hidden
                return -1
            n0, n1, n2 = nbr[t, 0], nbr[t, 1], nbr[t, 2]
            r1, r2 = used, used + 1
            used += 2
            simp[t, 0] = p
            simp[r1, 0], simp[r1, 1], simp[r1, 2] = a, p, c
            simp[r2, 0], simp[r2, 1], simp[r2, 2] = a, b, p
            nbr[t, 0], nbr[t, 1], nbr[t, 2] = n0, r1, r2
            nbr[r1, 0], nbr[r1, 1], nbr[r1, 2] = t, n1, r2
            nbr[r2, 0], nbr[r2, 1], nbr[r2, 2] = t, r1, n2
            _f2_relink(nbr, n1, t, r1)
            _f2_relink(nbr, n2, t, r2)
            stack[0], stack[1], stack[2] = t * 3, r1 * 3 + 1, r2 * 3 + 2
            st[0] = 3
            if _f2_flips(Y, z, simp, nbr, stack, st, max_flips, False) < 0:
                return -1
        return used

    return insert


@_compiled
def _insert3_kernel(numba):
    """Numba-compiled incremental insertion with 2-3 / 3-2 flips, 3-D (None without numba)."""
    if _flip3_kernel() is None:  # pragma: no cover
        return None

    @numba.njit(cache=True)
    def insert(Y, z, order, simp, nbr, T0, max_flips):
        """3-D counterpart of the 2-D kernel (split in four; a face that cannot be flipped yet
        is left to the flips of its neighbours, as in Edelsbrunner–Shah). Returns the number of
        rows, compacted to the front, or −1."""
        cap = simp.shape[0]
        stack = np.empty(1 << 16, np.int64)
        free = np.empty(cap, np.int64)
        st = np.zeros(5, np.int64)  # top, free rows, rows used, flips, skipped
        st[2] = T0
        t, r = 0, 12345
        R = np.empty(4, np.int64)
        for p in order:
            steps = 0
            while True:
                steps += 1
                if steps > st[2]:
                    return -1
                r = (r * 1103515245 + 12345) & 0x7FFFFFFF
                moved, face = False, 0
                for i in range(4):
                    k = (r + i) % 4
                    a, b, c = simp[t, (k + 1) % 4], simp[t, (k + 2) % 4], simp[t, (k + 3) % 4]
                    s_p = _f3_orient(Y, a, b, c, p)
                    if s_p == 0:
                        face += 1
                    elif s_p != _f3_orient(Y, a, b, c, simp[t, k]):
                        t = nbr[t, k]
                        moved = True
                        break
                if t < 0:
                    return -1
                if not moved:
                    break
            v = simp[t].copy()
            if face > 0 or not _f3_below(Y, z, v[0], v[1], v[2], v[3], p):
                return -1  # p on a face or edge, or hidden
            nb = nbr[t].copy()
            R[0] = t
            for k in range(1, 4):
                if st[1] > 0:
                    st[1] -= 1
                    R[k] = free[st[1]]
                elif st[2] < cap:
                    R[k] = st[2]
                    st[2] += 1
                else:
                    return -1
            for k in range(4):
                for j in range(4):
                    simp[R[k], j] = p if j == k else v[j]
                    nbr[R[k], j] = nb[k] if j == k else R[j]
                if k > 0:
                    _f3_relink(nbr, nb[k], t, R[k])
                stack[k] = R[k] * 4 + k
            st[0] = 4
            if _f3_flips(Y, z, simp, nbr, stack, free, st, max_flips) < 0:
                return -1
            while simp[t, 0] < 0:  # the walk restarts from a live tetrahedron
                t = (t + 1) % st[2]
        return _f3_compact(simp, nbr, st[2])

    return insert


def _inserted_triangulation(Y: np.ndarray, H: np.ndarray, n: int) -> tuple | None:
    """(simplices, neighbours) of the regular triangulation of (Y, H) — n sites then 2^d dummy
    corners — by incremental insertion in spatial order, or None (numba missing, a degenerate
    or hidden site, stuck flips: qhull takes over). Sites hidden at the end are hidden when they
    are inserted (fewer sites hide less), so the insertion never has to remove one."""
    d = Y.shape[1]
    kernel = (_insert2_kernel if d == 2 else _insert3_kernel)()
    if kernel is None:
        return None
    z = -H
    simp0 = _box_simplices(n, d)
    start = (_flip_repair if d == 2 else _flip_repair_3d)(Y, H, simp0, _adjacency(simp0))
    if start is None:
        return None
    simp0, nbr0 = start[:2]
    cap = 2 * n + 8 if d == 2 else 8 * n + 64
    simp = np.empty((cap, d + 1), np.int64)
    nbr = np.empty((cap, d + 1), np.int64)
    simp[:len(simp0)], nbr[:len(simp0)] = simp0, nbr0
    order = spatial_order(Y[:n])
    used = kernel(Y, z, order, simp, nbr, len(simp0), 64 * n + 1024)
    if used < 0:
        return None
    simp, nbr = simp[:used], nbr[:used]
    checked = (_flip_repair if d == 2 else _flip_repair_3d)(Y, H, simp, nbr)  # every face regular
    return None if checked is None else checked[:2]


def _interior_faces(simp: np.ndarray, nbr: np.ndarray, n_real: int):
    """(d−1)-faces shared by two simplices: (face vertex ids (F, d), simplex a, simplex b)."""
    T, k = simp.shape
    t = np.repeat(np.arange(T), k)
    opp = np.tile(np.arange(k), T)
    nb = nbr.ravel()
    keep = nb > t
    t, opp, nb = t[keep], opp[keep], nb[keep]
    mask = np.ones((len(t), k), bool)
    mask[np.arange(len(t)), opp] = False
    face = simp[t][mask].reshape(len(t), k - 1)
    real = (face < n_real).sum(axis=1) >= 2
    return face[real], t[real], nb[real]


# ---------------------------------------------------------------------------------------- helpers


def _clip_segments(p0, p1, poly: Polytope):
    """Cyrus–Beck: parameters t0 ≤ t1 of p0 + t (p1 − p0) inside D, and the plane index (or −1)
    that made each end."""
    S = len(p0)
    t0, t1 = np.zeros(S), np.ones(S)
    k0, k1 = np.full(S, -1), np.full(S, -1)
    if S == 0:
        return t0, t1, k0, k1
    dvec = p1 - p0
    scale = 1.0 + np.abs(poly.b).max()
    for k in range(len(poly.b)):
        a, b = poly.A[k], poly.b[k]
        num = b - p0 @ a
        den = dvec @ a
        par = np.abs(den) <= 1e-300
        with np.errstate(divide="ignore", invalid="ignore"):
            t = num / den
        enter = (den < 0) & ~par
        leave = (den > 0) & ~par
        upd = enter & (t > t0)
        t0 = np.where(upd, t, t0)
        k0 = np.where(upd, k, k0)
        upd = leave & (t < t1)
        t1 = np.where(upd, t, t1)
        k1 = np.where(upd, k, k1)
        out = par & (num < -1e-14 * scale)
        t1 = np.where(out, -1.0, t1)
    return t0, t1, k0, k1


def _argmax_sites(x: np.ndarray, y: np.ndarray, h: np.ndarray, cand: np.ndarray | None = None):
    """argmax_i ⟨x, y_i⟩ + h_i over `cand` (all sites when None), chunked."""
    ids = np.arange(len(y)) if cand is None else cand
    out = np.empty(len(x), np.int64)
    step = max(1, (1 << 24) // max(len(ids), 1))
    for a in range(0, len(x), step):
        s = x[a:a + step] @ y[ids].T + h[ids]
        out[a:a + step] = ids[np.argmax(s, axis=1)]
    return out


def _simpson(f0, fm, f1, length):
    """Simpson's rule on segments (exact for cubics): values (S, K) at both ends and the middle."""
    return length[:, None] * (f0 + 4 * fm + f1) / 6


def _quad_basis(s: np.ndarray) -> np.ndarray:
    """[1, s1, s2, s1², s1 s2, s2²] at points s (..., 2)."""
    s1, s2 = s[..., 0], s[..., 1]
    return np.stack([np.ones_like(s1), s1, s2, s1 * s1, s1 * s2, s2 * s2], axis=-1)


def _quad_antiderivative(s: np.ndarray, a1: float) -> np.ndarray:
    """∫_{a1}^{s1} basis(t, s2) dt for the quadratic basis, shape (..., 6)."""
    s1, s2 = s[..., 0], s[..., 1]

    def G(t):
        return np.stack([t, t * t / 2, t * s2, t**3 / 3, t * t * s2 / 2, t * s2 * s2], axis=-1)

    return G(s1) - G(np.full_like(s1, a1))


def _split_at_grid(p0, p1, low, cell, shape):
    """Split segments at the grid lines: (segment id, t_a, t_b) of the pieces, ordered."""
    S = len(p0)
    d = p1 - p0
    ids = [np.arange(S), np.arange(S)]
    ts = [np.zeros(S), np.ones(S)]
    for k in range(p0.shape[1]):
        lo = (np.minimum(p0[:, k], p1[:, k]) - low[k]) / cell[k]
        hi = (np.maximum(p0[:, k], p1[:, k]) - low[k]) / cell[k]
        g0 = np.maximum(np.floor(lo).astype(np.int64) + 1, 1)
        g1 = np.minimum(np.ceil(hi).astype(np.int64) - 1, shape[k] - 1)
        cnt = np.where(np.abs(d[:, k]) > 0, np.maximum(g1 - g0 + 1, 0), 0)
        tot = int(cnt.sum())
        if tot == 0:
            continue
        rep = np.repeat(np.arange(S), cnt)
        off = np.arange(tot) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        g = g0[rep] + off
        ids.append(rep)
        ts.append((low[k] + g * cell[k] - p0[rep, k]) / d[rep, k])
    ids = np.concatenate(ids)
    ts = np.clip(np.concatenate(ts), 0.0, 1.0)
    order = np.lexsort((ts, ids))
    ids, ts = ids[order], ts[order]
    same = ids[1:] == ids[:-1]
    return ids[:-1][same], ts[:-1][same], ts[1:][same]


# ---------------------------------------------------------------------------------------- 2-D


@dataclass
class _Segments:
    """Oriented pieces of ∂W_i: flux sign +1 to `i`, −1 to `j` (j = −1 for pieces of ∂D)."""

    i: np.ndarray
    j: np.ndarray
    p0: np.ndarray
    p1: np.ndarray
    n1: np.ndarray  # x_1 component of the outer normal of W_i on the piece
    sign: np.ndarray | None = None  # −1 on facets whose power edge runs backwards (see below)


def _edge_signs_2d(Y, simp, face, tb, v0, v1):
    """+1 where the power edge v0 → v1 dual to the face (i, j) runs towards the apex of tb (the
    triangulation is regular there), −1 where it runs backwards (the face is not regular: up to
    rounding on degenerate sites, e.g. co-circular grid points). Integrating backwards edges
    with the negative sign keeps the cell integrals exact to second order in the violation."""
    apex = simp[tb].sum(axis=1) - face.sum(axis=1)
    e = Y[face[:, 1]] - Y[face[:, 0]]
    a = Y[apex] - Y[face[:, 0]]
    dv = v1 - v0
    # dv is normal to e; its sign along the normal of e pointing towards the apex
    side = (e[:, 0] * a[:, 1] - e[:, 1] * a[:, 0]) * (e[:, 0] * dv[:, 1] - e[:, 1] * dv[:, 0])
    return np.where(side < 0, -1.0, 1.0)


def _segments_2d(y, h, poly: Polytope, tri: Triangulation):
    """Clipped facets and the owned pieces of ∂D (edges with n_1 ≠ 0 only)."""
    n = len(y)
    vtx = tri.vertices
    face, ta, tb = _interior_faces(tri.simplices, tri.neighbors, n)
    real = (face < n).all(axis=1)
    face, ta, tb = face[real], ta[real], tb[real]
    i, j = face[:, 0], face[:, 1]
    p0, p1 = vtx[ta], vtx[tb]
    sgn = _edge_signs_2d(tri.Y, tri.simplices, face, tb, p0, p1)
    t0, t1, k0, k1 = _clip_segments(p0, p1, poly)
    keep = t1 > t0
    i, j, p0, p1, t0, t1, k0, k1, sgn = (a[keep] for a in (i, j, p0, p1, t0, t1, k0, k1, sgn))
    dv = p1 - p0
    q0, q1 = p0 + t0[:, None] * dv, p0 + t1[:, None] * dv
    nij = y[j] - y[i]
    nij /= np.linalg.norm(nij, axis=1, keepdims=True)
    facets = _Segments(i, j, q0, q1, nij[:, 0], sgn)
    return facets, _boundary_2d(y, h, poly, i, j, q0, q1, k0, k1)


def _boundary_2d(y, h, poly: Polytope, i, j, q0, q1, k0, k1) -> _Segments:
    """The owned pieces of ∂D (edges with n_1 ≠ 0 only) from the clipped facets (i, j, q0, q1)
    and the planes k0, k1 (or −1) that cut their ends."""
    # breakpoints where facets leave D, owners by argmax at midpoints
    V = poly.vertices
    edge_dir = np.roll(V, -1, axis=0) - V
    edge_len = np.linalg.norm(edge_dir, axis=1)
    bk = np.r_[k0[k0 >= 0], k1[k1 >= 0]]
    bp = np.vstack([q0[k0 >= 0], q1[k1 >= 0]])
    cand_pairs = np.r_[i[k0 >= 0], j[k0 >= 0], i[k1 >= 0], j[k1 >= 0]]
    use = np.abs(poly.A[:, 0]) > 1e-14
    sel = use[bk]
    bk, bp = bk[sel], bp[sel]
    u = np.einsum("ij,ij->i", bp - V[bk], edge_dir[bk]) / edge_len[bk]
    ek = np.flatnonzero(use)
    allk = np.r_[bk, ek, ek]
    allu = np.clip(np.r_[u, np.zeros(len(ek)), edge_len[ek]], 0, edge_len[np.r_[bk, ek, ek]])
    order = np.lexsort((allu, allk))
    allk, allu = allk[order], allu[order]
    same = (allk[1:] == allk[:-1]) & (allu[1:] > allu[:-1])
    pk, ua, ub = allk[:-1][same], allu[:-1][same], allu[1:][same]
    e = edge_dir[pk] / edge_len[pk, None]
    b0, b1 = V[pk] + ua[:, None] * e, V[pk] + ub[:, None] * e
    corner_owner = _argmax_sites(V, y, h)
    cand = np.unique(np.r_[cand_pairs, corner_owner])
    owner = _argmax_sites((b0 + b1) / 2, y, h, cand) if len(pk) else np.zeros(0, np.int64)
    return _Segments(owner, np.full(len(pk), -1), b0, b1, poly.A[pk, 0])




@_compiled
def _facet2_kernel(numba):
    """Numba-compiled 2-D facets, uniform ρ: for each edge ij of the regular triangulation
    between real sites, the power edge [v_ta, v_tb] with its sign, clipped to D (Cyrus–Beck),
    and Simpson's ∫Φ for the mass and the moments added to both cells in one pass. None without
    numba."""

    @numba.njit(cache=True)
    def facets(simp, nbr, vtx, Y, n, A, b, out_tol, rho0, a1,
               fi, fj, q0, q1, k0, k1, sgn, length, integ):
        T = simp.shape[0]
        m = A.shape[0]
        P = 0
        for t in range(T):
            for k in range(3):
                nb = nbr[t, k]
                if nb <= t:
                    continue
                i = simp[t, 1] if k == 0 else simp[t, 0]  # the face: the vertices other than k,
                j = simp[t, 1] if k == 2 else simp[t, 2]  # in their order in the simplex
                if i >= n or j >= n:
                    continue
                ax, ay = vtx[t, 0], vtx[t, 1]
                dx, dy = vtx[nb, 0] - ax, vtx[nb, 1] - ay
                # sign: does the power edge run towards the apex of nb (see _edge_signs_2d)?
                apex = simp[nb, 0] + simp[nb, 1] + simp[nb, 2] - i - j
                ex, ey = Y[j, 0] - Y[i, 0], Y[j, 1] - Y[i, 1]
                side = (ex * (Y[apex, 1] - Y[i, 1]) - ey * (Y[apex, 0] - Y[i, 0])) * (ex * dy - ey * dx)
                sg = -1.0 if side < 0 else 1.0
                t0, t1, c0, c1 = 0.0, 1.0, -1, -1
                for kk in range(m):
                    num = b[kk] - (ax * A[kk, 0] + ay * A[kk, 1])
                    den = dx * A[kk, 0] + dy * A[kk, 1]
                    if abs(den) <= 1e-300:
                        if num < -out_tol:
                            t1 = -1.0
                        continue
                    tt = num / den
                    if den < 0:
                        if tt > t0:
                            t0, c0 = tt, kk
                    elif tt < t1:
                        t1, c1 = tt, kk
                if not t1 > t0:
                    continue
                x0, y0 = ax + t0 * dx, ay + t0 * dy
                x1, y1 = ax + t1 * dx, ay + t1 * dy
                L = np.sqrt((x1 - x0) ** 2 + (y1 - y0) ** 2)
                xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
                # Simpson on Φ = ρ (x1 − a1), ρ (x1² − a1²)/2, ρ x2 (x1 − a1) (exact: cubics)
                f0 = (x0 - a1) + 4 * (xm - a1) + (x1 - a1)
                f1 = (x0 * x0 + 4 * xm * xm + x1 * x1 - 6 * a1 * a1) / 2
                f2 = y0 * (x0 - a1) + 4 * ym * (xm - a1) + y1 * (x1 - a1)
                w = sg * rho0 * L / 6 * ex / np.sqrt(ex * ex + ey * ey)  # signed n_ij,1 · |F| / 6
                integ[i, 0] += w * f0
                integ[i, 1] += w * f1
                integ[i, 2] += w * f2
                integ[j, 0] -= w * f0
                integ[j, 1] -= w * f1
                integ[j, 2] -= w * f2
                fi[P], fj[P] = i, j
                q0[P, 0], q0[P, 1], q1[P, 0], q1[P, 1] = x0, y0, x1, y1
                k0[P], k1[P], sgn[P], length[P] = c0, c1, sg, L
                P += 1
        return P

    return facets


def _facets_2d_uniform(y, h, poly: Polytope, tri: Triangulation, rho0: float, a1: float):
    """(facets, boundary pieces, ∫ over the cells of ρ, ρ x_1, ρ x_2 from the facets (n, 3),
    facet lengths) through the compiled kernel; None without numba."""
    kernel = _facet2_kernel()
    if kernel is None:
        return None
    n = len(y)
    cap = 3 * len(tri.simplices) // 2 + 3
    fi, fj = np.empty(cap, np.int64), np.empty(cap, np.int64)
    q0, q1 = np.empty((cap, 2)), np.empty((cap, 2))
    k0, k1 = np.empty(cap, np.int64), np.empty(cap, np.int64)
    sgn, length, integ = np.empty(cap), np.empty(cap), np.zeros((n, 3))
    out_tol = 1e-14 * (1.0 + np.abs(poly.b).max())
    P = kernel(tri.simplices, tri.neighbors, tri.vertices, tri.Y, n, np.ascontiguousarray(poly.A),
               np.ascontiguousarray(poly.b, dtype=float), out_tol, rho0, a1,
               fi, fj, q0, q1, k0, k1, sgn, length, integ)
    fi, fj, q0, q1, k0, k1, sgn, length = (a[:P] for a in (fi, fj, q0, q1, k0, k1, sgn, length))
    nij1 = (y[fj, 0] - y[fi, 0]) / np.linalg.norm(y[fj] - y[fi], axis=1)
    facets = _Segments(fi, fj, q0, q1, nij1, sgn)
    return facets, _boundary_2d(y, h, poly, fi, fj, q0, q1, k0, k1), integ, length


def _flux_2d(segs: list[_Segments], vals: list[np.ndarray], n: int) -> np.ndarray:
    """Σ ± n_1 ∫Φ over pieces, per cell: (n, K)."""
    K = vals[0].shape[1]
    out = np.zeros((n, K))
    for s, v in zip(segs, vals, strict=True):
        f = (s.n1 if s.sign is None else s.n1 * s.sign)[:, None] * v
        for k in range(K):
            out[:, k] += np.bincount(s.i, f[:, k], minlength=n)
            inner = s.j >= 0
            out[:, k] -= np.bincount(s.j[inner], f[inner, k], minlength=n)
    return out


def integrate_polynomials_2d(y, h, poly: Polytope, coefs: np.ndarray,
                             tri: Triangulation | None = None):
    """∫_{W_i ∩ D} q_k(x) dx for quadratics q_k (coefficients (K, 6) on [1, x1, x2, x1², x1x2, x2²]).

    Returns (integrals (N, K), facets, boundary pieces)."""
    tri = tri or regular_triangulation(y, h, poly.vertices)
    facets, bnd = _segments_2d(y, h, poly, tri)
    a1 = float(poly.vertices[:, 0].min())
    vals = []
    for s in (facets, bnd):
        mid = (s.p0 + s.p1) / 2
        f0 = _quad_antiderivative(s.p0, a1) @ coefs.T
        fm = _quad_antiderivative(mid, a1) @ coefs.T
        f1 = _quad_antiderivative(s.p1, a1) @ coefs.T
        vals.append(_simpson(f0, fm, f1, np.linalg.norm(s.p1 - s.p0, axis=1)))
    return _flux_2d([facets, bnd], vals, len(y)), facets, bnd


def _grid_piece_values(s: _Segments, dom_low, cell, rho):
    """Split pieces at pixel lines; Simpson integrals of Φ_mass, Φ_x1, Φ_x2 and ∫ρ ds per piece."""
    n1, n2 = rho.shape
    xs = dom_low[0] + cell[0] * np.arange(n1 + 1)
    P = np.zeros((n1 + 1, n2))
    P[1:] = np.cumsum(rho * cell[0], axis=0)
    Q = np.zeros((n1 + 1, n2))
    Q[1:] = np.cumsum(rho * ((xs[1:] ** 2 - xs[:-1] ** 2) / 2)[:, None], axis=0)
    sid, ta, tb = _split_at_grid(s.p0, s.p1, dom_low, cell, rho.shape)
    dv = s.p1 - s.p0
    pa = s.p0[sid] + ta[:, None] * dv[sid]
    pb = s.p0[sid] + tb[:, None] * dv[sid]
    pm = (pa + pb) / 2
    c = np.clip(np.floor((pm[:, 0] - dom_low[0]) / cell[0]).astype(np.int64), 0, n1 - 1)
    r = np.clip(np.floor((pm[:, 1] - dom_low[1]) / cell[1]).astype(np.int64), 0, n2 - 1)
    rh, xc = rho[c, r], xs[c]

    def phi(p):
        m = P[c, r] + rh * (p[:, 0] - xc)
        m1 = Q[c, r] + rh * (p[:, 0] ** 2 - xc**2) / 2
        return np.stack([m, m1, p[:, 1] * m], axis=1)

    length = np.linalg.norm(pb - pa, axis=1)
    piece = _simpson(phi(pa), phi(pm), phi(pb), length)
    S = len(s.i)
    vals = np.stack([np.bincount(sid, piece[:, k], minlength=S) for k in range(3)], axis=1)
    wrho = np.bincount(sid, rh * length, minlength=S)
    return vals, wrho


def _diagram_2d(y, h, dom: Domain, segments: bool, reuse: Triangulation | None,
                flips_only: bool = False) -> PowerDiagram | None:
    n = len(y)
    poly = dom.poly
    tri = regular_triangulation(y, h, poly.vertices, reuse, flips_only)
    if tri is None:
        return None
    fast = None
    if dom.grid is None:
        rho0 = 1.0 / poly.volume
        a1 = float(poly.vertices[:, 0].min())
        fast = _facets_2d_uniform(y, h, poly, tri, rho0, a1) if FACETS_2D_COMPILED else None
    if fast is not None:  # facets in compiled code; the few pieces of ∂D vectorised
        facets, bnd, integ, length = fast
        coefs = rho0 * np.eye(6)[:3]
        mid = (bnd.p0 + bnd.p1) / 2
        vals = _simpson(_quad_antiderivative(bnd.p0, a1) @ coefs.T, _quad_antiderivative(mid, a1) @ coefs.T,
                        _quad_antiderivative(bnd.p1, a1) @ coefs.T, np.linalg.norm(bnd.p1 - bnd.p0, axis=1))
        integ += _flux_2d([bnd], [vals], n)
        fmass = rho0 * length
    elif dom.grid is None:
        coefs = rho0 * np.eye(6)[:3]
        integ, facets, bnd = integrate_polynomials_2d(y, h, poly, coefs, tri)
        fmass = rho0 * np.linalg.norm(facets.p1 - facets.p0, axis=1)
    else:
        facets, bnd = _segments_2d(y, h, poly, tri)
        low, cell = dom.low, dom.cell
        vf, fmass = _grid_piece_values(facets, low, cell, dom.grid)
        vb, _ = _grid_piece_values(bnd, low, cell, dom.grid)
        integ = _flux_2d([facets, bnd], [vf, vb], n)
    fmass = np.where(facets.sign < 0, 0.0, fmass)  # backwards edges: (rounding-)empty facets
    pairs = np.c_[facets.i, facets.j]
    segs = np.stack([facets.p0, facets.p1], axis=1) if segments else None
    return PowerDiagram(integ[:, 0], integ[:, 1:3], pairs, fmass, segs, tri)


# ---------------------------------------------------------------------------------------- 3-D


def _clip_polygons(polys: np.ndarray, cnt: np.ndarray, a: np.ndarray, b):
    """Sutherland–Hodgman of convex polygons (K, M, 3) with `cnt` vertices by ⟨a, x⟩ ≤ b
    (b a scalar or one value per polygon); returns (K, M + 1, 3) and the new counts."""
    K, M, _ = polys.shape
    if K == 0:
        return np.zeros((0, M + 1, 3)), cnt
    idx = np.arange(M)
    nxt = (idx[None, :] + 1) % np.maximum(cnt[:, None], 1)
    valid = idx[None, :] < cnt[:, None]
    q = polys[np.arange(K)[:, None], nxt]
    ds = polys @ a - np.broadcast_to(b, (K,))[:, None]
    dq = np.take_along_axis(ds, nxt, axis=1)
    ins, inq = ds <= 0, dq <= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(ins != inq, ds / (ds - dq), 0.0)
    cross = polys + t[..., None] * (q - polys)
    out = np.empty((K, 2 * M, 3))
    out[:, 0::2] = polys
    out[:, 1::2] = cross
    keep = np.empty((K, 2 * M), bool)
    keep[:, 0::2] = ins & valid
    keep[:, 1::2] = (ins != inq) & valid
    new_cnt = keep.sum(axis=1)
    order = np.argsort(~keep, axis=1, kind="stable")[:, :M + 1]
    res = np.take_along_axis(out, order[..., None], axis=1)
    return res, new_cnt


def _fan_integrals(polys, cnt, funcs):
    """∫ over convex polygons (K, M, 3) of quadratic functions (edge-midpoint rule on a fan).

    `funcs(x, rows)` gives the F integrands at points x (k, 3) of polygons `rows`; returns
    areas (K,) and integrals (K, F)."""
    K, M, _ = polys.shape
    area = np.zeros(K)
    vals = None
    p0 = polys[:, 0]
    for k in range(1, M - 1):
        rows = np.flatnonzero(k + 1 < cnt)
        if len(rows) == 0:
            break
        a, b, c = polys[rows, k], polys[rows, k + 1], p0[rows]
        ar = np.linalg.norm(np.cross(a - c, b - c), axis=1) / 2
        f = funcs((c + a) / 2, rows) + funcs((a + b) / 2, rows) + funcs((b + c) / 2, rows)
        if vals is None:
            vals = np.zeros((K, f.shape[1]))
        area[rows] += ar
        vals[rows] += ar[:, None] * f / 3
    return area, (vals if vals is not None else np.zeros((K, 4)))


def _split_at_voxels(polys, cnt, owner, low, cell, shape):
    """Cut convex polygons (K, M, 3) along the grid planes so each piece lies in one voxel."""
    for k in range(3):
        M = polys.shape[1]
        valid = np.arange(M)[None, :] < cnt[:, None]
        xk = np.where(valid, polys[:, :, k], np.nan)
        lo = np.clip(np.floor((np.nanmin(xk, axis=1) - low[k]) / cell[k]), 0, shape[k] - 1)
        hi = np.clip(np.floor((np.nanmax(xk, axis=1) - low[k]) / cell[k]), 0, shape[k] - 1)
        lo, hi = lo.astype(np.int64), hi.astype(np.int64)
        rep = np.repeat(np.arange(len(polys)), hi - lo + 1)
        slab = lo[rep] + np.arange(len(rep)) - np.repeat(np.cumsum(hi - lo + 1) - (hi - lo + 1),
                                                         hi - lo + 1)
        P, C = polys[rep], cnt[rep]
        e = np.eye(3)[k]
        up = np.where(slab == shape[k] - 1, np.inf, low[k] + (slab + 1) * cell[k])
        down = np.where(slab == 0, -np.inf, low[k] + slab * cell[k])
        P, C = _clip_polygons(P, C, e, up)
        P, C = _clip_polygons(P, C, -e, -down)
        keep = C >= 3
        polys, cnt, owner = P[keep], C[keep], owner[rep][keep]
    return polys, cnt, owner


def _face_frame(poly: Polytope, k: int):
    normal = poly.A[k]
    helper = np.eye(3)[np.argmin(np.abs(normal))]
    u = np.cross(normal, helper)
    u /= np.linalg.norm(u)
    w = np.cross(normal, u)
    o = poly.vertices[poly.faces[k]].mean(axis=0)
    U = np.stack([u, w], axis=1)  # (3, 2)
    return o, U


def _touching(polys, cnt, poly: Polytope, k: int) -> np.ndarray:
    """Polygons with a vertex on the plane of face k (clipped there)."""
    scale = 1.0 + np.abs(poly.b).max()
    dist = np.abs(polys @ poly.A[k] - poly.b[k])
    valid = np.arange(polys.shape[1])[None, :] < cnt[:, None]
    return ((dist <= 1e-9 * scale) & valid).any(axis=1)


def _diagram_3d(y, h, dom: Domain, reuse: Triangulation | None,
                flips_only: bool = False) -> PowerDiagram | None:
    n = len(y)
    poly = dom.poly
    a1 = float(poly.vertices[:, 0].min())
    tri = regular_triangulation(y, h, poly.vertices, reuse, flips_only)
    if tri is None:
        return None
    m = len(poly.b)
    rho0 = 1.0 / poly.volume

    def funcs(x, rows):  # Φ for the mass and the moments x_1, x_2, x_3 (F = Φ e_1), uniform ρ
        t = rho0 * (x[:, 0] - a1)
        return np.stack([t, rho0 * (x[:, 0] ** 2 - a1**2) / 2, x[:, 1] * t, x[:, 2] * t], 1)

    fast = _facets_uniform(tri, n, poly, rho0, a1) if dom.grid is None else None
    if fast is not None:
        pairs, area, fint, bits = fast
        fmass = rho0 * np.maximum(area, 0.0)  # signed areas: < 0 only for rounding-empty facets

        def touching(k):
            return pairs[(bits >> k) & 1 == 1].ravel()
    else:
        vtx = tri.vertices
        face, ta, tb = _interior_faces(tri.simplices, tri.neighbors, n)
        # each face (a, b, c) carries the power edge [v_ta, v_tb], shared by facets ab, ac, bc;
        # the facet F_ij is the fan of triangles (c_ij, v_ta, v_tb), c_ij the mean of its edge midpoints
        pr = np.concatenate([face[:, [0, 1]], face[:, [0, 2]], face[:, [1, 2]]])
        third = np.concatenate([face[:, 2], face[:, 1], face[:, 0]])
        simp = tri.simplices
        apex_a = np.tile(simp[ta].sum(axis=1) - face.sum(axis=1), 3)
        apex_b = np.tile(simp[tb].sum(axis=1) - face.sum(axis=1), 3)
        ea = np.tile(ta, 3)
        eb = np.tile(tb, 3)
        real = (pr < n).all(axis=1)
        pr, ea, eb = np.sort(pr[real], axis=1), ea[real], eb[real]
        third, apex_a, apex_b = third[real], apex_a[real], apex_b[real]
        ukey, inv = np.unique(pr[:, 0] * n + pr[:, 1], return_inverse=True)
        P = len(ukey)
        mid = (vtx[ea] + vtx[eb]) / 2
        cnt_e = np.bincount(inv, minlength=P)
        center = np.stack([np.bincount(inv, mid[:, k], minlength=P) for k in range(3)], 1) / cnt_e[:, None]
        pairs = np.c_[ukey // n, ukey % n]
        # orientation of each triangle (c_ij, v_ta, v_tb) in F_ij: +1 when it turns about y_j − y_i
        # the way a regular facet does (read off the better-shaped of the tetrahedra ta, tb, which
        # does not depend on h), −1 for the backwards power edges of a triangulation that is
        # regular only up to rounding (degenerate sites): signed integrals stay second-order exact
        Y = tri.Y
        e = Y[pr[:, 1]] - Y[pr[:, 0]]
        u = Y[third] - Y[pr[:, 0]]
        det_b = np.einsum("ij,ij->i", np.cross(e, u), Y[apex_b] - Y[pr[:, 0]])
        det_a = -np.einsum("ij,ij->i", np.cross(e, u), Y[apex_a] - Y[pr[:, 0]])
        sigma = np.where(np.abs(det_b) >= np.abs(det_a), det_b, det_a)
        turn = np.einsum("ij,ij->i", e, np.cross(vtx[ea] - center[inv], vtx[eb] - center[inv]))
        sgn = np.where(sigma * turn < 0, -1.0, 1.0)
        # classify the triangles against D; clip those that cross ∂D
        ins_v = vtx @ poly.A.T <= poly.b + 1e-12
        ins_c = center @ poly.A.T <= poly.b + 1e-12
        all_in = ins_v[ea].all(1) & ins_v[eb].all(1) & ins_c[inv].all(1)
        all_out = (~ins_v[ea] & ~ins_v[eb] & ~ins_c[inv]).any(1)
        cr = ~all_in & ~all_out
        polys = np.zeros((cr.sum(), 3 + m, 3))
        polys[:, 0], polys[:, 1], polys[:, 2] = center[inv[cr]], vtx[ea[cr]], vtx[eb[cr]]
        clip = _clip_kernel()
        if clip is not None:
            cnt = clip(polys, np.ascontiguousarray(poly.A), np.ascontiguousarray(poly.b, dtype=float))
        else:
            cnt = np.full(len(polys), 3)
            for k in range(m):  # each plane adds at most one vertex: 3 + m slots always suffice
                polys, cnt = _clip_polygons(polys, cnt, poly.A[k], poly.b[k])
                polys = polys[:, :3 + m]
        def inside_triangles():
            return np.stack([center[inv[all_in]], vtx[ea[all_in]], vtx[eb[all_in]]], axis=1)

        if dom.grid is None:
            area_cr, val_cr = _fan_integrals(polys, cnt, funcs)
            area_cr, val_cr = sgn[cr] * area_cr, sgn[cr, None] * val_cr
            kernel = _facet_kernel()
            if kernel is not None:  # inside triangles summed per facet in compiled code
                area_p, val_p = np.zeros(P), np.zeros((P, 4))
                kernel(center, vtx, ea[all_in], eb[all_in], inv[all_in], sgn[all_in], rho0, a1,
                       area_p, val_p)
                owner = np.r_[np.arange(P), inv[cr]]
                area, vals = np.r_[area_p, area_cr], np.r_[val_p, val_cr]
            else:
                tri_in = inside_triangles()
                area_in, val_in = _fan_integrals(tri_in, np.full(len(tri_in), 3), funcs)
                area_in, val_in = sgn[all_in] * area_in, sgn[all_in, None] * val_in
                owner = np.r_[inv[all_in], inv[cr]]
                area, vals = np.r_[area_in, area_cr], np.r_[val_in, val_cr]
            wrho = rho0 * area
        else:
            low, cell, rho = dom.low, dom.cell, dom.grid
            tri_in = inside_triangles()
            pieces = np.zeros((len(tri_in) + len(polys), 3 + m + 6, 3))
            pieces[:len(tri_in), :3] = tri_in
            pieces[len(tri_in):, :3 + m] = polys
            pc = np.r_[np.full(len(tri_in), 3), cnt]
            keep = pc >= 3
            tri_id = np.r_[np.flatnonzero(all_in), np.flatnonzero(cr)][keep]
            pieces, pc, tri_id = _split_at_voxels(pieces[keep], pc[keep], tri_id, low, cell, rho.shape)
            owner = inv[tri_id]
            valid = np.arange(pieces.shape[1])[None, :] < pc[:, None]
            cen = (pieces * valid[..., None]).sum(axis=1) / pc[:, None]
            vox = np.clip(np.floor((cen - low) / cell).astype(np.int64), 0, np.asarray(rho.shape) - 1)
            xs = low[0] + cell[0] * np.arange(rho.shape[0] + 1)
            pre = np.zeros((rho.shape[0] + 1,) + rho.shape[1:])
            pre[1:] = np.cumsum(rho * cell[0], axis=0)
            pre2 = np.zeros_like(pre)
            pre2[1:] = np.cumsum(rho * ((xs[1:] ** 2 - xs[:-1] ** 2) / 2)[:, None, None], axis=0)
            c1, c2, c3 = vox.T
            r_v, x_v = rho[c1, c2, c3], xs[c1]
            p_v, q_v = pre[c1, c2, c3], pre2[c1, c2, c3]

            def funcs(x, rows):  # noqa: F811 - the voxel density's Φ
                mass = p_v[rows] + r_v[rows] * (x[:, 0] - x_v[rows])
                m1 = q_v[rows] + r_v[rows] * (x[:, 0] ** 2 - x_v[rows] ** 2) / 2
                return np.stack([mass, m1, x[:, 1] * mass, x[:, 2] * mass], 1)

            area, vals = _fan_integrals(pieces, pc, funcs)
            area, vals = sgn[tri_id] * area, sgn[tri_id, None] * vals
            wrho = r_v * area
        fint = np.stack([np.bincount(owner, vals[:, f], minlength=P) for f in range(4)], 1)
        fmass = np.maximum(np.bincount(owner, wrho, minlength=P), 0.0)
        tri_i, tri_j = pairs[inv[cr], 0], pairs[inv[cr], 1]

        def touching(k):
            t = _touching(polys, cnt, poly, k)
            return np.r_[tri_i[t], tri_j[t]]
    i, j = pairs.T
    nij = y[j] - y[i]
    nij /= np.linalg.norm(nij, axis=1, keepdims=True)
    integ = np.zeros((n, 4))
    for f in range(4):
        integ[:, f] += np.bincount(i, nij[:, 0] * fint[:, f], minlength=n)
        integ[:, f] -= np.bincount(j, nij[:, 0] * fint[:, f], minlength=n)
    # faces of D with n_1 ≠ 0: the restricted 2-D diagram of the sites touching them
    corner_owner = _argmax_sites(poly.vertices, y, h)
    for k in range(m):
        nk1 = poly.A[k, 0]
        fv = poly.vertices[poly.faces[k]]
        if abs(nk1) <= 1e-14 or np.all(fv[:, 0] == a1):  # F·n = 0 there (Φ = 0 on x_1 = a_1)
            continue
        cand = np.unique(np.r_[touching(k), corner_owner])
        if dom.grid is not None:  # the face x_1 = high_1 of the voxel box
            integ[cand] += _voxel_face(y[cand], h[cand], dom, pre[-1], pre2[-1])
            continue
        o, U = _face_frame(poly, k)
        z = y[cand] @ U
        g = h[cand] + y[cand] @ o
        fpoly = Polytope.from_vertices((fv - o) @ U, "source")
        # integrands n_k1 · Φ_f restricted to the face, as quadratics in the face coordinates s
        sample = fpoly.vertices.mean(axis=0) + np.array(
            [[0, 0], [1, 0], [0, 1], [1, 1], [2, 0], [0, 2]], float) * (np.ptp(fpoly.vertices) + 1)
        xs3 = o + sample @ U.T
        rhs = nk1 * funcs(xs3, None)
        coefs = np.linalg.solve(_quad_basis(sample), rhs).T
        integ[cand] += integrate_polynomials_2d(z, g, fpoly, coefs)[0]
    pos = fmass > 0
    return PowerDiagram(integ[:, 0], integ[:, 1:4], pairs[pos], fmass[pos], None, tri)


def _voxel_face(y, h, dom: Domain, total, total2):
    """∫ over W_i ∩ {x_1 = high_1} of Φ (mass, x_1, x_2, x_3 moments): a 2-D pixel problem in
    (x_2, x_3) with the column integrals ∫ρ dx_1 and ∫x_1 ρ dx_1 as densities."""
    high1 = dom.high[0]
    z = y[:, 1:]
    g = h + high1 * y[:, 0]
    fpoly = Polytope.box(dom.low[1:], dom.high[1:])
    tri = regular_triangulation(z, g, fpoly.vertices)
    facets, bnd = _segments_2d(z, g, fpoly, tri)
    low2, cell2 = dom.low[1:], dom.cell[1:]
    flux_t = _flux_2d([facets, bnd], [_grid_piece_values(s, low2, cell2, total)[0]
                                      for s in (facets, bnd)], len(y))
    flux_q = _flux_2d([facets, bnd], [_grid_piece_values(s, low2, cell2, total2)[0]
                                      for s in (facets, bnd)], len(y))
    return np.c_[flux_t[:, 0], flux_q[:, 0], flux_t[:, 1], flux_t[:, 2]]


# ---------------------------------------------------------------------------------------- public


def power_diagram(y: np.ndarray, h: np.ndarray, dom: Domain, *, segments: bool = False,
                  reuse: Triangulation | None = None, flips_only: bool = False) -> PowerDiagram | None:
    """Exact masses, moments and facet measures of the cells W_i(h) ∩ D (see module docstring).

    `reuse`: the triangulation of an earlier call with the same y, repaired by flips; with
    `flips_only`, None when flips cannot reach h (some cell would have to empty, or degenerate)."""
    y = np.ascontiguousarray(y, dtype=np.float64)
    h = np.ascontiguousarray(h, dtype=np.float64)
    if len(y) == 1:
        c = dom.poly.centroid if dom.grid is None else _grid_mean(dom)
        return PowerDiagram(np.ones(1), c[None, :].copy(), np.zeros((0, 2), np.int64), np.zeros(0),
                            np.zeros((0, 2, y.shape[1])) if segments else None, None)
    if dom.dim == 2:
        return _diagram_2d(y, h, dom, segments, reuse, flips_only)
    return _diagram_3d(y, h, dom, reuse, flips_only)


def _grid_mean(dom: Domain) -> np.ndarray:
    axes = [dom.low[k] + dom.cell[k] * (np.arange(s) + 0.5) for k, s in enumerate(dom.grid.shape)]
    mesh = np.meshgrid(*axes, indexing="ij")
    w = dom.grid * np.prod(dom.cell)
    return np.array([(w * m).sum() for m in mesh])
