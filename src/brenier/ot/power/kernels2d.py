"""Compiled 2-D kernels: Lawson flips, incremental insertion and the facet integrals of a uniform ρ.

Triangulations are arrays simp (T, 3) (counter-clockwise) and nbr (T, 3) (the triangle opposite
each vertex, or −1); lifted heights z = −H. Edge t·3 + k is the edge opposite simp[t, k].
The kernels call only functions of this module (numba's on-disk cache is invalidated file by
file), hence a `relink` here and one in the other dimension's module."""

import numba
import numpy as np


@numba.njit(cache=True)
def lifted_below(Y, z, a, b, c, dd):
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
def flip_edges(Y, z, simp, nbr, stack, st, max_flips, strict):
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
        if not lifted_below(Y, z, a, b, c, dd):  # the edge bc is regular
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
        relink(nbr, n_bd, nb, t)
        relink(nbr, n_ca, t, nb)
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
def flip_repair(Y, z, simp, nbr, max_flips):
    """Lawson flips until every edge of the 2-D triangulation simp/nbr is regular (in place):
    the number of flips, or −1 when a site would have to leave or the flips run out."""
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
    if flip_edges(Y, z, simp, nbr, stack, st, max_flips, True) < 0:
        return -1
    return st[1]


@numba.njit(cache=True)
def insert_sites(Y, z, order, simp, nbr, T0, max_flips):
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
        if not lifted_below(Y, z, a, b, c, p):  # p would be hidden
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
        relink(nbr, n1, t, r1)
        relink(nbr, n2, t, r2)
        stack[0], stack[1], stack[2] = t * 3, r1 * 3 + 1, r2 * 3 + 2
        st[0] = 3
        if flip_edges(Y, z, simp, nbr, stack, st, max_flips, False) < 0:
            return -1
    return used


@numba.njit(cache=True)
def facet_integrals(simp, nbr, vtx, Y, n, A, b, out_tol, rho0, a1,
                    fi, fj, q0, q1, k0, k1, sgn, length, integ):
    """For each edge ij of the triangulation between real sites (i, j < n): the power edge
    [v_ta, v_tb] with its sign, clipped to D = {A x ≤ b} (Cyrus–Beck), and Simpson's ∫Φ for the
    mass and the moments added to both cells (integ, uniform ρ = rho0). Facets go to fi, fj, q0,
    q1, k0, k1 (planes cutting the ends, or −1), sgn, length; returns their number."""
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
            # sign: does the power edge run towards the apex of nb (see integrate2d._edge_signs)?
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
