"""Compiled 3-D kernels of the regular triangulation: 2-3 / 3-2 flips and incremental insertion.

Triangulations are arrays simp (T, 4) and nbr (T, 4) (the tetrahedron opposite each vertex, or −1),
lifted heights z = −H; face t·4 + k is the face opposite simp[t, k]. Rows freed by 3-2 flips have
simp[t, 0] = −1 until `compact` moves the live rows to the front.
The kernels call only functions of this module (numba's on-disk cache is invalidated file by
file), hence a `relink` here and one in the other dimension's module."""

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def det3(u0, u1, u2, v0, v1, v2, w0, w1, w2):
    return u0 * (v1 * w2 - v2 * w1) - u1 * (v0 * w2 - v2 * w0) + u2 * (v0 * w1 - v1 * w0)


@numba.njit(cache=True)
def orient(Y, a, b, c, d):
    """Sign (−1, 0, 1) of det[b − a, c − a, d − a] with a relative tolerance."""
    u0, u1, u2 = Y[b, 0] - Y[a, 0], Y[b, 1] - Y[a, 1], Y[b, 2] - Y[a, 2]
    v0, v1, v2 = Y[c, 0] - Y[a, 0], Y[c, 1] - Y[a, 1], Y[c, 2] - Y[a, 2]
    w0, w1, w2 = Y[d, 0] - Y[a, 0], Y[d, 1] - Y[a, 1], Y[d, 2] - Y[a, 2]
    det = det3(u0, u1, u2, v0, v1, v2, w0, w1, w2)
    mag = (abs(u0) + abs(u1) + abs(u2)) * (abs(v0) + abs(v1) + abs(v2)) * (
        abs(w0) + abs(w1) + abs(w2))
    if det > 1e-13 * mag:
        return 1
    if det < -1e-13 * mag:
        return -1
    return 0


@numba.njit(cache=True)
def lifted_below(Y, z, a, b, c, d, e):
    """Lifted e lies below the hyperplane through lifted a, b, c, d (face abc not regular)."""
    B = (Y[b, 0] - Y[a, 0], Y[b, 1] - Y[a, 1], Y[b, 2] - Y[a, 2], z[b] - z[a])
    C = (Y[c, 0] - Y[a, 0], Y[c, 1] - Y[a, 1], Y[c, 2] - Y[a, 2], z[c] - z[a])
    D = (Y[d, 0] - Y[a, 0], Y[d, 1] - Y[a, 1], Y[d, 2] - Y[a, 2], z[d] - z[a])
    E = (Y[e, 0] - Y[a, 0], Y[e, 1] - Y[a, 1], Y[e, 2] - Y[a, 2], z[e] - z[a])
    d_bcd = det3(B[0], B[1], B[2], C[0], C[1], C[2], D[0], D[1], D[2])
    det4 = (-B[3] * det3(C[0], C[1], C[2], D[0], D[1], D[2], E[0], E[1], E[2])
            + C[3] * det3(B[0], B[1], B[2], D[0], D[1], D[2], E[0], E[1], E[2])
            - D[3] * det3(B[0], B[1], B[2], C[0], C[1], C[2], E[0], E[1], E[2])
            + E[3] * d_bcd)
    mag = 1.0
    for v in (B, C, D, E):
        mag *= abs(v[0]) + abs(v[1]) + abs(v[2]) + abs(v[3])
    if d_bcd < 0:
        det4 = -det4
    return det4 < -1e-12 * mag


@numba.njit(cache=True, inline="always")
def position(simp, t, v):
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
def flip_faces(Y, z, simp, nbr, stack, free, st, max_flips):
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
        k2 = position(nbr, nb, t)
        if k2 < 0:
            status = -1
            break
        d = simp[t, k]
        e = simp[nb, k2]
        a = simp[t, (k + 1) % 4]
        b = simp[t, (k + 2) % 4]
        c = simp[t, (k + 3) % 4]
        if not lifted_below(Y, z, a, b, c, d, e):
            continue
        s_ab = orient(Y, a, b, d, e)
        s_bc = orient(Y, b, c, d, e)
        s_ca = orient(Y, c, a, d, e)
        if s_ab != 0 and s_ab == s_bc and s_bc == s_ca:  # de crosses abc: 2-3 flip
            n1a, n1b = nbr[t, position(simp, t, a)], nbr[t, position(simp, t, b)]
            n1c = nbr[t, position(simp, t, c)]
            n2a, n2b = nbr[nb, position(simp, nb, a)], nbr[nb, position(simp, nb, b)]
            n2c = nbr[nb, position(simp, nb, c)]
            if not distinct(np.array([n1a, n1b, n1c, n2a, n2b, n2c])):
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
            relink(nbr, n2c, nb, t1)
            relink(nbr, n1a, t, t2)
            relink(nbr, n1b, t, t3)
            relink(nbr, n2b, nb, t3)
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
            t3 = nbr[t, position(simp, t, c)]
            if (t3 < 0 or t3 != nbr[nb, position(simp, nb, c)]
                    or orient(Y, c, d, e, a) * orient(Y, c, d, e, b) >= 0):
                stuck += 1
                continue
            n1a, n1b = nbr[t, position(simp, t, a)], nbr[t, position(simp, t, b)]
            n2a, n2b = nbr[nb, position(simp, nb, a)], nbr[nb, position(simp, nb, b)]
            n3a, n3b = nbr[t3, position(simp, t3, a)], nbr[t3, position(simp, t3, b)]
            if not distinct(np.array([n1a, n1b, n2a, n2b, n3a, n3b])):
                stuck += 1
                continue
            s1, s2 = t, nb
            simp[s1, 0], simp[s1, 1], simp[s1, 2], simp[s1, 3] = a, c, d, e
            nbr[s1, 0], nbr[s1, 1], nbr[s1, 2], nbr[s1, 3] = s2, n3b, n2b, n1b
            simp[s2, 0], simp[s2, 1], simp[s2, 2], simp[s2, 3] = b, c, d, e
            nbr[s2, 0], nbr[s2, 1], nbr[s2, 2], nbr[s2, 3] = s1, n3a, n2a, n1a
            relink(nbr, n3b, t3, s1)
            relink(nbr, n2b, nb, s1)
            relink(nbr, n3a, t3, s2)
            relink(nbr, n1a, t, s2)
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
            relink(nbr, nbr[hi, j], hi, lo)
        simp[hi, 0] = -1
        lo += 1
        hi -= 1


@numba.njit(cache=True)
def flip_repair(Y, z, simp, nbr, T, max_flips):
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
        if flip_faces(Y, z, simp, nbr, stack, free, st, max_flips) < 0:
            return -1, 0
        if st[4] == 0:
            return st[3], compact(simp, nbr, st[2])
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
                    k2 = position(nbr, nb, t)
                    if lifted_below(Y, z, simp[t, (k + 1) % 4], simp[t, (k + 2) % 4],
                                 simp[t, (k + 3) % 4], simp[t, k], simp[nb, k2]):
                        stack[top] = t * 4 + k
                        top += 1
        if top == 0:
            return st[3], compact(simp, nbr, st[2])
        st[0] = top


@numba.njit(cache=True)
def insert_sites(Y, z, order, simp, nbr, T0, max_flips):
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
                s_p = orient(Y, a, b, c, p)
                if s_p == 0:
                    face += 1
                elif s_p != orient(Y, a, b, c, simp[t, k]):
                    t = nbr[t, k]
                    moved = True
                    break
            if t < 0:
                return -1
            if not moved:
                break
        v = simp[t].copy()
        if face > 0 or not lifted_below(Y, z, v[0], v[1], v[2], v[3], p):
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
                relink(nbr, nb[k], t, R[k])
            stack[k] = R[k] * 4 + k
        st[0] = 4
        if flip_faces(Y, z, simp, nbr, stack, free, st, max_flips) < 0:
            return -1
        while simp[t, 0] < 0:  # the walk restarts from a live tetrahedron
            t = (t + 1) % st[2]
    return compact(simp, nbr, st[2])
