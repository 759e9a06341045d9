"""The regular triangulation dual to the power diagram: the lower convex hull of the lifted
points (y_i, −h_i) plus 2^d dummy sites whose cells bound every W_i and miss D.

A fresh one is built by incremental insertion in spatial order with compiled flips (many sites,
none hidden), otherwise by qhull; after a change of h the previous one is repaired by flips.
Simplices give the power vertices, (d−1)-faces the facets F_ij = W_i ∩ W_j."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from ...validation import BrenierError
from . import flips3d, kernels2d, kernels3d
from .domain import score_floor
from .options import DEFAULT_OPTIONS, PowerOptions


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


def _power_vertices(Y: np.ndarray, H: np.ndarray, simp: np.ndarray, options: PowerOptions):
    """x with ⟨x, Y_a⟩ + H_a equal over each simplex; (x (T, d), ok (T,) well-conditioned)."""
    d = Y.shape[1]
    if d == 3 and options.compiled:
        x, ok = np.empty((len(simp), 3)), np.empty(len(simp), np.bool_)
        kernels3d.power_vertices(Y, H, np.ascontiguousarray(simp), x, ok)
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


def _usable_vertices(Y: np.ndarray, H: np.ndarray, simp: np.ndarray, n: int,
                     options: PowerOptions) -> np.ndarray | None:
    """Power vertices of a triangulation built by flips or insertion, or None when a simplex
    with a real facet is flat (qhull then starts afresh). Flat simplices of dummy sites only
    (no real facet uses them) get their vertex mean."""
    vtx, ok = _power_vertices(Y, H, simp, options)
    idle = (simp < n).sum(axis=1) <= 1
    vtx[~ok & idle] = Y[simp[~ok & idle]].mean(axis=1)
    return vtx if (ok | idle).all() else None


def regular_triangulation(y: np.ndarray, h: np.ndarray, verts: np.ndarray,
                          previous: Triangulation | None = None, flips_only: bool = False,
                          options: PowerOptions | None = None) -> Triangulation | None:
    """Lower hull of (y_i, −h_i) plus 2^d dummy sites near the bounding box whose cells miss D
    (`verts`: the vertices of D).

    With `previous` (same y), its combinatorics are repaired by flips when every site stays a
    vertex; when they cannot be, a fresh one is built, or None is returned if `flips_only`."""
    options = options or DEFAULT_OPTIONS
    n = len(y)
    if previous is not None and previous.complete and previous.n_real == n:
        repaired = _repaired(previous, y, h, verts, options)
        if repaired is not None or flips_only:
            return repaired
    Y = np.vstack([y, _dummy_sites(y, verts, options.dummy_factor)])
    H = np.r_[h, _dummy_heights(y, h, verts, Y[n:])]
    if n >= options.insert_min and options.flips:
        inserted = _inserted_triangulation(Y, H, n)
        if inserted is not None:
            simp, nbr = inserted
            vtx = _usable_vertices(Y, H, simp, n, options)
            if vtx is not None:
                return _local_order(Triangulation(Y, H, simp, nbr, vtx, n, True, "inserted"))
    return _local_order(_qhull_triangulation(Y, H, n, options))


def _repaired(previous: Triangulation, y, h, verts, options: PowerOptions) -> Triangulation | None:
    """`previous` brought to the heights h by bistellar flips (2-2 in 2-D; 2-3 and 3-2 in 3-D),
    every site staying a vertex; without flips, kept when it stays regular (3-D). None if not."""
    n, d = y.shape
    H = np.r_[h, _dummy_heights(y, h, verts, previous.Y[n:])]
    simp, nbr = previous.simplices, previous.neighbors
    if options.flips:
        repaired = _flip_repair(previous.Y, H, simp, nbr)
        if repaired is not None:
            simp, nbr, flips = repaired
            vtx = _usable_vertices(previous.Y, H, simp, n, options)
            if vtx is not None:
                return Triangulation(previous.Y, H, simp, nbr, vtx, n, True,
                                     "flipped" if flips else "kept")
    elif d == 3:
        vtx, ok = _power_vertices(previous.Y, H, simp, options)
        if ok.all() and _still_regular(previous, H, vtx):
            return Triangulation(previous.Y, H, simp, nbr, vtx, n, True, "kept")
    return None


def _dummy_sites(y: np.ndarray, verts: np.ndarray, factor: float) -> np.ndarray:
    """The 2^d corners c ± factor · half of the bounding box (c, half) of y and D."""
    d = y.shape[1]
    pts = np.vstack([y, verts])
    c = (pts.max(axis=0) + pts.min(axis=0)) / 2
    half = (pts.max(axis=0) - pts.min(axis=0)) / 2
    half = np.maximum(half, 1e-3 * max(float(half.max()), 1e-12))
    return c + factor * half * np.array(list(itertools.product([-1.0, 1.0], repeat=d)))


def _qhull_triangulation(Y: np.ndarray, H: np.ndarray, n: int, options: PowerOptions) -> Triangulation:
    """The lower hull of the lifted sites (Y_i, −H_i) by qhull (n real sites, then the dummies)."""
    d = Y.shape[1]
    y = Y[:n]
    # lift z = −H; subtracting an affine function of y and scaling keeps the lower hull
    z = -H
    X1 = np.c_[np.ones(n), y]
    coef = np.linalg.lstsq(X1, z[:n], rcond=None)[0] if n > d else np.r_[z[:n].mean(), np.zeros(d)]
    zr = z - (coef[0] + Y @ coef[1:])
    spread = float(np.ptp(zr[:n])) if n > 1 else 1.0
    scale = (float(np.ptp(y, axis=0).max()) if n > 1 else 1.0) / (spread if spread > 0 else 1.0)
    scale = scale if np.isfinite(scale) and scale > 0 else 1.0
    order = spatial_order(Y) if options.spatial_sort else np.arange(len(Y))
    try:
        hull = ConvexHull(np.c_[Y, zr * scale][order], qhull_options=options.qhull_options)
    except QhullError as exc:  # pragma: no cover - dummies make the input full-dimensional
        raise BrenierError(f"targets: qhull failed on the regular triangulation ({exc})") from None
    eq = hull.equations
    lower = eq[:, d] < -1e-12
    lid = np.full(len(eq), -1)
    lid[lower] = np.arange(lower.sum())
    simp = order[hull.simplices[lower]]
    nbr = lid[hull.neighbors[lower]]
    vtx, ok = _power_vertices(Y, H, simp, options)
    if not ok.all():  # flat simplices (co-spherical sites): the facet plane's slope
        slope = -eq[lower, :d] / (eq[lower, d:d + 1] * scale) + coef[1:]
        vtx[~ok] = slope[~ok]
    complete = len(np.unique(simp[simp < n])) == n
    if d == 2:  # counter-clockwise simplices (the flip repair relies on it)
        e1, e2 = Y[simp[:, 1]] - Y[simp[:, 0]], Y[simp[:, 2]] - Y[simp[:, 0]]
        cw = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0] < 0
        simp[cw] = simp[cw][:, [0, 2, 1]]
        nbr[cw] = nbr[cw][:, [0, 2, 1]]
    return Triangulation(Y, H, simp, nbr, vtx, n, complete)


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


def _flip_repair(Y: np.ndarray, H: np.ndarray, simp: np.ndarray, nbr: np.ndarray) -> tuple | None:
    """Flip the non-regular faces (compiled; 2-2 in 2-D, 2-3 and 3-2 in 3-D): (simplices,
    neighbours, number of flips), or None when a site would have to leave or the flips stick."""
    if Y.shape[1] == 2:
        s, nb = simp.copy(), nbr.copy()
        flips = kernels2d.flip_repair(Y, -H, s, nb, 4 * len(s))
        return (s, nb, flips) if flips >= 0 else None
    T = len(simp)
    extra = max(1024, T // 2)
    s = np.empty((T + extra, 4), np.int64)  # rows ≥ T are written before they are read
    nb = np.empty((T + extra, 4), np.int64)
    s[:T], nb[:T] = simp, nbr
    flips, live = flips3d.flip_repair(Y, -H, s, nb, T, extra)
    if flips < 0:
        return None
    if flips == 0:
        return simp, nbr, 0
    return s[:live], nb[:live], flips


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


def _inserted_triangulation(Y: np.ndarray, H: np.ndarray, n: int) -> tuple | None:
    """(simplices, neighbours) of the regular triangulation of (Y, H) — n sites then 2^d dummy
    corners — by incremental insertion in spatial order, or None (a degenerate or hidden site,
    stuck flips: qhull takes over). Sites hidden at the end are hidden when they are inserted
    (fewer sites hide less), so the insertion never has to remove one."""
    d = Y.shape[1]
    z = -H
    simp0 = _box_simplices(n, d)
    start = _flip_repair(Y, H, simp0, _adjacency(simp0))
    if start is None:
        return None
    simp0, nbr0 = start[:2]
    cap = 2 * n + 8 if d == 2 else 8 * n + 64
    simp = np.empty((cap, d + 1), np.int64)
    nbr = np.empty((cap, d + 1), np.int64)
    simp[:len(simp0)], nbr[:len(simp0)] = simp0, nbr0
    order = spatial_order(Y[:n])
    insert = kernels2d.insert_sites if d == 2 else flips3d.insert_sites
    used = insert(Y, z, order, simp, nbr, len(simp0), 64 * n + 1024)
    if used < 0:
        return None
    simp, nbr = simp[:used], nbr[:used]
    checked = _flip_repair(Y, H, simp, nbr)  # every face regular
    return None if checked is None else checked[:2]


def interior_faces(simp: np.ndarray, nbr: np.ndarray, n_real: int) -> tuple:
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
