"""Exact integrals over 2-D power cells W_i(h) ∩ D, from the facets of the regular triangulation.

By the divergence theorem with F = Φ e_1 (∂Φ/∂x_1 = f, Φ = 0 on x_1 = a_1 = min_D x_1), ∫_{W_i} f
is a sum over the pieces of ∂W_i of ± n_1 ∫Φ: the facets F_ij (n = (y_j − y_i)/|y_j − y_i|) and the
pieces of ∂D. Segments are integrated by Simpson's rule (exact for cubics); a pixel density is
integrated piece by piece after splitting at the grid lines."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kernels2d
from .domain import Domain, Polytope
from .options import PowerOptions
from .triangulation import Triangulation, interior_faces, regular_triangulation


@dataclass
class Segments:
    """Oriented pieces of ∂W_i: flux sign +1 to `i`, −1 to `j` (j = −1 for pieces of ∂D)."""

    i: np.ndarray
    j: np.ndarray
    p0: np.ndarray
    p1: np.ndarray
    n1: np.ndarray  # x_1 component of the outer normal of W_i on the piece
    sign: np.ndarray | None = None  # −1 on facets whose power edge runs backwards (see _edge_signs)


def _edge_signs(Y, simp, face, tb, v0, v1):
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


def segments_2d(y: np.ndarray, h: np.ndarray, poly: Polytope,
                tri: Triangulation) -> tuple[Segments, Segments]:
    """Clipped facets and the owned pieces of ∂D (edges with n_1 ≠ 0 only)."""
    n = len(y)
    vtx = tri.vertices
    face, ta, tb = interior_faces(tri.simplices, tri.neighbors, n)
    real = (face < n).all(axis=1)
    face, ta, tb = face[real], ta[real], tb[real]
    i, j = face[:, 0], face[:, 1]
    p0, p1 = vtx[ta], vtx[tb]
    sgn = _edge_signs(tri.Y, tri.simplices, face, tb, p0, p1)
    t0, t1, k0, k1 = _clip_segments(p0, p1, poly)
    keep = t1 > t0
    i, j, p0, p1, t0, t1, k0, k1, sgn = (a[keep] for a in (i, j, p0, p1, t0, t1, k0, k1, sgn))
    dv = p1 - p0
    q0, q1 = p0 + t0[:, None] * dv, p0 + t1[:, None] * dv
    nij = y[j] - y[i]
    nij /= np.linalg.norm(nij, axis=1, keepdims=True)
    facets = Segments(i, j, q0, q1, nij[:, 0], sgn)
    return facets, _boundary_2d(y, h, poly, i, j, q0, q1, k0, k1)


def _boundary_2d(y, h, poly: Polytope, i, j, q0, q1, k0, k1) -> Segments:
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
    corner_owner = argmax_sites(V, y, h)
    cand = np.unique(np.r_[cand_pairs, corner_owner])
    owner = argmax_sites((b0 + b1) / 2, y, h, cand) if len(pk) else np.zeros(0, np.int64)
    return Segments(owner, np.full(len(pk), -1), b0, b1, poly.A[pk, 0])


def _facets_2d_uniform(y, h, poly: Polytope, tri: Triangulation, rho0: float, a1: float):
    """(facets, boundary pieces, ∫ over the cells of ρ, ρ x_1, ρ x_2 from the facets (n, 3),
    facet lengths) through the compiled kernel."""
    n = len(y)
    cap = 3 * len(tri.simplices) // 2 + 3
    fi, fj = np.empty(cap, np.int64), np.empty(cap, np.int64)
    q0, q1 = np.empty((cap, 2)), np.empty((cap, 2))
    k0, k1 = np.empty(cap, np.int64), np.empty(cap, np.int64)
    sgn, length, integ = np.empty(cap), np.empty(cap), np.zeros((n, 3))
    out_tol = 1e-14 * (1.0 + np.abs(poly.b).max())
    P = kernels2d.facet_integrals(tri.simplices, tri.neighbors, tri.vertices, tri.Y, n,
                                  np.ascontiguousarray(poly.A), np.ascontiguousarray(poly.b, dtype=float),
                                  out_tol, rho0, a1, fi, fj, q0, q1, k0, k1, sgn, length, integ)
    fi, fj, q0, q1, k0, k1, sgn, length = (a[:P] for a in (fi, fj, q0, q1, k0, k1, sgn, length))
    nij1 = (y[fj, 0] - y[fi, 0]) / np.linalg.norm(y[fj] - y[fi], axis=1)
    facets = Segments(fi, fj, q0, q1, nij1, sgn)
    return facets, _boundary_2d(y, h, poly, fi, fj, q0, q1, k0, k1), integ, length


def flux_2d(segs: list[Segments], vals: list[np.ndarray], n: int) -> np.ndarray:
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


def integrate_polynomials_2d(y: np.ndarray, h: np.ndarray, poly: Polytope, coefs: np.ndarray,
                             tri: Triangulation | None = None,
                             options: PowerOptions | None = None) -> tuple:
    """∫_{W_i ∩ D} q_k(x) dx for quadratics q_k (coefficients (K, 6) on [1, x1, x2, x1², x1x2, x2²]).

    Returns (integrals (N, K), facets, boundary pieces)."""
    tri = tri or regular_triangulation(y, h, poly.vertices, options=options)
    facets, bnd = segments_2d(y, h, poly, tri)
    a1 = float(poly.vertices[:, 0].min())
    vals = [_simpson_polynomials(s, coefs, a1) for s in (facets, bnd)]
    return flux_2d([facets, bnd], vals, len(y)), facets, bnd


def _simpson_polynomials(s: Segments, coefs: np.ndarray, a1: float) -> np.ndarray:
    """∫Φ_k over each piece (S, K), Φ_k = ∫_{a1}^{x_1} q_k the antiderivatives of the quadratics."""
    mid = (s.p0 + s.p1) / 2
    f0 = _quad_antiderivative(s.p0, a1) @ coefs.T
    fm = _quad_antiderivative(mid, a1) @ coefs.T
    f1 = _quad_antiderivative(s.p1, a1) @ coefs.T
    return _simpson(f0, fm, f1, np.linalg.norm(s.p1 - s.p0, axis=1))


def grid_piece_values(s: Segments, dom_low: np.ndarray, cell: np.ndarray,
                      rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def cells_2d(y: np.ndarray, h: np.ndarray, dom: Domain, tri: Triangulation, segments: bool,
             options: PowerOptions) -> tuple:
    """(μ(W_i) (n,), ∫_{W_i} x dμ (n, 2), pairs (P, 2), μ(F_ij) (P,), clipped facets (P, 2, 2)
    or None) from the regular triangulation `tri` of (y, h)."""
    n = len(y)
    poly = dom.poly
    if dom.grid is None:
        rho0 = 1.0 / poly.volume
        a1 = float(poly.vertices[:, 0].min())
        coefs = rho0 * np.eye(6)[:3]
        if options.compiled:  # facets in compiled code; the few pieces of ∂D vectorised
            facets, bnd, integ, length = _facets_2d_uniform(y, h, poly, tri, rho0, a1)
            integ += flux_2d([bnd], [_simpson_polynomials(bnd, coefs, a1)], n)
            fmass = rho0 * length
        else:
            integ, facets, bnd = integrate_polynomials_2d(y, h, poly, coefs, tri)
            fmass = rho0 * np.linalg.norm(facets.p1 - facets.p0, axis=1)
    else:
        facets, bnd = segments_2d(y, h, poly, tri)
        low, cell = dom.low, dom.cell
        vf, fmass = grid_piece_values(facets, low, cell, dom.grid)
        vb, _ = grid_piece_values(bnd, low, cell, dom.grid)
        integ = flux_2d([facets, bnd], [vf, vb], n)
    fmass = np.where(facets.sign < 0, 0.0, fmass)  # backwards edges: (rounding-)empty facets
    pairs = np.c_[facets.i, facets.j]
    segs = np.stack([facets.p0, facets.p1], axis=1) if segments else None
    return integ[:, 0], integ[:, 1:3], pairs, fmass, segs


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


def argmax_sites(x: np.ndarray, y: np.ndarray, h: np.ndarray,
                 cand: np.ndarray | None = None) -> np.ndarray:
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


def quad_basis(s: np.ndarray) -> np.ndarray:
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
