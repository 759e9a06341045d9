"""Exact integrals over 3-D power cells W_i(h) ∩ D (see brenier.ot.power for the divergence form).

The facet F_ij is the polygon of the power vertices of the tetrahedra around the edge ij: from
their rings (compiled, uniform ρ), or as a fan of triangles (c_ij, v_ta, v_tb) clipped to D and,
for a voxel density, split at the grid planes; triangles use the edge-midpoint rule. The faces of
D are 2-D restricted diagrams (brenier.ot.power.integrate2d)."""

from __future__ import annotations

import functools

import numpy as np

from . import kernels3d
from .domain import Domain, Polytope
from .integrate2d import (
    argmax_sites,
    flux_2d,
    grid_piece_values,
    integrate_polynomials_2d,
    quad_basis,
    segments_2d,
)
from .options import PowerOptions
from .triangulation import Triangulation, interior_faces, regular_triangulation


def cells_3d(y: np.ndarray, h: np.ndarray, dom: Domain, tri: Triangulation,
             options: PowerOptions) -> tuple:
    """(μ(W_i) (n,), ∫_{W_i} x dμ (n, 3), pairs (P, 2), μ(F_ij) (P,), None) from the regular
    triangulation `tri` of (y, h)."""
    n = len(y)
    poly = dom.poly
    a1 = float(poly.vertices[:, 0].min())
    rho0 = 1.0 / poly.volume
    phi = functools.partial(_phi_uniform, rho0=rho0, a1=a1)
    prefix = _voxel_prefix(dom) if dom.grid is not None else None
    rings = _ring_facets(tri, n, poly, rho0, a1) if dom.grid is None and options.compiled else None
    if rings is not None:
        pairs, area, fint, bits = rings
        fmass = rho0 * np.maximum(area, 0.0)  # signed areas: < 0 only for rounding-empty facets

        def touching(k):
            return pairs[(bits >> k) & 1 == 1].ravel()
    else:
        pairs, fint, fmass, touching = _fan_facets(tri, n, dom, phi, prefix, options)
    i, j = pairs.T
    nij = y[j] - y[i]
    nij /= np.linalg.norm(nij, axis=1, keepdims=True)
    integ = np.zeros((n, 4))
    for f in range(4):
        integ[:, f] += np.bincount(i, nij[:, 0] * fint[:, f], minlength=n)
        integ[:, f] -= np.bincount(j, nij[:, 0] * fint[:, f], minlength=n)
    # faces of D with n_1 ≠ 0: the restricted 2-D diagram of the sites touching them
    corner_owner = argmax_sites(poly.vertices, y, h)
    for k in range(len(poly.b)):
        nk1 = poly.A[k, 0]
        fv = poly.vertices[poly.faces[k]]
        if abs(nk1) <= 1e-14 or np.all(fv[:, 0] == a1):  # F·n = 0 there (Φ = 0 on x_1 = a_1)
            continue
        cand = np.unique(np.r_[touching(k), corner_owner])
        if dom.grid is not None:  # the face x_1 = high_1 of the voxel box
            integ[cand] += _voxel_face(y[cand], h[cand], dom, prefix[1][-1], prefix[2][-1], options)
            continue
        o, U = _face_frame(poly, k)
        z = y[cand] @ U
        g = h[cand] + y[cand] @ o
        fpoly = Polytope.from_vertices((fv - o) @ U, "source")
        # integrands n_k1 · Φ_f restricted to the face, as quadratics in the face coordinates s
        sample = fpoly.vertices.mean(axis=0) + np.array(
            [[0, 0], [1, 0], [0, 1], [1, 1], [2, 0], [0, 2]], float) * (np.ptp(fpoly.vertices) + 1)
        xs3 = o + sample @ U.T
        rhs = nk1 * phi(xs3, None)
        coefs = np.linalg.solve(quad_basis(sample), rhs).T
        integ[cand] += integrate_polynomials_2d(z, g, fpoly, coefs, options=options)[0]
    pos = fmass > 0
    return integ[:, 0], integ[:, 1:4], pairs[pos], fmass[pos], None


def _phi_uniform(x: np.ndarray, rows, rho0: float, a1: float) -> np.ndarray:
    """Φ for the mass and the moments x_1, x_2, x_3 (F = Φ e_1) at x (k, 3), uniform ρ."""
    t = rho0 * (x[:, 0] - a1)
    return np.stack([t, rho0 * (x[:, 0] ** 2 - a1**2) / 2, x[:, 1] * t, x[:, 2] * t], 1)


def _phi_voxels(x: np.ndarray, rows: np.ndarray, r_v, x_v, p_v, q_v) -> np.ndarray:
    """Φ of the voxel density at points x of the pieces `rows` (voxel ρ r_v, lower x_1 edge x_v,
    prefix sums p_v of ∫ρ dx_1 and q_v of ∫x_1 ρ dx_1 up to it)."""
    mass = p_v[rows] + r_v[rows] * (x[:, 0] - x_v[rows])
    m1 = q_v[rows] + r_v[rows] * (x[:, 0] ** 2 - x_v[rows] ** 2) / 2
    return np.stack([mass, m1, x[:, 1] * mass, x[:, 2] * mass], 1)


def _voxel_prefix(dom: Domain) -> tuple:
    """Grid planes xs along x_1 and the prefix sums along x_1 of ∫ρ dx_1 and ∫x_1 ρ dx_1."""
    rho, low, cell = dom.grid, dom.low, dom.cell
    xs = low[0] + cell[0] * np.arange(rho.shape[0] + 1)
    pre = np.zeros((rho.shape[0] + 1,) + rho.shape[1:])
    pre[1:] = np.cumsum(rho * cell[0], axis=0)
    pre2 = np.zeros_like(pre)
    pre2[1:] = np.cumsum(rho * ((xs[1:] ** 2 - xs[:-1] ** 2) / 2)[:, None, None], axis=0)
    return xs, pre, pre2


def _fan_facets(tri: Triangulation, n: int, dom: Domain, phi, prefix, options: PowerOptions) -> tuple:
    """(pairs (P, 2), ∫Φ (P, 4), μ(F_ij) (P,), touching(k): sites of the facets reaching face k of
    D) with each facet a fan of signed triangles, clipped to D."""
    poly = dom.poly
    m = len(poly.b)
    vtx = tri.vertices
    pairs, center, inv, ea, eb, sgn = _fans(tri, n)
    P = len(pairs)
    # classify the triangles against D; clip those that cross ∂D
    ins_v = vtx @ poly.A.T <= poly.b + 1e-12
    ins_c = center @ poly.A.T <= poly.b + 1e-12
    all_in = ins_v[ea].all(1) & ins_v[eb].all(1) & ins_c[inv].all(1)
    all_out = (~ins_v[ea] & ~ins_v[eb] & ~ins_c[inv]).any(1)
    cr = ~all_in & ~all_out
    polys = np.zeros((cr.sum(), 3 + m, 3))
    polys[:, 0], polys[:, 1], polys[:, 2] = center[inv[cr]], vtx[ea[cr]], vtx[eb[cr]]
    if options.compiled:
        cnt = kernels3d.clip_triangles(polys, np.ascontiguousarray(poly.A),
                                       np.ascontiguousarray(poly.b, dtype=float))
    else:
        cnt = np.full(len(polys), 3)
        for k in range(m):  # each plane adds at most one vertex: 3 + m slots always suffice
            polys, cnt = _clip_polygons(polys, cnt, poly.A[k], poly.b[k])
            polys = polys[:, :3 + m]
    if dom.grid is None:  # inside triangles summed per facet in compiled code
        rho0 = 1.0 / poly.volume
        a1 = float(poly.vertices[:, 0].min())
        area_cr, val_cr = _fan_integrals(polys, cnt, phi)
        area_cr, val_cr = sgn[cr] * area_cr, sgn[cr, None] * val_cr
        area_p, val_p = np.zeros(P), np.zeros((P, 4))
        kernels3d.triangle_integrals(center, vtx, ea[all_in], eb[all_in], inv[all_in], sgn[all_in],
                                     rho0, a1, area_p, val_p)
        owner = np.r_[np.arange(P), inv[cr]]
        area, vals = np.r_[area_p, area_cr], np.r_[val_p, val_cr]
        wrho = rho0 * area
    else:
        tri_in = np.stack([center[inv[all_in]], vtx[ea[all_in]], vtx[eb[all_in]]], axis=1)
        owner, area, vals, wrho = _voxel_pieces(tri_in, polys, cnt, all_in, cr, inv, sgn, dom, prefix)
    fint = np.stack([np.bincount(owner, vals[:, f], minlength=P) for f in range(4)], 1)
    fmass = np.maximum(np.bincount(owner, wrho, minlength=P), 0.0)
    tri_i, tri_j = pairs[inv[cr], 0], pairs[inv[cr], 1]

    def touching(k):
        t = _touching(polys, cnt, poly, k)
        return np.r_[tri_i[t], tri_j[t]]
    return pairs, fint, fmass, touching


def _fans(tri: Triangulation, n: int) -> tuple:
    """The facets as fans: pairs (P, 2), centres c_ij (P, 3), and per triangle (c_ij, v_ea, v_eb)
    its facet inv, power vertices ea, eb and orientation sign."""
    vtx = tri.vertices
    face, ta, tb = interior_faces(tri.simplices, tri.neighbors, n)
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
    return pairs, center, inv, ea, eb, sgn


def _voxel_pieces(tri_in, polys, cnt, all_in, cr, inv, sgn, dom: Domain, prefix) -> tuple:
    """The inside and clipped triangles split at the voxel planes: (facet of each piece, signed
    area, ∫Φ (·, 4), ∫ρ)."""
    m = len(dom.poly.b)
    low, cell, rho = dom.low, dom.cell, dom.grid
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
    xs, pre, pre2 = prefix
    c1, c2, c3 = vox.T
    r_v, x_v = rho[c1, c2, c3], xs[c1]
    phi = functools.partial(_phi_voxels, r_v=r_v, x_v=x_v, p_v=pre[c1, c2, c3], q_v=pre2[c1, c2, c3])
    area, vals = _fan_integrals(pieces, pc, phi)
    area, vals = sgn[tri_id] * area, sgn[tri_id, None] * vals
    return owner, area, vals, r_v * area


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


def _face_frame(poly: Polytope, k: int) -> tuple:
    """Origin o (3,) and orthonormal basis U (3, 2) of the plane of face k of D."""
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


def _ring_facets(tri: Triangulation, n: int, poly: Polytope, rho0: float, a1: float) -> tuple | None:
    """(pairs (P, 2), areas (P,), ∫Φ (P, 4), bitmask of the faces of D each clipped facet
    touches (P,)) from the rings of tetrahedra around the edges (compiled), uniform ρ = rho0;
    None when a ring is too long or D has over 62 faces (the fans then take over)."""
    if len(poly.b) > 62:  # the faces touched are kept as bits of an int64
        return None
    simp, nbr = tri.simplices, tri.neighbors
    cap = len(tri.Y) + len(simp) + int((nbr < 0).sum()) + 16  # Euler: edges ≤ V + T + hull faces
    pairs = np.empty((cap, 2), np.int64)
    area, vals, touch = np.empty(cap), np.empty((cap, 4)), np.empty(cap, np.int64)
    tol = 1e-9 * (1.0 + np.abs(poly.b).max())
    inside = np.all(tri.vertices @ poly.A.T < poly.b - 2 * tol, axis=1)
    P = kernels3d.ring_facets(simp, nbr, tri.vertices, tri.Y, inside, n, np.ascontiguousarray(poly.A),
                              np.ascontiguousarray(poly.b, dtype=float), tol, rho0, a1, pairs, area,
                              vals, touch)
    if P < 0:
        return None
    return pairs[:P], area[:P], vals[:P], touch[:P]


def _voxel_face(y, h, dom: Domain, total, total2, options: PowerOptions):
    """∫ over W_i ∩ {x_1 = high_1} of Φ (mass, x_1, x_2, x_3 moments): a 2-D pixel problem in
    (x_2, x_3) with the column integrals ∫ρ dx_1 and ∫x_1 ρ dx_1 as densities."""
    high1 = dom.high[0]
    z = y[:, 1:]
    g = h + high1 * y[:, 0]
    fpoly = Polytope.box(dom.low[1:], dom.high[1:])
    tri = regular_triangulation(z, g, fpoly.vertices, options=options)
    facets, bnd = segments_2d(z, g, fpoly, tri)
    low2, cell2 = dom.low[1:], dom.cell[1:]
    flux_t = flux_2d([facets, bnd], [grid_piece_values(s, low2, cell2, total)[0]
                                     for s in (facets, bnd)], len(y))
    flux_q = flux_2d([facets, bnd], [grid_piece_values(s, low2, cell2, total2)[0]
                                     for s in (facets, bnd)], len(y))
    return np.c_[flux_t[:, 0], flux_q[:, 0], flux_t[:, 1], flux_t[:, 2]]
