"""Compiled 3-D kernels of the cell integrals: power vertices, facets from the rings of
tetrahedra around the edges, clipping by D = {A x ≤ b}, and sums over triangles of a uniform ρ.

Φ is the field of the divergence theorem (see brenier.ot.power), for the mass and the moments:
Φ = ρ (x_1 − a_1), ρ (x_1² − a_1²)/2, x_2 ρ (x_1 − a_1), x_3 ρ (x_1 − a_1); triangles are
integrated by the edge-midpoint rule (exact for quadratics). The kernels call only functions of
this module: numba's on-disk cache is invalidated file by file."""

import numba
import numpy as np


@numba.njit(cache=True)
def power_vertices(Y, H, simp, x, ok):
    """x (T, 3) with ⟨x, Y_a⟩ + H_a equal over each tetrahedron (Cramer's rule) and ok (T,):
    well-conditioned; x = 0 where not."""
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


@numba.njit(cache=True)
def ring_facets(simp, nbr, vtx, Y, inside, n, A, b, tol, rho0, a1, pairs, area, vals, touch):
    """For each edge ij of the triangulation between real sites, the power vertices of the
    tetrahedra around it (in cyclic order) form F_ij; it is clipped to D unless all its vertices
    are `inside`, and integrated (signed area, ∫Φ, fan from its vertex mean) into pairs, area,
    vals; touch: bitmask of the faces of D it touches. Returns the number of facets, or −1 (a
    ring longer than 96, a broken adjacency, or more facets than rows)."""
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
                        add_midpoint_rule(vals, P, ar, c0, c1, c2, pa[s, 0], pa[s, 1], pa[s, 2],
                                          pa[s2, 0], pa[s2, 1], pa[s2, 2], rho0, a1)
                P += 1
                if P >= pairs.shape[0]:
                    return -1
    return P


@numba.njit(cache=True)
def clip_triangles(polys, A, b):
    """Sutherland–Hodgman of the triangles polys[:, :3] by all the planes ⟨A_k, x⟩ ≤ b_k, in
    place on polys (K, 3 + m, 3); returns the vertex counts."""
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


@numba.njit(cache=True)
def triangle_integrals(center, vtx, ea, eb, owner, sgn, rho0, a1, area, vals):
    """Sums over the triangles (c_p, v_ea, v_eb) of each facet p = owner (signed by sgn), uniform
    ρ = rho0: area[p] and vals[p] (∫Φ)."""
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
        add_midpoint_rule(vals, p, ar, c0, c1, c2, a0, a1_, a2, b0, b1, b2, rho0, a1)


@numba.njit(cache=True, inline="always")
def add_midpoint_rule(vals, p, ar, c0, c1, c2, u0, u1, u2, w0, w1, w2, rho0, a1):
    """vals[p] += ∫Φ over the triangle (c, u, w) of signed area ar, uniform ρ = rho0 (edge
    midpoints: exact for quadratics)."""
    s0 = s1 = s2 = s3 = 0.0
    for q in range(3):
        if q == 0:
            m0, m1, m2 = (c0 + u0) / 2, (c1 + u1) / 2, (c2 + u2) / 2
        elif q == 1:
            m0, m1, m2 = (u0 + w0) / 2, (u1 + w1) / 2, (u2 + w2) / 2
        else:
            m0, m1, m2 = (w0 + c0) / 2, (w1 + c1) / 2, (w2 + c2) / 2
        t = rho0 * (m0 - a1)
        s0 += t
        s1 += rho0 * (m0 * m0 - a1 * a1) / 2
        s2 += m1 * t
        s3 += m2 * t
    vals[p, 0] += ar * s0 / 3
    vals[p, 1] += ar * s1 / 3
    vals[p, 2] += ar * s2 / 3
    vals[p, 3] += ar * s3 / 3
